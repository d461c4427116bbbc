//! `Engine`: starts the workers, keeps the topic registry, shuts down.

use std::any::{Any, TypeId};
use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use crate::clock::{Clock, ManualClock, SystemClock};
use crate::config::Config;
use crate::error::{ConfigError, TopicError};
use crate::event::TopicName;
use crate::fence;
use crate::lane::lock;
use crate::loom::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use crate::loom::sync::{Arc, Mutex};
use crate::loom::thread::{self, JoinHandle};
use crate::metrics::{Metrics, WorkerMetrics};
use crate::pinning::Pinning;
use crate::timer::{TimerService, TimerShutdown};
use crate::topic::{Topic, TopicControl, TopicOptions, TopicShared};
use crate::worker::{
    self, IdleStrategy, IdleTuning, Runtime, StartGate, Totals, WorkerShared, DRAINING, EXITING,
    RUNNING,
};

/// What [`Engine::shutdown`] found: every count covers the engine's whole
/// life.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Events accepted by a publish call (each counted once, however many
    /// subscriptions received it).
    pub published: u64,
    /// Handler calls that returned success.
    pub handled: u64,
    /// Handler calls that returned `Err` or panicked.
    pub failed: u64,
    /// Of `failed`, the panics.
    pub panicked: u64,
    /// Lane copies of events that no subscription took because it was
    /// removed first (or, for a group, because its last member left).
    pub discarded: u64,
    /// Worker threads joined.
    pub workers: usize,
    /// Topics the engine had.
    pub topics: usize,
    /// Delayed events and retries that shutdown fired early or on time
    /// (by [`TimerShutdown`] policy).
    pub timers_fired: u64,
    /// Delayed events and retries that shutdown dropped unfired (policies
    /// `FireDue` and `Drop`).
    pub timers_dropped: u64,
    /// Retries that never ran: dropped at shutdown, or their subscription
    /// was removed first. (Included in `timers_dropped` when dropped from the
    /// wheel.)
    pub retries_dropped: u64,
    /// Events given up on after their last attempt (dead letters).
    pub dead_letters: u64,
    /// Time from the start of shutdown until the workers were joined.
    pub drain_time: Duration,
    /// False only when `shutdown` was called from inside a handler: intake is
    /// closed, but the drain completes on a later `shutdown` or on drop.
    pub complete: bool,
}

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
    config: Config,
    clock: Option<SharedClock>,
}

/// A clock the builder can clone and print.
#[derive(Clone)]
struct SharedClock(Arc<Box<dyn Clock>>);

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
    pub fn workers(mut self, workers: usize) -> Self {
        self.config.workers = workers;
        self
    }

    /// Core placement of the workers (default [`Pinning::None`]).
    pub fn pinning(mut self, pinning: Pinning) -> Self {
        self.config.pinning = pinning;
        self
    }

    /// What idle workers do (default [`IdleStrategy::Park`]).
    pub fn idle(mut self, idle: IdleStrategy) -> Self {
        self.config.idle = idle;
        self
    }

    /// Parameters of the idle strategies.
    pub fn idle_tuning(mut self, tuning: IdleTuning) -> Self {
        self.config.idle_tuning = tuning;
        self
    }

    /// Slots per lane ring, a power of two (default 8192).
    pub fn lane_capacity(mut self, capacity: usize) -> Self {
        self.config.lane_capacity = capacity;
        self
    }

    /// Events a worker takes from one ring before moving on (default 256).
    pub fn drain_batch(mut self, batch: usize) -> Self {
        self.config.drain_batch = batch;
        self
    }

    /// Producer threads per topic with a dedicated ring (default 16).
    pub fn producer_slots(mut self, slots: usize) -> Self {
        self.config.producer_slots = slots;
        self
    }

    /// Stack size of each worker thread, in bytes (default: the platform's).
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
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Validates the settings and starts the workers.
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
    /// [`TimerShutdown::FireAllNow`]); see [`ShutdownReport::timers_fired`].
    /// The example on [`TimerShutdown`] shows one policy at work.
    pub fn timer_shutdown(mut self, policy: TimerShutdown) -> Self {
        self.config.timer_shutdown = policy;
        self
    }
}

struct TopicEntry {
    type_id: TypeId,
    type_name: &'static str,
    options: TopicOptions,
    /// An `Arc<TopicShared<T>>`.
    typed: Box<dyn Any + Send + Sync>,
    control: Box<dyn TopicControl>,
}

struct Registry {
    /// Ordered, so shutdown visits topics in the same order every time (loom
    /// requires a deterministic model).
    topics: BTreeMap<String, TopicEntry>,
}

