//! [`Body`]: the request body as a stream of chunks, read from the socket on
//! demand through the connection's read buffer.
//!
//! Contract:
//! - Nothing is read before the handler asks; `Expect: 100-continue` is
//!   answered on the first read, not before.
//! - Chunks are `Bytes` split off the read buffer, not copies.
//! - An EOF or reset inside the body is a hang-up ([`Error::ClientGone`]),
//!   not a parse error; malformed chunk framing is [`Error::BadRequest`].
//!   After either, every read returns the same error.
//! - A read that makes no progress for `body_read_timeout` fails with a
//!   hang-up of cause [`ReadTimeout`](crate::HangupCause::ReadTimeout).
//! - Bytes after the body (a pipelined request) stay in the buffer.

use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::time::Sleep;

use crate::decode::{Decoded, Decoder};
use crate::error::{BadRequest, Detection, Error, HangupCause, Phase, Result};
use crate::exchange::{Expect, Home, Shared};
use crate::head::Parts;

/// Largest chunk handed out at once, in bytes: bounds how much of the read
/// buffer one `Bytes` keeps alive.
const MAX_CHUNK_BYTES: usize = 64 * 1024;

/// Spare capacity reserved before each socket read, in bytes.
pub(crate) const READ_RESERVE_BYTES: usize = 8 * 1024;

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// The body of a request, streamed. See the module docs for the contract.
#[derive(Debug)]
pub struct Body {
    state: Home<BodyState>,
    shared: Arc<Shared>,
}

