//! A keyed consumer group's partitions: events with equal keys are handled
//! one at a time, in the order the group took them.
//!
//! A keyed group's lane is an ordinary group lane. Its events are sorted by
//! the key's hash into [`PARTITIONS`] partitions, and a member handles a
//! partition's events only during a *pass* in which it holds the partition.
//! A pass is: under the group's claim lock, take the partitions left behind
//! by earlier passes ("orphans") with their queued events, then claim a
//! batch from the rings and route each event; handle the pass's events
//! (`local`, the member's own list) in order, without any lock; release
//! every partition held. Routing an event of partition `p`:
//!
//! - to the claimer's `local` list if `p`'s queue is empty and `p` is free
//!   (the claimer takes it) or already the claimer's;
//! - else to `p`'s queue, behind what waits there: its holder is in its
//!   pass, and whoever takes `p` next handles the queue first.
//!
//! All of this state (queues, which partitions are held) is guarded by one
//! mutex taken under the claim lock, twice per pass (take and route,
//! release) and never per event: a pass's events cost the key hash and a
//! move into `local`, and nothing atomic. A member holds a partition for
//! one pass only, so keys spread over the members that claim, and a
//! membership change moves nothing (a member leaves between two passes).
//!
//! # Invariants
//!
//! - (K1) A partition is held by at most one member (bit `p` of
//!   `Routing::held`, and of that member's [`Held`]), and only its holder
//!   handles its events, from its `local` list, during the pass in which it
//!   took it. Taking and releasing happen under the routing mutex, so one
//!   holder's handling happens before the next holder's.
//! - (K2) At any time, partition `p`'s events taken from the rings and not
//!   yet handled are its holder's `local` events of `p` (the older ones)
//!   followed by `p`'s queue, each in claim order: an event goes to `local`
//!   only while the queue is empty, and a taker moves the queue's oldest
//!   events first. So events are handled in claim order, which keeps each
//!   producer's order, since a claim takes each ring's events in order.
//! - (K3) No event is stranded: an event queued behind a holder is handled
//!   by whoever takes the partition after the holder's pass. A queue left
//!   behind with no holder is an orphan, flagged by the `orphans` hint,
//!   which the releasing member's own `has_work` sees (program order), so
//!   its worker passes again before it parks; a member whose worker lost
//!   every member hands its events back and wakes the other workers. (A
//!   member that leaves orphans also wakes the other workers, so that the
//!   members that queued them take a share: keys spread.)
//!
//! # Orderings
//!
//! `orphans` is a `Relaxed` hint, written under the routing mutex: a reader
//! acts on it only by taking that mutex, which orders the data. The member
//! that wrote it reads it in program order (K3); other workers learn of
//! orphans through their own passes or through the unpark of the hand-back
//! path, whose wake-up orders the hint before their look.

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};

use crate::lane::tag::Delivered;
use crate::loom::sync::atomic::{AtomicBool, Ordering};
use crate::loom::sync::{Arc, Mutex, MutexGuard};
use crate::sys::contain::contain;
use crate::sys::mix::mix64;

/// Partitions of a keyed group (more than members ever are, so keys
/// spread); one bit each in a `u64`.
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

/// The partitions a member holds in its current pass (K1). Empty between
/// passes.
#[derive(Debug, Default)]
pub(crate) struct Held {
    /// Bit `p` for partition `p`.
    bits: u64,
    /// The partition of each event the pass put in its `local` list, in
    /// order (in `0 .. PARTITIONS`): so that events handed back
    /// ([`Partitions::give_back`], a suffix of `local`) find their queues
    /// without running the key function again (it runs once per event).
    parts: Vec<u8>,
}

impl Held {
    /// Whether the member holds no partition.
    pub(crate) fn is_empty(&self) -> bool {
        self.bits == 0
    }

    /// Takes partition `p` (`bit` is `1 << p`) for the pass.
    fn take(&mut self, bit: u64) {
        self.bits |= bit;
    }

    /// Gives up every partition; returns the bits held.
    fn clear(&mut self) -> u64 {
        self.parts.clear();
        std::mem::take(&mut self.bits)
    }
}

/// What the routing mutex guards (module docs).
struct Routing<T> {
    /// One queue per partition: events waiting behind a holder, or orphans.
    queues: Box<[VecDeque<(T, Delivered)>]>,
    /// Bit `p`: `queues[p]` is not empty.
    queued: u64,
    /// Bit `p`: a member holds partition `p` (K1).
    held: u64,
    /// Partition to look at first for orphans (fairness between keys), in
    /// `0 .. queues.len()`.
    cursor: u32,
}

impl<T> Routing<T> {
    /// Queued partitions nobody holds.
    fn orphans(&self) -> u64 {
        self.queued & !self.held
    }
}

