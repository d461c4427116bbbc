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
use crate::loom::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use crate::loom::sync::{Arc, Mutex, MutexGuard};
use crate::loom::thread::{self, JoinHandle};
use crate::metrics::{Metrics, WorkerMetrics};
use crate::pinning::Pinning;
use crate::timer::{TimerService, TimerShutdown};
use crate::topic::{dead_letter_name, Topic, TopicControl, TopicOptions, TopicShared};
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
    /// Panics in user code outside a handler call that the workers caught
    /// and went on from: a handler's `Drop`, an event's `Clone` while a
    /// retry copy or dead letter was made, an event's `Drop`.
    pub stray_panics: u64,
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
    /// Whether everything finished: every accepted event handled or counted,
    /// the workers joined. False when `shutdown` was called from inside a
    /// handler, or when [`Engine::shutdown_timeout`] ran out of time: intake
    /// is closed, the drain goes on and completes on a later `shutdown` or
    /// on drop. An incomplete report counts only `published`, `workers` and
    /// `topics`.
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

/// A topic name of the engine: its type and options, and the topic while it
/// lives. A freed topic leaves its name behind (a few dozen bytes), so the
/// name keeps its type and options for the engine's life: opening it again
/// with another type is still [`TopicError::TypeMismatch`].
struct TopicEntry {
    type_id: TypeId,
    type_name: &'static str,
    options: TopicOptions,
    /// `None` once the topic was freed.
    live: Option<LiveTopic>,
}

struct LiveTopic {
    /// An `Arc<TopicShared<T>>`.
    typed: Box<dyn Any + Send + Sync>,
    control: Box<dyn TopicControl>,
}

impl Registry {
    fn live(&self) -> impl Iterator<Item = &LiveTopic> {
        self.topics.values().filter_map(|t| t.live.as_ref())
    }
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
/// Whatever a handler calls on the engine meanwhile — [`topic`](Engine::topic),
/// [`metrics`](Engine::metrics), subscribe, publish, shutdown, or dropping
/// the last `Arc<Engine>` — shutdown does not deadlock with it: it holds no
/// lock of the engine's while it waits. Dropped inside one of its own
/// handlers, the engine finishes its shutdown on a thread of its own (the
/// worker cannot wait for itself).
/// [`shutdown_timeout`](Engine::shutdown_timeout) bounds the wait.
///
/// ## Memory
///
/// A topic whose last handle ([`Topic`], [`Group`](crate::Group), a pending
/// delayed event) is dropped while it has no subscription and no kept dead
/// letters is freed, and so are a worker's lanes that no subscription uses
/// any more: a worker's pass costs what its live lanes cost. The counts of a
/// freed topic stay in the [`ShutdownReport`]. Opening the name again
/// creates a fresh topic.
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
    inner: Arc<Inner>,
    /// `Config::producer_cores`.
    producer_cores: Vec<usize>,
    /// See [`Engine::instance_id`].
    instance_id: u64,
}

/// What shutdown needs: shared with the thread that finishes a shutdown the
/// engine's own handler started by dropping it.
struct Inner {
    runtime: Arc<Runtime>,
    hub: Arc<Hub>,
    joins: Mutex<Vec<JoinHandle<Totals>>>,
    /// Serializes shutdowns and keeps what they found.
    shutdown: Mutex<ShutdownState>,
}

#[derive(Default)]
struct ShutdownState {
    /// When the first shutdown started.
    started: Option<Instant>,
    /// What the timer service's shutdown fired and dropped (it runs once).
    timers: Option<(u64, u64)>,
    /// The final report, once a shutdown completed.
    report: Option<ShutdownReport>,
    /// A `shutdown_timeout` gave up: dropping the engine does not wait again.
    gave_up: bool,
}

/// The topic registry, shared by the engine and its topics (a topic opens
/// its dead-letter topic through it, and leaves it when it is freed). Topics
/// hold it and it holds topics: a freed topic leaves the registry, and the
/// engine's drop empties it.
///
/// Lock order: the registry's lock before any topic's `control` lock, and no
/// user code runs under it (removed entries are dropped after it is
/// released).
pub(crate) struct Hub {
    runtime: Arc<Runtime>,
    registry: Mutex<Registry>,
    next_home: AtomicUsize,
    /// `Config::topics`: options for `topic()` to create these topics with.
    configured: BTreeMap<String, TopicOptions>,
    /// Counts of the topics freed so far (added when each is dropped).
    pub(crate) freed: FreedCounts,
    /// Random per engine: mixed into every topic's trace-id salt.
    pub(crate) trace_seed: u64,
}

