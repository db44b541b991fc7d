//! The `hangup` command: `lab` reproduces and explains the broken-pipe
//! puzzle; `serve` serves files with an access log that tells the truth.
//! Both use only the library's public API.

mod lab;
#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod release_memory;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// An HTTP/1.1 server that knows when the client hung up.
#[derive(Debug, Parser)]
#[command(name = "hangup", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Reproduce the "broken pipe only above 8 KiB" puzzle on this machine
    /// and explain it: what a handler sees when its client hangs up, by
    /// response size, buffer size, FIN or RST, and server behaviour.
    Lab(lab::Args),
    /// Serve a directory over HTTP, with one honest access-log line per
    /// request (499 and acknowledged bytes for aborted downloads).
    Serve(serve::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    release_memory::start();
    let failed = match cli.command {
        Command::Lab(args) => lab::run(args).map_err(|err| eprintln!("hangup: {err}")),
        Command::Serve(args) => serve::run(args).map_err(|err| serve::report_fatal(&err)),
    };
    match failed {
        Ok(()) => ExitCode::SUCCESS,
        Err(()) => ExitCode::FAILURE,
    }
}