/// The event engine: a set of worker threads and the topics they serve.
///
/// `Engine` is `Send + Sync`; share it by reference or in an `Arc`.
///
/// ## Shutdown
///
/// [`shutdown`](Engine::shutdown) (or dropping the engine) stops intake from
/// outside the engine, lets every accepted event reach its handlers — handlers
/// may keep publishing until everything is quiet — then stops and joins the
/// workers, dropping each handler on its own worker. Nothing accepted is
/// dropped silently: the report counts what was handled and what had no
/// subscription left.
///
/// # Examples
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use pinbus::Engine;
/// let engine = Engine::builder().workers(1).build()?;
/// let greetings = engine.topic::<String>("greetings")?;
/// greetings.subscribe(|ev| println!("{}", **ev))?;
/// greetings.publish("hello".to_owned())?;
/// let report = engine.shutdown();
/// assert_eq!((report.published, report.handled), (1, 1));
/// # Ok(()) }
/// ```
pub struct Engine {
    runtime: Arc<Runtime>,
    hub: Arc<Hub>,
    joins: Mutex<Vec<JoinHandle<Totals>>>,
    /// Serializes shutdowns and keeps the final report.
    report: Mutex<Option<ShutdownReport>>,
    /// `Config::producer_cores`.
    producer_cores: Vec<usize>,
    /// See [`Engine::instance_id`].
    instance_id: u64,
}

/// The topic registry, shared by the engine and its topics (a topic opens
/// its dead-letter topic through it). Topics hold it and it holds topics:
/// the engine's drop breaks that cycle by emptying the registry.
pub(crate) struct Hub {
    runtime: Arc<Runtime>,
    registry: Mutex<Registry>,
    next_home: AtomicUsize,
    /// `Config::topics`: options for `topic()` to create these topics with.
    configured: BTreeMap<String, TopicOptions>,
}

impl Engine {
    /// A builder with default settings.
    pub fn builder() -> EngineBuilder {
        EngineBuilder::default()
    }

    /// Validates `config` and starts the workers.
    ///
    /// # Errors
    ///
    /// As [`EngineBuilder::build`].
    pub fn from_config(config: Config) -> Result<Engine, ConfigError> {
        Engine::start(config, Box::new(SystemClock))
    }

    fn start(config: Config, clock: Box<dyn Clock>) -> Result<Engine, ConfigError> {
        let resolved = config.resolve()?;
        let config = resolved.config;
        fence::init();
        let runtime = Arc::new(Runtime {
            id: crate::loom::unique_id(),
            workers: (0..config.workers)
                .map(|i| Arc::new(WorkerShared::new(i)))
                .collect(),
            idle: config.idle,
            tuning: config.idle_tuning,
            lane_capacity: config.lane_capacity,
            drain_batch: config.drain_batch,
            producer_slots: config.producer_slots,
            state: AtomicU8::new(RUNNING),
            quiet: Mutex::new(0),
            quiet_cv: crate::loom::sync::Condvar::new(),
            quiet_waiting: crate::loom::sync::atomic::AtomicBool::new(false),
            timers: TimerService::new(clock, config.timer_tick),
            timer_policy: config.timer_shutdown,
            inflight: AtomicU64::new(0),
            retries_dropped: AtomicU64::new(0),
        });
        let gate = Arc::new(StartGate::new(config.workers));
        let mut joins = Vec::with_capacity(config.workers);
        for (i, core) in resolved.cores.iter().copied().enumerate() {
            let (shared, rt, g) = (runtime.workers[i].clone(), runtime.clone(), gate.clone());
            let mut builder = thread::Builder::new().name(format!("pinbus-w{i}"));
            if let Some(bytes) = config.worker_stack_size {
                builder = builder.stack_size(bytes);
            }
            let spawned = builder.spawn(move || worker::worker_main(shared, rt, g, core));
            match spawned {
                Ok(handle) => joins.push(handle),
                Err(source) => {
                    let started = joins.len();
                    let _ = gate.wait(started);
                    stop_workers(&runtime, joins);
                    return Err(ConfigError::Spawn { worker: i, source });
                }
            }
        }
        if let Err((worker, core)) = gate.wait(joins.len()) {
            stop_workers(&runtime, joins);
            return Err(ConfigError::PinFailed { worker, core });
        }
        let runtime_seed = runtime.id;
        Ok(Engine {
            hub: Arc::new(Hub {
                runtime: runtime.clone(),
                registry: Mutex::new(Registry {
                    topics: BTreeMap::new(),
                }),
                next_home: AtomicUsize::new(0),
                configured: config.topics,
            }),
            runtime,
            joins: Mutex::new(joins),
            report: Mutex::new(None),
            producer_cores: config.producer_cores,
            instance_id: random_instance_id(runtime_seed),
        })
    }

