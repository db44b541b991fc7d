//! One HTTP/1 connection's life, in one task: wait for a head (`wait`),
//! run the exchange (`dispatch`: the handler raced against the socket
//! watch, then finishing the response and draining what the handler left
//! unread), and go again while the connection may be kept; else close
//! (`close`: reject, linger, wait for acknowledgements).
//!
//! ```text
//!        ┌──────────────────────────── keep-alive, body drained ◀─────────────┐
//!        ▼                                                                    │
//!   ┌─────────┐ complete head ┌──────────────────────┐ states back ┌─────────┴┐
//!   │  wait   ├──────────────▶│ handler ∥ socket watch├────────────▶│  finish  │
//!   └─┬──┬──┬─┘               └──────────────────────┘             └────┬─────┘
//!     │  │  └ idle past idle_release_after: park (task ends)            │
//!     │  └ malformed head: reject (4xx/5xx), close                      │
//!     └ client left mid-head: departure record, close                   ▼
//!                                       close: flush, FIN, linger, wait for ACKs
//! ```
//!
//! The handler future runs inside this task (no spawn per request). The
//! watch only looks at readiness, so bytes of an unread body or of
//! pipelined requests stay where they are. Every exchange ends in exactly
//! one outcome, through the connection's ledger, even when the task is
//! dropped mid-exchange ([`Live`]).

mod budget;
mod close;
mod dispatch;
mod establish;
#[cfg_attr(not(feature = "tls"), allow(dead_code))]
pub(crate) mod handshakes;
mod wait;

use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use http::{Method, Uri};
use tokio::net::TcpStream;
use tokio::time::Sleep;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::h1::backlog::Backlog;
use crate::h1::head::{self, Parts};
use crate::h1::input::Input;
use crate::h1::link::Link;
use crate::h1::loan::Home;
use crate::h1::output::Output;
use crate::handler::Handler;
use crate::outcome::ledger::{Closing, Facts, Handled, Ledger, Sink, end_of};
use crate::outcome::{ConnectionGuard, Metrics, Outcome};
use crate::park::ParkingLot;
use crate::shutdown::{Shutdown, Stage};
use crate::transport::Transport;
use tokio::sync::OwnedSemaphorePermit;

pub(crate) use budget::HeadBudget;
use budget::HeadClaim;
use dispatch::Next;
pub(crate) use wait::Parked;

/// Pipelined requests served back to back without touching the socket
/// before the task yields to others: bounds one client's hold on a worker.
/// 64: deeper than any pipelining benchmark (16), so it rarely triggers.
const MAX_REQUESTS_BEFORE_YIELD: u32 = 64;

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
    /// The memory heads still arriving may hold, server-wide.
    pub head_budget: Arc<HeadBudget>,
    /// The TLS handshakes in progress (TLS listeners only): see
    /// [`handshakes`].
    pub handshakes: Option<Arc<handshakes::Handshakes>>,
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
            head_budget: self.head_budget.clone(),
            handshakes: self.handshakes.clone(),
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

/// The exchange in progress, for its outcome.
struct InProgress {
    /// Method and target, kept only when someone wants outcome records
    /// (an access-log subscriber or a hook); the metrics need neither.
    /// Boxed: moved with the rest on every request, used on few.
    request: Option<Box<(Method, Uri)>>,
}

