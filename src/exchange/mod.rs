//! One request/response exchange's truth: when it started, where its
//! response begins in the connection's byte stream, its byte counters,
//! the status it sends, its hang-up policies, and its hang-up. Each fact
//! has one owner, here; the socket watch, the request body, the response
//! writer and the outcome ledger read and write them through an
//! [`Exchange`], and nothing keeps a copy.
//!
//! An exchange knows nothing of HTTP/1 framing: it is what an HTTP/2 stream
//! would be too.
//!
//! # Hang-ups
//!
//! A hang-up has two levels, matching DESIGN.md's two kinds: *notified*
//! (the handler's [`hung_up`](crate::Request::hung_up) future resolves and
//! its cancellation token fires) and *gone* (every later write fails at
//! once with [`Error::ClientGone`](crate::Error::ClientGone)). Everything
//! is reported through [`Exchange::report`]: a FIN that the socket watch
//! saw is judged by the exchange's [`OnFin`] policy (notify, make gone, or
//! ignore); any other report (a reset, a failed or stalled write, a read
//! timeout, an EOF inside the body) makes the client gone.
//!
//! # Threads
//!
//! The connection task and the handler's `Request`, `Body` and
//! `ResponseWriter` (which may move to other tasks) share one exchange, so
//! its facts are atomics. Each has one writer at a time (the connection
//! between requests, the writer or the body reader during one), so plain
//! loads and stores suffice: no read-modify-write, hence no locked
//! instruction, on the request path. The hang-up itself, and the
//! cancellation token, sit behind a mutex that the request path touches
//! only when a handler asked for a token or a hang-up was reported.

pub(crate) mod hangup;

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU16, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use http::StatusCode;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::transport::Transport;
use hangup::{Counters, Detection, Hangup, HangupCause, Phase};

use crate::transport::TlsClose;

/// What the server does when the client closes its sending side (FIN) while
/// a request is being handled or its response is streaming.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OnFin {
    /// Fire the request's hang-up signal (cause
    /// [`PeerClosed`](crate::HangupCause::PeerClosed)) and let writes
    /// proceed: a half-closing client still gets its response.
    #[default]
    Notify,
    /// Treat the FIN as the client leaving: the signal fires and every later
    /// write fails at once with [`Error::ClientGone`](crate::Error::ClientGone).
    Abort,
    /// Support half-close fully: a FIN is not reported to the handler.
    Ignore,
}

impl OnFin {
    pub(crate) fn to_u8(self) -> u8 {
        match self {
            OnFin::Notify => 0,
            OnFin::Abort => 1,
            OnFin::Ignore => 2,
        }
    }

    pub(crate) fn from_u8(value: u8) -> Self {
        match value {
            1 => OnFin::Abort,
            2 => OnFin::Ignore,
            _ => OnFin::Notify,
        }
    }
}

/// What the server does with a handler once its client is gone (RST, failed
/// write, timeout, or a FIN under [`OnFin::Abort`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OnHangup {
    /// Tell the handler (its signal fires, writes fail) and let it return.
    #[default]
    Notify,
    /// Drop the handler future at once; its destructors run. A FIN under
    /// the default [`OnFin::Notify`] does not make the client gone (it may
    /// be a half-close: the client can still read): pair `Cancel` with
    /// [`OnFin::Abort`] to drop the handler when the client closes, as
    /// hyper (and so `axum::serve`) does.
    Cancel,
}

impl OnHangup {
    pub(crate) fn to_u8(self) -> u8 {
        match self {
            OnHangup::Notify => 0,
            OnHangup::Cancel => 1,
        }
    }

    pub(crate) fn from_u8(value: u8) -> Self {
        match value {
            1 => OnHangup::Cancel,
            _ => OnHangup::Notify,
        }
    }
}

/// The state of one exchange at a time on a connection (one per
/// connection, begun again for each request: no allocation per request).
/// A generation number keeps a handle that outlived its exchange (a
/// `Request` kept by a task) from reading the next one's facts.
#[derive(Debug)]
pub(crate) struct Exchange {
    /// The origin of the nanosecond clock below; fixed for the
    /// connection's life.
    epoch: Instant,
    generation: AtomicU64,
    /// When the exchange started (the socket read that completed its
    /// head), in nanoseconds since `epoch`.
    started: AtomicU64,
    /// Where this response's first byte lies in the connection's stream of
    /// response bytes: the origin of its `acked`.
    origin: AtomicU64,
    /// Body bytes the handler handed to the writer.
    buffered: AtomicU64,
    /// Bytes of the final response (head, framing, body) the kernel
    /// accepted.
    written: AtomicU64,
    /// Bytes of interim responses (`100 Continue`) the kernel accepted for
    /// this exchange: written by the body reader, not the writer, so they
    /// have a counter of their own (two writers never share one).
    interim: AtomicU64,
    status: AtomicU16,
    /// The handler waits for request body bytes from the socket.
    reading_body: AtomicBool,
    on_fin: AtomicU8,
    on_hangup: AtomicU8,
    /// [`GONE`], [`REPORTED`], [`COLD`].
    flags: AtomicU8,
    /// When the client's FIN was seen, in nanoseconds since `started`,
    /// plus one; zero while it was not.
    peer_closed: AtomicU64,
    cold: Mutex<Cold>,
    notify: Notify,
}

