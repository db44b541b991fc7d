//! What became of each exchange and each connection: the [`Outcome`] of
//! every request, the [`Departure`] of every client that left before its
//! request head was complete, the access-log lines written from them
//! (`log`), the server-wide [`Metrics`], and the ledger that holds an
//! outcome until the client's TCP acknowledged its response (`ledger`).
//!
//! Every request that reached a handler ends in exactly one outcome,
//! whether the handler returned, failed, panicked or was cancelled. An
//! outcome is final once the client's TCP acknowledged every byte written
//! (read from `TCP_INFO`), or once `ack_wait` has passed, in which case it
//! is marked [`in_flight`](Outcome::in_flight). Logging at the moment the
//! last byte reaches the kernel would under-report: those bytes may still
//! sit in our send buffer.
//!
//! How an exchange [`End`]s is one of three facts, never a mix: the whole
//! response reached the kernel (and, unless `in_flight`, the client's
//! TCP); the client left first (a [`Hangup`], logged 499); or the server
//! cut it short (a [`Cutoff`], logged with the status it sent). A client
//! that half-closed (FIN) and read the whole response is complete: its FIN
//! is a separate fact, [`peer_closed_after`](Outcome::peer_closed_after).

pub(crate) mod ledger;
pub(crate) mod log;
mod metrics;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, StatusCode, Uri};

use crate::exchange::hangup::{Counters, Hangup, HangupCause, Phase};

pub(crate) use metrics::{ConnectionGuard, ParkedGuard};
pub use metrics::{Metrics, MetricsSnapshot};

/// The record of one finished exchange.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Outcome {
    /// The client's address.
    pub remote_addr: SocketAddr,
    /// The request method.
    pub method: Method,
    /// The request target.
    pub uri: Uri,
    /// The status the response carried: the handler's, or the error
    /// status the server answered with in its place. For a client that
    /// left, the status it would have had ([`status`](Self::status) is
    /// then 499); for an exchange the server cut short before its head
    /// went out, the status it would have sent (`status` is then 444).
    pub intended_status: StatusCode,
    /// The byte counters when the outcome became final.
    pub counters: Counters,
    /// Time from the socket read that completed the request's head to the
    /// moment the outcome became final. A pipelined request counts from the
    /// read that brought it, so its wait behind earlier requests is
    /// included; a head that arrived in an earlier request's body read
    /// counts from the read before that (never later than its arrival).
    pub duration: Duration,
    /// How the exchange ended.
    pub end: End,
    /// When the client closed its sending side (FIN), counted from the
    /// exchange's start, if it did while the exchange ran. A fact, not a
    /// hang-up: a half-closing client may read the whole response.
    pub peer_closed_after: Option<Duration>,
    /// The outcome was final before the client acknowledged every written
    /// byte (`ack_wait` ran out, or the platform cannot tell).
    pub in_flight: bool,
    /// Bytes of interim responses (`100 Continue`) among
    /// `counters.written`: what precedes the final response's head.
    pub(crate) interim_written: u64,
}

/// How an exchange ended: see the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum End {
    /// Every byte of the response reached the kernel (and the client's
    /// TCP acknowledged them, unless the outcome is
    /// [`in_flight`](Outcome::in_flight)).
    Complete,
    /// The client left before it had the whole response: it reset, a
    /// write failed or stalled, it stopped sending its body, or it closed
    /// (a FIN under [`OnFin::Abort`](crate::OnFin::Abort), or one its
    /// handler gave up on). Logged as 499.
    ClientGone(Hangup),
    /// The server cut the response short, for this reason. Logged with the
    /// status it sent.
    CutShort(Cutoff),
}

/// Why the server cut a response short.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Cutoff {
    /// The handler returned an error after the response head was sent:
    /// the connection closed without the rest (a chunked body without its
    /// last chunk, so the client knows).
    HandlerFailed,
    /// The handler panicked after the response head was sent.
    HandlerPanicked,
    /// The body ended short: the handler wrote fewer bytes than its
    /// `Content-Length`, or a file it sent ended before the bytes to send
    /// (it shrank meanwhile; with a length or chunked). The connection
    /// closed after them.
    ShorterThanDeclared,
    /// The handler called [`ResponseWriter::abort`](crate::ResponseWriter::abort).
    Aborted,
    /// Writing to the socket failed with an error that is not the client
    /// leaving ([`Error::Io`](crate::Error::Io)).
    WriteError,
    /// The server shut down and its grace period ran out first.
    ServerShutdown,
}

impl Cutoff {
    /// Every reason, in the order metrics list them.
    pub(crate) const ALL: [Cutoff; 6] = [
        Cutoff::HandlerFailed,
        Cutoff::HandlerPanicked,
        Cutoff::ShorterThanDeclared,
        Cutoff::Aborted,
        Cutoff::WriteError,
        Cutoff::ServerShutdown,
    ];

    /// Where this reason is in [`ALL`](Self::ALL).
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// A short lowercase name, stable for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Cutoff::HandlerFailed => "handler_failed",
            Cutoff::HandlerPanicked => "handler_panicked",
            Cutoff::ShorterThanDeclared => "shorter_than_declared",
            Cutoff::Aborted => "aborted",
            Cutoff::WriteError => "write_error",
            Cutoff::ServerShutdown => "server_shutdown",
        }
    }
}

