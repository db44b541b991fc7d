//! [`Link`]: what an HTTP/1 connection shares with the handler of its
//! current exchange: the transport, the [`Exchange`], the settings, the
//! metrics, the drop boxes through which the lent states come back, and
//! the rules for taking turns at the socket's write side.
//!
//! # Turns at the socket
//!
//! Three parties write response bytes to one socket, and their bytes must
//! never interleave:
//!
//! 1. the connection, with finished responses it *holds back* so that a
//!    pipelined batch goes out in one write ([`Link::hold_back`]); they
//!    precede everything of the current exchange;
//! 2. the body reader, with a `100 Continue` it sends the first time the
//!    handler reads a body the client is waiting to send;
//! 3. the response writer, with the final response.
//!
//! The writer and the body reader wait for their turn
//! ([`Link::write_turn`]) while held-back bytes are unsent; the connection
//! sends them as soon as the handler yields (its future returns
//! `Pending`), or when the handler returns. A `100 Continue` is claimed
//! ([`Expect::Sending`]) before its first byte and released when its last
//! byte is out, and the writer waits for it; once the writer commits the
//! final head, no `100` may start ([`Expect::Skipped`]).

use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};

use crate::config::Config;
use crate::exchange::Exchange;
use crate::outcome::{ConnectionGuard, Metrics};
use crate::shutdown::Shutdown;
use crate::transport::Transport;

use super::input::Input;
use super::loan::Dropbox;
use super::output::Output;

/// Connection state shared with the current exchange's handler.
#[derive(Debug)]
pub(crate) struct Link {
    pub transport: Transport,
    /// The current exchange's truth.
    pub exchange: Exchange,
    /// The server's settings, shared by all its connections.
    pub config: Arc<Config>,
    /// The server's counters; bytes written are counted as they are
    /// written.
    pub metrics: Metrics,
    /// The server's shutdown: a response committed once it began says
    /// the connection closes.
    pub shutdown: Shutdown,
    /// Where the `ResponseWriter` leaves the response state.
    pub output_return: Dropbox<Output>,
    /// Where the `Body` leaves the read state.
    pub input_return: Dropbox<Input>,
    /// The `Expect: 100-continue` state of the current request.
    expect: AtomicU8,
    /// The connection holds finished responses back, unsent: the current
    /// exchange must not write before they are out.
    held_back: AtomicBool,
    /// A writer or body reader registered a waker in `wakers`.
    waiting: AtomicBool,
    /// The connection gave up on a request body a task kept past
    /// `body_read_timeout`, and closed.
    abandoned: AtomicBool,
    /// The handler took the connection after `101 Switching Protocols`.
    upgraded: AtomicBool,
    /// An upgraded connection's place among the open connections and its
    /// slot under `max_connections`, given up by the connection task when
    /// it ends at the upgrade: the socket lives on in this link (with the
    /// handler's [`Upgraded`](crate::Upgraded)), and goes with it.
    upgraded_slot: OnceLock<ConnectionGuard>,
    wakers: Mutex<TurnWakers>,
}

/// Where the current request stands with `Expect: 100-continue`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Expect {
    /// Nothing to send.
    Nothing = 0,
    /// The client waits for `100 Continue` before sending its body.
    Pending = 1,
    /// The body reader is writing `100 Continue`: the writer waits.
    Sending = 2,
    /// `100 Continue` was sent.
    Sent = 3,
    /// The final response head was committed first: a `100` must not follow.
    Skipped = 4,
}

impl Expect {
    fn from_u8(value: u8) -> Self {
        match value {
            1 => Expect::Pending,
            2 => Expect::Sending,
            3 => Expect::Sent,
            4 => Expect::Skipped,
            _ => Expect::Nothing,
        }
    }
}

impl Link {
    pub(crate) fn new(
        transport: Transport,
        config: Arc<Config>,
        metrics: Metrics,
        shutdown: Shutdown,
    ) -> Self {
        Link {
            transport,
            exchange: Exchange::new(),
            config,
            metrics,
            shutdown,
            output_return: Dropbox::default(),
            input_return: Dropbox::default(),
            expect: AtomicU8::new(Expect::Nothing as u8),
            held_back: AtomicBool::new(false),
            waiting: AtomicBool::new(false),
            abandoned: AtomicBool::new(false),
            upgraded: AtomicBool::new(false),
            upgraded_slot: OnceLock::new(),
            wakers: Mutex::new(TurnWakers::default()),
        }
    }

