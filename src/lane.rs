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
//! - the publish time: in the tag (58 bits, relative to a time base).
//!
//! Rare data — a version change, a sequence jump, a new time base (after
//! 2^58 ns), a receipt share, a trace context (`trace.rs`) — goes into the ring's *side queue*, and the
//! event's tag flags say which items to pop. Producer and consumer apply the
//! same items to a [`Cursor`] they keep in step. Every slot holds exactly one
//! event, so `lane_capacity` events fit per producer.
//!
//! The tag travels in the ring slot's stamp (63 bits, `ring.rs`):
//!
//! | tag bits | meaning |
//! |---|---|
//! | 0–4 | side items to pop, in this order: version, seq, time base, receipt share, trace |
//! | 5–62 | publish time − time base + 1, or 0 = not stamped |
//!
//! # Orderings
//!
//! - `fresh` is a mutex: the consumer end is handed over under it.
//! - `has_fresh` is a hint that spares the consumer the mutex on every pass:
//!   set (`Release`) after the push under the mutex, cleared (`Relaxed`)
//!   before the consumer takes the mutex. A set that races with the clear at
//!   worst costs one extra lock of an empty list. For parking, the flag store
//!   precedes the producer's later ring commit and `fence::light()`, so the
//!   worker's post-`fence::heavy()` check sees it (see `worker.rs`).
//! - The side queue is a mutex; its pushes happen before the ring commit that
//!   publishes the flagged slot, so the consumer finds the items there.

use std::collections::VecDeque;

use crate::loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use crate::loom::sync::{Arc, Mutex};
use crate::receipt::TrackerRef;
use crate::ring::{self, Consumer, Probe, Producer};
use crate::trace::Carry;

/// Tag flags: side items to pop for this event, in this order.
const SIDE_VERSION: u64 = 1 << 0;
const SIDE_SEQ: u64 = 1 << 1;
const SIDE_TIME_BASE: u64 = 1 << 2;
const SIDE_TRACKER: u64 = 1 << 3;
const SIDE_TRACE: u64 = 1 << 4;
const SIDE_MASK: u64 = 0x1f;
/// Publish time: tag bits 5–62.
const TIME_SHIFT: u32 = 5;
const TIME_LIMIT: u64 = 1 << 58;

/// Rare per-event data, carried beside the ring (module docs).
enum SideItem {
    Version(u64),
    Seq(u64),
    TimeBase(u64),
    Tracker(TrackerRef),
    Trace(Carry),
}

/// Whether `published` needs a new time base before it fits the tag.
#[inline(always)]
fn needs_time_base(c: &Cursor, published: u64) -> bool {
    published != 0 && (published < c.time_base || published - c.time_base >= TIME_LIMIT - 1)
}


/// What both ends of a ring know about the events that follow; markers keep
/// the two copies equal.
#[derive(Default, Debug, Clone, Copy)]
struct Cursor {
    next_seq: u64,
    version: u64,
    time_base: u64,
}

/// A ring's side queue (module docs).
#[derive(Default)]
struct Side {
    items: Mutex<VecDeque<SideItem>>,
}

/// An event on its way into a lane, with what its entry and markers encode.
pub(crate) struct Outgoing<T> {
    pub(crate) value: T,
    pub(crate) seq: u64,
    pub(crate) version: u64,
    /// Nanoseconds since the event epoch, or 0 = not stamped.
    pub(crate) published: u64,
    pub(crate) tracker: Option<TrackerRef>,
    /// The trace context it was published under, if any.
    pub(crate) trace: Option<Carry>,
}

/// What a consumer learns about each event besides its value.
pub(crate) struct Delivered {
    pub(crate) seq: u64,
    pub(crate) version: u64,
    pub(crate) published: u64,
    /// Held for its `Drop`, which counts this lane's copy as done (receipts).
    #[allow(dead_code)]
    pub(crate) tracker: Option<TrackerRef>,
    /// The trace context it was published under; all zeros if none.
    pub(crate) trace: Carry,
}