/// What freed topics had counted (for the shutdown report). `Relaxed`
/// statistics: read after the workers are joined.
#[derive(Default)]
pub(crate) struct FreedCounts {
    pub(crate) published: AtomicU64,
    pub(crate) discarded: AtomicU64,
    pub(crate) dead_letters: AtomicU64,
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
        let instance_id = random_instance_id(runtime.id);
        Ok(Engine {
            inner: Arc::new(Inner {
                hub: Arc::new(Hub {
                    runtime: runtime.clone(),
                    registry: Mutex::new(Registry {
                        topics: BTreeMap::new(),
                    }),
                    next_home: AtomicUsize::new(0),
                    configured: config.topics,
                    freed: FreedCounts::default(),
                    trace_seed: random_instance_id(instance_id),
                }),
                runtime,
                joins: Mutex::new(joins),
                shutdown: Mutex::new(ShutdownState::default()),
            }),
            producer_cores: config.producer_cores,
            instance_id,
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
        self.inner.runtime.workers.len()
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
        Hub::open(&self.inner.hub, name, None)
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
        Hub::open(&self.inner.hub, name, Some(options))
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
    /// subscriptions are then still listed, with their final counts). Freed
    /// topics (see [Memory](#memory)) are not listed.
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
        let mut subscriptions = Vec::new();
        let topics = (self.inner.hub.controls().iter())
            .map(|c| c.metrics(&mut subscriptions))
            .collect();
        Metrics {
            topics,
            subscriptions,
            workers: (self.inner.runtime.workers.iter())
                .map(|w| WorkerMetrics::read(w))
                .collect(),
        }
    }

    /// Stops intake, drains every lane through its handlers, and joins the
    /// workers; see [Shutdown](#shutdown). Idempotent: once a shutdown has
    /// completed, later calls return the same report.
    ///
    /// Called from inside a handler, it cannot wait for its own worker: it
    /// closes intake and returns a report with `complete: false`; the drain
    /// finishes on a later call or when the engine is dropped.
    pub fn shutdown(&self) -> ShutdownReport {
        self.inner.shutdown(None)
    }

    /// [`shutdown`](Engine::shutdown), waiting at most about `timeout`: if
    /// producers blocked on full lanes or handlers have not finished by then,
    /// it returns a report with `complete: false` (intake stays closed and
    /// the workers keep draining). A later [`shutdown`](Engine::shutdown)
    /// waits for the rest; dropping the engine after an incomplete
    /// `shutdown_timeout` does not wait again: a background thread joins the
    /// workers once they finish.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let jobs = engine.topic::<u32>("jobs")?;
    /// jobs.subscribe(|_| ())?;
    /// jobs.publish(1)?;
    /// let report = engine.shutdown_timeout(Duration::from_secs(5));
    /// assert!(report.complete);
    /// assert_eq!(report.handled, 1);
    /// # Ok(()) }
    /// ```
    pub fn shutdown_timeout(&self, timeout: Duration) -> ShutdownReport {
        self.inner.shutdown(Some(Instant::now() + timeout))
    }
}

impl Inner {
    fn sum(&self, f: impl Fn(&dyn TopicControl) -> u64) -> u64 {
        self.hub.controls().iter().map(|c| f(&**c)).sum()
    }

    /// The report of a shutdown that could not finish: what is known so far.
    fn incomplete(&self) -> ShutdownReport {
        ShutdownReport {
            published: self.sum(|c| c.published())
                + self.hub.freed.published.load(Ordering::Relaxed),
            workers: self.runtime.workers.len(),
            topics: self.hub.registry.lock().topics.len(),
            complete: false,
            ..ShutdownReport::default()
        }
    }

