//! Waiting for the next request head: what the connection waits for
//! ([`Wait`]), until when, and how the wait ends ([`Ending`]): a head, a
//! clean close between requests, a client that left mid-head (a
//! [`Departure`]), a malformed head, or parking after `idle_release_after`.
//!
//! | wait | its deadline | on the deadline | on EOF or reset |
//! |---|---|---|---|
//! | `First`: a new connection's first head | `header_read_timeout` from the accept | departure (read timeout) | departure |
//! | `Idle`: between requests, nothing of the next head yet | `idle_release_after`, then `idle_timeout`, from the end of the last exchange | park, or free the buffers; then close | clean close |
//! | `Head`: part of a later head is here | `header_read_timeout` from its first bytes | departure (read timeout) | departure |
//!
//! Deadlines are armed only when the connection is about to wait on the
//! socket: a pipelined head that is already complete costs no timer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;

use crate::error::BadRequest;
use crate::exchange::hangup::{HangupCause, Phase};
use crate::h1::head::{self, Head, Limits};
use crate::h1::input::READ_RESERVE_BYTES;
use crate::handler::Handler;
use crate::outcome::ledger::Closing;
use crate::outcome::{ConnectionGuard, Departure, DepartureCause, ParkedGuard};
use crate::shutdown::Stage;

use super::budget::{self, HeadClaim};
use super::{Conn, Live};

/// Read buffer reserved for the first read of a request when the buffer is
/// empty, in bytes: a new connection, or one that released its buffers
/// after `idle_release_after`. Small on purpose: most heads fit, and glibc
/// serves allocations up to 1,032 bytes from its per-thread cache. A head
/// that does not fit continues in reads that reserve as much again as has
/// arrived (between this and `READ_RESERVE_BYTES`): a head trickling in
/// holds about twice its size, not 8 KiB.
const IDLE_READ_RESERVE_BYTES: usize = 1024;

/// How often a connection waiting for its next request re-reads
/// `TCP_INFO` while outcomes wait for acknowledgements. 5 ms: well under
/// `ack_wait`, and a delayed ACK is up to 40 ms.
pub(super) const ACK_POLL: Duration = Duration::from_millis(5);

/// Sleeps for [`ACK_POLL`]. `select!` evaluates the expression of a branch
/// it has disabled (and drops the future unpolled): as an `async fn` that
/// costs nothing, where `tokio::time::sleep` would read the clock and
/// clone the runtime's handle on every wait for a request.
pub(super) async fn ack_poll() {
    tokio::time::sleep(ACK_POLL).await;
}

/// What the connection waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// A new connection's first head (its deadline counts from the accept).
    First,
    /// Nothing of the next head yet. `released`: past
    /// `idle_release_after`, with the buffers freed.
    Idle { released: bool },
    /// Part of a later head has arrived.
    Head,
}

/// Why the connection stops waiting without a head.
pub(super) enum Ending {
    /// The client closed between requests, an idle connection timed out,
    /// or the server is draining: nothing to say.
    Clean,
    /// Idle past `idle_release_after` with nothing in progress: hand the
    /// socket to the parking lot until this idle deadline.
    Park(tokio::time::Instant),
    /// The head was malformed or over a limit: answer, then close.
    Reject(BadRequest),
    /// The client left before its head was complete.
    Departed(Departure),
    /// The connection cannot go on (writing held-back responses failed).
    Close,
}

impl<H: Handler> Conn<H> {
    fn limits(&self) -> Limits {
        let config = &self.link.config;
        Limits {
            max_request_line_bytes: config.max_request_line_bytes,
            max_head_bytes: config.max_head_bytes,
            max_headers: config.max_headers,
            lenient_line_endings: config.lenient_line_endings,
        }
    }

