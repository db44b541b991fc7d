//! One connection's life, in one task: read a head, run the handler raced
//! against the socket watch, finish the response, drain what the handler
//! left unread, and go again while the connection may be kept.
//!
//! ```text
//!   ┌──────────────┐ complete head ┌───────────────────────┐ writer and body back ┌────────┐
//!   │ reading head ├──────────────▶│ handler ∥ socket watch├─────────────────────▶│ finish │
//!   └──────▲───────┘               └───────────────────────┘                      └───┬────┘
//!          │ keep-alive, body drained                                                 │
//!          └──────────────────────────────────────────────────────────────────────────┤
//!                                              close: flush, FIN, linger, close  ◀────┘
//! ```
//!
//! The handler future runs inside this task (no spawn per request). The
//! watch only looks at readiness, so bytes of an unread body or of
//! pipelined requests stay where they are.
//!
//! A connection idle for `idle_release_after` with nothing pending parks:
//! this task ends and the socket waits in the server's parking lot
//! ([`crate::park`]) with a [`Parked`] record; the client's next bytes
//! start a new connection task ([`Conn::resume`]).

use std::collections::VecDeque;
use std::future::poll_fn;
use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::panic::AssertUnwindSafe;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use http::{Method, StatusCode, Version};
use tokio::net::TcpStream;
use tokio::time::Sleep;
use tokio_util::task::TaskTracker;

use crate::body::{Body, BodyState, READ_RESERVE_BYTES};
use crate::config::{Config, OnFin, OnHangup};
use crate::decode::{Decoded, Decoder};
use crate::error::{BadRequest, Counters, Detection, HangupCause, Phase};
use crate::exchange::{Expect, Home, Shared};
use crate::handler::Handler;
use crate::head::{self, BodyFraming, Head, Limits};
use crate::outcome::{
    ConnectionGuard, Metrics, Outcome, ParkedGuard, is_access_log_enabled, log_access,
};
use crate::park::ParkingLot;
use crate::request::Request;
use crate::response::{RequestFacts, ResponseWriter, WriterState};
use crate::shutdown::{Shutdown, Stage};
use crate::transport::{PeerEvent, Transport};

/// Pipelined requests served back to back without touching the socket
/// before the task yields to others: bounds one client's hold on a worker.
/// 64: deeper than any pipelining benchmark (16), so it rarely triggers.
const MAX_REQUESTS_BEFORE_YIELD: u32 = 64;

/// Read buffer reserved for the first read of a request when the buffer is
/// empty, in bytes: a new connection, or one that released its buffers
/// after `idle_release_after`. Small on purpose: most heads fit, and glibc
/// serves allocations up to 1,032 bytes from its per-thread cache. A head
/// that does not fit continues in reads of `READ_RESERVE_BYTES`.
const IDLE_READ_RESERVE_BYTES: usize = 1024;

/// How often a connection waiting for its next request re-reads
/// `TCP_INFO` while outcomes wait for acknowledgements. 5 ms: well under
/// `ack_wait`, and a delayed ACK is up to 40 ms.
const ACK_POLL: Duration = Duration::from_millis(5);

/// Sleeps for [`ACK_POLL`]. `select!` evaluates the expression of a branch
/// it has disabled (and drops the future unpolled): as an `async fn` that
/// costs nothing, where `tokio::time::sleep` would read the clock and
/// clone the runtime's handle on every wait for a request.
async fn ack_poll() {
    tokio::time::sleep(ACK_POLL).await;
}

/// How the handler's run ended.
enum Handled {
    Returned(crate::Result<()>),
    Panicked,
    /// Dropped under [`OnHangup::Cancel`] after its client left.
    Cancelled,
}

/// Why the connection stops reading requests.
enum Ending {
    /// The client closed between requests, or an idle connection was shut
    /// down: nothing to say.
    Clean,
    /// Idle past `idle_release_after` with nothing in progress: hand the
    /// socket to a small task of its own until this idle deadline.
    Park(tokio::time::Instant),
    /// The head was malformed or over a limit: answer, then close.
    Reject(BadRequest),
    /// The client left, timed out, or the connection cannot continue.
    Close,
}

/// The exchange in progress, for its outcome.
struct InProgress {
    /// Method and target, kept only when someone wants outcome records
    /// (an access-log subscriber or a hook); the metrics need neither.
    /// Boxed: moved with the rest on every request, used on few.
    request: Option<Box<(Method, http::Uri)>>,
    started: Instant,
    origin: u64,
    generation: u64,
}

