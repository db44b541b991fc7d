//! One exchange: begin it, run the handler raced against the socket watch
//! (sending held-back responses as soon as the handler yields), take the
//! lent states back, finish the response, drain what the handler left
//! unread, and conclude the outcome.

use std::any::Any;
use std::future::{Future, poll_fn};
use std::panic::AssertUnwindSafe;
use std::pin::{Pin, pin};
use std::task::{Context, Poll};

use http::{Method, StatusCode, Uri};

use crate::body::Body;
use crate::error::Error;
use crate::escape::Escaped;
use crate::exchange::OnHangup;
use crate::exchange::hangup::{Detection, HangupCause};
use crate::h1::backlog::Backlog;
use crate::h1::decode::{Decoded, Decoder};
use crate::h1::head::{BodyFraming, Head};
use crate::h1::input::{Input, READ_RESERVE_BYTES};
use crate::h1::link::{Expect, Link};
use crate::h1::output::{RequestFacts, Writing};
use crate::handler::Handler;
use crate::outcome::End;
use crate::outcome::ledger::{Closing, Handled};
use crate::outcome::log::is_access_log_enabled;
use crate::request::Request;
use crate::response::ResponseWriter;
use crate::transport::PeerEvent;

use super::{Conn, InProgress};

/// What the connection does after an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Next {
    /// Serve the next request.
    KeepAlive,
    /// Close (gracefully, or at once when the connection is dead).
    Close,
    /// The handler took the connection after `101 Switching Protocols`:
    /// leave it alone.
    Upgraded,
}

/// How the handler's run ended.
enum Ran {
    Returned(crate::Result<()>),
    /// Logged where it was caught (see [`log_panic`]).
    Panicked,
    /// Dropped under [`OnHangup::Cancel`] after its client left.
    Cancelled,
}

impl Ran {
    /// What the outcome needs of it.
    fn handled(&self) -> Handled {
        match self {
            Ran::Returned(Ok(())) => Handled::Returned,
            Ran::Returned(Err(err)) => Handled::Failed(err.hangup().cloned()),
            Ran::Panicked => Handled::Panicked,
            Ran::Cancelled => Handled::Cancelled,
        }
    }
}

/// The end of responses that a failed write left unsent.
pub(super) fn failure_end(err: &Error) -> End {
    match err.hangup() {
        Some(hangup) => End::ClientGone(hangup.clone()),
        None => End::CutShort(crate::outcome::Cutoff::WriteError),
    }
}

