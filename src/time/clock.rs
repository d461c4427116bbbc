//! Clocks: where the timer service reads the time.
//!
//! [`SystemClock`] is the monotonic system clock. [`ManualClock`] is virtual
//! time for tests: it moves only when told to, and each move fires the timers
//! it makes due before returning, so tests of delays and retries are
//! deterministic and take no wall-clock time.

use std::time::{Duration, Instant};

use crate::loom::sync::{Arc, Mutex};

/// A source of monotonic time.
///
/// Implement it to run timers on your own notion of time; the timer service
/// then sleeps on the system clock for the durations your clock reports.
/// For tests, use [`ManualClock`].
///
/// # Examples
///
/// A clock running a fixed offset ahead of the system clock:
///
/// ```
/// use std::time::{Duration, Instant};
/// use pinbus::Clock;
///
/// struct Ahead(Duration);
///
/// impl Clock for Ahead {
///     fn now(&self) -> Instant {
///         Instant::now() + self.0
///     }
/// }
///
/// let clock = Ahead(Duration::from_secs(60));
/// assert!(clock.now() > Instant::now());
/// ```
pub trait Clock: Send + Sync + 'static {
    /// The current time. Must never go backwards.
    fn now(&self) -> Instant;

    /// Lets the timer service find a [`ManualClock`] behind a `dyn Clock`, to
    /// be driven by its advances instead of sleeping. Not meant to be
    /// overridden.
    #[doc(hidden)]
    fn as_manual(&self) -> Option<&ManualClock> {
        None
    }
}

/// The system's monotonic clock, [`Instant::now`]. The default.
///
/// # Examples
///
/// ```
/// use std::time::Instant;
/// use pinbus::{Clock, SystemClock};
///
/// let before = Instant::now();
/// assert!(SystemClock.now() >= before);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// Virtual time that moves only when told to: lets tests advance time
/// explicitly so delay and retry tests are deterministic and fast.
///
/// Clones share one time. It starts at the [`Instant`] it was created.
///
/// ## Timers
///
/// A timer service reading a `ManualClock` runs no thread of its own: timers
/// fire inside [`advance`](Self::advance) and [`set`](Self::set), on the
/// calling thread, in due order, and those calls return only once every timer
/// due at the new time has fired — including timers that the firing tasks
/// themselves schedule already due. `advance(Duration::ZERO)` fires whatever
/// is due without moving time. A timer due at `t` fires when the clock
/// reaches the end of the tick holding `t` (ticks are 1 ms by default), never
/// before `t`. A timer task that itself moves the clock only moves time: the
/// outer call fires what that made due.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use pinbus::{Clock, ManualClock};
///
/// let clock = ManualClock::new();
/// let start = clock.now();
/// let handle = clock.clone(); // shares the time
/// handle.advance(Duration::from_millis(250));
/// assert_eq!(clock.now() - start, Duration::from_millis(250));
/// ```
#[derive(Clone)]
pub struct ManualClock {
    shared: Arc<Mutex<ManualState>>,
}

struct ManualState {
    now: Instant,
    /// Timer services reading this clock, by service id.
    drivers: Vec<(u64, Box<dyn Tick>)>,
}

impl std::fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("ManualClock")
            .field("now", &state.now)
            .field("timer_services", &state.drivers.len())
            .finish()
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl ManualClock {
    /// A clock standing at the current [`Instant`].
    ///
    /// # Examples
    ///
    /// ```
    /// use pinbus::{Clock, ManualClock};
    ///
    /// let clock = ManualClock::new();
    /// let t = clock.now();
    /// std::thread::sleep(std::time::Duration::from_millis(2));
    /// assert_eq!(clock.now(), t); // does not move by itself
    /// ```
    pub fn new() -> ManualClock {
        ManualClock {
            shared: Arc::new(Mutex::new(ManualState {
                now: Instant::now(),
                drivers: Vec::new(),
            })),
        }
    }

    /// The current virtual time.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use pinbus::ManualClock;
    ///
    /// let clock = ManualClock::new();
    /// let t = clock.now();
    /// clock.advance(Duration::from_secs(1));
    /// assert_eq!(clock.now(), t + Duration::from_secs(1));
    /// ```
    pub fn now(&self) -> Instant {
        self.shared.lock().now
    }

    /// Moves time forward by `d`, then fires every timer now due (see
    /// [Timers](Self#timers)) before returning.
    ///
    /// # Panics
    ///
    /// If the new time does not fit in an [`Instant`] (as `Instant + Duration`
    /// does).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use pinbus::ManualClock;
    ///
    /// let clock = ManualClock::new();
    /// let t0 = clock.now();
    /// clock.advance(Duration::from_millis(10));
    /// clock.advance(Duration::from_millis(5));
    /// assert_eq!(clock.now() - t0, Duration::from_millis(15));
    /// ```
    pub fn advance(&self, d: Duration) {
        let drivers = {
            let mut state = self.shared.lock();
            state.now += d;
            Self::drivers(&state)
        };
        for d in drivers {
            d.drive();
        }
    }

    /// Moves time forward to `t`, then fires every timer now due (see
    /// [Timers](Self#timers)) before returning. Time never moves back: a `t`
    /// before [`now`](Self::now) leaves the time as it is (and still fires
    /// what is due).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use pinbus::ManualClock;
    ///
    /// let clock = ManualClock::new();
    /// let later = clock.now() + Duration::from_secs(3);
    /// clock.set(later);
    /// assert_eq!(clock.now(), later);
    /// clock.set(later - Duration::from_secs(1)); // ignored: forward only
    /// assert_eq!(clock.now(), later);
    /// ```
    pub fn set(&self, t: Instant) {
        let drivers = {
            let mut state = self.shared.lock();
            state.now = state.now.max(t);
            Self::drivers(&state)
        };
        for d in drivers {
            d.drive();
        }
    }

    fn drivers(state: &ManualState) -> Vec<Box<dyn Tick>> {
        state.drivers.iter().map(|(_, d)| d.share()).collect()
    }

    /// Registers timer service `id` to be driven by this clock's moves.
    pub(crate) fn attach(&self, id: u64, driver: Box<dyn Tick>) {
        self.shared.lock().drivers.push((id, driver));
    }

    /// Unregisters timer service `id` (breaks the clock ↔ service cycle).
    pub(crate) fn detach(&self, id: u64) {
        self.shared.lock().drivers.retain(|(i, _)| *i != id);
    }
}

/// What a [`ManualClock`] drives when it moves: a timer service firing what
/// has come due (owned by the timer, so the clock names no timer type).
pub(crate) trait Tick: Send + Sync {
    /// Fires what is due at the clock's now.
    fn drive(&self);
    /// Another handle to the same service.
    fn share(&self) -> Box<dyn Tick>;
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        ManualClock::now(self)
    }

    fn as_manual(&self) -> Option<&ManualClock> {
        Some(self)
    }
}
