//! `Config`: everything an engine is built from, and its validation.
//!
//! A `Config` is built in code (through [`EngineBuilder`]) or read from a TOML
//! file ([`Config::from_toml_file`], parsing in [`file`](mod@file)); either way
//! [`Config::validate`] checks it against this machine's cores.
//!
//! [`EngineBuilder`]: crate::EngineBuilder

mod file;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::runtime::idle::{IdleStrategy, IdleTuning};
use crate::sys::error::ConfigError;
use crate::sys::pinning::{self, Pinning};
use crate::time::timer::TimerShutdown;
use crate::topic::options::TopicOptions;

/// Largest accepted worker count.
///
/// # Examples
///
/// ```
/// use pinbus::{ConfigError, Engine, MAX_WORKERS};
/// let err = Engine::builder().workers(MAX_WORKERS + 1).build();
/// assert!(matches!(err, Err(ConfigError::TooManyWorkers { max: MAX_WORKERS, .. })));
/// ```
pub const MAX_WORKERS: usize = 1024;
/// Smallest accepted lane capacity.
///
/// # Examples
///
/// ```
/// use pinbus::{Config, MIN_LANE_CAPACITY};
/// let config = Config { lane_capacity: MIN_LANE_CAPACITY, ..Config::default() };
/// assert!(config.validate().is_ok());
/// ```
pub const MIN_LANE_CAPACITY: usize = 1;
/// Largest accepted lane capacity (2^24 slots per ring).
///
/// # Examples
///
/// ```
/// use pinbus::{Config, ConfigError, MAX_LANE_CAPACITY};
/// let config = Config { lane_capacity: MAX_LANE_CAPACITY * 2, ..Config::default() };
/// assert!(matches!(config.validate(), Err(ConfigError::CapacityOutOfRange { max: MAX_LANE_CAPACITY, .. })));
/// ```
pub const MAX_LANE_CAPACITY: usize = 1 << 24;
/// Largest accepted `drain_batch`.
///
/// # Examples
///
/// ```
/// use pinbus::{Config, ConfigError, MAX_DRAIN_BATCH};
/// assert!(Config { drain_batch: MAX_DRAIN_BATCH, ..Config::default() }.validate().is_ok());
/// let config = Config { drain_batch: MAX_DRAIN_BATCH + 1, ..Config::default() };
/// assert!(matches!(config.validate(), Err(ConfigError::DrainBatch { max: MAX_DRAIN_BATCH, .. })));
/// ```
pub const MAX_DRAIN_BATCH: usize = 1 << 16;
/// Largest accepted `producer_slots`.
///
/// # Examples
///
/// ```
/// use pinbus::{Config, ConfigError, MAX_PRODUCER_SLOTS};
/// let config = Config { producer_slots: MAX_PRODUCER_SLOTS + 1, ..Config::default() };
/// assert!(matches!(config.validate(), Err(ConfigError::ProducerSlots { max: MAX_PRODUCER_SLOTS, .. })));
/// ```
pub const MAX_PRODUCER_SLOTS: usize = 1024;
/// Shortest accepted [`Config::timer_tick`].
pub(crate) const MIN_TIMER_TICK: Duration = Duration::from_micros(1);
/// Longest accepted [`Config::timer_tick`]; the field's doc says why.
pub(crate) const MAX_TIMER_TICK: Duration = Duration::from_secs(1);

