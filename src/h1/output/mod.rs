//! The connection's write side: [`Output`], one response's state (status,
//! fields, buffered body, framing) lent to the handler's
//! [`ResponseWriter`](crate::ResponseWriter), and [`Backlog`], what the
//! connection keeps across responses (finished responses held back for a
//! pipelined batch, and every byte the kernel accepted so far).
//!
//! # The life of a write
//!
//! 1. If the client is already known gone, a write fails at once with
//!    [`Error::ClientGone`], without a syscall, whatever the size.
//! 2. Bytes that fit the output buffer (`write_buffer_bytes`) are copied
//!    there: nothing reaches the kernel yet.
//! 3. Bytes that do not fit *commit* the head (the framing decision,
//!    [`super::commit`]) and go to the kernel with the buffer in one
//!    vectored write, the new bytes uncopied, once it is the writer's turn
//!    (held-back responses and a `100 Continue` go first: see
//!    [`super::link`]). The write returns when the kernel took them all.
//! 4. Finishing commits the head if needed (with an automatic
//!    `Content-Length` if it never was) and sends the rest and the last
//!    chunk, or, for a pipelined batch, frames the response into the
//!    backlog to go out with the next one.
//!
//! The writer decides when to flush; the connection decides only whether
//! a finished response may wait for the next one.

use std::future::poll_fn;
use std::io::IoSlice;

use http::header::CONTENT_LENGTH;
use http::{HeaderMap, HeaderValue, StatusCode, Version};

use crate::error::{Error, Result};
use crate::exchange::hangup::{Detection, HangupCause, classify};

mod file;

use super::backlog::Backlog;
use super::commit::{self, Commit, status_allows_body};
use super::encode::{self, CHUNK_END, CHUNK_END_AND_LAST_CHUNK, ChunkPrefix, Framing, LAST_CHUNK};
use super::link::{Link, Party};
use super::response_fields::ResponseFields;

/// Facts about the request that shape the response.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestFacts {
    pub version: Version,
    pub is_head: bool,
    /// The client allows another request, and the server is not shutting
    /// down.
    pub keep_alive: bool,
}

impl Default for RequestFacts {
    fn default() -> Self {
        RequestFacts {
            version: Version::HTTP_11,
            is_head: false,
            keep_alive: false,
        }
    }
}

/// Where a response stands. Every transition is in this module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Writing {
    /// Status and headers may still change; body bytes are buffered.
    #[default]
    Head,
    /// The head is committed (encoded, perhaps sent) with this framing.
    Body(Framing),
    /// Finished: every byte written, or queued in the backlog.
    Done,
    /// A write failed with an error that is not a hang-up: some bytes may
    /// be out, so nothing more may follow.
    Broken,
    /// The handler aborted the connection.
    Aborted,
}

/// One response's state, lent to the `ResponseWriter`; it lives as long as
/// the connection, and its buffers are reused.
#[derive(Debug, Default)]
pub(crate) struct Output {
    /// This response's framed bytes queued ahead of `body`: its head, once
    /// committed and until sent.
    out: Vec<u8>,
    /// This response's body bytes, not yet framed.
    body: Vec<u8>,
    status: StatusCode,
    headers: ResponseFields,
    writing: Writing,
    request: RequestFacts,
    /// The connection closes after this response.
    close_after: bool,
    /// The handler's `Content-Length`, as last parsed from `headers`.
    declared: Option<u64>,
    /// `headers` may have changed `Content-Length` since `declared` was
    /// parsed (the handler had mutable access to them).
    declared_stale: bool,
    /// The body ended before the declared `Content-Length`.
    short: bool,
    /// Bytes of this response framed into the backlog by a deferred finish.
    deferred: u64,
    /// Trailer fields to send after the last chunk (chunked bodies only).
    /// Boxed: rare, and a `HeaderMap` is large to clear for every response.
    trailers: Option<Box<HeaderMap>>,
    /// A HEAD response whose body is not written to be counted: without a
    /// declared `Content-Length`, its head carries no length field.
    head_length_unknown: bool,
}

