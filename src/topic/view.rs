//! A producer slot's view of a topic: its snapshot, its end of each lane,
//! its sequence numbers.

use super::targets::Targets;
use crate::lane::producer::LaneProducer;
use crate::lane::rings::Lane;
use crate::loom::sync::atomic::{AtomicU64, Ordering};
use crate::loom::sync::Arc;

/// Sequence numbers are handed to producer slots in blocks of this size, so
/// the shared counter is touched once per this many events.
pub(super) const SEQ_BLOCK: u64 = 1024;

/// Per-slot sequence numbers, drawn from the topic in blocks.
pub(super) struct Seq {
    pub(super) next: u64,
    pub(super) end: u64,
}

impl Seq {
    /// The next number, drawing a new block when this one is used up.
    #[inline(always)]
    pub(super) fn next(&mut self, blocks: &AtomicU64) -> u64 {
        if self.next == self.end {
            self.refill(blocks);
        }
        let s = self.next;
        self.next += 1;
        s
    }

    #[cold]
    pub(super) fn refill(&mut self, blocks: &AtomicU64) {
        // Relaxed: only uniqueness matters.
        self.next = blocks.fetch_add(SEQ_BLOCK, Ordering::Relaxed);
        self.end = self.next + SEQ_BLOCK;
    }
}

/// A producer slot's view of the topic (owned by the slot holder).
pub(crate) struct View<T> {
    /// Version of `targets`; `u64::MAX` before the first load.
    pub(super) version: u64,
    pub(super) targets: Option<Arc<Targets<T>>>,
    /// This slot's end of each lane it has pushed to, by lane id (but the
    /// one in `fast`, whose entry is `None` meanwhile).
    pub(super) producers: Vec<Option<LaneProducer<T>>>,
    pub(super) seq: Seq,
    /// Worker slots: a backlog is registered with the worker loop.
    pub(super) backlog_registered: bool,
    /// The producer of `send`'s fast path, moved out of `producers` while
    /// the fast path is on (so the fast path reaches it without an index),
    /// and back in before any other publish (`View::fast_off`).
    pub(super) fast: Option<LaneProducer<T>>,
    /// `version` while the fast path may take the next publish, `u64::MAX`
    /// (no version reaches it) otherwise; see `TopicShared::refresh_fast`.
    pub(super) fast_version: u64,
    /// The copies a fan-out makes before it pushes any (see [`fan_out`](crate::topic::publish::fan_out));
    /// kept between publishes for its allocation.
    pub(super) copies: Vec<T>,
}

impl<T> View<T> {
    /// A slot's view before its first publish.
    pub(super) fn new() -> Self {
        View {
            version: u64::MAX,
            targets: None,
            producers: Vec::new(),
            seq: Seq { next: 0, end: 0 },
            backlog_registered: false,
            fast: None,
            fast_version: u64::MAX,
            copies: Vec::new(),
        }
    }

    /// Turns the fast path off and puts its producer back in `producers`.
    #[inline(always)]
    pub(super) fn fast_off(&mut self) {
        self.fast_version = u64::MAX;
        // Checked first: `take` would copy the whole `Option` even when empty.
        if self.fast.is_some() {
            self.put_back_fast();
        }
    }

    #[inline(never)]
    pub(super) fn put_back_fast(&mut self) {
        if let Some(p) = self.fast.take() {
            let id = p.lane.id;
            // Taken from `producers[id]`, which never shrinks.
            if let Some(entry) = self.producers.get_mut(id) {
                *entry = Some(p);
            }
        }
    }
}

/// This slot's producer for `lane`, created on first use.
#[inline(always)]
pub(super) fn producer_for<'p, T>(
    producers: &'p mut Vec<Option<LaneProducer<T>>>,
    lane: &Arc<Lane<T>>,
) -> &'p mut LaneProducer<T> {
    let id = lane.id;
    // The id may have belonged to a retired lane (`revalidate` prunes those
    // first, so this is a check, not a path).
    if matches!(producers.get(id), Some(Some(p)) if Arc::ptr_eq(&p.lane, lane)) {
        match &mut producers[id] {
            Some(p) => return p,
            None => unreachable!("checked just above"),
        }
    }
    create_producer(producers, lane)
}

#[cold]
#[inline(never)]
pub(super) fn create_producer<'p, T>(
    producers: &'p mut Vec<Option<LaneProducer<T>>>,
    lane: &Arc<Lane<T>>,
) -> &'p mut LaneProducer<T> {
    let id = lane.id;
    if producers.len() <= id {
        producers.resize_with(id + 1, || None);
    }
    producers[id].insert(LaneProducer::new(lane))
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::lane::rings::Lane;

    fn empty_view() -> View<u32> {
        View::new()
    }

    #[test]
    fn a_slot_makes_one_producer_per_lane_and_keeps_it() {
        let mut view = empty_view();
        let (a, b) = (
            Arc::new(Lane::new(0, false, 4)),
            Arc::new(Lane::new(2, false, 4)),
        );
        producer_for(&mut view.producers, &a).push_plain(1).unwrap();
        producer_for(&mut view.producers, &b).push_plain(2).unwrap();
        // Indexed by lane id; the gap stays empty.
        assert_eq!(view.producers.len(), 3);
        assert!(view.producers[1].is_none());
        // The same producer again: its sequence goes on.
        assert!(producer_for(&mut view.producers, &a).continues(1, 0));
    }

    #[test]
    fn a_reused_lane_id_gets_a_new_producer() {
        let mut view = empty_view();
        let old = Arc::new(Lane::<u32>::new(0, false, 4));
        producer_for(&mut view.producers, &old)
            .push_plain(1)
            .unwrap();
        old.retire();
        // A new lane under the retired one's id.
        let new = Arc::new(Lane::new(0, false, 4));
        let p = producer_for(&mut view.producers, &new);
        assert!(Arc::ptr_eq(&p.lane, &new));
        assert!(p.continues(0, 0), "a fresh ring, not the old one's");
    }

    #[test]
    fn turning_the_fast_path_off_puts_its_producer_back() {
        let mut view = empty_view();
        let lane = Arc::new(Lane::new(1, false, 4));
        producer_for(&mut view.producers, &lane);
        view.fast = view.producers[1].take();
        view.fast_version = 5;
        view.fast_off();
        assert_eq!(view.fast_version, u64::MAX);
        assert!(view.fast.is_none());
        assert!(view.producers[1]
            .as_ref()
            .is_some_and(|p| Arc::ptr_eq(&p.lane, &lane)));
        // Off twice is harmless.
        view.fast_off();
        assert!(view.producers[1].is_some());
    }
}