/// A finished response whose outcome waits for the client's
/// acknowledgements: its bytes are `origin..end` of the connection's stream.
struct Settling {
    outcome: Outcome,
    origin: u64,
    end: u64,
    deadline: Instant,
}

/// What every connection of a server shares.
pub(crate) struct ServerParts<H> {
    pub handler: Arc<H>,
    pub config: Arc<Config>,
    pub shutdown: Shutdown,
    pub metrics: Metrics,
    /// The server's connection tasks: the parking lot's attendant and
    /// resumed connections join it.
    pub tracker: TaskTracker,
    /// Where idle connections park; `None` when the lot could not be set
    /// up (they then keep their tasks).
    pub parking: Option<Arc<ParkingLot<Parked>>>,
}

impl<H> Clone for ServerParts<H> {
    fn clone(&self) -> Self {
        ServerParts {
            handler: self.handler.clone(),
            config: self.config.clone(),
            shutdown: self.shutdown.clone(),
            metrics: self.metrics.clone(),
            tracker: self.tracker.clone(),
            parking: self.parking.clone(),
        }
    }
}

/// Where a connection task starts from: a new connection, or a parked one.
struct Resume {
    open: ConnectionGuard,
    /// Bytes written on the connection so far.
    written: u64,
    served: u64,
    /// The deadline of the first head read.
    head_deadline: Instant,
    /// When the task started serving.
    started: Instant,
}

pub(crate) struct Conn<H> {
    shared: Arc<Shared>,
    _open: ConnectionGuard,
    current: Option<InProgress>,
    settling: VecDeque<Settling>,
    server: ServerParts<H>,
    /// The read buffer and body decoder (lent to the `Body` during an
    /// exchange).
    body: Home<BodyState>,
    /// The response state (lent to the `ResponseWriter` during an exchange).
    writer: Home<WriterState>,
    /// One timer for head reads, reset instead of re-created.
    timer: Pin<Box<Sleep>>,
    /// The search for the end of the next head, kept across reads.
    head_scan: head::Scan,
    /// When the latest read of request heads returned: the start of every
    /// exchange whose head it completed (pipelined requests share one
    /// clock read).
    head_read_at: Instant,
    served: u64,
    since_yield: u32,
    /// The previous request's head, emptied, for the next to parse into
    /// (see `head::recycle`).
    spare_parts: Option<Box<crate::head::Parts>>,
    /// Resumed from parking and not read from since: the bytes (or the
    /// close) that woke it are waiting, so it must read before it may
    /// park again.
    unread_since_resume: bool,
}

impl<H: Handler> Conn<H> {
    /// Serves one accepted connection until it closes or parks.
    pub(crate) async fn serve(stream: TcpStream, remote_addr: SocketAddr, server: ServerParts<H>) {
        let open = server.metrics.connection_opened();
        let accepted = Instant::now();
        let deadline = accepted + server.config.header_read_timeout;
        let resume = Resume {
            open,
            written: 0,
            served: 0,
            head_deadline: deadline,
            started: accepted,
        };
        let transport = Transport::new(stream, remote_addr);
        Self::drive(transport, remote_addr, server, resume).await;
    }

    /// Serves a parked connection again: bytes (or its close) arrived.
    async fn resume(socket: std::net::TcpStream, parked: Parked, server: ServerParts<H>) {
        let Parked {
            remote_addr,
            open,
            written,
            served,
            _parked: parked_count,
        } = parked;
        drop(parked_count);
        let now = Instant::now();
        let resume = Resume {
            open,
            written,
            served,
            head_deadline: now + server.config.header_read_timeout,
            started: now,
        };
        let transport = Transport::resumed(socket, remote_addr);
        Self::drive(transport, remote_addr, server, resume).await;
    }

