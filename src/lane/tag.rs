//! The compact slot's tag and the side queue: what producer and consumer
//! of one ring keep in step about the events that follow (see the
//! [module docs](super)).

use crate::event::receipt::TrackerRef;
use crate::event::trace::Lineage;

use crate::core::ring::Consumer;

/// Tag flags: side items to pop for this event, in this order.
pub(crate) const SIDE_VERSION: u64 = 1 << 0;
pub(crate) const SIDE_SEQ: u64 = 1 << 1;
pub(crate) const SIDE_TIME_BASE: u64 = 1 << 2;
pub(crate) const SIDE_TRACKER: u64 = 1 << 3;
pub(crate) const SIDE_TRACE: u64 = 1 << 4;
pub(crate) const SIDE_MASK: u64 = 0x1f;
/// Tag flag with no side item: the event's lineage is the previous traced
/// event's one sequence number on ([`Lineage::follows`]), which the cursor
/// keeps.
pub(crate) const TRACE_STEP: u64 = 1 << 5;
/// Every flag: an entry with none is plain.
pub(crate) const FLAG_MASK: u64 = SIDE_MASK | TRACE_STEP;
/// Publish time: tag bits 6–61 (tag bit 62 is the ring's: whether the
/// stamp carries a receipt share, [`attach`](crate::core::attach)).
pub(crate) const TIME_SHIFT: u32 = 6;
pub(crate) const TIME_LIMIT: u64 = 1 << 56;

/// Rare per-event data, carried beside the ring (module docs).
pub(crate) enum SideItem {
    Version(u64),
    Seq(u64),
    TimeBase(u64),
    Tracker(TrackerRef),
    Trace(Lineage),
}

/// Whether `published` needs a new time base before it fits the tag.
#[inline(always)]
pub(crate) fn needs_time_base(c: &Cursor, published: u64) -> bool {
    published != 0 && (published < c.time_base || published - c.time_base >= TIME_LIMIT - 1)
}

/// What both ends of a ring know about the events that follow; markers keep
/// the two copies equal.
#[derive(Default, Debug, Clone, Copy)]
pub(crate) struct Cursor {
    pub(crate) next_seq: u64,
    pub(crate) version: u64,
    pub(crate) time_base: u64,
    /// The lineage of the last event that carried one ([`TRACE_STEP`]).
    pub(crate) lineage: Lineage,
}

/// The most side items one event needs (one per `SIDE_MASK` flag).
pub(crate) const MAX_SIDE_ITEMS: usize = 5;

/// Slots of a ring's side queue for a lane of `capacity` (a power of two):
/// room for a burst of events with side data, never fewer than one event
/// needs.
pub(crate) fn side_capacity(capacity: usize) -> usize {
    capacity.clamp(8, 256)
}

impl Cursor {
    /// What the consumer learns about the event with `tag`, and the cursor
    /// moved past it.
    #[inline(always)]
    pub(crate) fn advance(
        &mut self,
        tag: u64,
        tracker: Option<TrackerRef>,
        lineage: Lineage,
    ) -> Delivered {
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
            lineage,
            end_of_batch: false,
        };
        self.next_seq = self.next_seq.wrapping_add(1);
        delivered
    }
}

/// What the flags of `tag` say beyond a plain entry: the receipt share and
/// the lineage, with the side items they announce applied to the cursor.
#[inline(always)]
pub(crate) fn flagged(
    tag: u64,
    side: &mut Consumer<SideItem>,
    cursor: &mut Cursor,
) -> (Option<TrackerRef>, Lineage) {
    if tag & FLAG_MASK == 0 {
        (None, Lineage::Root)
    } else {
        flagged_out_of_line(tag, side, cursor)
    }
}

/// [`flagged`] for a flagged entry: a lineage step (forwarded events, not
/// rare) or side items. Out of line, so that plain entries' loop stays
/// small.
#[inline(never)]
fn flagged_out_of_line(
    tag: u64,
    side: &mut Consumer<SideItem>,
    cursor: &mut Cursor,
) -> (Option<TrackerRef>, Lineage) {
    if tag & FLAG_MASK == TRACE_STEP {
        cursor.lineage = cursor.lineage.step();
        (None, cursor.lineage)
    } else {
        detach(tag, side, cursor)
    }
}

