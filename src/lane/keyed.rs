//! A keyed consumer group's partitions: events with equal keys are handled
//! one at a time, in the order the group took them.
//!
//! A keyed group's lane is an ordinary group lane. The member that claims a
//! batch moves each event, still under the claim lock, into the queue of
//! its key's partition (`hash(key) % PARTITIONS`), so every partition queue
//! holds its events in claim order — which keeps each producer's order,
//! since a claim takes each ring's events in order. A member handles a
//! partition's events only while it holds that partition's `busy` flag, so
//! no two members ever handle events of one partition (and so of one key)
//! at once; partitions spread over the members that try them.
//!
//! # Invariants
//!
//! - (K1) Only the holder of `busy` pops a partition's queue; it pops one
//!   event at a time and handles it before popping the next.
//! - (K2) No event is stranded: a holder that releases `busy` looks at the
//!   queue again (under its mutex) and takes `busy` back if it is not
//!   empty. A pusher pushes under the queue's mutex and then tries `busy`.
//!   The holder's release (`Release` store) precedes its look (a lock of
//!   the mutex); if the push came after that look, the pusher's lock of
//!   the mutex comes after the holder's unlock, so its try (`Acquire`
//!   compare-exchange) sees the release and succeeds. Either the holder
//!   sees the event or the pusher takes the partition.
//!
//! Membership changes move nothing: there is no key-to-member map. A member
//! that leaves does so between two handler calls (its removal is a command
//! its worker runs between drains), so it never leaves a partition busy.

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};

use crate::lane::tag::Delivered;
use crate::loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use crate::loom::sync::{Arc, Mutex};

/// Partitions of a keyed group (more than members ever are, so keys spread).
pub(crate) const PARTITIONS: usize = 64;

/// Hashes an event's key.
pub(crate) struct KeyHash<T>(Box<dyn Fn(&T) -> u64 + Send + Sync>);

/// A group's key hash, shared by its members' handles.
pub(crate) type KeyFn<T> = Arc<KeyHash<T>>;

/// Makes a [`KeyFn`] from a key extractor.
pub(crate) fn key_fn<T, K: Hash>(key: impl Fn(&T) -> K + Send + Sync + 'static) -> KeyFn<T> {
    Arc::new(KeyHash(Box::new(move |value: &T| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key(value).hash(&mut h);
        h.finish()
    })))
}

struct Partition<T> {
    queue: Mutex<VecDeque<(T, Delivered)>>,
    busy: AtomicBool,
}

/// The partitions of one keyed group (module docs).
pub(crate) struct Partitions<T> {
    key: KeyFn<T>,
    parts: Box<[Partition<T>]>,
    /// Events in the queues, for `has_work` hints (`Relaxed`: a hint).
    queued: AtomicUsize,
}

impl<T> Partitions<T> {
    pub(crate) fn new(key: KeyFn<T>, partitions: usize) -> Self {
        Partitions {
            key,
            parts: (0..partitions.max(1))
                .map(|_| Partition {
                    queue: Mutex::new(VecDeque::new()),
                    busy: AtomicBool::new(false),
                })
                .collect(),
            queued: AtomicUsize::new(0),
        }
    }

    /// The partition of `value`'s key.
    pub(crate) fn partition_of(&self, value: &T) -> usize {
        ((self.key.0)(value) % self.parts.len() as u64) as usize
    }

    pub(crate) fn len(&self) -> usize {
        self.parts.len()
    }

    /// Queues an event on its key's partition (the caller holds the group's
    /// claim lock, so queues fill in claim order); returns the partition.
    pub(crate) fn push(&self, value: T, d: Delivered) -> usize {
        let p = self.partition_of(&value);
        self.parts[p].queue.lock().push_back((value, d));
        self.queued.fetch_add(1, Ordering::Relaxed);
        p
    }

    /// Whether any partition may hold events (a hint).
    pub(crate) fn has_queued(&self) -> bool {
        self.queued.load(Ordering::Relaxed) > 0
    }

