//! What became of each response: the [`Outcome`] record, the access-log
//! line written from it, and the server-wide [`Metrics`].
//!
//! Every request that reached a handler ends in exactly one outcome,
//! whether the handler returned, failed, panicked or was cancelled. An
//! outcome is final once the client's TCP acknowledged every byte written
//! (read from `TCP_INFO`), or once `ack_wait` has passed, in which case it
//! is marked [`in_flight`](Outcome::in_flight). Logging at the moment the
//! last byte reaches the kernel would under-report: those bytes may still
//! sit in our send buffer.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::{Method, StatusCode, Uri};

use crate::error::{Counters, Hangup, HangupCause, status_client_closed_request};
use crate::escape::Escaped;

/// The record of one finished exchange.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The client's address.
    pub remote_addr: SocketAddr,
    /// The request method.
    pub method: Method,
    /// The request target.
    pub uri: Uri,
    /// The status the handler meant to send (or the error status the
    /// server substituted).
    pub intended_status: StatusCode,
    /// The byte counters when the outcome became final.
    pub counters: Counters,
    /// Time from the socket read that completed the request's head to the
    /// moment the outcome became final. A pipelined request counts from the
    /// read that brought it, so its wait behind earlier requests is
    /// included; a head that arrived in an earlier request's body read
    /// counts from the read before that (never later than its arrival).
    pub duration: Duration,
    /// The hang-up, if the client left or closed its side.
    pub hangup: Option<Hangup>,
    /// Every byte of the response reached the kernel.
    pub complete: bool,
    /// The outcome was final before the client acknowledged every written
    /// byte (`ack_wait` ran out, or the platform cannot tell).
    pub in_flight: bool,
}

impl Outcome {
    /// The status to report: `499` when the client was gone before the
    /// response was complete (nginx's convention), else the intended one.
    pub fn status(&self) -> StatusCode {
        if self.client_gone_early() {
            status_client_closed_request()
        } else {
            self.intended_status
        }
    }

    /// True when the client left before the whole response was written.
    pub fn client_gone_early(&self) -> bool {
        !self.complete && self.hangup.is_some()
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

/// Writes the access-log line for `outcome` (target `hangup::access`,
/// level INFO; client hang-ups are normal traffic, never warnings).
pub(crate) fn log_access(outcome: &Outcome) {
    let hangup = outcome.hangup.as_ref();
    tracing::info!(
        target: "hangup::access",
        remote_addr = %outcome.remote_addr,
        method = %Escaped::display(&outcome.method),
        target = %Escaped::display(&outcome.uri),
        status = outcome.status().as_u16(),
        intended_status = outcome.intended_status.as_u16(),
        complete = outcome.complete,
        written = outcome.counters.written,
        acked = outcome.counters.acked,
        in_flight = outcome.in_flight,
        duration_us = u64::try_from(outcome.duration.as_micros()).unwrap_or(u64::MAX),
        cause = hangup.map(|h| h.cause().as_str()),
        phase = hangup.map(|h| h.phase().as_str()),
    );
}

/// True when outcomes are wanted at all: an access-log subscriber or a
/// hook. Without either, the server skips the `TCP_INFO` reads they need.
pub(crate) fn is_access_log_enabled() -> bool {
    tracing::enabled!(target: "hangup::access", tracing::Level::INFO)
}

/// Server-wide counters, updated as connections come and go. Cheap to
/// clone; read with [`snapshot`](Self::snapshot).
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    inner: Arc<MetricsInner>,
}

#[derive(Debug, Default)]
struct MetricsInner {
    open_connections: AtomicU64,
    parked_connections: AtomicU64,
    requests: AtomicU64,
    outcomes: AtomicU64,
    hangups: [AtomicU64; HANGUP_CAUSES],
    bytes_written: AtomicU64,
    bytes_acked: AtomicU64,
}

const HANGUP_CAUSES: usize = 6;

fn cause_index(cause: HangupCause) -> usize {
    match cause {
        HangupCause::PeerClosed => 0,
        HangupCause::Reset => 1,
        HangupCause::WriteFailed => 2,
        HangupCause::WriteStalled => 3,
        HangupCause::ReadTimeout => 4,
        HangupCause::ServerShutdown => 5,
    }
}

const ALL_CAUSES: [HangupCause; HANGUP_CAUSES] = [
    HangupCause::PeerClosed,
    HangupCause::Reset,
    HangupCause::WriteFailed,
    HangupCause::WriteStalled,
    HangupCause::ReadTimeout,
    HangupCause::ServerShutdown,
];

/// A point-in-time copy of [`Metrics`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// Connections accepted and not yet closed.
    pub open_connections: u64,
    /// Of those, idle keep-alive connections parked: past
    /// [`idle_release_after`](crate::ConfigBuilder::idle_release_after),
    /// holding only their socket and a slot in the server's parking lot.
    pub parked_connections: u64,
    /// Requests whose head was parsed and handed to a handler.
    pub requests: u64,
    /// Outcome records produced (one per request, once final).
    pub outcomes: u64,
    /// Hang-ups reported in outcomes, by cause.
    pub hangups: Vec<(HangupCause, u64)>,
    /// Response bytes the kernel accepted.
    pub bytes_written: u64,
    /// Response bytes the clients' TCP acknowledged, where known.
    pub bytes_acked: u64,
}