    /// A random id for this engine, drawn when it was built: different for
    /// every engine, in this process and (with overwhelming likelihood) in
    /// any other. It names the engine outside the process — the NATS
    /// bridge starts every `Nats-Msg-Id` with it, so a restarted process
    /// never collides with the messages of its previous life.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let a = pinbus::Engine::builder().workers(1).build()?;
    /// let b = pinbus::Engine::builder().workers(1).build()?;
    /// assert_ne!(a.instance_id(), b.instance_id());
    /// # Ok(()) }
    /// ```
    pub fn instance_id(&self) -> u64 {
        self.instance_id
    }

    /// The number of worker threads.
    pub fn workers(&self) -> usize {
        self.runtime.workers.len()
    }

    /// The cores reserved for producer threads ([`Config::producer_cores`]),
    /// validated to exist and to be no worker's core. The engine does not
    /// pin producers itself: pin your threads there, for example with
    /// `core_affinity::set_for_current`.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pinbus::Config;
    /// let engine = pinbus::Engine::from_config(Config::from_toml_str("producer_cores = [0]")?)?;
    /// let topic = engine.topic::<u64>("ticks")?;
    /// let cores = engine.producer_cores().to_vec();
    /// std::thread::scope(|s| {
    ///     for &core in &cores {
    ///         let topic = topic.clone();
    ///         s.spawn(move || {
    ///             // Pin this producer thread to `core` here, then publish.
    ///             # let _ = core;
    ///             topic.publish(1).unwrap();
    ///         });
    ///     }
    /// });
    /// # Ok(()) }
    /// ```
    pub fn producer_cores(&self) -> &[usize] {
        &self.producer_cores
    }

