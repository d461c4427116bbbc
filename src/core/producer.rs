//! Producer slots: exclusive, thread-owned producer state without a
//! read-modify-write per publish.
//!
//! Every topic has a fixed array of slots. A slot owns one ring per lane
//! ([`ring`](crate::core::ring)), so whoever holds the slot is the single producer of those rings
//! and pushes with plain stores. Slots come in three kinds:
//!
//! - **dedicated** (`0..dedicated`): claimed by a thread on its first publish
//!   to the topic and kept until that thread exits; afterwards another thread
//!   may reclaim it. The hot path recognises its own slot with one load of the
//!   slot's `owner` word, compared with the thread's token — no atomic
//!   read-modify-write.
//! - **shared** (`dedicated`): threads that find every dedicated slot held by a
//!   live thread publish through this one under a mutex. The choice is sticky
//!   per thread and topic, so per-producer order holds.
//! - **worker** (`dedicated + 1 ..`): one per worker thread, owned by it from the
//!   topic's creation. Handlers publish through these; a worker never blocks on
//!   a full ring (it queues in the slot's backlog instead).
//!
//! The slots also own the topic's snapshot cell ([`snapshot`](crate::core::snapshot)): slot `i` is
//! reader `i` of the cell, so the hazard slot a reader uses is exclusive
//! exactly when the producer slot is, and [`SnapshotAccess`] (handed out only
//! inside [`ProducerSlots::with_slot`]) makes that the only way to call the cell's
//! unsafe `load`.
//!
//! # Orderings
//!
//! - `owner` is written only inside the slot's `claim` mutex: `Release` on the
//!   store, which the next owner's mutex acquisition (and the `Acquire` load
//!   of the previous owner's `alive` flag) orders after the previous owner's
//!   last access to the view. A thread reading its *own* token back (`Relaxed`)
//!   knows it owns the slot: no other thread writes that token, and an owner is
//!   only replaced after it died.
//! - `alive` is cleared with `Release` by the thread-exit destructor and read
//!   with `Acquire` by a reclaimer, so the dead owner's writes to the view
//!   happen-before the new owner's.
//! - `active` (shutdown grace period): set `Relaxed` then [`fence::light`]
//!   before the publish reads the topic version, cleared with `Release` after
//!   the push; shutdown stores the version, runs [`fence::heavy`], then waits
//!   with `Acquire` loads until every `active` is clear. Either the publish sees
//!   the closed version, or shutdown sees it active and waits for its push.
#![allow(unreachable_pub)] // `pub` for `internals` under cfg(loom); crate-private otherwise

use crossbeam_utils::CachePadded;

use crate::core::snapshot::SnapshotCell;
use crate::core::token::{self, thread_token};
use crate::loom::cell::UnsafeCell;
use crate::loom::hint::spin_loop;
use crate::loom::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use crate::loom::sync::{Arc, Mutex};
use crate::sys::fence;

/// Who holds a slot, as seen under its `claim` mutex.
#[derive(Default)]
struct Claim {
    /// The owner's liveness flag; `None` while the slot was never claimed.
    alive: Option<Arc<AtomicBool>>,
}

struct Slot<V> {
    /// Token of the owning thread; 0 = never claimed. Written only under
    /// `claim`; see module docs.
    owner: AtomicU64,
    /// Inside a publish (set by `with_slot`, cleared when it returns or
    /// unwinds).
    active: AtomicBool,
    /// Events published through this slot; single writer (the slot holder).
    published: AtomicU64,
    /// Claim bookkeeping (dedicated slots), or the publish lock (shared slot).
    claim: Mutex<Claim>,
    /// The producer state; accessed only by the owner (or the shared-slot lock
    /// holder) inside `ProducerSlots::run`.
    view: UnsafeCell<V>,
}

/// The slots of one topic, and the topic's snapshot cell (reader `i` = slot
/// `i`).
pub struct ProducerSlots<V, S> {
    slots: Box<[CachePadded<Slot<V>>]>,
    snapshot: SnapshotCell<S>,
    dedicated: usize,
    uid: u64,
    /// Cleared when the slots drop: threads prune their choice of them.
    live: Arc<AtomicBool>,
}

impl<V, S> Drop for ProducerSlots<V, S> {
    fn drop(&mut self) {
        self.live.store(false, Ordering::Relaxed);
    }
}

