//! Subscriptions: handler outcomes, the per-handler state a worker keeps, and
//! the `Subscription` handle that removes it again.

use std::any::Any;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use crate::event::meta::Event;
use crate::event::trace;
use crate::failure::retry::RetryPolicy;
use crate::layer::{Disposition, Identity, Outcome, Stack};
use crate::loom::sync::atomic::Ordering;
use crate::loom::sync::Arc;
use crate::runtime::recovery::{self, Next, OnFailure};
use crate::runtime::solo::{Alone, BoxedHandler, Halt};
use crate::runtime::sub_state::{sees, SubShared, SubscriptionStats};
use crate::runtime::workers::Runtime;
use crate::sys::contain::contain;
use crate::sys::epoch::{burst_start, now_nanos};

/// Options for [`Topic::subscribe_with`](crate::Topic::subscribe_with) and
/// [`Group::subscribe_with`](crate::Group::subscribe_with).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use pinbus::{RetryPolicy, SubscribeOptions};
/// let opts = SubscribeOptions::new()
///     .name("audit-log")
///     .worker(0)
///     .retry(RetryPolicy::exponential(Duration::from_millis(10), Duration::from_secs(1)))
///     .slow_threshold(Duration::from_millis(50));
/// # let _ = opts;
/// ```
#[derive(Debug, Clone, Default)]
pub struct SubscribeOptions<L = Identity> {
    pub(crate) name: Option<String>,
    pub(crate) worker: Option<usize>,
    pub(crate) retry: Option<RetryPolicy>,
    pub(crate) slow: Option<Duration>,
    pub(crate) latency_every: u32,
    pub(crate) layers: L,
}

impl SubscribeOptions {
    /// Default options: a generated name, placed by the engine, no layers.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pinbus::SubscribeOptions;
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let jobs = engine.topic::<u32>("jobs")?;
    /// let sub = jobs.subscribe_with(|_| (), SubscribeOptions::new())?;
    /// assert!(sub.name().starts_with("jobs#")); // a generated name
    /// # Ok(()) }
    /// ```
    pub fn new() -> Self {
        Self::default()
    }
}

impl<L> SubscribeOptions<L> {
    /// A name for the subscription (shown in stats and dead letters).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pinbus::SubscribeOptions;
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let jobs = engine.topic::<u32>("jobs")?;
    /// let sub = jobs.subscribe_with(|_| (), SubscribeOptions::new().name("audit"))?;
    /// assert_eq!(sub.name(), "audit");
    /// # Ok(()) }
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Runs the handler on worker `worker` instead of the topic's home worker
    /// (plain subscriptions) or the next worker in turn (group members).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pinbus::SubscribeOptions;
    /// let engine = pinbus::Engine::builder().workers(2).build()?;
    /// let jobs = engine.topic::<u32>("jobs")?;
    /// let sub = jobs.subscribe_with(|_| (), SubscribeOptions::new().worker(1))?;
    /// assert_eq!(sub.worker(), 1);
    /// # Ok(()) }
    /// ```
    pub fn worker(mut self, worker: usize) -> Self {
        self.worker = Some(worker);
        self
    }

    /// Retries failed deliveries by `policy`, then dead-letters them
    /// (see [`RetryPolicy`] and [`Topic::dead_letters`]). A retry never
    /// blocks the lane: the event waits in the engine's timer wheel and comes
    /// back to this subscription alone, with [`Event::attempt`] incremented.
    ///
    /// Without a policy a failure is counted ([`SubscriptionStats::failed`])
    /// and the event is not delivered again.
    ///
    /// [`Topic::dead_letters`]: crate::Topic::dead_letters
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// use pinbus::{RetryPolicy, SubscribeError, SubscribeOptions};
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let jobs = engine.topic::<u32>("jobs")?;
    /// let retry = RetryPolicy::fixed(Duration::from_millis(1)).max_attempts(3);
    /// jobs.subscribe_with(|_| Err::<(), _>("down"), SubscribeOptions::new().retry(retry))?;
    /// let bad = RetryPolicy::fixed(Duration::from_millis(1)).max_attempts(0);
    /// let err = jobs.subscribe_with(|_| (), SubscribeOptions::new().retry(bad)).unwrap_err();
    /// assert!(matches!(err, SubscribeError::InvalidRetry { .. }));
    /// # Ok(()) }
    /// ```
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// Reports handler calls longer than `threshold`: counted in
    /// [`SubscriptionStats::slow`] and, with the `tracing` feature, logged as
    /// a warning. Costs two clock reads per call; off by default.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// use pinbus::SubscribeOptions;
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let jobs = engine.topic::<u32>("jobs")?;
    /// let opts = SubscribeOptions::new().slow_threshold(Duration::from_millis(1));
    /// let sub = jobs.subscribe_with(|_| std::thread::sleep(Duration::from_millis(2)), opts)?;
    /// jobs.publish(1)?;
    /// engine.shutdown();
    /// assert_eq!(sub.stats().slow, 1);
    /// # Ok(()) }
    /// ```
    pub fn slow_threshold(mut self, threshold: Duration) -> Self {
        self.slow = Some(threshold);
        self
    }