/// The settings of an engine. Build one with [`EngineBuilder`] or read one
/// from TOML ([`Config::from_toml_file`], [`Config::from_toml_str`]; the
/// format is in `docs/tuning.md` and the annotated `pinbus.toml`);
/// [`Engine::from_config`] validates it and starts the engine.
///
/// # Examples
///
/// ```
/// # fn main() -> Result<(), pinbus::ConfigError> {
/// use pinbus::{Config, Engine, IdleStrategy};
/// let config = Config {
///     workers: 2,
///     idle: IdleStrategy::Backoff,
///     ..Config::default()
/// };
/// let engine = Engine::from_config(config)?;
/// assert_eq!(engine.workers(), 2);
/// # Ok(()) }
/// ```
///
/// [`EngineBuilder`]: crate::EngineBuilder
/// [`Engine::from_config`]: crate::Engine::from_config
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Worker threads (default 1).
    pub workers: usize,
    /// Core placement of the workers (default `Pinning::None`).
    pub pinning: Pinning,
    /// What idle workers do (default `IdleStrategy::Park`).
    pub idle: IdleStrategy,
    /// Parameters of the idle strategies.
    pub idle_tuning: IdleTuning,
    /// Slots per lane ring: a power of two (default 8192). Each producer thread
    /// that publishes to a topic gets its own ring of this size in each of the
    /// topic's lanes.
    pub lane_capacity: usize,
    /// Events a worker takes from one ring before moving to the next (default
    /// 256): the fairness/throughput trade-off of draining.
    pub drain_batch: usize,
    /// Threads per topic that get a dedicated (lock-free, read-modify-write
    /// free) producer ring; further concurrent producer threads share one
    /// ring under a lock (default 16).
    pub producer_slots: usize,
    /// Stack size of worker threads in bytes (default: the platform's
    /// default for new threads). Raise it for handlers that recurse deeply.
    pub worker_stack_size: Option<usize>,
    /// Cores reserved for the application's producer threads (default none).
    /// The engine does not run anything there: [`Pinning::Auto`] leaves them
    /// out, and [`Pinning::Cores`] may not list them. Pin your producer
    /// threads to them yourself (see [`Engine::producer_cores`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use pinbus::{Config, Pinning};
    /// let config = Config {
    ///     pinning: Pinning::Auto,
    ///     producer_cores: vec![0],
    ///     ..Config::default()
    /// };
    /// config.validate()?; // worker 0 goes on the highest core other than 0
    /// # Ok::<(), pinbus::ConfigError>(())
    /// ```
    ///
    /// [`Engine::producer_cores`]: crate::Engine::producer_cores
    pub producer_cores: Vec<usize>,
    /// Options of named topics (default none): [`Engine::topic`] creates a
    /// topic listed here with these options instead of the defaults;
    /// [`Engine::topic_with`] keeps the options it is given. A configured
    /// `worker` must be below `workers`.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pinbus::{Backpressure, Config, Engine, TopicOptions};
    /// let mut config = Config::default();
    /// config.topics.insert(
    ///     "orders.created".to_owned(),
    ///     TopicOptions::default().worker(0).backpressure(Backpressure::Fail),
    /// );
    /// let engine = Engine::from_config(config)?;
    /// let orders = engine.topic::<u64>("orders.created")?; // worker 0, Fail
    /// # drop(orders);
    /// # Ok(()) }
    /// ```
    ///
    /// [`Engine::topic`]: crate::Engine::topic
    /// [`Engine::topic_with`]: crate::Engine::topic_with
    pub topics: BTreeMap<String, TopicOptions>,
    /// Resolution of the timer wheel behind delayed events and retries
    /// (default 1 ms; TOML key `timer_tick_us`, in microseconds): a timer
    /// fires within about one tick after its due time. From 1 µs to 1 s.
    ///
    /// Why these bounds:
    ///
    /// - A due time is rounded *up* to the end of its tick (a timer never
    ///   fires early), so the tick is the lateness every delayed event and
    ///   retry may get. Above 1 s that lateness swamps the delays it serves
    ///   (retry backoffs are milliseconds to seconds); with a tick of
    ///   `Duration::MAX` (about 584 years once in nanoseconds) every timer
    ///   waited for the end of the first tick, so timers fired only at
    ///   shutdown.
    /// - A coarse tick buys nothing: the timer thread does not wake once per
    ///   tick but sleeps until the next due tick (and not at all when nothing
    ///   is pending), and the wheel covers 2^36 ticks at any tick length
    ///   (about 19 hours of 1 µs ticks, 795 days of 1 ms ticks; later
    ///   timers wait in an overflow list), so long delays need no long tick.
    /// - Below 1 µs the OS cannot sleep precisely enough for the tick to
    ///   mean anything.
    ///
    /// Outside the range, [`validate`](Config::validate) returns
    /// [`ConfigError::TimerTick`] with the bounds.
    pub timer_tick: Duration,
    /// What shutdown does with delayed events and retries still waiting
    /// (default [`TimerShutdown::FireAllNow`]: nothing accepted is lost;
    /// TOML key `timer_shutdown`: `"fire-all-now"`, `"fire-due"` or
    /// `"drop"`).
    pub timer_shutdown: TimerShutdown,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            workers: 1,
            pinning: Pinning::None,
            idle: IdleStrategy::default(),
            idle_tuning: IdleTuning::default(),
            lane_capacity: 8192,
            drain_batch: 256,
            producer_slots: 16,
            worker_stack_size: None,
            producer_cores: Vec::new(),
            topics: BTreeMap::new(),
            timer_tick: crate::time::timer::DEFAULT_TICK,
            timer_shutdown: TimerShutdown::FireAllNow,
        }
    }
}

