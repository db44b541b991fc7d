//! The report of a client that left: [`Hangup`], its [`HangupCause`],
//! [`Phase`] and [`Detection`], the [`Counters`] it carries, and
//! [`classify`], the one place that turns an `io::Error` into a cause.

use std::fmt;
use std::io;
use std::time::Duration;

use http::StatusCode;

use crate::transport::TlsClose;

/// Classifies an I/O error seen by a read or a write: `Some` when it means
/// the client is gone, `None` for a genuine I/O failure.
///
/// `EPIPE`, `ECONNRESET` and `ECONNABORTED` are one class on writes (which
/// one appears depends on TCP state and on which syscall saw the RST first);
/// on reads a reset is [`HangupCause::Reset`] and an unexpected EOF is
/// [`HangupCause::PeerClosed`].
pub(crate) fn classify(err: &io::Error, detection: Detection) -> Option<HangupCause> {
    use io::ErrorKind::*;
    match (err.kind(), detection) {
        (BrokenPipe | ConnectionReset | ConnectionAborted | NotConnected, Detection::Write) => {
            Some(HangupCause::WriteFailed)
        }
        (ConnectionReset | ConnectionAborted | BrokenPipe | NotConnected, _) => {
            Some(HangupCause::Reset)
        }
        (UnexpectedEof, _) => Some(HangupCause::PeerClosed),
        (TimedOut, Detection::Write) => Some(HangupCause::WriteStalled),
        (TimedOut, _) => Some(HangupCause::ReadTimeout),
        _ => None,
    }
}

/// nginx's non-standard `499`: the client closed the connection before the
/// response was complete. Used in logs and outcomes, never on the wire.
pub(crate) fn status_client_closed_request() -> StatusCode {
    // 499 is inside the 100..=999 range `from_u16` accepts.
    StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST)
}

/// What made the server decide the client is gone, or going.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HangupCause {
    /// The client closed its sending side (FIN). It will send nothing more
    /// but may still read; see [`OnFin`](crate::OnFin).
    PeerClosed,
    /// The client reset the connection (RST): `ECONNRESET` on a read or
    /// from `SO_ERROR`.
    Reset,
    /// A write failed with `EPIPE` or `ECONNRESET` (one class: which one
    /// appears depends on TCP state; [`Hangup::errno`] keeps the raw value).
    WriteFailed,
    /// A write made no progress for `write_timeout`: the client stopped
    /// reading.
    WriteStalled,
    /// A read of the request head or body made no progress for its timeout.
    ReadTimeout,
}

impl HangupCause {
    /// Every cause, in the order metrics list them.
    pub(crate) const ALL: [HangupCause; 5] = [
        HangupCause::PeerClosed,
        HangupCause::Reset,
        HangupCause::WriteFailed,
        HangupCause::WriteStalled,
        HangupCause::ReadTimeout,
    ];

    /// Where this cause is in [`ALL`](Self::ALL).
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// A short lowercase name, stable for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            HangupCause::PeerClosed => "peer_closed",
            HangupCause::Reset => "reset",
            HangupCause::WriteFailed => "write_failed",
            HangupCause::WriteStalled => "write_stalled",
            HangupCause::ReadTimeout => "read_timeout",
        }
    }
}

impl fmt::Display for HangupCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the exchange was when the hang-up happened. Modelled on HAProxy's
/// termination states (`CR`, `CD`, …) that operators already read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Phase {
    /// Reading the PROXY protocol header, before anything else (a
    /// [`Departure`]'s phase only).
    ///
    /// [`Departure`]: crate::Departure
    ProxyHeader,
    /// The TLS handshake, before any request byte (a [`Departure`]'s
    /// phase only).
    ///
    /// [`Departure`]: crate::Departure
    Handshake,
    /// Reading the request head (HAProxy `CR`).
    ReadingHead,
    /// Reading the request body.
    ReadingBody,
    /// The handler was running and no response byte had reached the kernel
    /// (HAProxy `CH`).
    Handling,
    /// Response bytes had reached the kernel (HAProxy `CD`).
    Sending,
}