impl MetricsSnapshot {
    /// Hang-ups of one cause.
    pub fn hangups_of(&self, cause: HangupCause) -> u64 {
        self.hangups
            .iter()
            .find(|(c, _)| *c == cause)
            .map_or(0, |(_, n)| *n)
    }
}

impl Metrics {
    /// The counters as they are now.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let m = &self.inner;
        MetricsSnapshot {
            open_connections: m.open_connections.load(Ordering::Relaxed),
            parked_connections: m.parked_connections.load(Ordering::Relaxed),
            requests: m.requests.load(Ordering::Relaxed),
            outcomes: m.outcomes.load(Ordering::Relaxed),
            hangups: ALL_CAUSES
                .iter()
                .map(|&cause| (cause, m.hangups[cause_index(cause)].load(Ordering::Relaxed)))
                .collect(),
            bytes_written: m.bytes_written.load(Ordering::Relaxed),
            bytes_acked: m.bytes_acked.load(Ordering::Relaxed),
        }
    }

    /// Counts an open connection until the guard drops.
    pub(crate) fn connection_opened(&self) -> ConnectionGuard {
        self.inner.open_connections.fetch_add(1, Ordering::Relaxed);
        ConnectionGuard {
            metrics: self.clone(),
        }
    }

    /// Counts a parked connection until the guard drops.
    pub(crate) fn connection_parked(&self) -> ParkedGuard {
        self.inner
            .parked_connections
            .fetch_add(1, Ordering::Relaxed);
        ParkedGuard {
            metrics: self.clone(),
        }
    }

    /// Counts response bytes the kernel accepted.
    pub(crate) fn add_written(&self, bytes: u64) {
        self.inner.bytes_written.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn request_started(&self) {
        self.inner.requests.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn record(&self, outcome: &Outcome) {
        self.record_final(outcome.counters, outcome.hangup.as_ref().map(Hangup::cause));
    }

    /// Counts one final exchange: the same as [`record`](Self::record),
    /// for when nobody wants the outcome record itself. Written bytes are
    /// counted where they are written ([`add_written`](Self::add_written)).
    pub(crate) fn record_final(&self, counters: Counters, hangup: Option<HangupCause>) {
        let m = &self.inner;
        m.outcomes.fetch_add(1, Ordering::Relaxed);
        if let Some(acked) = counters.acked {
            m.bytes_acked.fetch_add(acked, Ordering::Relaxed);
        }
        if let Some(cause) = hangup {
            m.hangups[cause_index(cause)].fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Decrements the open-connection count when dropped.
#[derive(Debug)]
pub(crate) struct ConnectionGuard {
    metrics: Metrics,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.metrics
            .inner
            .open_connections
            .fetch_sub(1, Ordering::Relaxed);
    }
}

/// Counts one parked connection while it lives.
#[derive(Debug)]
pub(crate) struct ParkedGuard {
    metrics: Metrics,
}

impl Drop for ParkedGuard {
    fn drop(&mut self) {
        self.metrics
            .inner
            .parked_connections
            .fetch_sub(1, Ordering::Relaxed);
    }
}
