//! Hang-up accounting: the one place that maps an `io::Error` to a
//! [`HangupCause`], and the per-exchange [`Signal`] through which the
//! connection tells a handler its client left.
//!
//! The signal has two levels, matching DESIGN.md's two kinds of hang-up:
//! *notified* (the handler's [`hung_up`](crate::Request::hung_up) future and
//! cancellation token fire) and *gone* (every later write fails at once with
//! [`Error::ClientGone`](crate::Error::ClientGone)). A FIN under
//! [`OnFin::Notify`](crate::OnFin::Notify) only notifies; an RST, a failed
//! write or a timeout does both.

use std::io;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::time::Instant;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::error::{Counters, Detection, Hangup, HangupCause, Phase};

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

/// The hang-up state of the connection's current exchange, shared by the
/// connection task, the [`Request`](crate::Request) and the
/// [`ResponseWriter`](crate::ResponseWriter).
///
/// One per connection, reset for each request; a generation number keeps a
/// request that outlived its exchange from seeing the next one's hang-up.
#[derive(Debug, Default)]
pub(crate) struct Signal {
    /// Set once the client is known gone: writes fail without a syscall.
    gone: AtomicBool,
    /// Set once any hang-up was reported for the current exchange, so that
    /// asking "any hang-up?" costs no lock in the common case.
    reported: AtomicBool,
    /// Response byte counters, mirrored here by the writer so that a hang-up
    /// detected elsewhere (the watch) can report them.
    buffered: AtomicU64,
    written: AtomicU64,
    /// The status the handler set, mirrored for an exchange cut off while
    /// the writer is lent out (forced shutdown).
    status: AtomicU16,
    state: Mutex<SignalState>,
    notify: Notify,
}

/// The exchange a request belonged to has ended.
struct ExchangeOver;

#[derive(Debug, Default)]
struct SignalState {
    generation: u64,
    hangup: Option<Hangup>,
    token: Option<CancellationToken>,
    started: Option<Instant>,
    /// Bytes of earlier responses on this connection: subtracted from the
    /// socket's `tcpi_bytes_acked` to count this response's acknowledged bytes.
    acked_base: u64,
    phase_sending: bool,
}

