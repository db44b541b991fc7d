//! The parking lot: idle keep-alive sockets waiting without a task.
//!
//! A connection idle past `idle_release_after` with nothing pending hands
//! its socket here, with the little state it needs to serve again, and its
//! task ends. The lot keeps every parked socket in an epoll set of its own
//! (through `mio`) and one *attendant* task watches that set, the idle
//! deadlines and the shutdown for all of them. So a parked connection costs
//! a slot in a table (about 100 bytes), not a task, a timer and a tokio I/O
//! registration (about 1.4 KiB measured when each had its own task).
//!
//! The attendant runs only while something is parked: the connection that
//! parks into an empty lot gets it back from [`ParkingLot::park`] and
//! spawns it; it ends when the lot empties. Stopping any other way (the
//! server draining, the runtime shutting down, a panic) closes every
//! parked socket, and hands the set back for the next attendant.
//!
//! Readiness: a socket joins the set *level*-checked (epoll reports bytes
//! or a close that were already there when it joined) and is watched
//! edge-triggered after that. Bytes resume the connection (a new task reads
//! them); the client's FIN or an error (a reset) closes it; a wake-up with
//! nothing to read is ignored. A socket whose idle deadline passes is
//! looked at once more: bytes that arrived just in time are served.

use std::collections::VecDeque;
use std::io;
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex, MutexGuard};

use mio::unix::SourceFd;
use mio::{Events, Interest, Token};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::shutdown::{Shutdown, Stage};
use crate::sys::EpollSet;

/// Readiness events taken from the lot's epoll set per wake-up; the
/// attendant checks the shutdown and the deadlines between batches.
const EVENTS_PER_POLL: usize = 64;

/// Idle sockets of one server, each with the state `T` that serving it again
/// needs, until bytes arrive, the client leaves, its idle deadline passes
/// or the server drains.
pub(crate) struct ParkingLot<T> {
    state: Mutex<State<T>>,
    /// Adds and removes sockets in the epoll set from any task.
    registry: mio::Registry,
    /// Wakes the attendant when a socket parks with an earlier deadline
    /// than the one it sleeps until.
    earlier_deadline: Notify,
}

struct State<T> {
    parked: Lot<(TcpStream, T)>,
    /// The epoll set, here while no attendant runs; the attendant holds it
    /// while it does.
    set: Option<EpollSet>,
}

/// The task that watches a non-empty lot; see [`ParkingLot::park`]. However
/// it stops, it hands the epoll set back; unless it stopped because the lot
/// was empty, it closes what is parked (nothing else would watch it).
pub(crate) struct Attendant<T> {
    lot: Arc<ParkingLot<T>>,
    /// `Some` until handed back.
    set: Option<EpollSet>,
}

/// What a ready socket gets.
enum Verdict {
    /// Bytes to read: serve it again.
    Resume,
    /// Nothing to read after all: keep it parked.
    Wait,
    /// The client closed or reset it, or it failed.
    Close(&'static str),
}

impl<T> ParkingLot<T> {
    /// An empty lot with its own epoll set. Needs a tokio runtime with I/O
    /// enabled.
    ///
    /// # Errors
    ///
    /// Creating the epoll set or registering it with the runtime failed
    /// (out of file descriptors, for one).
    pub(crate) fn new() -> io::Result<Self> {
        let (set, registry) = EpollSet::new()?;
        Ok(ParkingLot {
            state: Mutex::new(State {
                parked: Lot::default(),
                set: Some(set),
            }),
            registry,
            earlier_deadline: Notify::new(),
        })
    }

    /// Parks `socket` (non-blocking, out of tokio's reactor) with `state`
    /// until `idle_deadline`. Returns the attendant when none runs: the
    /// caller spawns it ([`Attendant::run`]).
    ///
    /// # Errors
    ///
    /// The socket could not join the epoll set; it has been closed.
    pub(crate) fn park(
        self: &Arc<Self>,
        socket: TcpStream,
        state: T,
        idle_deadline: Instant,
    ) -> io::Result<Option<Attendant<T>>> {
        let fd = socket.as_raw_fd();
        let mut lot = self.state();
        let (index, earliest) = lot.parked.insert((socket, state), idle_deadline);
        // Under the lock: the attendant handles an event for this token only
        // after the entry is in place.
        if let Err(err) =
            self.registry
                .register(&mut SourceFd(&fd), Token(index), Interest::READABLE)
        {
            lot.parked.remove(index);
            return Err(err);
        }
        if let Some(set) = lot.set.take() {
            return Ok(Some(Attendant {
                lot: self.clone(),
                set: Some(set),
            }));
        }
        if earliest {
            self.earlier_deadline.notify_one();
        }
        Ok(None)
    }

