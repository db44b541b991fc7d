//! [`ResponseWriter`], the handler-facing response API, and the buffering
//! and framing rules behind it.
//!
//! # The life of a write
//!
//! 1. The handler calls [`write`](ResponseWriter::write). If the client is
//!    already known gone, the call returns [`Error::ClientGone`] at once,
//!    without a syscall, whatever the size.
//! 2. If the bytes fit in the output buffer (`write_buffer_bytes`, 8 KiB by
//!    default) they are copied there and the call returns: nothing reaches
//!    the kernel yet.
//! 3. If they do not fit, the head is *committed* (status and headers are
//!    frozen and framing is decided: the handler's `Content-Length`, else
//!    `chunked` on HTTP/1.1, else close-delimited on HTTP/1.0) and the
//!    buffer and the new bytes go to the kernel in one vectored write, the
//!    new bytes without being copied. The call returns when the kernel has
//!    taken them all, so buffered bytes never run far ahead of the socket.
//! 4. [`flush`](ResponseWriter::flush) commits the head and sends what is
//!    buffered.
//! 5. When the handler returns, the connection *finishes* the response: if
//!    the head was never committed, the whole body is in the buffer and gets
//!    an automatic `Content-Length`, head and body in one write; otherwise
//!    the last chunk is sent. Pipelined responses are held back and written
//!    together while the next request is already waiting in the read buffer.
//!
//! The writer decides when to flush; the connection decides only whether a
//! finished response may wait for the next one (pipelining).

pub(crate) mod encode;
mod fields;

use std::future::poll_fn;
use std::io::IoSlice;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::header::CONTENT_LENGTH;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Version};

use crate::error::{Counters, Detection, Error, Hangup, HangupCause, Phase, Result};
use crate::exchange::{Expect, Home, Shared};
use encode::{CHUNK_END, CHUNK_END_AND_LAST_CHUNK, ChunkPrefix, Framing, LAST_CHUNK, Persistence};
use fields::ResponseFields;

/// Writes the response to one request: status, headers, then body bytes.
///
/// Handed to the handler by value. Status and headers can change until the
/// head is committed (first flush, a write that overflows the buffer, or the
/// handler returning); after that, changing them returns
/// [`Error::HeadCommitted`]. See the module docs for the life of a write.
///
/// Dropping the writer (normally by returning from the handler) ends the
/// response; the connection finishes it. Errors of that final flush are
/// never dropped: they go into the exchange's outcome.
#[derive(Debug)]
pub struct ResponseWriter {
    state: Home<WriterState>,
    shared: Arc<Shared>,
}

/// Facts about the request that shape the response.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestFacts {
    pub version: Version,
    pub is_head: bool,
    /// The client allows another request, and the server is not shutting
    /// down.
    pub keep_alive: bool,
    pub generation: u64,
}

impl Default for RequestFacts {
    fn default() -> Self {
        RequestFacts {
            version: Version::HTTP_11,
            is_head: false,
            keep_alive: false,
            generation: 0,
        }
    }
}

/// Where the response head stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Commit {
    /// Status and headers may still change.
    #[default]
    Pending,
    /// The head is encoded (into `out`) with this framing.
    Committed(Framing),
}

