//! Error types. Every message says what went wrong and what to change.
//!
//! Messages quote user-given names (topics, groups, config keys and values)
//! through [`shown`]: a long name is cut to its first [`SHOWN_NAME_BYTES`](crate::sys::shown::SHOWN_NAME_BYTES)
//! bytes and followed by its length, so a 10 KB name does not flood a log.
//! The error values keep the whole name in their fields.

use std::fmt;
use std::time::Duration;

use crate::sys::shown::{shown, shown_quotes, Quote};

/// What to change about a `timer_tick` outside `min ..= max`.
fn timer_tick_fix(tick: Duration, min: Duration, max: Duration) -> String {
    let side = if tick < min {
        format!("use at least {min:?}")
    } else {
        format!(
            "use at most {max:?} (a timer fires up to one tick late, so a coarser tick only \
             makes delayed events and retries later)"
        )
    };
    format!(
        "{side}: a tick from {min:?} to {max:?} (in TOML, timer_tick_us = {} to {}); the default \
         is 1ms: timers fire within one tick after their due time",
        min.as_micros(),
        max.as_micros()
    )
}

/// An engine configuration the builder (or `Engine::from_config`) refused.
///
/// # Examples
///
/// ```
/// use pinbus::{ConfigError, Engine};
/// let err = Engine::builder().lane_capacity(3000).build().unwrap_err();
/// assert!(matches!(err, ConfigError::CapacityNotPowerOfTwo { capacity: 3000, suggestion: 4096 }));
/// assert_eq!(err.to_string(), "lane_capacity 3000 is not a power of two; try 4096");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `workers(0)`.
    #[error("workers is 0: an engine needs at least one worker thread; use workers(1) or more")]
    ZeroWorkers,
    /// More workers than the engine supports.
    #[error("workers is {workers}, above the limit of {max}; use at most {max} workers")]
    TooManyWorkers {
        /// The value given.
        workers: usize,
        /// The largest accepted value.
        max: usize,
    },
    /// A lane capacity that is not a power of two.
    #[error("lane_capacity {capacity} is not a power of two; try {suggestion}")]
    CapacityNotPowerOfTwo {
        /// The value given.
        capacity: usize,
        /// The nearest power of two at or above it (within range).
        suggestion: usize,
    },
    /// A lane capacity outside the accepted range.
    #[error("lane_capacity {capacity} is out of range; use a power of two from {min} to {max}")]
    CapacityOutOfRange {
        /// The value given.
        capacity: usize,
        /// Smallest accepted capacity.
        min: usize,
        /// Largest accepted capacity.
        max: usize,
    },
    /// A core id this machine does not have (or this process may not use).
    #[error(
        "core {core} is not available to this process (available cores: {available:?}); \
         pick cores from that list, or use Pinning::Auto (pinning = \"auto\")"
    )]
    UnknownCore {
        /// The core id given.
        core: usize,
        /// The cores this process may run on.
        available: Vec<usize>,
    },
    /// The same core listed twice.
    #[error("core {core} is listed more than once; give each worker its own core")]
    DuplicateCore {
        /// The repeated core id.
        core: usize,
    },
    /// `Pinning::Cores` with a list whose length differs from the worker count.
    #[error(
        "Pinning::Cores lists {cores} cores for {workers} workers; \
         list exactly one core per worker"
    )]
    CoreCountMismatch {
        /// Number of cores listed.
        cores: usize,
        /// Number of workers configured.
        workers: usize,
    },
    /// The operating system refused to pin a worker.
    #[error(
        "could not pin worker {worker} to core {core}: the OS refused \
         (check the process CPU affinity or cgroup cpuset), or use Pinning::None"
    )]
    PinFailed {
        /// The worker index.
        worker: usize,
        /// The core it was meant for.
        core: usize,
    },
    /// A worker thread could not be started.
    #[error("could not start worker thread {worker}: {source}")]
    Spawn {
        /// The worker index.
        worker: usize,
        /// The error from the OS.
        #[source]
        source: std::io::Error,
    },
    /// `producer_slots` out of range.
    #[error("producer_slots {slots} is out of range; use 1 to {max}")]
    ProducerSlots {
        /// The value given.
        slots: usize,
        /// Largest accepted value.
        max: usize,
    },
    /// `drain_batch` out of range.
    #[error("drain_batch {batch} is out of range; use 1 to {max}")]
    DrainBatch {
        /// The value given.
        batch: usize,
        /// Largest accepted value.
        max: usize,
    },
    /// A producer core this machine does not have (or this process may not
    /// use).
    #[error(
        "producer_cores lists core {core}, which is not available to this process \
         (available cores: {available:?}); pick producer cores from that list"
    )]
    UnknownProducerCore {
        /// The core id given.
        core: usize,
        /// The cores this process may run on.
        available: Vec<usize>,
    },
    /// The same producer core listed twice.
    #[error("producer_cores lists core {core} more than once; list each core once")]
    DuplicateProducerCore {
        /// The repeated core id.
        core: usize,
    },
    /// A core reserved for producers is also a worker's core.
    #[error(
        "core {core} is in producer_cores and is also the core of worker {worker}; \
         remove it from one of the two lists, or use Pinning::Auto (pinning = \"auto\"), \
         which leaves producer cores alone"
    )]
    ProducerCoreOverlap {
        /// The core in both lists.
        core: usize,
        /// The worker pinned to it.
        worker: usize,
    },
    /// A configured topic placed on a worker the engine does not have.
    #[error(
        "topic {} is configured with worker = {worker}, but the engine has {workers} \
         workers, numbered 0 to {}; use a smaller worker index or raise workers",
        shown(topic, Quote::Single),
        workers.saturating_sub(1)
    )]
    TopicWorker {
        /// The topic name.
        topic: String,
        /// The worker index given.
        worker: usize,
        /// The engine's worker count.
        workers: usize,
    },
    /// A configured topic whose name is not a valid topic name.
    #[error(
        "configured topic name {} is invalid: {reason}",
        shown(name, Quote::Debug)
    )]
    InvalidTopicName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A timer tick too short to be useful, or so long that delayed events
    /// and retries would fire far too late (see
    /// [`Config::timer_tick`](crate::Config::timer_tick)).
    #[error("timer_tick is {tick:?}; {}", timer_tick_fix(*tick, *min, *max))]
    TimerTick {
        /// The tick given.
        tick: Duration,
        /// Shortest accepted tick (1 µs).
        min: Duration,
        /// Longest accepted tick (1 s).
        max: Duration,
    },
    /// A configuration file that could not be read.
    #[error(
        "could not read the config file {}: {source}; check the path (a relative path \
         starts at the working directory) and its permissions", path.display()
    )]
    ReadFile {
        /// The path given.
        path: std::path::PathBuf,
        /// The error from the OS.
        #[source]
        source: std::io::Error,
    },
    /// A configuration file that is not UTF-8 text (TOML files must be).
    #[error(
        "the config file {} is not valid UTF-8: byte offset {offset} (line {line}, column \
         {column}) starts a byte sequence that is not UTF-8; TOML files must be UTF-8, so save \
         the file as UTF-8 (a Latin-1 file, for example, with `iconv -f latin1 -t utf-8`) or \
         remove the bytes there", path.display()
    )]
    FileNotUtf8 {
        /// The path given.
        path: std::path::PathBuf,
        /// Offset of the first byte that is not UTF-8, from 0.
        offset: usize,
        /// Line of that byte, from 1.
        line: usize,
        /// Column of that byte, from 1 (in characters).
        column: usize,
        /// The UTF-8 error.
        #[source]
        source: std::str::Utf8Error,
    },
    /// Text that is not valid TOML.
    #[error(
        "TOML syntax error at line {line}, column {column}: {}; fix the file there",
        shown_quotes(message)
    )]
    TomlSyntax {
        /// Line of the error, from 1.
        line: usize,
        /// Column of the error, from 1 (in characters).
        column: usize,
        /// What the TOML parser expected.
        message: String,
    },
    /// A key the configuration does not have (often a misspelling).
    #[error(
        "unknown key {} at line {line}, column {column}; expected {expected}; \
         fix the spelling or remove the key",
        shown(key, Quote::Backtick)
    )]
    UnknownKey {
        /// The key as written.
        key: String,
        /// Line of the key, from 1.
        line: usize,
        /// Column of the key, from 1.
        column: usize,
        /// The keys accepted in that table, as a phrase
        /// (for example "one of `workers`, `pinning`, …").
        expected: String,
    },
    /// A value of the wrong type (a string where a number belongs, a negative
    /// count, …).
    #[error(
        "{} at line {line}, column {column} is {found}; it must be {expected}",
        shown(key, Quote::Backtick)
    )]
    WrongType {
        /// The key's full path, such as `idle_tuning.spins`.
        key: String,
        /// Line of the value, from 1.
        line: usize,
        /// Column of the value, from 1.
        column: usize,
        /// What was found, such as `the string "two"`.
        found: String,
        /// What is accepted, such as `a whole number of 0 or more`.
        expected: &'static str,
    },
    /// An `idle` value that names no idle strategy.
    #[error(
        "idle = {} at line {line}, column {column} is not an idle strategy; \
         use \"busy-spin\", \"yield\", \"backoff\" or \"park\"",
        shown(name, Quote::Debug)
    )]
    UnknownIdleStrategy {
        /// The name given.
        name: String,
        /// Line of the value, from 1.
        line: usize,
        /// Column of the value, from 1.
        column: usize,
    },
    /// A topic's `backpressure` value that names no backpressure mode.
    #[error(
        "backpressure = {} for topic {} at line {line}, column {column} is not \
         a backpressure mode; use \"block\" or \"fail\"",
        shown(name, Quote::Debug),
        shown(topic, Quote::Single)
    )]
    UnknownBackpressure {
        /// The topic name.
        topic: String,
        /// The name given.
        name: String,
        /// Line of the value, from 1.
        line: usize,
        /// Column of the value, from 1.
        column: usize,
    },
    /// A `pinning` string other than `"none"` or `"auto"`.
    #[error(
        "pinning = {} at line {line}, column {column} is not a pinning mode; \
         use \"none\", \"auto\" or a list of core ids such as [2, 3]",
        shown(name, Quote::Debug)
    )]
    UnknownPinning {
        /// The name given.
        name: String,
        /// Line of the value, from 1.
        line: usize,
        /// Column of the value, from 1.
        column: usize,
    },
    /// A `timer_shutdown` value that names no
    /// [`TimerShutdown`](crate::TimerShutdown) policy.
    #[error(
        "timer_shutdown = {} at line {line}, column {column} is not a timer shutdown policy; \
         use \"fire-all-now\" (the default: every delayed event is delivered), \"fire-due\" \
         or \"drop\"",
        shown(name, Quote::Debug)
    )]
    UnknownTimerShutdown {
        /// The name given.
        name: String,
        /// Line of the value, from 1.
        line: usize,
        /// Column of the value, from 1.
        column: usize,
    },
}