/// Pops the side items `tag` announces, applies them to the cursor, and
/// returns the receipt share and lineage.
#[cold]
pub(crate) fn detach(
    tag: u64,
    side: &mut Consumer<SideItem>,
    cursor: &mut Cursor,
) -> (Option<TrackerRef>, Lineage) {
    let mut tracker = None;
    let mut trace = Lineage::Root;
    // The items come in flag order (the producer pushes them so).
    let wanted = (tag & SIDE_MASK).count_ones() as usize;
    let got = side.consume(wanted, |_, item| match item {
        SideItem::Version(v) => cursor.version = v,
        SideItem::Seq(s) => cursor.next_seq = s,
        SideItem::TimeBase(b) => cursor.time_base = b,
        SideItem::Tracker(t) => tracker = Some(t),
        SideItem::Trace(l) => {
            cursor.lineage = l;
            trace = l;
        }
    });
    // The producer pushes one item per flag before publishing the slot
    // (and the slot's Acquire makes them visible), so none is missing.
    debug_assert_eq!(got, wanted, "side queue out of step");
    if tag & TRACE_STEP != 0 {
        cursor.lineage = cursor.lineage.step();
        trace = cursor.lineage;
    }
    (tracker, trace)
}

/// What a consumer learns about each event besides its value.
pub(crate) struct Delivered {
    pub(crate) seq: u64,
    pub(crate) version: u64,
    pub(crate) published: u64,
    /// Held for its `Drop`, which counts this lane's copy as done (receipts).
    #[allow(dead_code)]
    pub(crate) tracker: Option<TrackerRef>,
    /// The trace it joins and its parent span.
    pub(crate) lineage: Lineage,
    /// Whether it is the last event of the batch being taken.
    pub(crate) end_of_batch: bool,
}

#[cfg(all(test, not(loom)))]
mod tests {
    use crate::event::receipt;
    use crate::event::trace::{Carry, Lineage, Origin};
    use crate::lane::consumer::LaneConsumer;
    use crate::lane::producer::{LaneProducer, Outgoing};
    use crate::lane::rings::Lane;
    use crate::loom::sync::Arc;

    use super::{Delivered, FLAG_MASK, TIME_LIMIT, TIME_SHIFT};

    fn out(value: u32, seq: u64, version: u64, published: u64) -> Outgoing<u32> {
        Outgoing {
            value,
            seq,
            version,
            published,
            tracker: None,
            lineage: Lineage::Root,
        }
    }

    /// A producer and the consumer end it handed to the lane.
    fn pair(capacity: usize) -> (LaneProducer<u32>, LaneConsumer<u32>) {
        let lane = Arc::new(Lane::new(0, false, capacity));
        let producer = LaneProducer::new(&lane);
        let mut consumers = Vec::new();
        lane.adopt(&mut consumers);
        assert_eq!(consumers.len(), 1);
        (producer, consumers.pop().unwrap())
    }

    fn take(c: &mut LaneConsumer<u32>) -> Vec<(u32, Delivered)> {
        let mut got = Vec::new();
        c.consume(usize::MAX, |v, d| got.push((v, d)));
        got
    }

    #[test]
    fn plain_entries_carry_no_side_items_and_the_consumer_infers_seq_and_version() {
        let (mut p, mut c) = pair(8);
        for i in 0..3 {
            assert!(p.continues(i, 0));
            p.write(out(i as u32, i, 0, 0)).ok().unwrap();
        }
        assert!(p.side.probe().is_empty(), "plain entries queue nothing");
        let got = take(&mut c);
        let seqs: Vec<_> = got.iter().map(|(v, d)| (*v, d.seq, d.version)).collect();
        assert_eq!(seqs, [(0, 0, 0), (1, 1, 0), (2, 2, 0)]);
        assert!(got
            .iter()
            .all(|(_, d)| d.published == 0 && d.tracker.is_none()));
    }

    #[test]
    fn a_version_change_and_a_sequence_jump_travel_as_side_items() {
        let (mut p, mut c) = pair(8);
        p.write(out(1, 0, 0, 0)).ok().unwrap();
        // Version 3 and a jump to sequence 100: two side items, once.
        p.write(out(2, 100, 3, 0)).ok().unwrap();
        assert_eq!(p.side.probe().len(), 2);
        p.write(out(3, 101, 3, 0)).ok().unwrap();
        assert!(p.continues(102, 3));
        let got: Vec<_> = take(&mut c)
            .into_iter()
            .map(|(v, d)| (v, d.seq, d.version))
            .collect();
        assert_eq!(got, [(1, 0, 0), (2, 100, 3), (3, 101, 3)]);
        assert!(p.side.probe().is_empty(), "the consumer popped them all");
    }