pub(crate) struct Conn<H> {
    link: Arc<Link>,
    _open: ConnectionGuard,
    server: ServerParts<H>,
    /// The read buffer and body decoder (lent to the `Body` during an
    /// exchange).
    input: Home<Input>,
    /// The response state (lent to the `ResponseWriter` during an exchange).
    output: Home<Output>,
    /// Held-back responses and the bytes written so far.
    backlog: Backlog,
    /// Outcomes waiting for acknowledgements.
    ledger: Ledger,
    /// The exchange in progress.
    current: Option<InProgress>,
    /// How the connection ends, for the outcomes still in the ledger then.
    closing: Closing,
    /// One timer for head reads, reset instead of re-created.
    timer: Pin<Box<Sleep>>,
    /// The search for the end of the next head, kept across reads.
    head_scan: head::Scan,
    /// When the latest read of request heads returned: the start of every
    /// exchange whose head it completed (pipelined requests share one
    /// clock read), and that time on the exchange's clock.
    head_read_at: Instant,
    head_read_stamp: u64,
    /// When the wait for the next head began: the accept, or the end of
    /// the previous exchange (a departure's duration counts from it).
    wait_began: Instant,
    served: u64,
    since_yield: u32,
    /// The previous request's head, emptied, for the next to parse into
    /// (see `head::recycle`).
    spare_parts: Option<Box<Parts>>,
    /// Resumed from parking and not read from since: the bytes (or the
    /// close) that woke it are waiting, so it must read before it may
    /// park again.
    unread_since_resume: bool,
    /// The read buffer's claim on the server's head budget, once a head
    /// did not fit its first read.
    head_claim: Option<HeadClaim>,
    /// The last read filled the room it was given: the client is sending
    /// faster than a head trickles in, so the next read gets full room.
    last_read_filled: bool,
}

/// The slot the accept loop took for a connection before accepting it.
#[derive(Debug)]
pub(crate) struct Admitted {
    /// Its place under `max_connections`, for its whole life.
    pub connection: OwnedSemaphorePermit,
}

/// How a connection task begins.
enum Start {
    /// A connection just accepted: its transport is yet to be established.
    Accepted {
        stream: TcpStream,
        admitted: Admitted,
    },
    /// A parked connection whose bytes (or close) arrived.
    Resumed {
        socket: std::net::TcpStream,
        parked: Parked,
    },
}

impl<H: Handler> Conn<H> {
    /// Serves one accepted connection until it closes or parks.
    pub(crate) fn serve(
        stream: TcpStream,
        remote_addr: SocketAddr,
        server: ServerParts<H>,
        admitted: Admitted,
    ) -> impl Future<Output = ()> + Send {
        Self::drive(Start::Accepted { stream, admitted }, remote_addr, server)
    }

    /// Serves a parked connection again: bytes (or its close) arrived.
    fn resume(
        socket: std::net::TcpStream,
        parked: Parked,
        server: ServerParts<H>,
    ) -> impl Future<Output = ()> + Send {
        let remote_addr = parked.remote_addr();
        Self::drive(Start::Resumed { socket, parked }, remote_addr, server)
    }

    /// Runs the connection in this task until it closes or parks, or the
    /// grace period of a shutdown ends. One async function from the task's
    /// start (not one awaiting another): every wake-up of a busy
    /// connection polls through one state machine fewer.
    async fn drive(start: Start, remote_addr: SocketAddr, server: ServerParts<H>) {
        let _registration = server.shutdown.register_task().await;
        let (transport, resume) = match start {
            Start::Accepted { stream, admitted } => {
                let open = server.metrics.connection_opened(admitted.connection);
                let transport = establish::transport(stream, remote_addr, &server).await;
                let Some(transport) = transport else { return };
                // The head's clock starts once the connection can carry one.
                let ready = Instant::now();
                let resume = Resume {
                    open,
                    written: 0,
                    served: 0,
                    head_deadline: ready + server.config.header_read_timeout,
                    started: ready,
                };
                (transport, resume)
            }
            Start::Resumed { socket, parked } => {
                let (remote_addr, open, written, served) = parked.into_parts();
                let transport = match Transport::resumed(socket, remote_addr) {
                    Ok(transport) => transport,
                    Err(err) => {
                        tracing::debug!(%remote_addr, %err, "a parked connection could not resume");
                        return;
                    }
                };
                let now = Instant::now();
                let resume = Resume {
                    open,
                    written,
                    served,
                    head_deadline: now + server.config.header_read_timeout,
                    started: now,
                };
                (transport, resume)
            }
        };
        let shutdown = server.shutdown.clone();
        let link = Arc::new(Link::new(
            transport,
            server.config.clone(),
            server.metrics.clone(),
            shutdown.clone(),
        ));
        let conn = Conn {
            link,
            _open: resume.open,
            server,
            input: Home::new(Box::new(Input::new(BytesMut::new()))),
            output: Home::new(Box::default()),
            backlog: Backlog::resumed(resume.written),
            ledger: Ledger::default(),
            current: None,
            closing: Closing::Orderly,
            timer: Box::pin(tokio::time::sleep_until(resume.head_deadline.into())),
            head_scan: head::Scan::default(),
            head_read_at: resume.started,
            head_read_stamp: 0,
            wait_began: resume.started,
            served: resume.served,
            since_yield: 0,
            unread_since_resume: resume.served > 0,
            spare_parts: None,
            head_claim: None,
            last_read_filled: false,
        };
        // Weak: parking needs the only strong reference. The conn future is
        // dropped (its outcomes emitted) before the shutdown branch runs; a
        // handler that kept its `Request` keeps the link alive, and then
        // the FIN still goes out.
        let link = Arc::downgrade(&conn.link);
        tokio::select! {
            () = Self::run(Live(Some(conn))) => {}
            () = shutdown.reached(Stage::Forced) => {
                if let Some(link) = link.upgrade() {
                    link.transport.shutdown_write();
                }
            }
        }
    }

