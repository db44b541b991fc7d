//! [`Metrics`]: the server-wide counters, updated as connections come and
//! go and as outcomes become final.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::OwnedSemaphorePermit;

use crate::exchange::hangup::{Counters, HangupCause};

use super::{Cutoff, Departure, DepartureCause, End, Outcome};

/// Server-wide counters. Cheap to clone; read with
/// [`snapshot`](Self::snapshot).
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
    hangups: [AtomicU64; HangupCause::ALL.len()],
    cutoffs: [AtomicU64; Cutoff::ALL.len()],
    departures: [AtomicU64; HangupCause::ALL.len()],
    tls_handshake_failures: AtomicU64,
    tls_handshakes_evicted: AtomicU64,
    proxy_header_refusals: AtomicU64,
    accept_pauses: AtomicU64,
    rejected: AtomicU64,
    bytes_written: AtomicU64,
    bytes_acked: AtomicU64,
}

/// A point-in-time copy of [`Metrics`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
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
    /// Outcomes whose client left before it had the whole response
    /// ([`End::ClientGone`], logged 499), by cause.
    pub hangups: Vec<(HangupCause, u64)>,
    /// Outcomes the server cut short ([`End::CutShort`]), by why.
    pub cutoffs: Vec<(Cutoff, u64)>,
    /// Connections whose client left before its request head was complete
    /// ([`Departure`]): no request, no outcome; by cause.
    pub departures: Vec<(HangupCause, u64)>,
    /// TLS handshakes that failed ([`DepartureCause::TlsHandshake`] and
    /// [`DepartureCause::PlainHttpOnTls`]); clients that hung up or went
    /// silent in their handshake count in `departures`.
    pub tls_handshake_failures: u64,
    /// TLS handshakes closed in progress to make room for a newer one past
    /// `max_tls_handshakes` ([`DepartureCause::HandshakeEvicted`]).
    pub tls_handshakes_evicted: u64,
    /// Connections refused for their PROXY protocol header
    /// ([`DepartureCause::ProxyHeaderRefused`]).
    pub proxy_header_refusals: u64,
    /// Times the server stopped accepting because
    /// [`max_connections`](crate::ConfigBuilder::max_connections) were
    /// open: new connections waited in the kernel's backlog meanwhile.
    pub accept_pauses: u64,
    /// Requests answered with a 4xx or 5xx because their head was
    /// malformed or over a limit.
    pub rejected: u64,
    /// Response bytes the kernel accepted.
    pub bytes_written: u64,
    /// Response bytes the clients' TCP acknowledged, where known.
    pub bytes_acked: u64,
}

impl MetricsSnapshot {
    /// Hang-ups of one cause, in outcomes.
    pub fn hangups_of(&self, cause: HangupCause) -> u64 {
        count_of(&self.hangups, cause)
    }

    /// Responses the server cut short for one reason.
    pub fn cutoffs_of(&self, cutoff: Cutoff) -> u64 {
        count_of(&self.cutoffs, cutoff)
    }

    /// Connections left before their head was complete, for one cause.
    pub fn departures_of(&self, cause: HangupCause) -> u64 {
        count_of(&self.departures, cause)
    }
}

fn count_of<K: PartialEq>(counts: &[(K, u64)], key: K) -> u64 {
    counts
        .iter()
        .find(|(k, _)| *k == key)
        .map_or(0, |(_, n)| *n)
}

fn load(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Metrics {
    /// The counters as they are now.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let m = &self.inner;
        let by = |counters: &[AtomicU64], index: usize| load(&counters[index]);
        MetricsSnapshot {
            open_connections: load(&m.open_connections),
            parked_connections: load(&m.parked_connections),
            requests: load(&m.requests),
            outcomes: load(&m.outcomes),
            hangups: HangupCause::ALL
                .iter()
                .map(|&cause| (cause, by(&m.hangups, cause.index())))
                .collect(),
            cutoffs: Cutoff::ALL
                .iter()
                .map(|&cutoff| (cutoff, by(&m.cutoffs, cutoff.index())))
                .collect(),
            departures: HangupCause::ALL
                .iter()
                .map(|&cause| (cause, by(&m.departures, cause.index())))
                .collect(),
            tls_handshake_failures: load(&m.tls_handshake_failures),
            tls_handshakes_evicted: load(&m.tls_handshakes_evicted),
            proxy_header_refusals: load(&m.proxy_header_refusals),
            accept_pauses: load(&m.accept_pauses),
            rejected: load(&m.rejected),
            bytes_written: load(&m.bytes_written),
            bytes_acked: load(&m.bytes_acked),
        }
    }

    /// Counts an open connection until the guard drops; the guard holds
    /// its slot under `max_connections` as long.
    pub(crate) fn connection_opened(&self, slot: OwnedSemaphorePermit) -> ConnectionGuard {
        bump(&self.inner.open_connections);
        ConnectionGuard {
            metrics: self.clone(),
            _slot: slot,
        }
    }

    /// Counts a parked connection until the guard drops.
    pub(crate) fn connection_parked(&self) -> ParkedGuard {
        bump(&self.inner.parked_connections);
        ParkedGuard {
            metrics: self.clone(),
        }
    }

    /// Counts response bytes the kernel accepted.
    pub(crate) fn add_written(&self, bytes: u64) {
        self.inner.bytes_written.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn request_started(&self) {
        bump(&self.inner.requests);
    }

    pub(crate) fn request_rejected(&self) {
        bump(&self.inner.rejected);
    }

    pub(crate) fn departed(&self, departure: &Departure) {
        match &departure.cause {
            DepartureCause::Left(cause) => bump(&self.inner.departures[cause.index()]),
            DepartureCause::TlsHandshake(_) | DepartureCause::PlainHttpOnTls => {
                bump(&self.inner.tls_handshake_failures);
            }
            DepartureCause::ProxyHeaderRefused(_) => bump(&self.inner.proxy_header_refusals),
            DepartureCause::HandshakeEvicted => bump(&self.inner.tls_handshakes_evicted),
        }
    }

    pub(crate) fn accept_paused(&self) {
        bump(&self.inner.accept_pauses);
    }

    pub(crate) fn record(&self, outcome: &Outcome) {
        self.record_final(outcome.counters, &outcome.end);
    }

    /// Counts one final exchange: the same as [`record`](Self::record),
    /// for when nobody wants the outcome record itself. Written bytes are
    /// counted where they are written ([`add_written`](Self::add_written)).
    pub(crate) fn record_final(&self, counters: Counters, end: &End) {
        let m = &self.inner;
        bump(&m.outcomes);
        if let Some(acked) = counters.acked {
            m.bytes_acked.fetch_add(acked, Ordering::Relaxed);
        }
        match end {
            End::Complete => {}
            End::ClientGone(hangup) => bump(&m.hangups[hangup.cause().index()]),
            End::CutShort(cutoff) => bump(&m.cutoffs[cutoff.index()]),
        }
    }
}

/// Decrements the open-connection count when dropped.
#[derive(Debug)]
pub(crate) struct ConnectionGuard {
    metrics: Metrics,
    /// Released when the connection closes (parked or not), letting the
    /// accept loop take another.
    _slot: OwnedSemaphorePermit,
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
