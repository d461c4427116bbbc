//! What consumers record: a [`Tally`] per subscriber (count, checksum, and
//! the time it reached each mark) shared with the harness through a
//! [`Probe`], and a [`LatencyTally`] that fills an HDR histogram.
//!
//! A tally publishes only at its marks (end of warm-up, end of the measured
//! phase), so the hot path is a checksum add, a counter increment and one
//! compare: no shared cache line is written per event.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use crossbeam_utils::CachePadded;
use hdrhistogram::Histogram;

/// The run's time base: every timestamp is nanoseconds since it.
static BASE: OnceLock<Instant> = OnceLock::new();

/// Nanoseconds since the process's time base (never 0 after the first call).
#[inline(always)]
pub fn now_ns() -> u64 {
    let base = BASE.get_or_init(Instant::now);
    base.elapsed().as_nanos() as u64 + 1
}

/// The consumer side of one subscriber as the harness sees it.
#[derive(Debug, Default)]
pub struct Probe {
    /// Events accounted for (handled plus lost to lag); written at marks.
    pos: CachePadded<AtomicU64>,
    /// `now_ns()` when the last mark was reached.
    done_ns: AtomicU64,
    /// Checksum of the handled events at the last mark.
    sum: AtomicU64,
    /// Events lost to lag (tokio broadcast) at the last mark.
    lagged: AtomicU64,
    /// Events lost to lag by the first (warm-up) mark.
    lagged_warm: AtomicU64,
}

impl Probe {
    /// A fresh probe.
    pub fn new() -> Arc<Probe> {
        Arc::new(Probe::default())
    }

    /// Events accounted for at the last mark (Acquire: pairs with the
    /// Release in [`Tally::mark`], so the other fields are those of the mark).
    pub fn pos(&self) -> u64 {
        self.pos.load(Ordering::Acquire)
    }

    /// When the last mark was reached.
    pub fn done_ns(&self) -> u64 {
        self.done_ns.load(Ordering::Relaxed)
    }

    /// Checksum at the last mark.
    pub fn sum(&self) -> u64 {
        self.sum.load(Ordering::Relaxed)
    }

    /// Events lost to lag at the last mark.
    pub fn lagged(&self) -> u64 {
        self.lagged.load(Ordering::Relaxed)
    }

    /// Events lost to lag after the warm-up mark (all of them when the
    /// tally had no warm-up).
    pub fn lagged_measured(&self) -> u64 {
        self.lagged()
            .saturating_sub(self.lagged_warm.load(Ordering::Relaxed))
    }
}

/// A consumer's local count, owned by its handler.
#[derive(Debug)]
pub struct Tally {
    probe: Arc<Probe>,
    pos: u64,
    sum: u64,
    lagged: u64,
    /// The next mark, `u64::MAX` after the last.
    mark: u64,
    /// The final mark.
    last: u64,
}

impl Tally {
    /// A tally publishing to `probe` at `warm` and at `total` events.
    pub fn new(probe: Arc<Probe>, warm: u64, total: u64) -> Tally {
        Tally {
            probe,
            pos: 0,
            sum: 0,
            lagged: 0,
            mark: if warm > 0 { warm } else { total },
            last: total,
        }
    }

    /// Counts one handled event with checksum `v`.
    #[inline(always)]
    pub fn add(&mut self, v: u64) {
        self.sum = self.sum.wrapping_add(v);
        self.pos += 1;
        if self.pos >= self.mark {
            self.mark();
        }
    }

    /// Counts `n` events lost to lag.
    pub fn lag(&mut self, n: u64) {
        if self.mark < self.last && self.pos + n > self.mark {
            // The loss straddles the warm-up mark: charge the warm-up its
            // part first, so the measured phase is charged only its own.
            let head = self.mark - self.pos;
            self.lagged += head;
            self.pos += head;
            self.mark();
            self.lagged += n - head;
            self.pos += n - head;
        } else {
            self.lagged += n;
            self.pos += n;
        }
        if self.pos >= self.mark {
            self.mark();
        }
    }

    /// Whether the final mark was reached.
    pub fn finished(&self) -> bool {
        self.pos >= self.last
    }

    #[cold]
    fn mark(&mut self) {
        if self.mark < self.last {
            // The warm-up mark: losses so far are not the measured phase's.
            self.probe.lagged_warm.store(self.lagged, Ordering::Relaxed);
        }
        self.probe.publish(self.pos, self.sum, self.lagged);
        self.mark = next_mark(self.pos, self.last);
    }
}

impl Probe {
    /// Publishes a mark: `pos` events accounted for, checksum `sum`,
    /// `lagged` lost, reached now.
    fn publish(&self, pos: u64, sum: u64, lagged: u64) {
        self.done_ns.store(now_ns(), Ordering::Relaxed);
        self.sum.store(sum, Ordering::Relaxed);
        self.lagged.store(lagged, Ordering::Relaxed);
        // Release: pairs with the Acquire in `Probe::pos`.
        self.pos.store(pos, Ordering::Release);
    }
}

/// The mark after one reached at `pos`: `last`, or `u64::MAX` after it.
fn next_mark(pos: u64, last: u64) -> u64 {
    if pos >= last {
        u64::MAX
    } else {
        last
    }
}