impl<H: Handler> Conn<H> {
    /// Runs one request/response exchange and records its outcome. Returns
    /// what the connection does next.
    pub(super) async fn exchange(&mut self, head: Head) -> Next {
        self.link.metrics.request_started();
        let started = self.head_read_stamp;
        let link = &self.link;
        let config = &link.config;
        let generation = link.exchange.begin(
            started,
            self.backlog.next_origin(),
            config.on_fin,
            config.on_hangup,
        );
        let wants_outcomes = config.outcome_hook.is_some() || is_access_log_enabled();
        self.current = Some(InProgress {
            request: wants_outcomes
                .then(|| Box::new((head.parts.method.clone(), head.parts.uri_copy()))),
        });
        self.output.begin(RequestFacts {
            version: head.parts.version,
            is_head: head.parts.method == Method::HEAD,
            keep_alive: head.keep_alive && !self.server.shutdown.is_draining(),
        });
        let expect_continue = head.expect_continue && head.framing != BodyFraming::Empty;
        link.set_expect(if expect_continue {
            Expect::Pending
        } else {
            Expect::Nothing
        });
        let decoder = Decoder::new(
            head.framing,
            config.lenient_line_endings,
            config.max_head_bytes,
        );
        self.input.begin(decoder, generation);
        if self.backlog.held_len() > 0 {
            link.hold_back();
        }
        let body = Body::new(self.input.lend(), link.clone());
        let request = Request::new(head.parts, body, generation);
        let writer = ResponseWriter::new(self.output.lend(), link.clone());
        // The handler runs in this task, raced against the socket watch
        // (see `Serve`); the writer may then still be held by a task it
        // spawned, and is waited for the same way.
        let (ran, output) = {
            let link = &*self.link;
            let mut watch = pin!(link.transport.peer_event());
            let mut reset = pin!(link.transport.peer_reset());
            let mut watching = if link.config.socket_watch {
                Watching::Peer
            } else {
                Watching::Off
            };
            let ran = {
                // Borrowed, not cloned: an `Arc` clone is a locked
                // instruction. Dropped at the end of this block, with its
                // `Request` and `ResponseWriter` if it still holds them
                // (cancelled).
                let mut handler = pin!(self.server.handler.call(request, writer));
                let exchange = &link.exchange;
                let current = &self.current;
                let mut guarded = pin!(poll_fn(move |cx| {
                    // Cancelling is the exchange's policy, applied as soon
                    // as its client is gone; the watch and failing reads
                    // and writes report that, and wake this task.
                    if exchange.is_gone() && exchange.on_hangup() == OnHangup::Cancel {
                        return Poll::Ready(Ran::Cancelled);
                    }
                    let poll = AssertUnwindSafe(|| handler.as_mut().poll(cx));
                    match std::panic::catch_unwind(poll) {
                        Ok(Poll::Ready(result)) => Poll::Ready(Ran::Returned(result)),
                        Ok(Poll::Pending) => Poll::Pending,
                        Err(panic) => {
                            // Logged here, so that `Ran` stays cheap to
                            // move and drop on every request.
                            let request = current.as_ref().and_then(|c| c.request.as_deref());
                            log_panic(link, request, &*panic);
                            Poll::Ready(Ran::Panicked)
                        }
                    }
                }));
                Serve {
                    until: guarded.as_mut(),
                    watch: watch.as_mut(),
                    reset: reset.as_mut(),
                    watching: &mut watching,
                    link,
                    backlog: &mut self.backlog,
                    closing: &mut self.closing,
                }
                .await
            };
            let mut returned = pin!(link.output_return.take());
            let output = Serve {
                until: returned.as_mut(),
                watch: watch.as_mut(),
                reset: reset.as_mut(),
                watching: &mut watching,
                link,
                backlog: &mut self.backlog,
                closing: &mut self.closing,
            }
            .await;
            (ran, output)
        };
        self.output.restore(output);
        self.take_input_if_back().await;
        let next = if self.link.is_upgraded() {
            // The handler took the connection: its 101 head is out, and no
            // more HTTP may be read or written here.
            Next::Upgraded
        } else if self.after_handler(&ran).await {
            Next::KeepAlive
        } else {
            Next::Close
        };
        // Nothing is held back for this exchange any more; only a body kept
        // by a task could be waiting for its turn.
        self.link.release(!self.input.is_home());
        if let Some(current) = self.current.take() {
            self.conclude(current, ran.handled());
        }
        next
    }

    /// Finishes the response the handler left, then drains what it left
    /// unread. Returns whether the connection may serve another request.
    async fn after_handler(&mut self, ran: &Ran) -> bool {
        if self.output.writing() == Writing::Aborted {
            self.before_abort().await;
            return false;
        }
        let error = match ran {
            Ran::Returned(Ok(())) => None,
            Ran::Returned(Err(err)) => Some((err.status(), err.is_client_gone(), err.to_string())),
            Ran::Panicked => Some((
                StatusCode::INTERNAL_SERVER_ERROR,
                false,
                "handler panicked".to_owned(),
            )),
            Ran::Cancelled => return false,
        };
        if self.link.exchange.is_gone() {
            return false;
        }
        if let Some((status, client_gone, message)) = error {
            if client_gone || self.output.is_committed() {
                // Nothing useful can follow a partly sent response: closing
                // (without the last chunk) tells the client it is truncated.
                let message = Escaped::display(&message);
                tracing::debug!(%message, "handler failed after committing its response");
                return false;
            }
            let reason = match status {
                StatusCode::INTERNAL_SERVER_ERROR => "internal server error",
                _ => message.as_str(),
            };
            return self.answer_error(status, reason).await;
        }
        let drainable = self.input.is_home()
            && !self.input.is_failed()
            && (self.input.decoder.is_done() || self.can_drain());
        if !drainable {
            // Decided before the head is committed, so that the response
            // says `connection: close`.
            self.output.set_close();
        }
        // Hold this response back while bytes of the next pipelined
        // request are already here, up to one output buffer of held-back
        // bytes: it goes out with the next one's, or as soon as the next
        // handler waits for anything, or before the connection waits on
        // the socket.
        let defer = !self.output.must_close()
            && self.input.is_home()
            && self.input.decoder.is_done()
            && self.backlog.held_len() < self.link.config.write_buffer_bytes
            && !self.input.buf.is_empty();
        let link = &*self.link;
        if let Err(err) = self
            .output
            .finish(link, Some(&mut self.backlog), defer)
            .await
        {
            if !self.output.is_committed() && !err.is_client_gone() {
                // The head could not be framed (a Content-Length below the
                // body written): answer 500 rather than contradict it.
                tracing::debug!(%err, "response could not be framed");
                return self
                    .answer_error(StatusCode::INTERNAL_SERVER_ERROR, "internal server error")
                    .await;
            }
            return false;
        }
        if !self.input.is_home() {
            self.await_kept_body().await;
            return false;
        }
        if self.output.must_close() {
            return false;
        }
        if self.input.decoder.is_done() {
            return true;
        }
        self.drain().await
    }