    /// Records the publish→handle latency of one event in every `every`
    /// (at least 1) in an HDR histogram, reported as percentiles by
    /// [`Engine::metrics`](crate::Engine::metrics). Off by default; when
    /// on, a sampled call costs a clock read and a histogram update under a
    /// lock only this subscription's worker and metrics readers take.
    ///
    /// The latency is exact for topics with
    /// [`TopicOptions::timestamps`](crate::TopicOptions::timestamps) on;
    /// otherwise the figure is the time from the start of the worker's busy
    /// burst (its last clock reading while idle) to the handler call.
    ///
    /// ```
    /// use pinbus::SubscribeOptions;
    /// let opts = SubscribeOptions::new().latency_sampling(64);
    /// # let _ = opts;
    /// ```
    pub fn latency_sampling(mut self, every: u32) -> Self {
        self.latency_every = every.max(1);
        self
    }

    /// Adds a middleware layer inside the ones added before: the first layer
    /// added sees each event first (see [`crate::layer`] for the contract).
    /// Layers compose with static dispatch: no allocation or indirect call
    /// per event beyond the one every subscription costs.
    ///
    /// ```
    /// use pinbus::layer::{Filter, RateLimit};
    /// use pinbus::{Event, SubscribeOptions};
    /// let opts = SubscribeOptions::new()
    ///     .layer(Filter::new(|ev: &Event<u32>| **ev != 0)) // outermost
    ///     .layer(RateLimit::per_second(1_000));           // then this
    /// # let _ = opts;
    /// ```
    pub fn layer<N>(self, layer: N) -> SubscribeOptions<Stack<L, N>> {
        let (base, layers) = self.split();
        SubscribeOptions {
            name: base.name,
            worker: base.worker,
            retry: base.retry,
            slow: base.slow,
            latency_every: base.latency_every,
            layers: Stack::new(layers, layer),
        }
    }

    /// The options without their layers, and the layers.
    pub(crate) fn split(self) -> (SubscribeOptions, L) {
        let SubscribeOptions {
            name,
            worker,
            retry,
            slow,
            latency_every,
            layers,
        } = self;
        (
            SubscribeOptions {
                name,
                worker,
                retry,
                slow,
                latency_every,
                layers: Identity,
            },
            layers,
        )
    }
}

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
    skipped: u64,
    /// Panics contained in the failure path (see `after_failure`).
    pub(crate) stray_panics: u64,
    /// Retries and dead letters (subscriptions with a retry policy).
    on_failure: Option<Box<dyn OnFailure<T>>>,
    /// The slow-handler threshold, if reports are on.
    slow: Option<Duration>,
    /// Slow reports or latency samples are on: calls take the instrumented
    /// path.
    instrumented: bool,
    /// Calls until the next latency sample.
    sample_in: u32,
}

impl<T> HandlerEntry<T> {
    pub(crate) fn new(shared: Arc<SubShared>, since: u64, f: BoxedHandler<T>) -> Self {
        HandlerEntry {
            since,
            f,
            handled: 0,
            failed: 0,
            panicked: 0,
            skipped: 0,
            stray_panics: 0,
            on_failure: None,
            slow: None,
            instrumented: shared.latency_every > 0,
            sample_in: shared.latency_every,
            shared,
        }
    }

    /// Adds failure handling and slow-call reports.
    pub(crate) fn with_recovery(
        mut self,
        on_failure: Option<Box<dyn OnFailure<T>>>,
        slow: Option<Duration>,
    ) -> Self {
        self.on_failure = on_failure;
        self.slow = slow;
        self.instrumented |= slow.is_some();
        self
    }

