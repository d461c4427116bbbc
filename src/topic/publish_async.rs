//! `publish_async` and `publish_tracked_async`: publishes that await room
//! instead of blocking the thread.
//!
//! Both futures are one state machine ([`Publishing`]) that differs only in
//! whether the publish is tracked: the tracked one returns the publish's
//! [`Receipt`], the other drops it (and so never allocates one).
//!
//! Each attempt is the all-or-nothing try path (the general publish with
//! [`OnFull::Fail`]): the event goes into every lane or into none. An
//! attempt that finds a lane full hands the event back together with that
//! lane; the future then registers with the lane's room signal
//! ([`room`](crate::lane::room)), retries once (register, then re-check: a
//! consumer that freed room before the registration is seen by the retry,
//! one that frees it after notifies the listener), and awaits the listener.
//!
//! Why a notification from the consumer rather than a timer: the crate has
//! no runtime to ask for a timer, and a backoff would either poll (cost on
//! an idle engine) or add latency; the consumer's side costs one relaxed
//! load per drained batch, and only a waiting producer pays more.
//!
//! Cancel safety follows: between polls the event is in the future, never
//! in a lane, so dropping the future drops the event and publishes nothing.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use event_listener::EventListener;

use super::handle::Topic;
use super::options::Backpressure;
use super::publish::{OnFull, WhenFull};
use super::shared::TopicShared;
use super::view::producer_for;
use crate::event::receipt::Receipt;
use crate::lane::rings::Lane;
use crate::loom::sync::atomic::AtomicUsize;
use crate::loom::sync::Arc;
use crate::sys::error::PublishError;

/// What one attempt did.
enum Attempt<T> {
    /// Published (with its receipt, if tracked) or refused for good.
    Done(Result<Option<Receipt>, PublishError<T>>),
    /// A lane was full: nothing was published; the event and the lane.
    Full(T, Arc<Lane<T>>),
}

impl<T: Clone + Send + 'static> TopicShared<T> {
    /// One try: publishes into every lane if all have room, else hands the
    /// event back with a full lane. `track`: return the publish's receipt.
    fn attempt(this: &Arc<Self>, hint: &AtomicUsize, value: T, track: bool) -> Attempt<T> {
        Self::with_view(this, hint, |view, access, info| {
            if access.version() != view.version {
                this.revalidate(view, access);
            }
            if let Some(targets) = view.targets.as_deref() {
                if targets.accepts(info.kind) {
                    let full = targets.lanes.iter().find(|t| {
                        !t.lane.is_retired()
                            && !producer_for(&mut view.producers, &t.lane).has_room()
                    });
                    if let Some(full) = full {
                        // Its workers may be parked with work waiting.
                        this.wake(full);
                        return Attempt::Full(value, full.lane.clone());
                    }
                }
            }
            // Every lane has room (only this slot fills its rings, so it
            // stays), or the topic is closed: the try path says which.
            Attempt::Done(Self::send_general(
                this,
                view,
                access,
                info,
                value,
                OnFull::Fail,
                track,
            ))
        })
    }
}

/// A registration with a full lane's room signal.
struct Wait<T> {
    lane: Arc<Lane<T>>,
    listener: EventListener,
    /// Registered, but the retry that must follow the registration has not
    /// run yet.
    fresh: bool,
}

impl<T> Drop for Wait<T> {
    fn drop(&mut self) {
        self.lane.room.leave();
    }
}

/// The state [`Publish`] and [`PublishTracked`] share: the event until it
/// is published, and the registration with a full lane's room signal while
/// waiting for room.
struct Publishing<'a, T> {
    topic: &'a Topic<T>,
    value: Option<T>,
    wait: Option<Wait<T>>,
}

