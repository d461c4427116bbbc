//! Lanes: one topic's events on their way to one worker, or to one consumer
//! group.
//!
//! A lane is a set of SPSC rings (`ring.rs`), one per producer slot that has
//! published to it. The producer slot creates its ring on first use and hands
//! the consumer end to the lane's `fresh` list; the lane's consumer (the
//! worker, or the group member holding the group's claim lock) adopts fresh
//! rings before draining. Rings are never removed while the topic lives, so a
//! producer slot always finds its ring again and per-producer order holds.
//!
//! # Orderings
//!
//! - `fresh` is a mutex: the consumer end is handed over under it.
//! - `has_fresh` is a hint that spares the consumer the mutex on every pass:
//!   set (`Release`) after the push under the mutex, cleared (`Relaxed` swap)
//!   before the consumer takes the mutex. A set that races with the clear at
//!   worst costs one extra lock of an empty list. For parking, the flag store
//!   precedes the producer's later ring commit and `fence::light()`, so the
//!   worker's post-`fence::heavy()` check sees it (see `worker.rs`).

use std::collections::VecDeque;

use crate::event::Event;
use crate::loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use crate::loom::sync::{Arc, Mutex};
use crate::receipt::TrackerRef;
use crate::ring::{self, Consumer, Probe, Producer};

/// What a ring slot holds: the event and, for `publish_tracked`, its share of
/// the receipt (released when this lane's copy of the event is dropped).
pub(crate) struct Envelope<T> {
    pub(crate) event: Event<T>,
    /// Held for its `Drop`, which counts this lane's copy as done.
    #[allow(dead_code)]
    pub(crate) tracker: Option<TrackerRef>,
}

pub(crate) struct Lane<T> {
    /// Index of the lane within its topic (and of its producer in a slot view).
    pub(crate) id: usize,
    capacity: usize,
    fresh: Mutex<Vec<Consumer<Envelope<T>>>>,
    has_fresh: AtomicBool,
    /// One probe per ring, for the shutdown emptiness check.
    probes: Mutex<Vec<Probe<Envelope<T>>>>,
    /// Whether anyone drains the lane: always 1 for a worker lane (its drain
    /// lives as long as the worker); the member count for a group lane.
    consumers: AtomicUsize,
    /// For group lanes: the consumer side, shared by the members.
    pub(crate) group: Option<GroupSide<T>>,
}

impl<T> Lane<T> {
    /// A lane for one worker (`is_group == false`) or one consumer group.
    pub(crate) fn new(id: usize, is_group: bool, capacity: usize) -> Self {
        Lane {
            id,
            capacity,
            fresh: Mutex::new(Vec::new()),
            has_fresh: AtomicBool::new(false),
            probes: Mutex::new(Vec::new()),
            consumers: AtomicUsize::new(usize::from(!is_group)),
            group: is_group.then(GroupSide::new),
        }
    }

    /// Creates a ring for a new producer slot, hands its consumer end to the
    /// lane, and returns the producer end. Allocates (once per slot and lane).
    pub(crate) fn new_producer(this: &Arc<Self>) -> LaneProducer<T> {
        let (producer, consumer) = ring::channel(this.capacity);
        lock(&this.probes).push(producer.probe());
        lock(&this.fresh).push(consumer);
        // Release: see module docs.
        this.has_fresh.store(true, Ordering::Release);
        LaneProducer {
            lane: this.clone(),
            ring: producer,
            backlog: VecDeque::new(),
        }
    }

    /// Whether anyone drains the lane (a group lane with no member does not).
    /// `Acquire`: pairs with the `Release` updates in `add_consumer`.
    pub(crate) fn has_consumers(&self) -> bool {
        self.consumers.load(Ordering::Acquire) > 0
    }

    /// Counts a group member in (`+1`) or out (`-1`).
    pub(crate) fn add_consumer(&self, delta: isize) {
        if delta >= 0 {
            self.consumers.fetch_add(delta as usize, Ordering::Release);
        } else {
            self.consumers
                .fetch_sub(delta.unsigned_abs(), Ordering::Release);
        }
    }

    /// Moves consumer ends created since the last call into `into`.
    pub(crate) fn adopt(&self, into: &mut Vec<Consumer<Envelope<T>>>) {
        if self.has_fresh.load(Ordering::Acquire) {
            self.has_fresh.store(false, Ordering::Relaxed);
            into.append(&mut lock(&self.fresh));
        }
    }

    /// Whether rings were created that the consumer has not adopted yet.
    pub(crate) fn has_fresh(&self) -> bool {
        self.has_fresh.load(Ordering::Acquire)
    }