// SAFETY: a `V` is only ever accessed by one thread at a time (the slot owner
// or the shared-slot lock holder, see `run`), and ownership moves between
// threads, so `V: Send` is required and sufficient. The snapshot cell is
// `Send + Sync` under its own bounds.
unsafe impl<V: Send, S: Send + Sync> Send for ProducerSlots<V, S> {}
// SAFETY: as above: shared access to `ProducerSlots` never gives two threads
// access to the same `V`.
unsafe impl<V: Send, S: Send + Sync> Sync for ProducerSlots<V, S> {}

/// What kind of slot a publish holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotKind {
    /// A dedicated slot owned by the calling thread.
    Dedicated,
    /// The shared slot, under its lock.
    Shared,
    /// The calling worker's own slot.
    Worker,
}

impl<V, S> ProducerSlots<V, S> {
    /// `dedicated` claimable slots, one shared slot and one slot per entry of
    /// `worker_tokens` (owned by those threads from the start), and a snapshot
    /// cell holding `snapshot`. `make` builds the view of each slot from its
    /// index.
    pub fn new(
        dedicated: usize,
        worker_tokens: &[u64],
        snapshot: S,
        mut make: impl FnMut(usize) -> V,
    ) -> Self {
        let total = dedicated + 1 + worker_tokens.len();
        let slots = (0..total)
            .map(|i| {
                let owner = if i > dedicated {
                    worker_tokens[i - dedicated - 1]
                } else {
                    0
                };
                CachePadded::new(Slot {
                    owner: AtomicU64::new(owner),
                    active: AtomicBool::new(false),
                    published: AtomicU64::new(0),
                    claim: Mutex::new(Claim::default()),
                    view: UnsafeCell::new(make(i)),
                })
            })
            .collect();
        Self {
            snapshot: SnapshotCell::new(snapshot, total),
            slots,
            dedicated,
            uid: crate::loom::unique_id(),
            live: Arc::new(AtomicBool::new(true)),
        }
    }

    /// The snapshot cell (its safe API: `version`, `read`, `update`).
    pub fn snapshot(&self) -> &SnapshotCell<S> {
        &self.snapshot
    }

    /// The index of the shared slot.
    #[cfg_attr(not(any(test, loom)), allow(dead_code))]
    pub fn shared_index(&self) -> usize {
        self.dedicated
    }

    /// The index of worker `w`'s slot.
    #[cfg_attr(not(any(test, loom)), allow(dead_code))]
    pub fn worker_index(&self, w: usize) -> usize {
        self.dedicated + 1 + w
    }

    /// Which kind of slot `index` is.
    pub fn kind(&self, index: usize) -> SlotKind {
        use std::cmp::Ordering as Cmp;
        match index.cmp(&self.dedicated) {
            Cmp::Less => SlotKind::Dedicated,
            Cmp::Equal => SlotKind::Shared,
            Cmp::Greater => SlotKind::Worker,
        }
    }

    /// Runs `f` with exclusive use of the calling thread's slot: its view,
    /// the snapshot cell as its reader, and what kind of slot it is.
    ///
    /// `hint` is a per-handle cache of the last slot index used through it; a
    /// hit costs one load of `hint` and one of the slot's `owner`.
    #[inline(always)]
    pub fn with_slot<R>(
        &self,
        hint: &crate::loom::sync::atomic::AtomicUsize,
        f: impl FnOnce(&mut V, &SnapshotAccess<'_, S>, SlotInfo<'_>) -> R,
    ) -> R {
        let me = thread_token();
        let i = hint.load(Ordering::Relaxed);
        if let Some(slot) = self.slots.get(i) {
            // Relaxed: only this thread ever stores `me` (see module docs).
            if me != 0 && slot.owner.load(Ordering::Relaxed) == me {
                return self.run(i, f);
            }
        }
        self.with_slot_slow(me, hint, f)
    }

