#![doc = include_str!("../README.md")]
#![deny(missing_docs, missing_debug_implementations, unsafe_op_in_unsafe_fn)]
#![deny(rustdoc::broken_intra_doc_links)]
#![warn(
    unreachable_pub,
    clippy::undocumented_unsafe_blocks,
    clippy::unnecessary_safety_comment
)]

// The folder tree is the architecture (design.md §4): each folder imports only
// the folders below it in this list (scripts/check_layers.py checks it).
//
// - `nats/`: the NATS JetStream bridge (feature `nats`), on the public API only.
// - `engine/`: `Engine`, its builder and TOML config, the registry, shutdown.
// - `topic/`: `Topic<T>`, options, the publish family, subscribe, groups,
//   wildcard patterns, delayed events, interceptors.
// - `runtime/`: the worker loop, parking and idle strategies, dispatch,
//   subscriptions, the retry path.
// - `failure/`: retry policies, dead letters.
// - `layer/`: handler middleware and rate limiting.
// - `observe/`: metrics.
// - `lane/`: a topic's rings toward one worker or group, and their side data.
// - `time/`: clocks, the timing wheel, the timer service.
// - `event/`: `Event<T>`, topic names, trace context, receipts.
// - `core/`: the ring, the snapshot cell, producer slots: all the `unsafe`.
// - `sys/`: fences, pinning, panic containment, the typed errors.
// - `loom/`: the sync shim (std or loom by `cfg(loom)`).
mod core;
mod engine;
mod event;
mod failure;
mod lane;
pub mod layer;
mod loom;
#[cfg(feature = "nats")]
pub mod nats;
mod observe;
mod runtime;
mod sys;
mod time;
mod topic;

pub use crate::engine::builder::EngineBuilder;
pub use crate::engine::config::{
    Config, MAX_DRAIN_BATCH, MAX_LANE_CAPACITY, MAX_PRODUCER_SLOTS, MAX_WORKERS, MIN_LANE_CAPACITY,
};
pub use crate::engine::instance::Engine;
pub use crate::engine::shutdown::ShutdownReport;
pub use crate::event::meta::Event;
pub use crate::event::receipt::Receipt;
pub use crate::event::trace::TraceId;
pub use crate::event::trace::{TraceContext, TraceGuard};
pub use crate::failure::dead_letter::{DeadLetter, DEAD_LETTER_KEEP};
pub use crate::failure::retry::RetryPolicy;
pub use crate::layer::outcome::{HandlerOutcome, ReplyOutcome};
pub use crate::observe::metrics::{
    LatencyMetrics, Metrics, SubscriptionMetrics, TopicMetrics, WorkerMetrics,
};
pub use crate::runtime::idle::{IdleStrategy, IdleTuning};
pub use crate::runtime::sub_state::SubscriptionStats;
pub use crate::runtime::subscription::{SubscribeOptions, Subscription};
pub use crate::sys::call_error::CallError;
pub use crate::sys::error::{ConfigError, PublishError, SubscribeError, TopicError, WaitError};
#[cfg(feature = "fault-injection")]
#[doc(hidden)]
pub use crate::sys::pinning::fault;
pub use crate::sys::pinning::Pinning;
pub use crate::time::clock::{Clock, ManualClock, SystemClock};
pub use crate::time::timer::TimerShutdown;
pub use crate::topic::delayed::Timer;
pub use crate::topic::groups::Group;
pub use crate::topic::handle::Topic;
pub use crate::topic::intercept;
pub use crate::topic::keyed::KeyedGroup;
pub use crate::topic::options::{Backpressure, TopicOptions};
pub use crate::topic::pattern::{Pattern, PatternGroup};
pub use crate::topic::publish_async::{Publish, PublishTracked};
pub use crate::topic::service::Service;
pub use crate::topic::stream::{EventStream, STREAM_BUFFER};

/// Internals exposed to the loom models in `loom-tests/` (only under
/// `--cfg loom`; not part of the API).
#[cfg(loom)]
#[doc(hidden)]
pub mod internals {
    pub use crate::core::attach::{Attached, Settle};
    pub use crate::core::producer::{ProducerSlots, SlotKind};
    pub use crate::core::ring::{channel, channel_carrying, Consumer, Probe, Producer};
    pub use crate::core::snapshot::SnapshotCell;
    pub use crate::core::token::thread_token;
    pub use crate::event::model::receipt_with_shares;
    pub use crate::lane::keyed::{ModelMember, ModelPartitions};
    pub use crate::time::timer::{TimerKey, TimerReport, TimerService, TimerShutdown, TimerTask};
}