    /// Runs the connection in this task until it closes or parks, or the
    /// grace period of a shutdown ends.
    async fn drive(
        transport: std::io::Result<Transport>,
        remote_addr: SocketAddr,
        server: ServerParts<H>,
        resume: Resume,
    ) {
        let _registration = server.shutdown.register_task().await;
        let transport = match transport {
            Ok(transport) => transport,
            Err(err) => {
                tracing::debug!(%remote_addr, %err, "connection dropped before setup");
                return;
            }
        };
        let shutdown = server.shutdown.clone();
        let conn = Conn {
            shared: Arc::new(Shared::new(
                transport,
                server.config.clone(),
                server.metrics.clone(),
            )),
            _open: resume.open,
            current: None,
            settling: VecDeque::new(),
            server,
            body: Home::new(Box::new(BodyState::new(BytesMut::new()))),
            writer: Home::new(Box::new(WriterState::resumed(resume.written))),
            timer: Box::pin(tokio::time::sleep_until(resume.head_deadline.into())),
            head_scan: head::Scan::default(),
            head_read_at: resume.started,
            served: resume.served,
            since_yield: 0,
            unread_since_resume: resume.served > 0,
            spare_parts: None,
        };
        // Weak: parking needs the only strong reference. The conn future is
        // dropped (its outcomes emitted) before the shutdown branch runs; a
        // handler that kept its `Request` keeps the state alive, and then
        // the FIN still goes out.
        let shared = Arc::downgrade(&conn.shared);
        tokio::select! {
            () = Self::run(Live(Some(conn))) => {}
            () = shutdown.reached(Stage::Forced) => {
                if let Some(shared) = shared.upgrade() {
                    report_shutdown(&shared);
                    shared.transport.shutdown_write();
                }
            }
        }
    }

    async fn run(mut conn: Live<H>) {
        // Reject and close run at most once per connection; boxing keeps
        // their (large) futures out of every connection's resident state.
        loop {
            let head = match conn.read_head().await {
                Ok(head) => head,
                Err(Ending::Clean) => return,
                Err(Ending::Park(idle_deadline)) => return conn.park(idle_deadline),
                Err(Ending::Reject(bad)) => {
                    return Box::pin(async move { conn.reject(bad).await }).await;
                }
                Err(Ending::Close) => return Box::pin(async move { conn.close().await }).await,
            };
            // Not boxed, unlike the cold paths: boxing would keep the
            // handler's future out of a busy connection's state but costs an
            // allocation per request (+540 instructions; see
            // bench/RESULTS.md). Idle connections park instead.
            if !conn.exchange(head).await {
                return Box::pin(async move { conn.close().await }).await;
            }
            conn.served += 1;
            conn.since_yield += 1;
            if conn.since_yield >= MAX_REQUESTS_BEFORE_YIELD {
                conn.since_yield = 0;
                tokio::task::yield_now().await;
            }
        }
    }

    fn limits(&self) -> Limits {
        let config = &self.shared.config;
        Limits {
            max_request_line_bytes: config.max_request_line_bytes,
            max_head_bytes: config.max_head_bytes,
            max_headers: config.max_headers,
            lenient_line_endings: config.lenient_line_endings,
        }
    }

