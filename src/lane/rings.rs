//! Lanes: one topic's events on their way to one worker, or to one consumer
//! group.
//!
//! A lane is a set of SPSC rings ([`ring`](crate::core::ring)), one per producer slot that has
//! published to it. The producer slot creates its ring on first use and hands
//! the consumer end to the lane's `fresh` list; the lane's consumer (the
//! worker, or the group member holding the group's claim lock) adopts fresh
//! rings before draining. Rings are never removed while the topic lives, so a
//! producer slot always finds its ring again and per-producer order holds.
//!
//! # Compact slots
//!
//! Cross-core bandwidth, not instructions, bounds a ring (measured: 8-byte
//! elements ≈ 300 M/s, 16 ≈ 140–280, 72 ≈ 50 on the 2-core test machine). So
//! a slot is the payload plus one 64-bit tag, and everything else is either
//! known to the consumer or rare:
//!
//! - the topic name: the consumer knows its lane; the attempt: a first
//!   delivery is attempt 1;
//! - the sequence number: one more than the previous event's in the same
//!   ring, except after a jump;
//! - the snapshot version: changes only on subscribe/unsubscribe;
//! - the publish time: in the tag (57 bits, relative to a time base).
//!
//! Rare data — a version change, a sequence jump, a new time base (after
//! 2^57 ns), a receipt share, a trace [`Lineage`](crate::event::trace::Lineage)
//! — goes into the ring's *side queue*, and the event's tag flags say which
//! items to pop. Producer and consumer apply the same items to a
//! [`Cursor`](crate::lane::tag::Cursor) they keep in step. One lineage is not
//! rare: the events a handler forwards, whose lineage is the previous traced
//! event's one sequence number on (the next event handled, forwarded to the
//! same lane). The cursor keeps the last lineage, and such an event carries
//! only the `TRACE_STEP` bit, on the publish fast path. Every slot holds
//! exactly one event, so `lane_capacity` events fit per producer.
//!
//! The tag travels in the ring slot's stamp (63 bits, [`ring`](crate::core::ring)):
//!
//! | tag bits | meaning |
//! |---|---|
//! | 0–4 | side items to pop, in this order: version, seq, time base, receipt share, lineage |
//! | 5 | lineage step: the cursor's lineage one sequence number on (after the side items) |
//! | 6–61 | publish time − time base + 1, or 0 = not stamped |
//! | 62 | the ring's: the stamp carries a receipt share ([`attach`](crate::core::attach)) |
//!
//! A tracked event without a publish time carries its receipt share in the
//! stamp itself (tag bits 8–61 then hold the share, not a time), so a
//! `publish_and_wait` touches no side-queue line; a timestamped one (or one
//! whose share does not fit a stamp) sends it as a side item.
//!
//! # Orderings
//!
//! - `fresh` is a mutex: the consumer end is handed over under it.
//! - `has_fresh` is a hint that spares the consumer the mutex on every pass:
//!   set (`Release`) after the push under the mutex, cleared (`Relaxed`)
//!   before the consumer takes the mutex. A set that races with the clear at
//!   worst costs one extra lock of an empty list. For parking, the flag store
//!   precedes the producer's later ring commit and `fence::light()`, so the
//!   worker's post-`fence::heavy()` check sees it (see [`worker`](crate::runtime::worker)).
//! - The side queue is a second SPSC ring ([`ring`](crate::core::ring)) with
//!   the same two ends, so no per-event path takes a lock. Its items are
//!   committed (`Release` stamps) before the main ring's commit of the
//!   flagged slot; the consumer's `Acquire` of that slot's stamp therefore
//!   makes the items' stamps visible, and it finds them ready. It holds
//!   `side_capacity(lane_capacity)` items (8 to 256): a producer whose side
//!   queue lacks room for an event's items treats the lane as full (the
//!   event waits, backlogs, or comes back), so at most that many events
//!   with side data are in flight per producer and lane.