    fn state(&self) -> MutexGuard<'_, State<T>> {
        // The table stays consistent whatever panicked while holding it.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Handles the socket parked at `index`, which epoll reported ready:
    /// one with bytes to read leaves the lot for `resume`, one closed or
    /// in error leaves it and closes, a spurious wake-up leaves it parked.
    fn wake(&self, index: usize, resume: &mut impl FnMut(TcpStream, T)) {
        let mut lot = self.state();
        // The token may name a slot whose socket has changed since the
        // event (a socket that expired is closed after its slot is freed,
        // and a new one may park there meanwhile): the verdict looks at
        // the socket in the slot now, so that costs one peek at most.
        let Some((socket, _)) = lot.parked.get(index) else {
            return;
        };
        let verdict = verdict(socket);
        if matches!(verdict, Verdict::Wait) {
            return;
        }
        let Some(parked) = lot.parked.remove(index) else {
            return;
        };
        drop(lot);
        self.release(parked, verdict, resume);
    }

    /// Settles the sockets whose idle deadline passed: closed, unless bytes
    /// arrived just in time.
    fn expire(&self, expired: Vec<(TcpStream, T)>, resume: &mut impl FnMut(TcpStream, T)) {
        for parked in expired {
            let verdict = match verdict(&parked.0) {
                Verdict::Wait => Verdict::Close("idle timeout"),
                verdict => verdict,
            };
            self.release(parked, verdict, resume);
        }
    }