impl<'a, T: Clone + Send + 'static> Publishing<'a, T> {
    fn new(topic: &'a Topic<T>, event: T) -> Self {
        Publishing {
            topic,
            value: Some(event),
            wait: None,
        }
    }

    /// Polls the publish; `track`: ask for (and return) its receipt.
    fn poll_publish(
        &mut self,
        cx: &mut Context<'_>,
        track: bool,
    ) -> Poll<Result<Option<Receipt>, PublishError<T>>> {
        if let Some(when) = self.never_waits() {
            return match self.value.take() {
                Some(value) => {
                    let topic = self.topic;
                    let (shared, hint) = (&topic.shared, &topic.hint);
                    Poll::Ready(if track {
                        TopicShared::send_tracked(shared, hint, value, when).map(Some)
                    } else {
                        TopicShared::send(shared, hint, value, when).map(|()| None)
                    })
                }
                None => Poll::Pending,
            };
        }
        if let Some(w) = self.wait.as_mut().filter(|w| !w.fresh) {
            if Pin::new(&mut w.listener).poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.wait = None;
        }
        loop {
            let Some(value) = self.value.take() else {
                // Polled after it completed: the event is gone.
                return Poll::Pending;
            };
            let topic = self.topic;
            match TopicShared::attempt(&topic.shared, &topic.hint, value, track) {
                Attempt::Done(result) => {
                    self.wait = None;
                    return Poll::Ready(result);
                }
                Attempt::Full(value, lane) => {
                    self.value = Some(value);
                    match self.wait.as_mut() {
                        Some(w) if w.fresh && Arc::ptr_eq(&w.lane, &lane) => {
                            // Registered before this retry, still full: wait.
                            w.fresh = false;
                            if Pin::new(&mut w.listener).poll(cx).is_pending() {
                                return Poll::Pending;
                            }
                            self.wait = None;
                        }
                        _ => {
                            // Register, then retry (module docs).
                            self.wait = None;
                            let listener = lane.room.listen();
                            self.wait = Some(Wait {
                                lane,
                                listener,
                                fresh: true,
                            });
                        }
                    }
                }
            }
        }
    }

    /// The cases that never wait, settled as their blocking counterparts
    /// settle them: calls from a handler (as `publish`: the worker's backlog
    /// takes what does not fit) and `Fail` topics (as `try_publish`).
    fn never_waits(&self) -> Option<WhenFull> {
        let shared = &self.topic.shared;
        if crate::sys::context::on_worker_of(shared.runtime.id) {
            Some(WhenFull::AsConfigured)
        } else if shared.options.backpressure == Backpressure::Fail {
            Some(WhenFull::Fail)
        } else {
            None
        }
    }
}

impl<T> Publishing<'_, T> {
    fn debug(&self, f: &mut fmt::Formatter<'_>, name: &str) -> fmt::Result {
        f.debug_struct(name)
            .field("topic", &self.topic.name())
            .field("waiting", &self.wait.is_some())
            .finish_non_exhaustive()
    }
}

/// The future of [`Topic::publish_async`]: resolves to the publish's result.
///
/// ## Cancel safety
///
/// Cancel-safe in the sense of tokio's `Sender::send`: dropping the future
/// before it completes publishes nothing (the event is in no lane) and drops
/// the event; it is never half-published.
///
/// # Examples
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use pinbus::{Engine, Publish};
/// let engine = Engine::builder().workers(1).build()?;
/// let jobs = engine.topic::<u32>("jobs")?;
/// let publish: Publish<'_, u32> = jobs.publish_async(1);
/// drop(publish); // never polled: nothing was published
/// futures::executor::block_on(jobs.publish_async(2))?;
/// assert_eq!(engine.shutdown().published, 1);
/// # Ok(()) }
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct Publish<'a, T>(Publishing<'a, T>);

// Never pinned through: the event is moved in and out by value.
impl<T> Unpin for Publish<'_, T> {}

impl<T: Clone + Send + 'static> Future for Publish<'_, T> {
    type Output = Result<(), PublishError<T>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Untracked: no receipt is made, so there is none to drop.
        self.get_mut()
            .0
            .poll_publish(cx, false)
            .map(|r| r.map(drop))
    }
}

impl<T> fmt::Debug for Publish<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.debug(f, "Publish")
    }
}

/// The future of [`Topic::publish_tracked_async`]: resolves to the
/// publish's [`Receipt`] (itself a future that completes once every
/// subscription live at the publish has handled the event).
///
/// ## Cancel safety
///
/// As [`Publish`]: dropping the future before it completes publishes
/// nothing and drops the event. Once it has resolved, the event is
/// published whatever happens to the receipt (dropping a receipt only stops
/// tracking).
///
/// # Examples
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use pinbus::{Engine, PublishTracked, Receipt};
/// let engine = Engine::builder().workers(1).build()?;
/// let jobs = engine.topic::<u32>("jobs")?;
/// jobs.subscribe(|_| ())?;
/// let publish: PublishTracked<'_, u32> = jobs.publish_tracked_async(1);
/// futures::executor::block_on(async {
///     let receipt: Receipt = publish.await?;
///     receipt.await; // handled
///     Ok::<_, pinbus::PublishError<u32>>(())
/// })?;
/// assert_eq!(engine.shutdown().handled, 1);
/// # Ok(()) }
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct PublishTracked<'a, T>(Publishing<'a, T>);

