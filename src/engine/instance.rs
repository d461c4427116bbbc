//! `Engine`: starts the workers, keeps the topic registry, shuts down.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use crate::engine::config::Config;

use crate::loom::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use crate::loom::sync::{Arc, Mutex};
use crate::loom::thread;
use crate::observe::metrics::Metrics;
use crate::runtime::idle::IdleStrategy;
use crate::runtime::worker;
use crate::runtime::worker::StartGate;
use crate::runtime::workers::{Runtime, WorkerShared, EXITING, RUNNING};
use crate::sys::error::{ConfigError, TopicError};
use crate::sys::fence;

use crate::time::clock::{Clock, SystemClock};
use crate::time::timer::TimerService;

use crate::topic::handle::Topic;
use crate::topic::pattern::Pattern;
use crate::topic::service::Service;

use crate::topic::options::TopicOptions;

use crate::engine::shutdown::{lock_until, stop_workers, Inner, ShutdownReport, ShutdownState};
use crate::topic::names::{FreedCounts, Hub, Registry};

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
    pub(crate) inner: Arc<Inner>,
    /// `Config::producer_cores`.
    pub(crate) producer_cores: Vec<usize>,
    /// See [`Engine::instance_id`].
    pub(crate) instance_id: u64,
}

impl Engine {
    /// Validates `config` and starts the workers.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), pinbus::ConfigError> {
    /// use pinbus::{Config, Engine};
    /// let engine = Engine::from_config(Config { workers: 2, ..Config::default() })?;
    /// assert_eq!(engine.workers(), 2);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`EngineBuilder::build`](crate::EngineBuilder::build).
    pub fn from_config(config: Config) -> Result<Engine, ConfigError> {
        Engine::start(config, Box::new(SystemClock))
    }

    pub(crate) fn start(config: Config, clock: Box<dyn Clock>) -> Result<Engine, ConfigError> {
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
            stray_panics: AtomicU64::new(0),
            waiters_spin: !(matches!(config.idle, IdleStrategy::BusySpin | IdleStrategy::Yield)
                && config.workers >= worker_cores(&resolved.cores)),
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
                        patterns: Vec::new(),
                    }),
                    next_home: AtomicUsize::new(0),
                    configured: config.topics,
                    freed: FreedCounts::default(),
                    trace_seed: random_instance_id(instance_id),
                    pattern_mismatches: AtomicU64::new(0),
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
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), pinbus::ConfigError> {
    /// let engine = pinbus::Engine::builder().workers(3).build()?;
    /// assert_eq!(engine.workers(), 3);
    /// # Ok(()) }
    /// ```
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
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pinbus::{Engine, TopicError};
    /// let engine = Engine::builder().workers(1).build()?;
    /// let orders = engine.topic::<u64>("orders.created")?;
    /// assert_eq!(orders.name(), "orders.created");
    /// let err = engine.topic::<String>("orders.created").unwrap_err();
    /// assert!(matches!(err, TopicError::TypeMismatch { .. }));
    /// assert!(matches!(engine.topic::<u64>("a..b"), Err(TopicError::InvalidName { .. })));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`TopicError::TypeMismatch`] if the name exists with another type,
    /// [`TopicError::InvalidName`], or [`TopicError::Closed`] after shutdown.
    pub fn topic<T: Clone + Send + 'static>(&self, name: &str) -> Result<Topic<T>, TopicError> {
        Hub::open(&self.inner.hub, name, None)
    }

    /// A wildcard pattern over topic names for events of type `T`, with NATS
    /// subject semantics: `*` matches exactly one dot-separated token, a
    /// final `>` one or more. Its subscriptions receive from every matching
    /// topic of type `T`, existing and created later; see [`Pattern`].
    ///
    /// # Errors
    ///
    /// [`TopicError::InvalidPattern`] for bad syntax (an empty token, `>`
    /// before the last token, a wildcard inside a token such as `or*ders`,
    /// whitespace, an empty pattern), saying what is wrong.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let engine = pinbus::Engine::builder().build()?;
    /// let orders = engine.pattern::<u64>("orders.>")?;
    /// assert_eq!(orders.filter(), "orders.>");
    /// let err = engine.pattern::<u64>("orders.>.eu").unwrap_err();
    /// assert!(err.to_string().contains("'>' must be the last token"));
    /// # Ok(()) }
    /// ```
    pub fn pattern<T: Clone + Send + 'static>(
        &self,
        filter: &str,
    ) -> Result<Pattern<T>, TopicError> {
        Hub::pattern(&self.inner.hub, filter)
    }

    /// Opens the request/reply service `name` for queries of type `Q`
    /// answered with `R`, creating it if it does not exist; see [`Service`].
    /// The name follows topic names' rules; the service's requests travel
    /// on an internal topic, `$service.<name>`, that patterns never match.
    ///
    /// # Errors
    ///
    /// [`TopicError::InvalidName`], [`TopicError::TypeMismatch`] if the
    /// service exists with other query or reply types, or
    /// [`TopicError::Closed`] after shutdown.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let quotes = engine.service::<String, f64>("pricing.quote")?;
    /// quotes.serve(|sku| if sku.as_str() == "apple" { Ok(0.5) } else { Err("unknown sku") })?;
    /// assert_eq!(quotes.call("apple".to_owned())?, 0.5);
    /// assert!(engine.service::<u8, u8>("pricing.quote").is_err()); // other types
    /// # Ok(()) }
    /// ```
    pub fn service<Q: Send + 'static, R: Send + 'static>(
        &self,
        name: &str,
    ) -> Result<Service<Q, R>, TopicError> {
        Hub::service(&self.inner.hub, name)
    }

    /// Opens or creates the topic `name` with `options`.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pinbus::{Backpressure, Engine, TopicError, TopicOptions};
    /// let engine = Engine::builder().workers(1).build()?;
    /// let fail = TopicOptions::default().backpressure(Backpressure::Fail);
    /// let jobs = engine.topic_with::<u32>("jobs", fail.clone())?;
    /// assert!(engine.topic_with::<u32>("jobs", fail).is_ok()); // same options: opens it
    /// let err = engine.topic_with::<u32>("jobs", TopicOptions::default()).unwrap_err();
    /// assert!(matches!(err, TopicError::OptionsMismatch { .. }));
    /// # drop(jobs);
    /// # Ok(()) }
    /// ```
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
    /// `metrics` feature, `Metrics::export` hands it to the `metrics`
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
                .map(|w| w.metrics())
                .collect(),
            pattern_type_mismatches: (self.inner.hub.pattern_mismatches).load(Ordering::Relaxed),
        }
    }

    /// Stops intake, drains every lane through its handlers, and joins the
    /// workers; see [Shutdown](#shutdown). Idempotent: once a shutdown has
    /// completed, later calls return the same report.
    ///
    /// Called from inside a handler, it cannot wait for its own worker: it
    /// closes intake and returns a report with `complete: false`; the drain
    /// finishes on a later call or when the engine is dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pinbus::{Engine, PublishError};
    /// let engine = Engine::builder().workers(1).build()?;
    /// let jobs = engine.topic::<u32>("jobs")?;
    /// jobs.subscribe(|_| ())?;
    /// jobs.publish(1)?;
    /// let report = engine.shutdown();
    /// assert!(report.complete);
    /// assert_eq!(report.handled, 1); // accepted events are handled before it returns
    /// assert!(matches!(jobs.publish(2), Err(PublishError::Closed(2))));
    /// # Ok(()) }
    /// ```
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

