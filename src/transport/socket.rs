//! [`Socket`]: one accepted TCP connection: reads and vectored writes of
//! its bytes, the socket watch, `TCP_INFO`, and how it closes.
//!
//! # Why reads bypass tokio's readiness cache
//!
//! The socket watch learns of a FIN from readiness alone, without consuming
//! bytes: when the socket turns readable but is not read-closed, the watch
//! clears tokio's cached readable flag so it does not spin on bytes nobody
//! is reading yet (an unread body, a pipelined request). The bytes stay in
//! the kernel with the flag cleared, so a reader must not trust the flag
//! after that: the watch raises `must_probe` *before* clearing, and
//! [`Socket::poll_read`] then tries the `recv` syscall directly. A reader
//! that registered for readiness re-checks `must_probe` afterwards, so a
//! clear that races with it (a body read from another task) cannot strand
//! it. Otherwise reads follow tokio's own rule: wait for readiness, read,
//! and take a short read as "drained", clearing the flag with the
//! readiness sampled before the `recv` (so an event that arrived during it
//! is kept). A keep-alive request thus costs one `recv`, not an `EAGAIN`
//! probe plus a `recv`.

use std::io::{self, IoSlice};
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
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
pub(crate) struct Socket {
    stream: TcpStream,
    remote_addr: SocketAddr,
    local_addr: SocketAddr,
    /// Tokio's readable flag may be clear while bytes wait in the kernel
    /// (the watch cleared it): the next read must try `recv` directly.
    must_probe: AtomicBool,
}

impl Socket {
    /// Wraps an accepted stream; turns Nagle off (responses are written in
    /// whole pieces, and Nagle would delay the last small one by an RTT).
    pub(crate) fn new(stream: TcpStream, remote_addr: SocketAddr) -> io::Result<Self> {
        stream.set_nodelay(true)?;
        Self::wrap(stream, remote_addr)
    }

    /// Wraps the socket of a parked connection again (set up by
    /// [`new`](Self::new) before it parked, handed over by
    /// [`into_std`](Self::into_std)): it joins the runtime's reactor.
    pub(crate) fn resumed(
        socket: std::net::TcpStream,
        remote_addr: SocketAddr,
    ) -> io::Result<Self> {
        Self::wrap(TcpStream::from_std(socket)?, remote_addr)
    }

    fn wrap(stream: TcpStream, remote_addr: SocketAddr) -> io::Result<Self> {
        let local_addr = stream.local_addr()?;
        Ok(Socket {
            stream,
            remote_addr,
            local_addr,
            // One direct probe per connection costs little and does not
            // depend on how the listener registered the socket.
            must_probe: AtomicBool::new(true),
        })
    }

    /// True when the socket watch cleared tokio's readiness and bytes may
    /// be waiting that no new readiness event will announce: only a direct
    /// read finds them.
    pub(crate) fn may_hold_unannounced_bytes(&self) -> bool {
        self.must_probe.load(Ordering::SeqCst)
    }

    /// Takes the socket out of the runtime's reactor (still non-blocking),
    /// with the client's address: a parked connection keeps only these.
    ///
    /// # Errors
    ///
    /// Leaving the reactor failed; the socket is closed.
    pub(crate) fn into_std(self) -> io::Result<(std::net::TcpStream, SocketAddr)> {
        Ok((self.stream.into_std()?, self.remote_addr))
    }

    /// The client's address.
    pub(crate) fn remote_addr(&self) -> SocketAddr {
        self.remote_addr
    }