    /// Gives the transport back once nothing else shares the connection.
    pub(crate) fn into_transport(self) -> Transport {
        self.transport
    }

    pub(crate) fn expect(&self) -> Expect {
        Expect::from_u8(self.expect.load(Ordering::Acquire))
    }

    /// Sets the state for a new request (only the connection does).
    pub(crate) fn set_expect(&self, state: Expect) {
        self.expect.store(state as u8, Ordering::Release);
    }

    /// Moves the state from `from` to `to`; false if it was anything else.
    pub(crate) fn move_expect(&self, from: Expect, to: Expect) -> bool {
        // A plain load first: most requests expect nothing, and a failed
        // compare-exchange still costs a locked instruction.
        if self.expect() != from {
            return false;
        }
        let moved = self
            .expect
            .compare_exchange(from as u8, to as u8, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if moved && from == Expect::Sending {
            // The compare-exchange was a full barrier: `waiting` is current.
            self.wake_waiters();
        }
        moved
    }

    /// Marks the connection closed under a body a task kept too long: the
    /// body's reads fail from now on.
    pub(crate) fn abandon(&self) {
        self.abandoned.store(true, Ordering::Release);
    }

    /// True once [`abandon`](Self::abandon) was called.
    pub(crate) fn is_abandoned(&self) -> bool {
        self.abandoned.load(Ordering::Acquire)
    }

    /// Marks the connection taken over by an upgrade: no more HTTP on it.
    pub(crate) fn mark_upgraded(&self) {
        self.upgraded.store(true, Ordering::Release);
    }

    /// True once the handler took the connection after a `101`.
    pub(crate) fn is_upgraded(&self) -> bool {
        self.upgraded.load(Ordering::Acquire)
    }

    /// Keeps the upgraded connection's `slot` for as long as the link
    /// lives, that is, until the handler drops the upgraded socket (and
    /// any handle of its request).
    pub(crate) fn keep_upgraded_slot(&self, slot: ConnectionGuard) {
        debug_assert!(self.is_upgraded());
        let kept = self.upgraded_slot.set(slot);
        debug_assert!(
            kept.is_ok(),
            "an upgraded connection's slot handed over twice"
        );
    }

    /// Marks that the connection holds finished responses back: the
    /// current exchange must not write until [`release`](Self::release).
    pub(crate) fn hold_back(&self) {
        self.held_back.store(true, Ordering::Release);
    }

    /// The held-back responses are out (or the exchange is over). With
    /// `wake`, a writer or body reader waiting for its turn is woken: pass
    /// it unless both are known to be home (then nobody can wait, and the
    /// barrier the wake-up check needs is saved).
    pub(crate) fn release(&self, wake: bool) {
        if !wake {
            self.held_back.store(false, Ordering::Relaxed);
            return;
        }
        // Sequentially consistent with the waiter's flag: either it sees
        // the release, or this sees it waiting (see `poll_write_turn`).
        self.held_back.store(false, Ordering::SeqCst);
        self.wake_waiters();
    }

    /// Whether `party` may write now; if not, `cx` is woken when that may
    /// have changed.
    pub(crate) fn poll_write_turn(&self, cx: &mut Context<'_>, party: Party) -> Poll<()> {
        if self.may_write(party) {
            return Poll::Ready(());
        }
        {
            let mut wakers = self.lock_wakers();
            let slot = match party {
                Party::Interim => &mut wakers.interim,
                Party::Response | Party::Connection => &mut wakers.response,
            };
            *slot = Some(cx.waker().clone());
        }
        self.waiting.store(true, Ordering::SeqCst);
        // Looked at again after the flag is up: a release in between either
        // saw the flag (and wakes us) or is seen here.
        if self.may_write(party) {
            return Poll::Ready(());
        }
        Poll::Pending
    }

    /// Waits until `party` may write.
    pub(crate) async fn write_turn(&self, party: Party) {
        poll_fn(|cx| self.poll_write_turn(cx, party)).await;
    }

    /// Whether `party` may write now (see the module docs).
    #[inline]
    pub(crate) fn may_write(&self, party: Party) -> bool {
        // SeqCst: the second look in `poll_write_turn` pairs with the
        // releases' stores (on x86 a load is a plain load either way).
        let held = party != Party::Connection && self.held_back.load(Ordering::SeqCst);
        let interim = party != Party::Interim && self.expect() == Expect::Sending;
        !held && !interim
    }

    fn wake_waiters(&self) {
        if !self.waiting.swap(false, Ordering::SeqCst) {
            return;
        }
        let (interim, response) = {
            let mut wakers = self.lock_wakers();
            (wakers.interim.take(), wakers.response.take())
        };
        for waker in [interim, response].into_iter().flatten() {
            waker.wake();
        }
    }

    fn lock_wakers(&self) -> std::sync::MutexGuard<'_, TurnWakers> {
        // Only wakers are stored under the lock: poisoning cannot leave them
        // inconsistent.
        self.wakers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The tasks waiting for their turn at the socket's write side.
#[derive(Debug, Default)]
struct TurnWakers {
    interim: Option<Waker>,
    response: Option<Waker>,
}

/// Who wants to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Party {
    /// The connection, with held-back responses (and the current one
    /// behind them): waits only for a `100 Continue` in progress.
    Connection,
    /// The body reader, with a `100 Continue`: waits for held-back
    /// responses.
    Interim,
    /// The handler's writer: waits for both.
    Response,
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use super::*;

    /// A link over a real loopback connection (nothing is sent).
    async fn link() -> (Link, tokio::net::TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, remote) = listener.accept().await.unwrap();
        let transport = Transport::new(server, remote).unwrap();
        let link = Link::new(
            transport,
            Arc::default(),
            Metrics::default(),
            Shutdown::default(),
        );
        (link, client)
    }