/// The response state the connection lends to a [`ResponseWriter`]. It
/// lives as long as the connection; its buffers are reused.
#[derive(Debug, Default)]
pub(crate) struct WriterState {
    /// Framed bytes queued for the socket ahead of `body`: the bytes of
    /// earlier pipelined responses, then this response's head.
    out: Vec<u8>,
    /// How many bytes at the front of `out` belong to earlier responses.
    earlier: usize,
    /// This response's body bytes, not yet framed.
    body: Vec<u8>,
    status: StatusCode,
    headers: ResponseFields,
    commit: Commit,
    request: RequestFacts,
    /// Body bytes accepted from the handler.
    buffered: u64,
    /// Bytes of this response the kernel accepted.
    written: u64,
    /// Bytes of all responses on this connection the kernel accepted.
    total_written: u64,
    /// The connection must close after this response.
    close_after: bool,
    /// Body length for a HEAD response, whose body is counted, not kept.
    virtual_body: u64,
    /// `finish` has run (explicitly or after the handler returned).
    finished: bool,
    /// Every byte of the response was written or queued behind a
    /// pipelined response (`finish` succeeded).
    complete: bool,
    /// Bytes of this response queued in `out` by a deferred finish.
    deferred: u64,
    /// The handler called [`ResponseWriter::abort`].
    aborted: bool,
    /// The handler's `Content-Length`, as last parsed from `headers`.
    declared: Option<u64>,
    /// `headers` may have changed `Content-Length` since `declared` was
    /// parsed (the handler had mutable access to them).
    declared_stale: bool,
    /// A write failed with an error that is not a hang-up: the response is
    /// partly sent and must not be written to again.
    broken: bool,
}

impl WriterState {
    /// The state of a connection that already wrote `total_written` bytes
    /// (a parked connection serving again).
    pub(crate) fn resumed(total_written: u64) -> Self {
        WriterState {
            total_written,
            ..WriterState::default()
        }
    }

    /// Prepares for the next response. Buffers keep their capacity.
    pub(crate) fn begin(&mut self, request: RequestFacts) {
        debug_assert!(self.body.is_empty());
        self.status = StatusCode::OK;
        self.headers.clear();
        self.commit = Commit::Pending;
        self.request = request;
        self.buffered = 0;
        self.written = 0;
        self.close_after = !request.keep_alive;
        self.virtual_body = 0;
        self.finished = false;
        self.complete = false;
        self.deferred = 0;
        self.aborted = false;
        self.declared = None;
        self.declared_stale = false;
        self.broken = false;
    }

    /// True when a write failed with an error that is not a hang-up.
    pub(crate) fn is_broken(&self) -> bool {
        self.broken
    }

    /// True when the handler aborted the connection.
    pub(crate) fn is_aborted(&self) -> bool {
        self.aborted
    }

    /// Bytes this response put on the way to the client: written, or
    /// queued behind it for a pipelined batch.
    pub(crate) fn produced(&self) -> u64 {
        self.written + self.deferred
    }

    /// Bytes the kernel accepted on this connection so far.
    pub(crate) fn total_written(&self) -> u64 {
        self.total_written
    }

    /// Bytes of this response the kernel accepted.
    pub(crate) fn written(&self) -> u64 {
        self.written
    }

    /// True once `finish` succeeded.
    pub(crate) fn is_complete(&self) -> bool {
        self.complete
    }

    /// Body bytes accepted from the handler.
    pub(crate) fn buffered(&self) -> u64 {
        self.buffered
    }

    /// Bytes of earlier responses not yet written, and all bytes written on
    /// the connection before them: the origin of this response's `acked`.
    pub(crate) fn acked_origin(&self) -> u64 {
        self.total_written + self.earlier as u64
    }

    /// True when framed bytes of finished responses wait in the buffer.
    pub(crate) fn has_unsent_output(&self) -> bool {
        !self.out.is_empty()
    }

    /// Counts an interim response (`100 Continue`) the body reader wrote
    /// for this exchange as part of this response: it preceded the head on
    /// the wire.
    pub(crate) fn add_interim_written(&mut self, bytes: u64) {
        self.written += bytes;
        self.total_written += bytes;
    }

    /// Frees the byte buffers while the connection waits for its next
    /// request; the next response allocates them again. The header map keeps
    /// its (small) capacity.
    pub(crate) fn release_buffers(&mut self) {
        debug_assert!(self.out.is_empty() && self.body.is_empty());
        self.out = Vec::new();
        self.body = Vec::new();
    }

    /// Bytes of finished (pipelined) responses waiting to be written.
    pub(crate) fn unsent_len(&self) -> usize {
        self.out.len()
    }