    /// The publish fast path's way in: when the slot `hint` names is the
    /// calling thread's own, runs `f` on its view with the topic's current
    /// version and the slot's [`Published`] counter, inside the shutdown
    /// grace period (as [`with_slot`](Self::with_slot) does). Otherwise
    /// hands `arg` straight back, and so does `f` when it declines: the
    /// caller then goes through `with_slot`.
    ///
    /// Nothing is built for the general path here (no [`SnapshotAccess`],
    /// no [`SlotInfo`]), so a hit costs the owner check, the version load and
    /// `f` itself.
    #[inline(always)]
    pub fn fast<A, R>(
        &self,
        hint: &crate::loom::sync::atomic::AtomicUsize,
        arg: A,
        f: impl FnOnce(&mut V, u64, Published<'_>, A) -> Result<R, A>,
    ) -> Result<R, A> {
        let i = hint.load(Ordering::Relaxed);
        let Some(slot) = self.slots.get(i) else {
            return Err(arg);
        };
        let me = thread_token();
        // Relaxed: only this thread ever stores `me` (see module docs).
        if me == 0 || slot.owner.load(Ordering::Relaxed) != me {
            return Err(arg);
        }
        slot.active.store(true, Ordering::Relaxed);
        // Pairs with `fence::heavy` in shutdown, as in `run`.
        fence::light();
        let _active = Active(&slot.active);
        let version = self.snapshot.version();
        slot.view.with_mut(|v| {
            // SAFETY: the slot's `owner` is this thread's token (checked
            // above; only this thread stores it, and it is replaced only
            // after this thread's `alive` flag is cleared at thread exit), so
            // this thread holds the slot exclusively, as in `run`. The
            // `&mut V` lives only for the duration of `f`, on this thread.
            f(unsafe { &mut *v }, version, Published(&slot.published), arg)
        })
    }

    #[cold]
    #[inline(never)]
    fn with_slot_slow<R>(
        &self,
        me: u64,
        hint: &crate::loom::sync::atomic::AtomicUsize,
        f: impl FnOnce(&mut V, &SnapshotAccess<'_, S>, SlotInfo<'_>) -> R,
    ) -> R {
        let index = self.choose(me);
        hint.store(index, Ordering::Relaxed);
        if index == self.dedicated {
            let _lock = self.slots[index].claim.lock();
            self.run(index, f)
        } else {
            self.run(index, f)
        }
    }

    /// Runs `f` on slot `index`, which the caller holds exclusively (owner or
    /// shared-slot lock), with `active` set around it.
    #[inline(always)]
    fn run<R>(
        &self,
        index: usize,
        f: impl FnOnce(&mut V, &SnapshotAccess<'_, S>, SlotInfo<'_>) -> R,
    ) -> R {
        let slot = &self.slots[index];
        slot.active.store(true, Ordering::Relaxed);
        // Pairs with `fence::heavy` in shutdown (module docs): the topic
        // version load inside `f` cannot be ordered before this store.
        fence::light();
        // Clears `active` when `f` returns or unwinds (a panicking `Clone`
        // must not leave shutdown waiting forever).
        let _active = Active(&slot.active);
        let access = SnapshotAccess {
            cell: &self.snapshot,
            reader: index,
        };
        let info = SlotInfo {
            index,
            kind: self.kind(index),
            published: &slot.published,
        };
        slot.view.with_mut(|v| {
            // SAFETY: the caller holds the slot exclusively: either the
            // slot's `owner` is this thread's token (only this thread stores
            // it, and it is only replaced after this thread's `alive` flag is
            // cleared at thread exit, which cannot happen while this thread
            // runs), or this is the shared slot and the caller holds its
            // mutex. The `&mut V` lives only for the duration of `f`, on this
            // thread.
            f(unsafe { &mut *v }, &access, info)
        })
    }

    /// Events published through every slot so far.
    pub fn published(&self) -> u64 {
        self.slots
            .iter()
            .map(|s| s.published.load(Ordering::Relaxed))
            .sum()
    }

    /// The slot this thread publishes through: its sticky choice, its worker
    /// slot, a newly claimed dedicated slot, or the shared one.
    fn choose(&self, me: u64) -> usize {
        if me == 0 {
            return self.dedicated;
        }
        if let Some(i) = token::remembered(self.uid) {
            return i;
        }
        let index = (self.dedicated + 1..self.slots.len())
            .find(|&i| self.slots[i].owner.load(Ordering::Relaxed) == me)
            .or_else(|| (0..self.dedicated).find(|&i| self.claim(i, me)))
            .unwrap_or(self.dedicated);
        // Ignore a failure: the thread is exiting and publishes once more.
        let live = self.live.clone();
        token::remember(self.uid, index, live);
        index
    }

    /// Claims dedicated slot `i` for `me` if it is free or its owner died.
    fn claim(&self, i: usize, me: u64) -> bool {
        let slot = &self.slots[i];
        let Some(mut claim) = slot.claim.try_lock() else {
            // Another thread is claiming it right now: try the next one.
            return false;
        };
        let free = match &claim.alive {
            None => true,
            // Acquire: pairs with the Release in `ThreadState::drop`.
            Some(alive) => !alive.load(Ordering::Acquire),
        };
        if !free {
            return false;
        }
        let Some(alive) = token::alive() else {
            return false;
        };
        claim.alive = Some(alive);
        // Release: with the mutex, orders this claim after the previous owner's
        // accesses (module docs).
        slot.owner.store(me, Ordering::Release);
        true
    }

    /// Waits until no slot in `range` is inside a publish, or until
    /// `deadline`; returns whether every slot was seen inactive.
    ///
    /// The caller must have published its stop condition (the closed topic
    /// version) and then called [`fence::heavy`]: afterwards every publish that
    /// is not yet active will see the stop condition.
    pub fn wait_inactive(
        &self,
        range: std::ops::Range<usize>,
        deadline: Option<std::time::Instant>,
    ) -> bool {
        for i in range {
            while self.is_active(i) {
                if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                    return false;
                }
                spin_loop();
                crate::loom::thread::yield_now();
            }
        }
        true
    }

