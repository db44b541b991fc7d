//! [`Transport`]: the one seam between the engine and a connection's bytes.
//!
//! The engine reads request bytes, writes response bytes, watches for the
//! client leaving and asks how many response bytes the client's TCP
//! acknowledged, all through a `Transport`, and nothing else in the crate
//! touches a socket. Two layers meet here:
//!
//! - the **byte stream** the HTTP/1 engine speaks: on plain TCP the
//!   socket's own bytes; over TLS, the plaintext of the records (the
//!   stream then decrypts on read, encrypts on write, and counts
//!   *plaintext* bytes as written and acknowledged, through a ledger of
//!   which plaintext went into which record at which TCP offset);
//! - the **TCP socket** underneath ([`socket::Socket`]), which stays the
//!   truth about the client: the socket watch looks at its readiness (a
//!   FIN or RST arrives there whatever the stream above), and `TCP_INFO`
//!   is read from it.
//!
//! On plain TCP every method passes through to the socket; with TLS
//! (`tls` feature, [`tls`]) reads decrypt, writes encrypt record by
//! record, and the counters are the plaintext's. io_uring, should a
//! profile ever ask for it, would be another kind of stream here; the
//! engine above does not change.

mod socket;
#[cfg(feature = "tls")]
pub(crate) mod tls;

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::task::{Context, Poll};

use bytes::BytesMut;
use tokio::net::TcpStream;

pub(crate) use socket::PeerEvent;

/// How a TLS client ended its side of the session, for a hang-up whose
/// cause is [`PeerClosed`](crate::HangupCause::PeerClosed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TlsClose {
    /// It sent a `close_notify` alert: a clean end of its stream.
    CloseNotify,
    /// Its TCP FIN came without a `close_notify` (a *truncation*). Many
    /// clients close this way; it is also what a forged FIN looks like.
    Truncated,
}

impl TlsClose {
    /// A short lowercase name, stable for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsClose::CloseNotify => "close_notify",
            TlsClose::Truncated => "truncated",
        }
    }
}

use socket::Socket;

/// One connection's transport: see the module docs.
#[derive(Debug)]
pub(crate) struct Transport {
    socket: Socket,
    /// Its addresses came from a PROXY protocol header.
    relayed: bool,
    /// The TLS session over the socket, on a TLS listener. Boxed: inline,
    /// its 1.3 KB would be in every connection's transport, plain ones too.
    #[cfg(feature = "tls")]
    tls: Option<Box<tls::Tls>>,
}

impl Transport {
    /// Wraps an accepted TCP stream (plain). Turns Nagle off: responses are
    /// written in whole pieces, and Nagle would delay the last small one.
    ///
    /// # Errors
    ///
    /// The socket's options or address could not be read or set.
    pub(crate) fn new(stream: TcpStream, remote_addr: SocketAddr) -> io::Result<Self> {
        Ok(Transport {
            socket: Socket::new(stream, remote_addr)?,
            relayed: false,
            #[cfg(feature = "tls")]
            tls: None,
        })
    }

    /// Runs the server side of a TLS handshake with `config` on this
    /// (plain) transport; from then on it carries the session's
    /// plaintext. The caller bounds it in time. On failure the transport
    /// stays plain, so that a client that spoke plain HTTP can be told so.
    ///
    /// # Errors
    ///
    /// The handshake failed: see [`tls::HandshakeError`].
    #[cfg(feature = "tls")]
    pub(crate) async fn start_tls(
        &mut self,
        config: std::sync::Arc<rustls::ServerConfig>,
    ) -> Result<(), tls::HandshakeError> {
        debug_assert!(self.tls.is_none(), "one handshake per connection");
        self.tls = Some(Box::new(tls::Tls::handshake(&self.socket, config).await?));
        Ok(())
    }

    /// Takes the bytes a prefix (a PROXY protocol header) is made of off
    /// the front of the stream, without reading a byte past it: see
    /// [`Socket::take_prefix`]. Before anything else is read.
    pub(crate) async fn take_prefix<T>(
        &self,
        max: usize,
        decide: impl FnMut(&[u8]) -> Option<(T, usize)>,
    ) -> io::Result<T> {
        self.socket.take_prefix(max, decide).await
    }

