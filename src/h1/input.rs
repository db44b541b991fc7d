//! [`Input`]: the connection's read side during an exchange: the read
//! buffer (which may also hold the next pipelined requests), the current
//! body's decoder, and how a body read waits, times out, sends
//! `100 Continue`, and reports a client that left. Lent to the handler's
//! [`Body`](crate::Body) for the exchange.
//!
//! Contract (what `Body` promises):
//! - Nothing is read before the handler asks; `Expect: 100-continue` is
//!   answered on the first read, not before, and never after the final
//!   response head was committed.
//! - Chunks are `Bytes` split off the read buffer, not copies.
//! - An EOF or reset inside the body is a hang-up, not a parse error;
//!   malformed chunk framing is a `BadRequest`. After either, every read
//!   returns the same error.
//! - A read that makes no progress for `body_read_timeout` fails with a
//!   hang-up of cause `ReadTimeout`.
//! - Bytes after the body (a pipelined request) stay in the buffer.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use tokio::time::Sleep;

use crate::error::{BadRequest, Error, Result};
use crate::exchange::hangup::{Detection, HangupCause, classify};

use super::decode::{Decoded, Decoder};
use super::head::{BodyFraming, Parts};
use super::link::{Expect, Link, Party};

/// Largest chunk handed out at once, in bytes: bounds how much of the read
/// buffer one `Bytes` keeps alive.
const MAX_CHUNK_BYTES: usize = 64 * 1024;

/// Spare capacity reserved before each socket read, in bytes.
pub(crate) const READ_RESERVE_BYTES: usize = 8 * 1024;

/// Spare capacity reserved before a body read, at most, in bytes: a large
/// body streams in reads of up to 64 KiB (loopback's segment size) rather
/// than 8 KiB, eight times fewer syscalls for an upload; a small one gets
/// what it still needs, at least `READ_RESERVE_BYTES`.
const BODY_READ_RESERVE_BYTES: usize = 64 * 1024;

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// The read side the connection lends to a request's body.
#[derive(Debug)]
pub(crate) struct Input {
    pub buf: BytesMut,
    pub decoder: Decoder,
    failed: Option<Failure>,
    /// The no-progress timer, allocated on the first wait of the
    /// connection and reused.
    timer: Option<Pin<Box<Sleep>>>,
    /// The timer's deadline belongs to the current wait.
    timer_armed: bool,
    /// Bytes of `100 Continue` written so far.
    continue_sent: usize,
    /// A chunk partly consumed by `AsyncRead`.
    pub pending: Bytes,
    /// The trailers were handed out as a frame (`http_body::Body`).
    pub trailers_yielded: bool,
    generation: u64,
    /// The finished request's head, emptied (see `head::recycle`), riding
    /// back to the connection with this state for the next request to
    /// parse into: one hand-off for both.
    pub spare_parts: Option<Box<Parts>>,
}

#[derive(Debug, Clone, Copy)]
enum Failure {
    Bad(BadRequest),
    Gone,
}

impl Input {
    /// The read side of a connection with this read buffer; no body yet.
    pub(crate) fn new(buf: BytesMut) -> Self {
        Input {
            buf,
            decoder: Decoder::new(BodyFraming::Empty, false, 0),
            failed: None,
            timer: None,
            timer_armed: false,
            continue_sent: 0,
            pending: Bytes::new(),
            trailers_yielded: false,
            generation: 0,
            spare_parts: None,
        }
    }

    /// Starts the body of the next request (exchange `generation`). The
    /// read buffer, and the timer's allocation, carry over.
    pub(crate) fn begin(&mut self, decoder: Decoder, generation: u64) {
        self.decoder = decoder;
        self.failed = None;
        self.timer_armed = false;
        self.continue_sent = 0;
        self.pending = Bytes::new();
        self.trailers_yielded = false;
        self.generation = generation;
    }

    /// True when the framing was broken or the client left mid-body: the
    /// connection cannot be reused.
    pub(crate) fn is_failed(&self) -> bool {
        self.failed.is_some()
    }

    /// The next chunk of body data, `None` at the end.
    pub(crate) fn poll_chunk(
        &mut self,
        cx: &mut Context<'_>,
        link: &Link,
    ) -> Poll<Result<Option<Bytes>>> {
        let result = loop {
            if let Some(failure) = self.failed {
                break Err(self.failure_error(failure, link));
            }
            match self.decoder.decode(&mut self.buf, MAX_CHUNK_BYTES) {
                Err(bad) => self.failed = Some(Failure::Bad(bad)),
                Ok(Decoded::Data(data)) => break Ok(Some(data)),
                Ok(Decoded::End) => break Ok(None),
                Ok(Decoded::NeedMore) => {
                    link.exchange.set_reading_body(true);
                    ready!(self.poll_fill(cx, link))?;
                }
            }
        };
        link.exchange.set_reading_body(false);
        Poll::Ready(result)
    }

