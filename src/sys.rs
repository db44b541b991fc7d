//! The crate's only `unsafe` code: four raw socket calls, one clock read,
//! one reactor registration that safe APIs do not offer, a string view of
//! ASCII bytes without UTF-8 validation, and a box handed between threads
//! by one atomic swap. Everything here is small enough to check by eye.

#![allow(unsafe_code)]

use std::io;
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use socket2::SockRef;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::net::TcpStream;

/// `bytes` as text if they are all ASCII: what `str::from_utf8` gives for
/// such bytes, for less: on the benchmark's 10-byte request path, under
/// callgrind, `str::from_utf8` cost about 110 instructions per request and
/// this saved about 85 of them.
pub(crate) fn ascii_str(bytes: &[u8]) -> Option<&str> {
    if !bytes.is_ascii() {
        return None;
    }
    // SAFETY: every byte is ASCII (checked just above), and a sequence of
    // ASCII bytes is valid UTF-8.
    Some(unsafe { std::str::from_utf8_unchecked(bytes) })
}

/// Reads once from the socket into `buf`'s spare capacity, bypassing
/// tokio's readiness cache (see `transport::Transport::poll_read` for why).
///
/// Returns the number of bytes read; 0 means EOF (or no spare capacity).
pub(crate) fn recv_into(stream: &TcpStream, buf: &mut BytesMut) -> io::Result<usize> {
    let spare = buf.spare_capacity_mut();
    let n = SockRef::from(stream).recv(spare)?;
    // SAFETY: `recv` returned n, so the kernel wrote n bytes into the first
    // n slots of `spare` (socket2's contract for `recv`), and n cannot exceed
    // `spare.len()`: those bytes are initialised, and `len + n` is within
    // capacity.
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n)
}

/// Copies the bytes waiting in the socket's receive queue into `buf`'s
/// spare capacity without consuming them (`MSG_PEEK`): a later read gets
/// them again. Returns how many; 0 means EOF (or no spare capacity).
pub(crate) fn peek_into(stream: &TcpStream, buf: &mut BytesMut) -> io::Result<usize> {
    let spare = buf.spare_capacity_mut();
    let n = SockRef::from(stream).peek(spare)?;
    // SAFETY: as in `recv_into`: `peek` wrote n bytes into the first n
    // slots of `spare`, and n cannot exceed its length.
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n)
}

/// Takes `count` bytes off the socket's receive queue and drops them: the
/// ones a [`peek_into`] showed are there. Returns how many it took (fewer
/// only at EOF or when fewer are waiting).
pub(crate) fn discard(stream: &TcpStream, count: usize) -> io::Result<usize> {
    let mut scratch = [MaybeUninit::<u8>::uninit(); 512];
    let socket = SockRef::from(stream);
    let mut taken = 0;
    while taken < count {
        let want = (count - taken).min(scratch.len());
        match socket.recv(&mut scratch[..want])? {
            0 => break,
            n => taken += n,
        }
    }
    Ok(taken)
}

/// Sends up to `count` bytes of `file`, from `offset`, to the socket with
/// `sendfile(2)`: the kernel copies them from the page cache, never
/// through user space. Returns how many it sent (0: the file ended).
/// Non-blocking like the socket: `WouldBlock` when its buffer is full.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn send_file(
    stream: &TcpStream,
    file: &std::fs::File,
    offset: u64,
    count: usize,
) -> io::Result<usize> {
    use std::os::fd::AsRawFd;

    let mut offset = libc::off_t::try_from(offset)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file offset too large"))?;
    // Linux sends at most 0x7ffff000 bytes per call anyway.
    let count = count.min(0x7fff_f000);
    // SAFETY: both descriptors are open for the whole call (owned by
    // `stream` and `file`, which the caller borrows); `offset` is a valid,
    // writable `off_t` the kernel reads and updates, and no buffer of ours
    // is involved.
    let sent = unsafe { libc::sendfile(stream.as_raw_fd(), file.as_raw_fd(), &mut offset, count) };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    // Non-negative and at most `count`: fits.
    Ok(sent as usize)
}

/// Not available here: callers copy instead.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn send_file(
    _stream: &TcpStream,
    _file: &std::fs::File,
    _offset: u64,
    _count: usize,
) -> io::Result<usize> {
    Err(io::ErrorKind::Unsupported.into())
}

