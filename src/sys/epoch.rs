//! The process's monotonic epoch: event timestamps are `u64` nanoseconds
//! since it.

use std::sync::OnceLock;
use std::time::Instant;

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