    /// Polls once with a waker that does nothing.
    fn poll_once(future: impl Future<Output = ()>) -> Poll<()> {
        pin!(future).poll(&mut Context::from_waker(Waker::noop()))
    }

    #[tokio::test]
    async fn a_100_continue_in_progress_keeps_the_writer_and_the_final_head_waiting() {
        let (link, _client) = link().await;
        link.set_expect(Expect::Pending);
        assert!(
            link.move_expect(Expect::Pending, Expect::Sending),
            "the body claims"
        );
        assert!(poll_once(link.write_turn(Party::Response)).is_pending());
        assert!(poll_once(link.write_turn(Party::Connection)).is_pending());
        assert!(poll_once(link.write_turn(Party::Interim)).is_ready());
        // The writer commits meanwhile: it cannot skip a 100 begun.
        assert!(!link.move_expect(Expect::Pending, Expect::Skipped));
        assert!(link.move_expect(Expect::Sending, Expect::Sent));
        assert!(poll_once(link.write_turn(Party::Response)).is_ready());
        // Once the final head is committed, no 100 can start.
        link.set_expect(Expect::Pending);
        assert!(link.move_expect(Expect::Pending, Expect::Skipped));
        assert!(!link.move_expect(Expect::Pending, Expect::Sending));
    }

    #[tokio::test]
    async fn held_back_responses_go_before_the_exchange_s_own_bytes() {
        let (link, _client) = link().await;
        link.hold_back();
        assert!(poll_once(link.write_turn(Party::Response)).is_pending());
        assert!(poll_once(link.write_turn(Party::Interim)).is_pending());
        assert!(poll_once(link.write_turn(Party::Connection)).is_ready());
        // A waiter in another task is woken by the release.
        let waiter = {
            let link = Arc::new(link);
            let waiting = link.clone();
            let task = tokio::spawn(async move { waiting.write_turn(Party::Response).await });
            tokio::task::yield_now().await;
            assert!(!task.is_finished());
            link.release(true);
            task
        };
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("woken by the release")
            .unwrap();
    }
}
