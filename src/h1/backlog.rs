//! [`Backlog`]: what a connection keeps of its output across responses:
//! finished responses held back so that a pipelined batch goes out in one
//! write, and every byte the kernel accepted so far (where the next
//! response begins in the connection's stream, the origin of its
//! `acked`).

use std::future::{Future, poll_fn};
use std::io::IoSlice;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::time::Sleep;

use crate::error::{Error, Result};
use crate::exchange::hangup::{Detection, HangupCause, classify};

use super::link::Link;
use super::output::gone;

/// What the connection keeps of its output across responses.
#[derive(Debug, Default)]
pub(crate) struct Backlog {
    /// Framed bytes of finished responses held back, in order.
    pub(super) held: Vec<u8>,
    /// How many of `held` the kernel accepted already: a flush that is
    /// cancelled (the handler it races finished first) resumes there.
    sent: usize,
    /// Bytes the kernel accepted on this connection, the current exchange's
    /// own apart (the connection adds them when it ends).
    pub(super) written: u64,
    /// The flush's no-progress timer, while the socket is full.
    stall: Option<Pin<Box<Sleep>>>,
}

impl Backlog {
    /// A connection's backlog after `written` bytes (a parked connection
    /// serving again).
    pub(crate) fn resumed(written: u64) -> Self {
        Backlog {
            held: Vec::new(),
            sent: 0,
            written,
            stall: None,
        }
    }

    /// Bytes the kernel accepted, the current exchange's own apart.
    pub(crate) fn written(&self) -> u64 {
        self.written
    }

    /// Counts bytes of an exchange that the kernel accepted.
    pub(crate) fn add_written(&mut self, bytes: u64) {
        self.written += bytes;
    }

    /// Bytes held back and not yet sent.
    pub(crate) fn held_len(&self) -> usize {
        self.held.len() - self.sent
    }

    /// The unsent held-back bytes.
    pub(super) fn unsent(&self) -> &[u8] {
        &self.held[self.sent..]
    }

    /// Forgets the held bytes, sent or not (after a send, or a failure).
    pub(super) fn clear(&mut self) {
        self.held.clear();
        self.sent = 0;
        self.stall = None;
    }

    /// Where the next response begins in the connection's stream.
    pub(crate) fn next_origin(&self) -> u64 {
        self.written + self.held_len() as u64
    }

    /// Frees the buffer while the connection idles.
    pub(crate) fn release_buffer(&mut self) {
        debug_assert!(self.held.is_empty());
        self.held = Vec::new();
    }

    /// Sends every held-back byte. Cancel-safe: dropped midway, it has
    /// recorded what the kernel took, and the next flush goes on from
    /// there.
    ///
    /// # Errors
    ///
    /// As [`Output::write`](super::output::Output::write); the held bytes are dropped then.
    pub(crate) async fn flush(&mut self, link: &Link) -> Result<()> {
        poll_fn(|cx| self.poll_flush(cx, link)).await
    }

    /// [`flush`](Self::flush) as a poll function: it keeps its state (what
    /// was sent, the stall timer) here, so the connection can race it
    /// against a handler without holding a future for it.
    pub(crate) fn poll_flush(&mut self, cx: &mut Context<'_>, link: &Link) -> Poll<Result<()>> {
        while self.held_len() > 0 {
            let slices = [IoSlice::new(self.unsent())];
            let failure = match link.transport.poll_write_vectored(cx, &slices) {
                Poll::Ready(Ok(0)) => (HangupCause::WriteFailed, Detection::Write, None),
                Poll::Ready(Ok(n)) => {
                    link.metrics.add_written(n as u64);
                    self.sent += n;
                    self.written += n as u64;
                    self.stall = None;
                    continue;
                }
                Poll::Ready(Err(err)) => match classify(&err, Detection::Write) {
                    Some(cause) => (cause, Detection::Write, err.raw_os_error()),
                    None => {
                        self.clear();
                        return Poll::Ready(Err(Error::Io(err)));
                    }
                },
                Poll::Pending => {
                    let timeout = link.config.write_timeout;
                    let stall = self
                        .stall
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                    ready!(stall.as_mut().poll(cx));
                    (HangupCause::WriteStalled, Detection::Timer, None)
                }
            };
            self.clear();
            let (cause, detection, errno) = failure;
            return Poll::Ready(Err(gone(link, cause, detection, errno)));
        }
        self.clear();
        Poll::Ready(Ok(()))
    }
}