    /// The address the client connected to.
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Reads once into `buf`, with at least `reserve` bytes of spare
    /// capacity. On the common path the space is reserved once readiness
    /// says bytes are there, so a connection waiting for its next request
    /// holds no read buffer (a direct probe, after the watch cleared the
    /// flag, reserves first). `Ready(Ok(0))` is EOF. See the module docs for
    /// when readiness is trusted.
    #[inline]
    pub(crate) fn poll_read(
        &self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
        reserve: usize,
    ) -> Poll<io::Result<usize>> {
        loop {
            if self.must_probe.swap(false, Ordering::SeqCst) {
                // The flag may be wrong (the watch cleared it): ask the
                // kernel. A short read here does not clear the flag; at
                // worst the next read meets one EAGAIN.
                buf.reserve(reserve);
                let spare = buf.capacity() - buf.len();
                match sys::recv_into(&self.stream, buf) {
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                    Ok(n) if n == spare => {
                        // A full read: more bytes may be waiting, and no
                        // readiness event will announce bytes that were
                        // already there. The next read asks the kernel
                        // again (before this, a handler that waited between
                        // reads stalled on a body that had arrived whole).
                        self.must_probe.store(true, Ordering::SeqCst);
                        return Poll::Ready(Ok(n));
                    }
                    result => return Poll::Ready(result),
                }
            }
            match self.stream.poll_read_ready(cx) {
                // A watch that cleared the flag concurrently raised the probe.
                Poll::Pending if self.must_probe.load(Ordering::SeqCst) => continue,
                Poll::Pending => return Poll::Pending,
                Poll::Ready(result) => result?,
            }
            buf.reserve(reserve);
            let spare = buf.capacity() - buf.len();
            // A read shorter than the space offered drained the socket (as
            // tokio assumes too). It is reported to `try_io` as WouldBlock,
            // so tokio clears the flag with the readiness it sampled
            // *before* the recv: an event that arrived during the recv
            // keeps the flag set, and no wake-up is lost.
            let mut drained = None;
            let result = self.stream.try_io(Interest::READABLE, || {
                let n = sys::recv_into(&self.stream, buf)?;
                if n > 0 && n < spare {
                    drained = Some(n);
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                Ok(n)
            });
            match result {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => match drained {
                    Some(n) => return Poll::Ready(Ok(n)),
                    None => continue,
                },
                Err(err) => return Poll::Ready(Err(err)),
            }
        }
    }

    /// Reads once, now, whatever readiness says: `WouldBlock` when nothing
    /// waits. Registers no waker (a reader waiting elsewhere keeps its
    /// own) and leaves the readable flag alone (a stale flag costs the
    /// next reader one `EAGAIN`).
    #[cfg(feature = "tls")]
    pub(crate) fn read_now(&self, buf: &mut BytesMut, reserve: usize) -> io::Result<usize> {
        buf.reserve(reserve);
        sys::recv_into(&self.stream, buf)
    }

    /// Looks at the first bytes the client sent without consuming them:
    /// waits until `decide` answers for the bytes waiting (at most `max`;
    /// its answer for `None`: not enough yet), then takes the `usize` bytes
    /// it says it used off the queue and returns its answer. Everything
    /// after them stays for the next read. `UnexpectedEof` when the client
    /// closes before `decide` answers, `InvalidData` when `max` bytes are
    /// not enough for it.
    pub(crate) async fn take_prefix<T>(
        &self,
        max: usize,
        mut decide: impl FnMut(&[u8]) -> Option<(T, usize)>,
    ) -> io::Result<T> {
        let mut buf = BytesMut::with_capacity(max);
        loop {
            let ready = self.stream.ready(Interest::READABLE).await?;
            // In `try_io`: an unfinished prefix clears the readable flag
            // with the readiness sampled before the peek, so bytes that
            // arrive meanwhile wake the next wait.
            let decided = self.stream.try_io(Interest::READABLE, || {
                buf.clear();
                let n = sys::peek_into(&self.stream, &mut buf)?;
                match decide(&buf) {
                    Some(decided) => Ok(decided),
                    None if n == 0 || ready.is_read_closed() => {
                        Err(io::ErrorKind::UnexpectedEof.into())
                    }
                    None if n >= max => Err(io::ErrorKind::InvalidData.into()),
                    None => Err(io::ErrorKind::WouldBlock.into()),
                }
            });
            match decided {
                Ok((answer, used)) => {
                    if sys::discard(&self.stream, used)? < used {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                    return Ok(answer);
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                Err(err) => return Err(err),
            }
        }
    }

    /// The connection's addresses as a proxy relayed them (the PROXY
    /// protocol): the client's, and the one it connected to.
    pub(crate) fn set_addrs(&mut self, remote_addr: SocketAddr, local_addr: SocketAddr) {
        self.remote_addr = remote_addr;
        self.local_addr = local_addr;
    }

    /// Clears tokio's readable flag unless an event arrived since it was
    /// last observed.
    fn clear_readable(&self) {
        let _ = self.stream.try_io(Interest::READABLE, || {
            Err::<(), _>(io::ErrorKind::WouldBlock.into())
        });
    }

    /// One write if the socket is known writable; `WouldBlock` (without a
    /// syscall) if it is not. Bytes in a single slice (the others empty) go
    /// out with `send(2)`, which costs the kernel less than `writev(2)`: no
    /// iovec array to import and walk (`benches/socket_write.rs`).
    #[inline]
    pub(crate) fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match only_non_empty(bufs) {
            Some(only) => self.stream.try_write(only),
            None => self.stream.try_write_vectored(bufs),
        }
    }

    /// Waits until the socket is writable, then writes as
    /// [`try_write_vectored`](Self::try_write_vectored) does; returns how
    /// many bytes the kernel took.
    pub(crate) fn poll_write_vectored(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll_writable_then(cx, || self.try_write_vectored(bufs))
    }

    /// Waits until the socket is writable, then tries `write`, again while
    /// it would block (readiness can be stale).
    fn poll_writable_then(
        &self,
        cx: &mut Context<'_>,
        mut write: impl FnMut() -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.stream.poll_write_ready(cx))?;
            match write() {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
                result => return Poll::Ready(result),
            }
        }
    }