/// The partitions of one keyed group (module docs).
pub(crate) struct Partitions<T> {
    key: KeyFn<T>,
    /// How many partitions, in `1 ..= PARTITIONS`.
    n: u64,
    routing: Mutex<Routing<T>>,
    /// Whether some queue has no holder: a hint (module docs, Orderings).
    orphans: AtomicBool,
}

impl<T> Partitions<T> {
    /// `partitions` partitions, clamped to `1 ..= PARTITIONS`.
    pub(crate) fn new(key: KeyFn<T>, partitions: usize) -> Self {
        let n = partitions.clamp(1, PARTITIONS);
        Partitions {
            key,
            n: n as u64,
            routing: Mutex::new(Routing {
                queues: (0..n).map(|_| VecDeque::new()).collect(),
                queued: 0,
                held: 0,
                cursor: 0,
            }),
            orphans: AtomicBool::new(false),
        }
    }

    /// The partition of `value`'s key. A panicking key function (user code,
    /// run under the claim lock) is contained, counted in `stray`, and its
    /// event goes to partition 0.
    pub(crate) fn partition_of(&self, value: &T, stray: &mut u64) -> usize {
        let hash = contain(stray, || (self.key.0)(value)).unwrap_or(0);
        // The hash's top 32 bits scaled onto `0 .. n` (multiply and shift,
        // not a division): `< 2^32 * n / 2^32 = n`.
        (((hash >> 32) * self.n) >> 32) as usize
    }

    /// Starts a member's pass (the caller holds the group's claim lock):
    /// moves orphans' events into `local`, taking their partitions, until
    /// `local` holds `max` events; the returned [`Router`] routes the events
    /// the caller claims next (module docs).
    pub(crate) fn begin<'a>(
        &'a self,
        held: &'a mut Held,
        local: &'a mut Vec<(T, Delivered)>,
        max: usize,
    ) -> Router<'a, T> {
        let mut routing = self.routing.lock();
        // `parts` matches the tail of `local` (empty at a pass's start).
        held.parts.clear();
        let n = routing.queues.len() as u32;
        let mut orphans = routing.orphans().rotate_right(routing.cursor);
        while orphans != 0 && local.len() < max {
            // Bits were rotated in all 64: rotate the index back the same way.
            let p = ((orphans.trailing_zeros() + routing.cursor) % 64) as usize;
            orphans &= orphans - 1;
            let bit = 1u64 << p;
            let queue = &mut routing.queues[p];
            let take = queue.len().min(max - local.len());
            local.extend(queue.drain(..take));
            held.parts.extend(std::iter::repeat_n(p as u8, take));
            if queue.is_empty() {
                routing.queued &= !bit;
            }
            // Taken with its oldest events, so K2 holds.
            routing.held |= bit;
            held.take(bit);
        }
        routing.cursor = (routing.cursor + 1) % n;
        Router {
            parts: self,
            routing,
            held,
            local,
        }
    }

    /// Ends a member's pass: releases every partition it holds (K1); what
    /// others queued meanwhile is left as orphans (K3). Returns whether it
    /// left any: other members claim too, and the caller wakes their
    /// workers, so that they take a share instead of sleeping through it.
    pub(crate) fn release(&self, held: &mut Held) -> bool {
        if held.is_empty() {
            return false;
        }
        let mut routing = self.routing.lock();
        let bits = held.clear();
        let left = routing.queued & bits != 0;
        routing.held &= !bits;
        self.flag_orphans(&routing);
        left
    }

    /// Puts `events` (a pass's unhandled `local` events, in their order: no
    /// member on the worker can take them) back at the front of their
    /// queues, then releases the pass's partitions. They are older than
    /// what their queues hold (K2), so the order is kept. Their partitions
    /// are the ones recorded as they were taken (the tail of
    /// `Held::parts`, since `events` is a suffix of the pass's `local`), so
    /// the key function does not run again; only an event with none
    /// recorded (not taken by this pass) is hashed afresh.
    pub(crate) fn give_back(
        &self,
        held: &mut Held,
        events: impl DoubleEndedIterator<Item = (T, Delivered)>,
        stray: &mut u64,
    ) {
        let mut routing = self.routing.lock();
        for (value, d) in events.rev() {
            let p = match held.parts.pop() {
                Some(p) => usize::from(p),
                None => self.partition_of(&value, stray),
            };
            routing.queues[p].push_front((value, d));
            routing.queued |= 1 << p;
        }
        routing.held &= !held.clear();
        self.flag_orphans(&routing);
    }

    /// Whether some partition's queue waits with no holder (a hint: K3).
    pub(crate) fn has_orphans(&self) -> bool {
        self.orphans.load(Ordering::Relaxed)
    }

    /// Takes every queued event out (the group's last member left).
    pub(crate) fn drain_all(&self) -> Vec<(T, Delivered)> {
        self.drain_locked(self.routing.lock())
    }

    /// [`drain_all`](Partitions::drain_all), or `None` if the routing mutex
    /// is held now (maybe by this thread, in a key function).
    pub(crate) fn try_drain_all(&self) -> Option<Vec<(T, Delivered)>> {
        Some(self.drain_locked(self.routing.try_lock()?))
    }

    fn drain_locked(&self, mut routing: MutexGuard<'_, Routing<T>>) -> Vec<(T, Delivered)> {
        let mut all = Vec::new();
        for queue in routing.queues.iter_mut() {
            all.extend(queue.drain(..));
        }
        routing.queued = 0;
        self.flag_orphans(&routing);
        all
    }

    /// Updates the `orphans` hint, under the routing mutex.
    fn flag_orphans(&self, routing: &Routing<T>) {
        let orphans = routing.orphans() != 0;
        // Relaxed: a hint (module docs, Orderings); skip the store when it
        // would not change, to keep the line shared.
        if self.orphans.load(Ordering::Relaxed) != orphans {
            self.orphans.store(orphans, Ordering::Relaxed);
        }
    }
}

