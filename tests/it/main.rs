//! hangup's integration tests: one binary, real sockets on 127.0.0.1.
//! The `cli_*` modules run the `hangup` command, built with the `cli`
//! feature (on by default).

mod access_log;
#[cfg(feature = "cli")]
mod cli_lab;
#[cfg(feature = "cli")]
mod cli_serve;
#[cfg(feature = "cli")]
mod cli_serve_logs;
mod connection;
mod examples;
mod framing;
mod hangups;
mod outcomes;
mod pipelining;
mod proptests;
mod rejections;
mod stress;
mod support;
mod tower;
mod upgrade;
mod watch;