    /// [`try_write_vectored`](Self::try_write_vectored) telling the kernel
    /// that more bytes follow at once (`MSG_MORE`, Linux): it holds a short
    /// tail back to join what comes next instead of sending it as a segment
    /// of its own. For a response head followed by `sendfile(2)`: the head
    /// and the file's first bytes leave in one full-sized segment, as
    /// nginx's `tcp_nopush` makes them, without its two `setsockopt` calls
    /// (the measurement is in `bench/RESULTS.md`, 2026-12-06). The next
    /// write without the flag (the file's last `sendfile`) pushes it all.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub(crate) fn try_write_more(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        const FLAGS: libc::c_int = libc::MSG_MORE | libc::MSG_NOSIGNAL;
        self.stream.try_io(Interest::WRITABLE, || {
            let socket = socket2::SockRef::from(&self.stream);
            match only_non_empty(bufs) {
                Some(only) => socket.send_with_flags(only, FLAGS),
                None => socket.send_vectored_with_flags(bufs, FLAGS),
            }
        })
    }

    /// Elsewhere: a plain write.
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    pub(crate) fn try_write_more(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.try_write_vectored(bufs)
    }

    /// Waits until the socket is writable, then writes as
    /// [`try_write_more`](Self::try_write_more) does.
    pub(crate) fn poll_write_more(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll_writable_then(cx, || self.try_write_more(bufs))
    }

    /// Waits until the socket is writable, then sends up to `count` bytes
    /// of `file` from `offset` with `sendfile(2)`; returns how many the
    /// kernel took (0: the file ended early).
    pub(crate) fn poll_send_file(
        &self,
        cx: &mut Context<'_>,
        file: &std::fs::File,
        offset: u64,
        count: usize,
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.stream.poll_write_ready(cx))?;
            let sent = self.stream.try_io(Interest::WRITABLE, || {
                sys::send_file(&self.stream, file, offset, count)
            });
            match sent {
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
            // Raise the probe before clearing: see the module docs.
            self.must_probe.store(true, Ordering::SeqCst);
            self.clear_readable();
        }
    }

    /// After the client's FIN, waits until it resets the connection, from
    /// error readiness alone (an RST sets the socket's error; in the
    /// half-closed state Linux reports it as `EPIPE`), consuming nothing.
    /// Returns the errno. A client that only half-closed and still reads
    /// never resolves it. Cancel-safe.
    pub(crate) async fn peer_reset(&self) -> io::Result<Option<i32>> {
        loop {
            let readiness = self.stream.ready(Interest::ERROR).await?;
            if readiness.is_error() {
                if let Some(err) = self.stream.take_error()? {
                    return Ok(err.raw_os_error());
                }
            }
            // Spurious: clear it and wait again.
            let _ = self.stream.try_io(Interest::ERROR, || {
                Err::<(), _>(io::ErrorKind::WouldBlock.into())
            });
        }
    }

    /// Bytes the client's TCP acknowledged since the connection opened
    /// (Linux `TCP_INFO`); `None` where the platform cannot tell.
    pub(crate) fn bytes_acked(&self) -> Option<u64> {
        sys::tcp_bytes_acked(&self.stream)
    }

    /// The errno of a reset the socket reports (`SO_ERROR`), if one
    /// arrived; for a connection past its last read, where no read will
    /// see it.
    pub(crate) fn take_reset(&self) -> Option<Option<i32>> {
        match self.stream.take_error() {
            Ok(Some(err)) => Some(err.raw_os_error()),
            Ok(None) => None,
            Err(err) => Some(err.raw_os_error()),
        }
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

/// The bytes of `bufs` when they lie in one slice (any others empty).
fn only_non_empty<'a>(bufs: &'a [IoSlice<'_>]) -> Option<&'a [u8]> {
    let mut non_empty = bufs.iter().filter(|buf| !buf.is_empty());
    match (non_empty.next(), non_empty.next()) {
        (Some(only), None) => Some(only),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_non_empty_slice_among_empty_ones_is_written_alone() {
        let bufs = [
            IoSlice::new(b""),
            IoSlice::new(b"head and body"),
            IoSlice::new(b""),
        ];
        assert_eq!(only_non_empty(&bufs), Some(&b"head and body"[..]));
        assert_eq!(
            only_non_empty(&[IoSlice::new(b"a"), IoSlice::new(b""), IoSlice::new(b"b")]),
            None
        );
        assert_eq!(
            only_non_empty(&[IoSlice::new(b""), IoSlice::new(b"")]),
            None
        );
        assert_eq!(only_non_empty(&[]), None);
    }
}