impl Output {
    /// Prepares for the next response. Buffers keep their capacity.
    pub(crate) fn begin(&mut self, request: RequestFacts) {
        debug_assert!(self.body.is_empty() && self.out.is_empty());
        self.status = StatusCode::OK;
        self.headers.clear();
        self.writing = Writing::Head;
        self.request = request;
        self.close_after = !request.keep_alive;
        self.declared = None;
        self.declared_stale = false;
        self.short = false;
        self.deferred = 0;
        self.trailers = None;
        self.head_length_unknown = false;
    }

    pub(crate) fn writing(&self) -> Writing {
        self.writing
    }

    pub(crate) fn request(&self) -> RequestFacts {
        self.request
    }

    /// True once status and headers are frozen.
    pub(crate) fn is_committed(&self) -> bool {
        self.writing != Writing::Head
    }

    /// The body ended before the declared `Content-Length`.
    pub(crate) fn is_short(&self) -> bool {
        self.short
    }

    /// Bytes of this response framed into the backlog, unsent.
    pub(crate) fn deferred(&self) -> u64 {
        self.deferred
    }

    /// For a HEAD response: its body will not be written, so no length is
    /// counted; without a declared `Content-Length` the head has none.
    pub(crate) fn set_head_length_unknown(&mut self) {
        self.head_length_unknown = true;
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

    /// Sets the status; see `ResponseWriter::set_status`.
    pub(crate) fn set_status(&mut self, link: &Link, status: StatusCode) -> Result<()> {
        if self.is_committed() {
            return Err(Error::HeadCommitted);
        }
        let buffered = link.exchange.buffered();
        if !status_allows_body(status) && !self.request.is_head && buffered > 0 {
            return Err(Error::BodyNotAllowed(status));
        }
        self.status = status;
        link.exchange.set_status(status);
        Ok(())
    }

    pub(crate) fn headers(&self) -> &ResponseFields {
        &self.headers
    }

    /// Mutable access to the fields; see `ResponseWriter::headers_mut`.
    pub(crate) fn headers_mut(&mut self) -> Result<&mut ResponseFields> {
        if self.is_committed() {
            return Err(Error::HeadCommitted);
        }
        self.declared_stale = true;
        Ok(&mut self.headers)
    }

    /// Sets one field; see `ResponseWriter::insert_header`.
    pub(crate) fn insert_header(
        &mut self,
        link: &Link,
        name: http::HeaderName,
        value: HeaderValue,
    ) -> Result<()> {
        if self.is_committed() {
            return Err(Error::HeadCommitted);
        }
        if name == CONTENT_LENGTH {
            let declared = encode::parse_content_length(value.as_bytes());
            let buffered = link.exchange.buffered();
            if let Some(declared) = declared.filter(|&n| n < buffered && !self.request.is_head) {
                return Err(Error::ContentLengthExceeded {
                    declared,
                    attempted: buffered,
                });
            }
            self.declared = declared;
        }
        self.headers.insert(name, value);
        Ok(())
    }

    /// Sets the trailer fields, sent after the last chunk. A response whose
    /// head is not committed yet is then framed chunked (unless it has a
    /// `Content-Length`); one that is not chunked drops them. Fields that
    /// frame or route a message (`Content-Length`, `Transfer-Encoding`,
    /// `Connection`, `TE`, `Trailer`, `Host`) are never sent as trailers
    /// (RFC 9110 §6.5.1).
    ///
    /// # Errors
    ///
    /// An I/O error when the response is already finished.
    pub(crate) fn set_trailers(&mut self, trailers: HeaderMap) -> Result<()> {
        if self.writing == Writing::Done {
            return Err(Error::Io(std::io::Error::other(
                "the response was already finished",
            )));
        }
        self.trailers = Some(Box::new(trailers));
        Ok(())
    }

    /// Aborts: nothing more is sent, and the socket resets on close.
    pub(crate) fn abort(&mut self, link: &Link) {
        self.writing = Writing::Aborted;
        self.close_after = true;
        link.transport.reset_on_close();
    }

    /// Replaces an uncommitted response with a short plain-text error, for
    /// a handler that failed or panicked, or a request that was rejected.
    pub(crate) fn set_error_response(&mut self, link: &Link, status: StatusCode, reason: &str) {
        debug_assert!(!self.is_committed());
        self.status = status;
        link.exchange.set_status(status);
        self.headers.clear();
        self.headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        self.body.clear();
        let mut length = 0;
        if status_allows_body(status) {
            // A HEAD response counts it for the `Content-Length` a GET
            // would get, and never sends it.
            length = reason.len() as u64 + 1;
            if !self.request.is_head {
                self.body.extend_from_slice(reason.as_bytes());
                self.body.push(b'\n');
            }
        }
        link.exchange.set_buffered(length);
        self.close_after = true;
        self.declared = None;
        self.declared_stale = false;
        self.writing = Writing::Head;
    }

    /// The handler's `Content-Length`, if it set a valid one. An invalid one
    /// is ignored (automatic framing applies) and not sent. Parsed again
    /// only when the handler may have changed it.
    fn declared_length(&mut self) -> Option<u64> {
        match self.writing {
            Writing::Body(Framing::Length(n)) => Some(n),
            Writing::Head => {
                if self.declared_stale {
                    self.declared = self
                        .headers
                        .get(&CONTENT_LENGTH)
                        .and_then(|v| encode::parse_content_length(v.as_bytes()));
                    self.declared_stale = false;
                }
                self.declared
            }
            _ => None,
        }
    }

    /// Freezes status and headers and encodes the head into `out`.
    /// `at_finish`: the handler has finished, so the body is complete.
    ///
    /// # Errors
    ///
    /// [`Error::ContentLengthExceeded`] when the handler's `Content-Length`
    /// is below the body it already wrote: nothing is encoded or sent.
    fn commit(&mut self, link: &Link, at_finish: bool) -> Result<()> {
        self.commit_as(link, at_finish, false)
    }

    /// [`commit`](Self::commit), or with `upgrade`, the head of a
    /// `101 Switching Protocols`.
    fn commit_as(&mut self, link: &Link, at_finish: bool, upgrade: bool) -> Result<()> {
        if self.is_committed() {
            return Ok(());
        }
        // One allocation for a typical head (the buffer is released while
        // the connection idles), rather than growing it field by field.
        self.out.reserve(TYPICAL_HEAD_BYTES);
        let fields = encode::start_head(&mut self.out, self.status, self.headers.iter());
        let decision = commit::decide(Commit {
            status: self.status,
            version: self.request.version,
            is_head: self.request.is_head,
            declared: fields.content_length,
            handler_close: fields.close,
            // Trailers need chunked framing: not an automatic length.
            at_finish: at_finish && self.trailers.is_none(),
            buffered: link.exchange.buffered(),
            head_length_unknown: self.head_length_unknown,
            // A shutdown that began while the handler ran closes the
            // connection after this response: its head says so, or a
            // client reusing the connection would lose its next request.
            closing: self.close_after || link.shutdown.is_draining(),
            upgrade,
        });
        let decision = match decision {
            Ok(decision) => decision,
            Err(err) => {
                self.out.clear();
                return Err(err);
            }
        };
        // A `100 Continue` must not follow the final head; one being sent
        // finishes first (the send waits for its turn).
        link.move_expect(super::link::Expect::Pending, super::link::Expect::Skipped);
        self.close_after |= decision.persistence == encode::Persistence::Close;
        encode::end_head(
            &mut self.out,
            &fields,
            decision.framing,
            decision.persistence,
        );
        self.writing = Writing::Body(decision.framing);
        Ok(())
    }

    /// Fails at once when the client is gone, or when the response cannot
    /// take more bytes (an earlier write failed, or it was aborted).
    #[inline]
    fn check_writable(&self, link: &Link) -> Result<()> {
        if matches!(self.writing, Writing::Broken | Writing::Aborted) || link.exchange.is_gone() {
            return Err(self.unwritable(link));
        }
        Ok(())
    }

    /// Why [`check_writable`](Self::check_writable) refused.
    #[cold]
    fn unwritable(&self, link: &Link) -> Error {
        match (self.writing, link.exchange.gone_hangup()) {
            (Writing::Broken, _) => Error::Io(std::io::Error::other(
                "an earlier write of this response failed; nothing more is sent",
            )),
            (Writing::Aborted, _) => Error::Io(std::io::Error::other("the response was aborted")),
            (_, Some(hangup)) => Error::ClientGone(hangup),
            (_, None) => Error::Io(std::io::ErrorKind::BrokenPipe.into()),
        }
    }

    /// Accepts `data` as body bytes: see "the life of a write".
    pub(crate) async fn write(&mut self, link: &Link, data: &[u8]) -> Result<()> {
        self.check_writable(link)?;
        if self.writing == Writing::Done {
            return Err(Error::Io(std::io::Error::other(
                "the response was already finished",
            )));
        }
        if data.is_empty() {
            return Ok(());
        }
        if !status_allows_body(self.status) {
            return Err(Error::BodyNotAllowed(self.status));
        }
        let len = data.len() as u64;
        let buffered = link.exchange.buffered() + len;
        if let Some(declared) = self.declared_length() {
            if buffered > declared {
                return Err(Error::ContentLengthExceeded {
                    declared,
                    attempted: buffered,
                });
            }
        }
        link.exchange.set_buffered(buffered);
        let capacity = link.config.write_buffer_bytes;
        if self.request.is_head {
            // Counted for the automatic Content-Length, never sent; past
            // the buffer, the head goes out as a GET's would.
            if !self.is_committed() && buffered > capacity as u64 {
                self.commit(link, false)?;
                return self.send(link, None, &[], Tail::None).await;
            }
            return Ok(());
        }
        if self.body.len() + data.len() <= capacity {
            if self.body.capacity() == 0 {
                // First bytes since the buffer was released: allocate once
                // for them and a few more small writes.
                self.body.reserve(data.len().max(TYPICAL_HEAD_BYTES));
            }
            self.body.extend_from_slice(data);
            return Ok(());
        }
        self.commit(link, false)?;
        self.send(link, None, data, Tail::ChunkEnd).await
    }

    /// Commits the head and sends everything buffered.
    pub(crate) async fn flush(&mut self, link: &Link) -> Result<()> {
        self.check_writable(link)?;
        if self.writing == Writing::Done {
            return Ok(());
        }
        self.commit(link, false)?;
        self.send(link, None, &[], Tail::ChunkEnd).await
    }

    /// Ends the response: commits the head if needed (with an automatic
    /// `Content-Length`), sends what is buffered and the last chunk. The
    /// connection passes its `backlog`: held-back bytes then go out first,
    /// in the same write; with `defer`, a response whose head was not
    /// committed is instead framed into the backlog, to go out with the
    /// next one. A finished response stays finished: later calls do
    /// nothing.
    pub(crate) async fn finish(
        &mut self,
        link: &Link,
        backlog: Option<&mut Backlog>,
        defer: bool,
    ) -> Result<()> {
        if self.writing == Writing::Done {
            return Ok(());
        }
        self.check_writable(link)?;
        let was_committed = self.is_committed();
        self.commit(link, true)?;
        let Writing::Body(framing) = self.writing else {
            return Ok(());
        };
        if let Framing::Length(declared) = framing {
            let sent_body = if self.request.is_head {
                declared
            } else {
                link.exchange.buffered()
            };
            if sent_body < declared {
                // The client would wait for bytes that never come.
                self.short = true;
                self.close_after = true;
            }
        }
        let tail = match framing {
            Framing::Chunked => Tail::LastChunk,
            _ => Tail::None,
        };
        match backlog {
            Some(backlog) if defer && !was_committed => {
                let body: &[u8] = if self.request.is_head {
                    &[]
                } else {
                    &self.body
                };
                backlog.held.extend_from_slice(&self.out);
                backlog.held.extend_from_slice(body);
                self.deferred = (self.out.len() + body.len()) as u64;
                self.out.clear();
                self.body.clear();
            }
            backlog => self.send(link, backlog, &[], tail).await?,
        }
        self.writing = Writing::Done;
        Ok(())
    }

    /// Sends the head of a `101 Switching Protocols` (status and fields as
    /// the handler set them, `Connection: upgrade`): the last bytes of
    /// HTTP on this connection. The response is then done.
    ///
    /// # Errors
    ///
    /// As [`write`](Self::write); an error when the status is not 101, the
    /// head was already committed, or the request was not HTTP/1.1.
    pub(crate) async fn upgrade(&mut self, link: &Link) -> Result<()> {
        self.check_writable(link)?;
        if self.is_committed() {
            return Err(Error::HeadCommitted);
        }
        if self.request.version != Version::HTTP_11 {
            return Err(Error::Io(std::io::Error::other(
                "an upgrade needs an HTTP/1.1 request",
            )));
        }
        self.commit_as(link, false, true)?;
        self.send(link, None, &[], Tail::None).await?;
        self.writing = Writing::Done;
        Ok(())
    }

    /// Frees the byte buffers while the connection waits for its next
    /// request; the next response allocates them again. The field list
    /// keeps its (small) capacity.
    pub(crate) fn release_buffers(&mut self) {
        debug_assert!(self.out.is_empty() && self.body.is_empty());
        self.out = Vec::new();
        self.body = Vec::new();
    }

    /// Sends the backlog's held bytes (if given), `out`, the buffered body
    /// and `data` (framed as one chunk when chunked), then `tail`, looping
    /// until the kernel took every byte. Without a backlog (the handler's
    /// own writes) it first waits for its turn at the socket.
    async fn send(
        &mut self,
        link: &Link,
        backlog: Option<&mut Backlog>,
        data: &[u8],
        tail: Tail,
    ) -> Result<()> {
        let party = if backlog.is_some() {
            Party::Connection
        } else {
            Party::Response
        };
        if !link.may_write(party) {
            link.write_turn(party).await;
        }
        // A HEAD response is its head only: no body bytes and no chunk
        // framing, whatever framing the head announced.
        let is_head = self.request.is_head;
        let chunked = !is_head && self.writing == Writing::Body(Framing::Chunked);
        if is_head {
            self.body.clear();
        }
        let data = if is_head { &[][..] } else { data };
        let chunk_len = (self.body.len() + data.len()) as u64;
        let prefix = ChunkPrefix::new(chunk_len);
        // The last chunk with trailer fields, built when there are some.
        let with_trailers = match &self.trailers {
            Some(trailers) if chunked && tail == Tail::LastChunk => {
                Some(encode::last_chunk_with_trailers(chunk_len > 0, trailers))
            }
            _ => None,
        };
        let (prefix, chunk_end): (&[u8], &[u8]) = match (chunked, chunk_len > 0, tail) {
            (false, _, _) => (&[], &[]),
            // `send_file` framed the buffered bytes with the file's, as one
            // chunk (`chunk_up_to_file`): nothing to add here.
            (true, _, Tail::File) => (&[], &[]),
            (true, nonempty, Tail::LastChunk) if with_trailers.is_some() => {
                let prefix = if nonempty { prefix.as_bytes() } else { &[] };
                (prefix, with_trailers.as_deref().unwrap_or_default())
            }
            (true, true, Tail::LastChunk) => (prefix.as_bytes(), CHUNK_END_AND_LAST_CHUNK),
            (true, true, _) => (prefix.as_bytes(), CHUNK_END),
            (true, false, Tail::LastChunk) => (&[], LAST_CHUNK),
            (true, false, _) => (&[], &[]),
        };
        let more = tail == Tail::File;
        let earlier = backlog.as_ref().map_or(0, |b| b.held_len());
        let before = link.exchange.response_written();
        let mut progress = Progress {
            earlier,
            written: before,
            total: 0,
        };
        let joined = prefix.len() + self.body.len() + chunk_end.len();
        let result = if data.is_empty()
            && earlier == 0
            && (joined <= self.out.capacity() - self.out.len() || joined <= JOIN_MAX)
        {
            // One buffer: the kernel takes it with `send(2)`, cheaper than
            // `writev(2)` of several by more than the copy costs (see
            // `Transport::try_write_vectored`).
            self.out.extend_from_slice(prefix);
            self.out.extend_from_slice(&self.body);
            self.out.extend_from_slice(chunk_end);
            self.body.clear();
            let mut slices = [IoSlice::new(&self.out)];
            write_all(link, &mut slices, &mut progress, more).await
        } else {
            let held: &[u8] = backlog.as_deref().map_or(&[], Backlog::unsent);
            let mut slices = [
                IoSlice::new(held),
                IoSlice::new(&self.out),
                IoSlice::new(prefix),
                IoSlice::new(&self.body),
                IoSlice::new(data),
                IoSlice::new(chunk_end),
            ];
            write_all(link, &mut slices, &mut progress, more).await
        };
        if let Some(backlog) = backlog {
            // What went out beyond this response's own bytes was held back.
            backlog.written += progress.total - (progress.written - before);
            backlog.clear();
        }
        match result {
            Ok(()) => {
                self.out.clear();
                self.body.clear();
                Ok(())
            }
            Err(err) => {
                if matches!(err, Error::Io(_)) {
                    // Some bytes may be out, others not: never send any of
                    // it again.
                    self.writing = Writing::Broken;
                }
                Err(err)
            }
        }
    }
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
    /// Nothing, but a file's bytes follow at once (`sendfile`): the kernel
    /// is told more comes ([`Transport::try_write_more`]), so the head
    /// and the file's first bytes share a segment.
    ///
    /// [`Transport::try_write_more`]: crate::transport::Transport::try_write_more
    File,
}

/// Byte accounting across the writes of one send.
struct Progress {
    /// Bytes at the front still belonging to held-back responses.
    earlier: usize,
    /// This response's bytes the kernel accepted (from before this send).
    written: u64,
    /// Every byte the kernel accepted in this send.
    total: u64,
}

/// Writes all of `slices`, counting the bytes in `progress` (see
/// [`write_once`] for the failures); `more`: more bytes follow at once
/// ([`Tail::File`]).
async fn write_all(
    link: &Link,
    mut slices: &mut [IoSlice<'_>],
    progress: &mut Progress,
    more: bool,
) -> Result<()> {
    let mut remaining: usize = slices.iter().map(|s| s.len()).sum();
    while remaining > 0 {
        let n = write_once(link, slices, more).await?;
        remaining -= n;
        let for_earlier = n.min(progress.earlier);
        progress.earlier -= for_earlier;
        progress.written += (n - for_earlier) as u64;
        progress.total += n as u64;
        if n > for_earlier {
            // The exchange's counter moves as its bytes go: a hang-up
            // detected meanwhile (the watch) reports them, as `Sending`.
            link.exchange.set_response_written(progress.written);
        }
        IoSlice::advance_slices(&mut slices, n);
    }
    Ok(())
}

/// One write of `slices` (not all empty); returns how many bytes the
/// kernel took. A write that makes no progress for `write_timeout` is a
/// hang-up ([`HangupCause::WriteStalled`]); a failed write is one too
/// ([`HangupCause::WriteFailed`]); any other error is [`Error::Io`].
/// `more`: more bytes follow at once ([`Tail::File`]).
async fn write_once(link: &Link, slices: &mut [IoSlice<'_>], more: bool) -> Result<usize> {
    // Try the write first: the timeout (a clock read and a timer) is only
    // needed when the kernel's buffer is full.
    let tried = if more {
        link.transport.try_write_more(slices)
    } else {
        link.transport.try_write_vectored(slices)
    };
    let result = match tried {
        Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {
            let write = poll_fn(|cx| {
                if more {
                    link.transport.poll_write_more(cx, slices)
                } else {
                    link.transport.poll_write_vectored(cx, slices)
                }
            });
            match tokio::time::timeout(link.config.write_timeout, write).await {
                Ok(result) => result,
                Err(_elapsed) => {
                    return Err(gone(
                        link,
                        HangupCause::WriteStalled,
                        Detection::Timer,
                        None,
                    ));
                }
            }
        }
        result => result,
    };
    match result {
        Ok(0) => Err(gone(link, HangupCause::WriteFailed, Detection::Write, None)),
        Ok(n) => {
            link.metrics.add_written(n as u64);
            Ok(n)
        }
        Err(err) => Err(match classify(&err, Detection::Write) {
            Some(cause) => gone(link, cause, Detection::Write, err.raw_os_error()),
            None => Error::Io(err),
        }),
    }
}

/// Reports a hang-up seen by a write and returns it as the write's error.
pub(super) fn gone(
    link: &Link,
    cause: HangupCause,
    detection: Detection,
    errno: Option<i32>,
) -> Error {
    match link
        .exchange
        .report(&link.transport, cause, detection, errno)
    {
        Some(hangup) => Error::ClientGone(hangup),
        None => Error::Io(std::io::ErrorKind::BrokenPipe.into()),
    }
}
