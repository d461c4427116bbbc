//! Time: clocks, the timing wheel, the timer service that fires delayed
//! events and retries.

pub(crate) mod clock;
pub(crate) mod timer;
pub(crate) mod wheel;
