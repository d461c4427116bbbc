//! Producer slots: exclusive, thread-owned producer state without a
//! read-modify-write per publish.
//!
//! Every topic has a fixed array of slots. A slot owns one ring per lane
//! (`ring.rs`), so whoever holds the slot is the single producer of those rings
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
//! The slots also own the topic's snapshot cell (`snapshot.rs`): slot `i` is
//! reader `i` of the cell, so the hazard slot a reader uses is exclusive
//! exactly when the producer slot is, and [`SnapshotAccess`] (handed out only
//! inside [`SlotGuard::with_view`]) makes that the only way to call the cell's
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

use std::cell::RefCell;
use std::marker::PhantomData;

use crossbeam_utils::CachePadded;

use crate::fence;
use crate::loom::cell::UnsafeCell;
use crate::loom::hint::spin_loop;
use crate::loom::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use crate::loom::sync::{Arc, Mutex, MutexGuard};
use crate::loom::thread_local;
use crate::snapshot::SnapshotCell;

/// Per-thread state: the token that identifies the thread, the flag that tells
/// reclaimers whether it is still alive, and its sticky slot choices.
struct ThreadState {
    token: u64,
    alive: Arc<AtomicBool>,
    /// `(topic uid, slot index)`: where this thread publishes to each topic.
    choices: RefCell<Vec<(u64, usize)>>,
}

impl Drop for ThreadState {
    fn drop(&mut self) {
        // Release: pairs with the Acquire load in `ProducerSlots::claim`, so a
        // reclaimer sees everything this thread wrote to its slots' views.
        self.alive.store(false, Ordering::Release);
    }
}

thread_local! {
    static THREAD: ThreadState = ThreadState {
        token: crate::loom::unique_id(),
        alive: Arc::new(AtomicBool::new(true)),
        choices: RefCell::new(Vec::new()),
    };
}

/// This thread's token: process-unique, never reused, non-zero.
///
/// Returns 0 while the thread is being torn down (its thread-locals are gone);
/// no slot is ever owned by token 0, so such a thread takes the shared slot.
pub fn thread_token() -> u64 {
    THREAD.try_with(|t| t.token).unwrap_or(0)
}

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
    /// Inside a publish (set by `acquire`, cleared when the guard drops).
    active: AtomicBool,
    /// Claim bookkeeping (dedicated slots), or the publish lock (shared slot).
    claim: Mutex<Claim>,
    /// The producer state; accessed only by the owner (or the shared-slot lock
    /// holder) through a `SlotGuard`.
    view: UnsafeCell<V>,
}

/// The slots of one topic, and the topic's snapshot cell (reader `i` = slot
/// `i`).
pub struct ProducerSlots<V, S> {
    slots: Box<[CachePadded<Slot<V>>]>,
    snapshot: SnapshotCell<S>,
    dedicated: usize,
    uid: u64,
}

// SAFETY: a `V` is only ever accessed by one thread at a time (the slot owner
// or the shared-slot lock holder, see `SlotGuard`), and ownership moves between
// threads, so `V: Send` is required and sufficient. The snapshot cell is
// `Send + Sync` under its own bounds.
unsafe impl<V: Send, S: Send + Sync> Send for ProducerSlots<V, S> {}
// SAFETY: as above: shared access to `ProducerSlots` never gives two threads
// access to the same `V`.
unsafe impl<V: Send, S: Send + Sync> Sync for ProducerSlots<V, S> {}