    /// Records the addresses a proxy relayed the connection for (the
    /// client's, and the one it connected to).
    pub(crate) fn relayed_for(&mut self, remote_addr: SocketAddr, local_addr: SocketAddr) {
        self.socket.set_addrs(remote_addr, local_addr);
        self.relayed = true;
    }

    /// True when a plain connection with its own addresses: it can park
    /// (a TLS session's state, or relayed addresses, would have to park
    /// with the socket).
    pub(crate) fn can_park(&self) -> bool {
        self.is_plain() && !self.relayed
    }

    /// The TLS session, if this is a TLS connection.
    #[cfg(feature = "tls")]
    fn session(&self) -> Option<&tls::Tls> {
        self.tls.as_deref()
    }

    #[cfg(not(feature = "tls"))]
    fn session(&self) -> Option<&NoTls> {
        None
    }

    /// True for a plain TCP stream: its socket can park (a TLS session's
    /// state would have to travel with it).
    pub(crate) fn is_plain(&self) -> bool {
        self.session().is_none()
    }

    /// How a TLS client ended its side (after its FIN, or its
    /// `close_notify`); `None` on plain TCP or when it cannot be told.
    pub(crate) fn tls_close(&self) -> Option<TlsClose> {
        self.session().and_then(|tls| tls.close_kind(&self.socket))
    }

    /// Wraps the socket of a parked connection again: it joins the
    /// runtime's reactor.
    ///
    /// # Errors
    ///
    /// Joining the reactor or reading the address failed.
    pub(crate) fn resumed(
        socket: std::net::TcpStream,
        remote_addr: SocketAddr,
    ) -> io::Result<Self> {
        Ok(Transport {
            socket: Socket::resumed(socket, remote_addr)?,
            relayed: false,
            #[cfg(feature = "tls")]
            tls: None,
        })
    }

    /// Takes the socket out of the runtime's reactor, with the client's
    /// address: a parked connection keeps only these.
    ///
    /// # Errors
    ///
    /// Leaving the reactor failed; the socket is closed.
    pub(crate) fn into_std(self) -> io::Result<(std::net::TcpStream, SocketAddr)> {
        self.socket.into_std()
    }

    /// The client's address.
    pub(crate) fn remote_addr(&self) -> SocketAddr {
        self.socket.remote_addr()
    }