/// The client is known gone: writes fail without a syscall.
const GONE: u8 = 1;
/// A hang-up (of either level) was reported.
const REPORTED: u8 = 2;
/// `cold` holds something of this exchange (a hang-up or a token): the
/// next [`Exchange::begin`] must clear it.
const COLD: u8 = 4;

/// What only a reported hang-up or an asked-for token needs.
#[derive(Debug, Default)]
struct Cold {
    hangup: Option<Hangup>,
    token: Option<CancellationToken>,
}

/// The exchange a handle belonged to has ended.
struct ExchangeOver;

impl Exchange {
    /// The exchange slot of a new connection, with no exchange yet.
    pub(crate) fn new() -> Self {
        Exchange {
            epoch: Instant::now(),
            generation: AtomicU64::new(0),
            started: AtomicU64::new(0),
            origin: AtomicU64::new(0),
            buffered: AtomicU64::new(0),
            written: AtomicU64::new(0),
            interim: AtomicU64::new(0),
            status: AtomicU16::new(200),
            reading_body: AtomicBool::new(false),
            on_fin: AtomicU8::new(OnFin::Notify.to_u8()),
            on_hangup: AtomicU8::new(OnHangup::Notify.to_u8()),
            flags: AtomicU8::new(0),
            peer_closed: AtomicU64::new(0),
            cold: Mutex::new(Cold::default()),
            notify: Notify::new(),
        }
    }

    /// The connection clock's reading for `at` (not before the connection
    /// began): what [`begin`](Self::begin) takes as the start. A
    /// subtraction of two clock readings, so the connection takes one per
    /// socket read, not per request (pipelined requests share a read).
    pub(crate) fn stamp(&self, at: Instant) -> u64 {
        nanos(at.saturating_duration_since(self.epoch))
    }

    /// Starts the next exchange: it started at `started` (a
    /// [`stamp`](Self::stamp)), its response begins at byte `origin` of the
    /// connection's response stream, and the server's policies apply until
    /// the handler overrides them. Returns its generation.
    pub(crate) fn begin(
        &self,
        started: u64,
        origin: u64,
        on_fin: OnFin,
        on_hangup: OnHangup,
    ) -> u64 {
        let generation = self.generation.load(Ordering::Relaxed) + 1;
        // Published last (Release), so a handle that sees the new
        // generation sees the rest too.
        self.started.store(started, Ordering::Relaxed);
        self.origin.store(origin, Ordering::Relaxed);
        self.buffered.store(0, Ordering::Relaxed);
        self.written.store(0, Ordering::Relaxed);
        self.interim.store(0, Ordering::Relaxed);
        self.status.store(200, Ordering::Relaxed);
        self.reading_body.store(false, Ordering::Relaxed);
        self.on_fin.store(on_fin.to_u8(), Ordering::Relaxed);
        self.on_hangup.store(on_hangup.to_u8(), Ordering::Relaxed);
        self.peer_closed.store(0, Ordering::Relaxed);
        if self.flags.load(Ordering::Acquire) & COLD != 0 {
            *self.lock() = Cold::default();
        }
        self.flags.store(0, Ordering::Release);
        self.generation.store(generation, Ordering::Release);
        generation
    }

    fn lock(&self) -> MutexGuard<'_, Cold> {
        // Nothing that can panic runs under the lock, so poisoning only
        // means a panic elsewhere in the same thread; the state is valid.
        self.cold
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The current exchange's generation.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// When the current exchange started.
    pub(crate) fn started(&self) -> Instant {
        self.epoch + Duration::from_nanos(self.started.load(Ordering::Relaxed))
    }

    /// Where the current response begins in the connection's stream of
    /// response bytes.
    pub(crate) fn origin(&self) -> u64 {
        self.origin.load(Ordering::Relaxed)
    }

    /// Body bytes accepted from the handler so far.
    pub(crate) fn buffered(&self) -> u64 {
        self.buffered.load(Ordering::Relaxed)
    }