    /// Reads until a complete head is buffered. Before waiting on the
    /// socket, responses held back for pipelining are sent.
    pub(super) async fn read_head(&mut self) -> Result<Head, Ending> {
        let limits = self.limits();
        let mut wait = if self.served == 0 {
            Wait::First
        } else if self.input.buf.is_empty() {
            Wait::Idle { released: false }
        } else {
            Wait::Head
        };
        // When the current wait is due: the first head's deadline was set
        // at the accept; the others are armed at their first wait on the
        // socket. The registered timer may fire earlier (see `arm_timer`):
        // it is then re-armed and the wait goes on.
        let mut due = (wait == Wait::First).then(|| self.timer.deadline());
        // When an idle connection closes.
        let mut idle_deadline = self.timer.deadline();
        loop {
            match head::parse(
                &mut self.input.buf,
                &limits,
                &mut self.head_scan,
                &mut self.spare_parts,
            ) {
                Ok(Some(head)) => {
                    self.settle();
                    return Ok(head);
                }
                Err(bad) => return Err(Ending::Reject(bad)),
                Ok(None) => {}
            }
            if self.backlog.held_len() > 0 {
                self.since_yield = 0;
                if let Err(err) = self.backlog.flush(&self.link).await {
                    self.closing = Closing::Failed(super::dispatch::failure_end(&err));
                    return Err(Ending::Close);
                }
            }
            if due.is_none() {
                let config = &self.link.config;
                // `head_read_at` is the latest read's time: the start of
                // this wait when it brought part of a head.
                let now = if wait == Wait::Head {
                    self.head_read_at
                } else {
                    Instant::now()
                };
                // A departure counts from here: the end of the previous
                // exchange, near enough (it ran without waiting since).
                if wait != Wait::First {
                    self.wait_began = now;
                }
                let deadline = match wait {
                    // Armed at the accept already (`due` starts set).
                    Wait::First => self.timer.deadline(),
                    Wait::Head => (now + config.header_read_timeout).into(),
                    Wait::Idle { .. } => {
                        idle_deadline = (now + config.idle_timeout).into();
                        let release_after = config.idle_release_after;
                        if release_after.is_zero() {
                            if self.can_park() {
                                return Err(Ending::Park(idle_deadline));
                            }
                            self.release_buffers();
                            wait = Wait::Idle { released: true };
                            idle_deadline
                        } else if release_after < config.idle_timeout {
                            (now + release_after).into()
                        } else {
                            wait = Wait::Idle { released: true };
                            idle_deadline
                        }
                    }
                };
                due = Some(deadline);
                self.arm_timer(deadline);
            }
            // A new request's first read gets a small buffer (most heads
            // fit; see IDLE_READ_RESERVE_BYTES); a head trickling in gets
            // room in proportion to what came; a client whose last read
            // filled its room (a large head or batch) gets full room.
            let reserve = if self.last_read_filled {
                READ_RESERVE_BYTES
            } else {
                self.input
                    .buf
                    .len()
                    .clamp(IDLE_READ_RESERVE_BYTES, READ_RESERVE_BYTES)
            };
            let nothing_yet = self.input.buf.is_empty();
            if !nothing_yet && !self.claim_room_for_head(reserve) {
                return Err(Ending::Reject(BadRequest::HeadMemoryBudget));
            }
            let read = self.link.transport.read(&mut self.input.buf, reserve);
            let settling = !self.ledger.is_empty();
            let result = tokio::select! {
                biased;
                result = read => result,
                () = ack_poll(), if settling => {
                    self.settle();
                    continue;
                }
                () = &mut self.timer => {
                    let Some(deadline) = due else { continue };
                    if self.timer.deadline() < deadline {
                        // Armed for an earlier wait (`arm_timer`): not this
                        // one's deadline. Compares deadlines, not the clock:
                        // a timer never fires before its own.
                        self.timer.as_mut().reset(deadline);
                        continue;
                    }
                    match wait {
                        Wait::Idle { released: false } => {
                            if self.can_park() {
                                return Err(Ending::Park(idle_deadline));
                            }
                            // Idle for a while: hold no byte buffers until
                            // the next request (its first read reserves a
                            // small one).
                            self.release_buffers();
                            wait = Wait::Idle { released: true };
                            due = Some(idle_deadline);
                            self.timer.as_mut().reset(idle_deadline);
                            continue;
                        }
                        Wait::Idle { released: true } => return Err(Ending::Clean),
                        Wait::First | Wait::Head => {
                            return Err(self.departed(HangupCause::ReadTimeout));
                        }
                    }
                }
                () = self.server.shutdown.reached(Stage::Draining), if nothing_yet && wait != Wait::Head => {
                    return Err(Ending::Clean);
                }
            };
            match result {
                Ok(0) => {
                    return Err(match wait {
                        Wait::Idle { .. } => {
                            self.ledger.peer_closed();
                            Ending::Clean
                        }
                        Wait::First | Wait::Head => self.departed(HangupCause::PeerClosed),
                    });
                }
                Err(err) => {
                    // Outcomes not yet acknowledged did not all arrive.
                    self.closing = Closing::Reset(err.raw_os_error());
                    return Err(match wait {
                        Wait::Idle { .. } => Ending::Clean,
                        Wait::First | Wait::Head => self.departed(HangupCause::Reset),
                    });
                }
                Ok(n) => {
                    self.last_read_filled = n >= reserve;
                    self.unread_since_resume = false;
                    self.head_read_at = Instant::now();
                    self.head_read_stamp = self.link.exchange.stamp(self.head_read_at);
                    if let Wait::Idle { .. } = wait {
                        // A later head's deadline counts from its first
                        // bytes, armed only if they are not a whole head.
                        wait = Wait::Head;
                        due = None;
                    }
                }
            }
        }
    }