/// Routes a pass's claimed events ([`Partitions::begin`]); holds the
/// routing mutex until dropped.
pub(crate) struct Router<'a, T> {
    parts: &'a Partitions<T>,
    routing: MutexGuard<'a, Routing<T>>,
    held: &'a mut Held,
    local: &'a mut Vec<(T, Delivered)>,
}

impl<T> Router<'_, T> {
    /// Events in the pass's `local` list so far.
    pub(crate) fn local_len(&self) -> usize {
        self.local.len()
    }

    /// Routes one claimed event (module docs; K2).
    #[inline]
    pub(crate) fn route(&mut self, value: T, d: Delivered, stray: &mut u64) {
        let p = self.parts.partition_of(&value, stray);
        let bit = 1u64 << p;
        let routing = &mut *self.routing;
        if routing.queued & bit == 0 && (routing.held & !self.held.bits) & bit == 0 {
            routing.held |= bit;
            self.held.take(bit);
            self.held.parts.push(p as u8);
            self.local.push((value, d));
        } else {
            routing.queues[p].push_back((value, d));
            routing.queued |= bit;
        }
    }
}

impl<T> Drop for Router<'_, T> {
    fn drop(&mut self) {
        self.parts.flag_orphans(&self.routing);
    }
}

/// For the loom models (`loom-tests/tests/loom_keyed.rs`): partitions of
/// `u32` events keyed by their value, driven through the real
/// [`Partitions::begin`], [`Router::route`], [`Partitions::release`] and
/// [`Partitions::give_back`].
#[cfg(loom)]
pub struct ModelPartitions(Partitions<u32>);

/// One member of a [`ModelPartitions`]: what a member's drain keeps.
#[cfg(loom)]
#[derive(Default)]
pub struct ModelMember {
    held: Held,
    local: Vec<(u32, Delivered)>,
}

#[cfg(loom)]
impl std::fmt::Debug for ModelMember {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelMember")
            .field("held", &self.held)
            .finish_non_exhaustive()
    }
}

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

    /// Starts `m`'s pass with at most `max` events: takes orphans, then
    /// routes `claimed` (the caller holds its model's claim lock).
    pub fn claim(&self, m: &mut ModelMember, max: usize, claimed: impl IntoIterator<Item = u32>) {
        let mut stray = 0;
        let mut router = self.0.begin(&mut m.held, &mut m.local, max);
        for v in claimed {
            let d = Delivered {
                seq: u64::from(v),
                version: 0,
                published: 0,
                tracker: None,
                lineage: crate::event::trace::Lineage::Root,
                end_of_batch: false,
            };
            router.route(v, d, &mut stray);
        }
    }

    /// Handles `m`'s pass events in order, then releases its partitions.
    pub fn handle(&self, m: &mut ModelMember, mut handle: impl FnMut(u32)) {
        for (v, _) in m.local.drain(..) {
            handle(v);
        }
        let _ = self.0.release(&mut m.held);
    }

    /// Hands `m`'s pass events back unhandled (its worker lost its members).
    pub fn give_back(&self, m: &mut ModelMember) {
        let mut stray = 0;
        self.0.give_back(&mut m.held, m.local.drain(..), &mut stray);
    }

    /// The orphans hint ([`Partitions::has_orphans`]).
    pub fn has_orphans(&self) -> bool {
        self.0.has_orphans()
    }
}
