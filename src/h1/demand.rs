//! Whether a connection's handlers ask for a view of the request head (the
//! header map, the `Uri`) that the parser can build eagerly or leave to the
//! first access.
//!
//! Built eagerly, a view costs the parser the building alone, into the
//! previous request's allocations. Built on first access, it costs a
//! `OnceLock` initialisation on top, and a fresh allocation for the map. So
//! a connection whose handlers ask gets it eagerly; one whose handlers do
//! not never pays for it. A few requests in a row must skip the view before
//! the connection goes back to lazy building, so that a handler asking on
//! some routes only does not make every other ask allocate.

use std::sync::atomic::{AtomicBool, Ordering};

/// How many requests in a row must not ask before the parser stops
/// building the view eagerly.
const EAGER_REQUESTS: u8 = 8;

/// One view's demand on one connection.
#[derive(Debug, Default)]
pub(crate) struct Demand {
    /// The current request's handler asked.
    asked: AtomicBool,
    /// Build eagerly for this many more requests.
    eager_for: u8,
}

impl Demand {
    /// Whether the parser builds the view for the current request.
    pub(crate) fn is_eager(&self) -> bool {
        self.eager_for > 0
    }

    /// The handler asked for the view.
    pub(crate) fn note_ask(&self) {
        self.asked.store(true, Ordering::Relaxed);
    }

    /// The current request is over: decides for the next one.
    pub(crate) fn next_request(&mut self) {
        if std::mem::take(self.asked.get_mut()) {
            self.eager_for = EAGER_REQUESTS;
        } else {
            self.eager_for = self.eager_for.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ask_makes_the_next_requests_eager_until_enough_do_not_ask() {
        let mut demand = Demand::default();
        assert!(!demand.is_eager(), "lazy until a handler asks");
        demand.next_request();
        assert!(!demand.is_eager());
        demand.note_ask();
        demand.next_request();
        for _ in 1..EAGER_REQUESTS {
            assert!(demand.is_eager());
            demand.next_request();
        }
        assert!(demand.is_eager(), "the eighth request without an ask");
        demand.next_request();
        assert!(!demand.is_eager());
        demand.note_ask();
        demand.next_request();
        assert!(demand.is_eager(), "one ask is enough again");
    }
}