impl Phase {
    /// A short lowercase name, stable for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::ProxyHeader => "proxy_header",
            Phase::Handshake => "handshake",
            Phase::ReadingHead => "reading_head",
            Phase::ReadingBody => "reading_body",
            Phase::Handling => "handling",
            Phase::Sending => "sending",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the hang-up was noticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Detection {
    /// The socket watch saw read-side readiness report the peer closed
    /// (`EPOLLRDHUP`), without consuming any byte.
    SocketWatch,
    /// A read returned EOF or an error.
    Read,
    /// A write returned an error.
    Write,
    /// A timer expired.
    Timer,
}

impl Detection {
    /// A short lowercase name, stable for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Detection::SocketWatch => "socket_watch",
            Detection::Read => "read",
            Detection::Write => "write",
            Detection::Timer => "timer",
        }
    }
}

/// The three per-response byte counters. They only grow, and no field says
/// "sent" without saying which stage it means.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Body bytes the handler handed to the response writer.
    pub buffered: u64,
    /// Response bytes (head, framing and body) the kernel accepted from the
    /// server: what nginx calls `$bytes_sent`. Not what the client received.
    pub written: u64,
    /// Response bytes the client's TCP stack acknowledged, from Linux
    /// `TCP_INFO.tcpi_bytes_acked`, counted from the start of this response.
    /// `None` where the platform cannot tell.
    pub acked: Option<u64>,
}

/// The report of a client that went away: cause, phase, detection, timing
/// and the byte counters at that moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hangup {
    pub(crate) cause: HangupCause,
    pub(crate) phase: Phase,
    pub(crate) detection: Detection,
    pub(crate) elapsed: Duration,
    pub(crate) counters: Counters,
    pub(crate) errno: Option<i32>,
    pub(crate) tls_close: Option<TlsClose>,
}

impl Hangup {
    /// What happened.
    pub fn cause(&self) -> HangupCause {
        self.cause
    }

    /// Where the exchange was.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// How it was noticed.
    pub fn detection(&self) -> Detection {
        self.detection
    }

    /// Time from the socket read that completed the request's head (see
    /// [`Outcome::duration`](crate::Outcome::duration)) to the moment the
    /// hang-up was detected.
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// The response's byte counters when the hang-up was detected.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// The raw `errno` of the failing syscall, if one reported it.
    pub fn errno(&self) -> Option<i32> {
        self.errno
    }

    /// Over TLS, for a [`PeerClosed`](HangupCause::PeerClosed) hang-up:
    /// whether the client sent `close_notify` before its FIN, as far as
    /// the server had read when it recorded the hang-up. A client that
    /// sent `close_notify` but kept its TCP side open is seen when the
    /// server next reads (a FIN right after it, as curl, browsers and
    /// rustls send, is seen at once). `None` on plain TCP, for other
    /// causes, and when the close could not be told (more request bytes
    /// were waiting ahead of it than the session holds).
    pub fn tls_close(&self) -> Option<TlsClose> {
        self.tls_close
    }

    /// True when the client merely closed its sending side (FIN) and may
    /// still be reading.
    pub fn is_half_close(&self) -> bool {
        self.cause == HangupCause::PeerClosed
    }
}

impl fmt::Display for Hangup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} while {} after {:?} (detected by {}; buffered={} written={} acked=",
            self.cause,
            self.phase,
            self.elapsed,
            self.detection.as_str(),
            self.counters.buffered,
            self.counters.written,
        )?;
        match self.counters.acked {
            Some(acked) => write!(f, "{acked}")?,
            None => f.write_str("unknown")?,
        }
        if let Some(errno) = self.errno {
            write!(f, ", errno {errno}")?;
        }
        if let Some(close) = self.tls_close {
            write!(f, ", tls {}", close.as_str())?;
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_errors_are_one_class() {
        for kind in [io::ErrorKind::BrokenPipe, io::ErrorKind::ConnectionReset] {
            let err = io::Error::from(kind);
            assert_eq!(
                classify(&err, Detection::Write),
                Some(HangupCause::WriteFailed)
            );
        }
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        assert_eq!(classify(&reset, Detection::Read), Some(HangupCause::Reset));
        let other = io::Error::from(io::ErrorKind::PermissionDenied);
        assert_eq!(classify(&other, Detection::Write), None);
    }
}
