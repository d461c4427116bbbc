//! [`EngineBuilder`]: every setting, validated in
//! `build`.

use std::fmt;
use std::time::{Duration, Instant};

use crate::engine::config::Config;

use crate::loom::sync::Arc;

use crate::runtime::idle::{IdleStrategy, IdleTuning};
use crate::sys::error::ConfigError;

use crate::sys::pinning::Pinning;
use crate::time::clock::{Clock, ManualClock, SystemClock};
use crate::time::timer::TimerShutdown;

use crate::topic::options::TopicOptions;

use crate::engine::instance::Engine;

/// Builds an [`Engine`]; every setting is validated in [`build`].
///
/// # Examples
///
/// ```
/// # fn main() -> Result<(), pinbus::ConfigError> {
/// use pinbus::{Engine, IdleStrategy, Pinning};
/// let engine = Engine::builder()
///     .workers(2)
///     .pinning(Pinning::None)
///     .idle(IdleStrategy::Park)
///     .lane_capacity(4096)
///     .build()?;
/// # drop(engine);
/// # Ok(()) }
/// ```
///
/// [`build`]: EngineBuilder::build
#[derive(Clone, Debug, Default)]
#[must_use = "an EngineBuilder does nothing until build() is called"]
pub struct EngineBuilder {
    pub(crate) config: Config,
    pub(crate) clock: Option<SharedClock>,
}

/// A clock the builder can clone and print.
#[derive(Clone)]
pub(crate) struct SharedClock(Arc<Box<dyn Clock>>);

impl Clock for SharedClock {
    fn now(&self) -> Instant {
        self.0.now()
    }
    fn as_manual(&self) -> Option<&ManualClock> {
        self.0.as_manual()
    }
}

impl fmt::Debug for SharedClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_manual() {
            Some(manual) => manual.fmt(f),
            None => f.write_str("Clock"),
        }
    }
}

impl EngineBuilder {
    /// Number of worker threads (default 1).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), pinbus::ConfigError> {
    /// let engine = pinbus::Engine::builder().workers(2).build()?;
    /// assert_eq!(engine.workers(), 2);
    /// # Ok(()) }
    /// ```
    pub fn workers(mut self, workers: usize) -> Self {
        self.config.workers = workers;
        self
    }

    /// Core placement of the workers (default [`Pinning::None`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use pinbus::{ConfigError, Engine, Pinning};
    /// // `Pinning::Cores` needs exactly one core per worker.
    /// let err = Engine::builder().workers(1).pinning(Pinning::Cores(vec![0, 1])).build();
    /// assert!(matches!(err, Err(ConfigError::CoreCountMismatch { cores: 2, workers: 1 })));
    /// ```
    pub fn pinning(mut self, pinning: Pinning) -> Self {
        self.config.pinning = pinning;
        self
    }

    /// What idle workers do (default [`IdleStrategy::Park`]).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), pinbus::ConfigError> {
    /// use pinbus::{Engine, IdleStrategy};
    /// let builder = Engine::builder().idle(IdleStrategy::Backoff);
    /// assert_eq!(builder.config().idle, IdleStrategy::Backoff);
    /// # drop(builder.build()?);
    /// # Ok(()) }
    /// ```
    pub fn idle(mut self, idle: IdleStrategy) -> Self {
        self.config.idle = idle;
        self
    }

    /// Parameters of the idle strategies.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), pinbus::ConfigError> {
    /// use std::time::Duration;
    /// use pinbus::{Engine, IdleStrategy, IdleTuning};
    /// let tuning = IdleTuning { max_sleep: Duration::from_micros(100), ..IdleTuning::default() };
    /// let engine = Engine::builder().idle(IdleStrategy::Backoff).idle_tuning(tuning).build()?;
    /// # drop(engine);
    /// # Ok(()) }
    /// ```
    pub fn idle_tuning(mut self, tuning: IdleTuning) -> Self {
        self.config.idle_tuning = tuning;
        self
    }

    /// Slots per lane ring, a power of two (default 8192).
    ///
    /// # Examples
    ///
    /// ```
    /// use pinbus::{ConfigError, Engine};
    /// let err = Engine::builder().lane_capacity(1000).build();
    /// assert!(matches!(err, Err(ConfigError::CapacityNotPowerOfTwo { suggestion: 1024, .. })));
    /// ```
    pub fn lane_capacity(mut self, capacity: usize) -> Self {
        self.config.lane_capacity = capacity;
        self
    }

    /// Events a worker takes from one ring before moving on (default 256).
    ///
    /// # Examples
    ///
    /// ```
    /// use pinbus::{ConfigError, Engine};
    /// assert!(Engine::builder().drain_batch(64).build().is_ok());
    /// let err = Engine::builder().drain_batch(0).build();
    /// assert!(matches!(err, Err(ConfigError::DrainBatch { batch: 0, .. })));
    /// ```
    pub fn drain_batch(mut self, batch: usize) -> Self {
        self.config.drain_batch = batch;
        self
    }

    /// Producer threads per topic with a dedicated ring (default 16).
    ///
    /// # Examples
    ///
    /// ```
    /// use pinbus::{ConfigError, Engine};
    /// assert!(Engine::builder().producer_slots(4).build().is_ok());
    /// let err = Engine::builder().producer_slots(0).build();
    /// assert!(matches!(err, Err(ConfigError::ProducerSlots { slots: 0, .. })));
    /// ```
    pub fn producer_slots(mut self, slots: usize) -> Self {
        self.config.producer_slots = slots;
        self
    }

