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

use hdrhistogram::Histogram;

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
///
/// # Examples
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let engine = pinbus::Engine::builder().workers(1).build()?;
/// let jobs = engine.topic::<u32>("jobs")?;
/// jobs.subscribe(|_| ())?;
/// jobs.publish_batch([1, 2, 3])?;
/// engine.shutdown(); // settles the per-batch counts
/// let m = engine.metrics();
/// assert_eq!((m.topics.len(), m.subscriptions.len(), m.workers.len()), (1, 1, 1));
/// assert_eq!(m.subscriptions[0].handled, 3);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Metrics {
    /// Every topic, dead-letter topics included, in name order.
    pub topics: Vec<TopicMetrics>,
    /// Every live subscription (not yet unsubscribed), grouped by topic in
    /// name order, in subscription order within a topic.
    pub subscriptions: Vec<SubscriptionMetrics>,
    /// Every worker thread of the engine, by index.
    pub workers: Vec<WorkerMetrics>,
    /// Topics a [`Pattern`](crate::Pattern) subscription matched by name but
    /// not by event type, so received nothing from: counted once per pattern
    /// subscription and topic, when the one meets the other.
    pub pattern_type_mismatches: u64,
}

/// How one worker spent its time.
///
/// # Examples
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let engine = pinbus::Engine::builder().workers(2).build()?;
/// let workers = engine.metrics().workers;
/// assert_eq!(workers.iter().map(|w| w.index).collect::<Vec<_>>(), [0, 1]);
/// assert!(workers.iter().all(|w| (0.0..=1.0).contains(&w.busy_share)));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct WorkerMetrics {
    /// The worker's index.
    pub index: usize,
    /// Nanoseconds since the worker started.
    pub uptime_ns: u64,
    /// Nanoseconds spent busy: from the first event of a burst to the moment
    /// the worker found nothing more to do. Updated when a burst ends, so a
    /// worker that never runs dry shows its last completed burst.
    pub busy_ns: u64,
    /// `busy_ns / uptime_ns`, between 0 and 1: the share of its time the
    /// worker spent handling events rather than idling (spinning, yielding
    /// or parked by its idle strategy).
    pub busy_share: f64,
}

/// Publish→handle latency percentiles of one subscription, from sampled
/// events (see
/// [`SubscribeOptions::latency_sampling`](crate::SubscribeOptions::latency_sampling)).
///
/// # Examples
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use pinbus::SubscribeOptions;
/// let engine = pinbus::Engine::builder().workers(1).build()?;
/// let jobs = engine.topic::<u32>("jobs")?;
/// jobs.subscribe_with(|_| (), SubscribeOptions::new().latency_sampling(1))?;
/// jobs.publish_batch(0..10)?;
/// engine.shutdown();
/// let latency = engine.metrics().subscriptions[0].latency.clone().ok_or("no samples")?;
/// assert_eq!(latency.samples, 10);
/// assert!(latency.p50_ns <= latency.max_ns);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct LatencyMetrics {
    /// Events sampled.
    pub samples: u64,
    /// Median, nanoseconds.
    pub p50_ns: u64,
    /// 90th percentile, nanoseconds.
    pub p90_ns: u64,
    /// 99th percentile, nanoseconds.
    pub p99_ns: u64,
    /// 99.9th percentile, nanoseconds.
    pub p999_ns: u64,
    /// Largest sample, nanoseconds.
    pub max_ns: u64,
}

impl LatencyMetrics {
    /// The percentiles of `h`, if it has samples.
    pub(crate) fn read(h: &Histogram<u64>) -> Option<Self> {
        (!h.is_empty()).then(|| LatencyMetrics {
            samples: h.len(),
            p50_ns: h.value_at_quantile(0.5),
            p90_ns: h.value_at_quantile(0.9),
            p99_ns: h.value_at_quantile(0.99),
            p999_ns: h.value_at_quantile(0.999),
            max_ns: h.max(),
        })
    }
}

/// Counters of one topic, over the engine's whole life.
///
/// # Examples
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let engine = pinbus::Engine::builder().workers(1).build()?;
/// let jobs = engine.topic::<u32>("jobs")?;
/// jobs.publish_batch([1, 2])?;
/// let refusing = jobs.intercept(|_: &mut u32| Err::<(), _>("closed"));
/// assert!(refusing.publish(3).is_err());
/// let topic = &engine.metrics().topics[0];
/// assert_eq!((topic.name.as_str(), topic.published, topic.rejected), ("jobs", 2, 1));
/// # Ok(()) }
/// ```
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
    /// Events publish interceptors refused
    /// ([`PublishError::Rejected`](crate::PublishError::Rejected)).
    pub rejected: u64,
    /// Dead letters produced for this topic's events (published to the
    /// dead-letter topic or kept).
    pub dead_letters: u64,
    /// Dead letters kept (no subscriber on the dead-letter topic) and not
    /// yet taken.
    pub dead_letters_kept: usize,
}

