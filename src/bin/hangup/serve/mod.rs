//! `hangup serve [DIR]`: a static file server whose access log tells the
//! truth about every download.
//!
//! The command parses its arguments, checks the directory, sets up the
//! access log (the library's `hangup::access` lines, on stderr), and runs
//! a [`hangup::Server`] with a [`Site`](site::Site) handler until Ctrl-C.
//! The modules, one concept each:
//!
//! - [`site`]: the handler; method, path, then file, listing or redirect;
//! - [`path`]: request path to file path, and why it never leaves the root;
//! - [`files`]: one file, with validators, a byte range, streamed from disk;
//! - [`conditional`]: `ETag`, `Last-Modified` and the `If-*` headers;
//! - [`ranges`]: the `Range` header;
//! - [`listing`]: the HTML directory page;
//! - [`mime`]: `Content-Type` by extension.

mod conditional;
mod files;
mod listing;
mod mime;
mod path;
mod ranges;
mod site;

use std::io::{self, IsTerminal};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use hangup::{Config, Server, ShutdownHandle};
use tracing_subscriber::EnvFilter;

/// How long in-flight downloads may run on after Ctrl-C before their
/// connections are closed: enough for a page and its assets, short enough
/// that nobody reaches for `kill -9`.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Text shown after the options by `hangup serve --help`.
const AFTER_HELP: &str = "\
What it serves:
  GET and HEAD for the files below DIR. A directory shows its index.html,
  or else a listing. Content-Type comes from the file extension. ETag and
  Last-Modified let browsers revalidate (304); a single Range gives 206
  (or 416 when it is past the end). Large files are streamed from disk.
  Paths never leave DIR: '..', encoded slashes, NUL bytes and symlinks
  that point outside DIR are refused.

What it logs (stderr, one line per request, target hangup::access):
  status      what the client got; 499 if it hung up before the end
  written     response bytes the kernel accepted
  acked       bytes the client's TCP acknowledged (Linux); an aborted
              download shows how far it really got
  cause/phase why and when a client left (reset, peer-closed, ...)
  Text the client chose (target, method, path) is escaped: any byte but
  printable ASCII, and space, '\"' and '\\', shows as \\xNN.
  Set RUST_LOG to change the level, e.g. RUST_LOG=debug.

Examples:
  hangup serve                              this directory, on 127.0.0.1:8080
  hangup serve ./public --addr 0.0.0.0:8000 every interface, port 8000
  hangup serve site --addr 0                any free port (printed at start)

Ctrl-C stops accepting and gives downloads 5 s to finish; a second Ctrl-C
quits at once.";

/// Arguments of `hangup serve`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = AFTER_HELP)]
pub struct Args {
    /// The directory to serve; nothing outside it is ever sent.
    #[arg(default_value = ".", value_name = "DIR")]
    pub dir: PathBuf,
    /// Where to listen: HOST:PORT (127.0.0.1:8080 is this machine only,
    /// 0.0.0.0:8080 every interface), or just a PORT on 127.0.0.1; port 0
    /// picks a free one.
    #[arg(
        long,
        default_value = "127.0.0.1:8080",
        value_name = "HOST:PORT",
        value_parser = parse_addr
    )]
    pub addr: SocketAddr,
}

/// Runs `hangup serve` until Ctrl-C (or SIGTERM).
///
/// # Errors
///
/// When the directory cannot be served or the address cannot be bound;
/// each message says what to do about it.
pub fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    init_logging();
    let root = open_root(&args.dir)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(root, args.addr))
}

/// Binds, announces, serves until a stop signal, and waits for the
/// connections to finish.
async fn serve(root: PathBuf, addr: SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
    let server = Server::bind(addr, Config::default(), site::Site::new(root.clone()))
        .await
        .map_err(|err| bind_error(addr, err))?;
    let local = server.local_addr()?;
    // Not a log line: the address must show whatever RUST_LOG says.
    eprintln!(
        "hangup serve: serving {} on http://{local}/ (Ctrl-C to stop)",
        root.display()
    );
    tokio::spawn(stop_on_signal(server.shutdown_handle()));
    server.run().await?;
    eprintln!("hangup serve: stopped");
    Ok(())
}

