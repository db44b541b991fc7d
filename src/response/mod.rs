//! [`ResponseWriter`], the handler-facing response API. The buffering and
//! framing rules behind it are `h1::output`'s ("the life of a write") and
//! `h1::commit`'s (the framing decision).

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use crate::error::{Error, Result};
use crate::exchange::hangup::{Counters, Hangup};
use crate::h1::link::Link;
use crate::h1::loan::Home;
use crate::h1::output::Output;
use crate::upgrade::Upgraded;

/// Writes the response to one request: status, headers, then body bytes.
///
/// Handed to the handler by value. Status and headers can change until the
/// head is committed (first flush, a write that overflows the buffer, or the
/// handler returning); after that, changing them returns
/// [`Error::HeadCommitted`].
///
/// Body bytes are copied into the output buffer (`write_buffer_bytes`)
/// while they fit; a write that does not fit commits the head and sends
/// the buffer and the new bytes together, without copying them, and
/// returns once the kernel took them all. Framing is decided at commit: a
/// `Content-Length` the handler set, else an automatic one if the handler
/// finished before the buffer filled, else `chunked` (close-delimited on
/// HTTP/1.0).
///
/// Dropping the writer (normally by returning from the handler) ends the
/// response; the connection finishes it. Errors of that final flush are
/// never dropped: they go into the exchange's outcome.
#[derive(Debug)]
pub struct ResponseWriter {
    state: Home<Output>,
    link: Arc<Link>,
}

impl ResponseWriter {
    pub(crate) fn new(state: Box<Output>, link: Arc<Link>) -> Self {
        ResponseWriter {
            state: Home::new(state),
            link,
        }
    }

    /// The status to send (default `200 OK`).
    pub fn status(&self) -> StatusCode {
        self.state.status()
    }

    /// Sets the status.
    ///
    /// # Errors
    ///
    /// [`Error::HeadCommitted`] once the head is committed, and
    /// [`Error::BodyNotAllowed`] for a status without a body (1xx, 204, 304)
    /// once body bytes were written; the status is then unchanged.
    pub fn set_status(&mut self, status: StatusCode) -> Result<()> {
        self.state.set_status(&self.link, status)
    }

    /// The response header fields set so far.
    ///
    /// The server adds `Date` (unless set), the framing field and
    /// `Connection`; a `Transfer-Encoding` set here is ignored, a
    /// `Content-Length` is honoured (see [`write`](Self::write)), and
    /// `Connection: close` closes the connection after the response.
    ///
    /// Fields set only with [`insert_header`](Self::insert_header) are
    /// kept in a short list rather than a map (cheaper to fill and to
    /// clear); reading them here builds a map of them, kept until the next
    /// change. [`header`](Self::header) reads one field without that.
    pub fn headers(&self) -> &HeaderMap {
        self.state.headers().map()
    }

    /// The first value of the header field `name`, without building a map
    /// (see [`headers`](Self::headers)).
    pub fn header(&self, name: &HeaderName) -> Option<&HeaderValue> {
        self.state.headers().get(name)
    }

    /// Mutable access to the header fields. From the first call on, this
    /// response's fields live in the map (see [`headers`](Self::headers)).
    ///
    /// # Errors
    ///
    /// [`Error::HeadCommitted`] once the head is committed.
    pub fn headers_mut(&mut self) -> Result<&mut HeaderMap> {
        Ok(self.state.headers_mut()?.map_mut())
    }

    /// Sets one header field, replacing earlier values: the cheap way to set
    /// fields (no hashing while the handler never asks for the map).
    ///
    /// # Errors
    ///
    /// [`Error::HeadCommitted`] once the head is committed, and
    /// [`Error::ContentLengthExceeded`] for a `Content-Length` below the body
    /// bytes already written (a `Content-Length` set through
    /// [`headers_mut`](Self::headers_mut) is checked when the head is
    /// committed).
    pub fn insert_header(&mut self, name: HeaderName, value: HeaderValue) -> Result<()> {
        self.state.insert_header(&self.link, name, value)
    }

    /// Sets trailer fields, sent after the body's last chunk (RFC 9112
    /// §7.1.2): a checksum or a status computed while streaming, say.
    ///
    /// A response whose head is not committed yet is then framed chunked
    /// (unless the handler set a `Content-Length`, or the request is
    /// HTTP/1.0); a response that is not chunked drops them, as RFC 9110
    /// allows. Fields that frame or route a message (`Content-Length`,
    /// `Transfer-Encoding`, `Connection`, `TE`, `Trailer`, `Host`) are never
    /// sent as trailers.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] once the response is finished.
    pub fn set_trailers(&mut self, trailers: HeaderMap) -> Result<()> {
        self.state.set_trailers(trailers)
    }

