//! [`Tls`]: a TLS session (rustls) over a connection's [`Socket`], driven
//! record by record, so that the engine's byte counters stay about the
//! bytes a handler wrote.
//!
//! # Plaintext counters
//!
//! The engine counts `written` and `acked` in *plaintext* response bytes;
//! the kernel and the client's TCP deal in ciphertext. So plaintext goes
//! into the session at most one record at a time (16,384 bytes, the
//! largest TLS plaintext fragment), and a write returns only once that
//! record's ciphertext is wholly in the kernel: `written` counts plaintext
//! whose record the kernel accepted. Each record's end is noted in a
//! ledger: (plaintext bytes up to its end, TCP bytes up to its end). The
//! socket's acknowledged TCP bytes (`TCP_INFO`) then translate into the
//! plaintext of the records the client's TCP acknowledged *whole*: a
//! partly acknowledged record counts for nothing, so `acked` is never more
//! than what the client's TLS layer could decrypt. Handshake messages,
//! record headers, padding and tags, alerts: TCP bytes that are not
//! response bytes, and not counted as such.
//!
//! # Ends
//!
//! A `close_notify` alert from the client ends the read side cleanly (a
//! read returns 0). A TCP FIN without one is a *truncation* (a read
//! returns 0 too, but [`Tls::close_kind`] tells them apart): many clients
//! close that way, and an attacker can forge a FIN. Ending our side sends
//! our `close_notify`, then the FIN. The socket watch needs no TLS: a FIN
//! or RST shows on the TCP socket whatever the records before it.
//!
//! # Wakers
//!
//! A write that waits registers for the socket's write readiness; a read
//! that wants to send something (an alert, a key update) only tries, so
//! that it never replaces the waiting writer's waker with its own.
//!
//! The handshake is driven the same way (its bytes are counted as TCP
//! bytes written), bounded in time by the caller.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Read, Write};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, ready};

use bytes::{Buf, BytesMut};
use rustls::{ServerConfig, ServerConnection};

use super::TlsClose;
use super::socket::Socket;

/// Plaintext put into the session at a time: one full TLS record.
const RECORD_PLAINTEXT: usize = 16 * 1024;

/// Ciphertext read from the socket at a time: a record and its overhead.
const CIPHERTEXT_READ: usize = RECORD_PLAINTEXT + 512;

/// A TLS session on one connection; shared (reads and writes may come
/// from different tasks), so its state sits behind a mutex held only for
/// one poll, never across an await.
#[derive(Debug)]
pub(crate) struct Tls {
    state: Mutex<State>,
}

struct State {
    conn: ServerConnection,
    /// Ciphertext read from the socket, not yet taken by the session.
    cipher_in: BytesMut,
    /// Ciphertext taken from the session, and how much of it the socket
    /// took so far.
    cipher_out: Vec<u8>,
    cipher_out_sent: usize,
    /// TCP bytes the kernel accepted: handshake, records, alerts.
    tcp_written: u64,
    /// Plaintext bytes whose records the kernel accepted whole.
    plain_written: u64,
    /// Plaintext taken into the session whose record is not all written
    /// yet; reported to the writer once it is.
    in_flight: usize,
    /// (plaintext end, TCP end) of each record the client's TCP has not
    /// acknowledged whole yet, oldest first.
    ledger: VecDeque<(u64, u64)>,
    /// Plaintext bytes of records the client's TCP acknowledged whole.
    plain_acked: u64,
    /// The socket read returned EOF.
    saw_eof: bool,
    /// The client's `close_notify` arrived.
    peer_closed: bool,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("tcp_written", &self.tcp_written)
            .field("plain_written", &self.plain_written)
            .field("plain_acked", &self.plain_acked)
            .finish_non_exhaustive()
    }
}

/// Why a handshake failed.
#[derive(Debug)]
pub(crate) enum HandshakeError {
    /// The socket failed or closed (the client left).
    Io(io::Error),
    /// The client sent something TLS refuses (or an alert of its own).
    Tls(rustls::Error),
    /// The client's first bytes are plain HTTP (an ASCII letter where a
    /// TLS record starts with a content type, 22 for a handshake).
    PlainHttp,
}

