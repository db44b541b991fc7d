//! [`Error`], the crate's one error type, and [`Hangup`], the report of a
//! client that left.
//!
//! Every failure a handler can see is one variant of [`Error`]. A client that
//! went away is not a server error: it is [`Error::ClientGone`], carrying a
//! [`Hangup`] that says what happened, when, and how many bytes had reached
//! which stage. `exchange::hangup::classify` is the one place that turns an
//! `io::Error` into a [`HangupCause`](crate::HangupCause).

use std::fmt;
use std::io;

use http::StatusCode;

use crate::exchange::hangup::{Counters, Hangup, status_client_closed_request};

/// The result type of handlers and of every fallible call in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Any error a tower service or a response body may fail with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Everything that can go wrong while serving a request.
///
/// Match on the predicates ([`is_client_gone`](Self::is_client_gone),
/// [`status`](Self::status)) rather than on display strings.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The client went away (or is treated as gone) before the exchange was
    /// complete. Once a response has seen this error, every later write,
    /// flush and finish returns it again at once, without a syscall.
    ClientGone(Hangup),
    /// The request was malformed or over a limit. The server answers it with
    /// [`BadRequest::status`] and closes the connection.
    BadRequest(BadRequest),
    /// The request body is longer than the limit the handler asked for
    /// (see [`Body::read_all`](crate::Body::read_all)). When a handler
    /// returns this error before committing its response, the server answers
    /// `413 Payload Too Large`.
    BodyTooLarge {
        /// The limit that was exceeded, in bytes.
        limit_bytes: u64,
    },
    /// The status or headers were changed after the response head was
    /// committed (sent or about to be sent); the change was not applied.
    HeadCommitted,
    /// A write would have sent more body bytes than the `Content-Length` the
    /// handler set. Nothing of that write was sent.
    ContentLengthExceeded {
        /// The `Content-Length` the handler declared.
        declared: u64,
        /// The body length the rejected write would have reached.
        attempted: u64,
    },
    /// A body was written to a response that cannot have one (`204`, `304`,
    /// `1xx`). HEAD responses are different: their body bytes are counted
    /// (for the automatic `Content-Length`) and discarded.
    BodyNotAllowed(StatusCode),
    /// [`finish_and_confirm`](crate::ResponseWriter::finish_and_confirm)'s
    /// deadline passed before the client's TCP acknowledged the whole
    /// response; the counters say how far it got.
    Unconfirmed(Counters),
    /// A [`ConfigBuilder`](crate::ConfigBuilder) setting was out of range.
    Config(ConfigError),
    /// Any other I/O failure: bind, accept, a file a handler opened.
    Io(io::Error),
    /// A tower service, or the body of its response, failed (the error is
    /// its own, boxed). Answered with 500 when the head was not sent yet.
    Service(BoxError),
}

impl Error {
    /// True when the client is gone ([`Error::ClientGone`]).
    pub fn is_client_gone(&self) -> bool {
        matches!(self, Error::ClientGone(_))
    }

    /// The hang-up report, when the client is gone.
    pub fn hangup(&self) -> Option<&Hangup> {
        match self {
            Error::ClientGone(hangup) => Some(hangup),
            _ => None,
        }
    }