// Never pinned through: the event is moved in and out by value.
impl<T> Unpin for PublishTracked<'_, T> {}

impl<T: Clone + Send + 'static> Future for PublishTracked<'_, T> {
    type Output = Result<Receipt, PublishError<T>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let shared = &this.0.topic.shared;
        this.0
            .poll_publish(cx, true)
            .map(|r| r.map(|receipt| shared.receipt_or_done(receipt)))
    }
}

impl<T> fmt::Debug for PublishTracked<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.debug(f, "PublishTracked")
    }
}

impl<T: Clone + Send + 'static> Topic<T> {
    /// Publishes `event`, awaiting room without blocking the thread when a
    /// lane is full and the topic's backpressure is `Block`; under `Fail` it
    /// is [`try_publish`](Topic::try_publish). The task is woken by the
    /// consumer that frees room (no polling loop, no runtime dependency).
    ///
    /// The event goes into every lane or into none, as for every publish;
    /// see [`Publish`] for cancel safety. Called from a handler (on one of
    /// this engine's workers, e.g. under `block_on`), it never waits: what
    /// does not fit waits in the worker's backlog, as for
    /// [`publish`](Topic::publish) (guarantee 10).
    ///
    /// # Errors
    ///
    /// As [`publish`](Topic::publish): [`PublishError::Full`] under `Fail`,
    /// [`PublishError::Closed`] after shutdown started (also while waiting);
    /// the event comes back inside the error.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pinbus::{Backpressure, Engine, TopicOptions};
    /// let engine = Engine::builder().workers(1).lane_capacity(2).build()?;
    /// let jobs = engine.topic_with::<u32>("jobs",
    ///     TopicOptions::default().backpressure(Backpressure::Block))?;
    /// jobs.subscribe(|_| std::thread::sleep(std::time::Duration::from_millis(1)))?;
    /// futures::executor::block_on(async {
    ///     for j in 0..20 {
    ///         jobs.publish_async(j).await?; // awaits room: the lane holds 2
    ///     }
    ///     Ok::<_, pinbus::PublishError<u32>>(())
    /// })?;
    /// assert_eq!(engine.shutdown().published, 20);
    /// # Ok(()) }
    /// ```
    pub fn publish_async(&self, event: T) -> Publish<'_, T> {
        Publish(Publishing::new(self, event))
    }

    /// [`publish_async`](Topic::publish_async) that returns the publish's
    /// [`Receipt`], as [`publish_tracked`](Topic::publish_tracked) does for
    /// [`publish`](Topic::publish): awaits room without blocking the thread
    /// under `Block`, is `publish_tracked` without waiting under `Fail` (as
    /// [`try_publish`](Topic::try_publish)), and never waits when called
    /// from a handler. Allocates the receipt (once per thread: trackers are
    /// reused). See [`PublishTracked`] for cancel safety.
    ///
    /// Await the receipt outside the engine's handlers: a handler that
    /// blocks its worker on it (in `block_on`) may be waiting for that
    /// worker's own lanes.
    ///
    /// # Errors
    ///
    /// As [`publish_async`](Topic::publish_async); the event comes back
    /// inside the error.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use std::sync::Arc;
    /// use pinbus::{Backpressure, Engine, TopicOptions};
    /// let engine = Engine::builder().workers(1).lane_capacity(2).build()?;
    /// let orders = engine.topic_with::<u64>("orders",
    ///     TopicOptions::default().backpressure(Backpressure::Block))?;
    /// let total = Arc::new(AtomicU64::new(0));
    /// let t = total.clone();
    /// orders.subscribe(move |ev| { t.fetch_add(**ev, Ordering::SeqCst); })?;
    /// futures::executor::block_on(async {
    ///     for cents in 1..=10 {
    ///         let receipt = orders.publish_tracked_async(cents).await?; // awaits room
    ///         receipt.await;                                           // awaits the handler
    ///     }
    ///     Ok::<_, pinbus::PublishError<u64>>(())
    /// })?;
    /// assert_eq!(total.load(Ordering::SeqCst), 55);
    /// # engine.shutdown();
    /// # Ok(()) }
    /// ```
    pub fn publish_tracked_async(&self, event: T) -> PublishTracked<'_, T> {
        PublishTracked(Publishing::new(self, event))
    }
}