/// Why a topic could not be created or opened.
///
/// # Examples
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use pinbus::TopicError;
/// let engine = pinbus::Engine::builder().workers(1).build()?;
/// let err = engine.topic::<u32>("bad name").unwrap_err();
/// assert!(matches!(err, TopicError::InvalidName { .. }));
/// engine.shutdown();
/// assert_eq!(engine.topic::<u32>("jobs").unwrap_err(), TopicError::Closed);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TopicError {
    /// The name exists with another event type.
    #[error(
        "topic {} already exists with event type {existing}, not {requested}; \
         open it with the same type or use another name",
        shown(name, Quote::Single)
    )]
    TypeMismatch {
        /// The topic name.
        name: String,
        /// The type it was created with.
        existing: &'static str,
        /// The type asked for.
        requested: &'static str,
    },
    /// The name is not a valid topic name.
    #[error("topic name {} is invalid: {reason}", shown(name, Quote::Debug))]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `topic_with` on an existing topic with different options.
    #[error(
        "topic {} already exists with different options; open it with topic() \
         or pass the same TopicOptions",
        shown(name, Quote::Single)
    )]
    OptionsMismatch {
        /// The topic name.
        name: String,
    },
    /// `TopicOptions::worker(n)` beyond the worker count.
    #[error(
        "TopicOptions::worker({worker}) names a worker this engine does not have; \
         it has {workers} workers, numbered 0 to {}", workers.saturating_sub(1)
    )]
    NoSuchWorker {
        /// The worker index given.
        worker: usize,
        /// The engine's worker count.
        workers: usize,
    },
    /// The engine is shutting down or shut down.
    #[error("the engine is shut down: topics can no longer be created or opened")]
    Closed,
    /// [`Engine::pattern`](crate::Engine::pattern) with a filter that is not a
    /// valid wildcard subject.
    #[error("topic pattern {} is invalid: {reason}", shown(pattern, Quote::Debug))]
    InvalidPattern {
        /// The pattern given.
        pattern: String,
        /// What is wrong with it, and what to change.
        reason: &'static str,
    },
}

