//! The loom side of the shim: loom's types, plus fixed stubs for what loom
//! does not model (parking with a timeout, the core count).

pub(crate) mod sync {
    pub(crate) use loom::sync::{Arc, Condvar, Mutex, MutexGuard};

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