/// Counters of one live subscription, as of the end of its worker's last
/// batch (see [Lag](Metrics#lag)).
///
/// # Examples
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use pinbus::SubscribeOptions;
/// let engine = pinbus::Engine::builder().workers(1).build()?;
/// let jobs = engine.topic::<u32>("jobs")?;
/// jobs.subscribe_with(|n| if **n > 1 { Err("too big") } else { Ok(()) }, SubscribeOptions::new().name("audit"))?;
/// jobs.publish_batch([1, 2, 3])?;
/// engine.shutdown();
/// let sub = &engine.metrics().subscriptions[0];
/// assert_eq!((sub.name.as_str(), sub.topic.as_str(), sub.group.as_deref()), ("audit", "jobs", None));
/// assert_eq!((sub.handled, sub.failed), (1, 2));
/// # Ok(()) }
/// ```
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
    /// Events a layer left out on purpose (filters, rate limits).
    pub skipped: u64,
    /// About how many events wait in the subscription's lane (its worker's
    /// lane of the topic, or its group's lane), counting those of the batch
    /// being handled (their slots are freed when the batch ends): how far it
    /// lags the publishers. Shared by every subscription of the topic on
    /// that worker.
    pub lag: usize,
    /// Publish→handle latency, if sampling is on and has samples.
    pub latency: Option<LatencyMetrics>,
}

#[cfg(feature = "metrics")]
impl Metrics {
    /// Hands this snapshot to the [`metrics`](https://docs.rs/metrics) crate's
    /// global recorder, so any exporter (Prometheus, StatsD, ...) publishes
    /// it. Call it periodically (e.g. every second from a thread of yours);
    /// each call sets every value to the snapshot's.
    ///
    /// Names (labels in brackets):
    ///
    /// | name | kind | labels |
    /// |---|---|---|
    /// | `pinbus_topic_published_total`, `_full_total`, `_rejected_total`, `_discarded_total`, `_dead_letters_total` | counter | topic |
    /// | `pinbus_subscription_handled_total`, `_failed_total`, `_panicked_total`, `_retried_total`, `_dead_lettered_total`, `_slow_total`, `_skipped_total` | counter | topic, subscription, group |
    /// | `pinbus_subscription_lag` | gauge | topic, subscription, group |
    /// | `pinbus_subscription_latency_seconds` | gauge | topic, subscription, group, quantile (0.5, 0.9, 0.99, 0.999, 1) |
    /// | `pinbus_worker_busy_share` | gauge | worker |
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// engine.metrics().export(); // a no-op until a recorder is installed
    /// # Ok(()) }
    /// ```
    pub fn export(&self) {
        use ::metrics::{counter, gauge};
        for t in &self.topics {
            let topic = t.name.clone();
            for (name, v) in [
                ("pinbus_topic_published_total", t.published),
                ("pinbus_topic_full_total", t.full),
                ("pinbus_topic_rejected_total", t.rejected),
                ("pinbus_topic_discarded_total", t.discarded),
                ("pinbus_topic_dead_letters_total", t.dead_letters),
            ] {
                counter!(name, "topic" => topic.clone()).absolute(v);
            }
        }
        for s in &self.subscriptions {
            let labels = [
                ("topic", s.topic.clone()),
                ("subscription", s.name.clone()),
                ("group", s.group.clone().unwrap_or_default()),
            ];
            for (name, v) in [
                ("pinbus_subscription_handled_total", s.handled),
                ("pinbus_subscription_failed_total", s.failed),
                ("pinbus_subscription_panicked_total", s.panicked),
                ("pinbus_subscription_retried_total", s.retried),
                ("pinbus_subscription_dead_lettered_total", s.dead_lettered),
                ("pinbus_subscription_slow_total", s.slow),
                ("pinbus_subscription_skipped_total", s.skipped),
            ] {
                counter!(name, &labels).absolute(v);
            }
            gauge!("pinbus_subscription_lag", &labels).set(s.lag as f64);
            if let Some(l) = &s.latency {
                for (q, ns) in [
                    ("0.5", l.p50_ns),
                    ("0.9", l.p90_ns),
                    ("0.99", l.p99_ns),
                    ("0.999", l.p999_ns),
                    ("1", l.max_ns),
                ] {
                    let mut with_q = labels.to_vec();
                    with_q.push(("quantile", q.to_owned()));
                    gauge!("pinbus_subscription_latency_seconds", &with_q).set(ns as f64 / 1e9);
                }
            }
        }
        for w in &self.workers {
            gauge!("pinbus_worker_busy_share", "worker" => w.index.to_string()).set(w.busy_share);
        }
    }
}