use std::collections::VecDeque;

use crate::core::ring::Probe;
use crate::event::receipt::Tracker;

use crate::lane::consumer::LaneConsumer;
use crate::lane::keyed::{Held, Partitions};
use crate::lane::room::RoomSignal;
use crate::lane::tag::Delivered;
use crate::loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use crate::loom::sync::{Arc, Mutex};

pub(crate) struct Lane<T> {
    /// Index of the lane within its topic (and of its producer in a slot
    /// view); reused by a later lane once this one is retired.
    pub(crate) id: usize,
    /// Process-unique and never reused: names the lane's drains.
    pub(crate) uid: u64,
    pub(crate) capacity: usize,
    pub(crate) fresh: Mutex<Vec<LaneConsumer<T>>>,
    pub(crate) has_fresh: AtomicBool,
    /// One probe per ring, for the shutdown emptiness check.
    pub(crate) probes: Mutex<Vec<Probe<T, Tracker>>>,
    /// Whether anyone drains the lane: 1 for a worker lane until it is
    /// retired; the member count for a group lane. 0 = retired (a lane never
    /// comes back from 0: a group whose last member left gets a new lane).
    pub(crate) consumers: AtomicUsize,
    /// For group lanes: the consumer side, shared by the members.
    pub(crate) group: Option<GroupSide<T>>,
    /// Wakes async producers waiting for room ([`room`](crate::lane::room)).
    pub(crate) room: RoomSignal,
}

impl<T> Lane<T> {
    /// A lane for one worker (`is_group == false`) or one consumer group.
    pub(crate) fn new(id: usize, is_group: bool, capacity: usize) -> Self {
        Lane {
            id,
            uid: crate::loom::unique_id(),
            capacity,
            fresh: Mutex::new(Vec::new()),
            has_fresh: AtomicBool::new(false),
            probes: Mutex::new(Vec::new()),
            consumers: AtomicUsize::new(usize::from(!is_group)),
            group: is_group.then(GroupSide::new),
            room: RoomSignal::default(),
        }
    }

    /// Moves consumer ends created since the last call into `into`.
    pub(crate) fn adopt(&self, into: &mut Vec<LaneConsumer<T>>) {
        if self.has_fresh.load(Ordering::Acquire) {
            self.has_fresh.store(false, Ordering::Relaxed);
            into.append(&mut self.fresh.lock());
        }
    }

    /// Whether rings were created that the consumer has not adopted yet.
    pub(crate) fn has_fresh(&self) -> bool {
        self.has_fresh.load(Ordering::Acquire)
    }

    /// Whether anyone drains the lane (a group lane with no member does not).
    /// `Acquire`: pairs with the `Release` updates in `add_consumer`.
    pub(crate) fn has_consumers(&self) -> bool {
        self.consumers.load(Ordering::Acquire) > 0
    }

    /// Whether the lane was retired: no subscription takes its events any
    /// more, so producers discard what they still hold for it.
    pub(crate) fn is_retired(&self) -> bool {
        !self.has_consumers()
    }

    /// Retires a worker lane (its last subscription left). `Release`: pairs
    /// with the `Acquire` in `has_consumers`.
    pub(crate) fn retire(&self) {
        self.consumers.store(0, Ordering::Release);
        // Waiting producers learn that no room will come.
        self.room.notify_all();
    }

    /// Counts a group member in (`+1`) or out (`-1`).
    pub(crate) fn add_consumer(&self, delta: isize) {
        if delta >= 0 {
            self.consumers.fetch_add(delta as usize, Ordering::Release);
        } else {
            self.consumers
                .fetch_sub(delta.unsigned_abs(), Ordering::Release);
            // The lane may be retired now: waiting producers look again.
            self.room.notify_all();
        }
    }