    /// Sets the body bytes accepted (only the response writer does).
    pub(crate) fn set_buffered(&self, buffered: u64) {
        self.buffered.store(buffered, Ordering::Relaxed);
    }

    /// Bytes of the final response the kernel accepted so far.
    pub(crate) fn response_written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Sets the final response's bytes accepted (only the writer does).
    pub(crate) fn set_response_written(&self, written: u64) {
        self.written.store(written, Ordering::Relaxed);
    }

    /// Counts interim-response bytes the kernel accepted (only the body
    /// reader does, while it sends `100 Continue`).
    pub(crate) fn add_interim_written(&self, bytes: u64) {
        let interim = self.interim.load(Ordering::Relaxed);
        self.interim.store(interim + bytes, Ordering::Relaxed);
    }

    /// Bytes of interim responses (`100 Continue`) the kernel accepted.
    pub(crate) fn interim_written(&self) -> u64 {
        self.interim.load(Ordering::Relaxed)
    }

    /// Every byte of this exchange the kernel accepted: interim responses,
    /// then the final one. They follow one another on the wire from
    /// [`origin`](Self::origin) on.
    pub(crate) fn written(&self) -> u64 {
        self.interim.load(Ordering::Relaxed) + self.written.load(Ordering::Relaxed)
    }

    /// The counters now, `acked` from the socket's total `total_acked`.
    pub(crate) fn counters(&self, total_acked: Option<u64>) -> Counters {
        let written = self.written();
        Counters {
            buffered: self.buffered(),
            written,
            acked: total_acked.map(|total| self.acked_of(total, written)),
        }
    }

    /// This exchange's share of the socket's acknowledged bytes: from its
    /// origin, never more than it wrote.
    pub(crate) fn acked_of(&self, total_acked: u64, written: u64) -> u64 {
        acked_between(total_acked, self.origin(), written)
    }