    /// Takes the read state back if the body was dropped (it is, unless a
    /// task kept it), with the finished request's head for the next one
    /// to parse into.
    async fn take_input_if_back(&mut self) {
        if self.input.is_home() || !self.link.input_return.is_full() {
            return;
        }
        // Returns at once: the state is there.
        self.input.restore(self.link.input_return.take().await);
        if let Some(parts) = self.input.spare_parts.take() {
            self.spare_parts.get_or_insert(parts);
        }
    }

    /// The handler aborted: the connection will close with an RST, which
    /// discards whatever our kernel still holds unsent or unacknowledged.
    /// Responses to earlier pipelined requests were complete, though, and
    /// are owed: send the held-back ones and wait (at most `ack_wait`) for
    /// the client's TCP to acknowledge them before the reset.
    async fn before_abort(&mut self) {
        if let Err(err) = self.backlog.flush(&self.link).await {
            self.closing = Closing::Failed(failure_end(&err));
            return;
        }
        let earlier = self.backlog.written();
        let deadline = tokio::time::Instant::now() + self.link.config.ack_wait;
        while self
            .link
            .transport
            .bytes_acked()
            .is_some_and(|acked| acked < earlier)
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(super::wait::ACK_POLL).await;
        }
        self.settle();
    }

    /// Replaces the uncommitted response with an error and sends it; the
    /// connection then closes. The request body, if it is home, is left.
    async fn answer_error(&mut self, status: StatusCode, reason: &str) -> bool {
        let link = &*self.link;
        self.output.set_error_response(link, status, reason);
        let _ = self
            .output
            .finish(link, Some(&mut self.backlog), false)
            .await;
        if !self.input.is_home() {
            self.await_kept_body().await;
        }
        false
    }

    /// Waits for a request body that a task kept past its handler, at most
    /// `body_read_timeout`: the connection cannot read its next request
    /// before the body is done. If it does not come back, the connection
    /// is marked closed (the late body then reads an error) and closes.
    async fn await_kept_body(&mut self) {
        let link = &self.link;
        let timeout = link.config.body_read_timeout;
        match tokio::time::timeout(timeout, link.input_return.take()).await {
            Ok(input) => {
                self.input.restore(input);
                if let Some(parts) = self.input.spare_parts.take() {
                    self.spare_parts.get_or_insert(parts);
                }
            }
            Err(_elapsed) => {
                tracing::debug!(
                    remote_addr = %link.transport.remote_addr(),
                    "closing: a request body was kept past body_read_timeout"
                );
                link.abandon();
            }
        }
    }

    /// Whether an unread body remainder may be drained to keep the
    /// connection. Not when the client still waits for a `100 Continue`
    /// that was never sent (it may never send the body: RFC 9110 §10.1.1),
    /// nor when the known remainder exceeds `max_drain_bytes`.
    fn can_drain(&self) -> bool {
        let continue_unsent = matches!(self.link.expect(), Expect::Pending | Expect::Skipped);
        let too_long = self
            .input
            .decoder
            .known_remaining()
            .is_some_and(|n| n > self.link.config.max_drain_bytes);
        !continue_unsent && !too_long
    }

    /// Reads and discards the rest of a body the handler did not read, up
    /// to `max_drain_bytes`. Returns whether the connection can continue.
    async fn drain(&mut self) -> bool {
        let config = &self.link.config;
        let transport = &self.link.transport;
        let Input { buf, decoder, .. } = &mut *self.input;
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
}

