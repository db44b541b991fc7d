//! [`Upgraded`]: a connection after `101 Switching Protocols`, taken over
//! by the handler (a WebSocket, say), with the bytes the client already
//! sent after its request.
//!
//! See [`ResponseWriter::upgrade`](crate::ResponseWriter::upgrade) for how
//! a handler gets one. Reads go to the same socket, through the same
//! readiness-based path as the HTTP engine's: an idle upgraded connection
//! still learns of the client's FIN (a read returns 0) or RST (a read
//! fails) the moment it arrives. The connection still counts among the
//! server's open connections, and holds its slot under
//! [`max_connections`](crate::ConfigBuilder::max_connections), until the
//! `Upgraded` is dropped (with any [`HangupSignal`](crate::HangupSignal)
//! of its request: they share the socket). A shutdown does not wait for
//! it: the handler's task owns it.

use std::fmt;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::h1::input::READ_RESERVE_BYTES;
use crate::h1::link::Link;

/// An upgraded connection: `AsyncRead + AsyncWrite` over its socket,
/// first yielding the bytes that arrived after the request head.
pub struct Upgraded {
    link: Arc<Link>,
    /// Bytes read but not yet handed out: first those that followed the
    /// request head, then each read's.
    read: Bytes,
    buf: BytesMut,
}

impl Upgraded {
    pub(crate) fn new(link: Arc<Link>, leftover: Bytes) -> Self {
        Upgraded {
            link,
            read: leftover,
            buf: BytesMut::new(),
        }
    }

    /// The client's address.
    pub fn remote_addr(&self) -> SocketAddr {
        self.link.transport.remote_addr()
    }

    /// The server address the client connected to.
    pub fn local_addr(&self) -> SocketAddr {
        self.link.transport.local_addr()
    }
}

impl fmt::Debug for Upgraded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upgraded")
            .field("remote_addr", &self.remote_addr())
            .field("unread", &self.read.len())
            .finish()
    }
}

impl AsyncRead for Upgraded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if out.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let this = &mut *self;
        if this.read.is_empty() {
            this.buf.clear();
            let n = ready!(
                this.link
                    .transport
                    .poll_read(cx, &mut this.buf, READ_RESERVE_BYTES)
            )?;
            if n == 0 {
                return Poll::Ready(Ok(()));
            }
            this.read = this.buf.split().freeze();
        }
        let n = this.read.len().min(out.remaining());
        out.put_slice(&this.read[..n]);
        this.read.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Upgraded {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.link
            .transport
            .poll_write_vectored(cx, &[IoSlice::new(data)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.link.transport.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Nothing is buffered here: every write went to the socket.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.link.transport.shutdown_write();
        Poll::Ready(Ok(()))
    }
}