    /// Whether slot `i` is inside a publish now (racy: a later publish may
    /// start at once). Seen `false` after the caller's stop condition and
    /// [`fence::heavy`], it means every publish of that slot that could miss
    /// the stop condition has finished, and its pushes are visible.
    pub fn is_active(&self, i: usize) -> bool {
        // Acquire: pairs with the Release in `Active::drop`, so the finished
        // publish's pushes are visible to the caller.
        self.slots
            .get(i)
            .is_some_and(|slot| slot.active.load(Ordering::Acquire))
    }

    /// Every slot's index.
    pub fn all(&self) -> std::ops::Range<usize> {
        0..self.slots.len()
    }

    /// Range of the slots that non-worker threads publish through.
    pub fn external(&self) -> std::ops::Range<usize> {
        0..self.dedicated + 1
    }
}

impl<V, S> std::fmt::Debug for ProducerSlots<V, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProducerSlots")
            .field("slots", &self.slots.len())
            .field("dedicated", &self.dedicated)
            .finish_non_exhaustive()
    }
}

/// Clears a slot's `active` flag on drop.
struct Active<'a>(&'a AtomicBool);

impl Drop for Active<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        // Release: pairs with the Acquire in `wait_inactive`.
        self.0.store(false, Ordering::Release);
    }
}

/// What a slot holder may know about its slot.
#[derive(Clone, Copy)]
pub struct SlotInfo<'a> {
    /// The slot index.
    pub index: usize,
    /// The kind of slot held.
    pub kind: SlotKind,
    published: &'a AtomicU64,
}

impl SlotInfo<'_> {
    /// Adds `n` to the slot's published counter (see [`Published::add`]).
    #[inline(always)]
    pub fn count_published(&self, n: u64) {
        Published(self.published).add(n);
    }
}

/// A held slot's count of events published through it.
#[derive(Clone, Copy)]
pub struct Published<'a>(&'a AtomicU64);

impl std::fmt::Debug for Published<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Published")
            .field(&self.0.load(Ordering::Relaxed))
            .finish()
    }
}

impl Published<'_> {
    /// Adds `n` (single writer: the slot holder; a plain load and store, not
    /// a read-modify-write).
    #[inline(always)]
    pub fn add(self, n: u64) {
        self.0
            .store(self.0.load(Ordering::Relaxed) + n, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for SlotInfo<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlotInfo")
            .field("index", &self.index)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// The snapshot cell as seen by the holder of one slot: reader index = slot
/// index. Exists only inside [`ProducerSlots::with_slot`].
pub struct SnapshotAccess<'a, S> {
    cell: &'a SnapshotCell<S>,
    reader: usize,
}

impl<S> SnapshotAccess<'_, S> {
    /// The current version (`SnapshotCell::version`).
    #[inline(always)]
    pub fn version(&self) -> u64 {
        self.cell.version()
    }

    /// The current version and snapshot (`SnapshotCell::load`).
    pub fn load(&self) -> (u64, Arc<S>) {
        // SAFETY: a `SnapshotAccess` is created only in `run`, for the slot
        // the caller holds exclusively, so no other thread uses reader
        // index `self.reader` of this topic's cell meanwhile; the index is in
        // range because the cell has one reader per slot.
        unsafe { self.cell.load(self.reader) }
    }
}

impl<S> std::fmt::Debug for SnapshotAccess<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotAccess")
            .field("reader", &self.reader)
            .finish_non_exhaustive()
    }
}