    pub(crate) fn is_committed(&self) -> bool {
        self.commit != Commit::Pending
    }

    pub(crate) fn must_close(&self) -> bool {
        self.close_after
    }

    pub(crate) fn set_close(&mut self) {
        self.close_after = true;
    }

    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }

    /// Replaces an uncommitted response with a short plain-text error, for
    /// a handler that failed or panicked, or a request that was rejected.
    pub(crate) fn set_error_response(&mut self, status: StatusCode, reason: &str) {
        debug_assert!(!self.is_committed());
        self.status = status;
        self.headers.clear();
        self.headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        self.body.clear();
        self.virtual_body = 0;
        if self.body_allowed() {
            if self.request.is_head {
                // Counted for the `Content-Length` a GET would get; never sent.
                self.virtual_body = reason.len() as u64 + 1;
            } else {
                self.body.extend_from_slice(reason.as_bytes());
                self.body.push(b'\n');
            }
        }
        self.buffered = self.body.len() as u64;
        self.close_after = true;
        self.declared = None;
        self.declared_stale = false;
        self.finished = false;
    }

    fn body_allowed(&self) -> bool {
        status_allows_body(self.status)
    }

    /// The handler's `Content-Length`, if it set a valid one. An invalid one
    /// is ignored (automatic framing applies) and not sent. Parsed again
    /// only when the handler may have changed it.
    fn declared_length(&mut self) -> Option<u64> {
        match self.commit {
            Commit::Committed(Framing::Length(n)) => Some(n),
            Commit::Committed(_) => None,
            Commit::Pending => {
                if self.declared_stale {
                    self.declared = self
                        .headers
                        .get(&CONTENT_LENGTH)
                        .and_then(|v| encode::parse_content_length(v.as_bytes()));
                    self.declared_stale = false;
                }
                self.declared
            }
        }
    }

    /// Freezes status and headers and encodes the head into `out`.
    /// `at_finish`: the handler has returned, so the body is complete.
    ///
    /// # Errors
    ///
    /// [`Error::ContentLengthExceeded`] when the handler's `Content-Length`
    /// is smaller than the body it has already written: nothing is encoded,
    /// and nothing of the body is sent.
    fn commit(&mut self, shared: &Shared, at_finish: bool) -> Result<()> {
        if self.is_committed() {
            return Ok(());
        }
        // A `100 Continue` must not follow the final response head.
        shared.resolve_expect(Expect::Skipped);
        let http11 = self.request.version == Version::HTTP_11;
        // One allocation for a typical head (the buffer is released while
        // the connection idles), rather than growing it field by field.
        self.out.reserve(TYPICAL_HEAD_BYTES);
        let head_start = self.out.len();
        let fields = encode::start_head(&mut self.out, self.status, self.headers.iter());
        if let Some(declared) = fields.content_length {
            if !self.request.is_head && self.body_allowed() && self.buffered > declared {
                self.out.truncate(head_start);
                return Err(Error::ContentLengthExceeded {
                    declared,
                    attempted: self.buffered,
                });
            }
        }
        let framing = if !self.body_allowed() {
            Framing::None
        } else if let Some(n) = fields.content_length {
            Framing::Length(n)
        } else if at_finish {
            Framing::Length(self.buffered)
        } else if http11 {
            Framing::Chunked
        } else {
            Framing::CloseDelimited
        };
        if framing == Framing::CloseDelimited || fields.close {
            self.close_after = true;
        }
        let persistence = if self.close_after {
            Persistence::Close
        } else if http11 {
            Persistence::KeepAlive
        } else {
            Persistence::KeepAliveHttp10
        };
        encode::end_head(&mut self.out, &fields, framing, persistence);
        self.commit = Commit::Committed(framing);
        Ok(())
    }

    /// Fails at once when the client is gone, or when an earlier write of
    /// this response failed (its bytes are partly out: nothing may follow).
    fn check_gone(&self, shared: &Shared) -> Result<()> {
        if self.broken {
            return Err(Error::Io(std::io::Error::other(
                "an earlier write of this response failed; nothing more is sent",
            )));
        }
        if shared.signal.is_gone() {
            if let Some(hangup) = shared.signal.hangup(self.request.generation) {
                return Err(Error::ClientGone(hangup));
            }
        }
        Ok(())
    }

    /// Accepts `data` as body bytes: see "the life of a write".
    pub(crate) async fn write(&mut self, shared: &Shared, data: &[u8]) -> Result<()> {
        self.check_gone(shared)?;
        if data.is_empty() {
            return Ok(());
        }
        if !self.body_allowed() {
            return Err(Error::BodyNotAllowed(self.status));
        }
        let len = data.len() as u64;
        if let Some(declared) = self.declared_length() {
            let attempted = self.buffered + len;
            if attempted > declared {
                return Err(Error::ContentLengthExceeded {
                    declared,
                    attempted,
                });
            }
        }
        self.buffered += len;
        shared.signal.set_counters(self.buffered, self.written);
        let capacity = shared.config.write_buffer_bytes as u64;
        if self.request.is_head {
            // Counted for the automatic Content-Length, never sent.
            self.virtual_body += len;
            if !self.is_committed() && self.virtual_body > capacity {
                self.commit(shared, false)?;
                return self.send(shared, &[], Tail::None).await;
            }
            return Ok(());
        }
        if self.body.len() + data.len() <= capacity as usize {
            if self.body.capacity() == 0 {
                // First bytes since the buffer was released: allocate once
                // for them and a few more small writes.
                self.body.reserve(data.len().max(TYPICAL_HEAD_BYTES));
            }
            self.body.extend_from_slice(data);
            return Ok(());
        }
        self.commit(shared, false)?;
        self.send(shared, data, Tail::ChunkEnd).await
    }

    /// Commits the head and sends everything buffered.
    pub(crate) async fn flush(&mut self, shared: &Shared) -> Result<()> {
        self.check_gone(shared)?;
        self.commit(shared, false)?;
        self.send(shared, &[], Tail::ChunkEnd).await
    }

    /// Ends the response: commits the head if needed (with an automatic
    /// `Content-Length`), sends what is buffered and the last chunk. With
    /// `defer`, a response whose head was not committed yet is framed into
    /// `out` and left for the next flush (pipelining). Runs once; later
    /// calls do nothing.
    pub(crate) async fn finish(&mut self, shared: &Shared, defer: bool) -> Result<()> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        self.check_gone(shared)?;
        let was_committed = self.is_committed();
        if self.request.is_head && !was_committed {
            self.buffered = self.virtual_body;
        }
        self.commit(shared, true)?;
        let tail = match self.commit {
            Commit::Committed(Framing::Chunked) => Tail::LastChunk,
            _ => Tail::None,
        };
        if let Commit::Committed(Framing::Length(declared)) = self.commit {
            let sent_body = if self.request.is_head {
                declared
            } else {
                self.buffered
            };
            if sent_body < declared {
                // The client would wait for bytes that never come.
                self.close_after = true;
            }
        }
        if defer && !was_committed {
            if !self.request.is_head {
                self.out.extend_from_slice(&self.body);
            }
            self.body.clear();
            self.deferred = (self.out.len() - self.earlier) as u64;
            self.earlier = self.out.len();
            self.complete = true;
            return Ok(());
        }
        self.send(shared, &[], tail).await?;
        self.complete = true;
        Ok(())
    }

    /// Sends `out`, the buffered body and `data` (framed as one chunk when
    /// chunked), then `tail`, looping until the kernel took every byte.
    async fn send(&mut self, shared: &Shared, data: &[u8], tail: Tail) -> Result<()> {
        // A HEAD response is its head only: no body bytes and no chunk
        // framing, whatever framing the head announced.
        let chunked = !self.request.is_head && self.commit == Commit::Committed(Framing::Chunked);
        let chunk_len = (self.body.len() + data.len()) as u64;
        let prefix = ChunkPrefix::new(chunk_len);
        let (prefix, chunk_end): (&[u8], &[u8]) = match (chunked, chunk_len > 0, tail) {
            (false, _, _) => (&[], &[]),
            (true, true, Tail::LastChunk) => (prefix.as_bytes(), CHUNK_END_AND_LAST_CHUNK),
            (true, true, _) => (prefix.as_bytes(), CHUNK_END),
            (true, false, Tail::LastChunk) => (&[], LAST_CHUNK),
            (true, false, _) => (&[], &[]),
        };
        let data = if self.request.is_head { &[][..] } else { data };
        if self.request.is_head {
            // Never sent; `set_error_response` and `write` keep it empty.
            self.body.clear();
        }
        let mut progress = Progress {
            earlier: self.earlier,
            written: self.written,
            total_written: self.total_written,
        };
        let joined = prefix.len() + self.body.len() + chunk_end.len();
        let result = if data.is_empty()
            && (joined <= self.out.capacity() - self.out.len() || joined <= JOIN_MAX)
        {
            // One buffer: the kernel takes it with `send(2)`, cheaper than
            // `writev(2)` of several by more than the copy costs (see
            // `Transport::try_write_vectored`).
            if chunked {
                self.out.extend_from_slice(prefix);
                self.out.extend_from_slice(&self.body);
                self.out.extend_from_slice(chunk_end);
            } else {
                self.out.extend_from_slice(&self.body);
            }
            self.body.clear();
            let total = self.out.len();
            let mut slices = [IoSlice::new(&self.out)];
            write_all(shared, &mut slices[..], total, &mut progress, self.buffered).await
        } else {
            let mut slices = [
                IoSlice::new(&self.out),
                IoSlice::new(prefix),
                IoSlice::new(&self.body),
                IoSlice::new(data),
                IoSlice::new(chunk_end),
            ];
            let total: usize = slices.iter().map(|s| s.len()).sum();
            write_all(shared, &mut slices[..], total, &mut progress, self.buffered).await
        };
        self.earlier = progress.earlier;
        self.written = progress.written;
        self.total_written = progress.total_written;
        if matches!(result, Err(Error::Io(_))) {
            // Some bytes may be out, others not: never send any of it again.
            self.broken = true;
        }
        if result.is_ok() {
            self.out.clear();
            self.body.clear();
            self.earlier = 0;
        }
        result
    }

    /// Sends framed bytes left in `out` by deferred (pipelined) responses.
    pub(crate) async fn flush_unsent(&mut self, shared: &Shared) -> Result<()> {
        if self.out.is_empty() || self.broken {
            return Ok(());
        }
        debug_assert!(self.body.is_empty());
        let mut slices = [IoSlice::new(&self.out)];
        let total = self.out.len();
        let mut progress = Progress {
            earlier: self.earlier,
            written: 0,
            total_written: self.total_written,
        };
        let result = write_all(shared, &mut slices[..], total, &mut progress, 0).await;
        self.total_written = progress.total_written;
        self.out.clear();
        self.earlier = 0;
        result
    }
}

