//! Files as response bodies ([`Output::send_file`]): sent by the kernel
//! with `sendfile(2)` where the transport allows it, copied in 64 KiB
//! pieces where every byte must pass through user space (TLS); the same
//! counters, length checks, HEAD counting, write timeout and hang-ups as
//! [`Output::write`].

use std::future::poll_fn;
use std::io::IoSlice;

use crate::error::{Error, Result};
use crate::exchange::hangup::{Detection, HangupCause, classify};

use super::super::commit::status_allows_body;
use super::super::encode::{CHUNK_END, ChunkPrefix, Framing};
use super::super::link::Link;
use super::{Output, Progress, Tail, Writing, gone, write_all};

impl Output {
    /// Sends `count` bytes of `file` from `offset` as body bytes: what
    /// [`write`](Self::write) does with them, without reading them into
    /// user space (see `ResponseWriter::send_file`).
    pub(crate) async fn send_file(
        &mut self,
        link: &Link,
        file: &std::fs::File,
        offset: u64,
        count: u64,
    ) -> Result<()> {
        self.check_writable(link)?;
        if self.writing == Writing::Done {
            return Err(Error::Io(std::io::Error::other(
                "the response was already finished",
            )));
        }
        if count == 0 {
            return Ok(());
        }
        if !status_allows_body(self.status) {
            return Err(Error::BodyNotAllowed(self.status));
        }
        let buffered = link.exchange.buffered() + count;
        if self.request.is_head {
            // Counted (for the length a GET would get), never read.
            return self.count_head_bytes(link, buffered).await;
        }
        if !link.transport.sends_files() {
            // The stream must see every byte (TLS), or the platform has no
            // `sendfile`: copy.
            return self.copy_file(link, file, offset, count).await;
        }
        if let Some(declared) = self.declared_length() {
            if buffered > declared {
                return Err(Error::ContentLengthExceeded {
                    declared,
                    attempted: buffered,
                });
            }
        }
        self.commit(link, false)?;
        link.exchange.set_buffered(buffered);
        let chunked = self.writing == Writing::Body(Framing::Chunked);
        // The head, what was buffered before, and the file's chunk line go
        // first, in one write; the chunk's CRLF follows the file's bytes.
        if chunked {
            let pending = self.body.len() as u64;
            self.chunk_up_to_file(pending, count);
        }
        // The file follows at once: the head waits for its first bytes
        // (one segment, not a short one of its own; see `Tail::File`).
        self.send(link, None, &[], Tail::File).await?;
        let mut sent = 0;
        while sent < count {
            if link.exchange.is_gone() {
                return Err(self.unwritable(link));
            }
            let want = usize::try_from(count - sent).unwrap_or(usize::MAX);
            let n = match send_file_once(link, file, offset + sent, want).await {
                Ok(0) => return Err(self.file_ended_early()),
                Ok(n) => n,
                Err(err) => {
                    if matches!(err, Error::Io(_)) {
                        self.writing = Writing::Broken;
                    }
                    return Err(err);
                }
            };
            sent += n as u64;
            let written = link.exchange.response_written() + n as u64;
            link.exchange.set_response_written(written);
        }
        if chunked {
            self.body.extend_from_slice(CHUNK_END);
            self.send_raw_body(link).await?;
        }
        Ok(())
    }

    /// The file shrank while it was sent: the body is cut short of its
    /// length (an outcome `ShorterThanDeclared`, not a write error), and
    /// nothing may follow.
    fn file_ended_early(&mut self) -> Error {
        self.short = true;
        self.writing = Writing::Broken;
        Error::Io(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the file ended before the bytes to send",
        ))
    }

    /// Frames the body bytes buffered so far (`pending` of them) and the
    /// `file_len` bytes of a file that follow them as one chunk: its size
    /// line goes before the buffered bytes, which then leave with the
    /// head; the CRLF after the file is written by the caller.
    fn chunk_up_to_file(&mut self, pending: u64, file_len: u64) {
        let prefix = ChunkPrefix::new(pending + file_len);
        self.out.extend_from_slice(prefix.as_bytes());
        self.out.extend_from_slice(&self.body);
        self.body.clear();
    }

    /// Sends `body` as it is, already framed (a chunk's CRLF).
    async fn send_raw_body(&mut self, link: &Link) -> Result<()> {
        self.out.extend_from_slice(&self.body);
        self.body.clear();
        let before = link.exchange.response_written();
        let mut progress = Progress {
            earlier: 0,
            written: before,
            total: 0,
        };
        let mut slices = [IoSlice::new(&self.out)];
        let result = write_all(link, &mut slices, &mut progress, false).await;
        self.out.clear();
        result
    }

    /// [`send_file`](Self::send_file) where the bytes must pass through
    /// user space: read in pieces on the blocking pool and written.
    async fn copy_file(
        &mut self,
        link: &Link,
        file: &std::fs::File,
        offset: u64,
        count: u64,
    ) -> Result<()> {
        /// Bytes read at a time: as the file server's copying did.
        const PIECE: u64 = 64 * 1024;
        let mut done = 0;
        while done < count {
            let len = (count - done).min(PIECE);
            let reader = file.try_clone()?;
            let at = offset + done;
            let piece = tokio::task::spawn_blocking(move || {
                use std::os::unix::fs::FileExt;
                let mut piece = vec![0; len as usize];
                reader.read_exact_at(&mut piece, at).map(|()| piece)
            })
            .await
            .map_err(std::io::Error::other)?;
            let piece = match piece {
                Ok(piece) => piece,
                // Short of a head already out: the body ends short. Before
                // it, the error goes to the handler as any other, and the
                // server answers 500 in its place.
                Err(err)
                    if err.kind() == std::io::ErrorKind::UnexpectedEof && self.is_committed() =>
                {
                    return Err(self.file_ended_early());
                }
                Err(err) => return Err(err.into()),
            };
            self.write(link, &piece).await?;
            done += len;
        }
        Ok(())
    }

    /// Counts bytes of a HEAD response's body (never sent), as `write`
    /// does.
    async fn count_head_bytes(&mut self, link: &Link, buffered: u64) -> Result<()> {
        if let Some(declared) = self.declared_length() {
            if buffered > declared {
                return Err(Error::ContentLengthExceeded {
                    declared,
                    attempted: buffered,
                });
            }
        }
        link.exchange.set_buffered(buffered);
        if !self.is_committed() && buffered > link.config.write_buffer_bytes as u64 {
            self.commit(link, false)?;
            return self.send(link, None, &[], Tail::None).await;
        }
        Ok(())
    }
}

/// One `sendfile` of up to `count` bytes, with the write timeout and the
/// hang-up classification of [`write_once`](super::write_once).
async fn send_file_once(
    link: &Link,
    file: &std::fs::File,
    offset: u64,
    count: usize,
) -> Result<usize> {
    let send = poll_fn(|cx| link.transport.poll_send_file(cx, file, offset, count));
    let result = match tokio::time::timeout(link.config.write_timeout, send).await {
        Ok(result) => result,
        Err(_elapsed) => {
            return Err(gone(
                link,
                HangupCause::WriteStalled,
                Detection::Timer,
                None,
            ));
        }
    };
    match result {
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
