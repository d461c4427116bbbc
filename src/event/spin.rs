//! The bounded spin a thread does before it blocks on a cell another core
//! is about to settle (a receipt, a reply slot): a running worker settles
//! it within microseconds, far sooner than a blocked thread is woken (tens
//! of µs on a VM).

use std::time::{Duration, Instant};

use crate::loom::hint::spin_loop;
use crate::loom::thread;

/// How long a waiter spins, then yields, before it blocks.
pub(crate) const SPIN_FOR: Duration = Duration::from_micros(20);
pub(crate) const YIELD_UNTIL: Duration = Duration::from_micros(50);

/// Spins for [`SPIN_FOR`], then yields, until `done()` or `limit` has
/// passed; returns `done()`. Under loom it only looks once.
pub(crate) fn until(limit: Duration, done: impl Fn() -> bool) -> bool {
    if cfg!(loom) {
        return done();
    }
    // The clock is read every 64 rounds (a round takes nanoseconds), the
    // first time after the first 64: a round trip that settles sooner reads
    // no clock at all (a read costs 16–40 ns here, a tenth of one).
    let mut start = None;
    let mut spinning = true;
    loop {
        for _ in 0..64 {
            if done() {
                return true;
            }
            if spinning {
                spin_loop();
            } else {
                thread::yield_now();
            }
        }
        let waited = start.get_or_insert_with(Instant::now).elapsed();
        if waited >= limit {
            return done();
        }
        spinning = waited < SPIN_FOR;
    }
}