/// 1xx, 204 and 304 responses never carry a body (RFC 9110 §6.4.1).
fn status_allows_body(status: StatusCode) -> bool {
    !(status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED)
}

/// Bytes reserved for a response head: the status line, `Date`, framing
/// and a few handler fields fit.
const TYPICAL_HEAD_BYTES: usize = 256;

/// Body bytes (with their chunk framing) copied behind the head for one
/// `send(2)` even when `out` must grow for them; more are copied only into
/// room `out` already has. On loopback the copy and one `send` cost the
/// kernel and us less than `writev(2)` of the head and the body: by about
/// 0.6 µs for a 13-byte body, 0.4 µs at 4 KiB, 0.2 µs at 8 KiB
/// (`benches/socket_write.rs`, figures in `bench/RESULTS.md`). The bound
/// limits what a busy connection's `out` grows to for the gain (`Vec`
/// growth may double it once); it keeps that capacity, like `body`'s,
/// until the connection idles and releases its buffers.
const JOIN_MAX: usize = 4096;

/// What follows the body bytes of one send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tail {
    /// Nothing (non-chunked, or a HEAD head-only send).
    None,
    /// CRLF after the chunk's data.
    ChunkEnd,
    /// CRLF, then the last chunk: the body is complete.
    LastChunk,
}

