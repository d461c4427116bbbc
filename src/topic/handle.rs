//! [`Topic`]: the handle users publish through.

use std::fmt;
use std::time::Duration;

use super::publish::WhenFull;
use super::shared::TopicShared;
use crate::event::receipt::Receipt;
use crate::failure::dead_letter::DeadLetter;

use crate::loom::sync::atomic::{AtomicUsize, Ordering};
use crate::loom::sync::Arc;

use crate::sys::error::PublishError;

/// A handle to a typed topic. Cheap to clone; `Send + Sync`, so it can be
/// shared between threads or cloned into each.
///
/// ## Ordering
///
/// Events one thread publishes to a topic reach every plain subscription in
/// publish order. Consumer group members share a topic's events and give up
/// order between members.
///
/// ## Backpressure
///
/// See [`Backpressure`](crate::Backpressure): `publish` waits (or hands the event back, per the
/// topic's options); `try_publish` always hands it back.
///
/// ## Shutdown
///
/// After [`Engine::shutdown`](crate::Engine::shutdown) starts, publishes from
/// outside the engine return [`PublishError::Closed`] with the event; events
/// accepted before are all handled. Handlers may keep publishing while the
/// engine drains.
///
/// # Examples
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use pinbus::Engine;
/// #[derive(Clone, Debug)]
/// struct Order { id: u64 }
///
/// let engine = Engine::builder().workers(2).build()?;
/// let orders = engine.topic::<Order>("orders.created")?;
/// orders.subscribe(|ev| println!("order {}", ev.id))?;
/// orders.group("billing").subscribe(|ev| println!("bill {}", ev.id))?;
/// orders.publish(Order { id: 1 })?;
/// orders.publish_batch(vec![Order { id: 2 }, Order { id: 3 }])?;
/// orders.publish_and_wait(Order { id: 4 })?;
/// let report = engine.shutdown();
/// assert_eq!(report.published, 4);
/// # Ok(()) }
/// ```
pub struct Topic<T> {
    pub(crate) shared: Arc<TopicShared<T>>,
    /// The producer slot last used through this handle (a cache; see
    /// `ProducerSlots::with_slot`).
    pub(super) hint: AtomicUsize,
}

impl<T> Topic<T> {
    /// A new handle. From a topic with no handle, only under the registry's
    /// lock (see `TopicShared::handles`).
    pub(crate) fn from_shared(shared: Arc<TopicShared<T>>) -> Self {
        // Relaxed, as for an `Arc` clone: the count only has to reach zero
        // after every handle's last use, which the decrement orders.
        shared.handles.fetch_add(1, Ordering::Relaxed);
        Topic {
            shared,
            hint: AtomicUsize::new(usize::MAX),
        }
    }

    /// The topic's name.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let orders = engine.topic::<u64>("orders.created")?;
    /// assert_eq!(orders.name(), "orders.created");
    /// # Ok(()) }
    /// ```
    pub fn name(&self) -> &str {
        self.shared.name.as_str()
    }
}

