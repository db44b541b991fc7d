//! What a connection shares with the handler of its current exchange: the
//! socket, the settings, the hang-up signal, and the return slots through
//! which the response writer and the request body come back.
//!
//! A handler owns its [`Request`](crate::Request) and
//! [`ResponseWriter`](crate::ResponseWriter) by value. Their state (read
//! buffer, body decoder, output buffer, framing) belongs to the connection,
//! so each lends its state out and puts it back into a [`Slot`] when
//! dropped. The connection waits for both before it finishes the response.
//! No allocation per request: the slots live as long as the connection, and
//! the states travel boxed ([`Home`]), so lending one moves a pointer, not
//! a few hundred bytes.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};

use tokio::sync::Notify;

use crate::config::{Config, OnFin, OnHangup};
use crate::disconnect::Signal;
use crate::outcome::Metrics;
use crate::sys::AtomicBox;
use crate::transport::Transport;

/// Connection state shared with the current exchange's handler.
#[derive(Debug)]
pub(crate) struct Shared {
    pub transport: Transport,
    /// The server's settings, shared by all its connections.
    pub config: Arc<Config>,
    /// The server's counters; bytes written are counted as they are
    /// written.
    pub metrics: Metrics,
    pub signal: Signal,
    pub writer_slot: Slot<crate::response::WriterState>,
    pub body_slot: Slot<crate::body::BodyState>,
    /// The `Expect: 100-continue` state of the current request.
    expect: AtomicU8,
    /// The hang-up policies in force for the current exchange: the
    /// server's, unless the handler overrode them.
    on_fin: AtomicU8,
    on_hangup: AtomicU8,
    /// Bytes of an interim response (`100 Continue`) written for the
    /// current exchange by the body reader, outside the writer; the writer
    /// counts them as part of the response.
    interim_written: AtomicU64,
}

/// Where the current request stands with `Expect: 100-continue`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expect {
    /// Nothing to send.
    Nothing,
    /// The client waits for `100 Continue` before sending its body.
    Pending,
    /// `100 Continue` was sent.
    Sent,
    /// The final response head was committed first: a `100` must not follow.
    Skipped,
}

impl Expect {
    fn from_u8(value: u8) -> Self {
        match value {
            1 => Expect::Pending,
            2 => Expect::Sent,
            3 => Expect::Skipped,
            _ => Expect::Nothing,
        }
    }
}

impl Shared {
    /// Gives the transport back once nothing else shares the connection.
    pub(crate) fn into_transport(self) -> Transport {
        self.transport
    }

    pub(crate) fn new(transport: Transport, config: Arc<Config>, metrics: Metrics) -> Self {
        Shared {
            transport,
            metrics,
            signal: Signal::default(),
            writer_slot: Slot::default(),
            body_slot: Slot::default(),
            expect: AtomicU8::new(Expect::Nothing as u8),
            on_fin: AtomicU8::new(config.on_fin.to_u8()),
            on_hangup: AtomicU8::new(config.on_hangup.to_u8()),
            interim_written: AtomicU64::new(0),
            config,
        }
    }

    /// Starts an exchange: the server's hang-up policies, no interim bytes.
    pub(crate) fn reset_exchange(&self) {
        self.set_on_fin(self.config.on_fin);
        self.set_on_hangup(self.config.on_hangup);
        self.interim_written.store(0, Ordering::Relaxed);
    }

    /// Counts bytes of an interim response the body reader wrote.
    pub(crate) fn add_interim_written(&self, bytes: u64) {
        self.interim_written.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Interim-response bytes written for the current exchange so far.
    pub(crate) fn interim_written(&self) -> u64 {
        self.interim_written.load(Ordering::Relaxed)
    }

    pub(crate) fn on_fin(&self) -> OnFin {
        OnFin::from_u8(self.on_fin.load(Ordering::Acquire))
    }

    pub(crate) fn set_on_fin(&self, policy: OnFin) {
        self.on_fin.store(policy.to_u8(), Ordering::Release);
    }

    pub(crate) fn on_hangup(&self) -> OnHangup {
        OnHangup::from_u8(self.on_hangup.load(Ordering::Acquire))
    }

    pub(crate) fn set_on_hangup(&self, policy: OnHangup) {
        self.on_hangup.store(policy.to_u8(), Ordering::Release);
    }

    pub(crate) fn expect(&self) -> Expect {
        Expect::from_u8(self.expect.load(Ordering::Acquire))
    }

    pub(crate) fn set_expect(&self, state: Expect) {
        self.expect.store(state as u8, Ordering::Release);
    }

    /// Moves `Pending` to `to`; false if the state was anything else.
    pub(crate) fn resolve_expect(&self, to: Expect) -> bool {
        // A plain load first: most requests expect nothing, and a failed
        // compare-exchange still costs a locked instruction.
        if self.expect() != Expect::Pending {
            return false;
        }
        self.expect
            .compare_exchange(
                Expect::Pending as u8,
                to as u8,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }
}

/// A boxed value lent to the handler, handed back when the borrower is
/// dropped: an atomic swap each way (see [`AtomicBox`]). The borrower wakes
/// the connection only if it is waiting: usually the handler has dropped
/// the borrower before the connection looks, and no wake-up is needed.
#[derive(Debug)]
pub(crate) struct Slot<T> {
    value: AtomicBox<T>,
    /// The connection found the slot empty and waits on `returned`.
    waiting: AtomicBool,
    returned: Notify,
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Slot {
            value: AtomicBox::default(),
            waiting: AtomicBool::new(false),
            returned: Notify::new(),
        }
    }
}

impl<T> Slot<T> {
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
    use std::time::Duration;

    #[tokio::test]
    async fn a_slot_returns_a_value_put_before_or_while_it_is_awaited() {
        let slot = Arc::new(Slot::<u32>::default());
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
    async fn a_slot_never_loses_a_put_that_races_the_wait() {
        use std::sync::atomic::AtomicU32;
        const ROUNDS: u32 = 10_000;
        let slot = Arc::new(Slot::<u32>::default());
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