    /// The status the response has (or had when its head was committed).
    pub(crate) fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status.load(Ordering::Relaxed)).unwrap_or(StatusCode::OK)
    }

    /// Sets the status (only the writer does).
    pub(crate) fn set_status(&self, status: StatusCode) {
        self.status.store(status.as_u16(), Ordering::Relaxed);
    }

    /// Marks whether the handler is waiting for request body bytes (only
    /// the body reader does): a hang-up then happened while reading the
    /// body.
    pub(crate) fn set_reading_body(&self, reading: bool) {
        self.reading_body.store(reading, Ordering::Relaxed);
    }

    /// Where the exchange is: sending once a response byte reached the
    /// kernel, reading the body while the handler waits for its bytes,
    /// handling otherwise.
    pub(crate) fn phase(&self) -> Phase {
        if self.written() > 0 {
            Phase::Sending
        } else if self.reading_body.load(Ordering::Relaxed) {
            Phase::ReadingBody
        } else {
            Phase::Handling
        }
    }

    pub(crate) fn on_fin(&self) -> OnFin {
        OnFin::from_u8(self.on_fin.load(Ordering::Relaxed))
    }

    /// Overrides the FIN policy for this exchange. Switching to
    /// [`OnFin::Abort`] after a FIN was reported makes the client gone
    /// now.
    pub(crate) fn set_on_fin(&self, policy: OnFin, transport: &Transport) {
        self.on_fin.store(policy.to_u8(), Ordering::Relaxed);
        if policy == OnFin::Abort && !self.is_gone() {
            let mut cold = self.lock();
            if let Some(fin) = cold
                .hangup
                .as_ref()
                .filter(|h| h.cause() == HangupCause::PeerClosed)
            {
                let hangup = Hangup {
                    counters: self.counters(transport.bytes_acked()),
                    ..fin.clone()
                };
                cold.hangup = Some(hangup);
                self.flags.fetch_or(GONE, Ordering::AcqRel);
                drop(cold);
                self.notify.notify_waiters();
            }
        }
    }

    pub(crate) fn on_hangup(&self) -> OnHangup {
        OnHangup::from_u8(self.on_hangup.load(Ordering::Relaxed))
    }

    pub(crate) fn set_on_hangup(&self, policy: OnHangup) {
        self.on_hangup.store(policy.to_u8(), Ordering::Relaxed);
    }

    /// True once the client is known gone.
    #[inline]
    pub(crate) fn is_gone(&self) -> bool {
        self.flags.load(Ordering::Acquire) & GONE != 0
    }

    /// When the client's FIN was seen, from the exchange's start.
    pub(crate) fn peer_closed_after(&self) -> Option<Duration> {
        match self.peer_closed.load(Ordering::Relaxed) {
            0 => None,
            n => Some(Duration::from_nanos(n - 1)),
        }
    }

    /// Reports what the connection saw of its client; the one way a
    /// hang-up enters an exchange. Reads the acknowledged bytes from
    /// `transport` and takes the phase from the exchange's own facts.
    ///
    /// A FIN seen by the socket watch (`PeerClosed` by `SocketWatch`) is
    /// judged by the [`OnFin`] policy: `Notify` tells the handler, `Abort`
    /// makes the client gone, `Ignore` only records when it came (for the
    /// outcome). Any other report makes the client gone.
    ///
    /// The first report wins, with one exception: a report that makes the
    /// client gone replaces a mere notification, so that a failing write
    /// names its own cause and errno. Returns the hang-up now in force
    /// (`None` for an ignored FIN).
    pub(crate) fn report(
        &self,
        transport: &Transport,
        cause: HangupCause,
        detection: Detection,
        errno: Option<i32>,
    ) -> Option<Hangup> {
        let tls_close = if cause == HangupCause::PeerClosed {
            transport.tls_close()
        } else {
            None
        };
        self.record(cause, detection, errno, transport.bytes_acked(), tls_close)
    }

    /// [`report`](Self::report), with the socket's acknowledged bytes read.
    fn record(
        &self,
        cause: HangupCause,
        detection: Detection,
        errno: Option<i32>,
        total_acked: Option<u64>,
        tls_close: Option<TlsClose>,
    ) -> Option<Hangup> {
        let elapsed = self.started().elapsed();
        let fin_seen = cause == HangupCause::PeerClosed && detection == Detection::SocketWatch;
        if fin_seen {
            let _ = self.peer_closed.compare_exchange(
                0,
                nanos(elapsed) + 1,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
        let gone = match (fin_seen, self.on_fin()) {
            (true, OnFin::Ignore) => return None,
            (true, OnFin::Notify) => false,
            _ => true,
        };
        let mut cold = self.lock();
        let was_gone = self.is_gone();
        if let Some(existing) = &cold.hangup {
            if was_gone || !gone {
                return Some(existing.clone());
            }
        }
        let first = cold.hangup.is_none();
        let hangup = Hangup {
            cause,
            phase: self.phase(),
            detection,
            elapsed,
            counters: self.counters(total_acked),
            errno,
            tls_close,
        };
        cold.hangup = Some(hangup.clone());
        let flags = REPORTED | COLD | if gone { GONE } else { 0 };
        self.flags.fetch_or(flags, Ordering::AcqRel);
        if first {
            if let Some(token) = &cold.token {
                token.cancel();
            }
        }
        drop(cold);
        // Waiters for the first report (`hung_up`) and for the client
        // being gone (`gone`) alike.
        self.notify.notify_waiters();
        Some(hangup)
    }

    /// The hang-up of exchange `generation`, if one was reported.
    pub(crate) fn hangup(&self, generation: u64) -> Option<Hangup> {
        if self.flags.load(Ordering::Acquire) & REPORTED == 0 {
            return None;
        }
        let cold = self.lock();
        (self.generation() == generation)
            .then(|| cold.hangup.clone())
            .flatten()
    }

    /// The hang-up that makes the client gone, if there is one now.
    #[inline]
    pub(crate) fn gone_hangup(&self) -> Option<Hangup> {
        if !self.is_gone() {
            return None;
        }
        self.lock().hangup.clone()
    }

    /// A token cancelled when exchange `generation`'s client hangs up; an
    /// already cancelled one for a handle that outlived its exchange.
    pub(crate) fn token(&self, generation: u64) -> CancellationToken {
        let mut cold = self.lock();
        if self.generation() != generation {
            let token = CancellationToken::new();
            token.cancel();
            return token;
        }
        self.flags.fetch_or(COLD, Ordering::AcqRel);
        let token = cold
            .token
            .get_or_insert_with(CancellationToken::new)
            .clone();
        if cold.hangup.is_some() {
            token.cancel();
        }
        token
    }

    /// Resolves with exchange `generation`'s hang-up once there is one;
    /// pending forever for a handle that outlived its exchange.
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

    /// Resolves with the hang-up that makes exchange `generation`'s client
    /// gone (a reset, a failed or stalled write, a FIN under
    /// [`OnFin::Abort`]), once there is one; pending for ever for a handle
    /// that outlived its exchange. A FIN under [`OnFin::Notify`] does not
    /// resolve it: the client may still read.
    pub(crate) async fn gone(&self, generation: u64) -> Hangup {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.generation() != generation {
                return std::future::pending().await;
            }
            if let Some(hangup) = self.gone_hangup() {
                return hangup;
            }
            notified.await;
        }
    }

    /// The hang-up of exchange `generation`, if any; `Err` once that
    /// exchange is over. A plain function, so that no lock guard lives
    /// across an await and the future stays `Send`.
    fn check(&self, generation: u64) -> Option<Result<Hangup, ExchangeOver>> {
        let cold = self.lock();
        if self.generation() != generation {
            return Some(Err(ExchangeOver));
        }
        cold.hangup.clone().map(Ok)
    }
}

