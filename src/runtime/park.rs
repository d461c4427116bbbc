//! A worker's parking spot and a one-shot completion signal.

use crate::loom::sync::atomic::{AtomicUsize, Ordering};
use crate::loom::sync::{Arc, Condvar, Mutex};

/// A worker's parking spot (tokio's `park` design): `unpark` leaves a token
/// that makes the next `park` return at once; unparking a worker that is not
/// parked costs one atomic swap and no syscall.
///
/// Workers use this rather than `thread::park` so that an `unpark` meant for
/// the parked state never touches a thread blocked on something else (loom
/// models `thread::unpark` as waking a thread from *any* block, which real
/// threads do not do).
///
/// # Orderings
///
/// `unpark` swaps in `NOTIFIED` with `Release`; `park` consumes it with an
/// `Acquire` compare-exchange, so what the unparker wrote before is visible
/// after `park` returns. The `PARKED` → wake path goes through the mutex and
/// condition variable, which carry their own happens-before.
#[derive(Default)]
pub(crate) struct Parker {
    /// `EMPTY`, `PARKED` or `NOTIFIED`.
    pub(crate) state: AtomicUsize,
    pub(crate) lock: Mutex<()>,
    pub(crate) cv: Condvar,
}

pub(crate) const EMPTY: usize = 0;
pub(crate) const PARKED: usize = 1;
pub(crate) const NOTIFIED: usize = 2;

impl Parker {
    /// Blocks until `unpark` (or returns at once if a token is waiting).
    pub(crate) fn park(&self) {
        // Fast path: consume a waiting token.
        if self
            .state
            .compare_exchange(NOTIFIED, EMPTY, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return;
        }
        let mut guard = self.lock.lock();
        if self
            .state
            .compare_exchange(EMPTY, PARKED, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            // NOTIFIED arrived between the fast path and the lock. Consume it
            // with a swap, not a store: another `unpark` may have swapped in a
            // newer NOTIFIED meanwhile, and only a read-modify-write reads (and
            // acquires) the latest one. A store would erase that wake-up
            // without synchronizing with it (found by loom).
            // Acquire: pairs with the Release swap in `unpark`.
            self.state.swap(EMPTY, Ordering::Acquire);
            return;
        }
        loop {
            guard = self.cv.wait(guard);
            if self
                .state
                .compare_exchange(NOTIFIED, EMPTY, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
            // Spurious wake-up: still PARKED.
        }
    }

    /// Wakes the parked thread, or leaves a token for its next `park`.
    pub(crate) fn unpark(&self) {
        // Release: pairs with the Acquire in `park`.
        if self.state.swap(NOTIFIED, Ordering::Release) == PARKED {
            // Lock so the notification cannot slip in between the parker's
            // state change and its wait.
            drop(self.lock.lock());
            self.cv.notify_one();
        }
    }
}

/// A one-shot signal.
#[derive(Default)]
pub(crate) struct Completion {
    pub(crate) done: Mutex<bool>,
    pub(crate) cv: Condvar,
}

/// Completes its [`Completion`] when dropped: also when the command that
/// holds it unwinds.
pub(crate) struct CompleteOnDrop(pub(crate) Arc<Completion>);

impl Drop for CompleteOnDrop {
    fn drop(&mut self) {
        self.0.complete();
    }
}

impl Completion {
    pub(crate) fn complete(&self) {
        *self.done.lock() = true;
        self.cv.notify_all();
    }

    pub(crate) fn wait(&self) {
        let mut done = self.done.lock();
        while !*done {
            done = self.cv.wait(done);
        }
    }
}
