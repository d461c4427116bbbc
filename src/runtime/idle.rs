//! What an idle worker does, and how a producer waits for room: the idle
//! strategies and their tuning, ranked by latency against CPU cost.

use std::time::Duration;

use crate::loom::hint::spin_loop;

use crate::loom::thread;

/// How a worker waits when all its lanes are empty, ranked from lowest
/// latency / highest CPU cost to lowest CPU cost.
///
/// | strategy | wake-up latency | idle CPU | cost on the publish path |
/// |---|---|---|---|
/// | `BusySpin` | lowest (the next poll) | one core at 100% | none |
/// | `Yield` | low (next time it is scheduled) | one core, shared | none |
/// | `Backoff` | up to `IdleTuning::max_sleep` after long idle | low | none |
/// | `Park` | an OS wake-up (µs) after idling | none | one flag load per lane |
///
/// Every strategy first spins `IdleTuning::spins` empty passes, so a busy
/// stream never pays the slow part.
///
/// # Examples
///
/// ```
/// # fn main() -> Result<(), pinbus::ConfigError> {
/// use pinbus::{Engine, IdleStrategy};
/// assert_eq!(IdleStrategy::default(), IdleStrategy::Park);
/// let engine = Engine::builder().idle(IdleStrategy::Backoff).build()?; // low idle CPU
/// # drop(engine);
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum IdleStrategy {
    /// Poll without pause.
    BusySpin,
    /// Poll, calling `std::thread::yield_now` between empty passes.
    Yield,
    /// Spin, then yield, then sleep with doubling pauses up to
    /// `IdleTuning::max_sleep`.
    Backoff,
    /// Spin, then yield, then park the thread until a publish, a subscription
    /// change or shutdown wakes it.
    #[default]
    Park,
}

/// Parameters of the idle strategies (see [`IdleStrategy`]).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use pinbus::IdleTuning;
/// let tuning = IdleTuning { spins: 1_000, ..IdleTuning::default() };
/// assert_eq!(tuning.max_sleep, Duration::from_micros(500)); // the default
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdleTuning {
    /// Empty passes spent spinning before yielding (all strategies but
    /// `BusySpin`).
    pub spins: u32,
    /// Empty passes spent yielding before sleeping or parking (`Backoff`,
    /// `Park`).
    pub yields: u32,
    /// Longest single sleep of `Backoff`.
    pub max_sleep: Duration,
}

impl Default for IdleTuning {
    fn default() -> Self {
        IdleTuning {
            spins: 64,
            yields: 8,
            max_sleep: Duration::from_micros(500),
        }
    }
}

/// Counts empty passes for the idle strategies.
#[derive(Default)]
pub(crate) struct IdleState {
    pub(crate) empty: u32,
}

impl IdleState {
    pub(crate) fn reset(&mut self) {
        self.empty = 0;
    }

    pub(crate) fn step(&mut self) -> u32 {
        let s = self.empty;
        self.empty = self.empty.saturating_add(1);
        s
    }
}

/// Waiting for room in a full ring, in the manner of the engine's
/// [`IdleStrategy`]: spin, then yield; engines that may sleep when idle
/// (`Backoff`, `Park`) then also sleep, with doubling pauses up to 100 µs.
/// A latency-tuned engine (`BusySpin`, `Yield`) never sleeps: on Linux a
/// 1 µs sleep lasts ~50 µs (timer slack), long enough for the worker to drain
/// the whole ring and sit idle.
pub(crate) struct Snooze {
    pub(crate) step: u32,
    pub(crate) may_sleep: bool,
}

impl Snooze {
    const SPIN: u32 = 32;
    const YIELD: u32 = 48;
    const MAX_SLEEP_EXP: u32 = 7;

    pub(crate) fn new(strategy: IdleStrategy) -> Self {
        Snooze {
            step: 0,
            may_sleep: matches!(strategy, IdleStrategy::Backoff | IdleStrategy::Park),
        }
    }

    pub(crate) fn snooze(&mut self) {
        if cfg!(loom) {
            // Under loom every wait is a yield to the other model threads.
            thread::yield_now();
            return;
        }
        if self.step < Self::SPIN {
            for _ in 0..(1u32 << self.step.min(6)) {
                spin_loop();
            }
        } else if self.step < Self::YIELD || !self.may_sleep {
            thread::yield_now();
        } else {
            let exp = (self.step - Self::YIELD).min(Self::MAX_SLEEP_EXP);
            crate::loom::sleep(Duration::from_micros(1 << exp));
        }
        self.step = self.step.saturating_add(1);
    }
}