    /// The status the server answers with when a handler returns this error
    /// before its response head was committed.
    ///
    /// `ClientGone` maps to nginx's `499 Client Closed Request`, which is only
    /// ever logged: nothing is sent to a client that is gone.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::ClientGone(_) => status_client_closed_request(),
            Error::BadRequest(bad) => bad.status(),
            Error::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::ClientGone(hangup) => write!(f, "client gone: {hangup}"),
            Error::BadRequest(bad) => write!(f, "bad request: {bad}"),
            Error::BodyTooLarge { limit_bytes } => {
                write!(f, "request body larger than {limit_bytes} bytes")
            }
            Error::HeadCommitted => f.write_str("response head already committed"),
            Error::ContentLengthExceeded {
                declared,
                attempted,
            } => write!(
                f,
                "write would exceed the declared content-length ({attempted} > {declared} bytes)"
            ),
            Error::BodyNotAllowed(status) => {
                write!(f, "a {} response cannot have a body", status.as_u16())
            }
            Error::Unconfirmed(counters) => write!(
                f,
                "client acknowledged {} of {} bytes before the deadline",
                counters
                    .acked
                    .map_or_else(|| "an unknown number".to_owned(), |n| n.to_string()),
                counters.written
            ),
            Error::Config(err) => write!(f, "invalid configuration: {err}"),
            Error::Io(err) => write!(f, "i/o error: {err}"),
            Error::Service(err) => write!(f, "service failed: {err}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(err) => Some(err),
            Error::Config(err) => Some(err),
            Error::Service(err) => Some(err.as_ref()),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(err: io::Error) -> Self {
        Error::Io(err)
    }
}

impl From<BadRequest> for Error {
    fn from(bad: BadRequest) -> Self {
        Error::BadRequest(bad)
    }
}

impl From<Hangup> for Error {
    fn from(hangup: Hangup) -> Self {
        Error::ClientGone(hangup)
    }
}

/// Why a request was rejected. Each kind maps to one status code.
///
/// Cheap to create: no allocation or formatting until it is displayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BadRequest {
    /// The request line (method, target, version) is longer than
    /// `max_request_line_bytes` (414).
    RequestLineTooLong,
    /// The head is longer than `max_head_bytes` (431).
    HeadTooLarge,
    /// The head has more than `max_headers` fields (431).
    TooManyHeaders,
    /// The head was still arriving, its read buffer had to grow past
    /// 1 KiB, and the server's memory budget for heads
    /// (`head_memory_budget`) was spent: a flood of large heads holds it
    /// (431). Heads of up to 1 KiB are never refused for it.
    HeadMemoryBudget,
    /// The request line is not `method SP target SP version CRLF` (400).
    InvalidRequestLine,
    /// The request target is not a valid URI (400).
    InvalidTarget,
    /// The version is well formed but not HTTP/1.0 or HTTP/1.1 (505).
    UnsupportedVersion,
    /// A field line is malformed: invalid name or value bytes, whitespace
    /// before the colon, or an obsolete line folding (400).
    InvalidHeader,
    /// A line ends in a bare LF, and lenient line endings are off (400).
    BareLineFeed,
    /// A CR is not followed by LF (400).
    BareCarriageReturn,
    /// HTTP/1.1 request without a `Host` field (400).
    MissingHost,
    /// More than one `Host` field (400).
    DuplicateHost,
    /// A `Host` value that is not `uri-host [ ":" port ]` (400; RFC 9112
    /// §3.2): whitespace, `/`, `?`, `#`, userinfo, a non-digit port, an
    /// unbalanced bracket, and the like.
    InvalidHost,
    /// `Content-Length` is not a decimal number that fits in 64 bits (400).
    InvalidContentLength,
    /// Several `Content-Length` values that differ (400).
    ConflictingContentLength,
    /// Both `Content-Length` and `Transfer-Encoding` (400; RFC 9112 §6.3).
    ContentLengthWithTransferEncoding,
    /// `Transfer-Encoding` whose final coding is not `chunked`, or with
    /// `chunked` applied twice (400; RFC 9112 §6.3).
    ChunkedNotFinal,
    /// `Transfer-Encoding` in an HTTP/1.0 request: its framing cannot be
    /// trusted (400; RFC 9112 §6.1).
    TransferEncodingInHttp10,
    /// A transfer coding other than `chunked` (501).
    UnsupportedTransferCoding,
    /// A chunk size that is not hexadecimal, is empty, or does not fit in
    /// 64 bits (400).
    InvalidChunkSize,
    /// A chunk's data or size line does not end in CRLF, or a chunk
    /// extension is malformed or too long (400).
    InvalidChunkFraming,
    /// The trailer section is malformed or larger than `max_head_bytes` (400).
    InvalidTrailers,
}

impl BadRequest {
    /// The status code the server answers with.
    pub fn status(self) -> StatusCode {
        match self {
            BadRequest::RequestLineTooLong => StatusCode::URI_TOO_LONG,
            BadRequest::HeadTooLarge
            | BadRequest::TooManyHeaders
            | BadRequest::HeadMemoryBudget => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            BadRequest::UnsupportedVersion => StatusCode::HTTP_VERSION_NOT_SUPPORTED,
            BadRequest::UnsupportedTransferCoding => StatusCode::NOT_IMPLEMENTED,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// A short, lowercase reason, used in logs and error response bodies.
    pub fn reason(self) -> &'static str {
        match self {
            BadRequest::RequestLineTooLong => "request line too long",
            BadRequest::HeadTooLarge => "request head too large",
            BadRequest::TooManyHeaders => "too many header fields",
            BadRequest::HeadMemoryBudget => "the server's memory for request heads is in use",
            BadRequest::InvalidRequestLine => "malformed request line",
            BadRequest::InvalidTarget => "invalid request target",
            BadRequest::UnsupportedVersion => "http version not supported",
            BadRequest::InvalidHeader => "malformed header field",
            BadRequest::BareLineFeed => "line ends in a bare LF",
            BadRequest::BareCarriageReturn => "bare CR in request",
            BadRequest::MissingHost => "missing host header",
            BadRequest::DuplicateHost => "more than one host header",
            BadRequest::InvalidHost => "invalid host header",
            BadRequest::InvalidContentLength => "invalid content-length",
            BadRequest::ConflictingContentLength => "conflicting content-length values",
            BadRequest::ContentLengthWithTransferEncoding => {
                "both content-length and transfer-encoding"
            }
            BadRequest::ChunkedNotFinal => "transfer-encoding does not end in chunked",
            BadRequest::TransferEncodingInHttp10 => "transfer-encoding in an http/1.0 request",
            BadRequest::UnsupportedTransferCoding => "unsupported transfer coding",
            BadRequest::InvalidChunkSize => "invalid chunk size",
            BadRequest::InvalidChunkFraming => "invalid chunk framing",
            BadRequest::InvalidTrailers => "invalid trailer section",
        }
    }
}

impl fmt::Display for BadRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for BadRequest {}

/// A configuration value out of range, reported by
/// [`ConfigBuilder::build`](crate::ConfigBuilder::build).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub(crate) setting: &'static str,
    pub(crate) requirement: &'static str,
}

impl ConfigError {
    /// The name of the offending setting, as spelled by its builder method.
    pub fn setting(&self) -> &'static str {
        self.setting
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.setting, self.requirement)
    }
}

impl std::error::Error for ConfigError {}