    async fn run(mut conn: Live<H>) {
        use wait::Ending;
        loop {
            let head = match conn.read_head().await {
                Ok(head) => head,
                Err(Ending::Clean) => {
                    // Outcomes waiting for acknowledgements (a client that
                    // half-closed after its request, say) are settled
                    // before the connection goes; there is nothing to
                    // linger for otherwise.
                    if !conn.ledger.is_empty() {
                        Box::pin(async { conn.close().await }).await;
                    }
                    return;
                }
                Err(Ending::Park(idle_deadline)) => return conn.park(idle_deadline),
                // Reject and close run at most once per connection; boxing
                // keeps their (large) futures out of every connection's
                // resident state.
                Err(Ending::Reject(bad)) => {
                    return Box::pin(async move { conn.reject(bad).await }).await;
                }
                Err(Ending::Departed(departure)) => {
                    conn.record_departure(&departure);
                    return;
                }
                Err(Ending::Close) => return Box::pin(async move { conn.close().await }).await,
            };
            // Not boxed, unlike the cold paths: boxing would keep the
            // handler's future out of a busy connection's state but costs an
            // allocation per request (+540 instructions; see
            // bench/RESULTS.md). Idle connections park instead.
            match conn.exchange(head).await {
                Next::KeepAlive => {}
                Next::Close => return Box::pin(async move { conn.close().await }).await,
                // Dropping `conn` leaves the slot with the upgraded socket.
                Next::Upgraded => return,
            }
            conn.served += 1;
            conn.since_yield += 1;
            if conn.since_yield >= MAX_REQUESTS_BEFORE_YIELD {
                conn.since_yield = 0;
                tokio::task::yield_now().await;
            }
        }
    }
}

impl<H> Conn<H> {
    /// Emits the queued outcomes whose bytes the client acknowledged or
    /// whose `ack_wait` ran out. Reads `TCP_INFO` once, and only when an
    /// outcome waits.
    fn settle(&mut self) {
        if self.ledger.is_empty() {
            return;
        }
        let total_acked = self.link.transport.bytes_acked();
        let sink = Sink {
            metrics: &self.link.metrics,
            hook: self.link.config.outcome_hook.as_ref(),
        };
        self.ledger
            .settle(self.backlog.written(), total_acked, &sink);
    }

    /// Builds the outcome of the exchange that just ended, the response
    /// state home, and queues it until the client acknowledged the
    /// response; with nobody wanting outcome records (no access log, no
    /// hook), only the metrics count it, at once.
    fn conclude(&mut self, current: InProgress, handled: Handled) {
        let exchange = &self.link.exchange;
        let output = &self.output;
        let end = end_of(Facts {
            handled,
            complete: output.writing() == crate::h1::output::Writing::Done,
            gone: exchange.gone_hangup(),
            aborted: output.writing() == crate::h1::output::Writing::Aborted,
            // A file that ended before the bytes to send breaks the
            // response too, but no write failed: it is a short body.
            write_error: output.writing() == crate::h1::output::Writing::Broken
                && !output.is_short(),
            shorter_than_declared: output.is_short(),
        });
        let origin = exchange.origin();
        let written = exchange.written();
        let end_byte = origin + written + output.deferred();
        self.backlog.add_written(written);
        self.record(current, end, end_byte);
    }

