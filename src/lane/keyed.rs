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
use crate::sys::mix::mix64;

/// Partitions of a keyed group (more than members ever are, so keys spread).
pub(crate) const PARTITIONS: usize = 64;

/// Hashes an event's key.
pub(crate) struct KeyHash<T>(Box<dyn Fn(&T) -> u64 + Send + Sync>);

/// A group's key hash, shared by its members' handles.
pub(crate) type KeyFn<T> = Arc<KeyHash<T>>;

/// Makes a [`KeyFn`] from a key extractor.
pub(crate) fn key_fn<T, K: Hash>(key: impl Fn(&T) -> K + Send + Sync + 'static) -> KeyFn<T> {
    Arc::new(KeyHash(Box::new(move |value: &T| {
        let mut h = MixHasher(0);
        key(value).hash(&mut h);
        mix64(h.0)
    })))
}

/// A cheap hasher for partition choice (not for hash tables facing
/// adversaries: keys only pick one of a few dozen partitions): each word
/// folded in with a multiply, finished by [`mix64`].
struct MixHasher(u64);

impl Hasher for MixHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x517c_c1b7_2722_0a95);
    }

    fn write_u32(&mut self, v: u32) {
        self.write_u64(u64::from(v));
    }

    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }
}

struct Partition<T> {
    queue: Mutex<VecDeque<(T, Delivered)>>,
    busy: AtomicBool,
    /// Events in `queue`, kept beside it (`Relaxed`: a hint that spares a
    /// pass the lock of an empty partition; a pusher serves its own push).
    len: AtomicUsize,
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
                    len: AtomicUsize::new(0),
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
        let part = &self.parts[p];
        let mut queue = part.queue.lock();
        queue.push_back((value, d));
        part.len.store(queue.len(), Ordering::Relaxed);
        drop(queue);
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
        scratch: &mut VecDeque<(T, Delivered)>,
        mut handle: impl FnMut(T, Delivered, bool) -> Result<(), (T, Delivered)>,
    ) -> bool {
        if self.parts[p].len.load(Ordering::Relaxed) == 0 {
            // Empty when looked at: a later push is served by its pusher.
            return true;
        }
        let Some(mut held) = self.try_take(p) else {
            return true;
        };
        loop {
            // One lock per run of events, not per event: the holder alone
            // pops (K1), so taking several at once keeps their order.
            while *budget > 0 {
                let now_empty = held.take(*budget, scratch);
                if scratch.is_empty() {
                    break;
                }
                while let Some((value, d)) = scratch.pop_front() {
                    *budget -= 1;
                    let last = *budget == 0 || (now_empty && scratch.is_empty());
                    if let Err(back) = handle(value, d, last) {
                        *budget += 1;
                        held.unpop(std::iter::once(back).chain(scratch.drain(..)));
                        let _ = held.release();
                        return false;
                    }
                }
                if now_empty {
                    break;
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
            let mut queue = part.queue.lock();
            all.extend(queue.drain(..));
            part.len.store(0, Ordering::Relaxed);
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
    /// Moves up to `max` of the partition's oldest events into `into`;
    /// returns whether the queue is empty after.
    pub(crate) fn take(&mut self, max: usize, into: &mut VecDeque<(T, Delivered)>) -> bool {
        let part = &self.parts.parts[self.p];
        let mut queue = part.queue.lock();
        let n = max.min(queue.len());
        into.extend(queue.drain(..n));
        part.len.store(queue.len(), Ordering::Relaxed);
        let empty = queue.is_empty();
        drop(queue);
        if n > 0 {
            self.parts.queued.fetch_sub(n, Ordering::Relaxed);
        }
        empty
    }

    /// Puts events it could not hand to a member back at the front, in
    /// their order.
    pub(crate) fn unpop(&mut self, events: impl DoubleEndedIterator<Item = (T, Delivered)>) {
        let part = &self.parts.parts[self.p];
        let mut queue = part.queue.lock();
        let before = queue.len();
        for ev in events.rev() {
            queue.push_front(ev);
        }
        let added = queue.len() - before;
        part.len.store(queue.len(), Ordering::Relaxed);
        drop(queue);
        self.parts.queued.fetch_add(added, Ordering::Relaxed);
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
        let mut scratch = VecDeque::new();
        self.0.serve(p, &mut budget, &mut scratch, |v, _, _| {
            handle(v);
            Ok(())
        });
    }
}