/// Bytes of data the peer's TCP stack has acknowledged on this socket since
/// it was established (Linux `TCP_INFO.tcpi_bytes_acked`, kernel 4.1+).
///
/// `None` on other platforms, or when the kernel does not report it.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn tcp_bytes_acked(stream: &TcpStream) -> Option<u64> {
    use std::os::fd::AsRawFd;

    let mut info = MaybeUninit::<libc::tcp_info>::zeroed();
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: the fd is a live TCP socket owned by `stream` for the whole
    // call; `info` points to writable memory of `len` bytes, and the kernel
    // writes at most `len` bytes and stores the length it wrote in `len`.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    let acked_end =
        std::mem::offset_of!(libc::tcp_info, tcpi_bytes_acked) + std::mem::size_of::<u64>();
    if rc != 0 || (len as usize) < acked_end {
        return None;
    }
    // SAFETY: the struct was zero-initialised (every field is an integer, for
    // which zero is valid) and the kernel overwrote a prefix of it.
    let info = unsafe { info.assume_init() };
    Some(info.tcpi_bytes_acked)
}

/// Not available here.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn tcp_bytes_acked(_stream: &TcpStream) -> Option<u64> {
    None
}

/// Whole seconds since the Unix epoch from the kernel's coarse real-time
/// clock (Linux `CLOCK_REALTIME_COARSE`): the time of the last timer tick,
/// read from the vDSO page without touching the TSC. It lags the precise
/// clock by at most one tick (1 to 10 ms), which a one-second `Date` value
/// cannot show; it costs about a seventh of `SystemTime::now()` here.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn unix_seconds_coarse() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable `timespec` for the whole call, and
    // `clock_gettime` writes only into it. The clock id is a constant the
    // kernel has supported since 2.6.32.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut now) };
    if rc != 0 {
        return unix_seconds_precise();
    }
    u64::try_from(now.tv_sec).unwrap_or(0)
}

/// Other platforms: the standard clock.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn unix_seconds_coarse() -> u64 {
    unix_seconds_precise()
}

fn unix_seconds_precise() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// An epoll set of the crate's own (the parking lot's), registered with
/// the runtime's reactor for readability.
pub(crate) struct EpollSet(AsyncFd<mio::Poll>);

impl EpollSet {
    /// An empty set, and a registry that adds and removes sockets from any
    /// thread. Needs a tokio runtime with I/O enabled.
    ///
    /// # Errors
    ///
    /// Creating the set or registering it with the reactor failed.
    pub(crate) fn new() -> io::Result<(Self, mio::Registry)> {
        let poll = mio::Poll::new()?;
        let registry = poll.registry().try_clone()?;
        // SAFETY: the reactor needs the descriptor to stay open and the
        // same, and `as_raw_fd` to name it, for the `AsyncFd`'s life. A
        // `mio::Poll` owns its epoll descriptor and closes it only when
        // dropped, and `as_raw_fd` returns that one descriptor. The `Poll`
        // never leaves this type (no method hands it out by value or by
        // `&mut`, so it cannot be swapped for another), and is dropped only
        // with the `AsyncFd`.
        let fd = unsafe { AsyncFd::register_with_interest(poll, Interest::READABLE) }?;
        Ok((EpollSet(fd), registry))
    }