    /// Queues the outcome of `current`, whose response is bytes
    /// `origin..end_byte` of the connection's stream, or counts it at once
    /// when nobody wants the record.
    fn record(&mut self, current: InProgress, end: crate::outcome::End, end_byte: u64) {
        let exchange = &self.link.exchange;
        let counters = exchange.counters(None);
        let Some(request) = current.request else {
            self.link.metrics.record_final(counters, &end);
            return;
        };
        let (method, uri) = *request;
        let started = exchange.started();
        let outcome = Outcome {
            remote_addr: self.link.transport.remote_addr(),
            method,
            uri,
            intended_status: exchange.status(),
            counters,
            duration: started.elapsed(),
            end,
            peer_closed_after: exchange.peer_closed_after(),
            in_flight: false,
            interim_written: exchange.interim_written(),
        };
        let origin = exchange.origin();
        let ack_wait = self.link.config.ack_wait;
        self.ledger
            .push(outcome, started, origin, end_byte, ack_wait);
    }

    /// Emits the outcomes still owed when the connection is dropped: the
    /// exchange in progress (a forced shutdown) and those waiting for
    /// acknowledgements.
    fn emit_remaining(&mut self) {
        if let Some(current) = self.current.take() {
            // Dropped mid-exchange: the response state may be lent out, so
            // its facts come from the exchange, which owns them.
            let exchange = &self.link.exchange;
            let end = end_of(Facts {
                handled: Handled::ShutDown,
                complete: false,
                gone: exchange.gone_hangup(),
                aborted: false,
                write_error: false,
                shorter_than_declared: false,
            });
            let end_byte = exchange.origin() + exchange.written();
            self.backlog.add_written(exchange.written());
            self.closing = Closing::ShutDown;
            self.record(current, end, end_byte);
        }
        let total_acked = if self.ledger.is_empty() {
            None
        } else {
            self.link.transport.bytes_acked()
        };
        let closing = std::mem::replace(&mut self.closing, Closing::Orderly);
        let sink = Sink {
            metrics: &self.link.metrics,
            hook: self.link.config.outcome_hook.as_ref(),
        };
        self.ledger
            .close(self.backlog.written(), total_acked, closing, &sink);
    }
}

/// A connection in its task. Every exchange ends in exactly one outcome,
/// even when the task is dropped mid-exchange (forced shutdown): dropping a
/// `Live` emits what is left, and leaves an upgraded connection's slot with
/// its socket (see [`Link::keep_upgraded_slot`]). Only
/// [`park`](Self::park) takes the connection out, and it consumes the
/// `Live`.
struct Live<H>(Option<Conn<H>>);

impl<H> Deref for Live<H> {
    type Target = Conn<H>;

    fn deref(&self) -> &Conn<H> {
        self.0
            .as_ref()
            .expect("only park() and the drop empty a Live, and both consume it")
    }
}

impl<H> DerefMut for Live<H> {
    fn deref_mut(&mut self) -> &mut Conn<H> {
        self.0
            .as_mut()
            .expect("only park() and the drop empty a Live, and both consume it")
    }
}

impl<H> Drop for Live<H> {
    fn drop(&mut self) {
        let Some(mut conn) = self.0.take() else {
            return;
        };
        conn.emit_remaining();
        if conn.link.is_upgraded() {
            // The handler took the connection (`101`): the socket lives on
            // with it, so the connection's place among the open
            // connections and its slot under `max_connections` stay with
            // the socket's link, whether this task ends at the upgrade or
            // is dropped by a forced shutdown while its handler runs.
            let Conn {
                link, _open: open, ..
            } = conn;
            link.keep_upgraded_slot(open);
        }
    }
}
