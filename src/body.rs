//! [`Body`]: the request body as a stream of chunks, read from the socket on
//! demand through the connection's read buffer (see `h1::input` for the
//! contract: no read before the handler asks, `100 Continue` on the first
//! read, chunks without copies, hang-ups and timeouts as
//! [`Error::ClientGone`], pipelined bytes left in place).

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use tokio::io::{AsyncRead, ReadBuf};

use crate::error::{Error, Result};
use crate::h1::head::Parts;
use crate::h1::input::Input;
use crate::h1::link::Link;
use crate::h1::loan::Home;

/// The body of a request, streamed.
///
/// Reading it is optional: a body the handler leaves unread is drained
/// after the response (up to `max_drain_bytes`) or the connection closes.
/// A `Body` kept past the handler (moved into a task) holds the
/// connection: once the response is finished, the connection waits for it
/// at most `body_read_timeout`, then closes; the late `Body` then reads
/// errors.
#[derive(Debug)]
pub struct Body {
    state: Home<Input>,
    link: Arc<Link>,
}

impl Body {
    pub(crate) fn new(state: Box<Input>, link: Arc<Link>) -> Self {
        Body {
            state: Home::new(state),
            link,
        }
    }

    /// The connection this body arrives on.
    pub(crate) fn link(&self) -> &Link {
        &self.link
    }

    /// The connection this body arrives on, to share.
    pub(crate) fn link_arc(&self) -> &Arc<Link> {
        &self.link
    }

    /// Keeps a finished request's head, emptied, to go back to the
    /// connection with this body's state (dropped if too large to keep).
    pub(crate) fn keep_spare_parts(&mut self, parts: Box<Parts>) {
        self.state.spare_parts = crate::h1::head::recycle(parts);
    }

    /// The bytes the client sent after this request, already read: for a
    /// connection taken over by an upgrade.
    ///
    /// # Errors
    ///
    /// An I/O error while the body is not complete: its bytes and the new
    /// protocol's would be mixed.
    pub(crate) fn take_after(&mut self) -> Result<Bytes> {
        if !self.is_complete() {
            return Err(Error::Io(io::Error::other(
                "an upgrade needs the request body read to its end",
            )));
        }
        Ok(self.state.buf.split().freeze())
    }

    /// The next chunk of the body, or `None` at its end.
    ///
    /// Cancel-safe: a `chunk()` dropped before it resolves loses nothing
    /// (the bytes stay in the connection's buffer, a `100 Continue` begun
    /// is finished by the next call), so it can be raced in `select!` or
    /// tried with `now_or_never`.
    ///
    /// # Errors
    ///
    /// [`Error::ClientGone`] if the client closed, reset or stalled inside
    /// the body; [`Error::BadRequest`] for malformed chunk framing.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>> {
        if !self.state.pending.is_empty() {
            return Ok(Some(std::mem::take(&mut self.state.pending)));
        }
        let Body { state, link } = self;
        poll_fn(|cx| state.poll_chunk(cx, link)).await
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
        let Body { state, link } = &mut *self;
        if state.pending.is_empty() {
            match ready!(state.poll_chunk(cx, link)) {
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

/// The body as `http_body` sees it, for tower services: data frames, then
/// the trailers of a chunked body (if any) as a last frame. The size hint
/// is exact when a `Content-Length` framed the body (minus what was read),
/// and open otherwise.
impl http_body::Body for Body {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>>>> {
        let Body { state, link } = &mut *self;
        if !state.pending.is_empty() {
            let data = std::mem::take(&mut state.pending);
            return Poll::Ready(Some(Ok(http_body::Frame::data(data))));
        }
        match ready!(state.poll_chunk(cx, link)) {
            Ok(Some(data)) => Poll::Ready(Some(Ok(http_body::Frame::data(data)))),
            Ok(None) if !state.trailers_yielded => {
                state.trailers_yielded = true;
                let trailers = state.decoder.trailers().cloned();
                Poll::Ready(trailers.map(|map| Ok(http_body::Frame::trailers(map))))
            }
            Ok(None) => Poll::Ready(None),
            Err(err) => Poll::Ready(Some(Err(err))),
        }
    }

    fn is_end_stream(&self) -> bool {
        let trailers_left = !self.state.trailers_yielded && self.state.decoder.trailers().is_some();
        self.is_complete() && !trailers_left
    }

    fn size_hint(&self) -> http_body::SizeHint {
        match self.remaining_hint() {
            Some(exact) => http_body::SizeHint::with_exact(exact),
            None => http_body::SizeHint::default(),
        }
    }
}

impl Drop for Body {
    fn drop(&mut self) {
        let mut state = self.state.lend();
        // Unread bytes of a chunk handed to AsyncRead are body data; they
        // were consumed from the buffer already and are simply dropped.
        state.pending = Bytes::new();
        self.link.input_return.put(state);
    }
}