    /// Stack size of each worker thread, in bytes (default: the platform's).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), pinbus::ConfigError> {
    /// let builder = pinbus::Engine::builder().worker_stack_size(8 << 20);
    /// assert_eq!(builder.config().worker_stack_size, Some(8 << 20));
    /// # drop(builder.build()?);
    /// # Ok(()) }
    /// ```
    pub fn worker_stack_size(mut self, bytes: usize) -> Self {
        self.config.worker_stack_size = Some(bytes);
        self
    }

    /// Cores reserved for the application's producer threads (default none;
    /// see [`Config::producer_cores`]): [`Pinning::Auto`] leaves them out and
    /// [`Pinning::Cores`] may not list them. Read them back with
    /// [`Engine::producer_cores`] to pin producers there.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), pinbus::ConfigError> {
    /// use pinbus::{Engine, Pinning};
    /// let engine = Engine::builder()
    ///     .pinning(Pinning::Auto)
    ///     .producer_cores([0])
    ///     .build()?;
    /// assert_eq!(engine.producer_cores(), &[0]);
    /// # Ok(()) }
    /// ```
    pub fn producer_cores(mut self, cores: impl Into<Vec<usize>>) -> Self {
        self.config.producer_cores = cores.into();
        self
    }

    /// Options for the topic `name` when [`Engine::topic`] creates it (see
    /// [`Config::topics`]); a `worker` beyond the worker count fails
    /// [`build`](EngineBuilder::build).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pinbus::{Engine, TopicOptions};
    /// let engine = Engine::builder()
    ///     .workers(2)
    ///     .topic_options("orders.created", TopicOptions::default().worker(1))
    ///     .build()?;
    /// let orders = engine.topic::<u64>("orders.created")?;
    /// assert_eq!(orders.subscribe(|_| ())?.worker(), 1);
    /// # Ok(()) }
    /// ```
    pub fn topic_options(mut self, name: impl Into<String>, options: TopicOptions) -> Self {
        self.config.topics.insert(name.into(), options);
        self
    }

    /// The configuration built so far.
    ///
    /// # Examples
    ///
    /// ```
    /// use pinbus::{Config, Engine};
    /// let builder = Engine::builder().workers(2).lane_capacity(1024);
    /// assert_eq!(builder.config(), &Config { workers: 2, lane_capacity: 1024, ..Config::default() });
    /// ```
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Validates the settings and starts the workers.
    ///
    /// # Examples
    ///
    /// ```
    /// use pinbus::{ConfigError, Engine};
    /// assert!(Engine::builder().workers(1).build().is_ok());
    /// assert!(matches!(Engine::builder().workers(0).build(), Err(ConfigError::ZeroWorkers)));
    /// ```
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the setting to change, or
    /// [`ConfigError::PinFailed`] / [`ConfigError::Spawn`] if the OS refused.
    pub fn build(self) -> Result<Engine, ConfigError> {
        let clock: Box<dyn Clock> = match self.clock {
            Some(clock) => Box::new(clock),
            None => Box::new(SystemClock),
        };
        Engine::start(self.config, clock)
    }

    /// The clock of delayed events and retries (default [`SystemClock`]).
    /// With a [`ManualClock`], timers fire only when the test moves the
    /// clock, inside `advance`, so delay and retry tests are deterministic.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// use pinbus::{Engine, ManualClock};
    /// let clock = ManualClock::new();
    /// let engine = Engine::builder().clock(clock.clone()).build()?;
    /// let reminders = engine.topic::<&'static str>("reminders")?;
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// reminders.subscribe(move |ev| tx.send(**ev).unwrap())?;
    /// reminders.publish_after(Duration::from_secs(3600), "an hour later")?;
    /// clock.advance(Duration::from_secs(3600)); // fires it: no real waiting
    /// assert_eq!(rx.recv()?, "an hour later");
    /// # Ok(()) }
    /// ```
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(SharedClock(Arc::new(Box::new(clock))));
        self
    }

    /// Resolution of the timer wheel (default 1 ms); see
    /// [`Config::timer_tick`].
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), pinbus::ConfigError> {
    /// use std::time::Duration;
    /// use pinbus::{ConfigError, Engine};
    /// let engine = Engine::builder().timer_tick(Duration::from_micros(100)).build()?;
    /// # drop(engine);
    /// let too_fine = Engine::builder().timer_tick(Duration::from_nanos(10)).build();
    /// assert!(matches!(too_fine, Err(ConfigError::TimerTick { .. })));
    /// # Ok(()) }
    /// ```
    pub fn timer_tick(mut self, tick: Duration) -> Self {
        self.config.timer_tick = tick;
        self
    }

    /// What shutdown does with pending delayed events and retries (default
    /// [`TimerShutdown::FireAllNow`]); see [`ShutdownReport::timers_fired`](crate::ShutdownReport::timers_fired).
    /// The example on [`TimerShutdown`] shows one policy at work.
    ///
    /// # Examples
    ///
    /// ```
    /// use pinbus::{Engine, TimerShutdown};
    /// let builder = Engine::builder().timer_shutdown(TimerShutdown::Drop);
    /// assert_eq!(builder.config().timer_shutdown, TimerShutdown::Drop);
    /// ```
    pub fn timer_shutdown(mut self, policy: TimerShutdown) -> Self {
        self.config.timer_shutdown = policy;
        self
    }
}

impl Engine {
    /// A builder with default settings.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), pinbus::ConfigError> {
    /// use pinbus::{Config, Engine};
    /// assert_eq!(Engine::builder().config(), &Config::default());
    /// let engine = Engine::builder().build()?;
    /// assert_eq!(engine.workers(), 1);
    /// # Ok(()) }
    /// ```
    pub fn builder() -> EngineBuilder {
        EngineBuilder::default()
    }
}
