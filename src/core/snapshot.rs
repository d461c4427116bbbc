//! Atomic copy-on-write snapshot: the per-topic list of lanes producers push to.
//!
//! Readers keep their own `Arc<S>` and a copy of the version it came from; on
//! the hot path they load only [`SnapshotCell::version`] (one `Acquire` load of
//! a line that is written only on subscribe/unsubscribe, so it stays shared in
//! every reader's cache). When the version moved they call
//! [`SnapshotCell::load`], which clones the current `Arc` under a hazard
//! pointer. Writers build a new `S` from the old one under a writer lock, swap
//! it in, bump the version, wait until no reader holds a hazard on the old
//! pointer, and drop their reference to it.
//!
//! Readers never block and never take a lock. A writer waits only for readers
//! that are inside the few instructions between publishing their hazard and
//! taking their reference.
//!
//! # Orderings
//!
//! - `update`: `current.swap(AcqRel)`, then `version.store(Release)`. A reader
//!   that loads the new version with `Acquire` therefore sees the new pointer
//!   (or a newer one): `load` returns a snapshot at least as new as the version
//!   it reports. The swap's `Release` also publishes the new snapshot's
//!   contents to the reader's `Acquire` load of `current`.
//! - Hazard protocol (Michael's hazard pointers, fence form): the reader
//!   stores its hazard, runs `fence(SeqCst)`, and re-loads `current`; the
//!   writer swaps `current`, runs `fence(SeqCst)`, and loads every hazard. The
//!   two fences are ordered one way or the other: if the reader's comes first,
//!   the writer's hazard loads see the reader's hazard and the writer waits; if
//!   the writer's comes first, the reader's re-load sees the new pointer and
//!   the reader retries without touching the old one. (Fences rather than
//!   `SeqCst` accesses: that is the form the C++ model and loom both specify.)
//! - The reader clears its hazard with `Release` after incrementing the
//!   reference count; the writer's `Acquire` load of that cleared hazard
//!   synchronizes with it, so the increment happens-before the writer's
//!   decrement and the count never reaches zero under a reader.
#![allow(unreachable_pub)] // `pub` for `internals` under cfg(loom); crate-private otherwise

use std::ptr;

use crossbeam_utils::CachePadded;

use crate::loom::hint::spin_loop;
use crate::loom::sync::atomic::{fence, AtomicPtr, AtomicU64, Ordering};
use crate::loom::sync::{Arc, Mutex};

/// An atomically replaceable `Arc<S>` with a version number and a fixed set
/// of reader slots.
pub struct SnapshotCell<S> {
    /// Number of completed `update`s; starts at 0. Written only under `writer`.
    version: CachePadded<AtomicU64>,
    /// The current snapshot: a pointer from `Arc::into_raw`, owning one strong
    /// reference. Never null.
    current: AtomicPtr<S>,
    /// One hazard per reader index: the pointer that reader is about to clone,
    /// or null.
    hazards: Box<[CachePadded<AtomicPtr<S>>]>,
    /// Serializes writers.
    writer: Mutex<()>,
}

// SAFETY: the cell hands out `Arc<S>` clones to any thread and drops `S` on
// whichever thread wins the last reference, exactly like `Arc<S>`, which is
// `Send + Sync` when `S: Send + Sync`.
unsafe impl<S: Send + Sync> Send for SnapshotCell<S> {}
// SAFETY: as above.
unsafe impl<S: Send + Sync> Sync for SnapshotCell<S> {}

impl<S> SnapshotCell<S> {
    /// A cell holding `initial` at version 0, with `readers` reader indices.
    pub fn new(initial: S, readers: usize) -> Self {
        Self {
            version: CachePadded::new(AtomicU64::new(0)),
            current: AtomicPtr::new(Arc::into_raw(Arc::new(initial)).cast_mut()),
            hazards: (0..readers)
                .map(|_| CachePadded::new(AtomicPtr::new(ptr::null_mut())))
                .collect(),
            writer: Mutex::new(()),
        }
    }

    /// The version of the latest completed update.
    ///
    /// `Acquire`: pairs with the `Release` store in [`update`], so a reader
    /// that sees version `v` and then calls [`load`] gets a snapshot at least
    /// as new as `v`.
    ///
    /// [`update`]: SnapshotCell::update
    /// [`load`]: SnapshotCell::load
    #[inline(always)]
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// The current version and a reference to the current snapshot (at least
    /// as new as that version). Lock-free.
    ///
    /// # Safety
    ///
    /// `reader` must be below the `readers` given to [`new`], and no other
    /// thread may call `load` with the same `reader` at the same time (each
    /// reader index is one hazard slot; the engine gives producer slot `i`
    /// reader index `i`, and a producer slot has one owner at a time).
    ///
    /// [`new`]: SnapshotCell::new
    pub unsafe fn load(&self, reader: usize) -> (u64, Arc<S>) {
        let version = self.version();
        let hazard = &self.hazards[reader];
        let mut ptr = self.current.load(Ordering::Acquire);
        loop {
            // Store, fence, re-load: see "Hazard protocol" above.
            hazard.store(ptr, Ordering::Relaxed);
            fence(Ordering::SeqCst);
            let again = self.current.load(Ordering::Acquire);
            if again == ptr {
                break;
            }
            ptr = again;
        }
        // - `ptr` came from `Arc::into_raw` (the only values `current` holds).
        // - While our hazard shows `ptr` and the re-load above still saw it in
        //   `current`, a writer that swapped it out waits for the hazard to
        //   clear before dropping its reference, so the count is >= 1 here.
        // SAFETY: by the two points above, `ptr` is a live `Arc` allocation.
        let snapshot = unsafe {
            Arc::increment_strong_count(ptr.cast_const());
            Arc::from_raw(ptr.cast_const())
        };
        // Release: pairs with the writer's Acquire hazard load, so our
        // increment happens-before its decrement.
        hazard.store(ptr::null_mut(), Ordering::Release);
        (version, snapshot)
    }

