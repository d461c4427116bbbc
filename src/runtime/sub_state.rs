//! One subscription's state shared by its handle, its worker and metrics:
//! the counters, the removal flag, the latency samples.

use hdrhistogram::Histogram;

use crate::loom::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use crate::loom::sync::Mutex;
use crate::observe::metrics::{LatencyMetrics, SubscriptionMetrics};

/// Counts for one subscription, as of the end of its worker's last batch.
///
/// # Examples
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let engine = pinbus::Engine::builder().workers(1).build()?;
/// let jobs = engine.topic::<u32>("jobs")?;
/// let sub = jobs.subscribe(|n| if **n == 0 { panic!("zero") } else { Ok::<(), &str>(()) })?;
/// jobs.publish_batch([0, 1, 2])?;
/// engine.shutdown(); // settles the per-batch counts
/// let stats = sub.stats();
/// assert_eq!((stats.handled, stats.failed, stats.panicked), (2, 1, 1));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubscriptionStats {
    /// Events the handler handled successfully.
    pub handled: u64,
    /// Events whose handler returned `Err` or panicked.
    pub failed: u64,
    /// Of `failed`, the panics.
    pub panicked: u64,
    /// Retries scheduled (each failed attempt with attempts left).
    pub retried: u64,
    /// Events given up on and sent to the dead letters.
    pub dead_lettered: u64,
    /// Calls longer than the slow threshold.
    pub slow: u64,
    /// Events a layer left out on purpose (a filter, a rate limit); see
    /// [`crate::layer`].
    pub skipped: u64,
}

/// State shared by a subscription's handle and its worker.
pub(crate) struct SubShared {
    pub(crate) id: u64,
    pub(crate) name: String,
    pub(crate) topic: &'static str,
    /// Set once by `unsubscribe` (or shutdown); the worker never calls the
    /// handler after it sees it. `Relaxed` on the dispatch side: the blocking
    /// `unsubscribe` synchronizes through its command instead, and for a
    /// handler unsubscribing from its own worker the flag is same-thread.
    pub(crate) removed: AtomicBool,
    /// Single-writer counters (the worker), published once per batch.
    pub(crate) handled: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) panicked: AtomicU64,
    pub(crate) skipped: AtomicU64,
    /// Written where they happen (worker, rarely): `Relaxed` counters.
    pub(crate) retried: AtomicU64,
    pub(crate) dead_lettered: AtomicU64,
    pub(crate) slow: AtomicU64,
    /// Publish→handle latency samples (`SubscribeOptions::latency_sampling`):
    /// one in `latency_every` calls; 0 = off.
    pub(crate) latency_every: u32,
    pub(crate) latency: Option<Mutex<Histogram<u64>>>,
}

impl SubShared {
    pub(crate) fn new(name: Option<String>, topic: &'static str, latency_every: u32) -> Self {
        let id = crate::loom::unique_id();
        // 1 ns .. 1 hour at 3 significant digits.
        let latency = (latency_every > 0)
            .then(|| Histogram::new_with_bounds(1, 3_600_000_000_000, 3).ok())
            .flatten()
            .map(Mutex::new);
        SubShared {
            id,
            name: name.unwrap_or_else(|| format!("{topic}#{id}")),
            topic,
            removed: AtomicBool::new(false),
            handled: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            panicked: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            retried: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
            slow: AtomicU64::new(0),
            latency_every: if latency.is_some() { latency_every } else { 0 },
            latency,
        }
    }

    pub(crate) fn stats(&self) -> SubscriptionStats {
        SubscriptionStats {
            handled: self.handled.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            panicked: self.panicked.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Acquire),
            dead_lettered: self.dead_lettered.load(Ordering::Acquire),
            slow: self.slow.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
        }
    }
}

impl SubShared {
    /// Reads `sub`'s counters (one load each; the worker publishes them once
    /// per batch).
    pub(crate) fn metrics(
        &self,
        group: Option<&str>,
        worker: usize,
        lag: usize,
    ) -> SubscriptionMetrics {
        let sub = self;
        let stats = sub.stats();
        let latency = sub
            .latency
            .as_ref()
            .and_then(|h| LatencyMetrics::read(&h.lock()));
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
            skipped: stats.skipped,
            lag,
            latency,
        }
    }
}

/// Whether a subscription that started at topic version `since`, and is
/// removed once `removed` is set, should see an event stamped with `version`.
///
/// `Relaxed`: a removal from another thread waits for the worker's next
/// command pass; one from the worker's own thread is ordered by program
/// order.
#[inline(always)]
pub(crate) fn sees(version: u64, since: u64, removed: &AtomicBool) -> bool {
    version >= since && !removed.load(Ordering::Relaxed)
}
