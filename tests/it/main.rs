//! hangup's integration tests: one binary, real sockets on 127.0.0.1.

mod framing;
mod support;
