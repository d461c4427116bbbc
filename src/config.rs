//! `Config`: everything an engine is built from, and its validation.

use crate::error::ConfigError;
use crate::pinning::{self, Pinning};
use crate::worker::{IdleStrategy, IdleTuning};

/// Largest accepted worker count.
pub const MAX_WORKERS: usize = 1024;
/// Smallest accepted lane capacity.
pub const MIN_LANE_CAPACITY: usize = 1;
/// Largest accepted lane capacity (2^24 slots per ring).
pub const MAX_LANE_CAPACITY: usize = 1 << 24;
/// Largest accepted `drain_batch`.
pub const MAX_DRAIN_BATCH: usize = 1 << 16;
/// Largest accepted `producer_slots`.
pub const MAX_PRODUCER_SLOTS: usize = 1024;

/// The settings of an engine. Build one with [`EngineBuilder`] (or, in the
/// tuning issue's format, from TOML); [`Engine::from_config`] validates it.
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
    /// Checks every setting; the error names the setting and what to change.
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
        let cores = pinning::resolve(&self.pinning, self.workers)?;
        Ok(Resolved {
            config: self.clone(),
            cores,
        })
    }
}