impl Tls {
    /// Runs the server side of a handshake with `config` on `socket`;
    /// returns the established session. The caller bounds it in time.
    pub(crate) async fn handshake(
        socket: &Socket,
        config: Arc<ServerConfig>,
    ) -> Result<Tls, HandshakeError> {
        let conn = ServerConnection::new(config).map_err(HandshakeError::Tls)?;
        let mut state = State {
            conn,
            cipher_in: BytesMut::new(),
            cipher_out: Vec::new(),
            cipher_out_sent: 0,
            tcp_written: 0,
            plain_written: 0,
            in_flight: 0,
            ledger: VecDeque::new(),
            plain_acked: 0,
            saw_eof: false,
            peer_closed: false,
        };
        std::future::poll_fn(|cx| state.poll_handshake(cx, socket)).await?;
        Ok(Tls {
            state: Mutex::new(state),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Held only for one poll, with nothing that panics by design; a
        // poisoned state is still consistent enough to fail reads cleanly.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Reads plaintext into `buf` (at least `reserve` bytes of room);
    /// `Ready(Ok(0))` at the end of the client's stream, clean or not.
    pub(crate) fn poll_read(
        &self,
        cx: &mut Context<'_>,
        socket: &Socket,
        buf: &mut BytesMut,
        reserve: usize,
    ) -> Poll<io::Result<usize>> {
        self.lock().poll_read(cx, socket, buf, reserve)
    }

    /// Writes plaintext: at most one record of `bufs`, returned once its
    /// ciphertext is wholly in the kernel (see the module docs).
    pub(crate) fn poll_write_vectored(
        &self,
        cx: &mut Context<'_>,
        socket: &Socket,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.lock().write(Some(cx), socket, bufs)
    }

    /// [`poll_write_vectored`](Self::poll_write_vectored) without waiting
    /// (and without registering for readiness): `WouldBlock` when the
    /// socket cannot take the whole record now. The record stays in
    /// flight: the next write, of the same bytes, completes it first.
    pub(crate) fn try_write_vectored(
        &self,
        socket: &Socket,
        bufs: &[IoSlice<'_>],
    ) -> io::Result<usize> {
        match self.lock().write(None, socket, bufs) {
            Poll::Ready(result) => result,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    /// Plaintext response bytes of the records the client's TCP
    /// acknowledged whole, from the socket's acknowledged TCP bytes.
    pub(crate) fn bytes_acked(&self, tcp_acked: Option<u64>) -> Option<u64> {
        let tcp_acked = tcp_acked?;
        let mut state = self.lock();
        while let Some(&(plain_end, tcp_end)) = state.ledger.front() {
            if tcp_end > tcp_acked {
                break;
            }
            state.plain_acked = plain_end;
            state.ledger.pop_front();
        }
        Some(state.plain_acked)
    }

    /// Sends our `close_notify` (as far as the socket takes it now).
    pub(crate) fn close_notify(&self, socket: &Socket) {
        let mut state = self.lock();
        state.conn.send_close_notify();
        let _ = state.flush(None, socket);
    }

    /// How the client ended its side, once its TCP stream ended or its
    /// `close_notify` arrived; `None` before, or when it cannot be told.
    /// Reads (without waiting) what is left in the socket's receive queue
    /// first: a `close_notify` sent just before the FIN is there.
    pub(crate) fn close_kind(&self, socket: &Socket) -> Option<TlsClose> {
        let mut state = self.lock();
        state.read_waiting(socket);
        if state.peer_closed {
            Some(TlsClose::CloseNotify)
        } else if state.saw_eof {
            Some(TlsClose::Truncated)
        } else {
            None
        }
    }

    /// True when bytes already read from the socket wait in the session
    /// (plaintext, or ciphertext it had no room for): no readiness event
    /// will announce them.
    pub(crate) fn holds_unread(&self) -> bool {
        let state = self.lock();
        !state.cipher_in.is_empty() || state.saw_eof || state.peer_closed
    }
}

impl State {
    fn poll_handshake(
        &mut self,
        cx: &mut Context<'_>,
        socket: &Socket,
    ) -> Poll<Result<(), HandshakeError>> {
        let mut first = true;
        loop {
            ready!(self.flush(Some(cx), socket)).map_err(HandshakeError::Io)?;
            if !self.conn.is_handshaking() {
                return Poll::Ready(Ok(()));
            }
            let n = ready!(socket.poll_read(cx, &mut self.cipher_in, CIPHERTEXT_READ))
                .map_err(HandshakeError::Io)?;
            if n == 0 {
                return Poll::Ready(Err(HandshakeError::Io(io::ErrorKind::UnexpectedEof.into())));
            }
            if first && self.cipher_in.first().is_some_and(u8::is_ascii_uppercase) {
                return Poll::Ready(Err(HandshakeError::PlainHttp));
            }
            first = false;
            if let Err(err) = self.take_ciphertext() {
                // Tell the client why (an alert), as far as the socket
                // takes it now; the connection ends either way.
                let _ = self.flush(None, socket);
                return Poll::Ready(Err(HandshakeError::Tls(err)));
            }
        }
    }

    /// Feeds what was read to the session, as far as it has room.
    fn take_ciphertext(&mut self) -> Result<(), rustls::Error> {
        while !self.cipher_in.is_empty() {
            let mut unread = &self.cipher_in[..];
            // An error means its plaintext buffer is full: the reader
            // takes some first; the rest waits in `cipher_in`.
            let used = self.conn.read_tls(&mut unread).unwrap_or_default();
            self.cipher_in.advance(used);
            let state = self.conn.process_new_packets()?;
            if state.peer_has_closed() {
                self.peer_closed = true;
            }
            if used == 0 {
                break;
            }
        }
        Ok(())
    }

    /// Reads what the socket holds now, without waiting, into the session.
    fn read_waiting(&mut self, socket: &Socket) {
        while !self.saw_eof && !self.peer_closed && self.cipher_in.len() < CIPHERTEXT_READ {
            match socket.read_now(&mut self.cipher_in, CIPHERTEXT_READ) {
                Ok(0) => self.end_of_stream(),
                Ok(_) => {}
                Err(_) => return,
            }
            if self.take_ciphertext().is_err() {
                return;
            }
        }
    }

    /// The TCP stream ended: an empty read tells the session, whose
    /// reader then reports a truncation unless `close_notify` came first.
    fn end_of_stream(&mut self) {
        self.saw_eof = true;
        let _ = self.conn.read_tls(&mut io::empty());
    }

    fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        socket: &Socket,
        buf: &mut BytesMut,
        reserve: usize,
    ) -> Poll<io::Result<usize>> {
        loop {
            let start = buf.len();
            buf.resize(start + reserve.max(1), 0);
            let read = self.conn.reader().read(&mut buf[start..]);
            match read {
                Ok(n) => {
                    buf.truncate(start + n);
                    return Poll::Ready(Ok(n));
                }
                // The TCP stream ended without `close_notify`.
                Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => {
                    buf.truncate(start);
                    return Poll::Ready(Ok(0));
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => buf.truncate(start),
                Err(err) => {
                    buf.truncate(start);
                    return Poll::Ready(Err(err));
                }
            }
            if !self.cipher_in.is_empty() {
                // Ciphertext the session had no room for before.
                let before = self.cipher_in.len();
                self.take_ciphertext().map_err(invalid_data)?;
                if self.cipher_in.len() < before {
                    continue;
                }
            }
            if self.saw_eof {
                return Poll::Ready(Ok(0));
            }
            let n = ready!(socket.poll_read(cx, &mut self.cipher_in, CIPHERTEXT_READ))?;
            if n == 0 {
                self.end_of_stream();
            }
            if let Err(err) = self.take_ciphertext() {
                let _ = self.flush(None, socket);
                return Poll::Ready(Err(invalid_data(err)));
            }
            // What the session may want to say now (a key update, an
            // alert) goes out as far as the socket takes it.
            let _ = self.flush(None, socket);
        }
    }

    /// Takes up to one record of `bufs` into the session (unless one is in
    /// flight already) and writes its ciphertext; waits for the socket
    /// with `cx`, or gives up at once (`Pending`) without one.
    fn write(
        &mut self,
        mut cx: Option<&mut Context<'_>>,
        socket: &Socket,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.in_flight == 0 {
            // Whatever an earlier write left (a close_notify, a key
            // update) goes first.
            ready!(self.flush(cx.as_deref_mut(), socket))?;
            let record = one_record(bufs);
            let slices = &record.slices[..record.count];
            if slices.is_empty() {
                return Poll::Ready(Ok(0));
            }
            self.in_flight = self.conn.writer().write_vectored(slices)?;
        }
        ready!(self.flush(cx, socket))?;
        let done = std::mem::take(&mut self.in_flight);
        self.plain_written += done as u64;
        self.ledger
            .push_back((self.plain_written, self.tcp_written));
        Poll::Ready(Ok(done))
    }

    /// Writes the session's pending ciphertext to the socket until none is
    /// left; waits for the socket with `cx`, or returns `Pending` at once
    /// without one (registering no waker: a quiet flush from a read must
    /// not steal the writer's). What the socket did not take yet stays in
    /// `cipher_out` for the next call.
    fn flush(&mut self, mut cx: Option<&mut Context<'_>>, socket: &Socket) -> Poll<io::Result<()>> {
        loop {
            while self.cipher_out_sent < self.cipher_out.len() {
                let unsent = [IoSlice::new(&self.cipher_out[self.cipher_out_sent..])];
                let n = match cx.as_deref_mut() {
                    Some(cx) => ready!(socket.poll_write_vectored(cx, &unsent))?,
                    None => match socket.try_write_vectored(&unsent) {
                        Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                            return Poll::Pending;
                        }
                        result => result?,
                    },
                };
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                self.cipher_out_sent += n;
                self.tcp_written += n as u64;
            }
            self.cipher_out.clear();
            self.cipher_out_sent = 0;
            if !self.conn.wants_write() {
                return Poll::Ready(Ok(()));
            }
            self.conn.write_tls(&mut self.cipher_out)?;
        }
    }
}

/// The first [`RECORD_PLAINTEXT`] bytes of `bufs`, as at most four slices
/// (enough for a head, a chunk's framing, its data and its end; fewer
/// slices only mean a shorter record).
struct OneRecord<'a> {
    slices: [IoSlice<'a>; 4],
    count: usize,
}

fn one_record<'a>(bufs: &'a [IoSlice<'a>]) -> OneRecord<'a> {
    let mut record = OneRecord {
        slices: [IoSlice::new(&[]); 4],
        count: 0,
    };
    let mut left = RECORD_PLAINTEXT;
    for slice in bufs.iter().filter(|s| !s.is_empty()) {
        if left == 0 || record.count == record.slices.len() {
            break;
        }
        let take = slice.len().min(left);
        record.slices[record.count] = IoSlice::new(&slice[..take]);
        record.count += 1;
        left -= take;
    }
    record
}

fn invalid_data(err: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_record_takes_at_most_a_record_of_plaintext() {
        let head = [b'h'; 100];
        let body = [b'b'; 20_000];
        let bufs = [IoSlice::new(&head), IoSlice::new(&[]), IoSlice::new(&body)];
        let record = one_record(&bufs);
        let lens: Vec<usize> = record.slices[..record.count]
            .iter()
            .map(|s| s.len())
            .collect();
        assert_eq!(lens, [100, RECORD_PLAINTEXT - 100]);
        let small = [IoSlice::new(&head)];
        assert_eq!(one_record(&small).count, 1);
        let many = [IoSlice::new(&head); 6];
        assert_eq!(one_record(&many).count, 4);
    }
}