impl Signal {
    /// Starts a new exchange; returns its generation.
    pub(crate) fn reset(&self, started: Instant, acked_base: u64) -> u64 {
        let mut state = self.lock();
        state.generation += 1;
        state.hangup = None;
        state.token = None;
        state.started = Some(started);
        state.acked_base = acked_base;
        state.phase_sending = false;
        self.gone.store(false, Ordering::Release);
        self.reported.store(false, Ordering::Release);
        self.buffered.store(0, Ordering::Relaxed);
        self.written.store(0, Ordering::Relaxed);
        self.status.store(200, Ordering::Relaxed);
        state.generation
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SignalState> {
        // The lock is never held across a call that can panic, so poisoning
        // only means a panic elsewhere in the same thread; the state is valid.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// True once the client is known gone for the current exchange.
    pub(crate) fn is_gone(&self) -> bool {
        self.gone.load(Ordering::Acquire)
    }

    /// The current exchange's hang-up, if one was reported.
    pub(crate) fn hangup(&self, generation: u64) -> Option<Hangup> {
        if !self.reported.load(Ordering::Acquire) {
            return None;
        }
        let state = self.lock();
        (state.generation == generation)
            .then(|| state.hangup.clone())
            .flatten()
    }

    /// The hang-up reported for the current exchange, whatever its
    /// generation: for responses of earlier exchanges that were still
    /// queued when the connection failed.
    pub(crate) fn latest_hangup(&self) -> Option<Hangup> {
        if !self.reported.load(Ordering::Acquire) {
            return None;
        }
        self.lock().hangup.clone()
    }

    /// Mirrors the writer's counters.
    pub(crate) fn set_counters(&self, buffered: u64, written: u64) {
        self.buffered.store(buffered, Ordering::Relaxed);
        self.written.store(written, Ordering::Relaxed);
    }

    /// Mirrors the status the handler set.
    pub(crate) fn set_status(&self, status: http::StatusCode) {
        self.status.store(status.as_u16(), Ordering::Relaxed);
    }

    /// The status the handler set, as last mirrored (200 until then).
    pub(crate) fn status(&self) -> http::StatusCode {
        http::StatusCode::from_u16(self.status.load(Ordering::Relaxed))
            .unwrap_or(http::StatusCode::OK)
    }

    /// The response counters as last mirrored by the writer.
    pub(crate) fn counters(&self) -> (u64, u64) {
        (
            self.buffered.load(Ordering::Relaxed),
            self.written.load(Ordering::Relaxed),
        )
    }

    /// The acknowledged-bytes origin of the current response.
    pub(crate) fn acked_base(&self) -> u64 {
        self.lock().acked_base
    }

    /// Records a hang-up and returns the one now in force.
    ///
    /// The first report wins, with one exception: a report that makes the
    /// client *gone* (RST, failed write, timeout) replaces an earlier mere
    /// notification (a FIN under [`OnFin::Notify`](crate::OnFin::Notify)),
    /// so that a failing write names its own cause and errno.
    ///
    /// `gone` makes every later write fail at once. `acked` is the socket's
    /// total acknowledged bytes, if known.
    pub(crate) fn report(
        &self,
        cause: HangupCause,
        detection: Detection,
        phase_hint: Phase,
        errno: Option<i32>,
        acked: Option<u64>,
        gone: bool,
    ) -> Hangup {
        let mut state = self.lock();
        let was_gone = self.gone.load(Ordering::Acquire);
        if gone {
            self.gone.store(true, Ordering::Release);
        }
        if let Some(existing) = &state.hangup {
            if was_gone || !gone {
                return existing.clone();
            }
        }
        let first = state.hangup.is_none();
        let written = self.written.load(Ordering::Relaxed);
        let phase = match phase_hint {
            Phase::Handling if written > 0 || state.phase_sending => Phase::Sending,
            phase => phase,
        };
        let hangup = Hangup {
            cause,
            phase,
            detection,
            elapsed: state.started.map(|t| t.elapsed()).unwrap_or_default(),
            counters: Counters {
                buffered: self.buffered.load(Ordering::Relaxed),
                written,
                acked: acked.map(|total| total.saturating_sub(state.acked_base).min(written)),
            },
            errno,
        };
        state.hangup = Some(hangup.clone());
        self.reported.store(true, Ordering::Release);
        if first {
            if let Some(token) = &state.token {
                token.cancel();
            }
            drop(state);
            self.notify.notify_waiters();
        }
        hangup
    }

    /// Marks that response bytes have been handed to the kernel.
    pub(crate) fn mark_sending(&self) {
        self.lock().phase_sending = true;
    }

    /// A token cancelled when the current exchange's client hangs up.
    pub(crate) fn token(&self, generation: u64) -> CancellationToken {
        let mut state = self.lock();
        if state.generation != generation {
            // A request that outlived its exchange: its client is long done.
            let token = CancellationToken::new();
            token.cancel();
            return token;
        }
        let token = state
            .token
            .get_or_insert_with(CancellationToken::new)
            .clone();
        if state.hangup.is_some() {
            token.cancel();
        }
        token
    }

    /// Resolves with the current exchange's hang-up once there is one.
    /// Pending forever for a request that outlived its exchange.
    pub(crate) async fn hung_up(&self, generation: u64) -> Hangup {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.check(generation) {
                Some(Ok(hangup)) => return hangup,
                Some(Err(ExchangeOver)) => return std::future::pending().await,
                None => notified.await,
            }
        }
    }

    /// The hang-up of exchange `generation`, if any; `Err` once that
    /// exchange is over. A plain function, so no lock guard lives across an
    /// await and the future stays `Send`.
    fn check(&self, generation: u64) -> Option<Result<Hangup, ExchangeOver>> {
        let state = self.lock();
        if state.generation != generation {
            return Some(Err(ExchangeOver));
        }
        state.hangup.clone().map(Ok)
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

    #[test]
    fn first_report_wins_unless_a_notification_becomes_gone() {
        use HangupCause::*;
        let signal = Signal::default();
        let generation = signal.reset(Instant::now(), 0);
        let watch = Detection::SocketWatch;
        let fin = signal.report(PeerClosed, watch, Phase::Handling, None, None, false);
        assert_eq!(fin.cause(), PeerClosed);
        assert!(!signal.is_gone());
        let epipe = signal.report(
            WriteFailed,
            Detection::Write,
            Phase::Handling,
            Some(32),
            None,
            true,
        );
        assert_eq!((epipe.cause(), epipe.errno()), (WriteFailed, Some(32)));
        assert!(signal.is_gone());
        let later = signal.report(Reset, Detection::Read, Phase::Handling, None, None, true);
        assert_eq!(later, epipe);
        assert_eq!(signal.hangup(generation).unwrap().cause(), WriteFailed);
        assert!(signal.token(generation).is_cancelled());
        signal.reset(Instant::now(), 0);
        assert!(!signal.is_gone());
        assert!(signal.hangup(generation).is_none());
    }
}