    /// Whether the handler should see an event stamped with `version`.
    #[inline(always)]
    pub(crate) fn accepts(&self, version: u64) -> bool {
        sees(version, self.since, &self.shared.removed)
    }

    #[inline(always)]
    pub(crate) fn is_live(&self) -> bool {
        !self.shared.removed.load(Ordering::Relaxed)
    }

    /// Calls the handler and counts the outcome; a failure goes on to the
    /// retry/dead-letter path. A panic unwinds out of here: see
    /// [`call_guarded`](HandlerEntry::call_guarded).
    #[inline(always)]
    pub(crate) fn call(&mut self, event: &Event<T>) {
        // While the handler runs, the event is this thread's trace context:
        // what it publishes joins the event's trace ([`trace`](crate::event::trace)).
        // The guard restores the outer context even if the handler panics.
        let _handling = trace::Handling::enter(
            event.topic,
            event.meta.salt,
            event.meta.seq,
            &event.meta.lineage,
        );
        self.call_in_context(event);
    }

    /// [`call`](HandlerEntry::call) for a caller that has already made
    /// `event` this thread's trace context (`trace::HandlingBatch`).
    #[inline(always)]
    pub(crate) fn call_in_context(&mut self, event: &Event<T>) {
        let outcome = if self.instrumented {
            self.call_instrumented(event)
        } else {
            self.f.handle(event)
        };
        match outcome {
            Ok(Disposition::Handled) => self.handled += 1,
            Ok(Disposition::Skipped) => self.skipped += 1,
            Err(error) => {
                self.failed += 1;
                self.after_failure(event, error);
            }
        }
    }

    /// Whether the drain may hand this handler whole batches
    /// ([`run_alone`](HandlerEntry::run_alone)): calls that need no
    /// per-call instrumentation.
    #[inline(always)]
    pub(crate) fn runs_alone(&self) -> bool {
        !self.instrumented
    }

    /// Runs the handler on every event of `run`, as the lane's only
    /// subscription on this worker; failures and panics take the same path
    /// as with [`call_in_context`](HandlerEntry::call_in_context). The caller
    /// has entered the batch's trace context.
    pub(crate) fn run_alone(&mut self, run: &mut Alone<'_, T>) {
        loop {
            match self.f.run_alone(run, self.since, &self.shared.removed) {
                Halt::Done => break,
                Halt::Failed(event, error) => {
                    self.failed += 1;
                    self.after_failure(&event, error);
                    event.drop_contained(&mut self.stray_panics);
                }
                Halt::Panicked(event, payload) => {
                    self.record_panic(&event, &*payload);
                    drop_payload(payload, &mut self.stray_panics);
                    event.drop_contained(&mut self.stray_panics);
                }
            }
        }
        self.handled += run.handled;
        self.skipped += run.skipped;
    }

    /// A call with slow-handler reports and/or a latency sample.
    #[inline(never)]
    fn call_instrumented(&mut self, event: &Event<T>) -> Outcome {
        if self.shared.latency_every > 0 {
            self.sample_in -= 1;
            if self.sample_in == 0 {
                self.sample_in = self.shared.latency_every;
                // Without a publisher's timestamp: since the burst began
                // (the dispatch clock, read lazily, would say ~0 here).
                let from = match event.meta.published {
                    0 => burst_start(),
                    stamped => stamped,
                };
                let waited = now_nanos().saturating_sub(from);
                if let Some(h) = &self.shared.latency {
                    h.lock().saturating_record(waited.max(1));
                }
            }
        }
        let Some(threshold) = self.slow else {
            return self.f.handle(event);
        };
        let start = Instant::now();
        let outcome = self.f.handle(event);
        let elapsed = start.elapsed();
        if elapsed > threshold {
            recovery::report_slow(&self.shared, elapsed, threshold);
        }
        outcome
    }

    /// The retry and dead-letter path. It runs user code — the event's
    /// `Clone` makes the retry copy or the dead letter — so a panic there is
    /// contained: it ends this event's failure handling (counted in
    /// `stray_panics`), never the worker's batch.
    #[cold]
    fn after_failure(&mut self, event: &Event<T>, error: Box<str>) {
        let Some(on_failure) = self.on_failure.as_mut() else {
            return;
        };
        let shared = &self.shared;
        let next = contain(&mut self.stray_panics, || {
            on_failure.failed(shared, event, error)
        });
        if let Some(Next::RetryNow(again)) = next {
            self.call_guarded(&again);
        }
    }

