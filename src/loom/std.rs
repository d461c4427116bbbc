//! The standard-library side of the shim. It copies loom's API where loom's
//! differs from std (`UnsafeCell::with`/`with_mut`), never the reverse.

pub(crate) mod sync {
    pub(crate) use std::sync::{Arc, MutexGuard};

    /// `std::sync::Mutex` without poisoning (tokio's `loom/std/mutex.rs`):
    /// every critical section in this crate leaves its data consistent even
    /// if a panic unwinds through it, so a lock a panic poisoned is used as
    /// it is.
    #[derive(Debug, Default)]
    pub(crate) struct Mutex<T>(std::sync::Mutex<T>);

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Mutex(std::sync::Mutex::new(value))
        }

        /// Locks, waiting as long as it takes.
        #[inline]
        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock().unwrap_or_else(|e| e.into_inner())
        }

        /// Locks if no other thread holds the lock now.
        #[inline]
        pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
            match self.0.try_lock() {
                Ok(guard) => Some(guard),
                Err(std::sync::TryLockError::Poisoned(e)) => Some(e.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => None,
            }
        }
    }

    /// A condition variable for [`Mutex`], without poisoning.
    #[derive(Debug, Default)]
    pub(crate) struct Condvar(std::sync::Condvar);

    impl Condvar {
        pub(crate) fn new() -> Self {
            Condvar(std::sync::Condvar::new())
        }

        /// Waits for a notification (spurious wake-ups possible).
        pub(crate) fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
            self.0.wait(guard).unwrap_or_else(|e| e.into_inner())
        }

        /// Waits for a notification or `timeout`.
        pub(crate) fn wait_timeout<'a, T>(
            &self,
            guard: MutexGuard<'a, T>,
            timeout: std::time::Duration,
        ) -> MutexGuard<'a, T> {
            match self.0.wait_timeout(guard, timeout) {
                Ok((guard, _)) => guard,
                Err(e) => e.into_inner().0,
            }
        }

        pub(crate) fn notify_one(&self) {
            self.0.notify_one();
        }

        pub(crate) fn notify_all(&self) {
            self.0.notify_all();
        }
    }

    pub(crate) mod atomic {
        pub(crate) use std::sync::atomic::{
            compiler_fence, fence, AtomicBool, AtomicPtr, AtomicU64, AtomicU8, AtomicUsize,
            Ordering,
        };
    }
}

pub(crate) mod cell {
    /// `std::cell::UnsafeCell` with loom's closure-based access API, so the
    /// same code compiles against both.
    #[derive(Debug, Default)]
    #[repr(transparent)]
    pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

    impl<T> UnsafeCell<T> {
        #[inline(always)]
        pub(crate) const fn new(value: T) -> Self {
            Self(std::cell::UnsafeCell::new(value))
        }

        /// Runs `f` with a shared raw pointer to the contents.
        #[inline(always)]
        #[allow(dead_code)] // loom's API, kept whole
        pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
            f(self.0.get())
        }

        /// Runs `f` with an exclusive raw pointer to the contents.
        #[inline(always)]
        pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }

        /// Consumes the cell and returns the contents.
        #[inline(always)]
        #[allow(dead_code)]
        pub(crate) fn into_inner(self) -> T {
            self.0.into_inner()
        }
    }
}

pub(crate) mod thread {
    pub(crate) use std::thread::{yield_now, Builder, JoinHandle};
}

pub(crate) mod hint {
    pub(crate) use std::hint::spin_loop;
}

pub(crate) mod future {
    use std::task::Waker;

    /// The `atomic-waker` crate's `AtomicWaker` with loom's method names
    /// (`register_by_ref`), so the same code compiles against both: one
    /// task's waker, registered and woken without a lock.
    #[derive(Debug, Default)]
    pub(crate) struct AtomicWaker(atomic_waker::AtomicWaker);

    impl AtomicWaker {
        pub(crate) fn new() -> Self {
            AtomicWaker(atomic_waker::AtomicWaker::new())
        }

        /// Registers `waker` for the next [`wake`](AtomicWaker::wake),
        /// replacing the one registered before.
        #[inline]
        pub(crate) fn register_by_ref(&self, waker: &Waker) {
            self.0.register(waker);
        }

        /// Wakes the registered task, if any, and forgets it.
        #[inline]
        pub(crate) fn wake(&self) {
            self.0.wake();
        }
    }
}

pub(crate) use std::thread_local;

/// The number of cores this process may run on (at least 1).
pub(crate) fn core_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Process-unique, never-reused, non-zero ids (thread tokens, topic ids,
/// engine ids). Not part of any synchronization protocol: only uniqueness is
/// relied on, so a std atomic is used under loom as well.
pub(crate) fn unique_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Sleeps for `d` (a `yield_now` under loom, which has no clock).
pub(crate) fn sleep(d: std::time::Duration) {
    std::thread::sleep(d);
}