/// Drives `until` (the handler, or the wait for a writer that a task it
/// spawned still holds) while the socket watch reports the client's FIN or
/// RST to the exchange, and sends held-back responses as soon as `until`
/// yields: a pipelined batch goes out in one write while handlers complete
/// without waiting, and never waits behind one that does (hyper's
/// `pipeline_flush` rule). A failed send is recorded in `closing`.
///
/// A future of references, so that awaiting it moves a few pointers: the
/// futures it drives stay pinned where the caller made them.
struct Serve<'a, F, W, R> {
    until: Pin<&'a mut F>,
    /// The watch for the client's FIN or RST.
    watch: Pin<&'a mut W>,
    /// After a FIN, the watch for an RST that may follow it.
    reset: Pin<&'a mut R>,
    watching: &'a mut Watching,
    link: &'a Link,
    backlog: &'a mut Backlog,
    closing: &'a mut Closing,
}

/// What the socket watch waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Watching {
    /// `socket_watch` is off, or the client reset: nothing more to see.
    Off,
    /// The client's FIN or RST.
    Peer,
    /// After a FIN (which stays readable: one report is all it gives), an
    /// RST: a client that half-closed and then left for good.
    Reset,
}

impl<F, W, R> Future for Serve<'_, F, W, R>
where
    F: Future,
    W: Future<Output = std::io::Result<PeerEvent>>,
    R: Future<Output = std::io::Result<Option<i32>>>,
{
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        loop {
            if let Poll::Ready(output) = this.until.as_mut().poll(cx) {
                return Poll::Ready(output);
            }
            let seen = match *this.watching {
                Watching::Off => None,
                Watching::Peer => match this.watch.as_mut().poll(cx) {
                    Poll::Ready(Ok(PeerEvent::Closed)) => {
                        *this.watching = Watching::Reset;
                        Some((HangupCause::PeerClosed, None))
                    }
                    Poll::Ready(Ok(PeerEvent::Reset(errno))) => {
                        *this.watching = Watching::Off;
                        Some((HangupCause::Reset, errno))
                    }
                    Poll::Ready(Err(err)) => {
                        *this.watching = Watching::Off;
                        Some((HangupCause::Reset, err.raw_os_error()))
                    }
                    Poll::Pending => None,
                },
                Watching::Reset => match this.reset.as_mut().poll(cx) {
                    Poll::Ready(result) => {
                        *this.watching = Watching::Off;
                        let errno = result.unwrap_or_else(|err| err.raw_os_error());
                        Some((HangupCause::Reset, errno))
                    }
                    Poll::Pending => None,
                },
            };
            if let Some((cause, errno)) = seen {
                let link = this.link;
                link.exchange
                    .report(&link.transport, cause, Detection::SocketWatch, errno);
                // `until` may react at once (a handler cancelled now).
                continue;
            }
            if this.backlog.held_len() > 0 {
                if let Poll::Ready(result) = this.backlog.poll_flush(cx, this.link) {
                    if let Err(err) = result {
                        *this.closing = Closing::Failed(failure_end(&err));
                    }
                    // A writer waiting for its turn may go on now.
                    this.link.release(true);
                    continue;
                }
            }
            return Poll::Pending;
        }
    }
}

/// The error line of a handler's panic: the request it served (method
/// and target, when outcome records are kept) and the panic's message
/// when it is text (`panic!("...")` and `panic!("{x}")` both are),
/// escaped like every client-controlled byte (a message may quote the
/// request).
#[cold]
fn log_panic(link: &Link, request: Option<&(Method, Uri)>, payload: &(dyn Any + Send)) {
    let remote_addr = link.transport.remote_addr();
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied());
    let message = message.map_or_else(
        || "(not text)".to_owned(),
        |m| Escaped::display(&m).to_string(),
    );
    match request {
        Some((method, uri)) => tracing::error!(
            %remote_addr,
            method = %Escaped::display(method),
            target = %Escaped::display(uri),
            panic = message,
            "handler panicked"
        ),
        None => tracing::error!(%remote_addr, panic = message, "handler panicked"),
    }
}