/// Where a `SlotGuard` came from.
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
        }
    }

    /// Total number of slots.
    pub fn len(&self) -> usize {
        self.slots.len()
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

    /// Takes the calling thread's slot for the duration of one publish.
    ///
    /// `hint` is a per-handle cache of the last slot index used through it; a
    /// hit costs one load of `hint` and one of the slot's `owner`.
    #[inline]
    pub fn acquire(&self, hint: &crate::loom::sync::atomic::AtomicUsize) -> SlotGuard<'_, V, S> {
        let me = thread_token();
        let i = hint.load(Ordering::Relaxed);
        let guard = match self.slots.get(i) {
            // Relaxed: only this thread ever stores `me` (see module docs).
            Some(slot) if me != 0 && slot.owner.load(Ordering::Relaxed) == me => SlotGuard {
                slots: self,
                index: i,
                _lock: None,
                _not_send: PhantomData,
            },
            _ => self.acquire_slow(me, hint),
        };
        guard.enter();
        guard
    }

    #[cold]
    fn acquire_slow(
        &self,
        me: u64,
        hint: &crate::loom::sync::atomic::AtomicUsize,
    ) -> SlotGuard<'_, V, S> {
        let index = self.choose(me);
        hint.store(index, Ordering::Relaxed);
        if index == self.dedicated {
            let lock = self.slots[index]
                .claim
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            SlotGuard {
                slots: self,
                index,
                _lock: Some(lock),
                _not_send: PhantomData,
            }
        } else {
            SlotGuard {
                slots: self,
                index,
                _lock: None,
                _not_send: PhantomData,
            }
        }
    }

    /// The slot this thread publishes through: its sticky choice, its worker
    /// slot, a newly claimed dedicated slot, or the shared one.
    fn choose(&self, me: u64) -> usize {
        if me == 0 {
            return self.dedicated;
        }
        let remembered = THREAD.try_with(|t| {
            t.choices
                .borrow()
                .iter()
                .find(|(uid, _)| *uid == self.uid)
                .map(|&(_, i)| i)
        });
        if let Ok(Some(i)) = remembered {
            return i;
        }
        let index = (self.dedicated + 1..self.slots.len())
            .find(|&i| self.slots[i].owner.load(Ordering::Relaxed) == me)
            .or_else(|| (0..self.dedicated).find(|&i| self.claim(i, me)))
            .unwrap_or(self.dedicated);
        // Ignore a failure: the thread is exiting and publishes once more.
        let _ = THREAD.try_with(|t| t.choices.borrow_mut().push((self.uid, index)));
        index
    }

    /// Claims dedicated slot `i` for `me` if it is free or its owner died.
    fn claim(&self, i: usize, me: u64) -> bool {
        let slot = &self.slots[i];
        let mut claim = match slot.claim.try_lock() {
            Ok(c) => c,
            // Another thread is claiming it right now: try the next one.
            Err(_) => return false,
        };
        let free = match &claim.alive {
            None => true,
            // Acquire: pairs with the Release in `ThreadState::drop`.
            Some(alive) => !alive.load(Ordering::Acquire),
        };
        if !free {
            return false;
        }
        let Ok(alive) = THREAD.try_with(|t| t.alive.clone()) else {
            return false;
        };
        claim.alive = Some(alive);
        // Release: with the mutex, orders this claim after the previous owner's
        // accesses (module docs).
        slot.owner.store(me, Ordering::Release);
        true
    }

    /// Waits until no slot in `range` is inside a publish.
    ///
    /// The caller must have published its stop condition (the closed topic
    /// version) and then called [`fence::heavy`]: afterwards every publish that
    /// is not yet active will see the stop condition.
    pub fn wait_inactive(&self, range: std::ops::Range<usize>) {
        for slot in &self.slots[range] {
            // Acquire: pairs with the Release in `SlotGuard::drop`, so the
            // finished publish's pushes are visible to the caller.
            while slot.active.load(Ordering::Acquire) {
                spin_loop();
                crate::loom::thread::yield_now();
            }
        }
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

/// Proof that the calling thread has exclusive use of one slot's view for the
/// duration of a publish. Not `Send`: ownership belongs to the thread.
pub struct SlotGuard<'a, V, S> {
    slots: &'a ProducerSlots<V, S>,
    index: usize,
    /// Held for the shared slot.
    _lock: Option<MutexGuard<'a, Claim>>,
    _not_send: PhantomData<*const ()>,
}

impl<V, S> SlotGuard<'_, V, S> {
    #[inline(always)]
    fn enter(&self) {
        self.slots.slots[self.index]
            .active
            .store(true, Ordering::Relaxed);
        // Pairs with `fence::heavy` in shutdown (module docs): the topic
        // version load that follows cannot be ordered before this store.
        fence::light();
    }

    /// The slot index.
    #[inline(always)]
    pub fn index(&self) -> usize {
        self.index
    }

    /// The kind of slot held.
    #[inline(always)]
    pub fn kind(&self) -> SlotKind {
        self.slots.kind(self.index)
    }

    /// Runs `f` with exclusive access to the slot's view, and to the
    /// snapshot cell as this slot's reader.
    #[inline(always)]
    pub fn with_view<R>(&mut self, f: impl FnOnce(&mut V, &SnapshotAccess<'_, S>) -> R) -> R {
        let access = SnapshotAccess {
            cell: &self.slots.snapshot,
            reader: self.index,
        };
        self.slots.slots[self.index].view.with_mut(|v| {
            // SAFETY: the guard proves exclusive use of this slot: either the
            // slot's `owner` is this thread's token (only this thread stores
            // it, and it is only replaced after this thread's `alive` flag is
            // cleared at thread exit, which cannot happen while this thread
            // runs), or this is the shared slot and `_lock` holds its mutex.
            // The guard is `!Send` and borrowed mutably, so the `&mut V` is
            // unique for the duration of `f`.
            f(unsafe { &mut *v }, &access)
        })
    }
}

/// The snapshot cell as seen by the holder of one slot: reader index = slot
/// index. Exists only inside [`SlotGuard::with_view`].
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
        // SAFETY: a `SnapshotAccess` is created only in `with_view`, for the
        // slot its guard holds exclusively, so no other thread uses reader
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