    /// Shutdown, waiting until `deadline` at most (none: until done).
    fn shutdown(&self, deadline: Option<Instant>) -> ShutdownReport {
        if worker::on_worker_of(self.runtime.id) {
            // Neither the shutdown lock (an outer shutdown may hold it while
            // it waits for this worker) nor the grace period (an external
            // producer may be blocked on this worker's lane): only close
            // intake.
            self.close_intake();
            return self.incomplete();
        }
        let Some(mut state) = lock_until(&self.shutdown, deadline) else {
            return self.incomplete();
        };
        if let Some(report) = state.report.as_ref() {
            return report.clone();
        }
        let start = *state.started.get_or_insert_with(Instant::now);
        // Timers first, while intake is open: delayed events fired now are
        // published normally, retries fired now go to their workers (and
        // shutdown waits for them below, `Runtime::inflight`).
        let (fired, dropped) = *state.timers.get_or_insert_with(|| {
            let t = self.runtime.timers.shutdown(self.runtime.timer_policy);
            (t.fired as u64, t.dropped as u64)
        });
        self.close_intake();
        // Grace period (`producer.rs`): every publish that has not marked its
        // slot active yet will see the draining snapshot; wait for the rest.
        // No lock is held while waiting: a handler may open topics or read
        // metrics meanwhile.
        fence::heavy();
        let controls = self.hub.controls();
        for c in &controls {
            if !c.wait_external_idle(deadline) {
                state.gave_up = true;
                return self.incomplete();
            }
        }
        for w in &self.runtime.workers {
            w.unpark();
        }
        if !self.await_quiescence(deadline) {
            state.gave_up = true;
            return self.incomplete();
        }
        self.runtime.state.store(EXITING, Ordering::Release);
        for c in self.hub.controls() {
            c.set_state(EXITING);
        }
        let joins = std::mem::take(&mut *self.joins.lock());
        let totals = stop_workers(&self.runtime, joins);
        let freed = &self.hub.freed;
        let report = ShutdownReport {
            published: self.sum(|c| c.published()) + freed.published.load(Ordering::Relaxed),
            handled: totals.handled,
            failed: totals.failed,
            panicked: totals.panicked,
            stray_panics: totals.stray_panics,
            discarded: totals.discarded
                + self.sum(|c| c.discarded())
                + freed.discarded.load(Ordering::Relaxed),
            timers_fired: fired,
            timers_dropped: dropped,
            retries_dropped: self.runtime.retries_dropped.load(Ordering::Relaxed),
            dead_letters: self.sum(|c| c.dead_letters())
                + freed.dead_letters.load(Ordering::Relaxed),
            workers: self.runtime.workers.len(),
            topics: self.hub.registry.lock().topics.len(),
            drain_time: start.elapsed(),
            complete: true,
        };
        state.report = Some(report.clone());
        report
    }

    /// Closes external intake: publishes from outside the engine now fail.
    fn close_intake(&self) {
        let registry = self.hub.registry.lock();
        if self.runtime.state() != RUNNING {
            return;
        }
        self.runtime.state.store(DRAINING, Ordering::Release);
        for t in registry.live() {
            t.control.set_state(DRAINING);
        }
    }

    /// Waits until no worker is busy and no lane holds an event (`worker.rs`,
    /// "Quiescence"), or until `deadline`; returns whether it got there.
    /// Workers bump an event count whenever they turn idle while the engine
    /// drains; between checks this waits for that count to change rather
    /// than polling.
    fn await_quiescence(&self, deadline: Option<Instant>) -> bool {
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
                let drained = self.hub.controls().iter().all(|c| c.is_drained());
                if drained && epochs(&self.runtime) == before {
                    return true;
                }
            }
            // Not quiet: a busy worker will turn idle (bumping the count), an
            // idle one with queued events will be woken by their producer and
            // turn busy, then idle.
            if !self.runtime.wait_quiet_change(seen, deadline) {
                return false;
            }
        }
    }
}

/// Locks `m`, giving up at `deadline` (none: waits as long as it takes).
fn lock_until<T>(m: &Mutex<T>, deadline: Option<Instant>) -> Option<MutexGuard<'_, T>> {
    let Some(deadline) = deadline else {
        return Some(m.lock());
    };
    loop {
        if let Some(guard) = m.try_lock() {
            return Some(guard);
        }
        if Instant::now() >= deadline {
            return None;
        }
        crate::loom::sleep(Duration::from_millis(1));
    }
}