impl<V, S> ProducerSlots<V, S> {
    /// Runs `f` with exclusive access to slot `index`'s view, for a thread that
    /// knows it owns that slot without going through `with_slot` (a worker
    /// flushing its own backlog). Returns `None` if the calling thread does not
    /// own it.
    pub fn with_owned<R>(
        &self,
        index: usize,
        f: impl FnOnce(&mut V, &SnapshotAccess<'_, S>, SlotInfo<'_>) -> R,
    ) -> Option<R> {
        let me = thread_token();
        let slot = self.slots.get(index)?;
        if me == 0 || slot.owner.load(Ordering::Relaxed) != me {
            return None;
        }
        Some(self.run(index, f))
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::loom::sync::atomic::AtomicUsize;

    /// The slot index and kind `with_slot` gives the calling thread.
    fn slot_of<V, S>(slots: &ProducerSlots<V, S>, hint: &AtomicUsize) -> (usize, SlotKind) {
        slots.with_slot(hint, |_, _, info| (info.index, info.kind))
    }

    #[test]
    fn a_thread_keeps_its_slot_and_others_get_their_own() {
        let slots = std::sync::Arc::new(ProducerSlots::new(2, &[], (), |_| 0u64));
        let hint = AtomicUsize::new(usize::MAX);
        let (first, kind) = slot_of(&slots, &hint);
        assert_eq!(kind, SlotKind::Dedicated);
        // A second handle (fresh hint) on the same thread finds the same slot.
        let hint2 = AtomicUsize::new(usize::MAX);
        assert_eq!(slot_of(&slots, &hint2).0, first);

        let s = slots.clone();
        let other = std::thread::spawn(move || {
            let hint = AtomicUsize::new(usize::MAX);
            s.with_slot(&hint, |v, _, info| {
                *v += 1;
                info.count_published(1);
                info.index
            })
        })
        .join()
        .unwrap();
        assert_ne!(other, first);
        assert_eq!(slots.kind(other), SlotKind::Dedicated);
        assert_eq!(slots.published(), 1);
    }

    #[test]
    fn slots_of_exited_threads_are_reclaimed_and_extra_threads_share() {
        let slots = std::sync::Arc::new(ProducerSlots::new(1, &[], (), |_| Vec::<u64>::new()));
        // Thread A claims the only dedicated slot, writes, exits.
        let s = slots.clone();
        let a = std::thread::spawn(move || {
            let hint = AtomicUsize::new(usize::MAX);
            s.with_slot(&hint, |v, _, info| {
                v.push(1);
                info.index
            })
        })
        .join()
        .unwrap();
        assert_eq!(a, 0);
        // Thread B reclaims it and sees A's write.
        let s = slots.clone();
        let (b, seen) = std::thread::spawn(move || {
            let hint = AtomicUsize::new(usize::MAX);
            s.with_slot(&hint, |v, _, info| (info.index, v.clone()))
        })
        .join()
        .unwrap();
        assert_eq!((b, seen), (0, vec![1]));
        // While C holds the slot, D takes the shared one, and keeps it.
        let (claimed_tx, claimed_rx) = std::sync::mpsc::channel::<()>();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let s = slots.clone();
        let c = std::thread::spawn(move || {
            let hint = AtomicUsize::new(usize::MAX);
            let idx = slot_of(&s, &hint).0;
            claimed_tx.send(()).unwrap();
            rx.recv().unwrap();
            idx
        });
        claimed_rx.recv().unwrap();
        let hint = AtomicUsize::new(usize::MAX);
        assert_eq!(
            slot_of(&slots, &hint),
            (slots.shared_index(), SlotKind::Shared)
        );
        tx.send(()).unwrap();
        assert_eq!(c.join().unwrap(), 0);
        // Sticky: even though slot 0 is free again, this thread stays shared.
        let hint = AtomicUsize::new(usize::MAX);
        assert_eq!(slot_of(&slots, &hint).0, slots.shared_index());
    }

    #[test]
    fn worker_slots_belong_to_their_worker_from_the_start() {
        let me = thread_token();
        let slots = ProducerSlots::new(2, &[12345, me], (), |_| ());
        let hint = AtomicUsize::new(usize::MAX);
        assert_eq!(
            slot_of(&slots, &hint),
            (slots.worker_index(1), SlotKind::Worker)
        );
        assert!(slots
            .with_owned(slots.worker_index(1), |_, _, _| ())
            .is_some());
        assert!(slots
            .with_owned(slots.worker_index(0), |_, _, _| ())
            .is_none());
    }

    #[test]
    fn active_is_set_only_inside_a_publish_even_if_it_panics() {
        let slots = ProducerSlots::new(1, &[], (), |_| ());
        let hint = AtomicUsize::new(usize::MAX);
        let index = slots.with_slot(&hint, |_, _, info| {
            assert!(slots.slots[info.index].active.load(Ordering::Relaxed));
            info.index
        });
        assert!(!slots.slots[index].active.load(Ordering::Relaxed));
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            slots.with_slot(&hint, |_, _, _| panic!("a Clone impl failed"))
        }));
        assert!(r.is_err());
        assert!(slots.wait_inactive(slots.external(), None));
    }
}