    /// Reads until a complete head is buffered. Before waiting on the
    /// socket, responses held back for pipelining are sent.
    async fn read_head(&mut self) -> Result<Head, Ending> {
        let limits = self.limits();
        let mut idle = self.body.buf.is_empty();
        // The first request's deadline was set at the accept; later ones are
        // armed at their first wait, so a pipelined head costs no timer.
        let mut armed = self.served == 0;
        // An idle wait first runs to `idle_release_after`; if no byte came
        // by then, the buffers are released and the wait goes on to the
        // full idle timeout.
        let mut release_at_timer = false;
        let mut idle_deadline = self.timer.deadline();
        // When the wait's timer is due. The registered timer may fire
        // earlier (see `arm_timer`): then it is re-armed and the wait goes on.
        let mut due = self.timer.deadline();
        // Whether a read in this call brought bytes (`head_read_at` is then
        // the current time, near enough to arm a deadline from).
        let mut read_some = false;
        loop {
            match head::parse(
                &mut self.body.buf,
                &limits,
                &mut self.head_scan,
                &mut self.spare_parts,
            ) {
                Ok(Some(head)) => {
                    self.settle(false);
                    return Ok(head);
                }
                Err(bad) => return Err(Ending::Reject(bad)),
                Ok(None) => {}
            }
            if self.writer.has_unsent_output() {
                self.since_yield = 0;
                if self.writer.flush_unsent(&self.shared).await.is_err() {
                    return Err(Ending::Close);
                }
            }
            if !armed {
                let config = &self.shared.config;
                let (idle_timeout, release_after) =
                    (config.idle_timeout, config.idle_release_after);
                let header_timeout = config.header_read_timeout;
                let now = if read_some {
                    self.head_read_at
                } else {
                    Instant::now()
                };
                let deadline = if idle {
                    idle_deadline = (now + idle_timeout).into();
                    if release_after.is_zero() {
                        if self.can_park() {
                            return Err(Ending::Park(idle_deadline));
                        }
                        self.release_buffers();
                    }
                    release_at_timer = !release_after.is_zero() && release_after < idle_timeout;
                    if release_at_timer {
                        now + release_after
                    } else {
                        idle_deadline.into_std()
                    }
                } else {
                    now + header_timeout
                };
                due = deadline.into();
                self.arm_timer(due);
                armed = true;
            }
            // A new request's first read gets a small buffer (most heads
            // fit; see IDLE_READ_RESERVE_BYTES); a head or batch that is
            // already arriving gets room to stream in.
            let reserve = if self.body.buf.is_empty() {
                IDLE_READ_RESERVE_BYTES
            } else {
                READ_RESERVE_BYTES
            };
            let read = self.shared.transport.read(&mut self.body.buf, reserve);
            let settling = !self.settling.is_empty();
            let result = tokio::select! {
                biased;
                result = read => result,
                () = ack_poll(), if settling => {
                    self.settle(false);
                    continue;
                }
                () = &mut self.timer => {
                    if self.timer.deadline() < due {
                        // Armed for an earlier wait (`arm_timer`): not this
                        // one's deadline. Compares deadlines, not the clock:
                        // a timer never fires before its own.
                        self.timer.as_mut().reset(due);
                        continue;
                    }
                    if release_at_timer && idle {
                        if self.can_park() {
                            return Err(Ending::Park(idle_deadline));
                        }
                        // Idle for a while: hold no byte buffers until the
                        // next request (its first read reserves a small one).
                        release_at_timer = false;
                        self.release_buffers();
                        due = idle_deadline;
                        self.timer.as_mut().reset(due);
                        continue;
                    }
                    tracing::debug!(remote_addr = %self.shared.transport.remote_addr(), idle, "closing: no complete request head in time");
                    return Err(if idle { Ending::Clean } else { Ending::Close });
                }
                () = self.server.shutdown.reached(Stage::Draining), if idle => return Err(Ending::Clean),
            };
            match result {
                Ok(0) if self.body.buf.is_empty() => return Err(Ending::Clean),
                Ok(0) | Err(_) => {
                    tracing::debug!(remote_addr = %self.shared.transport.remote_addr(), "client left inside a request head");
                    return Err(Ending::Close);
                }
                Ok(_) => {
                    self.unread_since_resume = false;
                    self.head_read_at = Instant::now();
                    read_some = true;
                    if idle {
                        idle = false;
                        // The first request's deadline counts from the
                        // accept; a later one's from its first bytes, armed
                        // only if they are not a complete head.
                        armed = self.served == 0;
                    }
                }
            }
        }
    }

    /// Runs one request/response exchange and records its outcome. Returns
    /// whether the connection may serve another request.
    async fn exchange(&mut self, head: Head) -> bool {
        self.server.metrics.request_started();
        // Borrowed, not cloned: an `Arc` clone is a locked instruction, and
        // the borrows below touch other fields only.
        let shared = &self.shared;
        let config = &shared.config;
        let started = self.head_read_at;
        let origin = self.writer.acked_origin();
        let generation = shared.signal.reset(started, origin);
        shared.reset_exchange();
        let wants_outcomes = shared.config.outcome_hook.is_some() || is_access_log_enabled();
        self.current = Some(InProgress {
            request: wants_outcomes
                .then(|| Box::new((head.parts.method.clone(), head.parts.uri_copy()))),
            started,
            origin,
            generation,
        });
        self.writer.begin(RequestFacts {
            version: head.parts.version,
            is_head: head.parts.method == Method::HEAD,
            keep_alive: head.keep_alive && !self.server.shutdown.is_draining(),
            generation,
        });
        let expect_continue = head.expect_continue && head.framing != BodyFraming::Empty;
        // A `100 Continue` must not overtake held-back responses.
        let ready = !expect_continue || self.writer.flush_unsent(shared).await.is_ok();
        let keep_alive = ready && {
            shared.set_expect(if expect_continue {
                Expect::Pending
            } else {
                Expect::Nothing
            });
            let decoder = Decoder::new(
                head.framing,
                config.lenient_line_endings,
                config.max_head_bytes,
            );
            self.body.begin(decoder, generation);
            let body = Body::new(self.body.lend(), shared.clone());
            let request = Request::new(head.parts, body, generation);
            let writer = ResponseWriter::new(self.writer.lend(), shared.clone());
            let handled = self.run_handler(request, writer).await;
            self.writer.restore(shared.writer_slot.take().await);
            self.writer.add_interim_written(shared.interim_written());
            self.body.restore(shared.body_slot.take().await);
            if let Some(parts) = self.body.spare_parts.take() {
                self.spare_parts.get_or_insert(parts);
            }
            self.after_handler(handled).await
        };
        if let Some(current) = self.current.take() {
            self.conclude(current);
        }
        keep_alive
    }

