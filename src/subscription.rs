//! Subscriptions: handler outcomes, the per-handler state a worker keeps, and
//! the `Subscription` handle that removes it again.

use std::fmt;

use crate::event::Event;
use crate::loom::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use crate::loom::sync::Arc;
use crate::worker::{self, Runtime};

mod sealed {
    pub trait Sealed {}
    impl Sealed for () {}
    impl<E: std::fmt::Display> Sealed for Result<(), E> {}
}

/// What a handler may return: `()` (always a success) or `Result<(), E>` with
/// `E: Display` (an `Err` counts as a failed delivery).
///
/// A panic in a handler is caught and counts as a failure as well; the worker
/// and every other subscription keep running.
pub trait HandlerOutcome: sealed::Sealed {
    /// `Ok(())`, or the error's text. (A `Box<str>` rather than a `String`:
    /// one pointer pair, returned in registers on every call.)
    fn into_outcome(self) -> Result<(), Box<str>>;
}

impl HandlerOutcome for () {
    #[inline(always)]
    fn into_outcome(self) -> Result<(), Box<str>> {
        Ok(())
    }
}

impl<E: fmt::Display> HandlerOutcome for Result<(), E> {
    #[inline(always)]
    fn into_outcome(self) -> Result<(), Box<str>> {
        self.map_err(|e| e.to_string().into_boxed_str())
    }
}

/// Options for [`Topic::subscribe_with`](crate::Topic::subscribe_with) and
/// [`Group::subscribe_with`](crate::Group::subscribe_with).
///
/// # Examples
///
/// ```
/// use pinbus::SubscribeOptions;
/// let opts = SubscribeOptions::new().name("audit-log").worker(0);
/// # let _ = opts;
/// ```
#[derive(Debug, Clone, Default)]
pub struct SubscribeOptions {
    pub(crate) name: Option<String>,
    pub(crate) worker: Option<usize>,
}

impl SubscribeOptions {
    /// Default options: a generated name, placed by the engine.
    pub fn new() -> Self {
        Self::default()
    }

    /// A name for the subscription (shown in stats and dead letters).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Runs the handler on worker `worker` instead of the topic's home worker
    /// (plain subscriptions) or the next worker in turn (group members).
    pub fn worker(mut self, worker: usize) -> Self {
        self.worker = Some(worker);
        self
    }
}

/// Counts for one subscription, as of the end of its worker's last batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubscriptionStats {
    /// Events the handler handled successfully.
    pub handled: u64,
    /// Events whose handler returned `Err` or panicked.
    pub failed: u64,
    /// Of `failed`, the panics.
    pub panicked: u64,
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
    handled: AtomicU64,
    failed: AtomicU64,
    panicked: AtomicU64,
}

impl SubShared {
    pub(crate) fn new(name: Option<String>, topic: &'static str) -> Self {
        let id = crate::loom::unique_id();
        SubShared {
            id,
            name: name.unwrap_or_else(|| format!("{topic}#{id}")),
            topic,
            removed: AtomicBool::new(false),
            handled: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            panicked: AtomicU64::new(0),
        }
    }

    pub(crate) fn stats(&self) -> SubscriptionStats {
        SubscriptionStats {
            handled: self.handled.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            panicked: self.panicked.load(Ordering::Relaxed),
        }
    }
}

/// The type-erased handler a worker calls.
pub(crate) type BoxedHandler<T> = Box<dyn FnMut(&Event<T>) -> Result<(), Box<str>> + Send>;

/// A handler as its worker keeps it.
pub(crate) struct HandlerEntry<T> {
    pub(crate) shared: Arc<SubShared>,
    /// The topic version this subscription started at; events stamped with an
    /// older version were published before it existed.
    since: u64,
    f: BoxedHandler<T>,
    handled: u64,
    failed: u64,
    panicked: u64,
}

impl<T> HandlerEntry<T> {
    pub(crate) fn new(shared: Arc<SubShared>, since: u64, f: BoxedHandler<T>) -> Self {
        HandlerEntry {
            shared,
            since,
            f,
            handled: 0,
            failed: 0,
            panicked: 0,
        }
    }

