//! [`HeadBudget`]: the memory that request heads still arriving may hold,
//! server-wide.
//!
//! Each connection may hold `max_head_bytes` of a head, so a flood of
//! connections that each send most of a large head and stop could hold
//! `max_connections` × `max_head_bytes` (20,000 × 64 KiB: 1.3 GB). The
//! budget caps that whatever the per-connection limit: a head that fits
//! the first read of a request ([`FREE_HEAD_BYTES`], most heads) costs
//! nothing against it; a connection whose read buffer must grow past that
//! while its head is still arriving claims the excess first, and is
//! refused with a 431 when the budget is spent. The flood's connections
//! keep what they claimed until their `header_read_timeout` closes them;
//! meanwhile small heads are served as ever. A claim is given back when
//! the connection frees its buffers (idle, or closed), so a connection
//! that received a large head keeps its claim while it is busy: the
//! buffer is still allocated.
//!
//! Bound: `max_connections` × [`FREE_HEAD_BYTES`] + the budget.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Read-buffer bytes any connection may hold for a head without claiming
/// from the budget: the first read's reservation
/// (`IDLE_READ_RESERVE_BYTES`).
pub(crate) const FREE_HEAD_BYTES: usize = 1024;

/// The server-wide budget.
#[derive(Debug)]
pub(crate) struct HeadBudget {
    limit: usize,
    held: AtomicUsize,
}

impl HeadBudget {
    pub(crate) fn new(limit: usize) -> Self {
        HeadBudget {
            limit,
            held: AtomicUsize::new(0),
        }
    }

    /// Bytes claimed now, by every connection.
    #[cfg(test)]
    fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }
}

/// One connection's claim on the budget; given back when dropped.
#[derive(Debug)]
pub(crate) struct HeadClaim {
    budget: Arc<HeadBudget>,
    bytes: usize,
}

impl HeadClaim {
    pub(crate) fn new(budget: Arc<HeadBudget>) -> Self {
        HeadClaim { budget, bytes: 0 }
    }

    /// Makes the claim cover a read buffer of `capacity` bytes (what
    /// exceeds [`FREE_HEAD_BYTES`]). False, with the claim unchanged, when
    /// growing it would pass the budget.
    pub(crate) fn cover(&mut self, capacity: usize) -> bool {
        let wanted = capacity.saturating_sub(FREE_HEAD_BYTES);
        let held = &self.budget.held;
        if wanted <= self.bytes {
            held.fetch_sub(self.bytes - wanted, Ordering::Relaxed);
            self.bytes = wanted;
            return true;
        }
        let more = wanted - self.bytes;
        let claimed = held.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |now| {
            now.checked_add(more)
                .filter(|&total| total <= self.budget.limit)
        });
        if claimed.is_ok() {
            self.bytes = wanted;
        }
        claimed.is_ok()
    }
}

impl Drop for HeadClaim {
    fn drop(&mut self) {
        self.budget.held.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_share_the_budget_and_come_back() {
        let budget = Arc::new(HeadBudget::new(10_000));
        let mut a = HeadClaim::new(budget.clone());
        let mut b = HeadClaim::new(budget.clone());
        assert!(a.cover(FREE_HEAD_BYTES), "the free part claims nothing");
        assert_eq!(budget.held(), 0);
        assert!(a.cover(FREE_HEAD_BYTES + 6_000));
        assert!(!b.cover(FREE_HEAD_BYTES + 5_000), "6,000 + 5,000 > 10,000");
        assert_eq!(budget.held(), 6_000);
        assert!(b.cover(FREE_HEAD_BYTES + 4_000));
        assert_eq!(budget.held(), 10_000);
        assert!(a.cover(0), "shrinking always succeeds");
        assert_eq!(budget.held(), 4_000);
        drop(b);
        assert_eq!(budget.held(), 0);
    }
}