    /// Finishes the response the handler left, then drains what it left
    /// unread. Returns whether the connection may serve another request.
    async fn after_handler(&mut self, handled: Handled) -> bool {
        let shared = &self.shared;
        let config = &shared.config;
        if self.body.is_failed() {
            self.writer.set_close();
        }
        if self.writer.is_aborted() {
            return false;
        }
        let error = match handled {
            Handled::Returned(Ok(())) => None,
            Handled::Returned(Err(err)) => {
                Some((err.status(), err.is_client_gone(), err.to_string()))
            }
            Handled::Panicked => {
                tracing::error!(remote_addr = %shared.transport.remote_addr(), "handler panicked");
                Some((
                    StatusCode::INTERNAL_SERVER_ERROR,
                    false,
                    "handler panicked".to_owned(),
                ))
            }
            Handled::Cancelled => return false,
        };
        if shared.signal.is_gone() {
            return false;
        }
        if let Some((status, client_gone, message)) = error {
            if client_gone || self.writer.is_committed() {
                // Nothing useful can follow a partly sent response: closing
                // (without the last chunk) tells the client it is truncated.
                tracing::debug!(%message, "handler failed after committing its response");
                return false;
            }
            let reason = match status {
                StatusCode::INTERNAL_SERVER_ERROR => "internal server error",
                _ => message.as_str(),
            };
            self.writer.set_error_response(status, reason);
            let _ = self.writer.finish(shared, false).await;
            return false;
        }

        if !self.body.decoder.is_done() && !self.can_drain() {
            // Decided before the head is committed, so that the response
            // says `connection: close`.
            self.writer.set_close();
        }
        // Hold this response back while bytes of the next pipelined
        // request are already here, up to one output buffer of held-back
        // bytes: it goes out with the next one's. Should that head be
        // incomplete, `read_head` sends what is held back before it waits
        // on the socket, so nothing waits on the client.
        let defer = !self.writer.must_close()
            && self.body.decoder.is_done()
            && self.writer.unsent_len() < config.write_buffer_bytes
            && !self.body.buf.is_empty();
        if let Err(err) = self.writer.finish(shared, defer).await {
            if !self.writer.is_committed() && !err.is_client_gone() {
                // The head could not be framed (a Content-Length below the
                // body written): answer 500 rather than contradict it.
                tracing::debug!(%err, "response could not be framed");
                self.writer
                    .set_error_response(StatusCode::INTERNAL_SERVER_ERROR, "internal server error");
                let _ = self.writer.finish(shared, false).await;
            }
            return false;
        }
        if self.writer.must_close() {
            return false;
        }
        if self.body.decoder.is_done() {
            return true;
        }
        self.drain().await
    }

    /// Runs the handler, catching panics, raced against the socket watch.
    async fn run_handler(&self, request: Request, writer: ResponseWriter) -> Handled {
        let mut handler = pin!(self.server.handler.call(request, writer));
        let mut guarded = pin!(poll_fn(move |cx| {
            match std::panic::catch_unwind(AssertUnwindSafe(|| handler.as_mut().poll(cx))) {
                Ok(Poll::Ready(result)) => Poll::Ready(Handled::Returned(result)),
                Ok(Poll::Pending) => Poll::Pending,
                Err(_panic) => Poll::Ready(Handled::Panicked),
            }
        }));
        let shared = &self.shared;
        let config = &shared.config;
        if !config.socket_watch {
            return guarded.await;
        }
        let mut watch = pin!(shared.transport.peer_event());
        let mut watching = true;
        loop {
            tokio::select! {
                biased;
                handled = &mut guarded => return handled,
                event = &mut watch, if watching => {
                    watching = false;
                    let (cause, errno) = match event {
                        Ok(PeerEvent::Closed) => (HangupCause::PeerClosed, None),
                        Ok(PeerEvent::Reset(errno)) => (HangupCause::Reset, errno),
                        Err(_) => (HangupCause::Reset, None),
                    };
                    let fin = cause == HangupCause::PeerClosed;
                    // The exchange's policies: the server's, or the handler's own.
                    let on_fin = shared.on_fin();
                    if fin && on_fin == OnFin::Ignore {
                        continue;
                    }
                    let gone = !fin || on_fin == OnFin::Abort;
                    let acked = shared.transport.bytes_acked();
                    shared.signal.report(cause, Detection::SocketWatch, Phase::Handling, errno, acked, gone);
                    if gone && shared.on_hangup() == OnHangup::Cancel {
                        return Handled::Cancelled;
                    }
                }
            }
        }
    }