    /// Whether the handler should see an event stamped with `version`.
    #[inline(always)]
    pub(crate) fn accepts(&self, version: u64) -> bool {
        version >= self.since && self.is_live()
    }

    #[inline(always)]
    pub(crate) fn is_live(&self) -> bool {
        !self.shared.removed.load(Ordering::Relaxed)
    }

    /// Calls the handler and counts the outcome.
    #[inline(always)]
    pub(crate) fn call(&mut self, event: &Event<T>) {
        match (self.f)(event) {
            Ok(()) => self.handled += 1,
            Err(_error) => self.failed += 1,
        }
    }

    /// Counts a panic caught around [`call`](HandlerEntry::call).
    pub(crate) fn record_panic(&mut self) {
        self.failed += 1;
        self.panicked += 1;
    }

    /// Publishes the local counters (once per batch; single writer).
    pub(crate) fn publish_counts(&self) {
        self.shared.handled.store(self.handled, Ordering::Relaxed);
        self.shared.failed.store(self.failed, Ordering::Relaxed);
        self.shared.panicked.store(self.panicked, Ordering::Relaxed);
    }

    pub(crate) fn counts(&self) -> SubscriptionStats {
        SubscriptionStats {
            handled: self.handled,
            failed: self.failed,
            panicked: self.panicked,
        }
    }
}

/// Topic-side bookkeeping to undo once the worker has dropped the handler.
pub(crate) trait Detach: Send + Sync {
    fn detach(&self);
}

/// A live subscription. Dropping the handle leaves the subscription running
/// (until the engine shuts down); call [`unsubscribe`](Subscription::unsubscribe)
/// to remove it.
///
/// ## Unsubscribing
///
/// When `unsubscribe` returns, the handler is not running and will never be
/// called again, and it has been dropped on its worker. Called from inside a
/// handler on one of the engine's workers, `unsubscribe` cannot wait for a
/// worker (that could deadlock): the handler is then never *started* again
/// after the call, but a call already running on another worker may finish,
/// and the handler is dropped when its worker next processes commands.
pub struct Subscription {
    pub(crate) shared: Arc<SubShared>,
    pub(crate) runtime: Arc<Runtime>,
    pub(crate) worker: usize,
    pub(crate) detach: Box<dyn Detach>,
}

impl Subscription {
    /// Removes the subscription; see [Unsubscribing](#unsubscribing).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::sync::{Arc, atomic::{AtomicU64, Ordering}};
    /// use pinbus::Engine;
    /// let engine = Engine::builder().workers(1).build()?;
    /// let ticks = engine.topic::<u64>("ticks")?;
    /// let seen = Arc::new(AtomicU64::new(0));
    /// let s = seen.clone();
    /// let sub = ticks.subscribe(move |_| { s.fetch_add(1, Ordering::SeqCst); })?;
    /// ticks.publish_and_wait(1)?;
    /// sub.unsubscribe();
    /// ticks.publish_and_wait(2)?;
    /// assert_eq!(seen.load(Ordering::SeqCst), 1);
    /// # Ok(()) }
    /// ```
    pub fn unsubscribe(self) {
        // AcqRel: a second remover (shutdown) sees the first's work done.
        if self.shared.removed.swap(true, Ordering::AcqRel) {
            return;
        }
        let wait = !worker::on_worker_of(self.runtime.id);
        self.runtime
            .remove_subscription(self.worker, self.shared.id, wait);
        self.detach.detach();
    }

    /// The subscription's name (given, or generated as `topic#id`).
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The name of the topic subscribed to.
    pub fn topic(&self) -> &str {
        self.shared.topic
    }

    /// The worker the handler runs on.
    pub fn worker(&self) -> usize {
        self.worker
    }

    /// Handled/failed counts as of the end of the worker's last batch.
    pub fn stats(&self) -> SubscriptionStats {
        self.shared.stats()
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("name", &self.shared.name)
            .field("topic", &self.shared.topic)
            .field("worker", &self.worker)
            .finish_non_exhaustive()
    }
}