impl fmt::Display for Cutoff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Outcome {
    /// The status to report: `499` when the client left before it had the
    /// whole response, `444` when the server cut the exchange short before
    /// any byte of the response's head reached the kernel (a shutdown or
    /// an abort: the client got no answer at all; both numbers are
    /// nginx's conventions), else the one sent.
    pub fn status(&self) -> StatusCode {
        match self.end {
            End::ClientGone(_) => crate::exchange::hangup::status_client_closed_request(),
            End::CutShort(_) if self.counters.written <= self.interim_written => {
                // 444 is inside the 100..=999 range `from_u16` accepts.
                StatusCode::from_u16(444).unwrap_or(StatusCode::SERVICE_UNAVAILABLE)
            }
            _ => self.intended_status,
        }
    }

    /// True when the whole response reached the kernel ([`End::Complete`]).
    pub fn is_complete(&self) -> bool {
        self.end == End::Complete
    }

    /// The client's hang-up, when it left before the end.
    pub fn hangup(&self) -> Option<&Hangup> {
        match &self.end {
            End::ClientGone(hangup) => Some(hangup),
            _ => None,
        }
    }

    /// Why the response is incomplete, as a stable lowercase name: the
    /// hang-up's cause or the server's cutoff; `None` when complete.
    pub fn cause(&self) -> Option<&'static str> {
        match &self.end {
            End::Complete => None,
            End::ClientGone(hangup) => Some(hangup.cause().as_str()),
            End::CutShort(cutoff) => Some(cutoff.as_str()),
        }
    }
}

/// A client that left before its request head was complete: no request,
/// so no outcome, but a record all the same (a metric by cause and one
/// access-log line), for operators who hunt slow-loris clients, port
/// scans and failing TLS clients. A keep-alive client that closes between
/// requests, with no byte of a next head sent, is not one: that is how
/// connections end.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Departure {
    /// The client's address.
    pub remote_addr: SocketAddr,
    /// Why it went.
    pub cause: DepartureCause,
    /// [`Phase::ProxyHeader`] (the PROXY protocol header, first),
    /// [`Phase::Handshake`] (TLS, before any request byte) or
    /// [`Phase::ReadingHead`].
    pub phase: Phase,
    /// Bytes of the unfinished head (or PROXY header) it had sent: 0 for a
    /// connection that never sent a byte, and during a TLS handshake.
    pub received: u64,
    /// Time from the start of the wait (the accept, or the end of the
    /// previous exchange) to its departure.
    pub duration: Duration,
}

impl Departure {
    /// Counts it and writes its access line.
    pub(crate) fn record(&self, metrics: &Metrics) {
        metrics.departed(self);
        if log::is_access_log_enabled() {
            log::departure(self);
        }
    }
}

/// Why a client left before its request head was complete.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DepartureCause {
    /// It hung up ([`PeerClosed`](HangupCause::PeerClosed): a FIN, or a
    /// TLS `close_notify`; [`Reset`](HangupCause::Reset)) or went silent
    /// ([`ReadTimeout`](HangupCause::ReadTimeout): `header_read_timeout`,
    /// or `tls_handshake_timeout` in the handshake).
    Left(HangupCause),
    /// Its TLS handshake failed; the text is rustls's error: a fatal alert
    /// from the client (`UnknownCA` from a client that does not trust the
    /// certificate, say), no protocol version or cipher suite in common,
    /// bytes that are not TLS. The server sent the client an alert.
    TlsHandshake(String),
    /// It spoke plain HTTP to a TLS listener. It was answered, in plain
    /// HTTP, with a `400` that says so, and the connection closed.
    PlainHttpOnTls,
    /// On a listener that expects the PROXY protocol, its first bytes were
    /// not a valid header (the reason says which rule they broke; a client
    /// that connected directly sends "not a proxy protocol header"). The
    /// connection was closed without a response.
    ProxyHeaderRefused(&'static str),
    /// Its TLS handshake was still in progress, the oldest of
    /// `max_tls_handshakes`, when a newer connection came: the server
    /// closed it to make room (without an alert), so that clients that
    /// stall their handshakes cannot lock others out.
    HandshakeEvicted,
}

impl DepartureCause {
    /// A short lowercase name, stable for logs: the hang-up cause's own
    /// name for [`Left`](Self::Left).
    pub fn as_str(&self) -> &'static str {
        match self {
            DepartureCause::Left(cause) => cause.as_str(),
            DepartureCause::TlsHandshake(_) => "tls_handshake_failed",
            DepartureCause::PlainHttpOnTls => "plain_http_on_tls",
            DepartureCause::ProxyHeaderRefused(_) => "proxy_header_refused",
            DepartureCause::HandshakeEvicted => "handshake_evicted",
        }
    }

    /// The hang-up, for a client that left.
    pub fn hangup_cause(&self) -> Option<HangupCause> {
        match self {
            DepartureCause::Left(cause) => Some(*cause),
            _ => None,
        }
    }
}

impl fmt::Display for DepartureCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DepartureCause::TlsHandshake(detail) => {
                write!(f, "{}: {detail}", self.as_str())
            }
            DepartureCause::ProxyHeaderRefused(reason) => {
                write!(f, "{}: {reason}", self.as_str())
            }
            _ => f.write_str(self.as_str()),
        }
    }
}

/// A callback that receives every [`Outcome`]: see
/// [`ConfigBuilder::on_outcome`](crate::ConfigBuilder::on_outcome).
#[derive(Clone)]
pub struct OutcomeHook(pub(crate) Arc<dyn Fn(&Outcome) + Send + Sync>);

impl fmt::Debug for OutcomeHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OutcomeHook")
    }
}