    /// Opens the topic `name` for events of type `T`, creating it if it does
    /// not exist: with its options from [`Config::topics`] if it is listed
    /// there, otherwise with default options.
    ///
    /// Topic names are 1 to 255 bytes without whitespace, `*` or `>`, and
    /// without empty dot-separated parts (so they map onto NATS subjects).
    ///
    /// # Errors
    ///
    /// [`TopicError::TypeMismatch`] if the name exists with another type,
    /// [`TopicError::InvalidName`], or [`TopicError::Closed`] after shutdown.
    pub fn topic<T: Clone + Send + 'static>(&self, name: &str) -> Result<Topic<T>, TopicError> {
        Hub::open(&self.hub, name, None)
    }

    /// Opens or creates the topic `name` with `options`.
    ///
    /// # Errors
    ///
    /// As [`topic`](Engine::topic), plus [`TopicError::OptionsMismatch`] if the
    /// topic exists with other options and [`TopicError::NoSuchWorker`] for
    /// `TopicOptions::worker` beyond the worker count.
    pub fn topic_with<T: Clone + Send + 'static>(
        &self,
        name: &str,
        options: TopicOptions,
    ) -> Result<Topic<T>, TopicError> {
        Hub::open(&self.hub, name, Some(options))
    }

    /// A snapshot of the engine's counters: per topic (published, refused
    /// for a full lane or by an interceptor, discarded, dead letters), per
    /// live subscription (handled, failed, retried, skipped, lane lag,
    /// sampled latency percentiles) and per worker (busy share). With the
    /// `metrics` feature, [`Metrics::export`] hands it to the `metrics`
    /// crate facade.
    ///
    /// Reading it takes the topic registry's lock and each topic's
    /// subscription lock, never a lock or counter of the publish or dispatch
    /// path. Subscription counts are published by their worker at the end of
    /// each batch, so they can lag the handler calls by up to one batch; see
    /// [Lag](Metrics#lag). Works after shutdown too (the
    /// subscriptions are then still listed, with their final counts).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pinbus::{Engine, SubscribeOptions};
    /// let engine = Engine::builder().workers(1).build()?;
    /// let orders = engine.topic::<u32>("orders")?;
    /// orders.subscribe_with(|_| (), SubscribeOptions::new().name("audit"))?;
    /// orders.group("billing").subscribe(|_| Err::<(), _>("declined"))?;
    /// orders.publish_and_wait(1)?;
    /// engine.shutdown(); // settles the per-batch counts for this example
    ///
    /// let metrics = engine.metrics();
    /// assert_eq!(metrics.workers.len(), 1);
    /// assert_eq!((metrics.topics[0].name.as_str(), metrics.topics[0].published), ("orders", 1));
    /// let audit = &metrics.subscriptions[0];
    /// assert_eq!((audit.name.as_str(), audit.handled), ("audit", 1));
    /// let billing = &metrics.subscriptions[1];
    /// assert_eq!((billing.group.as_deref(), billing.failed), (Some("billing"), 1));
    /// # Ok(()) }
    /// ```
    pub fn metrics(&self) -> Metrics {
        let registry = lock(&self.hub.registry);
        let mut subscriptions = Vec::new();
        let topics = registry
            .topics
            .values()
            .map(|t| t.control.metrics(&mut subscriptions))
            .collect();
        Metrics {
            topics,
            subscriptions,
            workers: self
                .runtime
                .workers
                .iter()
                .map(|w| WorkerMetrics::read(w))
                .collect(),
        }
    }

    /// Stops intake, drains every lane through its handlers, and joins the
    /// workers; see [Shutdown](#shutdown). Idempotent: later calls return the
    /// same report.
    ///
    /// Called from inside a handler, it cannot wait for its own worker: it
    /// closes intake and returns a report with `complete: false`; the drain
    /// finishes on a later call or when the engine is dropped.
    pub fn shutdown(&self) -> ShutdownReport {
        if worker::on_worker_of(self.runtime.id) {
            // Neither the report lock (an outer shutdown may hold it while it
            // waits for this worker) nor the grace period (an external
            // producer may be blocked on this worker's lane): only close
            // intake.
            self.close_intake();
            return ShutdownReport {
                published: self.sum(|c| c.published()),
                workers: self.workers(),
                topics: lock(&self.hub.registry).topics.len(),
                complete: false,
                ..ShutdownReport::default()
            };
        }
        let mut slot = lock(&self.report);
        if let Some(report) = slot.as_ref() {
            return report.clone();
        }
        let start = Instant::now();
        // Timers first, while intake is open: delayed events fired now are
        // published normally, retries fired now go to their workers (and
        // shutdown waits for them below, `Runtime::inflight`).
        let timers = self.runtime.timers.shutdown(self.runtime.timer_policy);
        self.close_intake();
        // Grace period (`producer.rs`): every publish that has not marked its
        // slot active yet will see the draining snapshot; wait for the rest.
        fence::heavy();
        for t in lock(&self.hub.registry).topics.values() {
            t.control.wait_external_idle();
        }
        for w in &self.runtime.workers {
            w.unpark();
        }
        self.await_quiescence();
        {
            let registry = lock(&self.hub.registry);
            self.runtime.state.store(EXITING, Ordering::Release);
            for t in registry.topics.values() {
                t.control.set_state(EXITING);
            }
        }
        let joins = std::mem::take(&mut *lock(&self.joins));
        let totals = stop_workers(&self.runtime, joins);
        let report = ShutdownReport {
            published: self.sum(|c| c.published()),
            handled: totals.handled,
            failed: totals.failed,
            panicked: totals.panicked,
            discarded: totals.discarded + self.sum(|c| c.discarded()),
            timers_fired: timers.fired as u64,
            timers_dropped: timers.dropped as u64,
            retries_dropped: self.runtime.retries_dropped.load(Ordering::Relaxed),
            dead_letters: self.sum(|c| c.dead_letters()),
            workers: self.workers(),
            topics: lock(&self.hub.registry).topics.len(),
            drain_time: start.elapsed(),
            complete: true,
        };
        *slot = Some(report.clone());
        report
    }

    fn sum(&self, f: impl Fn(&dyn TopicControl) -> u64) -> u64 {
        lock(&self.hub.registry)
            .topics
            .values()
            .map(|t| f(&*t.control))
            .sum()
    }

    /// Closes external intake: publishes from outside the engine now fail.
    fn close_intake(&self) {
        let registry = lock(&self.hub.registry);
        if self.runtime.state() != RUNNING {
            return;
        }
        self.runtime.state.store(DRAINING, Ordering::Release);
        for t in registry.topics.values() {
            t.control.set_state(DRAINING);
        }
    }

    /// Waits until no worker is busy and no lane holds an event (`worker.rs`,
    /// "Quiescence"). Workers bump an event count whenever they turn idle while
    /// the engine drains; between checks this waits for that count to change
    /// rather than polling.
    fn await_quiescence(&self) {
        let epochs = |rt: &Runtime| -> Vec<u64> { rt.workers.iter().map(|w| w.epoch()).collect() };
        self.runtime.announce_quiet_waiter();
        loop {
            // Read the count before checking: an idle transition after this
            // read makes the wait below return at once.
            let seen = self.runtime.quiet_generation();
            let before = epochs(&self.runtime);
            // Retries in flight first: one that ran published before it was
            // counted done (SeqCst both sides), so the lane check below sees
            // what it published.
            let retrying = self.runtime.inflight.load(Ordering::SeqCst) > 0;
            if !retrying && before.iter().all(|e| e % 2 == 1) {
                let drained = lock(&self.hub.registry)
                    .topics
                    .values()
                    .all(|t| t.control.is_drained());
                if drained && epochs(&self.runtime) == before {
                    return;
                }
            }
            // Not quiet: a busy worker will turn idle (bumping the count), an
            // idle one with queued events will be woken by their producer and
            // turn busy, then idle.
            self.runtime.wait_quiet_change(seen);
        }
    }
}

