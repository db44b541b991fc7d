//! The cap on TLS handshakes in progress (`max_tls_handshakes`).
//!
//! A handshake in progress holds the server's memory for its session,
//! and, while it waits for its client, nothing else. Were a full cap to
//! stop the server accepting, a client that opens connections and stalls
//! their handshakes (13 a second against the default cap of 128 and the
//! 10 s `tls_handshake_timeout`) would lock every other TLS client out.
//! So a new connection never waits for a slot: past the cap, the *oldest*
//! handshake in progress is evicted (it ends as a
//! [`DepartureCause::HandshakeEvicted`](crate::DepartureCause::HandshakeEvicted)
//! departure), and the new one takes its place. A client that completes
//! its handshake within its round trips is evicted only by a flood that
//! opens `max_tls_handshakes` connections faster than that. A place is
//! taken when the handshake begins: a connection still awaiting its PROXY
//! protocol header is in no handshake yet.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

/// The handshakes in progress, oldest first.
#[derive(Debug)]
pub(crate) struct Handshakes {
    cap: usize,
    next_id: AtomicU64,
    in_progress: Mutex<VecDeque<Entry>>,
}

#[derive(Debug)]
struct Entry {
    id: u64,
    evict: Arc<Notify>,
}

impl Handshakes {
    /// At most `cap` (at least 1) handshakes in progress.
    pub(crate) fn new(cap: usize) -> Arc<Self> {
        Arc::new(Handshakes {
            cap: cap.max(1),
            next_id: AtomicU64::new(0),
            in_progress: Mutex::new(VecDeque::new()),
        })
    }

    /// A place for a new handshake; evicts the oldest one in progress if
    /// the cap is reached.
    pub(crate) fn enter(self: &Arc<Self>) -> HandshakeSlot {
        let evict = Arc::new(Notify::new());
        let mut in_progress = self.lock();
        // Taken under the lock: ids increase from front to back.
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if in_progress.len() >= self.cap {
            if let Some(oldest) = in_progress.pop_front() {
                // Stored if the handshake is not waiting yet: it will see
                // it at its next look.
                oldest.evict.notify_one();
            }
        }
        in_progress.push_back(Entry {
            id,
            evict: evict.clone(),
        });
        HandshakeSlot {
            handshakes: self.clone(),
            id,
            evict,
        }
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<Entry>> {
        // Nothing that can panic runs under the lock.
        self.in_progress
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// One handshake's place under the cap, given back when dropped (its
/// handshake ended, whichever way).
#[derive(Debug)]
pub(crate) struct HandshakeSlot {
    handshakes: Arc<Handshakes>,
    id: u64,
    evict: Arc<Notify>,
}

impl HandshakeSlot {
    /// Resolves when a newer handshake took this one's place.
    pub(crate) async fn evicted(&self) {
        self.evict.notified().await;
    }
}

impl Drop for HandshakeSlot {
    fn drop(&mut self) {
        let mut in_progress = self.handshakes.lock();
        // Gone already if evicted. The ids are in order: a binary search,
        // not a scan of up to `max_tls_handshakes` entries under the lock.
        if let Ok(at) = in_progress.binary_search_by_key(&self.id, |entry| entry.id) {
            in_progress.remove(at);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use super::*;

    fn is_evicted(slot: &HandshakeSlot) -> bool {
        let evicted = pin!(slot.evicted());
        matches!(
            evicted.poll(&mut Context::from_waker(Waker::noop())),
            Poll::Ready(())
        )
    }

    #[test]
    fn past_the_cap_the_oldest_is_evicted_and_ended_ones_free_their_place() {
        let handshakes = Handshakes::new(2);
        let first = handshakes.enter();
        let second = handshakes.enter();
        assert!(!is_evicted(&first) && !is_evicted(&second));
        let third = handshakes.enter();
        assert!(is_evicted(&first), "the oldest makes room");
        assert!(!is_evicted(&second) && !is_evicted(&third));
        drop(first);
        drop(third);
        // One in progress (the second): a new one evicts nobody.
        let fourth = handshakes.enter();
        assert!(!is_evicted(&second) && !is_evicted(&fourth));
        let _fifth = handshakes.enter();
        assert!(is_evicted(&second), "now the second is the oldest");
        assert!(!is_evicted(&fourth));
    }
}
