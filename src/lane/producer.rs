//! A producer slot's end of one lane.

use std::collections::VecDeque;

use crate::core::ring::{self, Producer};
use crate::event::receipt::{Tracker, TrackerRef};
use crate::event::trace::Lineage;
use crate::lane::consumer::LaneConsumer;
use crate::lane::rings::Lane;
use crate::lane::tag::{
    needs_time_base, side_capacity, Cursor, SideItem, MAX_SIDE_ITEMS, SIDE_MASK, SIDE_SEQ,
    SIDE_TIME_BASE, SIDE_TRACE, SIDE_TRACKER, SIDE_VERSION, TIME_SHIFT, TRACE_STEP,
};
use crate::loom::sync::atomic::Ordering;
use crate::loom::sync::Arc;

/// An event on its way into a lane, with what its entry and markers encode.
pub(crate) struct Outgoing<T> {
    pub(crate) value: T,
    pub(crate) seq: u64,
    pub(crate) version: u64,
    /// Nanoseconds since the event epoch, or 0 = not stamped.
    pub(crate) published: u64,
    pub(crate) tracker: Option<TrackerRef>,
    /// The trace it joins ([`Lineage::Root`]: none, it starts its own).
    pub(crate) lineage: Lineage,
}

/// A producer slot's end of one lane.
pub(crate) struct LaneProducer<T> {
    pub(crate) lane: Arc<Lane<T>>,
    /// The events; a tracked one carries its receipt share in its stamp
    /// when the share fits and the event has no publish time.
    pub(crate) ring: Producer<T, Tracker>,
    /// The ring's side queue (rare per-event data, [`lane`](crate::lane)).
    pub(crate) side: Producer<SideItem>,
    pub(crate) cursor: Cursor,
    /// Worker slots only: events that found the ring full (or found older
    /// events waiting here), oldest first. Flushed by the worker loop.
    pub(crate) backlog: VecDeque<Outgoing<T>>,
}

impl<T> LaneProducer<T> {
    /// Whether an event can be written now (refreshing the view of free room
    /// if needed), with no backlog ahead of it.
    #[inline(always)]
    pub(crate) fn has_room(&mut self) -> bool {
        self.backlog.is_empty()
            && self.ring.free(1) >= 1
            && self.side.free(MAX_SIDE_ITEMS) >= MAX_SIDE_ITEMS
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

    /// [`push_plain`](LaneProducer::push_plain) for an event whose lineage
    /// steps from the previous traced event's (the events a handler
    /// forwards): one tag bit says so, no side item. Hands the value back
    /// when the ring is full or the lineage does not step.
    #[inline(always)]
    pub(crate) fn push_step(&mut self, value: T, lineage: Lineage) -> Result<(), T> {
        if !lineage.follows(&self.cursor.lineage) {
            return Err(value);
        }
        self.ring.push_tagged(TRACE_STEP, value)?;
        self.cursor.next_seq = self.cursor.next_seq.wrapping_add(1);
        self.cursor.lineage = lineage;
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

    /// Writes and publishes `ev`, or hands it back if the ring is full (or,
    /// for an event with side data, its side queue).
    #[inline(always)]
    pub(crate) fn write(&mut self, ev: Outgoing<T>) -> Result<(), Outgoing<T>> {
        if self.ring.free(1) == 0 {
            return Err(ev);
        }
        let c = &self.cursor;
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
        // The receipt share rides in the stamp when the tag's time bits are
        // free and it fits; otherwise in the side queue.
        let in_stamp =
            ev.published == 0 && ev.tracker.as_ref().is_some_and(TrackerRef::fits_in_stamp);
        if ev.tracker.is_some() && !in_stamp {
            flags |= SIDE_TRACKER;
        }
        if ev.lineage != Lineage::Root {
            flags |= if ev.lineage.follows(&c.lineage) {
                TRACE_STEP
            } else {
                SIDE_TRACE
            };
        }
        if flags & SIDE_MASK != 0 {
            let items = (flags & SIDE_MASK).count_ones() as usize;
            if self.side.free(items) < items {
                return Err(ev);
            }
        }
        let Outgoing {
            value,
            seq,
            version,
            published,
            tracker,
            lineage,
        } = ev;
        if lineage != Lineage::Root {
            self.cursor.lineage = lineage;
        }
        let (side_tracker, stamp_tracker) = if in_stamp {
            (None, tracker)
        } else {
            (tracker, None)
        };
        if flags & SIDE_MASK != 0 {
            self.attach(flags, seq, version, published, side_tracker, lineage);
        }
        let c = &mut self.cursor;
        c.next_seq = seq.wrapping_add(1);
        let mut tag = flags;
        if published != 0 {
            tag |= (published - c.time_base + 1) << TIME_SHIFT;
        }
        let written = match stamp_tracker {
            // `flags` fits the attached tag's bits (FLAG_MASK < 2^8), and
            // the share fits (checked above).
            Some(t) => self
                .ring
                .write_attached(tag, t.into_share(), value)
                .map_err(|(value, share)| {
                    drop(share);
                    value
                }),
            None => self.ring.write(tag, value),
        };
        // Room was checked above, and only this producer fills the ring.
        debug_assert!(written.is_ok(), "ring room changed under its only producer");
        drop(written);
        Ok(())
    }

    /// Queues the side items `flags` announce and updates the cursor.
    #[cold]
    pub(crate) fn attach(
        &mut self,
        flags: u64,
        seq: u64,
        version: u64,
        published: u64,
        tracker: Option<TrackerRef>,
        lineage: Lineage,
    ) {
        let c = &mut self.cursor;
        let side = &mut self.side;
        // The caller checked room for every item.
        let mut push = |item| {
            let pushed = side.write(0, item);
            debug_assert!(pushed.is_ok(), "side queue room changed under its producer");
            drop(pushed);
        };
        if flags & SIDE_VERSION != 0 {
            push(SideItem::Version(version));
            c.version = version;
        }
        if flags & SIDE_SEQ != 0 {
            push(SideItem::Seq(seq));
        }
        if flags & SIDE_TIME_BASE != 0 {
            c.time_base = published - 1;
            push(SideItem::TimeBase(c.time_base));
        }
        if let Some(t) = tracker {
            push(SideItem::Tracker(t));
        }
        if flags & SIDE_TRACE != 0 {
            push(SideItem::Trace(lineage));
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

impl<T> LaneProducer<T> {
    /// Creates a ring for a new producer slot, hands its consumer end to the
    /// lane, and returns the producer end. Allocates (once per slot and lane).
    pub(crate) fn new(this: &Arc<Lane<T>>) -> LaneProducer<T> {
        let (producer, consumer) = ring::channel_carrying(this.capacity);
        let (side, side_consumer) = ring::channel(side_capacity(this.capacity));
        this.probes.lock().push(producer.probe());
        this.fresh.lock().push(LaneConsumer {
            ring: consumer,
            side: side_consumer,
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
}