    /// Makes the wait's timer fire no later than `due`. A timer already
    /// set to fire earlier is left alone: the wait checks `due` when it
    /// fires and re-arms it then. On a busy keep-alive connection the
    /// deadline moves later with every request; leaving the timer saves
    /// re-registering it each time (it fires once per `idle_release_after`
    /// instead).
    fn arm_timer(&mut self, due: tokio::time::Instant) {
        if self.timer.deadline() > due {
            self.timer.as_mut().reset(due);
        }
    }

    /// Frees the read buffer (empty while idle) and the writer's buffers.
    fn release_buffers(&mut self) {
        self.body.buf = BytesMut::new();
        self.spare_parts = None;
        self.writer.release_buffers();
    }

    /// Whether this idle connection can park: a request was served (the
    /// first head's deadline counts from the accept), nothing is buffered
    /// either way, no outcome waits for acknowledgements, and no handler
    /// kept a `Request` or `ResponseWriter` (they share the socket), and no
    /// bytes may sit unannounced in the socket.
    fn can_park(&self) -> bool {
        self.served > 0
            && !self.unread_since_resume
            && self.current.is_none()
            && self.body.buf.is_empty()
            && !self.writer.has_unsent_output()
            && self.settling.is_empty()
            && Arc::strong_count(&self.shared) == 1
            // The lot would find such bytes (a socket joins its set
            // level-checked), but serving them now is cheaper.
            && !self.shared.transport.may_hold_unannounced_bytes()
            && self.server.parking.is_some()
    }

    /// Whether an unread body remainder may be drained to keep the
    /// connection. Not when the client still waits for a `100 Continue`
    /// that was never sent (it may never send the body: RFC 9110 §10.1.1),
    /// nor when the known remainder exceeds `max_drain_bytes`.
    fn can_drain(&self) -> bool {
        let continue_unsent = matches!(self.shared.expect(), Expect::Pending | Expect::Skipped);
        let too_long = self
            .body
            .decoder
            .known_remaining()
            .is_some_and(|n| n > self.shared.config.max_drain_bytes);
        !continue_unsent && !too_long
    }

    /// Reads and discards the rest of a body the handler did not read, up
    /// to `max_drain_bytes`. Returns whether the connection can continue.
    async fn drain(&mut self) -> bool {
        let config = &self.shared.config;
        let transport = &self.shared.transport;
        let BodyState { buf, decoder, .. } = &mut *self.body;
        let mut budget = config.max_drain_bytes;
        loop {
            if decoder.known_remaining().is_some_and(|n| n > budget) {
                return false;
            }
            match decoder.decode(buf, usize::MAX) {
                Ok(Decoded::End) => return true,
                Ok(Decoded::Data(data)) => match budget.checked_sub(data.len() as u64) {
                    Some(left) => budget = left,
                    None => return false,
                },
                Ok(Decoded::NeedMore) => {
                    let read = transport.read(buf, READ_RESERVE_BYTES);
                    match tokio::time::timeout(config.body_read_timeout, read).await {
                        Ok(Ok(n)) if n > 0 => {}
                        _ => return false,
                    }
                }
                Err(_) => return false,
            }
        }
    }

    /// Answers a rejected head, then closes.
    async fn reject(&mut self, bad: BadRequest) {
        let shared = self.shared.clone();
        tracing::info!(
            target: "hangup::access",
            remote_addr = %shared.transport.remote_addr(),
            status = bad.status().as_u16(),
            reason = bad.reason(),
            "request rejected"
        );
        let generation = shared
            .signal
            .reset(Instant::now(), self.writer.acked_origin());
        self.writer.begin(RequestFacts {
            version: Version::HTTP_11,
            is_head: false,
            keep_alive: false,
            generation,
        });
        self.writer.set_error_response(bad.status(), bad.reason());
        let _ = self.writer.finish(&shared, false).await;
        self.close().await;
    }

