//! hangup's integration tests: one binary, real sockets on 127.0.0.1.

mod access_log;
mod cli_lab;
mod cli_serve;
mod cli_serve_logs;
mod connection;
mod examples;
mod framing;
mod hangups;
mod outcomes;
mod pipelining;
mod proptests;
mod rejections;
mod serve_http;
mod serve_listing;
mod serve_sharing;
mod serve_uploads;
mod stress;
mod support;