/// Sends the access log (and warnings) to stderr. `RUST_LOG` overrides
/// the default level, INFO, at which every request gets its line.
fn init_logging() {
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.is_empty() => EnvFilter::try_new(&spec).unwrap_or_else(|err| {
            eprintln!("hangup serve: ignoring RUST_LOG={spec:?} ({err}); logging at info");
            EnvFilter::new("info")
        }),
        _ => EnvFilter::new("info"),
    };
    // Fails only if a subscriber is already set, which is then kept.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(io::stderr().is_terminal())
        .try_init();
}

/// The canonical form of `dir`, which every served path must start with.
fn open_root(dir: &Path) -> Result<PathBuf, String> {
    let shown = dir.display();
    let root = std::fs::canonicalize(dir).map_err(|err| match err.kind() {
        io::ErrorKind::NotFound => {
            format!(
                "cannot serve {shown}: no such directory; \
                 pass an existing directory, e.g. `hangup serve ./public`"
            )
        }
        io::ErrorKind::PermissionDenied => {
            format!("cannot serve {shown}: permission denied; pass a directory you can read")
        }
        _ => format!("cannot serve {shown}: {err}"),
    })?;
    if !root.is_dir() {
        return Err(format!(
            "cannot serve {shown}: it is a file, not a directory; pass the directory that holds it"
        ));
    }
    Ok(root)
}

/// Parses `--addr`: `HOST:PORT` (names are resolved once, here) or a bare
/// port on 127.0.0.1.
fn parse_addr(text: &str) -> Result<SocketAddr, String> {
    let hint = "expected HOST:PORT such as 127.0.0.1:8080 or 0.0.0.0:8080, or a bare port";
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    match text.to_socket_addrs() {
        Ok(mut addrs) => addrs
            .next()
            .ok_or_else(|| format!("{text} resolves to no address; {hint}")),
        Err(err) => Err(format!("{err}; {hint}")),
    }
}

/// Explains a bind failure and what to try instead.
fn bind_error(addr: SocketAddr, err: hangup::Error) -> String {
    let io_err = match &err {
        hangup::Error::Io(io_err) => io_err,
        _ => return format!("cannot listen on {addr}: {err}"),
    };
    let advice = match io_err.kind() {
        io::ErrorKind::AddrInUse => {
            "another program uses this port; stop it, \
             or pick another port with --addr (port 0 picks a free one)"
        }
        io::ErrorKind::PermissionDenied => {
            "ports below 1024 need privileges; use a higher port, e.g. --addr 127.0.0.1:8080"
        }
        io::ErrorKind::AddrNotAvailable => {
            "this machine has no such address; use 127.0.0.1 (local) or 0.0.0.0 (every interface)"
        }
        _ => "check the address given with --addr",
    };
    format!("cannot listen on {addr}: {io_err}; {advice}")
}

/// Waits for Ctrl-C (or SIGTERM), then shuts down gracefully; a second
/// signal exits at once.
async fn stop_on_signal(shutdown: ShutdownHandle) {
    stop_signal().await;
    eprintln!(
        "hangup serve: shutting down; in-flight requests have {} s to finish \
         (Ctrl-C again to quit now)",
        SHUTDOWN_GRACE.as_secs()
    );
    shutdown.shutdown(SHUTDOWN_GRACE);
    stop_signal().await;
    eprintln!("hangup serve: quitting now");
    // 130: the conventional exit status after SIGINT.
    std::process::exit(130);
}

/// Resolves on Ctrl-C (SIGINT) or, on Unix, SIGTERM (what service
/// managers and `kill` send).
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    // Without a handler, Ctrl-C would kill the process outright: better
    // to wait forever than to treat a failed registration as a signal.
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}