    /// Closes gracefully: sends held-back responses, then our FIN, then
    /// reads and discards until the client closes too (bounded by
    /// `linger_bytes` and `linger_timeout`). Closing with unread bytes in
    /// our receive queue would make the kernel send an RST, which can erase
    /// a response the client has not read yet.
    async fn close(&mut self) {
        let shared = self.shared.clone();
        if shared.signal.is_gone() || self.writer.is_aborted() || self.writer.is_broken() {
            return;
        }
        if self.writer.flush_unsent(&shared).await.is_err() {
            return;
        }
        shared.transport.shutdown_write();
        let config = &shared.config;
        let mut budget = config.linger_bytes;
        let deadline = tokio::time::Instant::now() + config.linger_timeout;
        while budget > 0 {
            self.body.buf.clear();
            let read = shared
                .transport
                .read(&mut self.body.buf, READ_RESERVE_BYTES);
            let settling = !self.settling.is_empty();
            tokio::select! {
                biased;
                result = read => match result {
                    Ok(n) if n > 0 => budget = budget.saturating_sub(n as u64),
                    _ => break,
                },
                // Outcomes waiting for acknowledgements settle while the
                // client takes its time to close, not after.
                () = ack_poll(), if settling => self.settle(false),
                () = tokio::time::sleep_until(deadline) => break,
            }
        }
    }
}

/// Reports the grace period's end as the exchange's hang-up.
fn report_shutdown(shared: &Shared) -> crate::Hangup {
    let acked = shared.transport.bytes_acked();
    shared.signal.report(
        HangupCause::ServerShutdown,
        Detection::Timer,
        Phase::Handling,
        None,
        acked,
        true,
    )
}

impl<H> Conn<H> {
    /// Builds the outcome of the exchange that just ended and queues it
    /// until the client acknowledged the response, or emits it at once when
    /// nobody wants acknowledged bytes (no access log, no hook).
    fn conclude(&mut self, current: InProgress) {
        let writer = &self.writer;
        let counters = Counters {
            buffered: writer.buffered(),
            written: writer.written(),
            acked: None,
        };
        let Some(request) = current.request else {
            let hangup = self.shared.signal.hangup(current.generation);
            self.server
                .metrics
                .record_final(counters, hangup.map(|h| h.cause()));
            return;
        };
        let (method, uri) = *request;
        let outcome = Outcome {
            remote_addr: self.shared.transport.remote_addr(),
            method,
            uri,
            intended_status: writer.status(),
            counters,
            duration: current.started.elapsed(),
            hangup: self.shared.signal.hangup(current.generation),
            complete: writer.is_complete(),
            in_flight: false,
        };
        self.settling.push_back(Settling {
            outcome,
            origin: current.origin,
            end: current.origin + writer.produced(),
            deadline: Instant::now() + self.shared.config.ack_wait,
        });
    }

    /// Emits the queued outcomes whose bytes the client acknowledged, whose
    /// `ack_wait` ran out, or all of them with `force`. Reads `TCP_INFO`
    /// once.
    fn settle(&mut self, force: bool) {
        let total_written = self.writer.total_written();
        self.settle_with(force, total_written);
    }

    /// [`settle`](Self::settle), with the connection's written-bytes total
    /// given: while an exchange is in progress the writer is lent out, so
    /// `Drop` computes it from the exchange's origin and counters.
    fn settle_with(&mut self, force: bool, total_written: u64) {
        if self.settling.is_empty() {
            return;
        }
        let total_acked = self.shared.transport.bytes_acked();
        let now = Instant::now();
        while let Some(front) = self.settling.front() {
            let acked_all = total_acked.is_none_or(|acked| acked >= front.end);
            if !(acked_all || force || now >= front.deadline) {
                break;
            }
            let Some(Settling {
                mut outcome,
                origin,
                end,
                ..
            }) = self.settling.pop_front()
            else {
                break;
            };
            let written = total_written.min(end).saturating_sub(origin);
            let acked = total_acked.map(|acked| acked.min(end).saturating_sub(origin).min(written));
            outcome.counters.written = written;
            outcome.counters.acked = acked;
            outcome.in_flight = acked.is_some_and(|acked| acked < written);
            if written < end - origin {
                // A held-back (pipelined) response whose bytes never all
                // reached the kernel: the connection failed after it was
                // queued. Report it as cut short, with that failure.
                outcome.complete = false;
                if outcome.hangup.is_none() {
                    outcome.hangup = self.shared.signal.latest_hangup();
                }
            }
            self.emit(&outcome);
        }
    }

    fn emit(&self, outcome: &Outcome) {
        self.server.metrics.record(outcome);
        if is_access_log_enabled() {
            log_access(outcome);
        }
        if let Some(hook) = &self.shared.config.outcome_hook {
            (hook.0)(outcome);
        }
    }
}