/// Why a subscription could not be made.
///
/// # Examples
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use pinbus::{SubscribeError, SubscribeOptions};
/// let engine = pinbus::Engine::builder().workers(1).build()?;
/// let jobs = engine.topic::<u32>("jobs")?;
/// let err = jobs.subscribe_with(|_| (), SubscribeOptions::new().worker(3)).unwrap_err();
/// assert_eq!(err, SubscribeError::NoSuchWorker { worker: 3, workers: 1 });
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubscribeError {
    /// The engine is shutting down or shut down.
    #[error(
        "cannot subscribe to topic {}: the engine is shut down",
        shown(topic, Quote::Single)
    )]
    Closed {
        /// The topic name.
        topic: String,
    },
    /// `SubscribeOptions::worker(n)` beyond the worker count.
    #[error(
        "SubscribeOptions::worker({worker}) names a worker this engine does not have; \
         it has {workers} workers, numbered 0 to {}", workers.saturating_sub(1)
    )]
    NoSuchWorker {
        /// The worker index given.
        worker: usize,
        /// The engine's worker count.
        workers: usize,
    },
    /// The group name is not valid.
    #[error("group name {} is invalid: {reason}", shown(name, Quote::Debug))]
    InvalidGroupName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A [`RetryPolicy`](crate::RetryPolicy) with parameters that cannot
    /// work.
    #[error("invalid retry policy: {problem}")]
    InvalidRetry {
        /// What is wrong and what to change.
        problem: String,
    },
    /// The topic's dead-letter topic could not be opened (its name,
    /// `<topic>.dead_letters`, is taken by a topic of another type, or is
    /// too long).
    #[error("cannot open the dead-letter topic needed by a retry policy: {reason}")]
    DeadLetterTopic {
        /// The topic error, as text.
        reason: String,
    },
    /// A keyed group refused the member: `what` says why, `instead` what to do.
    #[error("consumer group {} {what}: {instead}", shown(group, Quote::Single))]
    KeyedGroup {
        /// The group.
        group: String,
        /// What is refused.
        what: &'static str,
        /// What to do instead.
        instead: &'static str,
    },
}