/// The bytes of a response that began at `origin` and of which `written`
/// reached the kernel, that the socket's `total_acked` acknowledgements
/// cover: the one formula for every `acked` hangup reports.
pub(crate) fn acked_between(total_acked: u64, origin: u64, written: u64) -> u64 {
    total_acked.saturating_sub(origin).min(written)
}

/// A duration in nanoseconds, saturating (585 years).
fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_report_wins_unless_a_notification_becomes_gone() {
        use HangupCause::*;
        let exchange = Exchange::new();
        let generation = exchange.begin(0, 0, OnFin::Notify, OnHangup::Notify);
        let watch = Detection::SocketWatch;
        let fin = exchange
            .record(PeerClosed, watch, None, None, None)
            .unwrap();
        assert_eq!(fin.cause(), PeerClosed);
        assert!(!exchange.is_gone() && exchange.peer_closed_after().is_some());
        let epipe = exchange
            .record(WriteFailed, Detection::Write, Some(32), None, None)
            .unwrap();
        assert_eq!((epipe.cause(), epipe.errno()), (WriteFailed, Some(32)));
        assert!(exchange.is_gone());
        let later = exchange.record(Reset, Detection::Read, None, None, None);
        assert_eq!(later, Some(epipe));
        assert_eq!(exchange.hangup(generation).unwrap().cause(), WriteFailed);
        assert!(exchange.token(generation).is_cancelled());
        let next = exchange.begin(0, 0, OnFin::Notify, OnHangup::Notify);
        assert!(!exchange.is_gone() && exchange.peer_closed_after().is_none());
        assert!(exchange.hangup(generation).is_none() && exchange.hangup(next).is_none());
        assert!(
            exchange.token(generation).is_cancelled(),
            "a stale handle's token"
        );
        assert!(!exchange.token(next).is_cancelled());
    }

    #[test]
    fn a_fin_is_judged_by_the_exchange_s_policy() {
        let watch = Detection::SocketWatch;
        for (policy, told, gone) in [
            (OnFin::Notify, true, false),
            (OnFin::Abort, true, true),
            (OnFin::Ignore, false, false),
        ] {
            let exchange = Exchange::new();
            exchange.begin(0, 0, policy, OnHangup::Notify);
            let seen = exchange.record(HangupCause::PeerClosed, watch, None, None, None);
            assert_eq!(
                (seen.is_some(), exchange.is_gone()),
                (told, gone),
                "{policy:?}"
            );
            assert!(
                exchange.peer_closed_after().is_some(),
                "{policy:?}: the FIN is a fact"
            );
        }
        // An EOF inside the body is no mere FIN: the client is gone.
        let exchange = Exchange::new();
        exchange.begin(0, 0, OnFin::Notify, OnHangup::Notify);
        exchange.record(HangupCause::PeerClosed, Detection::Read, None, None, None);
        assert!(exchange.is_gone() && exchange.peer_closed_after().is_none());
    }

    #[test]
    fn the_phase_comes_from_the_exchange_s_facts() {
        let exchange = Exchange::new();
        exchange.begin(0, 0, OnFin::Notify, OnHangup::Notify);
        assert_eq!(exchange.phase(), Phase::Handling);
        exchange.set_reading_body(true);
        assert_eq!(exchange.phase(), Phase::ReadingBody);
        exchange.add_interim_written(25);
        assert_eq!(exchange.phase(), Phase::Sending);
        exchange.begin(0, 25, OnFin::Notify, OnHangup::Notify);
        assert_eq!((exchange.phase(), exchange.written()), (Phase::Handling, 0));
    }

    #[test]
    fn acked_counts_from_the_origin_and_never_past_what_was_written() {
        assert_eq!(acked_between(0, 0, 10), 0);
        assert_eq!(acked_between(5, 0, 10), 5);
        assert_eq!(acked_between(50, 0, 10), 10);
        assert_eq!(acked_between(50, 100, 10), 0);
        assert_eq!(acked_between(104, 100, 10), 4);
    }
}
