//! Metrics: a plain, serializable snapshot of an engine's counters
//! ([`Engine::metrics`](crate::Engine::metrics)).
//!
//! Nothing here is on the publish or dispatch path: a snapshot reads counters
//! the engine keeps anyway (the producer slots' published counts, each
//! subscription's per-batch counts, the dead-letter store) plus one counter,
//! `full`, that is touched only when a publish is refused for a full lane.
//!
//! Subscription counts lag by up to one batch: see [`Metrics`], "Lag".

use serde::Serialize;

use crate::subscription::SubShared;

/// Counters of a whole engine at one moment; see
/// [`Engine::metrics`](crate::Engine::metrics).
///
/// ## Lag
///
/// A snapshot is not atomic across topics or subscriptions, and a
/// subscription's counts are those its worker published at the end of its
/// last batch: they can lag the handler calls by up to one batch
/// (`drain_batch` events per lane). An event that
/// [`publish_and_wait`](crate::Topic::publish_and_wait) saw handled may
/// therefore show up in a snapshot taken a moment later.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Metrics {
    /// Every topic, dead-letter topics included, in name order.
    pub topics: Vec<TopicMetrics>,
    /// Every live subscription (not yet unsubscribed), grouped by topic in
    /// name order, in subscription order within a topic.
    pub subscriptions: Vec<SubscriptionMetrics>,
    /// Worker threads of the engine.
    pub workers: usize,
}

/// Counters of one topic, over the engine's whole life.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct TopicMetrics {
    /// The topic's name.
    pub name: String,
    /// Events accepted by a publish call (each counted once, however many
    /// subscriptions received it).
    pub published: u64,
    /// Publish calls refused with [`PublishError::Full`](crate::PublishError::Full)
    /// (`try_publish`, and `publish` or `publish_batch` under
    /// [`Backpressure::Fail`](crate::Backpressure::Fail)): one per refused
    /// call, however many events it handed back.
    pub full: u64,
    /// Lane copies of events that no subscription took because it was
    /// removed first (or, for a group, because its last member left), as far
    /// as the topic counted them; [`ShutdownReport::discarded`] adds what the
    /// workers dropped.
    ///
    /// [`ShutdownReport::discarded`]: crate::ShutdownReport::discarded
    pub discarded: u64,
    /// Dead letters produced for this topic's events (published to the
    /// dead-letter topic or kept).
    pub dead_letters: u64,
    /// Dead letters kept (no subscriber on the dead-letter topic) and not
    /// yet taken.
    pub dead_letters_kept: usize,
}

/// Counters of one live subscription, as of the end of its worker's last
/// batch (see [Lag](Metrics#lag)).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct SubscriptionMetrics {
    /// The subscription's name (given, or generated as `topic#id`).
    pub name: String,
    /// The topic it subscribes to.
    pub topic: String,
    /// The consumer group it is a member of, if any.
    pub group: Option<String>,
    /// The worker its handler runs on.
    pub worker: usize,
    /// Events the handler handled successfully.
    pub handled: u64,
    /// Events whose handler returned `Err` or panicked.
    pub failed: u64,
    /// Of `failed`, the panics.
    pub panicked: u64,
    /// Retries scheduled.
    pub retried: u64,
    /// Events given up on and sent to the dead letters.
    pub dead_lettered: u64,
    /// Calls longer than the slow threshold.
    pub slow: u64,
}

impl SubscriptionMetrics {
    /// Reads `sub`'s counters (one load each; the worker publishes them once
    /// per batch).
    pub(crate) fn read(sub: &SubShared, group: Option<&str>, worker: usize) -> Self {
        let stats = sub.stats();
        SubscriptionMetrics {
            name: sub.name.clone(),
            topic: sub.topic.to_owned(),
            group: group.map(str::to_owned),
            worker,
            handled: stats.handled,
            failed: stats.failed,
            panicked: stats.panicked,
            retried: stats.retried,
            dead_lettered: stats.dead_lettered,
            slow: stats.slow,
        }
    }
}
