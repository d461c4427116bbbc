//! Dead letters: events a subscription failed on every allowed attempt.
//!
//! They are published to the topic's dead-letter topic
//! ([`Topic::dead_letters`]). While that topic has no subscriber, they are
//! kept in a bounded store ([`DEAD_LETTER_KEEP`] per topic) that
//! [`Topic::take_dead_letters`] empties; beyond the bound the oldest is
//! dropped and counted ([`Topic::dead_letters_dropped`]). None vanishes
//! without a count.
//!
//! [`Topic::dead_letters`]: crate::Topic::dead_letters
//! [`Topic::take_dead_letters`]: crate::Topic::take_dead_letters
//! [`Topic::dead_letters_dropped`]: crate::Topic::dead_letters_dropped

use std::collections::VecDeque;
use std::fmt;
use std::time::Instant;

use crate::event::trace::TraceId;
use crate::loom::sync::atomic::{AtomicU64, Ordering};
use crate::loom::sync::Mutex;

/// Dead letters kept per topic while its dead-letter topic has no
/// subscriber.
///
/// # Examples
///
/// ```
/// assert_eq!(pinbus::DEAD_LETTER_KEEP, 10_000); // per topic; older ones are dropped and counted
/// ```
pub const DEAD_LETTER_KEEP: usize = 10_000;

/// An event that failed every attempt a subscription's retry policy allows,
/// with why and where it failed.
///
/// # Examples
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use pinbus::{Engine, RetryPolicy, SubscribeOptions};
///
/// let engine = Engine::builder().workers(1).build()?;
/// let orders = engine.topic::<u32>("orders")?;
/// orders.subscribe_with(
///     |_ev| Err::<(), _>("payment service down"),
///     SubscribeOptions::new().name("billing").retry(RetryPolicy::never()),
/// )?;
/// orders.publish_and_wait(7)?;
/// let dead = orders.take_dead_letters();
/// assert_eq!(dead.len(), 1);
/// assert_eq!(*dead[0].event(), 7);
/// assert_eq!(dead[0].error(), "payment service down");
/// assert_eq!(dead[0].subscription(), "billing");
/// assert_eq!(dead[0].attempts(), 1);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct DeadLetter<T> {
    pub(crate) event: T,
    pub(crate) error: String,
    pub(crate) attempts: u32,
    pub(crate) topic: &'static str,
    pub(crate) subscription: String,
    pub(crate) seq: u64,
    pub(crate) trace_id: TraceId,
    pub(crate) published_at: Instant,
    pub(crate) failed_at: Instant,
}

impl<T> DeadLetter<T> {
    /// The event that failed.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pinbus::{RetryPolicy, SubscribeOptions};
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let jobs = engine.topic::<String>("jobs")?;
    /// jobs.subscribe_with(|_| Err::<(), _>("no"), SubscribeOptions::new().retry(RetryPolicy::never()))?;
    /// jobs.publish_and_wait("job-1".to_owned())?;
    /// assert_eq!(jobs.take_dead_letters()[0].event(), "job-1");
    /// # Ok(()) }
    /// ```
    pub fn event(&self) -> &T {
        &self.event
    }

    /// Takes the event out.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pinbus::{RetryPolicy, SubscribeOptions};
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let jobs = engine.topic::<String>("jobs")?;
    /// jobs.subscribe_with(|_| Err::<(), _>("no"), SubscribeOptions::new().retry(RetryPolicy::never()))?;
    /// jobs.publish_and_wait("job-1".to_owned())?;
    /// let letter = jobs.take_dead_letters().remove(0);
    /// assert_eq!(letter.into_event(), "job-1");
    /// # Ok(()) }
    /// ```
    pub fn into_event(self) -> T {
        self.event
    }

    /// The error text of the last attempt (a handler's `Err` as text, or
    /// `"handler panicked: …"`).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pinbus::{RetryPolicy, SubscribeOptions};
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let jobs = engine.topic::<u32>("jobs")?;
    /// jobs.subscribe_with(|_| -> () { panic!("boom") }, SubscribeOptions::new().retry(RetryPolicy::never()))?;
    /// jobs.publish_and_wait(1)?;
    /// assert!(jobs.take_dead_letters()[0].error().starts_with("handler panicked"));
    /// # Ok(()) }
    /// ```
    pub fn error(&self) -> &str {
        &self.error
    }

    /// Deliveries made, the first included.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// use pinbus::{RetryPolicy, SubscribeOptions};
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let jobs = engine.topic::<u32>("jobs")?;
    /// let retry = RetryPolicy::fixed(Duration::from_millis(1)).max_attempts(3);
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// jobs.dead_letters()?.subscribe(move |dl| tx.send(dl.attempts()).unwrap())?;
    /// jobs.subscribe_with(|_| Err::<(), _>("no"), SubscribeOptions::new().retry(retry))?;
    /// jobs.publish(1)?;
    /// assert_eq!(rx.recv()?, 3); // after two retries, 1 ms apart
    /// # Ok(()) }
    /// ```
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The topic the event was published to.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pinbus::{RetryPolicy, SubscribeOptions};
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let jobs = engine.topic::<u32>("jobs.eu")?;
    /// jobs.subscribe_with(|_| Err::<(), _>("no"), SubscribeOptions::new().retry(RetryPolicy::never()))?;
    /// jobs.publish_and_wait(1)?;
    /// assert_eq!(jobs.take_dead_letters()[0].topic(), "jobs.eu");
    /// # Ok(()) }
    /// ```
    pub fn topic(&self) -> &str {
        self.topic
    }