/// A publish that did not happen. The event comes back in the error, so
/// nothing is lost: [`PublishError::into_inner`] returns it.
///
/// # Examples
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use pinbus::PublishError;
/// let engine = pinbus::Engine::builder().workers(1).build()?;
/// let jobs = engine.topic::<String>("jobs")?;
/// engine.shutdown();
/// match jobs.publish("job".to_owned()) {
///     Err(PublishError::Closed(job)) => assert_eq!(job, "job"), // nothing is lost
///     other => panic!("{other:?}"),
/// }
/// # Ok(()) }
/// ```
#[non_exhaustive]
pub enum PublishError<T> {
    /// A lane was full and the topic's backpressure is `Fail` (or the call was
    /// `try_publish`).
    Full(T),
    /// The engine is shutting down or shut down.
    Closed(T),
    /// `publish_and_wait` was called from a handler running on this engine's
    /// workers, where waiting could block the very thread that must handle
    /// the event.
    WouldDeadlock(T),
    /// `publish_after`/`publish_at` could not start the engine's timer
    /// thread (the OS refused a thread).
    TimerUnavailable(T),
    /// [`Topic::publish_timeout`](crate::Topic::publish_timeout): a lane
    /// stayed full for the whole timeout; the event is in no lane.
    Timeout(T),
    /// A publish interceptor refused the event (see [`crate::topic::intercept`]).
    Rejected {
        /// The event, handed back.
        event: T,
        /// Why the interceptor refused it.
        reason: Box<str>,
    },
}