    /// The departure of a client that left before its head was complete.
    fn departed(&self, cause: HangupCause) -> Ending {
        Ending::Departed(Departure {
            remote_addr: self.link.transport.remote_addr(),
            cause: DepartureCause::Left(cause),
            phase: Phase::ReadingHead,
            received: self.input.buf.len() as u64,
            duration: self.wait_began.elapsed(),
        })
    }

    /// Counts and logs a departure.
    pub(super) fn record_departure(&mut self, departure: &Departure) {
        departure.record(&self.link.metrics);
    }

    /// Makes the wait's timer fire no later than `due`. A timer already
    /// set to fire earlier is left alone: the wait checks its own deadline
    /// when it fires and re-arms it then. On a busy keep-alive connection
    /// the deadline moves later with every request; leaving the timer
    /// saves re-registering it each time (it fires once per
    /// `idle_release_after` instead).
    fn arm_timer(&mut self, due: tokio::time::Instant) {
        if self.timer.deadline() > due {
            self.timer.as_mut().reset(due);
        }
    }

    /// Makes room for `reserve` more bytes of a head that is arriving,
    /// claimed from the server's head budget when the buffer grows past
    /// what every connection may hold (see [`super::budget`]). False when
    /// the budget is spent.
    fn claim_room_for_head(&mut self, reserve: usize) -> bool {
        let buf = &mut self.input.buf;
        buf.reserve(reserve);
        if buf.capacity() <= budget::FREE_HEAD_BYTES && self.head_claim.is_none() {
            return true;
        }
        let budget = &self.server.head_budget;
        self.head_claim
            .get_or_insert_with(|| HeadClaim::new(budget.clone()))
            .cover(buf.capacity())
    }

    /// Frees the read buffer (empty while idle) and the writer's buffers.
    fn release_buffers(&mut self) {
        self.head_claim = None;
        self.input.buf = BytesMut::new();
        self.spare_parts = None;
        self.output.release_buffers();
        self.backlog.release_buffer();
    }

    /// Whether this idle connection can park: a request was served (the
    /// first head's deadline counts from the accept), nothing is buffered
    /// either way, no outcome waits for acknowledgements, no handler kept
    /// a `Request` or `ResponseWriter` (they share the socket), and no
    /// bytes may sit unannounced in the socket.
    fn can_park(&self) -> bool {
        self.served > 0
            && !self.unread_since_resume
            && self.current.is_none()
            && self.input.buf.is_empty()
            && self.backlog.held_len() == 0
            && self.ledger.is_empty()
            && Arc::strong_count(&self.link) == 1
            // The lot would find such bytes (a socket joins its set
            // level-checked), but serving them now is cheaper.
            && !self.link.transport.may_hold_unannounced_bytes()
            && self.link.transport.can_park()
            && self.server.parking.is_some()
    }
}

impl<H: Handler> Live<H> {
    /// Moves the idle connection's socket to the parking lot and lets this
    /// task end; see [`crate::park`]. [`Conn::can_park`] said yes. A socket
    /// that cannot park is closed, as an idle connection may be.
    pub(super) fn park(mut self, idle_deadline: tokio::time::Instant) {
        let Some(conn) = self.0.take() else { return };
        let Conn {
            link,
            _open: open,
            server,
            backlog,
            served,
            ..
        } = conn;
        let Some(lot) = server.parking.clone() else {
            return;
        };
        let Ok(link) = Arc::try_unwrap(link) else {
            // `can_park` checked that this is the only reference.
            return;
        };
        let (socket, remote_addr) = match link.into_transport().into_std() {
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
            written: backlog.written(),
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

impl Parked {
    /// The client's address.
    pub(super) fn remote_addr(&self) -> SocketAddr {
        self.remote_addr
    }

    /// The address, the open-connection count, the bytes written and the
    /// requests served; the parked count ends here.
    pub(super) fn into_parts(self) -> (SocketAddr, ConnectionGuard, u64, u64) {
        (self.remote_addr, self.open, self.written, self.served)
    }
}
