//! A server's shutdown as its connections see it: a stage that every poll
//! reads with one atomic load, and one wake-up per connection task when the
//! stage advances.
//!
//! A `CancellationToken` or `Notify` awaited by every connection would lock
//! a mutex shared by all of them on every poll of every connection (to
//! register and unregister the waiter). Here each connection task registers
//! its waker once, when it starts; advancing the stage wakes them all.

use std::future::{Future, poll_fn};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};

use tokio_util::sync::CancellationToken;

/// How far the shutdown has gone (0 while serving normally). Only ever
/// advances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub(crate) enum Stage {
    /// Graceful shutdown: no new connections or requests, idle connections
    /// close, in-flight requests may finish.
    Draining = 1,
    /// The grace period is over: every connection closes now.
    Forced = 2,
}

/// Shared by a server and all its connections; cheap to clone.
#[derive(Debug, Clone, Default)]
pub(crate) struct Shutdown {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    stage: AtomicU8,
    tasks: Mutex<Tasks>,
    /// Cancelled when draining starts, for the accept loop (one waiter).
    draining: CancellationToken,
}

/// The wakers of the registered connection tasks, in reusable slots.
#[derive(Debug, Default)]
struct Tasks {
    wakers: Vec<Option<Waker>>,
    free: Vec<usize>,
}

impl Shutdown {
    /// Starts the graceful shutdown (no effect once started).
    pub(crate) fn start_graceful(&self) {
        self.advance(Stage::Draining);
    }

    /// Ends the grace period: every connection closes now.
    pub(crate) fn force(&self) {
        self.advance(Stage::Forced);
    }

    /// True once the graceful shutdown has started (or been forced).
    pub(crate) fn is_draining(&self) -> bool {
        self.stage() >= Stage::Draining as u8
    }

    /// Resolves when draining starts. For any task: it waits on a token,
    /// not on a task registration.
    pub(crate) async fn draining_started(&self) {
        self.inner.draining.cancelled().await;
    }

    /// Registers the calling task to be woken whenever the stage advances,
    /// until the returned registration is dropped. A tokio task's waker
    /// wakes that task for its whole life, so registering once is enough.
    pub(crate) async fn register_task(&self) -> TaskRegistration {
        let waker = poll_fn(|cx| Poll::Ready(cx.waker().clone())).await;
        let mut tasks = self.tasks();
        let slot = match tasks.free.pop() {
            Some(slot) => {
                tasks.wakers[slot] = Some(waker);
                slot
            }
            None => {
                tasks.wakers.push(Some(waker));
                tasks.wakers.len() - 1
            }
        };
        TaskRegistration {
            shutdown: self.clone(),
            slot,
        }
    }

    /// Resolves once the shutdown reached `stage`: one atomic load per
    /// poll. Only for a task holding a [`TaskRegistration`]: the wake-up
    /// comes from that registration, not from this future.
    pub(crate) fn reached(&self, stage: Stage) -> impl Future<Output = ()> + '_ {
        poll_fn(move |_cx| {
            if self.stage() >= stage as u8 {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }

    fn stage(&self) -> u8 {
        self.inner.stage.load(Ordering::Acquire)
    }

    fn advance(&self, to: Stage) {
        let before = self.inner.stage.fetch_max(to as u8, Ordering::AcqRel);
        if before >= to as u8 {
            return;
        }
        self.inner.draining.cancel();
        // A task registering after this lock sees the new stage at its
        // first poll; one registered before it is woken here.
        for waker in self.tasks().wakers.iter().flatten() {
            waker.wake_by_ref();
        }
    }

    fn tasks(&self) -> MutexGuard<'_, Tasks> {
        // The lists stay consistent whatever panicked while holding them.
        self.inner
            .tasks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A connection task's place in the wake-up list; leaves it when dropped.
#[derive(Debug)]
pub(crate) struct TaskRegistration {
    shutdown: Shutdown,
    slot: usize,
}

impl Drop for TaskRegistration {
    fn drop(&mut self) {
        let mut tasks = self.shutdown.tasks();
        tasks.wakers[self.slot] = None;
        tasks.free.push(self.slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_registered_task_wakes_when_the_stage_advances() {
        let shutdown = Shutdown::default();
        let task = tokio::spawn({
            let shutdown = shutdown.clone();
            async move {
                let _registration = shutdown.register_task().await;
                shutdown.reached(Stage::Draining).await;
                assert!(shutdown.is_draining());
                shutdown.reached(Stage::Forced).await;
            }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!task.is_finished());
        shutdown.start_graceful();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!task.is_finished(), "finished before the forced stage");
        shutdown.force();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the registered task was not woken")
            .unwrap();
        assert!(shutdown.tasks().wakers.iter().all(Option::is_none));
    }

    #[tokio::test]
    async fn a_task_registering_late_sees_the_stage_at_once() {
        let shutdown = Shutdown::default();
        shutdown.force();
        let _registration = shutdown.register_task().await;
        tokio::time::timeout(Duration::from_secs(5), shutdown.reached(Stage::Forced))
            .await
            .expect("stage already reached");
        tokio::time::timeout(Duration::from_secs(5), shutdown.draining_started())
            .await
            .expect("forcing implies draining");
    }

    #[test]
    fn slots_are_reused() {
        let shutdown = Shutdown::default();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let first = rt.block_on(shutdown.register_task());
        let second = rt.block_on(shutdown.register_task());
        assert_eq!((first.slot, second.slot), (0, 1));
        drop(first);
        let third = rt.block_on(shutdown.register_task());
        assert_eq!(third.slot, 0);
        assert_eq!(shutdown.tasks().wakers.len(), 2);
    }
}
