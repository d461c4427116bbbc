//! The consuming end of one ring of a lane.

use crate::core::ring::Consumer;
use crate::event::receipt::{Tracker, TrackerRef};

use crate::lane::tag::{flagged, Cursor, Delivered, SideItem};

/// The consuming end of one ring of a lane.
pub(crate) struct LaneConsumer<T> {
    /// The events; a tracked one may carry its receipt share in its stamp.
    pub(crate) ring: Consumer<T, Tracker>,
    /// The ring's side queue.
    pub(crate) side: Consumer<SideItem>,
    pub(crate) cursor: Cursor,
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
    /// for which `f` returns `false` (that event counts as taken). The
    /// `max`-th event is marked [`Delivered::end_of_batch`] (callers pass
    /// the count they saw ready).
    #[inline(always)]
    pub(crate) fn consume_while(
        &mut self,
        max: usize,
        mut f: impl FnMut(T, Delivered) -> bool,
    ) -> usize {
        let LaneConsumer { ring, side, cursor } = self;
        ring.consume_attached(max, |tag, share, value, last| {
            let (side_tracker, lineage) = flagged(tag, side, cursor);
            let tracker = share.map(TrackerRef::from_share).or(side_tracker);
            let mut d = cursor.advance(tag, tracker, lineage);
            d.end_of_batch = last;
            f(value, d)
        })
    }
}
