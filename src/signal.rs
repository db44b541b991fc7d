//! [`HangupSignal`]: a request's hang-up, as a handle that can travel.
//!
//! A handler owns its [`Request`](crate::Request), and a tower service gets
//! an `http::Request` that carries no hangup type at all; both need a way
//! to learn that the client left which they can clone, move into a task or
//! a body stream, and await. This is it: a handle to the exchange it came
//! from, cheap to clone, `Send + Sync`. Tower services find one in every
//! request's extensions (next to a `CancellationToken`).

use std::fmt;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::exchange::hangup::Hangup;
use crate::exchange::{OnFin, OnHangup};
use crate::h1::link::Link;

/// A handle to one request's hang-up: see the module docs.
///
/// A handle that outlives its request (kept in a task after the response
/// ended) no longer sees hang-ups: [`hung_up`](Self::hung_up) then stays
/// pending, [`hangup`](Self::hangup) returns `None`, its token is
/// cancelled, and setting a policy does nothing. It shares the
/// connection's state, so it keeps that memory (and, for an upgraded
/// connection, its socket and its slot under `max_connections`) until it
/// is dropped: keep it no longer than the work it watches.
#[derive(Clone)]
pub struct HangupSignal {
    link: Arc<Link>,
    generation: u64,
}

impl HangupSignal {
    pub(crate) fn new(link: Arc<Link>, generation: u64) -> Self {
        HangupSignal { link, generation }
    }

    /// Resolves when the client hangs up: closes its side (a FIN, unless
    /// [`OnFin::Ignore`]), resets, or stops reading. Pending for ever if it
    /// never does.
    pub async fn hung_up(&self) -> Hangup {
        self.link.exchange.hung_up(self.generation).await
    }

    /// Resolves when the client is gone for good: a reset, a failed or
    /// stalled write, or a FIN under [`OnFin::Abort`]. A FIN under
    /// [`OnFin::Notify`] does not resolve it (the client may still read).
    /// What a response body streaming to the client waits on.
    pub async fn gone(&self) -> Hangup {
        self.link.exchange.gone(self.generation).await
    }

    /// The hang-up so far, without waiting.
    pub fn hangup(&self) -> Option<Hangup> {
        self.link.exchange.hangup(self.generation)
    }

    /// A token cancelled when the client hangs up (as
    /// [`hung_up`](Self::hung_up) resolves).
    pub fn cancellation_token(&self) -> CancellationToken {
        self.link.exchange.token(self.generation)
    }

    /// Overrides the server's [`OnFin`] policy for this request, for a FIN
    /// noticed from now on; [`OnFin::Abort`] after a FIN was reported makes
    /// the client gone now.
    pub fn set_on_fin(&self, policy: OnFin) {
        if self.is_current() {
            let link = &self.link;
            link.exchange.set_on_fin(policy, &link.transport);
        }
    }

    /// Overrides the server's [`OnHangup`] policy for this request: with
    /// [`OnHangup::Cancel`] the handler (or the tower service's future) is
    /// dropped as soon as its client is known gone.
    pub fn set_on_hangup(&self, policy: OnHangup) {
        if self.is_current() {
            self.link.exchange.set_on_hangup(policy);
        }
    }

    fn is_current(&self) -> bool {
        self.link.exchange.generation() == self.generation
    }
}

impl fmt::Debug for HangupSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HangupSignal")
            .field("hangup", &self.hangup())
            .finish()
    }
}