/// Byte accounting across the writes of one send.
struct Progress {
    /// Bytes at the front still belonging to earlier responses.
    earlier: usize,
    written: u64,
    total_written: u64,
}

/// Writes all of `slices` (`total` bytes). A write that makes no progress
/// for `write_timeout` is a hang-up ([`HangupCause::WriteStalled`]); a
/// failed write is one too ([`HangupCause::WriteFailed`]).
async fn write_all(
    shared: &Shared,
    mut slices: &mut [IoSlice<'_>],
    total: usize,
    progress: &mut Progress,
    buffered: u64,
) -> Result<()> {
    let mut remaining = total;
    while remaining > 0 {
        // Try the write first: the timeout (a clock read and a timer) is
        // only needed when the kernel's buffer is full.
        let result = match shared.transport.try_write_vectored(slices) {
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {
                let write = poll_fn(|cx| shared.transport.poll_write_vectored(cx, slices));
                match tokio::time::timeout(shared.config.write_timeout, write).await {
                    Ok(result) => result,
                    Err(_elapsed) => {
                        return Err(report_write_hangup(
                            shared,
                            HangupCause::WriteStalled,
                            Detection::Timer,
                            None,
                        ));
                    }
                }
            }
            result => result,
        };
        let n = match result {
            Ok(0) => {
                return Err(report_write_hangup(
                    shared,
                    HangupCause::WriteFailed,
                    Detection::Write,
                    None,
                ));
            }
            Ok(n) => n,
            Err(err) => {
                return Err(match crate::disconnect::classify(&err, Detection::Write) {
                    Some(cause) => {
                        report_write_hangup(shared, cause, Detection::Write, err.raw_os_error())
                    }
                    None => Error::Io(err),
                });
            }
        };
        remaining -= n;
        shared.metrics.add_written(n as u64);
        let for_earlier = n.min(progress.earlier);
        progress.earlier -= for_earlier;
        progress.written += (n - for_earlier) as u64;
        progress.total_written += n as u64;
        if progress.written > 0 {
            shared.signal.mark_sending();
        }
        shared.signal.set_counters(buffered, progress.written);
        IoSlice::advance_slices(&mut slices, n);
    }
    Ok(())
}

fn report_write_hangup(
    shared: &Shared,
    cause: HangupCause,
    detection: Detection,
    errno: Option<i32>,
) -> Error {
    let acked = shared.transport.bytes_acked();
    let hangup = shared
        .signal
        .report(cause, detection, Phase::Handling, errno, acked, true);
    Error::ClientGone(hangup)
}

impl ResponseWriter {
    pub(crate) fn new(state: Box<WriterState>, shared: Arc<Shared>) -> Self {
        ResponseWriter {
            state: Home::new(state),
            shared,
        }
    }

    /// The status to send (default `200 OK`).
    pub fn status(&self) -> StatusCode {
        self.state.status
    }

    /// Sets the status.
    ///
    /// # Errors
    ///
    /// [`Error::HeadCommitted`] once the head is committed, and
    /// [`Error::BodyNotAllowed`] for a status without a body (1xx, 204, 304)
    /// once body bytes were written; the status is then unchanged.
    pub fn set_status(&mut self, status: StatusCode) -> Result<()> {
        if self.state.is_committed() {
            return Err(Error::HeadCommitted);
        }
        if !status_allows_body(status) && !self.state.request.is_head && self.state.buffered > 0 {
            return Err(Error::BodyNotAllowed(status));
        }
        self.state.status = status;
        self.shared.signal.set_status(status);
        Ok(())
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
        self.state.headers.map()
    }

    /// The first value of the header field `name`, without building a map
    /// (see [`headers`](Self::headers)).
    pub fn header(&self, name: &HeaderName) -> Option<&HeaderValue> {
        self.state.headers.get(name)
    }

    /// Mutable access to the header fields. From the first call on, this
    /// response's fields live in the map (see [`headers`](Self::headers)).
    ///
    /// # Errors
    ///
    /// [`Error::HeadCommitted`] once the head is committed.
    pub fn headers_mut(&mut self) -> Result<&mut HeaderMap> {
        if self.state.is_committed() {
            return Err(Error::HeadCommitted);
        }
        self.state.declared_stale = true;
        Ok(self.state.headers.map_mut())
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
        if self.state.is_committed() {
            return Err(Error::HeadCommitted);
        }
        if name == CONTENT_LENGTH {
            let declared = encode::parse_content_length(value.as_bytes());
            if let Some(declared) =
                declared.filter(|&n| n < self.state.buffered && !self.state.request.is_head)
            {
                return Err(Error::ContentLengthExceeded {
                    declared,
                    attempted: self.state.buffered,
                });
            }
            self.state.declared = declared;
        }
        self.state.headers.insert(name, value);
        Ok(())
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
        self.state.write(&self.shared, data).await?;
        Ok(data.len())
    }

    /// Writes all of `data`; the same as [`write`](Self::write) without the
    /// count.
    ///
    /// # Errors
    ///
    /// As [`write`](Self::write).
    pub async fn write_all(&mut self, data: &[u8]) -> Result<()> {
        self.state.write(&self.shared, data).await
    }

    /// Commits the head and sends every buffered byte to the kernel. Returns
    /// when the kernel has accepted them (which says nothing about the
    /// client having received them: see [`Counters`](crate::Counters)).
    ///
    /// # Errors
    ///
    /// As [`write`](Self::write).
    pub async fn flush(&mut self) -> Result<()> {
        self.state.flush(&self.shared).await
    }

    /// Body bytes accepted from the handler so far.
    pub fn buffered(&self) -> u64 {
        self.state.buffered
    }

    /// Bytes of this response (head, framing, body) the kernel accepted so
    /// far. Not what the client received.
    pub fn written(&self) -> u64 {
        self.state.written
    }

    /// The hang-up of this exchange, if the client has left or closed its
    /// side; does not wait.
    pub fn hangup(&self) -> Option<Hangup> {
        self.shared.signal.hangup(self.state.request.generation)
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
        self.state.finish(&self.shared, false).await
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
        self.state.finish(&self.shared, false).await?;
        let origin = self.shared.signal.acked_base();
        // The response on the wire includes a `100 Continue` sent for it.
        let end = origin + self.shared.interim_written() + self.state.written;
        let mut pause = FIRST_PAUSE;
        loop {
            let total_acked = self.shared.transport.bytes_acked();
            let counters = Counters {
                buffered: self.state.buffered,
                written: self.state.written,
                acked: total_acked.map(|acked| acked.min(end).saturating_sub(origin)),
            };
            match total_acked {
                Some(acked) if acked >= end => return Ok(counters),
                None => return Err(Error::Unconfirmed(counters)),
                Some(_) => {}
            }
            if let Some(hangup) = self.hangup().filter(|_| self.shared.signal.is_gone()) {
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
        self.state.aborted = true;
        self.state.close_after = true;
        self.shared.transport.reset_on_close();
    }

    /// The request's method was HEAD: body bytes are counted, not sent.
    pub fn is_head(&self) -> bool {
        self.state.request.is_head
    }
}

impl Drop for ResponseWriter {
    fn drop(&mut self) {
        self.shared.writer_slot.put(self.state.lend());
    }
}
