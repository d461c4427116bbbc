//! Retry policies: how often and how late a failed delivery is tried again.
//!
//! A retry never blocks the lane. The failed event waits in the engine's
//! timer wheel and is then delivered again to the one subscription that
//! failed it, on that subscription's worker, with [`Event::attempt`]
//! incremented. Other subscriptions, and later events, go on meanwhile.
//!
//! [`Event::attempt`]: crate::Event::attempt

use std::fmt;
use std::time::Duration;

/// How a subscription retries failed deliveries (a handler `Err` or panic).
///
/// The delay before attempt `n + 1` is `initial × factor^(n − 1)`, capped at
/// `max`, then shortened by up to `jitter × delay` at random (so retries of
/// many events spread out instead of arriving together). After
/// `max_attempts` deliveries in all (the first included) the event goes to
/// the topic's dead letters ([`Topic::dead_letters`]).
///
/// Defaults of [`exponential`](RetryPolicy::exponential): factor 2, no
/// jitter, 5 attempts.
///
/// [`Topic::dead_letters`]: crate::Topic::dead_letters
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use pinbus::RetryPolicy;
///
/// let policy = RetryPolicy::exponential(Duration::from_millis(10), Duration::from_secs(1))
///     .factor(3.0)
///     .jitter(0.2)
///     .max_attempts(4);
/// assert_eq!(policy.delay_before(2, 0.0), Duration::from_millis(10));
/// assert_eq!(policy.delay_before(3, 0.0), Duration::from_millis(30));
/// assert_eq!(policy.delay_before(4, 0.0), Duration::from_millis(90));
/// ```
#[derive(Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    initial: Duration,
    max: Duration,
    factor: f64,
    jitter: f64,
    max_attempts: u32,
}

impl RetryPolicy {
    /// Exponential backoff from `initial` up to `max` per delay; factor 2,
    /// no jitter, 5 attempts in all.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use pinbus::RetryPolicy;
    /// let p = RetryPolicy::exponential(Duration::from_millis(10), Duration::from_millis(25));
    /// assert_eq!(p.attempts(), 5);
    /// assert_eq!(p.delay_before(2, 0.0), Duration::from_millis(10));
    /// assert_eq!(p.delay_before(3, 0.0), Duration::from_millis(20));
    /// assert_eq!(p.delay_before(4, 0.0), Duration::from_millis(25)); // capped at max
    /// ```
    pub fn exponential(initial: Duration, max: Duration) -> Self {
        RetryPolicy {
            initial,
            max,
            factor: 2.0,
            jitter: 0.0,
            max_attempts: 5,
        }
    }

    /// The same `delay` before every retry; 5 attempts in all.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use pinbus::RetryPolicy;
    /// let p = RetryPolicy::fixed(Duration::from_millis(5)).max_attempts(3);
    /// assert_eq!(p.delay_before(3, 0.0), Duration::from_millis(5));
    /// ```
    pub fn fixed(delay: Duration) -> Self {
        RetryPolicy {
            factor: 1.0,
            ..Self::exponential(delay, delay)
        }
    }

    /// No retry: the first failure dead-letters the event.
    ///
    /// # Examples
    ///
    /// ```
    /// use pinbus::RetryPolicy;
    /// assert_eq!(RetryPolicy::never().attempts(), 1);
    /// ```
    pub fn never() -> Self {
        Self::fixed(Duration::ZERO).max_attempts(1)
    }

    /// Growth of the delay per attempt (at least 1.0).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use pinbus::RetryPolicy;
    /// let p = RetryPolicy::exponential(Duration::from_millis(1), Duration::from_secs(1)).factor(10.0);
    /// assert_eq!(p.delay_before(4, 0.0), Duration::from_millis(100));
    /// ```
    pub fn factor(mut self, factor: f64) -> Self {
        self.factor = factor;
        self
    }