    /// Answers `101 Switching Protocols` and takes the connection: the
    /// status must be 101 and the fields the new protocol's (`Upgrade`,
    /// and for a WebSocket `Sec-WebSocket-Accept`); hangup adds
    /// `Connection: upgrade` and sends the head at once. The returned
    /// [`Upgraded`] reads and writes the socket, starting with the bytes
    /// the client sent after its request; the connection is the handler's
    /// from then on (spawn a task with it, or serve it in the handler).
    ///
    /// The request must be HTTP/1.1, with its body read to the end (an
    /// upgrade request normally has none). Its outcome is complete, status
    /// 101. The connection still counts as open, and holds its slot under
    /// [`max_connections`](crate::ConfigBuilder::max_connections), until
    /// the `Upgraded` is dropped, and with it every
    /// [`HangupSignal`](crate::HangupSignal) of the request (they share
    /// the socket). A handler that serves the new protocol itself is
    /// waited for by a graceful shutdown like any other, then dropped; an
    /// `Upgraded` moved to a task of its own is that task's to close.
    ///
    /// axum's `WebSocketUpgrade` cannot work here: it needs hyper's own
    /// upgrade machinery, which only hyper can construct. Answer the
    /// handshake with this instead (`examples/websocket.rs` does, with
    /// `tokio-tungstenite`).
    ///
    /// # Errors
    ///
    /// [`Error::HeadCommitted`] when the head was already committed; an
    /// I/O error for a status other than 101, an HTTP/1.0 request or an
    /// unread body; [`Error::ClientGone`] when the client left.
    pub async fn upgrade(mut self, request: crate::Request) -> Result<Upgraded> {
        if self.state.status() != StatusCode::SWITCHING_PROTOCOLS {
            return Err(Error::Io(std::io::Error::other(
                "an upgrade answers 101 Switching Protocols: set that status first",
            )));
        }
        let after = request.into_after()?;
        self.state.upgrade(&self.link).await?;
        self.link.mark_upgraded();
        Ok(Upgraded::new(self.link.clone(), after))
    }

    /// True once status and headers are frozen.
    pub fn is_committed(&self) -> bool {
        self.state.is_committed()
    }

    /// Writes all of `data` to the body; returns `data.len()`, like Go's
    /// `Write`: a partial write is always an error.
    ///
    /// Small writes are buffered; a write that does not fit commits the head
    /// and sends buffer and `data` together (see the module docs). With a
    /// `Content-Length` set, writing past it fails and sends nothing of
    /// `data`. A HEAD response counts the bytes and discards them.
    ///
    /// # Errors
    ///
    /// [`Error::ClientGone`] (at once if the client is already known gone),
    /// [`Error::ContentLengthExceeded`], [`Error::BodyNotAllowed`] for
    /// 1xx/204/304, [`Error::Io`] for other socket failures.
    pub async fn write(&mut self, data: &[u8]) -> Result<usize> {
        self.state.write(&self.link, data).await?;
        Ok(data.len())
    }

    /// Writes all of `data`; the same as [`write`](Self::write) without the
    /// count.
    ///
    /// # Errors
    ///
    /// As [`write`](Self::write).
    pub async fn write_all(&mut self, data: &[u8]) -> Result<()> {
        self.state.write(&self.link, data).await
    }

    /// Sends `count` bytes of `file`, from byte `offset`, as body bytes:
    /// what [`write_all`](Self::write_all) would do with them, without
    /// reading them into user space. On plain TCP (Linux) the kernel sends
    /// them from the page cache with `sendfile(2)`: the head and anything
    /// buffered go out first, in one write, then the file. Where bytes must
    /// pass through user space (a TLS stream, or a platform without
    /// `sendfile`) they are read in 64 KiB pieces on the blocking pool and
    /// written.
    ///
    /// The same rules as a write: the counters (`buffered`, `written`,
    /// `acked`) count the file's bytes; a `Content-Length` the handler set
    /// is checked first (set it to the file's length: without one, the
    /// head is committed chunked, since the body is still open); a HEAD
    /// response counts them and sends none; the write timeout applies to
    /// every piece; once the client is gone the next piece fails at once.
    /// A file that shrinks while it is sent ends the response short (an
    /// I/O error; the connection then closes).
    ///
    /// # Errors
    ///
    /// As [`write`](Self::write), and [`Error::Io`] when the file ends
    /// before `offset + count` or cannot be read.
    pub async fn send_file(&mut self, file: &std::fs::File, offset: u64, count: u64) -> Result<()> {
        self.state.send_file(&self.link, file, offset, count).await
    }