/// A connection in its task. Every exchange ends in exactly one outcome,
/// even when the task is dropped mid-exchange (forced shutdown): dropping a
/// `Live` emits what is left. Only [`park`](Self::park) takes the
/// connection out, and it consumes the `Live`.
struct Live<H>(Option<Conn<H>>);

impl<H> Deref for Live<H> {
    type Target = Conn<H>;

    fn deref(&self) -> &Conn<H> {
        self.0
            .as_ref()
            .expect("only park() empties a Live, and it consumes it")
    }
}

impl<H> DerefMut for Live<H> {
    fn deref_mut(&mut self) -> &mut Conn<H> {
        self.0
            .as_mut()
            .expect("only park() empties a Live, and it consumes it")
    }
}

impl<H> Drop for Live<H> {
    fn drop(&mut self) {
        if let Some(conn) = &mut self.0 {
            conn.emit_remaining();
        }
    }
}

impl<H: Handler> Live<H> {
    /// Moves the idle connection's socket to the parking lot and lets this
    /// task end; see [`crate::park`]. [`Conn::can_park`] said yes. A socket
    /// that cannot park is closed, as an idle connection may be.
    fn park(mut self, idle_deadline: tokio::time::Instant) {
        let Some(conn) = self.0.take() else { return };
        let Conn {
            shared,
            _open: open,
            server,
            writer,
            served,
            ..
        } = conn;
        let Some(lot) = server.parking.clone() else {
            return;
        };
        let Ok(shared) = Arc::try_unwrap(shared) else {
            // `can_park` checked that this is the only reference.
            return;
        };
        let (socket, remote_addr) = match shared.into_transport().into_std() {
            Ok(parts) => parts,
            Err(err) => {
                tracing::debug!(%err, "closing: an idle connection could not park");
                return;
            }
        };
        let parked = Parked {
            remote_addr,
            open,
            _parked: server.metrics.connection_parked(),
            written: writer.total_written(),
            served,
        };
        match lot.park(socket, parked, idle_deadline) {
            Ok(None) => {}
            Ok(Some(attendant)) => {
                let tracker = server.tracker.clone();
                let shutdown = server.shutdown.clone();
                tracker.spawn(attendant.run(shutdown, move |socket, parked| {
                    let server = server.clone();
                    server
                        .tracker
                        .clone()
                        .spawn(Conn::resume(socket, parked, server));
                }));
            }
            Err(err) => {
                tracing::debug!(%remote_addr, %err, "closing: an idle connection could not park");
            }
        }
    }
}

/// What a parked connection keeps besides its socket: serving it again
/// needs no more. About 80 bytes in the lot's table.
pub(crate) struct Parked {
    remote_addr: SocketAddr,
    open: ConnectionGuard,
    _parked: ParkedGuard,
    /// Bytes written on the connection so far: where the next response's
    /// acknowledged bytes start.
    written: u64,
    served: u64,
}

impl<H> Conn<H> {
    /// Emits the outcomes still owed when the connection is dropped: the
    /// exchange in progress (forced shutdown) and those waiting for
    /// acknowledgements.
    fn emit_remaining(&mut self) {
        let Some(current) = self.current.take() else {
            // Between exchanges the writer is home.
            return self.settle(true);
        };
        // Dropped mid-exchange (forced shutdown): the writer is lent out, so
        // its counters come from the signal, where the writer mirrors them.
        if self.shared.signal.hangup(current.generation).is_none() {
            report_shutdown(&self.shared);
        }
        let (buffered, written) = self.shared.signal.counters();
        let counters = Counters {
            buffered,
            written,
            acked: None,
        };
        let hangup = self.shared.signal.hangup(current.generation);
        let total_written = current.origin + written;
        if let Some(request) = current.request {
            let (method, uri) = *request;
            self.settling.push_back(Settling {
                outcome: Outcome {
                    remote_addr: self.shared.transport.remote_addr(),
                    method,
                    uri,
                    intended_status: self.shared.signal.status(),
                    counters,
                    duration: current.started.elapsed(),
                    hangup,
                    complete: false,
                    in_flight: false,
                },
                origin: current.origin,
                end: total_written,
                deadline: Instant::now(),
            });
        } else {
            self.server
                .metrics
                .record_final(counters, hangup.map(|h| h.cause()));
        }
        self.settle_with(true, total_written);
    }
}
