//! hangup: an HTTP/1.1 server that knows when the client hung up.
//!
//! # The life of a request
//!
//! 1. [`Server`] (`server`) accepts a connection once it has room for it
//!    (`max_connections`; on TLS, past `max_tls_handshakes` in progress,
//!    the oldest makes room: `conn::handshakes`) and spawns one
//!    task for it (`conn`). `conn::establish` readies its `transport`: the
//!    PROXY protocol header first where one is expected (`proxy`), then
//!    the TLS handshake on a TLS listener (`transport::tls`, rustls driven
//!    record by record; certificates from [`tls`]). Every byte then passes
//!    through the transport, and the task waits for a head (`conn::wait`:
//!    a new connection's first head, idle between requests, or a head
//!    arriving). A client that leaves before its head is complete (or
//!    fails its header or handshake) leaves a [`Departure`].
//! 2. `h1::head` parses the head with httparse under RFC 9112's strict
//!    rules; a malformed head is answered with a 4xx/5xx and a clean
//!    close (`conn::close`). The target and the fields are checked and
//!    located, and become [`http`] types (`Uri`, `HeaderMap`) only for
//!    handlers that ask: [`Request::path`] routes without either.
//! 3. `conn::dispatch` begins the request's [`exchange`](Hangup) (one
//!    owner for its start, counters, status, policies and hang-up), lends
//!    the read state to the [`Request`]'s [`Body`] (`h1::input`, framed by
//!    `h1::decode`) and the response state to a [`ResponseWriter`]
//!    (`h1::output`), and runs the [`Handler`] inside the task, raced
//!    against a watch on the socket that notices the client's FIN or RST
//!    as it arrives, without consuming bytes.
//! 4. The writer buffers body bytes up to `write_buffer_bytes`; framing is
//!    decided when the head is committed (`h1::commit`). Responses held
//!    back for a pipelined batch go out as soon as the next handler waits
//!    for anything; the writer and a `100 Continue` take turns behind them
//!    (`h1::link`).
//! 5. When the handler returns, the task finishes the response (automatic
//!    `Content-Length` if it all fit), drains an unread body, and records
//!    the exchange's [`Outcome`] in the connection's ledger (`outcome`),
//!    which emits it once the client's TCP acknowledged the response.
//! 6. A connection idle for `idle_release_after` with nothing pending
//!    *parks* (`park`): its task ends, and its socket waits with those of
//!    other idle connections in one epoll set watched by one task, until
//!    the client sends again.
//!
//! A client that leaves is reported as [`Error::ClientGone`] with a
//! [`Hangup`]: cause, phase, timing and the `buffered` / `written` /
//! `acked` byte [`Counters`]; its outcome ends in [`End::ClientGone`],
//! logged 499. A response the server cut short ends in [`End::CutShort`]
//! with a [`Cutoff`], logged with the status it sent.

#![deny(unsafe_code)]
#![warn(missing_docs)]

mod body;
mod config;
mod conn;
mod date;
mod error;
mod escape;
mod exchange;
mod h1;
mod handler;
mod outcome;
mod park;
mod proxy;
mod request;
mod response;
mod server;
mod shutdown;
mod signal;
mod sys;
#[cfg(feature = "tls")]
pub mod tls;
mod tower;
mod transport;
mod upgrade;

pub use body::Body;
pub use config::{Config, ConfigBuilder};
pub use error::{BadRequest, BoxError, ConfigError, Error, Result};
pub use escape::Escaped;
pub use exchange::hangup::{Counters, Detection, Hangup, HangupCause, Phase};
pub use exchange::{OnFin, OnHangup};
pub use handler::Handler;
pub use outcome::{Cutoff, Departure, DepartureCause, End, Metrics, MetricsSnapshot, Outcome};
pub use request::Request;
pub use response::ResponseWriter;
pub use server::{Server, ShutdownHandle};
pub use signal::HangupSignal;
pub use tower::{
    ConnectionAddrs, HangupPolicy, HangupPolicyService, MakeServiceHandler, ServiceHandler, serve,
    serve_with_connect_info, service, service_with_connect_info,
};
pub use transport::TlsClose;
pub use upgrade::Upgraded;

/// The `http` crate, whose types this crate's API uses.
pub use http;
pub use tokio_util::sync::CancellationToken;

/// The README's code blocks, compiled as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

#[doc(hidden)]
pub mod __private {
    //! Entry points for fuzz targets and benchmarks only; not API.

    use bytes::BytesMut;

    use crate::error::BadRequest;
    pub use crate::proxy::parse_for_fuzzing as parse_proxy_header;

    /// Parses one head with the default limits and builds its header map
    /// and `Uri`, as a handler asking for them would. Returns the bytes the
    /// head occupied (leading empty lines included), `None` while
    /// incomplete.
    pub fn parse_head(input: &[u8]) -> Result<Option<usize>, BadRequest> {
        let config = crate::Config::default();
        let limits = crate::h1::head::Limits {
            max_request_line_bytes: config.max_request_line_bytes,
            max_head_bytes: config.max_head_bytes,
            max_headers: config.max_headers,
            lenient_line_endings: false,
        };
        let mut buf = BytesMut::from(input);
        let head = crate::h1::head::parse(
            &mut buf,
            &limits,
            &mut crate::h1::head::Scan::default(),
            &mut None,
        )?;
        Ok(head.map(|head| {
            let _ = (head.parts.headers(), head.parts.uri());
            input.len() - buf.len()
        }))
    }

    /// Encodes the head of a `200 OK` response with the given fields and a
    /// `Content-Length` of `body_len`, as the writer does at commit, into
    /// `out` (cleared first).
    pub fn encode_response_head(headers: &http::HeaderMap, body_len: u64, out: &mut Vec<u8>) {
        use crate::h1::encode::{Framing, Persistence, end_head, start_head};
        out.clear();
        let fields = start_head(out, http::StatusCode::OK, headers.iter());
        end_head(
            out,
            &fields,
            Framing::Length(body_len),
            Persistence::KeepAlive,
        );
    }

    /// Decodes a chunked body. Returns the data and the bytes consumed, or
    /// `None` if the input ends inside the body.
    pub fn decode_chunked(input: &[u8]) -> Result<Option<(Vec<u8>, usize)>, BadRequest> {
        use crate::h1::decode::{Decoded, Decoder};
        let mut decoder = Decoder::new(crate::h1::head::BodyFraming::Chunked, false, 64 * 1024);
        let mut buf = BytesMut::from(input);
        let mut data = Vec::new();
        loop {
            match decoder.decode(&mut buf, usize::MAX)? {
                Decoded::Data(chunk) => data.extend_from_slice(&chunk),
                Decoded::End => return Ok(Some((data, input.len() - buf.len()))),
                Decoded::NeedMore => return Ok(None),
            }
        }
    }
}