impl Hub {
    /// Opens or creates a topic (`Engine::topic`, `Engine::topic_with`).
    pub(crate) fn open<T: Clone + Send + 'static>(
        this: &Arc<Self>,
        name: &str,
        options: Option<TopicOptions>,
    ) -> Result<Topic<T>, TopicError> {
        if let Some(reason) = invalid_topic_name(name) {
            return Err(TopicError::InvalidName {
                name: name.to_owned(),
                reason,
            });
        }
        let workers = this.runtime.workers.len();
        if let Some(w) = options
            .as_ref()
            .and_then(|o| o.worker)
            .filter(|&w| w >= workers)
        {
            return Err(TopicError::NoSuchWorker { worker: w, workers });
        }
        let mut registry = lock(&this.registry);
        if this.runtime.state() != RUNNING {
            return Err(TopicError::Closed);
        }
        if let Some(entry) = registry.topics.get(name) {
            if entry.type_id != TypeId::of::<T>() {
                return Err(TopicError::TypeMismatch {
                    name: name.to_owned(),
                    existing: entry.type_name,
                    requested: std::any::type_name::<T>(),
                });
            }
            if options.as_ref().is_some_and(|o| *o != entry.options) {
                return Err(TopicError::OptionsMismatch {
                    name: name.to_owned(),
                });
            }
            return match entry.typed.downcast_ref::<Arc<TopicShared<T>>>() {
                Some(shared) => Ok(Topic::from_shared(shared.clone())),
                // Same TypeId, so the downcast cannot fail.
                None => Err(TopicError::TypeMismatch {
                    name: name.to_owned(),
                    existing: entry.type_name,
                    requested: std::any::type_name::<T>(),
                }),
            };
        }
        let options = options
            .or_else(|| this.configured.get(name).cloned())
            .unwrap_or_default();
        let home = options
            .worker
            .unwrap_or_else(|| this.next_home.fetch_add(1, Ordering::Relaxed) % workers);
        let shared = Arc::new(TopicShared::<T>::new(
            TopicName::intern(name),
            options.clone(),
            this.runtime.clone(),
            this.clone(),
            home,
        ));
        registry.topics.insert(
            name.to_owned(),
            TopicEntry {
                type_id: TypeId::of::<T>(),
                type_name: std::any::type_name::<T>(),
                options,
                typed: Box::new(shared.clone()),
                control: Box::new(shared.clone()),
            },
        );
        Ok(Topic::from_shared(shared))
    }
}

/// Tells every worker to exit, wakes them, joins them, and adds up their
/// totals.
fn stop_workers(runtime: &Runtime, joins: Vec<JoinHandle<Totals>>) -> Totals {
    runtime.state.store(EXITING, Ordering::Release);
    for w in &runtime.workers {
        w.unpark();
    }
    let mut totals = Totals::default();
    for j in joins {
        if let Ok(t) = j.join() {
            totals += t;
        }
    }
    totals
}

/// Why a topic name is refused, if it is.
pub(crate) fn invalid_topic_name(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("it is empty; give the topic a name such as \"orders.created\"")
    } else if name.len() > 255 {
        Some("it is longer than 255 bytes")
    } else if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("it contains whitespace or control characters")
    } else if name.contains(['*', '>']) {
        Some("'*' and '>' are reserved for subscription wildcards")
    } else if name.split('.').any(str::is_empty) {
        Some("it has an empty dot-separated part (a leading, trailing or doubled '.')")
    } else {
        None
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.shutdown();
        // Topics hold the hub and the hub holds topics: break the cycle.
        lock(&self.hub.registry).topics.clear();
    }
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("id", &self.runtime.id)
            .field("workers", &self.workers())
            .field("idle", &self.runtime.idle)
            .finish_non_exhaustive()
    }
}

/// A random 64-bit id: the process's random hash keys mixed with the wall
/// clock, the process id and `seed` (unique within the process).
fn random_instance_id(seed: u64) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    h.write_u64(seed);
    h.finish()
}