    /// About how many events wait in the lane (racy, for metrics).
    pub(crate) fn depth(&self) -> usize {
        let rings: usize = self.probes.lock().iter().map(Probe::len).sum();
        rings + self.group.as_ref().map_or(0, |g| g.returned.lock().len())
    }

    /// Whether every ring of the lane was empty when looked at (racy; exact
    /// once no producer and no consumer is active).
    pub(crate) fn is_empty(&self) -> bool {
        self.probes.lock().iter().all(Probe::is_empty)
            && self.group.as_ref().is_none_or(|g| g.returned_is_empty())
    }
}

/// The consumer side of a group lane: members take batches under `claim`
/// and dispatch them after releasing it, so members on different workers run
/// their handlers in parallel while each event is taken exactly once.
pub(crate) struct GroupSide<T> {
    pub(crate) claim: Mutex<GroupClaim<T>>,
    /// A keyed group's partitions ([`keyed`](crate::lane::keyed)), set by
    /// its first member; `None` for a plain group.
    pub(crate) keyed: Mutex<Option<Arc<Partitions<T>>>>,
    /// Events a worker took but could not deliver (its members left): handed
    /// to the next claimer before anything else.
    pub(crate) returned: Mutex<VecDeque<(T, Delivered)>>,
    pub(crate) has_returned: AtomicBool,
}

pub(crate) struct GroupClaim<T> {
    pub(crate) rings: Vec<LaneConsumer<T>>,
    /// Ring to start from next time, for fairness between producers.
    pub(crate) cursor: usize,
}

impl<T> GroupSide<T> {
    pub(crate) fn new() -> Self {
        GroupSide {
            claim: Mutex::new(GroupClaim {
                rings: Vec::new(),
                cursor: 0,
            }),
            keyed: Mutex::new(None),
            returned: Mutex::new(VecDeque::new()),
            has_returned: AtomicBool::new(false),
        }
    }