    /// Replaces the snapshot with `f(&old, new_version)` and returns the new
    /// version. `f` runs under the writer lock, before the new snapshot is
    /// visible, so anything it publishes happens-before a reader sees
    /// `new_version`.
    ///
    /// Returns after the old snapshot is no longer protected by any hazard
    /// (readers may still hold their own `Arc` clones of it).
    pub fn update(&self, f: impl FnOnce(&S, u64) -> S) -> u64 {
        let _writer = self.writer.lock();
        let old = self.current.load(Ordering::Acquire);
        // The writer lock orders writers, so a Relaxed load of our own
        // counter sees the latest value.
        let next = self.version.load(Ordering::Relaxed) + 1;
        // SAFETY: as in `read`: the writer lock keeps `old` alive.
        let new = Arc::new(f(unsafe { &*old }, next));
        let new = Arc::into_raw(new).cast_mut();
        // Release: publishes the new snapshot to readers' Acquire loads.
        let swapped = self.current.swap(new, Ordering::AcqRel);
        debug_assert_eq!(swapped, old);
        // Release: pairs with the Acquire in `version`.
        self.version.store(next, Ordering::Release);
        // Swap, fence, load hazards: see "Hazard protocol" above.
        fence(Ordering::SeqCst);
        for hazard in self.hazards.iter() {
            // Acquire: pairs with the reader's Release clear (module docs).
            while hazard.load(Ordering::Acquire) == old {
                spin_loop();
            }
        }
        // SAFETY: `old` came from `Arc::into_raw` and `current` owned that
        // reference; it is no longer reachable through `current`, and no
        // reader is between its hazard store and its increment for it (loop
        // above), so releasing this one reference is sound.
        drop(unsafe { Arc::from_raw(old.cast_const()) });
        next
    }
}

impl<S> Drop for SnapshotCell<S> {
    fn drop(&mut self) {
        let ptr = self.current.load(Ordering::Acquire);
        // SAFETY: `&mut self`: no reader or writer is active, and `current`
        // owns one reference from `Arc::into_raw`.
        drop(unsafe { Arc::from_raw(ptr.cast_const()) });
    }
}

impl<S> std::fmt::Debug for SnapshotCell<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotCell")
            .field("version", &self.version())
            .field("readers", &self.hazards.len())
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize as StdAtomicUsize, Ordering as StdOrdering};

    static LIVE: StdAtomicUsize = StdAtomicUsize::new(0);

    #[derive(Debug)]
    struct Snap(Vec<u64>);
    impl Snap {
        fn new(v: Vec<u64>) -> Self {
            LIVE.fetch_add(1, StdOrdering::SeqCst);
            Snap(v)
        }
    }
    impl Drop for Snap {
        fn drop(&mut self) {
            LIVE.fetch_sub(1, StdOrdering::SeqCst);
        }
    }

    #[test]
    fn readers_see_updates_and_nothing_leaks() {
        // One test touches LIVE so counts are not disturbed by parallel tests.
        {
            let cell = SnapshotCell::new(Snap::new(vec![]), 2);
            assert_eq!(cell.version(), 0);
            // SAFETY: single-threaded test; reader 0 is used by this thread only.
            let (v0, s0) = unsafe { cell.load(0) };
            assert_eq!((v0, s0.0.len()), (0, 0));
            let v1 = cell.update(|old, next| {
                assert_eq!(next, 1);
                let mut v = old.0.clone();
                v.push(1);
                Snap::new(v)
            });
            assert_eq!(v1, 1);
            // The old snapshot is still alive through our clone.
            assert_eq!(LIVE.load(StdOrdering::SeqCst), 2);
            drop(s0);
            assert_eq!(LIVE.load(StdOrdering::SeqCst), 1);
            // SAFETY: as above.
            let (v, s) = unsafe { cell.load(1) };
            assert_eq!((v, s.0.clone()), (1, vec![1]));
        }
        assert_eq!(LIVE.load(StdOrdering::SeqCst), 0);

        // Concurrent readers (one per reader index) against a writer.
        let rounds = if cfg!(miri) { 20 } else { 2_000 };
        let cell = std::sync::Arc::new(SnapshotCell::new(Snap::new(vec![0]), 2));
        let readers: Vec<_> = (0..2)
            .map(|r| {
                let cell = cell.clone();
                std::thread::spawn(move || {
                    let mut last = 0;
                    for _ in 0..rounds {
                        // SAFETY: reader index `r` belongs to this thread.
                        let (v, s) = unsafe { cell.load(r) };
                        // Snapshots only move forward and match their version.
                        assert!(v >= last);
                        assert!(s.0.len() as u64 > v);
                        last = v;
                    }
                })
            })
            .collect();
        for _ in 0..rounds / 4 {
            cell.update(|old, _| {
                let mut v = old.0.clone();
                v.push(v.len() as u64);
                Snap::new(v)
            });
        }
        for r in readers {
            r.join().unwrap();
        }
        drop(cell);
        assert_eq!(LIVE.load(StdOrdering::SeqCst), 0);
    }
}
