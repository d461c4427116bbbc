//! Asymmetric fences: a free one for the hot side, an expensive one for the
//! rare side.
//!
//! Two handshakes in pinbus have the store-buffering shape that normally
//! needs a `SeqCst` fence on *both* sides:
//!
//! - parking ([`worker`](crate::runtime::worker)): the producer stores a ring's tail then loads the
//!   worker's `sleeping` flag; the worker stores `sleeping` then loads tails;
//! - the shutdown grace period ([`producer`](crate::core::producer)): the producer stores its
//!   `active` flag then loads the topic version; shutdown stores the version
//!   then loads `active` flags.
//!
//! A hardware fence per publish would cost more than the rest of the publish.
//! Instead the producer calls [`light`] (a compiler fence) and the rare side
//! calls [`heavy`], which runs `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`:
//! the kernel makes every running thread of the process execute a full memory
//! barrier before the call returns, so each `light()` that ran concurrently acts
//! as a full fence relative to the heavy side. This is the pairing Linux
//! documents for `membarrier(2)` and that folly's `asymmetricLightBarrier`
//! and crossbeam's proposed `membarrier` feature use.
//!
//! When the kernel refuses the command (old kernel, seccomp), or under loom
//! and Miri (which cannot model it), both sides fall back to
//! `fence(SeqCst)`: correct everywhere, slower only on that fallback.

use crate::loom::sync::atomic::Ordering;

#[cfg(not(any(loom, miri)))]
mod imp {
    use std::sync::OnceLock;

    use crate::loom::sync::atomic::{compiler_fence, fence, AtomicBool, Ordering};

    /// `true` once the process is registered for expedited membarrier.
    static EXPEDITED: OnceLock<bool> = OnceLock::new();

    /// A copy of `EXPEDITED` for the hot side: one plain load instead of the
    /// `OnceLock` state check. Set only after `EXPEDITED` is `true`, so a
    /// `light()` that sees it set pairs with a `heavy()` that uses the
    /// membarrier; one that sees it unset takes the full fence (always
    /// correct).
    static LIGHT_IS_COMPILER_FENCE: AtomicBool = AtomicBool::new(false);

    /// Registers the process (idempotent). Must run before any thread relies on
    /// `light` being light, i.e. before the first engine starts.
    pub(super) fn init() -> bool {
        let expedited = *EXPEDITED.get_or_init(register);
        if expedited {
            // Relaxed: the flag orders nothing; `EXPEDITED` was set first by
            // this thread, and a reader that misses the store is still
            // correct (see the flag's docs).
            LIGHT_IS_COMPILER_FENCE.store(true, Ordering::Relaxed);
        }
        expedited
    }

    #[cfg(target_os = "linux")]
    fn register() -> bool {
        // SAFETY: `membarrier` takes two integer arguments and touches no
        // memory of ours; an unsupported command just returns -1.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_membarrier,
                libc::MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED,
                0,
            )
        };
        ret == 0
    }

    #[cfg(not(target_os = "linux"))]
    fn register() -> bool {
        false
    }

    #[inline(always)]
    pub(super) fn light() {
        // A word that never changes after start-up: it stays in cache and
        // the branch is predicted.
        if LIGHT_IS_COMPILER_FENCE.load(Ordering::Relaxed) {
            compiler_fence(Ordering::SeqCst);
        } else {
            fence(Ordering::SeqCst);
        }
    }

    pub(super) fn heavy() {
        #[cfg(target_os = "linux")]
        if EXPEDITED.get().copied().unwrap_or(false) {
            // SAFETY: as in `register`.
            let ret = unsafe {
                libc::syscall(
                    libc::SYS_membarrier,
                    libc::MEMBARRIER_CMD_PRIVATE_EXPEDITED,
                    0,
                )
            };
            if ret == 0 {
                return;
            }
            // Registered processes cannot get an error here; should one
            // appear, `light` is already a compiler fence, so a local fence
            // would not be enough. Fail loudly rather than lose a wake-up.
            std::process::abort();
        }
        fence(Ordering::SeqCst);
    }
}

#[cfg(any(loom, miri))]
mod imp {
    use crate::loom::sync::atomic::{fence, Ordering};

    pub(super) fn init() -> bool {
        false
    }

    pub(super) fn light() {
        fence(Ordering::SeqCst);
    }

    pub(super) fn heavy() {
        fence(Ordering::SeqCst);
    }
}

/// Prepares the process for asymmetric fences; returns whether the cheap mode
/// is active. Called by `EngineBuilder::build` before workers start.
pub(crate) fn init() -> bool {
    imp::init()
}

/// The hot side: a compiler fence when `heavy` is a membarrier, else a full
/// fence.
#[inline(always)]
pub(crate) fn light() {
    imp::light();
}

/// The rare side: makes every concurrent [`light`] a full fence.
pub(crate) fn heavy() {
    imp::heavy();
}

/// The ordering the hot side may use for the load that follows `light()`.
/// Relaxed is enough: the fence pair orders it.
pub(crate) const AFTER_LIGHT: Ordering = Ordering::Relaxed;

#[cfg(all(test, not(loom), not(miri), target_os = "linux"))]
mod tests {
    #[test]
    fn expedited_membarrier_is_used_where_the_kernel_offers_it() {
        // SAFETY: the query command touches no memory.
        let supported =
            unsafe { libc::syscall(libc::SYS_membarrier, libc::MEMBARRIER_CMD_QUERY, 0) };
        let expedited =
            supported > 0 && supported as libc::c_int & libc::MEMBARRIER_CMD_PRIVATE_EXPEDITED != 0;
        assert_eq!(super::init(), expedited, "query said {supported:#x}");
        // Both sides run either way.
        super::light();
        super::heavy();
    }
}
