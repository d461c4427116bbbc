#![doc = include_str!("../README.md")]
#![deny(missing_docs, missing_debug_implementations, unsafe_op_in_unsafe_fn)]
#![warn(
    unreachable_pub,
    clippy::undocumented_unsafe_blocks,
    clippy::unnecessary_safety_comment
)]

mod clock;
mod config;
mod contain;
mod dead_letter;
mod dispatch;
mod engine;
mod error;
mod event;
mod fence;
mod gcra;
pub mod intercept;
mod lane;
pub mod layer;
mod loom;
mod metrics;
// The NATS JetStream bridge (feature `nats`); its docs are in src/nats/mod.rs.
#[cfg(feature = "nats")]
pub mod nats;
mod pinning;
mod producer;
mod receipt;
mod recovery;
mod retry;
mod ring;
mod snapshot;
mod solo;
mod subscription;
// `fire_due`, `stats`, `external` and friends serve the unit tests and loom models.
#[cfg_attr(not(test), allow(dead_code))]
mod timer;
mod topic;
mod trace;
#[cfg_attr(not(test), allow(dead_code))]
mod wheel;
mod worker;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{
    Config, MAX_DRAIN_BATCH, MAX_LANE_CAPACITY, MAX_PRODUCER_SLOTS, MAX_WORKERS, MIN_LANE_CAPACITY,
};
pub use dead_letter::{DeadLetter, DEAD_LETTER_KEEP};
pub use engine::{Engine, EngineBuilder, ShutdownReport};
pub use error::{ConfigError, PublishError, SubscribeError, TopicError, WaitError};
pub use event::{Event, TraceId};
pub use metrics::{LatencyMetrics, Metrics, SubscriptionMetrics, TopicMetrics, WorkerMetrics};
#[cfg(feature = "fault-injection")]
#[doc(hidden)]
pub use pinning::fault;
pub use pinning::Pinning;
pub use receipt::Receipt;
pub use retry::RetryPolicy;
pub use subscription::{HandlerOutcome, SubscribeOptions, Subscription, SubscriptionStats};
pub use timer::TimerShutdown;
pub use topic::{Backpressure, Group, Timer, Topic, TopicOptions};
pub use trace::{TraceContext, TraceGuard};
pub use worker::{IdleStrategy, IdleTuning};

/// Internals exposed to the loom models in `loom-tests/` (only under
/// `--cfg loom`; not part of the API).
#[cfg(loom)]
#[doc(hidden)]
pub mod internals {
    pub use crate::producer::{thread_token, ProducerSlots, SlotKind};
    pub use crate::ring::{channel, Consumer, Probe, Producer};
    pub use crate::snapshot::SnapshotCell;
    pub use crate::timer::{TimerKey, TimerReport, TimerService, TimerShutdown, TimerTask};
}
