//! What a worker drains: the [`Drain`] trait its lanes' consumers
//! implement, the per-pass context, totals, drain keys, backlogs.

use std::any::Any;
use std::cell::RefCell;

use crate::loom::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::loom::thread_local;

thread_local! {
    /// Producer backlogs of this worker waiting for ring space.
    pub(crate) static BACKLOGS: RefCell<Vec<Box<dyn Backlog>>> = RefCell::new(Vec::new());
}

/// A producer backlog held by a worker slot ([`lane`](crate::lane)), flushed by the
/// worker loop until empty.
pub(crate) trait Backlog {
    /// Moves what fits into the rings; returns true once nothing is left.
    fn flush(&mut self) -> bool;
}

/// Hands a backlog to the calling worker's loop. Call once, when the backlog
/// first becomes non-empty, from that worker's thread.
pub(crate) fn register_backlog(backlog: Box<dyn Backlog>) {
    // A worker thread being torn down has no loop left to flush; its events
    // stay in the backlog and are counted as discarded when the topic drops.
    let _ = BACKLOGS.try_with(|b| b.borrow_mut().push(backlog));
}

/// Result of one drain call.
pub(crate) enum Drained {
    /// Handled this many events.
    Events(usize),
    /// Events are ready but commands must run first (a subscription they are
    /// meant for may be waiting in the queue).
    NeedCommands(usize),
}

/// The worker's busy-time clock, read off the event path: events published
/// without a timestamp read the dispatch clock only if asked for
/// ([`open_batch`](crate::sys::epoch::open_batch)), so a burst starts
/// without a clock read. Its start is the worker's last idle reading: taken
/// when it last went idle, every [`IDLE_READ_EVERY`] empty spinning
/// passes, and after every yield, sleep or park. Busy time may therefore
/// include up to that many empty passes before a burst.
#[derive(Default)]
pub(crate) struct BusyClock {
    /// The first reading of the current busy burst; 0 = none yet. Busy time
    /// is counted from it to the next idle transition.
    pub(crate) burst_start: u64,
    /// The worker's last reading while idle; 0 = none yet.
    pub(crate) last_idle: u64,
}

/// Empty spinning passes between two idle clock readings.
pub(crate) const IDLE_READ_EVERY: u32 = 16;

impl BusyClock {
    /// The start of a burst beginning now: the last idle reading, or a
    /// reading now for a worker that never idled.
    #[inline(always)]
    fn start_of_burst(&self) -> u64 {
        if self.last_idle != 0 {
            self.last_idle
        } else {
            crate::sys::epoch::now_nanos()
        }
    }

    /// Takes an idle reading (off the event path: the worker has nothing
    /// to do).
    pub(crate) fn idle_reading(&mut self) {
        self.last_idle = crate::sys::epoch::now_nanos();
    }
}

/// Per-pass context handed to drains.
pub(crate) struct DrainCx<'a> {
    /// The worker's "commands are queued" flag (`WorkerShared::pending`).
    pub(crate) pending: &'a AtomicBool,
    /// The worker's busy/idle epoch as others read it (`WorkerShared::epoch`).
    pub(crate) shared_epoch: &'a AtomicU64,
    pub(crate) idle: &'a mut bool,
    pub(crate) epoch: &'a mut u64,
    pub(crate) clock: &'a mut BusyClock,
    pub(crate) batch: usize,
}

impl DrainCx<'_> {
    /// Whether commands are queued. Called after the events about to be
    /// dispatched were seen ready (their stamps loaded with `Acquire`): the
    /// publish of an event stamped with a new subscription's version happened
    /// after that subscription's command was queued, so the flag is visible
    /// here (`Relaxed` suffices given that happens-before chain). Events that
    /// become ready after this check must not be dispatched in the same
    /// batch.
    #[inline(always)]
    pub(crate) fn commands_pending(&self) -> bool {
        self.pending.load(Ordering::Relaxed)
    }

    /// Call before dispatching a batch whose events were all seen
    /// published: opens the thread's dispatch clock for them (read only if
    /// an event's time is asked for) and starts the busy burst, if none is
    /// under way, at the last idle reading (see [`BusyClock`]). No
    /// clock read on this path but a worker's very first burst.
    #[inline(always)]
    pub(crate) fn open_batch(&mut self) {
        let c = &mut *self.clock;
        if c.burst_start == 0 {
            c.burst_start = c.start_of_burst();
        }
        crate::sys::epoch::open_batch(c.burst_start);
    }

    /// Call before consuming events: makes the worker busy for quiescence
    /// detection (module docs).
    #[inline(always)]
    pub(crate) fn consuming(&mut self) {
        if *self.idle {
            *self.idle = false;
            *self.epoch += 1;
            // Relaxed: ordered before the consumer's Release head store.
            self.shared_epoch.store(*self.epoch, Ordering::Relaxed);
        }
    }
}

/// Totals a worker reports when it exits.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Totals {
    pub(crate) handled: u64,
    pub(crate) failed: u64,
    pub(crate) panicked: u64,
    /// Lane copies of events that no live subscription took.
    pub(crate) discarded: u64,
    /// Panics in user code outside a handler call that the worker caught
    /// (a handler's `Drop`, an event's `Drop` or `Clone` on the failure
    /// path).
    pub(crate) stray_panics: u64,
}

impl std::ops::AddAssign for Totals {
    fn add_assign(&mut self, o: Totals) {
        self.handled += o.handled;
        self.failed += o.failed;
        self.panicked += o.panicked;
        self.discarded += o.discarded;
        self.stray_panics += o.stray_panics;
    }
}

/// Names one drain on a worker: the topic's uid and its lane's uid (never
/// reused, so a retired lane's drain and its successor's never meet).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct DrainKey {
    pub(crate) topic: u64,
    pub(crate) lane: u64,
}

/// Says when a retired lane can receive nothing more (see
/// [`Runtime::retire_drain`](crate::runtime::workers::Runtime::retire_drain)); polled by the worker between passes.
pub(crate) trait Quiesce: Send {
    /// Whether no producer can push into the lane any more.
    fn quiescent(&mut self) -> bool;
}

/// A lane's consumer on a worker: a topic's plain lane, or a group lane.
pub(crate) trait Drain: Send {
    fn key(&self) -> DrainKey;
    /// Handles up to `cx.batch` events per ring.
    fn drain(&mut self, cx: &mut DrainCx<'_>) -> Drained;
    /// Whether events are (or may be) waiting; used before parking.
    fn has_work(&mut self) -> bool;
    /// Removes subscription `id` if it is here (drops the handler).
    fn remove(&mut self, id: u64) -> bool;
    /// Publishes counters and drops every handler (a panicking `Drop` is
    /// contained); takes what a retired lane still holds, as discarded; adds
    /// this drain's totals.
    fn finish(&mut self, totals: &mut Totals);
    fn as_any(&mut self) -> &mut dyn Any;
}