/// The body state the connection lends out: the read buffer (which may
/// also hold the next pipelined requests) and the decoder.
#[derive(Debug)]
pub(crate) struct BodyState {
    pub buf: BytesMut,
    pub decoder: Decoder,
    failed: Option<Failure>,
    /// The no-progress timer, allocated on the first wait of the
    /// connection and reused.
    timer: Option<Pin<Box<Sleep>>>,
    /// The timer's deadline belongs to the current wait.
    timer_armed: bool,
    continue_sent: usize,
    /// A chunk partly consumed by `AsyncRead`.
    pending: Bytes,
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

impl BodyState {
    /// The state of a connection with this read buffer; no body yet.
    pub(crate) fn new(buf: BytesMut) -> Self {
        BodyState {
            buf,
            decoder: Decoder::new(crate::head::BodyFraming::Empty, false, 0),
            failed: None,
            timer: None,
            timer_armed: false,
            continue_sent: 0,
            pending: Bytes::new(),
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
        shared: &Shared,
    ) -> Poll<Result<Option<Bytes>>> {
        loop {
            if let Some(failure) = self.failed {
                return Poll::Ready(Err(self.failure_error(failure, shared)));
            }
            match self.decoder.decode(&mut self.buf, MAX_CHUNK_BYTES) {
                Err(bad) => {
                    self.failed = Some(Failure::Bad(bad));
                }
                Ok(Decoded::Data(data)) => return Poll::Ready(Ok(Some(data))),
                Ok(Decoded::End) => return Poll::Ready(Ok(None)),
                Ok(Decoded::NeedMore) => ready!(self.poll_fill(cx, shared))?,
            }
        }
    }

    /// Reads more bytes into the buffer; sends `100 Continue` first if the
    /// client waits for it.
    fn poll_fill(&mut self, cx: &mut Context<'_>, shared: &Shared) -> Poll<Result<()>> {
        if shared.expect() == Expect::Pending {
            ready!(self.poll_send_continue(cx, shared))?;
        }
        match shared
            .transport
            .poll_read(cx, &mut self.buf, READ_RESERVE_BYTES)
        {
            Poll::Ready(Ok(0)) => {
                self.fail_gone(shared, HangupCause::PeerClosed, Detection::Read, None);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Ok(_)) => {
                // Progress: the next wait gets a full timeout of its own.
                self.timer_armed = false;
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(err)) => match crate::disconnect::classify(&err, Detection::Read) {
                Some(cause) => {
                    self.fail_gone(shared, cause, Detection::Read, err.raw_os_error());
                    Poll::Ready(Ok(()))
                }
                None => Poll::Ready(Err(Error::Io(err))),
            },
            Poll::Pending => {
                if !self.timer_armed {
                    let deadline = (Instant::now() + shared.config.body_read_timeout).into();
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
                self.fail_gone(shared, HangupCause::ReadTimeout, Detection::Timer, None);
                Poll::Ready(Ok(()))
            }
        }
    }

    fn poll_send_continue(&mut self, cx: &mut Context<'_>, shared: &Shared) -> Poll<Result<()>> {
        while self.continue_sent < CONTINUE.len() {
            let slice = [IoSlice::new(&CONTINUE[self.continue_sent..])];
            match ready!(shared.transport.poll_write_vectored(cx, &slice)) {
                Ok(n) if n > 0 => {
                    self.continue_sent += n;
                    shared.metrics.add_written(n as u64);
                    shared.add_interim_written(n as u64);
                }
                Ok(_) => {
                    self.fail_gone(shared, HangupCause::WriteFailed, Detection::Write, None);
                    return Poll::Ready(Ok(()));
                }
                Err(err) => match crate::disconnect::classify(&err, Detection::Write) {
                    Some(cause) => {
                        self.fail_gone(shared, cause, Detection::Write, err.raw_os_error());
                        return Poll::Ready(Ok(()));
                    }
                    None => return Poll::Ready(Err(Error::Io(err))),
                },
            }
        }
        shared.resolve_expect(Expect::Sent);
        Poll::Ready(Ok(()))
    }

    fn fail_gone(
        &mut self,
        shared: &Shared,
        cause: HangupCause,
        detection: Detection,
        errno: Option<i32>,
    ) {
        let acked = shared.transport.bytes_acked();
        shared
            .signal
            .report(cause, detection, Phase::ReadingBody, errno, acked, true);
        self.failed = Some(Failure::Gone);
    }

    fn failure_error(&self, failure: Failure, shared: &Shared) -> Error {
        match failure {
            Failure::Bad(bad) => Error::BadRequest(bad),
            Failure::Gone => match shared.signal.hangup(self.generation) {
                Some(hangup) => Error::ClientGone(hangup),
                None => Error::Io(io::ErrorKind::UnexpectedEof.into()),
            },
        }
    }
}

impl Body {
    pub(crate) fn new(state: Box<BodyState>, shared: Arc<Shared>) -> Self {
        Body {
            state: Home::new(state),
            shared,
        }
    }

    /// The connection this body arrives on.
    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    /// Keeps a finished request's head, emptied, to go back to the
    /// connection with this body's state (dropped if too large to keep).
    pub(crate) fn keep_spare_parts(&mut self, parts: Box<Parts>) {
        self.state.spare_parts = crate::head::recycle(parts);
    }

    /// The next chunk of the body, or `None` at its end.
    ///
    /// # Errors
    ///
    /// [`Error::ClientGone`] if the client closed, reset or stalled inside
    /// the body; [`Error::BadRequest`] for malformed chunk framing.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>> {
        if !self.state.pending.is_empty() {
            return Ok(Some(std::mem::take(&mut self.state.pending)));
        }
        let Body { state, shared } = self;
        poll_fn(|cx| state.poll_chunk(cx, shared)).await
    }

    /// Reads the whole body into memory, refusing more than `limit_bytes`.
    ///
    /// A `Content-Length` over the limit is refused before anything is read.
    ///
    /// # Errors
    ///
    /// [`Error::BodyTooLarge`] past the limit (a handler that returns it
    /// before committing its response gets a `413` sent for it), and the
    /// errors of [`chunk`](Self::chunk).
    pub async fn read_all(&mut self, limit_bytes: u64) -> Result<Bytes> {
        let too_large = Error::BodyTooLarge { limit_bytes };
        if self
            .state
            .decoder
            .known_remaining()
            .is_some_and(|n| n > limit_bytes)
        {
            return Err(too_large);
        }
        let mut first: Option<Bytes> = None;
        let mut joined = BytesMut::new();
        let mut total = 0u64;
        while let Some(chunk) = self.chunk().await? {
            total += chunk.len() as u64;
            if total > limit_bytes {
                return Err(too_large);
            }
            match first.take() {
                None if joined.is_empty() => first = Some(chunk),
                None => joined.extend_from_slice(&chunk),
                Some(earlier) => {
                    joined.extend_from_slice(&earlier);
                    joined.extend_from_slice(&chunk);
                }
            }
        }
        Ok(first.unwrap_or_else(|| joined.freeze()))
    }

    /// The body's length if its framing states it (`Content-Length`), minus
    /// what was read already.
    pub fn remaining_hint(&self) -> Option<u64> {
        self.state
            .decoder
            .known_remaining()
            .map(|n| n + self.state.pending.len() as u64)
    }

    /// True once the whole body has been read.
    pub fn is_complete(&self) -> bool {
        self.state.decoder.is_done() && self.state.pending.is_empty()
    }

    /// The trailer fields of a chunked body, available once it has been
    /// read to the end; `None` if it had none.
    pub fn trailers(&self) -> Option<&HeaderMap> {
        self.state.decoder.trailers()
    }
}

impl AsyncRead for Body {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if out.remaining() == 0 {
            // Nothing can be filled: taking a chunk now would report EOF.
            return Poll::Ready(Ok(()));
        }
        let Body { state, shared } = &mut *self;
        if state.pending.is_empty() {
            match ready!(state.poll_chunk(cx, shared)) {
                Ok(Some(chunk)) => state.pending = chunk,
                Ok(None) => return Poll::Ready(Ok(())),
                Err(err) => return Poll::Ready(Err(io::Error::other(err))),
            }
        }
        let n = state.pending.len().min(out.remaining());
        out.put_slice(&state.pending.split_to(n));
        Poll::Ready(Ok(()))
    }
}

impl Drop for Body {
    fn drop(&mut self) {
        let mut state = self.state.lend();
        // Unread bytes of a chunk handed to AsyncRead are body data; they
        // were consumed from the buffer already and are simply dropped.
        state.pending = Bytes::new();
        self.shared.body_slot.put(state);
    }
}