impl<V, S> Drop for SlotGuard<'_, V, S> {
    #[inline(always)]
    fn drop(&mut self) {
        // Release: pairs with the Acquire in `wait_inactive`.
        self.slots.slots[self.index]
            .active
            .store(false, Ordering::Release);
    }
}

impl<V, S> std::fmt::Debug for SlotGuard<'_, V, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlotGuard")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl<V, S> ProducerSlots<V, S> {
    /// Runs `f` with exclusive access to slot `index`'s view, for a thread that
    /// knows it owns that slot without going through `acquire` (a worker
    /// flushing its own backlog). Returns `None` if the calling thread does not
    /// own it.
    pub fn with_owned<R>(
        &self,
        index: usize,
        f: impl FnOnce(&mut V, &SnapshotAccess<'_, S>) -> R,
    ) -> Option<R> {
        let me = thread_token();
        let slot = self.slots.get(index)?;
        if me == 0 || slot.owner.load(Ordering::Relaxed) != me {
            return None;
        }
        let mut guard = SlotGuard {
            slots: self,
            index,
            _lock: None,
            _not_send: PhantomData,
        };
        guard.enter();
        Some(guard.with_view(f))
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::loom::sync::atomic::AtomicUsize;

    #[test]
    fn a_thread_keeps_its_slot_and_others_get_their_own() {
        let slots = std::sync::Arc::new(ProducerSlots::new(2, &[], (), |_| 0u64));
        let hint = AtomicUsize::new(usize::MAX);
        let first = slots.acquire(&hint).index();
        assert_eq!(slots.kind(first), SlotKind::Dedicated);
        // A second handle (fresh hint) on the same thread finds the same slot.
        let hint2 = AtomicUsize::new(usize::MAX);
        assert_eq!(slots.acquire(&hint2).index(), first);

        let s = slots.clone();
        let other = std::thread::spawn(move || {
            let hint = AtomicUsize::new(usize::MAX);
            let mut g = s.acquire(&hint);
            g.with_view(|v, _| *v += 1);
            g.index()
        })
        .join()
        .unwrap();
        assert_ne!(other, first);
        assert_eq!(slots.kind(other), SlotKind::Dedicated);
    }

    #[test]
    fn slots_of_exited_threads_are_reclaimed_and_extra_threads_share() {
        let slots = std::sync::Arc::new(ProducerSlots::new(1, &[], (), |_| Vec::<u64>::new()));
        // Thread A claims the only dedicated slot, writes, exits.
        let s = slots.clone();
        let a = std::thread::spawn(move || {
            let hint = AtomicUsize::new(usize::MAX);
            let mut g = s.acquire(&hint);
            g.with_view(|v, _| v.push(1));
            g.index()
        })
        .join()
        .unwrap();
        assert_eq!(a, 0);
        // Thread B reclaims it and sees A's write.
        let s = slots.clone();
        let (b, seen) = std::thread::spawn(move || {
            let hint = AtomicUsize::new(usize::MAX);
            let mut g = s.acquire(&hint);
            let seen = g.with_view(|v, _| v.clone());
            (g.index(), seen)
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
            let idx = s.acquire(&hint).index();
            claimed_tx.send(()).unwrap();
            rx.recv().unwrap();
            idx
        });
        claimed_rx.recv().unwrap();
        let hint = AtomicUsize::new(usize::MAX);
        let d = slots.acquire(&hint).index();
        assert_eq!(d, slots.shared_index());
        tx.send(()).unwrap();
        assert_eq!(c.join().unwrap(), 0);
        // Sticky: even though slot 0 is free again, this thread stays shared.
        let hint = AtomicUsize::new(usize::MAX);
        assert_eq!(slots.acquire(&hint).index(), slots.shared_index());
    }

    #[test]
    fn worker_slots_belong_to_their_worker_from_the_start() {
        let me = thread_token();
        let slots = ProducerSlots::new(2, &[12345, me], (), |_| ());
        let hint = AtomicUsize::new(usize::MAX);
        let g = slots.acquire(&hint);
        assert_eq!(g.index(), slots.worker_index(1));
        assert_eq!(g.kind(), SlotKind::Worker);
        drop(g);
        assert!(slots.with_owned(slots.worker_index(1), |_, _| ()).is_some());
        assert!(slots.with_owned(slots.worker_index(0), |_, _| ()).is_none());
    }

    #[test]
    fn active_is_set_only_inside_a_publish() {
        let slots = ProducerSlots::new(1, &[], (), |_| ());
        let hint = AtomicUsize::new(usize::MAX);
        let g = slots.acquire(&hint);
        assert!(slots.slots[g.index()].active.load(Ordering::Relaxed));
        drop(g);
        slots.wait_inactive(slots.external());
    }
}
