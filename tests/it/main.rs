//! hangup's integration tests: one binary, real sockets on 127.0.0.1.
//! The `cli_*` modules run the `hangup` command, built with the `cli`
//! feature (on by default).

mod access_log;
mod bodies;
#[cfg(feature = "cli")]
mod cli_lab;
#[cfg(feature = "cli")]
mod cli_serve;
#[cfg(feature = "cli")]
mod cli_serve_logs;
#[cfg(feature = "cli")]
mod cli_serve_tls;
mod delivery;
mod errors;
mod examples;
mod files;
mod flood;
mod framing;
mod hangups;
mod keep_alive;
mod outcomes;
mod parking;
mod pipelining;
mod policies;
mod proptests;
mod proxy_protocol;
mod rejections;
mod requests;
mod responses;
#[cfg(feature = "cli")]
mod serve_http;
#[cfg(feature = "cli")]
mod serve_listing;
#[cfg(feature = "cli")]
mod serve_sharing;
#[cfg(feature = "cli")]
mod serve_uploads;
mod shutdown;
mod stress;
mod support;
mod timeouts;
#[cfg(feature = "tls")]
mod tls;
#[cfg(feature = "tls")]
mod tls_certs;
mod tower;
mod upgrade;
mod watch;
