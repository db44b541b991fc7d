//! The connection's socket as the engine sees it: reads, vectored writes,
//! the socket watch, and `TCP_INFO`. This is the one seam for socket I/O;
//! another engine (io_uring) would replace this module and nothing else.
//!
//! # Why reads bypass tokio's readiness cache
//!
//! The socket watch learns of a FIN from readiness alone, without consuming
//! bytes: when the socket turns readable but is not read-closed, the watch
//! clears tokio's cached readable flag so it does not spin on bytes nobody
//! is reading yet (an unread body, a pipelined request). The bytes stay in
//! the kernel with the flag cleared, so a later reader must not trust the
//! flag: [`Transport::poll_read`] always tries the `recv` syscall first and
//! waits for readiness only after the kernel said `EWOULDBLOCK`. Clearing
//! through `try_io` is tick-checked by tokio, so an event that arrives
//! between the `recv` and the clear is never lost.

use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::net::{Shutdown, SocketAddr};
use std::task::{Context, Poll, ready};

use bytes::BytesMut;
use tokio::io::Interest;
use tokio::net::TcpStream;

use crate::sys;

/// What the socket watch saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PeerEvent {
    /// The client closed its sending side (FIN).
    Closed,
    /// The client reset the connection; carries the raw errno.
    Reset(Option<i32>),
}

/// One accepted TCP connection.
#[derive(Debug)]
pub(crate) struct Transport {
    stream: TcpStream,
    remote_addr: SocketAddr,
    local_addr: SocketAddr,
}

impl Transport {
    /// Wraps an accepted stream; turns Nagle off (responses are written in
    /// whole pieces, and Nagle would delay the last small one by an RTT).
    pub(crate) fn new(stream: TcpStream, remote_addr: SocketAddr) -> io::Result<Self> {
        stream.set_nodelay(true)?;
        let local_addr = stream.local_addr()?;
        Ok(Transport {
            stream,
            remote_addr,
            local_addr,
        })
    }

    /// The client's address.
    pub(crate) fn remote_addr(&self) -> SocketAddr {
        self.remote_addr
    }

    /// The address the client connected to.
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Reads once into `buf`'s spare capacity (reserve first). `Ready(Ok(0))`
    /// is EOF. Never trusts a cleared readiness flag; see the module docs.
    pub(crate) fn poll_read(
        &self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<io::Result<usize>> {
        match sys::recv_into(&self.stream, buf) {
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
            result => return Poll::Ready(result),
        }
        loop {
            ready!(self.stream.poll_read_ready(cx))?;
            match self
                .stream
                .try_io(Interest::READABLE, || sys::recv_into(&self.stream, buf))
            {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
                result => return Poll::Ready(result),
            }
        }
    }

    /// Reads once into `buf`, reserving `reserve` bytes of spare capacity.
    pub(crate) async fn read(&self, buf: &mut BytesMut, reserve: usize) -> io::Result<usize> {
        buf.reserve(reserve);
        poll_fn(|cx| self.poll_read(cx, buf)).await
    }

    /// One vectored write; returns how many bytes the kernel took.
    pub(crate) fn poll_write_vectored(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.stream.poll_write_ready(cx))?;
            match self.stream.try_write_vectored(bufs) {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
                result => return Poll::Ready(result),
            }
        }
    }

    /// Waits until the client closes or resets the connection, without
    /// consuming any byte. Cancel-safe: dropping it loses nothing.
    ///
    /// Readiness that is not read-closed means bytes arrived (a body, a
    /// pipelined request); the readable flag is then cleared so the watch
    /// sleeps until the next event instead of spinning.
    pub(crate) async fn peer_event(&self) -> io::Result<PeerEvent> {
        loop {
            let readiness = self.stream.ready(Interest::READABLE).await?;
            if readiness.is_read_closed() {
                return Ok(match self.stream.take_error()? {
                    Some(err) => PeerEvent::Reset(err.raw_os_error()),
                    None => PeerEvent::Closed,
                });
            }
            let _ = self.stream.try_io(Interest::READABLE, || {
                Err::<(), _>(io::ErrorKind::WouldBlock.into())
            });
        }
    }

    /// Bytes the client's TCP acknowledged since the connection opened
    /// (Linux `TCP_INFO`); `None` where the platform cannot tell.
    pub(crate) fn bytes_acked(&self) -> Option<u64> {
        sys::tcp_bytes_acked(&self.stream)
    }

    /// Sends our FIN: the client sees the end of the response stream.
    pub(crate) fn shutdown_write(&self) {
        // An error means the socket is already dead, which is the goal.
        let _ = socket2::SockRef::from(&self.stream).shutdown(Shutdown::Write);
    }

    /// Makes the next close send an RST instead of a FIN (`SO_LINGER` 0).
    pub(crate) fn reset_on_close(&self) {
        let _ = socket2::SockRef::from(&self.stream).set_linger(Some(std::time::Duration::ZERO));
    }
}