/// A [`Tally`] shared by the members of a consumer group that are all
/// called on one thread (S10: a pinbus group on one worker), whose split of
/// the events between them is the engine's business. Relaxed loads and
/// stores, no read-modify-write, so an event costs what it costs a
/// [`Tally`] (the counters sit on their own cache line, apart from the
/// probe the harness polls); a second writing thread would lose counts,
/// which the harness's checksum reports. Lossless peers only.
#[derive(Debug)]
pub struct GroupTally {
    probe: Arc<Probe>,
    counts: CachePadded<[AtomicU64; 3]>,
    last: u64,
}

impl GroupTally {
    /// A tally publishing to `probe` at `warm` and at `total` events.
    pub fn new(probe: Arc<Probe>, warm: u64, total: u64) -> Arc<GroupTally> {
        let mark = if warm > 0 { warm } else { total };
        Arc::new(GroupTally {
            probe,
            counts: CachePadded::new([AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(mark)]),
            last: total,
        })
    }

    /// Counts one handled event with checksum `v`.
    #[inline(always)]
    pub fn add(&self, v: u64) {
        let [pos, sum, mark] = &*self.counts;
        let p = pos.load(Ordering::Relaxed) + 1;
        let s = sum.load(Ordering::Relaxed).wrapping_add(v);
        pos.store(p, Ordering::Relaxed);
        sum.store(s, Ordering::Relaxed);
        if p >= mark.load(Ordering::Relaxed) {
            self.probe.publish(p, s, 0);
            mark.store(next_mark(p, self.last), Ordering::Relaxed);
        }
    }
}

/// The payload that ends a latency run.
pub const SENTINEL: u64 = u64::MAX;

/// Where a latency consumer hands its histogram over when the sentinel
/// arrives.
pub type HistogramSlot = Arc<Mutex<Option<Histogram<u64>>>>;

/// Records `now - sent` for each timestamp payload, skipping the warm-up.
#[derive(Debug)]
pub struct LatencyTally {
    hist: Option<Histogram<u64>>,
    skip: u64,
    slot: HistogramSlot,
}

impl LatencyTally {
    /// A tally ignoring the first `skip` events, handing its histogram to
    /// `slot` on [`SENTINEL`].
    pub fn new(skip: u64, slot: HistogramSlot) -> LatencyTally {
        // 1 ns .. 100 s at 3 significant digits: allocated once here.
        let hist = Histogram::new_with_bounds(1, 100_000_000_000, 3).ok();
        LatencyTally { hist, skip, slot }
    }

    /// Handles one payload: a send timestamp or the sentinel.
    #[inline(always)]
    pub fn on(&mut self, sent: u64) {
        if sent == SENTINEL {
            if let Some(h) = self.hist.take() {
                if let Ok(mut slot) = self.slot.lock() {
                    *slot = Some(h);
                }
            }
            return;
        }
        let now = now_ns();
        if self.skip > 0 {
            self.skip -= 1;
        } else if let Some(h) = self.hist.as_mut() {
            h.saturating_record(now.saturating_sub(sent).max(1));
        }
    }
}

/// A new, empty histogram slot.
pub fn histogram_slot() -> HistogramSlot {
    Arc::new(Mutex::new(None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tally_publishes_at_its_marks_only() {
        let probe = Probe::new();
        let mut t = Tally::new(probe.clone(), 2, 5);
        t.add(10);
        assert_eq!(probe.pos(), 0);
        t.add(20);
        assert_eq!((probe.pos(), probe.sum()), (2, 30));
        t.add(1);
        t.lag(1);
        assert!(!t.finished());
        t.add(4);
        assert!(t.finished());
        assert_eq!((probe.pos(), probe.sum(), probe.lagged()), (5, 35, 1));
        assert_eq!(probe.lagged_measured(), 1);
        assert!(probe.done_ns() > 0);
    }

    #[test]
    fn losses_in_warm_up_are_not_charged_to_the_measured_phase() {
        let probe = Probe::new();
        let mut t = Tally::new(probe.clone(), 4, 8);
        t.add(1);
        t.lag(2);
        assert_eq!(probe.pos(), 0);
        // Straddles the warm-up mark at 4: one lost in warm-up, two after.
        t.lag(3);
        assert_eq!((probe.pos(), probe.lagged_measured()), (4, 0));
        t.add(1);
        t.add(1);
        assert!(t.finished());
        assert_eq!((probe.lagged(), probe.lagged_measured()), (5, 2));
    }

    #[test]
    fn a_group_tally_publishes_at_its_marks_only() {
        let probe = Probe::new();
        let t = GroupTally::new(probe.clone(), 2, 3);
        let other = t.clone();
        t.add(10);
        assert_eq!(probe.pos(), 0);
        other.add(20);
        assert_eq!((probe.pos(), probe.sum()), (2, 30));
        t.add(1);
        assert_eq!((probe.pos(), probe.sum(), probe.lagged()), (3, 31, 0));
    }

    #[test]
    fn latency_tally_skips_warm_up_and_hands_over_on_sentinel() {
        let slot = histogram_slot();
        let mut t = LatencyTally::new(1, slot.clone());
        t.on(now_ns());
        t.on(now_ns());
        t.on(SENTINEL);
        let h = slot.lock().unwrap().take().unwrap();
        assert_eq!(h.len(), 1);
    }
}