impl Drop for Engine {
    fn drop(&mut self) {
        let inner = &self.inner;
        let gave_up = lock_until(&inner.shutdown, Some(Instant::now()))
            .is_some_and(|s| s.gave_up && s.report.is_none());
        if crate::sys::context::on_worker_of(inner.runtime.id) || gave_up {
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
pub(crate) fn random_instance_id(seed: u64) -> u64 {
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

/// How many cores the workers placed as `cores` share with the threads that
/// wait on them. Pinned workers each hold one of the machine's online cores,
/// wherever the building thread runs; unpinned ones inherit the building
/// thread's CPU affinity, so they share the cores it may use. (A waiter
/// spinning beside busy-spinning workers on every core would take a core
/// from them.)
fn worker_cores(cores: &[Option<usize>]) -> usize {
    if !cores.is_empty() && cores.iter().all(Option::is_some) {
        crate::sys::pinning::available_cores().len()
    } else {
        crate::loom::core_count()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::worker_cores;
    use crate::{Engine, IdleStrategy, Pinning};

    #[test]
    fn pinned_workers_count_the_machine_s_cores_unpinned_ones_the_builder_s() {
        let online = crate::sys::pinning::available_cores().len();
        assert_eq!(worker_cores(&[Some(0)]), online);
        assert_eq!(worker_cores(&[Some(0), None]), crate::loom::core_count());
        assert_eq!(worker_cores(&[]), crate::loom::core_count());
    }

    /// An engine built by a thread pinned to one core, with one spinning
    /// worker pinned to another: the waiter has a core of its own, so it
    /// spins (it used to count only the builder's one core, and every
    /// `publish_and_wait` blocked and paid a wake-up).
    #[test]
    fn waiters_spin_beside_a_pinned_spinning_worker_whatever_the_builder_s_affinity() {
        let cores = crate::sys::pinning::available_cores();
        if cores.len() < 2 {
            return; // nothing to place apart
        }
        let (first, last) = (cores[0], cores[cores.len() - 1]);
        std::thread::spawn(move || {
            if !core_affinity::set_for_current(core_affinity::CoreId { id: first }) {
                return; // the OS refused: nothing to check
            }
            assert_eq!(crate::loom::core_count(), 1, "the builder runs on one core");
            let spinning = |pinning| {
                let engine = Engine::builder()
                    .workers(1)
                    .pinning(pinning)
                    .idle(IdleStrategy::BusySpin)
                    .build()
                    .unwrap();
                engine.inner.runtime.waiters_spin
            };
            assert!(spinning(Pinning::Cores(vec![last])));
            // Unpinned, the worker shares the builder's one core: no spinning.
            assert!(!spinning(Pinning::None));
        })
        .join()
        .unwrap();
    }
}
