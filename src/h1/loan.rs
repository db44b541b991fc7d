//! Loans: a connection lends its read state to the handler's `Body` and
//! its response state to the `ResponseWriter`, by value, and gets each
//! back when the borrower is dropped.
//!
//! A handler owns its [`Request`](crate::Request) and
//! [`ResponseWriter`](crate::ResponseWriter) by value, yet their state
//! (read buffer, body decoder, output buffer, framing) belongs to the
//! connection, which serves the next request with it. Each state travels
//! boxed ([`Home`]), so lending it moves a pointer, not a few hundred
//! bytes, and comes back through a [`Dropbox`] that lives as long as the
//! connection: no allocation per request.
//!
//! The drop-off is one atomic pointer swap ([`AtomicBox`], the crate's one
//! `unsafe` type besides raw syscalls) rather than a mutex: measured at
//! 16d85a3, the swaps took 147 user-space instructions and 4 locked ones
//! off each pipelined request (4 % of it, bench/RESULTS.md), which the
//! pipelined target needs.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

use crate::sys::AtomicBox;

/// Where a lent state comes back: the borrower drops it off when it is
/// dropped, with one atomic swap (see [`AtomicBox`]). The borrower wakes
/// the connection only if it is waiting: usually the handler has dropped
/// the borrower before the connection looks, and no wake-up is needed.
#[derive(Debug)]
pub(crate) struct Dropbox<T> {
    value: AtomicBox<T>,
    /// The connection found the slot empty and waits on `returned`.
    waiting: AtomicBool,
    returned: Notify,
}

impl<T> Default for Dropbox<T> {
    fn default() -> Self {
        Dropbox {
            value: AtomicBox::default(),
            waiting: AtomicBool::new(false),
            returned: Notify::new(),
        }
    }
}

impl<T> Dropbox<T> {
    /// Hands the value back (called from the borrower's `Drop`).
    pub(crate) fn put(&self, value: Box<T>) {
        let previous = self.value.swap(Some(value));
        debug_assert!(previous.is_none(), "a slot is filled once per loan");
        // Sequentially consistent with the swaps and with `take`'s store: if
        // `take` found the slot empty, either its second look finds the
        // value or this load sees `waiting` (and wakes it).
        if self.waiting.load(Ordering::SeqCst) {
            self.returned.notify_one();
        }
    }

    /// True when a value was dropped off and not yet taken.
    pub(crate) fn is_full(&self) -> bool {
        self.value.is_full()
    }

    /// Waits until the value is back. `notify_one` stores a permit, so a
    /// wake-up between the second look and the wait is not missed; a
    /// stale permit only costs one more look.
    pub(crate) async fn take(&self) -> Box<T> {
        loop {
            if let Some(value) = self.value.take() {
                return value;
            }
            self.waiting.store(true, Ordering::SeqCst);
            let value = self.value.take();
            if value.is_none() {
                self.returned.notified().await;
            }
            // Only this side writes `waiting`: a borrower that reads a
            // stale `true` wakes nobody in particular, harmlessly.
            self.waiting.store(false, Ordering::Relaxed);
            if let Some(value) = value {
                return value;
            }
        }
    }
}

/// A boxed state with one owner at a time: the connection between
/// exchanges, the handler's [`Request`](crate::Request) or
/// [`ResponseWriter`](crate::ResponseWriter) during one. Dereferences to
/// the state; using it while it is lent out is a bug in this crate, and
/// panics.
#[derive(Debug)]
pub(crate) struct Home<T>(Option<Box<T>>);

const LENT: &str = "connection state used while lent to the handler";

impl<T> Home<T> {
    pub(crate) fn new(state: Box<T>) -> Self {
        Home(Some(state))
    }

    /// Hands the state out; the home is empty until [`restore`](Self::restore).
    pub(crate) fn lend(&mut self) -> Box<T> {
        self.0.take().expect(LENT)
    }

    /// True while the state is here, not lent.
    pub(crate) fn is_home(&self) -> bool {
        self.0.is_some()
    }

    /// Takes the state back.
    pub(crate) fn restore(&mut self, state: Box<T>) {
        debug_assert!(self.0.is_none(), "restored twice");
        self.0 = Some(state);
    }
}

impl<T> Deref for Home<T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.0.as_deref().expect(LENT)
    }
}

impl<T> DerefMut for Home<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.0.as_deref_mut().expect(LENT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn a_dropbox_returns_a_value_put_before_or_while_it_is_awaited() {
        let slot = Arc::new(Dropbox::<u32>::default());
        slot.put(Box::new(1));
        assert_eq!(*slot.take().await, 1, "put before the take");
        for value in 2..6 {
            let putter = {
                let slot = slot.clone();
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(5));
                    slot.put(Box::new(value));
                })
            };
            let taken = tokio::time::timeout(Duration::from_secs(5), slot.take())
                .await
                .expect("the waiting taker is woken");
            assert_eq!(*taken, value);
            putter.join().unwrap();
        }
    }

    /// Puts racing the taker's two looks and its wait, many times: a lost
    /// wake-up would hang one `take` (caught by the timeout). The putter
    /// spins on a ticket rather than sleeping, so that its put lands at
    /// every point of the taker's path, the narrow one between the two
    /// looks included.
    #[tokio::test]
    async fn a_dropbox_never_loses_a_put_that_races_the_wait() {
        use std::sync::atomic::AtomicU32;
        const ROUNDS: u32 = 10_000;
        let slot = Arc::new(Dropbox::<u32>::default());
        let ticket = Arc::new(AtomicU32::new(0));
        let putter = {
            let (slot, ticket) = (slot.clone(), ticket.clone());
            std::thread::spawn(move || {
                let give_up = std::time::Instant::now() + Duration::from_secs(30);
                for value in 1..=ROUNDS {
                    let mut spins = 0u32;
                    while ticket.load(Ordering::Acquire) != value {
                        spins += 1;
                        if spins % 64 == 0 {
                            // Leave the core to the taker (and to other
                            // tests) now and then.
                            if std::time::Instant::now() > give_up {
                                return;
                            }
                            std::thread::yield_now();
                        }
                        std::hint::spin_loop();
                    }
                    for _ in 0..(value.wrapping_mul(2_654_435_761) >> 26) {
                        std::hint::spin_loop();
                    }
                    slot.put(Box::new(value));
                }
            })
        };
        for value in 1..=ROUNDS {
            ticket.store(value, Ordering::Release);
            let taken = tokio::time::timeout(Duration::from_secs(5), slot.take())
                .await
                .expect("a put is never lost");
            assert_eq!(*taken, value);
        }
        putter.join().unwrap();
    }
}
