//! The loom side of the shim: loom's types, plus fixed stubs for what loom
//! does not model (parking with a timeout, the core count).

pub(crate) mod sync {
    pub(crate) use loom::sync::{Arc, MutexGuard};

    /// `std::sync::Mutex` without poisoning (tokio's `loom/std/mutex.rs`):
    /// every critical section in this crate leaves its data consistent even
    /// if a panic unwinds through it, so a lock a panic poisoned is used as
    /// it is.
    #[derive(Debug)]
    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Mutex(loom::sync::Mutex::new(value))
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

    impl<T: Default> Default for Mutex<T> {
        fn default() -> Self {
            Mutex::new(T::default())
        }
    }

    impl Default for Condvar {
        fn default() -> Self {
            Condvar::new()
        }
    }

    /// A condition variable for [`Mutex`], without poisoning.
    #[derive(Debug)]
    pub(crate) struct Condvar(loom::sync::Condvar);

    impl Condvar {
        pub(crate) fn new() -> Self {
            Condvar(loom::sync::Condvar::new())
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
        pub(crate) use loom::sync::atomic::{
            fence, AtomicBool, AtomicPtr, AtomicU64, AtomicU8, AtomicUsize, Ordering,
        };

        /// loom has no compiler fence; the asymmetric-fence module never calls
        /// this under loom (it uses `fence(SeqCst)` on both sides there).
        #[allow(dead_code)]
        pub(crate) fn compiler_fence(order: Ordering) {
            fence(order)
        }
    }
}

pub(crate) mod cell {
    pub(crate) use loom::cell::UnsafeCell;
}

pub(crate) mod thread {
    pub(crate) use loom::thread::{yield_now, Builder, JoinHandle};
}

pub(crate) mod hint {
    pub(crate) use loom::hint::spin_loop;
}

pub(crate) mod future {
    pub(crate) use loom::future::AtomicWaker;
}

pub(crate) use loom::thread_local;

/// A fixed core count so placement code runs under loom.
pub(crate) fn core_count() -> usize {
    2
}

pub(crate) fn unique_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// loom has no clock: sleeping yields to the other model threads.
pub(crate) fn sleep(_d: std::time::Duration) {
    loom::thread::yield_now();
}