    /// Random shortening of each delay, as a share of it: 0.0 (none, the
    /// default) to 1.0 (anywhere between 0 and the full delay).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use pinbus::RetryPolicy;
    /// let p = RetryPolicy::fixed(Duration::from_millis(100)).jitter(0.5);
    /// assert_eq!(p.delay_before(2, 0.0), Duration::from_millis(100)); // draw 0: no shortening
    /// assert_eq!(p.delay_before(2, 1.0), Duration::from_millis(50)); // at most by half
    /// ```
    pub fn jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter;
        self
    }

    /// Deliveries in all, the first included (at least 1).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use pinbus::RetryPolicy;
    /// let p = RetryPolicy::fixed(Duration::from_millis(5)).max_attempts(3);
    /// assert_eq!(p.attempts(), 3);
    /// ```
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// Deliveries in all, the first included.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use pinbus::RetryPolicy;
    /// assert_eq!(RetryPolicy::fixed(Duration::from_millis(5)).attempts(), 5);
    /// ```
    pub fn attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The delay before delivery number `attempt` (2 for the first retry),
    /// for a jitter draw `unit` in `[0, 1)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use pinbus::RetryPolicy;
    /// let p = RetryPolicy::exponential(Duration::from_millis(10), Duration::from_secs(1)).jitter(1.0);
    /// assert_eq!(p.delay_before(3, 0.0), Duration::from_millis(20));
    /// assert_eq!(p.delay_before(3, 0.25), Duration::from_millis(15));
    /// ```
    pub fn delay_before(&self, attempt: u32, unit: f64) -> Duration {
        let exponent = attempt.saturating_sub(2).min(1_000) as i32;
        let nominal = self.initial.as_secs_f64() * self.factor.powi(exponent);
        let capped = nominal.min(self.max.as_secs_f64());
        let jittered = capped * (1.0 - self.jitter * unit.clamp(0.0, 1.0));
        Duration::try_from_secs_f64(jittered).unwrap_or(self.max)
    }

    /// Checks the parameters; the text says what to change.
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.max_attempts == 0 {
            return Err(
                "max_attempts is 0; it counts the first delivery, so use at least 1 \
                 (1 means: no retry, dead-letter on the first failure)"
                    .into(),
            );
        }
        if !(self.factor.is_finite() && self.factor >= 1.0) {
            return Err(format!(
                "factor is {}; use a finite factor of at least 1.0 (1.0 = fixed delay)",
                self.factor
            ));
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(format!(
                "jitter is {}; use a share between 0.0 and 1.0",
                self.jitter
            ));
        }
        if self.initial > self.max {
            return Err(format!(
                "the initial delay {:?} exceeds the maximum delay {:?}; raise max or lower initial",
                self.initial, self.max
            ));
        }
        Ok(())
    }
}

impl fmt::Debug for RetryPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryPolicy")
            .field("initial", &self.initial)
            .field("max", &self.max)
            .field("factor", &self.factor)
            .field("jitter", &self.jitter)
            .field("max_attempts", &self.max_attempts)
            .finish()
    }
}

/// A small per-worker random source for jitter (xorshift64*; not for
/// anything but spreading delays).
#[derive(Debug)]
pub(crate) struct Jitter(u64);

impl Jitter {
    pub(crate) fn new(seed: u64) -> Self {
        Jitter(crate::sys::mix::mix64(seed) | 1)
    }

    /// A draw in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_cap() {
        let p = RetryPolicy::exponential(Duration::from_millis(1), Duration::from_millis(5));
        let d: Vec<_> = (2..=6).map(|a| p.delay_before(a, 0.0)).collect();
        assert_eq!(
            d,
            [1, 2, 4, 5, 5].map(Duration::from_millis).to_vec(),
            "1, 2, 4, then capped at 5"
        );
    }

    #[test]
    fn jitter_shortens_within_bounds() {
        let p = RetryPolicy::fixed(Duration::from_millis(100)).jitter(0.5);
        let mut j = Jitter::new(7);
        for _ in 0..1000 {
            let d = p.delay_before(2, j.unit());
            assert!(d <= Duration::from_millis(100) && d >= Duration::from_millis(50));
        }
    }

    #[test]
    fn bad_parameters_are_named() {
        let base = RetryPolicy::fixed(Duration::from_millis(1));
        assert!(base.check().is_ok());
        assert!(base
            .max_attempts(0)
            .check()
            .unwrap_err()
            .contains("max_attempts"));
        assert!(base.factor(0.5).check().unwrap_err().contains("factor"));
        assert!(base
            .factor(f64::NAN)
            .check()
            .unwrap_err()
            .contains("factor"));
        assert!(base.jitter(1.5).check().unwrap_err().contains("jitter"));
        let inverted = RetryPolicy::exponential(Duration::from_secs(2), Duration::from_secs(1));
        assert!(inverted.check().unwrap_err().contains("initial"));
    }
}