    #[test]
    fn publish_times_round_trip_through_the_tag_and_a_new_time_base() {
        let (mut p, mut c) = pair(8);
        let t0 = 1_000_000;
        p.write(out(1, 0, 0, t0)).ok().unwrap();
        p.write(out(2, 1, 0, t0 + 5)).ok().unwrap();
        // Beyond what the tag's 57 bits hold from the base: a new base.
        let far = t0 + TIME_LIMIT + 7;
        p.write(out(3, 2, 0, far)).ok().unwrap();
        let got: Vec<_> = take(&mut c).into_iter().map(|(_, d)| d.published).collect();
        assert_eq!(got, [t0, t0 + 5, far]);
        // The time sits above the side-item flags.
        assert_eq!(FLAG_MASK >> TIME_SHIFT, 0);
    }

    #[test]
    fn receipt_shares_and_trace_contexts_come_out_with_their_event() {
        let (mut p, mut c) = pair(8);
        let receipt = receipt::tracked(7, false, 1);
        let trace = Lineage::Explicit(Carry {
            trace: [1, 2],
            parent_span: 3,
        });
        p.write(Outgoing {
            tracker: Some(receipt.share()),
            lineage: trace,
            ..out(9, 0, 0, 0)
        })
        .ok()
        .unwrap();
        p.write(out(10, 1, 0, 0)).ok().unwrap();
        assert!(!receipt.is_complete());
        let mut got = take(&mut c);
        assert_eq!(got[0].1.lineage, trace);
        assert!(got[0].1.tracker.is_some());
        assert_eq!(got[1].1.lineage, Lineage::Root);
        assert!(got[1].1.tracker.is_none());
        got.clear(); // drops the share: this lane's copy is done
        assert!(receipt.is_complete());
    }

    #[test]
    fn a_receipt_share_rides_in_the_stamp_unless_the_event_has_a_publish_time() {
        let (mut p, mut c) = pair(8);
        let receipt = receipt::tracked(7, false, 3);
        for (i, published) in [(0u32, 0u64), (1, 1_000), (2, 0)] {
            p.write(Outgoing {
                tracker: Some(receipt.share()),
                ..out(i, u64::from(i), 0, published)
            })
            .ok()
            .unwrap();
        }
        // Only the timestamped event's share goes on the side (its time
        // fits the tag from the initial base).
        assert_eq!(p.side.probe().len(), 1);
        let got = take(&mut c);
        assert!(got.iter().all(|(_, d)| d.tracker.is_some()));
        let times: Vec<_> = got.iter().map(|(v, d)| (*v, d.seq, d.published)).collect();
        assert_eq!(times, [(0, 0, 0), (1, 1, 1_000), (2, 2, 0)]);
        assert!(!receipt.is_complete(), "the shares are still held");
        drop(got);
        assert!(receipt.is_complete());
    }

    #[test]
    fn forwarded_lineages_step_in_the_tag_and_others_travel_as_side_items() {
        let (mut p, mut c) = pair(16);
        let at = |salt, seq| Origin { salt, seq };
        let chain = |seq| Lineage::Derived {
            parent: at(0xb, seq),
            root: at(0xa, seq + 100),
        };
        let explicit = Lineage::Explicit(Carry {
            trace: [4, 5],
            parent_span: 6,
        });
        let sent = [
            chain(1),
            chain(2),
            chain(3),
            Lineage::Root,
            chain(4),
            chain(9),
            explicit,
            chain(10),
            chain(11),
        ];
        for (i, l) in sent.iter().enumerate() {
            let ev = Outgoing {
                lineage: *l,
                ..out(i as u32, i as u64, 0, 0)
            };
            if i == 2 {
                // The fast path's step: the same entry as `write` makes.
                assert!(p.continues(2, 0));
                p.push_step(ev.value, ev.lineage).ok().unwrap();
            } else {
                p.write(ev).ok().unwrap();
            }
        }
        // Side items: chain(1) (nothing to step from), chain(9) (a jump),
        // explicit, chain(10) (after an explicit one). The rest step.
        assert_eq!(p.side.probe().len(), 4);
        let got: Vec<_> = take(&mut c).into_iter().map(|(_, d)| d.lineage).collect();
        assert_eq!(got, sent);
        // A step the cursor cannot take is refused, not mis-encoded.
        assert!(p.push_step(99, chain(20)).is_err());
    }
}