    /// Waits until sockets in the set are ready, and fills `events` with
    /// them (at most its capacity; the rest stay for the next call).
    /// Cancel-safe: nothing is taken from the set until it returns.
    ///
    /// # Errors
    ///
    /// The reactor is shutting down, or `epoll_wait` failed.
    pub(crate) async fn ready(&mut self, events: &mut mio::Events) -> io::Result<()> {
        loop {
            let mut guard = self.0.readable_mut().await?;
            let polled = guard.try_io(|set| {
                set.get_mut().poll(events, Some(Duration::ZERO))?;
                if events.is_empty() {
                    // Nothing after all: readiness is cleared, wait again.
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                Ok(())
            });
            match polled {
                Ok(Err(err)) if err.kind() == io::ErrorKind::Interrupted => {}
                Ok(result) => return result,
                Err(_would_block) => {}
            }
        }
    }
}

/// At most one `Box<T>`, put in and taken out by any thread with one
/// atomic swap: what a `Mutex<Option<Box<T>>>` does for a value handed
/// from one owner to the next, at half the atomic operations (a lock and
/// an unlock are two).
pub(crate) struct AtomicBox<T> {
    /// Null, or a pointer from `Box::into_raw` that this cell owns.
    ptr: AtomicPtr<T>,
    /// Owns a `T` (drop check).
    _owns: PhantomData<Box<T>>,
}

// SAFETY: the cell owns its `T` as a `Box<T>` would, so it may move to
// another thread when `T` may.
unsafe impl<T: Send> Send for AtomicBox<T> {}
// SAFETY: through a shared reference, a `T` can only be moved in or out
// whole by an atomic swap (never borrowed in place), as with
// `Mutex<Option<Box<T>>>`, which is `Sync` when `T: Send`.
unsafe impl<T: Send> Sync for AtomicBox<T> {}

impl<T> Default for AtomicBox<T> {
    fn default() -> Self {
        AtomicBox {
            ptr: AtomicPtr::new(ptr::null_mut()),
            _owns: PhantomData,
        }
    }
}

impl<T> AtomicBox<T> {
    /// Puts `value` in (or empties the cell, with `None`); returns what was
    /// in it.
    pub(crate) fn swap(&self, value: Option<Box<T>>) -> Option<Box<T>> {
        let new = value.map_or(ptr::null_mut(), Box::into_raw);
        // Release and Acquire: the `T` written before the swap is seen by
        // the thread that takes it out. Sequentially consistent, so that a
        // caller can order it with its own flags (`exchange::Slot`).
        let old = self.ptr.swap(new, Ordering::SeqCst);
        if old.is_null() {
            return None;
        }
        // SAFETY: a non-null pointer in `ptr` came from `Box::into_raw`
        // (just above, in an earlier call) and is owned by the cell; the
        // swap took it out atomically, so this call alone now owns it.
        Some(unsafe { Box::from_raw(old) })
    }

    /// True when the cell holds a value (which another thread may take at
    /// any moment).
    pub(crate) fn is_full(&self) -> bool {
        !self.ptr.load(Ordering::SeqCst).is_null()
    }

    /// Takes the value out, leaving the cell empty.
    pub(crate) fn take(&self) -> Option<Box<T>> {
        self.swap(None)
    }
}

impl<T> Drop for AtomicBox<T> {
    fn drop(&mut self) {
        drop(self.take());
    }
}

impl<T> std::fmt::Debug for AtomicBox<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let full = !self.ptr.load(Ordering::Relaxed).is_null();
        f.debug_struct("AtomicBox").field("full", &full).finish()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ascii_str_accepts_ascii_only() {
        assert_eq!(super::ascii_str(b"/plain?q=1"), Some("/plain?q=1"));
        assert_eq!(super::ascii_str(b""), Some(""));
        assert_eq!(super::ascii_str("/caf\u{e9}".as_bytes()), None);
        assert_eq!(super::ascii_str(b"/\xff"), None);
    }

    /// Counts its drops, to see that every value put in is dropped once.
    struct Counted(std::sync::Arc<std::sync::atomic::AtomicUsize>);

    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    #[test]
    fn an_atomic_box_hands_each_value_to_one_taker_and_drops_what_is_left() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let drops = Arc::new(AtomicUsize::new(0));
        let cell = Arc::new(super::AtomicBox::default());
        assert!(cell.take().is_none());
        assert!(
            cell.swap(Some(Box::new((1, Counted(drops.clone())))))
                .is_none()
        );
        let replaced = cell.swap(Some(Box::new((2, Counted(drops.clone())))));
        assert_eq!(replaced.as_ref().map(|b| b.0), Some(1));
        drop(replaced);
        assert_eq!(drops.load(Ordering::Relaxed), 1);

        // Two threads take turns: each value reaches exactly one of them.
        let taken: Vec<_> = std::thread::scope(|scope| {
            let takers: Vec<_> = (0..2)
                .map(|_| {
                    let cell = cell.clone();
                    scope.spawn(move || {
                        let mut got = Vec::new();
                        for _ in 0..10_000 {
                            if let Some(value) = cell.take() {
                                got.push(value.0);
                            }
                        }
                        got
                    })
                })
                .collect();
            for i in 3..1_000 {
                drop(cell.swap(Some(Box::new((i, Counted(drops.clone()))))));
            }
            takers.into_iter().flat_map(|t| t.join().unwrap()).collect()
        });
        let mut unique = taken.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), taken.len(), "a value was taken twice");
        let left = cell.take().map(|value| value.0);
        drop(cell);
        let seen = taken.len() + usize::from(left.is_some());
        assert!(seen <= 999);
        // Every value is dropped once: taken, replaced, left or still in the cell.
        assert_eq!(drops.load(Ordering::Relaxed), 999);
    }
}