    /// Acts on the verdict for a socket already out of the table.
    fn release(
        &self,
        (socket, state): (TcpStream, T),
        verdict: Verdict,
        resume: &mut impl FnMut(TcpStream, T),
    ) {
        let why = match verdict {
            Verdict::Resume => match self.registry.deregister(&mut SourceFd(&socket.as_raw_fd())) {
                Ok(()) => return resume(socket, state),
                Err(_) => "it could not leave the epoll set",
            },
            Verdict::Wait => return,
            Verdict::Close(why) => why,
        };
        close([(socket, state)], why);
    }
}

/// What to do with a parked socket, judged by a one-byte peek.
fn verdict(socket: &TcpStream) -> Verdict {
    match socket.peek(&mut [0; 1]) {
        Ok(0) => Verdict::Close("the client closed it"),
        Ok(_) => Verdict::Resume,
        Err(err) if err.kind() == io::ErrorKind::WouldBlock => Verdict::Wait,
        Err(_) => Verdict::Close("the client reset it"),
    }
}

impl<T> Attendant<T> {
    /// Watches the lot until it is empty: sockets with bytes go to `resume`
    /// (which starts serving them), those the client closed, past their
    /// idle deadline or in error close, and all close once the server
    /// drains.
    pub(crate) async fn run(mut self, shutdown: Shutdown, mut resume: impl FnMut(TcpStream, T)) {
        let _registration = shutdown.register_task().await;
        let mut events = Events::with_capacity(EVENTS_PER_POLL);
        let mut expired = Vec::new();
        loop {
            let next_deadline = {
                let mut state = self.lot.state();
                let next = state.parked.expire(Instant::now(), &mut expired);
                if next.is_none() {
                    // Empty: the next connection to park starts a new
                    // attendant with the set.
                    state.set = self.set.take();
                }
                next
            };
            self.lot.expire(std::mem::take(&mut expired), &mut resume);
            let (Some(next_deadline), Some(set)) = (next_deadline, self.set.as_mut()) else {
                return;
            };
            tokio::select! {
                biased;
                // Dropping the attendant closes what is parked.
                () = shutdown.reached(Stage::Draining) => return,
                ready = set.ready(&mut events) => match ready {
                    Ok(()) => {
                        for event in events.iter() {
                            self.lot.wake(event.token().0, &mut resume);
                        }
                    }
                    Err(err) => {
                        tracing::warn!(%err, "watching parked connections failed; closing them");
                        return;
                    }
                },
                () = tokio::time::sleep_until(next_deadline) => {}
                () = self.lot.earlier_deadline.notified() => {}
            }
        }
    }
}

impl<T> Drop for Attendant<T> {
    fn drop(&mut self) {
        let Some(set) = self.set.take() else {
            return;
        };
        let mut state = self.lot.state();
        let parked = state.parked.take_all();
        state.set = Some(set);
        drop(state);
        close(parked, "the server is shutting down");
    }
}

/// Closes parked sockets (dropping one closes it and takes it out of the
/// epoll set).
fn close<T>(parked: impl IntoIterator<Item = (TcpStream, T)>, why: &str) {
    for (socket, _) in parked {
        tracing::debug!(peer = ?socket.peer_addr().ok(), "closing a parked connection: {why}");
    }
}

/// A table of entries with idle deadlines: slots reused through a free
/// list, and the deadlines in order. Removing an entry leaves its deadline
/// behind (skipped when it comes up, or compacted away).
struct Lot<E> {
    slots: Vec<Slot<E>>,
    free: Vec<usize>,
    deadlines: VecDeque<Deadline>,
    len: usize,
}

struct Slot<E> {
    generation: u32,
    entry: Option<E>,
}

#[derive(Clone, Copy)]
struct Deadline {
    at: Instant,
    index: usize,
    generation: u32,
}

impl<E> Default for Lot<E> {
    fn default() -> Self {
        Lot {
            slots: Vec::new(),
            free: Vec::new(),
            deadlines: VecDeque::new(),
            len: 0,
        }
    }
}

impl<E> Lot<E> {
    /// Adds an entry; returns its index and whether its deadline is now
    /// the earliest.
    fn insert(&mut self, entry: E, at: Instant) -> (usize, bool) {
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    entry: None,
                });
                self.slots.len() - 1
            }
        };
        let slot = &mut self.slots[index];
        slot.generation = slot.generation.wrapping_add(1);
        slot.entry = Some(entry);
        let generation = slot.generation;
        self.len += 1;
        if self.deadlines.len() > 2 * self.len + 64 {
            self.compact();
        }
        // Deadlines mostly arrive in order (each is the idle start plus the
        // same timeout): the search ends near the back.
        let position = self.deadlines.partition_point(|d| d.at <= at);
        self.deadlines.insert(
            position,
            Deadline {
                at,
                index,
                generation,
            },
        );
        (index, position == 0)
    }

    fn get(&self, index: usize) -> Option<&E> {
        self.slots.get(index)?.entry.as_ref()
    }

    fn remove(&mut self, index: usize) -> Option<E> {
        let entry = self.slots.get_mut(index)?.entry.take()?;
        self.free.push(index);
        self.len -= 1;
        if self.len == 0 {
            // Give the memory of a burst back.
            *self = Lot::default();
        }
        Some(entry)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.len
    }

    /// Moves the entries whose deadline is at or before `now` to `out`;
    /// returns the next deadline, or `None` when the lot is empty.
    fn expire(&mut self, now: Instant, out: &mut Vec<E>) -> Option<Instant> {
        while let Some(&front) = self.deadlines.front() {
            if !self.is_live(front) {
                self.deadlines.pop_front();
                continue;
            }
            if front.at > now {
                return Some(front.at);
            }
            self.deadlines.pop_front();
            out.extend(self.remove(front.index));
        }
        None
    }

    /// Empties the lot.
    fn take_all(&mut self) -> Vec<E> {
        let lot = std::mem::take(self);
        lot.slots
            .into_iter()
            .filter_map(|slot| slot.entry)
            .collect()
    }

    fn is_live(&self, deadline: Deadline) -> bool {
        self.slots
            .get(deadline.index)
            .is_some_and(|slot| slot.generation == deadline.generation && slot.entry.is_some())
    }

    /// Drops the deadlines of entries that left.
    fn compact(&mut self) {
        let mut deadlines = std::mem::take(&mut self.deadlines);
        deadlines.retain(|&d| self.is_live(d));
        self.deadlines = deadlines;
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::time::Duration;

    use super::*;

    /// A connected pair on loopback: (the client's end, the server's).
    fn socket_pair() -> (TcpStream, TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        (client, server)
    }

    /// An attendant that stops without emptying the lot (dropped unpolled
    /// here; a panic or the runtime stopping alike) closes what is parked
    /// and hands the set back, so parking works again.
    #[tokio::test]
    async fn a_dropped_attendant_closes_what_is_parked_and_hands_the_set_back() {
        let lot = Arc::new(ParkingLot::new().unwrap());
        let deadline = Instant::now() + Duration::from_secs(60);
        let (mut client, server) = socket_pair();
        let attendant = lot.park(server, (), deadline).unwrap();
        assert!(attendant.is_some(), "the first park starts the attendant");
        let (_other_client, other) = socket_pair();
        assert!(lot.park(other, (), deadline).unwrap().is_none());

        drop(attendant);
        assert_eq!(
            client.read(&mut [0; 1]).unwrap(),
            0,
            "closed, not left open"
        );
        assert_eq!(lot.state().parked.len(), 0);
        let (_client, server) = socket_pair();
        assert!(lot.park(server, (), deadline).unwrap().is_some());
    }

    fn at(base: Instant, ms: u64) -> Instant {
        base + Duration::from_millis(ms)
    }

    #[test]
    fn expires_in_deadline_order_even_when_inserted_out_of_order() {
        let base = Instant::now();
        let mut lot = Lot::default();
        lot.insert("b", at(base, 20));
        let (_, earliest) = lot.insert("a", at(base, 10));
        assert!(earliest, "an earlier deadline must wake the attendant");
        let (_, earliest) = lot.insert("c", at(base, 30));
        assert!(!earliest);
        let mut out = Vec::new();
        assert_eq!(lot.expire(at(base, 20), &mut out), Some(at(base, 30)));
        assert_eq!(out, ["a", "b"]);
        out.clear();
        assert_eq!(lot.expire(at(base, 30), &mut out), None);
        assert_eq!(out, ["c"]);
        assert_eq!(lot.len(), 0);
    }

    #[test]
    fn a_removed_entry_does_not_expire_and_its_slot_is_reused_safely() {
        let base = Instant::now();
        let mut lot = Lot::default();
        let (first, _) = lot.insert(1, at(base, 10));
        lot.insert(2, at(base, 50));
        assert_eq!(lot.remove(first), Some(1));
        assert_eq!(lot.remove(first), None);
        // The freed slot is reused by an entry with a later deadline: the
        // old deadline must not expire it.
        let (reused, _) = lot.insert(3, at(base, 40));
        assert_eq!(reused, first);
        let mut out = Vec::new();
        assert_eq!(lot.expire(at(base, 20), &mut out), Some(at(base, 40)));
        assert!(out.is_empty());
        assert_eq!(lot.get(reused), Some(&3));
    }

    #[test]
    fn deadlines_of_departed_entries_are_compacted() {
        let base = Instant::now();
        let mut lot = Lot::default();
        lot.insert(0, at(base, 1_000_000));
        for i in 1..10_000 {
            let (index, _) = lot.insert(i, at(base, i));
            lot.remove(index);
        }
        assert_eq!(lot.len(), 1);
        assert!(
            lot.deadlines.len() <= 2 * lot.len() + 65,
            "{} deadlines kept for {} entries",
            lot.deadlines.len(),
            lot.len()
        );
    }

    #[test]
    fn an_emptied_lot_gives_its_memory_back() {
        let base = Instant::now();
        let mut lot = Lot::default();
        let indices: Vec<_> = (0..1000).map(|i| lot.insert(i, at(base, i)).0).collect();
        for index in indices {
            lot.remove(index);
        }
        assert_eq!(lot.slots.capacity(), 0);
        assert_eq!(lot.deadlines.capacity(), 0);
        let mut out = Vec::new();
        assert_eq!(lot.expire(at(base, 5000), &mut out), None);
    }

    #[test]
    fn take_all_empties_the_lot() {
        let base = Instant::now();
        let mut lot = Lot::default();
        let (index, _) = lot.insert('a', at(base, 1));
        lot.insert('b', at(base, 2));
        lot.remove(index);
        assert_eq!(lot.take_all(), ['b']);
        assert_eq!(lot.len(), 0);
        assert_eq!(lot.expire(at(base, 5), &mut Vec::new()), None);
    }
}
