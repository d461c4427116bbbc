//! The process's monotonic epoch: event timestamps are `u64` nanoseconds
//! since it.

use std::cell::Cell;
use std::sync::OnceLock;
use std::time::Instant;

use crate::loom::thread_local;

/// The process-wide reference point of every event timestamp.
pub(crate) fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Nanoseconds since [`epoch`], never 0 (0 means "not stamped").
#[inline]
pub(crate) fn now_nanos() -> u64 {
    let base = epoch();
    (Instant::now().saturating_duration_since(base).as_nanos() as u64).max(1)
}

/// The calling thread's current batch: its dispatch clock (`OPEN` until
/// read, then the reading; `NONE` on a thread outside a batch) and the
/// start of the busy burst it belongs to (0 = none).
struct BatchClock {
    now: Cell<u64>,
    burst: Cell<u64>,
}

const NONE: u64 = u64::MAX;
const OPEN: u64 = 0;

#[cfg(not(loom))]
thread_local! {
    static BATCH: BatchClock = const {
        BatchClock {
            now: Cell::new(NONE),
            burst: Cell::new(0),
        }
    };
}

// loom's `thread_local!` has no `const` form.
#[cfg(loom)]
thread_local! {
    static BATCH: BatchClock = BatchClock {
        now: Cell::new(NONE),
        burst: Cell::new(0),
    };
}

/// Starts a batch on the calling (worker) thread: events it delivers
/// without a publisher's timestamp read the clock on first use
/// ([`dispatch_now`]). Called once every event of the batch was seen
/// published, so every later reading is an upper bound on their publish
/// times; `burst` is when the worker's busy burst began (a reading taken
/// while it was idle, [`burst_start`]). Thread-local stores; no clock read.
#[inline(always)]
pub(crate) fn open_batch(burst: u64) {
    let _ = BATCH.try_with(|b| {
        b.now.set(OPEN);
        b.burst.set(burst);
    });
}

/// Ends the calling thread's batches (the worker found nothing to do): a
/// time asked for from now on is the clock's reading at the call.
#[inline]
pub(crate) fn close_batch() {
    let _ = BATCH.try_with(|b| {
        b.now.set(NONE);
        b.burst.set(0);
    });
}

/// When the busy burst of the calling thread's batch began (0 outside a
/// batch): a reading from before its events were taken.
#[inline]
pub(crate) fn burst_start() -> u64 {
    BATCH.try_with(|b| b.burst.get()).unwrap_or(0)
}

/// The dispatch clock of the calling thread's batch: read on the first call
/// after [`open_batch`], then the same value until the next batch opens.
/// Outside a batch (a thread that never opened one), the clock now.
#[inline]
pub(crate) fn dispatch_now() -> u64 {
    BATCH
        .try_with(|b| match b.now.get() {
            NONE => now_nanos(),
            OPEN => {
                let now = now_nanos();
                b.now.set(now);
                now
            }
            read => read,
        })
        .unwrap_or_else(|_| now_nanos())
}