pub(crate) struct Lane<T> {
    /// Index of the lane within its topic (and of its producer in a slot
    /// view); reused by a later lane once this one is retired.
    pub(crate) id: usize,
    /// Process-unique and never reused: names the lane's drains.
    pub(crate) uid: u64,
    capacity: usize,
    fresh: Mutex<Vec<LaneConsumer<T>>>,
    has_fresh: AtomicBool,
    /// One probe per ring, for the shutdown emptiness check.
    probes: Mutex<Vec<Probe<T>>>,
    /// Whether anyone drains the lane: 1 for a worker lane until it is
    /// retired; the member count for a group lane. 0 = retired (a lane never
    /// comes back from 0: a group whose last member left gets a new lane).
    consumers: AtomicUsize,
    /// For group lanes: the consumer side, shared by the members.
    pub(crate) group: Option<GroupSide<T>>,
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
        }
    }

    /// Creates a ring for a new producer slot, hands its consumer end to the
    /// lane, and returns the producer end. Allocates (once per slot and lane).
    pub(crate) fn new_producer(this: &Arc<Self>) -> LaneProducer<T> {
        let (producer, consumer) = ring::channel(this.capacity);
        let side = Arc::new(Side::default());
        this.probes.lock().push(producer.probe());
        this.fresh.lock().push(LaneConsumer {
            ring: consumer,
            side: side.clone(),
            cursor: Cursor::default(),
        });
        // Release: see module docs.
        this.has_fresh.store(true, Ordering::Release);
        LaneProducer {
            lane: this.clone(),
            ring: producer,
            side,
            cursor: Cursor::default(),
            backlog: VecDeque::new(),
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

/// A producer slot's end of one lane.
pub(crate) struct LaneProducer<T> {
    pub(crate) lane: Arc<Lane<T>>,
    ring: Producer<T>,
    side: Arc<Side>,
    cursor: Cursor,
    /// Worker slots only: events that found the ring full (or found older
    /// events waiting here), oldest first. Flushed by the worker loop.
    pub(crate) backlog: VecDeque<Outgoing<T>>,
}

impl<T> LaneProducer<T> {
    /// Whether an event can be written now (refreshing the view of free room
    /// if needed), with no backlog ahead of it.
    #[inline(always)]
    pub(crate) fn has_room(&mut self) -> bool {
        self.backlog.is_empty() && self.ring.free(1) >= 1
    }

    /// Events that can be written now without waiting.
    #[inline(always)]
    pub(crate) fn room(&mut self) -> usize {
        if self.backlog.is_empty() {
            self.ring.free(usize::MAX)
        } else {
            0
        }
    }

    /// Whether an event with sequence number `seq` under topic version
    /// `version` would go in as a plain entry: nothing waits in the backlog
    /// and the event continues this ring's sequence under the same version,
    /// so the consumer infers both.
    #[inline(always)]
    pub(crate) fn continues(&self, seq: u64, version: u64) -> bool {
        self.backlog.is_empty() && seq == self.cursor.next_seq && version == self.cursor.version
    }

    /// The common case in one step: writes and publishes `value` as the
    /// ring's next plain entry (no side items), or hands it back when the
    /// ring is full. The caller has checked [`continues`] for the event's
    /// sequence number and version.
    ///
    /// [`continues`]: LaneProducer::continues
    #[inline(always)]
    pub(crate) fn push_plain(&mut self, value: T) -> Result<(), T> {
        self.ring.push(value)?;
        self.cursor.next_seq = self.cursor.next_seq.wrapping_add(1);
        Ok(())
    }

    /// [`push_plain`](LaneProducer::push_plain) for a run: writes values from
    /// `values` as plain entries, at most `max` and as many as fit; returns
    /// how many. The caller has checked [`continues`] for the first one's
    /// sequence number and version, and numbers them consecutively.
    ///
    /// [`continues`]: LaneProducer::continues
    #[inline]
    pub(crate) fn push_plain_from(
        &mut self,
        values: &mut impl Iterator<Item = T>,
        max: usize,
    ) -> usize {
        let n = self.ring.write_from(values, max);
        self.cursor.next_seq = self.cursor.next_seq.wrapping_add(n as u64);
        n
    }

    /// Writes and publishes `ev`, or hands it back if the ring is full.
    #[inline(always)]
    pub(crate) fn write(&mut self, ev: Outgoing<T>) -> Result<(), Outgoing<T>> {
        if self.ring.free(1) == 0 {
            return Err(ev);
        }
        let c = &mut self.cursor;
        let mut flags = 0;
        if ev.version != c.version {
            flags |= SIDE_VERSION;
        }
        if ev.seq != c.next_seq {
            flags |= SIDE_SEQ;
        }
        if needs_time_base(c, ev.published) {
            flags |= SIDE_TIME_BASE;
        }
        if ev.tracker.is_some() {
            flags |= SIDE_TRACKER;
        }
        if ev.trace.is_some() {
            flags |= SIDE_TRACE;
        }
        let Outgoing {
            value,
            seq,
            version,
            published,
            tracker,
            trace,
        } = ev;
        if flags != 0 {
            self.attach(flags, seq, version, published, tracker, trace);
        }
        let c = &mut self.cursor;
        c.next_seq = seq.wrapping_add(1);
        let mut tag = flags;
        if published != 0 {
            tag |= (published - c.time_base + 1) << TIME_SHIFT;
        }
        let written = self.ring.write(tag, value);
        // Room was checked above, and only this producer fills the ring.
        debug_assert!(written.is_ok(), "ring room changed under its only producer");
        drop(written);
        Ok(())
    }

    /// Queues the side items `flags` announce and updates the cursor.
    #[cold]
    fn attach(
        &mut self,
        flags: u64,
        seq: u64,
        version: u64,
        published: u64,
        tracker: Option<TrackerRef>,
        trace: Option<Carry>,
    ) {
        let c = &mut self.cursor;
        let mut items = self.side.items.lock();
        if flags & SIDE_VERSION != 0 {
            items.push_back(SideItem::Version(version));
            c.version = version;
        }
        if flags & SIDE_SEQ != 0 {
            items.push_back(SideItem::Seq(seq));
        }
        if flags & SIDE_TIME_BASE != 0 {
            c.time_base = published - 1;
            items.push_back(SideItem::TimeBase(c.time_base));
        }
        if let Some(t) = tracker {
            items.push_back(SideItem::Tracker(t));
        }
        if let Some(t) = trace {
            items.push_back(SideItem::Trace(t));
        }
    }

    /// Moves backlog events into the ring while there is room; returns how
    /// many were dropped because nobody drains the lane any more, and whether
    /// the backlog is now empty.
    pub(crate) fn flush_backlog(&mut self) -> (u64, bool) {
        if self.backlog.is_empty() {
            return (0, true);
        }
        if !self.lane.has_consumers() {
            let dropped = self.backlog.len() as u64;
            self.backlog.clear();
            return (dropped, true);
        }
        while let Some(ev) = self.backlog.pop_front() {
            if let Err(ev) = self.write(ev) {
                self.backlog.push_front(ev);
                break;
            }
        }
        (0, self.backlog.is_empty())
    }
}

/// The consuming end of one ring of a lane.
pub(crate) struct LaneConsumer<T> {
    ring: Consumer<T>,
    side: Arc<Side>,
    cursor: Cursor,
}

impl<T> LaneConsumer<T> {
    /// Whether an event is ready.
    #[inline(always)]
    pub(crate) fn has_next(&self) -> bool {
        self.ring.has_next()
    }

    /// How many events are ready, counting up to `max`.
    #[inline(always)]
    pub(crate) fn ready(&mut self, max: usize) -> usize {
        self.ring.ready(max)
    }

    /// Takes up to `max` events, handing each to `f` with what its tag and
    /// side items say about it. Returns how many were taken. If `f` panics,
    /// the events up to and including the current one are consumed.
    #[inline]
    pub(crate) fn consume(&mut self, max: usize, mut f: impl FnMut(T, Delivered)) -> usize {
        self.consume_while(max, |value, d| {
            f(value, d);
            true
        })
    }

    /// [`consume`](LaneConsumer::consume), stopping early after the event
    /// for which `f` returns `false` (that event counts as taken).
    #[inline(always)]
    pub(crate) fn consume_while(
        &mut self,
        max: usize,
        mut f: impl FnMut(T, Delivered) -> bool,
    ) -> usize {
        let LaneConsumer { ring, side, cursor } = self;
        ring.consume_while(max, |tag, value| {
            let (tracker, trace) = if tag & SIDE_MASK != 0 {
                detach(tag, side, cursor)
            } else {
                (None, Carry::default())
            };
            f(value, cursor.advance(tag, tracker, trace))
        })
    }
}

impl Cursor {
    /// What the consumer learns about the event with `tag`, and the cursor
    /// moved past it.
    #[inline(always)]
    fn advance(&mut self, tag: u64, tracker: Option<TrackerRef>, trace: Carry) -> Delivered {
        let time = tag >> TIME_SHIFT;
        let delivered = Delivered {
            seq: self.next_seq,
            version: self.version,
            published: if time == 0 {
                0
            } else {
                self.time_base + time - 1
            },
            tracker,
            trace,
        };
        self.next_seq = self.next_seq.wrapping_add(1);
        delivered
    }
}

/// Pops the side items `tag` announces, applies them to the cursor, and
/// returns the receipt share and trace context, if any.
#[cold]
fn detach(tag: u64, side: &Side, cursor: &mut Cursor) -> (Option<TrackerRef>, Carry) {
    let mut items = side.items.lock();
    let mut tracker = None;
    let mut trace = Carry::default();
    for flag in [
        SIDE_VERSION,
        SIDE_SEQ,
        SIDE_TIME_BASE,
        SIDE_TRACKER,
        SIDE_TRACE,
    ] {
        if tag & flag == 0 {
            continue;
        }
        match items.pop_front() {
            Some(SideItem::Version(v)) => cursor.version = v,
            Some(SideItem::Seq(s)) => cursor.next_seq = s,
            Some(SideItem::TimeBase(b)) => cursor.time_base = b,
            Some(SideItem::Tracker(t)) => tracker = Some(t),
            Some(SideItem::Trace(t)) => trace = t,
            // The producer pushes one item per flag before publishing the
            // slot, so the queue cannot run short.
            None => debug_assert!(false, "side queue out of step"),
        }
    }
    (tracker, trace)
}

/// The consumer side of a group lane: members take batches under `claim`
/// and dispatch them after releasing it, so members on different workers run
/// their handlers in parallel while each event is taken exactly once.
pub(crate) struct GroupSide<T> {
    claim: Mutex<GroupClaim<T>>,
    /// Events a worker took but could not deliver (its members left): handed
    /// to the next claimer before anything else.
    returned: Mutex<VecDeque<(T, Delivered)>>,
    has_returned: AtomicBool,
}

struct GroupClaim<T> {
    rings: Vec<LaneConsumer<T>>,
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
        mut on_take: impl FnMut(),
    ) -> usize {
        let mut claim = self.claim.lock();
        let mut marked = false;
        let start_len = out.len();
        if self.has_returned.load(Ordering::Acquire) {
            let mut returned = self.returned.lock();
            if !returned.is_empty() {
                on_take();
                marked = true;
            }
            while out.len() - start_len < max {
                let Some(ev) = returned.pop_front() else {
                    break;
                };
                out.push(ev);
            }
            if returned.is_empty() {
                self.has_returned.store(false, Ordering::Relaxed);
            }
        }
        lane.adopt(&mut claim.rings);
        let n = claim.rings.len();
        let start = claim.cursor;
        for k in 0..n {
            let taken = out.len() - start_len;
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
            ring.consume(max - taken, |value, d| out.push((value, d)));
        }
        if n > 0 {
            claim.cursor = (start + 1) % n;
        }
        out.len() - start_len
    }

    /// Takes and drops everything the group lane holds (its last member
    /// left); returns how many events. Each value is dropped on its own, so
    /// a panicking `Drop` (counted in `stray`) loses nothing else.
    pub(crate) fn sweep(&self, lane: &Lane<T>, stray: &mut u64) -> u64 {
        let mut swept = 0;
        let mut taken = Vec::new();
        loop {
            let n = self.claim(lane, 256, &mut taken, || {});
            if n == 0 {
                return swept;
            }
            swept += n as u64;
            for ev in taken.drain(..) {
                crate::contain::contain(stray, move || drop(ev));
            }
        }
    }

    /// Whether any ring of the group holds events (racy hint).
    pub(crate) fn has_ready(&self, lane: &Lane<T>) -> bool {
        self.has_returned.load(Ordering::Acquire) || lane.has_fresh() || !lane.is_empty()
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