    /// The name of the subscription that failed it.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pinbus::{RetryPolicy, SubscribeOptions};
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let jobs = engine.topic::<u32>("jobs")?;
    /// let opts = SubscribeOptions::new().name("mailer").retry(RetryPolicy::never());
    /// jobs.subscribe_with(|_| Err::<(), _>("no"), opts)?;
    /// jobs.publish_and_wait(1)?;
    /// assert_eq!(jobs.take_dead_letters()[0].subscription(), "mailer");
    /// # Ok(()) }
    /// ```
    pub fn subscription(&self) -> &str {
        &self.subscription
    }

    /// The event's sequence number in its topic.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pinbus::{RetryPolicy, SubscribeOptions};
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let jobs = engine.topic::<u32>("jobs")?;
    /// jobs.subscribe_with(|ev| if **ev == 2 { Err("no") } else { Ok(()) }, SubscribeOptions::new().retry(RetryPolicy::never()))?;
    /// jobs.publish_batch([0, 1, 2])?;
    /// jobs.publish_and_wait(3)?;
    /// assert_eq!(jobs.take_dead_letters()[0].seq(), 2); // the third event of this producer
    /// # Ok(()) }
    /// ```
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The event's trace id.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pinbus::{RetryPolicy, SubscribeOptions, TraceContext, TraceId};
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let jobs = engine.topic::<u32>("jobs")?;
    /// jobs.subscribe_with(|_| Err::<(), _>("no"), SubscribeOptions::new().retry(RetryPolicy::never()))?;
    /// let _trace = TraceContext::new(TraceId::from_u128(42), 1).enter();
    /// jobs.publish_and_wait(1)?;
    /// assert_eq!(jobs.take_dead_letters()[0].trace_id(), TraceId::from_u128(42));
    /// # Ok(()) }
    /// ```
    pub fn trace_id(&self) -> TraceId {
        self.trace_id
    }

    /// When the event was first published.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pinbus::{RetryPolicy, SubscribeOptions};
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let jobs = engine.topic::<u32>("jobs")?;
    /// jobs.subscribe_with(|_| Err::<(), _>("no"), SubscribeOptions::new().retry(RetryPolicy::never()))?;
    /// jobs.publish_and_wait(1)?;
    /// let letter = &jobs.take_dead_letters()[0];
    /// assert!(letter.published_at() <= letter.failed_at());
    /// # Ok(()) }
    /// ```
    pub fn published_at(&self) -> Instant {
        self.published_at
    }

    /// When the last attempt failed.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Instant;
    /// use pinbus::{RetryPolicy, SubscribeOptions};
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let jobs = engine.topic::<u32>("jobs")?;
    /// jobs.subscribe_with(|_| Err::<(), _>("no"), SubscribeOptions::new().retry(RetryPolicy::never()))?;
    /// jobs.publish_and_wait(1)?;
    /// assert!(jobs.take_dead_letters()[0].failed_at() <= Instant::now());
    /// # Ok(()) }
    /// ```
    pub fn failed_at(&self) -> Instant {
        self.failed_at
    }
}

impl<T: fmt::Debug> fmt::Debug for DeadLetter<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeadLetter")
            .field("event", &self.event)
            .field("error", &self.error)
            .field("attempts", &self.attempts)
            .field("topic", &self.topic)
            .field("subscription", &self.subscription)
            .field("seq", &self.seq)
            .field("trace_id", &self.trace_id)
            .finish_non_exhaustive()
    }
}

/// Dead letters kept while nobody subscribes to them.
pub(crate) struct DeadLetterStore<T> {
    kept: Mutex<VecDeque<DeadLetter<T>>>,
    total: AtomicU64,
    dropped: AtomicU64,
}

impl<T> DeadLetterStore<T> {
    pub(crate) fn new() -> Self {
        DeadLetterStore {
            kept: Mutex::new(VecDeque::new()),
            total: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        }
    }

    /// Counts a dead letter that was published to subscribers.
    pub(crate) fn count(&self) {
        self.total.fetch_add(1, Ordering::Relaxed);
    }

    /// Keeps a dead letter nobody subscribes to; drops (and counts) the
    /// oldest beyond the bound.
    pub(crate) fn keep(&self, letter: DeadLetter<T>) {
        self.total.fetch_add(1, Ordering::Relaxed);
        let mut kept = self.kept.lock();
        if kept.len() >= DEAD_LETTER_KEEP {
            kept.pop_front();
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        kept.push_back(letter);
    }

    pub(crate) fn take(&self) -> Vec<DeadLetter<T>> {
        let mut kept = self.kept.lock();
        kept.drain(..).collect()
    }

    pub(crate) fn kept(&self) -> usize {
        self.kept.lock().len()
    }

    pub(crate) fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}
