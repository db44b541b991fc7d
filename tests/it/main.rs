//! hangup's integration tests: one binary, real sockets on 127.0.0.1.

mod access_log;
mod bodies;
mod cli_lab;
mod cli_serve;
mod cli_serve_logs;
mod delivery;
mod errors;
mod examples;
mod framing;
mod hangups;
mod keep_alive;
mod outcomes;
mod parking;
mod pipelining;
mod policies;
mod proptests;
mod rejections;
mod requests;
mod responses;
mod shutdown;
mod stress;
mod support;
mod timeouts;
