//! hangup's integration tests: one binary, real sockets on 127.0.0.1.

mod connection;
mod framing;
mod hangups;
mod rejections;
mod support;