    /// Whether every ring of the lane was empty when looked at (racy; exact
    /// once no producer and no consumer is active).
    pub(crate) fn is_empty(&self) -> bool {
        lock(&self.probes).iter().all(Probe::is_empty)
            && self.group.as_ref().is_none_or(|g| g.returned_is_empty())
    }
}

/// Locks a mutex, ignoring poisoning: every critical section in this crate
/// leaves the data consistent even if a panic unwinds through it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> crate::loom::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A producer slot's end of one lane.
pub(crate) struct LaneProducer<T> {
    pub(crate) lane: Arc<Lane<T>>,
    pub(crate) ring: Producer<Envelope<T>>,
    /// Worker slots only: envelopes that found the ring full (or found older
    /// envelopes waiting here), oldest first. Flushed by the worker loop.
    pub(crate) backlog: VecDeque<Envelope<T>>,
}

impl<T> LaneProducer<T> {
    /// Moves backlog envelopes into the ring while there is room; returns
    /// how many were dropped because nobody drains the lane any more, and
    /// whether the backlog is now empty.
    pub(crate) fn flush_backlog(&mut self) -> (u64, bool) {
        if self.backlog.is_empty() {
            return (0, true);
        }
        if !self.lane.has_consumers() {
            let dropped = self.backlog.len() as u64;
            self.backlog.clear();
            return (dropped, true);
        }
        let room = self.ring.free(self.backlog.len());
        let mut moved = 0;
        while moved < room {
            let Some(env) = self.backlog.pop_front() else {
                break;
            };
            if let Err(env) = self.ring.write(env) {
                self.backlog.push_front(env);
                break;
            }
            moved += 1;
        }
        if moved > 0 {
            self.ring.commit();
        }
        (0, self.backlog.is_empty())
    }
}

/// The consumer side of a group lane: members take batches under `claim`
/// and dispatch them after releasing it, so members on different workers run
/// their handlers in parallel while each event is taken exactly once.
pub(crate) struct GroupSide<T> {
    claim: Mutex<GroupClaim<T>>,
    /// Envelopes a worker took but could not deliver (its members left):
    /// handed to the next claimer before anything else.
    returned: Mutex<VecDeque<Envelope<T>>>,
    has_returned: AtomicBool,
}

struct GroupClaim<T> {
    rings: Vec<Consumer<Envelope<T>>>,
    /// Ring to start from next time, for fairness between producers.
    cursor: usize,
}

impl<T> GroupSide<T> {
    fn new() -> Self {
        GroupSide {
            claim: Mutex::new(GroupClaim {
                rings: Vec::new(),
                cursor: 0,
            }),
            returned: Mutex::new(VecDeque::new()),
            has_returned: AtomicBool::new(false),
        }
    }

    fn returned_is_empty(&self) -> bool {
        lock(&self.returned).is_empty()
    }

    /// Whether a claim could find work (racy hint for the parking check).
    pub(crate) fn maybe_ready(&self) -> bool {
        self.has_returned.load(Ordering::Acquire)
    }

    /// Takes up to `max` envelopes into `out`, calling `on_take` once before
    /// the first is taken; returns how many were taken.
    ///
    /// Blocks while another member holds the claim lock: the critical section
    /// only moves envelopes (no user code runs under it), so the wait is short,
    /// and a waiting member never spins.
    pub(crate) fn claim(
        &self,
        lane: &Lane<T>,
        max: usize,
        out: &mut Vec<Envelope<T>>,
        mut on_take: impl FnMut(),
    ) -> usize {
        let mut claim = lock(&self.claim);
        let mut taken = 0;
        let mut marked = false;
        if self.has_returned.load(Ordering::Acquire) {
            let mut returned = lock(&self.returned);
            if !returned.is_empty() {
                on_take();
                marked = true;
            }
            while taken < max {
                let Some(env) = returned.pop_front() else {
                    break;
                };
                out.push(env);
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
            if ring.ready(1) == 0 {
                continue;
            }
            if !marked {
                on_take();
                marked = true;
            }
            taken += ring.pop_into(max - taken, out);
        }
        if n > 0 {
            claim.cursor = (start + 1) % n;
        }
        taken
    }

    /// Whether any ring of the group holds events (racy hint).
    pub(crate) fn has_ready(&self, lane: &Lane<T>) -> bool {
        self.maybe_ready() || lane.has_fresh() || !lane.is_empty()
    }

    /// Gives back envelopes that no member on the calling worker can take.
    pub(crate) fn give_back(&self, envs: impl IntoIterator<Item = Envelope<T>>) {
        let mut returned = lock(&self.returned);
        returned.extend(envs);
        if !returned.is_empty() {
            // Release: pairs with the Acquire in `claim`/`maybe_ready`.
            self.has_returned.store(true, Ordering::Release);
        }
    }
}