    /// Reads more bytes into the buffer; sends `100 Continue` first if the
    /// client waits for it.
    fn poll_fill(&mut self, cx: &mut Context<'_>, link: &Link) -> Poll<Result<()>> {
        if link.is_abandoned() {
            return Poll::Ready(Err(Error::Io(io::Error::other(
                "the connection closed: the request body was kept past body_read_timeout",
            ))));
        }
        if matches!(link.expect(), Expect::Pending | Expect::Sending) {
            ready!(self.poll_send_continue(cx, link))?;
        }
        let reserve = self
            .decoder
            .known_remaining()
            .map_or(BODY_READ_RESERVE_BYTES, |n| {
                usize::try_from(n)
                    .unwrap_or(usize::MAX)
                    .clamp(READ_RESERVE_BYTES, BODY_READ_RESERVE_BYTES)
            });
        match link.transport.poll_read(cx, &mut self.buf, reserve) {
            Poll::Ready(Ok(0)) => {
                self.fail_gone(link, HangupCause::PeerClosed, Detection::Read, None);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Ok(_)) => {
                // Progress: the next wait gets a full timeout of its own.
                self.timer_armed = false;
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(err)) => match classify(&err, Detection::Read) {
                Some(cause) => {
                    self.fail_gone(link, cause, Detection::Read, err.raw_os_error());
                    Poll::Ready(Ok(()))
                }
                None => Poll::Ready(Err(Error::Io(err))),
            },
            Poll::Pending => {
                if !self.timer_armed {
                    let deadline = (Instant::now() + link.config.body_read_timeout).into();
                    match &mut self.timer {
                        Some(timer) => timer.as_mut().reset(deadline),
                        None => self.timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
                    }
                    self.timer_armed = true;
                }
                let Some(timer) = self.timer.as_mut() else {
                    return Poll::Pending;
                };
                ready!(timer.as_mut().poll(cx));
                self.fail_gone(link, HangupCause::ReadTimeout, Detection::Timer, None);
                Poll::Ready(Ok(()))
            }
        }
    }

    /// Sends `100 Continue`, whole, unless the final head was committed
    /// first. Waits for held-back responses to go out before its first
    /// byte, and keeps the writer waiting until its last.
    fn poll_send_continue(&mut self, cx: &mut Context<'_>, link: &Link) -> Poll<Result<()>> {
        if self.continue_sent == 0 {
            ready!(link.poll_write_turn(cx, Party::Interim));
            if !link.move_expect(Expect::Pending, Expect::Sending) {
                // The writer committed the final head first: no `100`.
                return Poll::Ready(Ok(()));
            }
        }
        let result = loop {
            if self.continue_sent == CONTINUE.len() {
                break Ok(());
            }
            let slice = [IoSlice::new(&CONTINUE[self.continue_sent..])];
            match ready!(link.transport.poll_write_vectored(cx, &slice)) {
                Ok(n) if n > 0 => {
                    self.continue_sent += n;
                    link.metrics.add_written(n as u64);
                    link.exchange.add_interim_written(n as u64);
                }
                Ok(_) => {
                    self.fail_gone(link, HangupCause::WriteFailed, Detection::Write, None);
                    break Ok(());
                }
                Err(err) => match classify(&err, Detection::Write) {
                    Some(cause) => {
                        self.fail_gone(link, cause, Detection::Write, err.raw_os_error());
                        break Ok(());
                    }
                    None => break Err(Error::Io(err)),
                },
            }
        };
        // The writer's turn, whatever happened: a failure is in the
        // exchange for it to see.
        link.move_expect(Expect::Sending, Expect::Sent);
        Poll::Ready(result)
    }

    fn fail_gone(
        &mut self,
        link: &Link,
        cause: HangupCause,
        detection: Detection,
        errno: Option<i32>,
    ) {
        link.exchange
            .report(&link.transport, cause, detection, errno);
        self.failed = Some(Failure::Gone);
    }

    fn failure_error(&self, failure: Failure, link: &Link) -> Error {
        match failure {
            Failure::Bad(bad) => Error::BadRequest(bad),
            Failure::Gone => match link.exchange.hangup(self.generation) {
                Some(hangup) => Error::ClientGone(hangup),
                None => Error::Io(io::ErrorKind::UnexpectedEof.into()),
            },
        }
    }
}