impl Hub {
    /// The registry's topics, handed out so that callers wait or read
    /// without holding the registry's lock.
    fn controls(&self) -> Vec<Box<dyn TopicControl>> {
        (self.registry.lock().live())
            .map(|t| t.control.share())
            .collect()
    }

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
        Hub::open_valid(this, name, options)
    }

    /// Opens or creates the dead-letter topic of `topic`: its name may be
    /// longer than a user's topic name may be, so that every topic has one.
    pub(crate) fn open_dead_letters<T: Clone + Send + 'static>(
        this: &Arc<Self>,
        topic: &str,
    ) -> Result<Topic<T>, TopicError> {
        Hub::open_valid(this, &dead_letter_name(topic), None)
    }

    fn open_valid<T: Clone + Send + 'static>(
        this: &Arc<Self>,
        name: &str,
        options: Option<TopicOptions>,
    ) -> Result<Topic<T>, TopicError> {
        let workers = this.runtime.workers.len();
        if let Some(w) = options
            .as_ref()
            .and_then(|o| o.worker)
            .filter(|&w| w >= workers)
        {
            return Err(TopicError::NoSuchWorker { worker: w, workers });
        }
        let mut registry = this.registry.lock();
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
            if let Some(live) = entry.live.as_ref() {
                return match live.typed.downcast_ref::<Arc<TopicShared<T>>>() {
                    // Under the registry's lock, so `Hub::release` cannot
                    // free the topic between this handle's count and its use.
                    Some(shared) => Ok(Topic::from_shared(shared.clone())),
                    // Same TypeId, so the downcast cannot fail.
                    None => Err(TopicError::TypeMismatch {
                        name: name.to_owned(),
                        existing: entry.type_name,
                        requested: std::any::type_name::<T>(),
                    }),
                };
            }
        }
        // A freed name comes back with the options it had.
        let options = options
            .or_else(|| registry.topics.get(name).map(|e| e.options.clone()))
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
        let topic = Topic::from_shared(shared.clone());
        let live = Some(LiveTopic {
            typed: Box::new(shared.clone()),
            control: Box::new(shared),
        });
        match registry.topics.get_mut(name) {
            Some(entry) => entry.live = live,
            None => {
                registry.topics.insert(
                    name.to_owned(),
                    TopicEntry {
                        type_id: TypeId::of::<T>(),
                        type_name: std::any::type_name::<T>(),
                        options,
                        live,
                    },
                );
            }
        }
        Ok(topic)
    }

    /// Frees topic `name` if it is still the topic `uid` and nothing uses it
    /// any more (no handle, no subscription, no kept dead letters). Called
    /// when its last handle drops or its last subscription leaves.
    pub(crate) fn release(&self, name: &str, uid: u64) {
        let removed = {
            let mut registry = self.registry.lock();
            match registry.topics.get_mut(name) {
                Some(TopicEntry {
                    live: live @ Some(_),
                    ..
                }) if live
                    .as_ref()
                    .is_some_and(|l| l.control.uid() == uid && l.control.is_unused()) =>
                {
                    live.take()
                }
                _ => None,
            }
        };
        // Dropped outside the lock: what it holds may run user code (an
        // event's `Drop`) that opens topics.
        drop(removed);
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

/// Why a topic name is refused, if it is. (A dead-letter topic's name, the
/// topic's own plus `.dead_letters`, may be longer: see
/// [`Hub::open_dead_letters`].)
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
        let inner = &self.inner;
        let gave_up = lock_until(&inner.shutdown, Some(Instant::now()))
            .is_some_and(|s| s.gave_up && s.report.is_none());
        if worker::on_worker_of(inner.runtime.id) || gave_up {
            // Dropped by one of its own handlers (which cannot wait for its
            // own worker), or after a `shutdown_timeout` gave up: finish on a
            // thread of its own.
            inner.close_intake();
            let finisher = inner.clone();
            let spawned = thread::Builder::new()
                .name("pinbus-shutdown".to_owned())
                .spawn(move || {
                    finisher.shutdown(None);
                    finisher.clear();
                });
            if spawned.is_err() {
                // No thread to be had: let the workers drain what they hold
                // and exit on their own; nobody joins them.
                inner.runtime.state.store(EXITING, Ordering::Release);
                for w in &inner.runtime.workers {
                    w.unpark();
                }
            }
            return;
        }
        inner.shutdown(None);
        inner.clear();
    }
}

impl Inner {
    /// Topics hold the hub and the hub holds topics: break the cycle. The
    /// topics are dropped outside the registry's lock.
    fn clear(&self) {
        let topics = std::mem::take(&mut self.hub.registry.lock().topics);
        drop(topics);
    }
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("id", &self.inner.runtime.id)
            .field("workers", &self.workers())
            .field("idle", &self.inner.runtime.idle)
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