    /// [`claim`](GroupSide::claim) for a keyed group: starts the member's
    /// pass ([`Partitions::begin`]: orphans first) and routes each claimed
    /// event while the claim lock is held, so partitions get their events
    /// in claim order. The pass's events end up in `local`, at most `max`;
    /// returns how many events were taken from the lane. Unlike a plain
    /// claim, user code runs under the lock: the key function, once per
    /// event (its panics contained: [`Partitions::partition_of`]).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn claim_keyed(
        &self,
        lane: &Lane<T>,
        max: usize,
        parts: &Partitions<T>,
        held: &mut Held,
        local: &mut Vec<(T, Delivered)>,
        stray: &mut u64,
        on_take: impl FnMut(),
    ) -> usize {
        let mut claim = self.claim.lock();
        let mut router = parts.begin(held, local, max);
        let room = max.saturating_sub(router.local_len());
        self.claim_locked(
            &mut claim,
            lane,
            room,
            |value, d| router.route(value, d, stray),
            on_take,
        )
    }

    pub(crate) fn returned_is_empty(&self) -> bool {
        self.returned.lock().is_empty()
    }

    /// Takes up to `max` events into `out`, calling `on_take` once before the
    /// first entry is taken; returns how many events were taken.
    ///
    /// Blocks while another member holds the claim lock: the critical section
    /// only moves events (no user code runs under it), so the wait is short,
    /// and a waiting member never spins.
    pub(crate) fn claim(
        &self,
        lane: &Lane<T>,
        max: usize,
        out: &mut Vec<(T, Delivered)>,
        on_take: impl FnMut(),
    ) -> usize {
        let mut claim = self.claim.lock();
        self.claim_locked(
            &mut claim,
            lane,
            max,
            |value, d| out.push((value, d)),
            on_take,
        )
    }

    /// The body of [`claim`](GroupSide::claim), under the claim lock: hands
    /// up to `max` events to `take`, in claim order.
    fn claim_locked(
        &self,
        claim: &mut GroupClaim<T>,
        lane: &Lane<T>,
        max: usize,
        mut take: impl FnMut(T, Delivered),
        mut on_take: impl FnMut(),
    ) -> usize {
        let mut marked = false;
        let mut taken = 0;
        if self.has_returned.load(Ordering::Acquire) {
            let mut returned = self.returned.lock();
            if !returned.is_empty() {
                on_take();
                marked = true;
            }
            while taken < max {
                let Some((value, d)) = returned.pop_front() else {
                    break;
                };
                take(value, d);
                taken += 1;
            }
            if returned.is_empty() {
                self.has_returned.store(false, Ordering::Relaxed);
            }
        }
        lane.adopt(&mut claim.rings);
        let n = claim.rings.len();
        let start = claim.cursor;
        for k in 0..n {
            if taken >= max {
                break;
            }
            let ring = &mut claim.rings[(start + k) % n];
            if !ring.has_next() {
                continue;
            }
            if !marked {
                on_take();
                marked = true;
            }
            taken += ring.consume(max - taken, &mut take);
        }
        if n > 0 {
            claim.cursor = (start + 1) % n;
        }
        taken
    }

    /// Takes and drops everything the group lane holds (its last member
    /// left); returns how many events. Each value is dropped on its own, so
    /// a panicking `Drop` (counted in `stray`) loses nothing else.
    pub(crate) fn sweep(&self, lane: &Lane<T>, stray: &mut u64) -> u64 {
        let mut swept = 0;
        let keyed = self.keyed.lock().clone();
        let mut taken = keyed.map(|k| k.drain_all()).unwrap_or_default();
        swept += taken.len() as u64;
        for ev in taken.drain(..) {
            crate::sys::contain::contain(stray, move || drop(ev));
        }
        loop {
            let n = self.claim(lane, 256, &mut taken, || {});
            if n == 0 {
                return swept;
            }
            swept += n as u64;
            for ev in taken.drain(..) {
                crate::sys::contain::contain(stray, move || drop(ev));
            }
        }
    }

    /// [`sweep`](GroupSide::sweep), or nothing (0) if a claim or a keyed
    /// pass holds the group's locks now — maybe this very thread: a keyed
    /// group's key function runs under them, and one that removes the
    /// group's last member gets here. Then the worker's sweep, as it drops
    /// the retired drain, takes it all.
    pub(crate) fn sweep_unless_busy(&self, lane: &Lane<T>, stray: &mut u64) -> u64 {
        let Some(mut claim) = self.claim.try_lock() else {
            return 0;
        };
        let keyed = self.keyed.lock().clone();
        let mut taken = match keyed.map(|k| k.try_drain_all()) {
            None => Vec::new(),
            Some(Some(taken)) => taken,
            Some(None) => return 0,
        };
        let mut swept = 0;
        loop {
            swept += taken.len() as u64;
            for ev in taken.drain(..) {
                crate::sys::contain::contain(stray, move || drop(ev));
            }
            let n = self.claim_locked(&mut claim, lane, 256, |v, d| taken.push((v, d)), || {});
            if n == 0 {
                return swept;
            }
        }
    }

    /// Whether any ring of the group holds events (racy hint).
    pub(crate) fn has_ready(&self, lane: &Lane<T>) -> bool {
        self.has_returned.load(Ordering::Acquire) || lane.has_fresh() || !lane.is_empty()
    }

    /// This group's partitions, if it is keyed.
    pub(crate) fn partitions(&self) -> Option<Arc<Partitions<T>>> {
        self.keyed.lock().clone()
    }

    /// Gives back events that no member on the calling worker can take.
    pub(crate) fn give_back(&self, events: impl IntoIterator<Item = (T, Delivered)>) {
        let mut returned = self.returned.lock();
        returned.extend(events);
        if !returned.is_empty() {
            // Release: pairs with the Acquire in `claim`/`has_ready`.
            self.has_returned.store(true, Ordering::Release);
        }
    }
}