impl<T> PublishError<T> {
    /// The event (or events) that were not published.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let jobs = engine.topic::<Vec<u8>>("jobs")?;
    /// engine.shutdown();
    /// let back = jobs.publish(vec![1, 2]).unwrap_err().into_inner();
    /// assert_eq!(back, [1, 2]);
    /// # Ok(()) }
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            PublishError::Full(v)
            | PublishError::Closed(v)
            | PublishError::WouldDeadlock(v)
            | PublishError::TimerUnavailable(v)
            | PublishError::Timeout(v)
            | PublishError::Rejected { event: v, .. } => v,
        }
    }

    /// Whether a lane was full.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let engine = pinbus::Engine::builder().workers(1).lane_capacity(2).build()?;
    /// let jobs = engine.topic::<u32>("jobs")?;
    /// let (release, gate) = std::sync::mpsc::channel::<()>();
    /// jobs.subscribe(move |_| { let _ = gate.recv(); })?; // stuck until released
    /// let err = (0..10).find_map(|job| jobs.try_publish(job).err()).ok_or("never full")?;
    /// assert!(err.is_full());
    /// drop(release);
    /// # engine.shutdown();
    /// # Ok(()) }
    /// ```
    pub fn is_full(&self) -> bool {
        matches!(self, PublishError::Full(_))
    }

    /// Whether the engine is shut down.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let jobs = engine.topic::<u32>("jobs")?;
    /// engine.shutdown();
    /// assert!(jobs.publish(1).unwrap_err().is_closed());
    /// # Ok(()) }
    /// ```
    pub fn is_closed(&self) -> bool {
        matches!(self, PublishError::Closed(_))
    }

    /// Whether a lane stayed full for the whole timeout
    /// ([`Topic::publish_timeout`](crate::Topic::publish_timeout)).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// let engine = pinbus::Engine::builder().workers(1).lane_capacity(2).build()?;
    /// let jobs = engine.topic::<u32>("jobs")?;
    /// let (release, gate) = std::sync::mpsc::channel::<()>();
    /// jobs.subscribe(move |_| { let _ = gate.recv(); })?; // stuck until released
    /// let wait = Duration::from_millis(5);
    /// let err = (0..10).find_map(|job| jobs.publish_timeout(job, wait).err()).ok_or("never full")?;
    /// assert!(err.is_timeout());
    /// drop(release);
    /// # engine.shutdown();
    /// # Ok(()) }
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self, PublishError::Timeout(_))
    }

    /// Whether an interceptor refused the event.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let jobs = engine.topic::<u32>("jobs")?;
    /// let even = jobs.intercept(|n: &mut u32| if *n % 2 == 0 { Ok(()) } else { Err("odd") });
    /// assert!(even.publish(3).unwrap_err().is_rejected());
    /// # Ok(()) }
    /// ```
    pub fn is_rejected(&self) -> bool {
        matches!(self, PublishError::Rejected { .. })
    }
}

impl<T> fmt::Debug for PublishError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PublishError::Full(_) => f.write_str("Full(..)"),
            PublishError::Closed(_) => f.write_str("Closed(..)"),
            PublishError::WouldDeadlock(_) => f.write_str("WouldDeadlock(..)"),
            PublishError::TimerUnavailable(_) => f.write_str("TimerUnavailable(..)"),
            PublishError::Timeout(_) => f.write_str("Timeout(..)"),
            PublishError::Rejected { reason, .. } => f
                .debug_struct("Rejected")
                .field("reason", reason)
                .finish_non_exhaustive(),
        }
    }
}

impl<T> fmt::Display for PublishError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PublishError::Full(_) => f.write_str(
                "a lane is full, so the event was not published (it is returned in the error); \
                 retry later, use Backpressure::Block, or raise lane_capacity",
            ),
            PublishError::Closed(_) => f.write_str(
                "the engine is shut down, so the event was not published \
                 (it is returned in the error)",
            ),
            PublishError::WouldDeadlock(_) => f.write_str(
                "publish_and_wait was called from a handler on this engine's worker, \
                 which could wait forever for itself; use publish() or publish_tracked() \
                 there and check the receipt later",
            ),
            PublishError::TimerUnavailable(_) => f.write_str(
                "the timer thread for delayed events could not be started (the OS refused a \
                 new thread; the event is returned in the error); free resources or raise the \
                 process's thread limit, then try again",
            ),
            PublishError::Timeout(_) => f.write_str(
                "a lane stayed full for the whole timeout, so the event was not published \
                 (it is returned in the error); a subscriber is slower than the producers: \
                 give it its own worker, raise lane_capacity, or wait longer",
            ),
            PublishError::Rejected { reason, .. } => write!(
                f,
                "a publish interceptor refused the event (it is returned in the error): {reason}"
            ),
        }
    }
}

impl<T> std::error::Error for PublishError<T> {}

/// Why [`Receipt::wait`](crate::Receipt::wait) did not wait.
///
/// # Examples
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use pinbus::WaitError;
/// let engine = pinbus::Engine::builder().workers(1).build()?;
/// let (outer, inner) = (engine.topic::<u32>("outer")?, engine.topic::<u32>("inner")?);
/// inner.subscribe(|_| ())?;
/// let (tx, rx) = std::sync::mpsc::channel();
/// outer.subscribe(move |_| tx.send(inner.publish_tracked(1).unwrap().wait()).unwrap())?;
/// outer.publish(1)?;
/// assert_eq!(rx.recv()?, Err(WaitError::OnWorkerThread)); // use is_complete() there
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WaitError {
    /// Called from one of the engine's worker threads while the event was
    /// still pending.
    #[error(
        "Receipt::wait was called from a handler on this engine's worker while the event \
         was pending; the event may be queued behind this very handler, so waiting could \
         never end. Use Receipt::is_complete() or wait_timeout() there"
    )]
    OnWorkerThread,
}