impl<T: Clone + Send + 'static> Topic<T> {
    /// Publishes `event` to every subscription, waiting for room if a lane is
    /// full and the topic's backpressure is `Block`.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let jobs = engine.topic::<u32>("jobs")?;
    /// jobs.subscribe(|_| ())?;
    /// jobs.publish(7)?;
    /// engine.shutdown();
    /// let err = jobs.publish(8).unwrap_err(); // after shutdown: handed back
    /// assert!(err.is_closed());
    /// assert_eq!(err.into_inner(), 8);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// - [`PublishError::Full`] if a lane is full and the topic's backpressure
    ///   is `Fail`.
    /// - [`PublishError::Closed`] after shutdown started.
    ///
    /// The event comes back inside the error either way.
    #[inline(always)]
    pub fn publish(&self, event: T) -> Result<(), PublishError<T>> {
        TopicShared::send(&self.shared, &self.hint, event, WhenFull::AsConfigured)
    }

    /// Publishes `event` if every lane has room now; never waits.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pinbus::{Engine, PublishError};
    /// let engine = Engine::builder().workers(1).lane_capacity(2).build()?;
    /// let jobs = engine.topic::<u32>("jobs")?;
    /// let (release, gate) = std::sync::mpsc::channel::<()>();
    /// jobs.subscribe(move |_| { let _ = gate.recv(); })?; // stuck until released
    /// let full = (0..10).find_map(|job| match jobs.try_publish(job) {
    ///     Err(PublishError::Full(back)) => Some(back), // handed back, never waited
    ///     _ => None,
    /// });
    /// assert!(full.is_some());
    /// drop(release); // unblocks the handler
    /// # engine.shutdown();
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`PublishError::Full`] (some lane is full: the event is in no lane) or
    /// [`PublishError::Closed`]; the event comes back inside the error.
    #[inline(always)]
    pub fn try_publish(&self, event: T) -> Result<(), PublishError<T>> {
        TopicShared::send(&self.shared, &self.hint, event, WhenFull::Fail)
    }

    /// Publishes `event`, waiting at most `timeout` for room when a lane is
    /// full (whatever the topic's backpressure).
    ///
    /// # Errors
    ///
    /// [`PublishError::Timeout`] when a lane stayed full for the whole
    /// timeout (the event is in no lane), [`PublishError::Closed`] after
    /// shutdown started; the event comes back inside the error.
    ///
    /// The event is in every lane or in none: a timeout never leaves it in
    /// some lanes only. Called from a handler (on one of the engine's
    /// workers), it never waits: what does not fit waits in the worker's
    /// backlog, as for [`publish`](Topic::publish) (guarantee 10).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// use pinbus::{Engine, PublishError};
    /// let engine = Engine::builder().workers(1).lane_capacity(2).build()?;
    /// let jobs = engine.topic::<u32>("jobs")?;
    /// let (release, gate) = std::sync::mpsc::channel::<()>();
    /// jobs.subscribe(move |_| { let _ = gate.recv(); })?; // stuck until released
    /// let mut timed_out = None;
    /// for job in 0..10 {
    ///     if let Err(PublishError::Timeout(back)) = jobs.publish_timeout(job, Duration::from_millis(20)) {
    ///         timed_out = Some(back); // the lane stayed full: the event is handed back
    ///         break;
    ///     }
    /// }
    /// assert!(timed_out.is_some());
    /// drop(release); // unblocks the handler
    /// # engine.shutdown();
    /// # Ok(()) }
    /// ```
    pub fn publish_timeout(&self, event: T, timeout: Duration) -> Result<(), PublishError<T>> {
        TopicShared::send(&self.shared, &self.hint, event, WhenFull::Within(timeout))
    }

    /// Publishes many events with one ring claim per lane for each run that
    /// fits, and one clock read for the whole batch. Events keep their order.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let jobs = engine.topic::<u32>("jobs")?;
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// jobs.subscribe(move |ev| tx.send(**ev).unwrap())?;
    /// jobs.publish_batch([1, 2, 3])?;
    /// assert_eq!(rx.iter().take(3).collect::<Vec<_>>(), [1, 2, 3]); // in order
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// Under `Backpressure::Fail`, [`PublishError::Full`] with the events that
    /// did not fit (those before them were published);
    /// [`PublishError::Closed`] with the events not published after shutdown
    /// started.
    pub fn publish_batch(
        &self,
        events: impl IntoIterator<Item = T>,
    ) -> Result<(), PublishError<Vec<T>>> {
        TopicShared::send_batch(&self.shared, &self.hint, events)
    }

    /// Publishes `event` and returns a [`Receipt`] that completes when every
    /// subscription live now has handled it. The receipt's tracker comes
    /// from a small per-thread pool: no allocation after warm-up while a
    /// thread holds at most a few receipts at once.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let jobs = engine.topic::<u32>("jobs")?;
    /// jobs.subscribe(|_| ())?;
    /// let receipt = jobs.publish_tracked(1)?;
    /// receipt.wait()?; // returns once the subscription has handled it
    /// assert!(receipt.is_complete());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`publish`](Topic::publish).
    pub fn publish_tracked(&self, event: T) -> Result<Receipt, PublishError<T>> {
        TopicShared::send_tracked(&self.shared, &self.hint, event, WhenFull::AsConfigured)
    }

    /// Publishes `event` and returns once every subscription live now has
    /// handled it. Handlers still run on their workers (thread affinity is
    /// kept); only the caller waits.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::sync::{Arc, atomic::{AtomicU32, Ordering}};
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let jobs = engine.topic::<u32>("jobs")?;
    /// let sum = Arc::new(AtomicU32::new(0));
    /// let s = sum.clone();
    /// jobs.subscribe(move |ev| { s.fetch_add(**ev, Ordering::SeqCst); })?;
    /// jobs.publish_and_wait(5)?;
    /// assert_eq!(sum.load(Ordering::SeqCst), 5); // handled before it returned
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`publish`](Topic::publish), plus [`PublishError::WouldDeadlock`]
    /// when called from a handler on this engine's workers (nothing is
    /// published then).
    pub fn publish_and_wait(&self, event: T) -> Result<(), PublishError<T>> {
        if crate::sys::context::on_worker_of(self.shared.runtime.id) {
            return Err(PublishError::WouldDeadlock(event));
        }
        let receipt = self.publish_tracked(event)?;
        // Not a worker thread of this engine (checked above): cannot fail.
        let _ = receipt.wait();
        Ok(())
    }

    /// Takes the dead letters kept while the dead-letter topic had no
    /// subscriber (oldest first).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pinbus::{Engine, RetryPolicy, SubscribeOptions};
    /// let engine = Engine::builder().build()?;
    /// let orders = engine.topic::<u32>("orders")?;
    /// orders.subscribe_with(
    ///     |_| Err::<(), _>("rejected"),
    ///     SubscribeOptions::new().retry(RetryPolicy::never()),
    /// )?;
    /// orders.publish_and_wait(1)?;
    /// orders.publish_and_wait(2)?;
    /// assert_eq!((orders.dead_letter_count(), orders.dead_letters_kept()), (2, 2));
    /// let kept: Vec<u32> = orders.take_dead_letters().into_iter().map(|d| d.into_event()).collect();
    /// assert_eq!(kept, [1, 2]);
    /// assert_eq!((orders.dead_letters_kept(), orders.dead_letters_dropped()), (0, 0));
    /// # Ok(()) }
    /// ```
    pub fn take_dead_letters(&self) -> Vec<DeadLetter<T>> {
        self.shared.dead.take()
    }

    /// Dead letters kept but not yet taken.
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
    /// assert_eq!(jobs.dead_letters_kept(), 1); // no subscriber on "jobs.dead_letters"
    /// # Ok(()) }
    /// ```
    pub fn dead_letters_kept(&self) -> usize {
        self.shared.dead.kept()
    }

    /// Dead letters produced for this topic so far (published or kept).
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
    /// let _ = jobs.take_dead_letters();
    /// assert_eq!(jobs.dead_letter_count(), 1); // still counted once taken
    /// # Ok(()) }
    /// ```
    pub fn dead_letter_count(&self) -> u64 {
        self.shared.dead.total()
    }

    /// Kept dead letters dropped because the store was full (oldest first).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pinbus::{RetryPolicy, SubscribeOptions, DEAD_LETTER_KEEP};
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let jobs = engine.topic::<usize>("jobs")?;
    /// jobs.subscribe_with(|_| Err::<(), _>("no"), SubscribeOptions::new().retry(RetryPolicy::never()))?;
    /// jobs.publish_batch(0..DEAD_LETTER_KEEP + 2)?;
    /// jobs.publish_and_wait(usize::MAX)?;
    /// assert_eq!(jobs.dead_letters_dropped(), 3);
    /// assert_eq!(jobs.dead_letters_kept(), DEAD_LETTER_KEEP);
    /// # Ok(()) }
    /// ```
    pub fn dead_letters_dropped(&self) -> u64 {
        self.shared.dead.dropped()
    }

    /// Events publish interceptors refused on this topic, through any
    /// [`Intercepted`](crate::topic::intercept::Intercepted) handle.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let jobs = engine.topic::<u32>("jobs")?;
    /// let checked = jobs.intercept(|n: &mut u32| if *n == 0 { Err("zero") } else { Ok(()) });
    /// assert!(checked.publish(0).unwrap_err().is_rejected());
    /// assert_eq!(jobs.rejected_count(), 1);
    /// # Ok(()) }
    /// ```
    pub fn rejected_count(&self) -> u64 {
        self.shared.rejected.load(Ordering::Relaxed)
    }

    /// Counts one refused event.
    pub(crate) fn count_rejected(&self) {
        self.shared.rejected.fetch_add(1, Ordering::Relaxed);
    }
}

impl<T> Clone for Topic<T> {
    fn clone(&self) -> Self {
        let topic = Topic::from_shared(self.shared.clone());
        topic
            .hint
            .store(self.hint.load(Ordering::Relaxed), Ordering::Relaxed);
        topic
    }
}

impl<T> Drop for Topic<T> {
    /// The last handle of a topic with no subscription frees it.
    fn drop(&mut self) {
        // AcqRel: the release half orders this handle's uses before the
        // count reaches zero; the acquire half, on the last one, sees theirs.
        if self.shared.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared
                .hub
                .release(self.shared.name.as_str(), self.shared.uid);
        }
    }
}

impl<T> fmt::Debug for Topic<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Topic")
            .field("name", &self.name())
            .field("type", &std::any::type_name::<T>())
            .finish_non_exhaustive()
    }
}