    /// [`call`](HandlerEntry::call) with a panic caught and counted.
    pub(crate) fn call_guarded(&mut self, event: &Event<T>) {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| self.call(event))) {
            self.record_panic(event, &*payload);
            drop_payload(payload, &mut self.stray_panics);
        }
    }

    /// Counts a panic caught around [`call`](HandlerEntry::call) and sends
    /// the event down the failure path.
    #[cold]
    pub(crate) fn record_panic(&mut self, event: &Event<T>, payload: &(dyn Any + Send)) {
        self.failed += 1;
        self.panicked += 1;
        if self.on_failure.is_some() {
            let text = match payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            {
                Some(msg) => format!("handler panicked: {msg}"),
                None => "handler panicked".to_owned(),
            };
            self.after_failure(event, text.into_boxed_str());
        }
    }

    /// Publishes the local counters (once per batch; single writer).
    pub(crate) fn publish_counts(&self) {
        self.shared.handled.store(self.handled, Ordering::Relaxed);
        self.shared.failed.store(self.failed, Ordering::Relaxed);
        self.shared.panicked.store(self.panicked, Ordering::Relaxed);
        self.shared.skipped.store(self.skipped, Ordering::Relaxed);
    }

    pub(crate) fn counts(&self) -> SubscriptionStats {
        SubscriptionStats {
            handled: self.handled,
            failed: self.failed,
            panicked: self.panicked,
            skipped: self.skipped,
            ..self.shared.stats()
        }
    }
}

pub(crate) use crate::sys::contain::drop_payload;

/// Topic-side bookkeeping to undo once the worker has dropped the handler.
pub(crate) trait Detach: Send + Sync {
    fn detach(&self);

    /// The subscription's counts, for a subscription made of parts (a
    /// pattern subscription: one part per matching topic); `None` reads the
    /// handle's own counters.
    fn stats(&self) -> Option<SubscriptionStats> {
        None
    }
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
///
/// # Examples
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let engine = pinbus::Engine::builder().workers(1).build()?;
/// let jobs = engine.topic::<u32>("jobs")?;
/// drop(jobs.subscribe(|_| ())?); // dropping the handle keeps it subscribed
/// jobs.publish(1)?;
/// assert_eq!(engine.shutdown().handled, 1);
/// # Ok(()) }
/// ```
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
        let wait = !crate::sys::context::on_worker_of(self.runtime.id);
        self.runtime
            .remove_subscription(self.worker, self.shared.id, wait);
        self.detach.detach();
    }

    /// The subscription's name (given, or generated as `topic#id`).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pinbus::SubscribeOptions;
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let jobs = engine.topic::<u32>("jobs")?;
    /// assert_eq!(jobs.subscribe_with(|_| (), SubscribeOptions::new().name("mailer"))?.name(), "mailer");
    /// # Ok(()) }
    /// ```
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The name of the topic subscribed to.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let sub = engine.topic::<u32>("jobs")?.subscribe(|_| ())?;
    /// assert_eq!(sub.topic(), "jobs");
    /// # Ok(()) }
    /// ```
    pub fn topic(&self) -> &str {
        self.shared.topic
    }

    /// The worker the handler runs on.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pinbus::{Engine, TopicOptions};
    /// let engine = Engine::builder().workers(2).build()?;
    /// let jobs = engine.topic_with::<u32>("jobs", TopicOptions::default().worker(1))?;
    /// assert_eq!(jobs.subscribe(|_| ())?.worker(), 1); // the topic's worker
    /// # Ok(()) }
    /// ```
    pub fn worker(&self) -> usize {
        self.worker
    }

    /// Handled/failed counts as of the end of the worker's last batch.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let jobs = engine.topic::<u32>("jobs")?;
    /// let sub = jobs.subscribe(|n| if **n % 2 == 0 { Ok(()) } else { Err("odd") })?;
    /// jobs.publish_batch(0..4)?;
    /// engine.shutdown(); // settles the per-batch counts
    /// assert_eq!((sub.stats().handled, sub.stats().failed), (2, 2));
    /// # Ok(()) }
    /// ```
    pub fn stats(&self) -> SubscriptionStats {
        self.detach.stats().unwrap_or_else(|| self.shared.stats())
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