    /// Takes partition `p` if nobody handles it now (K1).
    pub(crate) fn try_take(&self, p: usize) -> Option<Held<'_, T>> {
        let part = &self.parts[p];
        // Acquire: pairs with the Release in `Held::release` (K2), and
        // orders the previous holder's handling before ours.
        part.busy
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| Held { parts: self, p })
    }

    /// Handles partition `p`'s events, one at a time (K1), if nobody else
    /// does: `handle` gets each event and whether it ends the batch, and
    /// hands back one it cannot take (no member left: it goes back to the
    /// front and the pass stops). At most `*budget` events; the budget is
    /// counted down. Releases the partition, then looks again (K2). Returns
    /// `false` if `handle` handed an event back.
    pub(crate) fn serve(
        &self,
        p: usize,
        budget: &mut usize,
        mut handle: impl FnMut(T, Delivered, bool) -> Result<(), (T, Delivered)>,
    ) -> bool {
        let Some(mut held) = self.try_take(p) else {
            return true;
        };
        loop {
            while *budget > 0 {
                let Some((value, d)) = held.pop() else {
                    break;
                };
                *budget -= 1;
                let last = *budget == 0 || held.is_empty();
                if let Err(back) = handle(value, d, last) {
                    *budget += 1;
                    held.unpop(back);
                    let _ = held.release();
                    return false;
                }
            }
            // Released, then looked at again: nothing is stranded (K2).
            if !held.release() || *budget == 0 {
                return true;
            }
            match self.try_take(p) {
                Some(again) => held = again,
                None => return true,
            }
        }
    }

    /// Takes every queued event out (the group's last member left).
    pub(crate) fn drain_all(&self) -> Vec<(T, Delivered)> {
        let mut all = Vec::new();
        for part in self.parts.iter() {
            all.extend(part.queue.lock().drain(..));
        }
        self.queued.fetch_sub(all.len(), Ordering::Relaxed);
        all
    }
}

/// A partition taken by one member (K1).
pub(crate) struct Held<'a, T> {
    parts: &'a Partitions<T>,
    p: usize,
}

impl<T> Held<'_, T> {
    /// The partition's next event, if any.
    pub(crate) fn pop(&mut self) -> Option<(T, Delivered)> {
        let ev = self.parts.parts[self.p].queue.lock().pop_front();
        if ev.is_some() {
            self.parts.queued.fetch_sub(1, Ordering::Relaxed);
        }
        ev
    }

    /// Whether the partition's queue is empty now.
    pub(crate) fn is_empty(&self) -> bool {
        self.parts.parts[self.p].queue.lock().is_empty()
    }

    /// Puts an event it could not hand to a member back at the front.
    pub(crate) fn unpop(&mut self, ev: (T, Delivered)) {
        self.parts.parts[self.p].queue.lock().push_front(ev);
        self.parts.queued.fetch_add(1, Ordering::Relaxed);
    }

    /// Releases the partition; returns whether events arrived meanwhile
    /// (then the caller should try to take it again: K2).
    pub(crate) fn release(self) -> bool {
        let part = &self.parts.parts[self.p];
        // Release: pairs with the Acquire in `try_take`.
        part.busy.store(false, Ordering::Release);
        !part.queue.lock().is_empty()
    }
}

/// For the loom models (`loom-tests/tests/loom_keyed.rs`): partitions of
/// `u32` events keyed by their value, driven through the real
/// [`Partitions::push`] and [`Partitions::serve`].
#[cfg(loom)]
pub struct ModelPartitions(Partitions<u32>);

#[cfg(loom)]
impl std::fmt::Debug for ModelPartitions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelPartitions").finish_non_exhaustive()
    }
}

#[cfg(loom)]
impl ModelPartitions {
    /// `partitions` partitions.
    pub fn new(partitions: usize) -> Self {
        let key = Arc::new(KeyHash(Box::new(|v: &u32| u64::from(*v))));
        ModelPartitions(Partitions::new(key, partitions))
    }

    /// Queues `v` (the caller holds its model's claim lock).
    pub fn push(&self, v: u32) {
        let d = Delivered {
            seq: u64::from(v),
            version: 0,
            published: 0,
            tracker: None,
            lineage: crate::event::trace::Lineage::Root,
            end_of_batch: false,
        };
        self.0.push(v, d);
    }

    /// Serves partition `p` with `handle`, at most `budget` events.
    pub fn serve(&self, p: usize, budget: usize, mut handle: impl FnMut(u32)) {
        let mut budget = budget;
        self.0.serve(p, &mut budget, |v, _, _| {
            handle(v);
            Ok(())
        });
    }
}