    /// The address the client connected to.
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.socket.local_addr()
    }

    /// True when bytes may be waiting that no readiness event will
    /// announce (see [`socket`]): such a connection must read before it
    /// parks.
    pub(crate) fn may_hold_unannounced_bytes(&self) -> bool {
        self.socket.may_hold_unannounced_bytes()
            || self.session().is_some_and(|tls| tls.holds_unread())
    }

    /// Reads once into `buf`, with at least `reserve` bytes of spare
    /// capacity; `Ready(Ok(0))` is EOF.
    #[inline]
    pub(crate) fn poll_read(
        &self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
        reserve: usize,
    ) -> Poll<io::Result<usize>> {
        match self.session() {
            Some(tls) => tls.poll_read(cx, &self.socket, buf, reserve),
            None => self.socket.poll_read(cx, buf, reserve),
        }
    }

    /// [`poll_read`](Self::poll_read) as a future.
    pub(crate) fn read<'a>(
        &'a self,
        buf: &'a mut BytesMut,
        reserve: usize,
    ) -> impl Future<Output = io::Result<usize>> + 'a {
        // A `poll_fn`, not an `async fn`: one state machine fewer on the
        // wait for every request (callgrind: 68 instructions per
        // keep-alive request).
        std::future::poll_fn(move |cx| self.poll_read(cx, buf, reserve))
    }

    /// One write if the stream can take bytes now; `WouldBlock` (without a
    /// syscall) if it cannot. Returns the bytes of `bufs` it took.
    #[inline]
    pub(crate) fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self.session() {
            Some(tls) => tls.try_write_vectored(&self.socket, bufs),
            None => self.socket.try_write_vectored(bufs),
        }
    }

    /// Waits until the stream can take bytes, then writes as
    /// [`try_write_vectored`](Self::try_write_vectored) does.
    #[inline]
    pub(crate) fn poll_write_vectored(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.session() {
            Some(tls) => tls.poll_write_vectored(cx, &self.socket, bufs),
            None => self.socket.poll_write_vectored(cx, bufs),
        }
    }

    /// [`try_write_vectored`](Self::try_write_vectored) with more bytes to
    /// follow at once: on plain TCP the kernel holds a short tail back to
    /// join them (`MSG_MORE`); through TLS a plain write.
    #[inline]
    pub(crate) fn try_write_more(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self.session() {
            Some(tls) => tls.try_write_vectored(&self.socket, bufs),
            None => self.socket.try_write_more(bufs),
        }
    }

    /// Waits until the stream can take bytes, then writes as
    /// [`try_write_more`](Self::try_write_more) does.
    #[inline]
    pub(crate) fn poll_write_more(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.session() {
            Some(tls) => tls.poll_write_vectored(cx, &self.socket, bufs),
            None => self.socket.poll_write_more(cx, bufs),
        }
    }

    /// Whether [`poll_send_file`](Self::poll_send_file) sends a file
    /// without copying it (plain TCP on Linux); the caller copies
    /// otherwise (a TLS stream must encrypt every byte).
    pub(crate) fn sends_files(&self) -> bool {
        self.is_plain() && cfg!(any(target_os = "linux", target_os = "android"))
    }

    /// Waits until the stream can take bytes, then sends up to `count`
    /// bytes of `file` from `offset` without copying them through user
    /// space; returns how many it took (0: the file ended early).
    pub(crate) fn poll_send_file(
        &self,
        cx: &mut Context<'_>,
        file: &std::fs::File,
        offset: u64,
        count: usize,
    ) -> Poll<io::Result<usize>> {
        self.socket.poll_send_file(cx, file, offset, count)
    }

    /// Waits until the client closes or resets the connection, without
    /// consuming a byte. Cancel-safe.
    pub(crate) async fn peer_event(&self) -> io::Result<PeerEvent> {
        self.socket.peer_event().await
    }

    /// After the client's FIN, waits until it resets the connection;
    /// returns the errno. Cancel-safe.
    pub(crate) async fn peer_reset(&self) -> io::Result<Option<i32>> {
        self.socket.peer_reset().await
    }

    /// Response-stream bytes the client's TCP acknowledged since the
    /// connection opened (Linux `TCP_INFO`); `None` where the platform
    /// cannot tell.
    pub(crate) fn bytes_acked(&self) -> Option<u64> {
        let tcp_acked = self.socket.bytes_acked();
        match self.session() {
            Some(tls) => tls.bytes_acked(tcp_acked),
            None => tcp_acked,
        }
    }

    /// The errno of a reset the socket reports, if one arrived.
    pub(crate) fn take_reset(&self) -> Option<Option<i32>> {
        self.socket.take_reset()
    }

    /// Ends our side of the stream: the client sees its end.
    pub(crate) fn shutdown_write(&self) {
        if let Some(tls) = self.session() {
            tls.close_notify(&self.socket);
        }
        self.socket.shutdown_write();
    }

    /// Makes the close reset the connection (RST) instead of ending it.
    pub(crate) fn reset_on_close(&self) {
        self.socket.reset_on_close();
    }
}

/// Without the `tls` feature there is no session: a stand-in type for
/// [`Transport::session`]'s `None`, with what the engine asks of one.
#[cfg(not(feature = "tls"))]
#[derive(Debug)]
enum NoTls {}

#[cfg(not(feature = "tls"))]
impl NoTls {
    fn poll_read(
        &self,
        _cx: &mut Context<'_>,
        _socket: &Socket,
        _buf: &mut BytesMut,
        _reserve: usize,
    ) -> Poll<io::Result<usize>> {
        match *self {}
    }

    fn try_write_vectored(&self, _socket: &Socket, _bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match *self {}
    }

    fn poll_write_vectored(
        &self,
        _cx: &mut Context<'_>,
        _socket: &Socket,
        _bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match *self {}
    }

    fn bytes_acked(&self, _tcp_acked: Option<u64>) -> Option<u64> {
        match *self {}
    }

    fn close_notify(&self, _socket: &Socket) {
        match *self {}
    }

    fn close_kind(&self, _socket: &Socket) -> Option<TlsClose> {
        match *self {}
    }

    fn holds_unread(&self) -> bool {
        match *self {}
    }
}
