//! The token-bucket arithmetic both rate limits share (`layer::RateLimit` on
//! a handler, `intercept::RateLimit` on publishers), in GCRA form: the whole
//! state is one timestamp, `tat`, the theoretical arrival time of the next
//! event, so the handler side keeps it in a plain field and the publish side
//! in one atomic.

/// Rate and burst, as the step function needs them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Gcra {
    /// Events per second (at least 1).
    pub(crate) rate: u32,
    /// Nanoseconds per token.
    interval: u64,
    /// How far ahead of now `tat` may run: `(burst - 1) * interval`.
    tolerance: u64,
}

impl Gcra {
    /// `rate` events per second, bursts of `burst`; both at least 1.
    pub(crate) fn new(rate: u32, burst: u32) -> Self {
        let (rate, burst) = (rate.max(1), burst.max(1));
        let interval = (1_000_000_000 / u64::from(rate)).max(1);
        Gcra {
            rate,
            interval,
            tolerance: u64::from(burst - 1) * interval,
        }
    }

    /// The burst this was made with.
    pub(crate) fn burst(&self) -> u32 {
        (self.tolerance / self.interval + 1) as u32
    }

    /// An event at `now` (nanoseconds) with the next one due at `tat`:
    /// `Ok(new tat)` if a token is free, else `Err(nanoseconds until one)`.
    #[inline]
    pub(crate) fn step(&self, tat: u64, now: u64) -> Result<u64, u64> {
        let due = tat.max(now);
        if due - now > self.tolerance {
            Err(due - now - self.tolerance)
        } else {
            Ok(due + self.interval)
        }
    }
}