/// A validated configuration, with pinning resolved to cores.
#[derive(Debug)]
pub(crate) struct Resolved {
    pub(crate) config: Config,
    pub(crate) cores: Vec<Option<usize>>,
}

impl Config {
    /// Reads a configuration from the TOML file at `path` and validates it
    /// (as [`from_toml_str`](Config::from_toml_str)).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pinbus::{Config, Engine};
    /// let config = Config::from_toml_file("pinbus.toml")?;
    /// let engine = Engine::from_config(config)?;
    /// # drop(engine);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`ConfigError::ReadFile`] (with the path) if the file cannot be read,
    /// [`ConfigError::FileNotUtf8`] (with the path and the byte offset) if it
    /// is not UTF-8 text, otherwise as [`from_toml_str`](Config::from_toml_str).
    pub fn from_toml_file(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| ConfigError::ReadFile {
            path: path.to_owned(),
            source,
        })?;
        let text = match std::str::from_utf8(&bytes) {
            Ok(text) => text,
            Err(source) => {
                let offset = source.valid_up_to();
                // The bytes before `offset` are UTF-8 (`valid_up_to`): the
                // bad byte's line and column are counted there.
                let (line, column) = std::str::from_utf8(&bytes[..offset])
                    .map_or((1, 1), |valid| file::line_column(valid, offset));
                return Err(ConfigError::FileNotUtf8 {
                    path: path.to_owned(),
                    offset,
                    line,
                    column,
                    source,
                });
            }
        };
        Config::from_toml_str(text)
    }

    /// Parses a configuration from TOML text and validates it. Every key is
    /// optional (a missing key keeps its [`Default`]); unknown keys are
    /// errors. The format is described in `docs/tuning.md`.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pinbus::{Backpressure, Config, Engine, IdleStrategy, TopicOptions};
    /// let config = Config::from_toml_str(
    ///     r#"
    ///     workers = 2
    ///     idle = "backoff"
    ///     lane_capacity = 4096
    ///
    ///     [idle_tuning]
    ///     max_sleep_us = 200
    ///
    ///     [topics."orders.created"]
    ///     worker = 1
    ///     backpressure = "fail"
    ///     "#,
    /// )?;
    /// assert_eq!(config.idle, IdleStrategy::Backoff);
    /// assert_eq!(
    ///     config.topics["orders.created"],
    ///     TopicOptions::default().worker(1).backpressure(Backpressure::Fail),
    /// );
    ///
    /// let engine = Engine::from_config(config)?;
    /// let orders = engine.topic::<u64>("orders.created")?;
    /// assert_eq!(orders.subscribe(|_| ())?.worker(), 1);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// - [`ConfigError::TomlSyntax`]: not TOML (with line and column);
    /// - [`ConfigError::UnknownKey`]: a key this format lacks, with the valid
    ///   keys of its table;
    /// - [`ConfigError::WrongType`]: a value of the wrong type, with its key;
    /// - [`ConfigError::UnknownIdleStrategy`], [`ConfigError::UnknownPinning`],
    ///   [`ConfigError::UnknownBackpressure`],
    ///   [`ConfigError::UnknownTimerShutdown`]: a name that is not one of the
    ///   accepted ones;
    /// - any error of [`validate`](Config::validate).
    pub fn from_toml_str(s: &str) -> Result<Config, ConfigError> {
        let config = file::parse(s)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every setting; the error names the setting and what to change.
    ///
    /// # Examples
    ///
    /// ```
    /// use pinbus::{Config, ConfigError};
    /// assert!(Config::default().validate().is_ok());
    /// let config = Config { workers: 0, ..Config::default() };
    /// assert!(matches!(config.validate(), Err(ConfigError::ZeroWorkers)));
    /// ```
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] for the first invalid setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.resolve().map(drop)
    }

    pub(crate) fn resolve(&self) -> Result<Resolved, ConfigError> {
        if self.workers == 0 {
            return Err(ConfigError::ZeroWorkers);
        }
        if !(MIN_TIMER_TICK..=MAX_TIMER_TICK).contains(&self.timer_tick) {
            return Err(ConfigError::TimerTick {
                tick: self.timer_tick,
                min: MIN_TIMER_TICK,
                max: MAX_TIMER_TICK,
            });
        }
        if self.workers > MAX_WORKERS {
            return Err(ConfigError::TooManyWorkers {
                workers: self.workers,
                max: MAX_WORKERS,
            });
        }
        let capacity = self.lane_capacity;
        if !(MIN_LANE_CAPACITY..=MAX_LANE_CAPACITY).contains(&capacity) {
            return Err(ConfigError::CapacityOutOfRange {
                capacity,
                min: MIN_LANE_CAPACITY,
                max: MAX_LANE_CAPACITY,
            });
        }
        if !capacity.is_power_of_two() {
            return Err(ConfigError::CapacityNotPowerOfTwo {
                capacity,
                suggestion: capacity.next_power_of_two().min(MAX_LANE_CAPACITY),
            });
        }
        if !(1..=MAX_DRAIN_BATCH).contains(&self.drain_batch) {
            return Err(ConfigError::DrainBatch {
                batch: self.drain_batch,
                max: MAX_DRAIN_BATCH,
            });
        }
        if !(1..=MAX_PRODUCER_SLOTS).contains(&self.producer_slots) {
            return Err(ConfigError::ProducerSlots {
                slots: self.producer_slots,
                max: MAX_PRODUCER_SLOTS,
            });
        }
        for (name, options) in &self.topics {
            if let Some(reason) = crate::event::name::invalid_topic_name(name) {
                return Err(ConfigError::InvalidTopicName {
                    name: name.clone(),
                    reason,
                });
            }
            if let Some(worker) = options.worker.filter(|&w| w >= self.workers) {
                return Err(ConfigError::TopicWorker {
                    topic: name.clone(),
                    worker,
                    workers: self.workers,
                });
            }
        }
        let cores = pinning::resolve(&self.pinning, self.workers, &self.producer_cores)?;
        Ok(Resolved {
            config: self.clone(),
            cores,
        })
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn configured_topics_are_checked() {
        let mut c = Config::default();
        c.topics
            .insert("orders".to_owned(), TopicOptions::default().worker(1));
        assert!(matches!(
            c.validate(),
            Err(ConfigError::TopicWorker { ref topic, worker: 1, workers: 1 }) if topic == "orders"
        ));
        c.workers = 2;
        c.validate().unwrap();
        c.topics.insert("a..b".to_owned(), TopicOptions::default());
        assert!(matches!(
            c.validate(),
            Err(ConfigError::InvalidTopicName { ref name, .. }) if name == "a..b"
        ));
    }

    #[test]
    fn toml_and_builder_agree() {
        let from_toml =
            Config::from_toml_str("workers = 2\nproducer_slots = 4\nidle = \"yield\"\n").unwrap();
        let built = crate::Engine::builder()
            .workers(2)
            .producer_slots(4)
            .idle(IdleStrategy::Yield);
        assert_eq!(&from_toml, built.config());
    }
}