    /// Commits the head and sends every buffered byte to the kernel. Returns
    /// when the kernel has accepted them (which says nothing about the
    /// client having received them: see [`Counters`]).
    ///
    /// # Errors
    ///
    /// As [`write`](Self::write).
    pub async fn flush(&mut self) -> Result<()> {
        self.state.flush(&self.link).await
    }

    /// Body bytes accepted from the handler so far.
    pub fn buffered(&self) -> u64 {
        self.link.exchange.buffered()
    }

    /// Bytes of this response (head, framing, body) the kernel accepted so
    /// far. Not what the client received.
    pub fn written(&self) -> u64 {
        self.link.exchange.written()
    }

    /// The hang-up of this exchange, if the client has left or closed its
    /// side; does not wait.
    pub fn hangup(&self) -> Option<Hangup> {
        let exchange = &self.link.exchange;
        exchange.hangup(exchange.generation())
    }

    /// For a HEAD response whose body will not be written (a tower
    /// service's is not polled): no length is counted, so without a
    /// `Content-Length` field the head carries none.
    pub(crate) fn set_head_length_unknown(&mut self) {
        self.state.set_head_length_unknown();
    }

    /// Resolves when the client is gone for good (as
    /// [`HangupSignal::gone`](crate::HangupSignal::gone)): what a response
    /// body streaming through this writer waits on.
    pub(crate) async fn gone(&self) -> Hangup {
        let exchange = &self.link.exchange;
        exchange.gone(exchange.generation()).await
    }

    /// Ends the response now: commits the head (with an automatic
    /// `Content-Length` if nothing was flushed yet), sends every buffered
    /// byte and, for chunked bodies, the last chunk. Returning from the
    /// handler does the same; call this to see the result.
    ///
    /// # Errors
    ///
    /// As [`write`](Self::write).
    pub async fn finish(mut self) -> Result<()> {
        self.state.finish(&self.link, None, false).await
    }

    /// Finishes the response, then waits until the client's TCP has
    /// acknowledged every byte of it (Linux `TCP_INFO`), for downloads that
    /// must know they arrived. Returns the final counters, `acked` equal to
    /// `written`.
    ///
    /// An acknowledgement means the client's kernel has the bytes, not that
    /// the client application read them.
    ///
    /// # Errors
    ///
    /// [`Error::Unconfirmed`] when `timeout` passes first or the platform
    /// cannot tell; [`Error::ClientGone`] when the client resets meanwhile;
    /// and the errors of [`finish`](Self::finish).
    pub async fn finish_and_confirm(mut self, timeout: Duration) -> Result<Counters> {
        /// Poll interval bounds: acknowledgements on a LAN take well under a
        /// millisecond; a delayed ACK takes up to 40 ms.
        const FIRST_PAUSE: Duration = Duration::from_millis(1);
        const MAX_PAUSE: Duration = Duration::from_millis(20);
        let deadline = Instant::now() + timeout;
        self.state.finish(&self.link, None, false).await?;
        let exchange = &self.link.exchange;
        // The response on the wire includes a `100 Continue` sent for it.
        let end = exchange.origin() + exchange.written();
        let mut pause = FIRST_PAUSE;
        loop {
            let total_acked = self.link.transport.bytes_acked();
            let counters = exchange.counters(total_acked);
            match total_acked {
                Some(acked) if acked >= end => return Ok(counters),
                None => return Err(Error::Unconfirmed(counters)),
                Some(_) => {}
            }
            if let Some(hangup) = exchange.gone_hangup() {
                return Err(Error::ClientGone(hangup));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::Unconfirmed(counters));
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(MAX_PAUSE);
        }
    }

    /// Aborts the connection: nothing more is sent, and the socket is
    /// closed with an RST (`SO_LINGER` 0) instead of a FIN, so the client
    /// sees a reset rather than a response that merely ends early. Bytes
    /// already written may be lost in the client's kernel. This is the only
    /// way hangup resets a connection.
    pub fn abort(mut self) {
        self.state.abort(&self.link);
    }

    /// The request's method was HEAD: body bytes are counted, not sent.
    pub fn is_head(&self) -> bool {
        self.state.request().is_head
    }
}

impl Drop for ResponseWriter {
    fn drop(&mut self) {
        self.link.output_return.put(self.state.lend());
    }
}
