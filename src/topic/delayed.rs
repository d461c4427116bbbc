//! Delayed events: `publish_after`, `publish_at`, and the `Timer` that
//! takes one back.

use std::fmt;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use super::handle::Topic;
use super::publish::WhenFull;
use super::shared::TopicShared;
use crate::event::name::TopicName;
use crate::event::trace::TraceContext;

use crate::loom::sync::atomic::Ordering;
use crate::loom::sync::Arc;

use crate::runtime::workers::{Runtime, RUNNING};
use crate::sys::error::PublishError;
use crate::time::timer::{TimerKey, TimerTask};

impl<T: Clone + Send + 'static> Topic<T> {
    /// Publishes `event` once `delay` has passed on the engine's clock
    /// (within one timer tick after it). Returns a [`Timer`] that can take the
    /// event back before it fires.
    ///
    /// Delayed events of one topic due at the same tick are published in the
    /// order they were scheduled; earlier due times first. When the timer
    /// fires the event is published as by [`publish`](Topic::publish), except
    /// that a full lane makes the timer wait for room (never `Full`). At
    /// shutdown, pending timers fire or are dropped by the engine's
    /// [`TimerShutdown`](crate::TimerShutdown) policy, counted in the report.
    ///
    /// # Errors
    ///
    /// [`PublishError::Closed`] after shutdown started;
    /// [`PublishError::TimerUnavailable`] if the timer thread could not be
    /// started. The event comes back inside the error.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// use pinbus::Engine;
    /// let engine = Engine::builder().build()?;
    /// let emails = engine.topic::<String>("emails")?;
    /// let timer = emails.publish_after(Duration::from_secs(60), "reminder".to_owned())?;
    /// assert_eq!(timer.cancel(), Some("reminder".to_owned())); // taken back
    /// # Ok(()) }
    /// ```
    pub fn publish_after(&self, delay: Duration, event: T) -> Result<Timer<T>, PublishError<T>> {
        let due = self.shared.runtime.timers.now().checked_add(delay);
        self.schedule(due, event)
    }

    /// Publishes `event` at `at` on the engine's clock (at once if it has
    /// passed); as [`publish_after`](Topic::publish_after).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// use pinbus::{Engine, ManualClock};
    /// let clock = ManualClock::new();
    /// let engine = Engine::builder().clock(clock.clone()).build()?;
    /// let alarms = engine.topic::<&'static str>("alarms")?;
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// alarms.subscribe(move |ev| tx.send(**ev).unwrap())?;
    /// alarms.publish_at(clock.now() + Duration::from_secs(5), "wake up")?;
    /// clock.advance(Duration::from_secs(5));
    /// assert_eq!(rx.recv()?, "wake up");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`publish_after`](Topic::publish_after).
    pub fn publish_at(&self, at: Instant, event: T) -> Result<Timer<T>, PublishError<T>> {
        self.schedule(Some(at), event)
    }

    pub(super) fn schedule(
        &self,
        due: Option<Instant>,
        event: T,
    ) -> Result<Timer<T>, PublishError<T>> {
        let shared = &self.shared;
        if shared.runtime.state() != RUNNING {
            return Err(PublishError::Closed(event));
        }
        let task = Box::new(DelayTask {
            topic: self.clone(),
            event,
            trace: TraceContext::current(),
        });
        let timers = &shared.runtime.timers;
        let scheduled = match due {
            Some(due) => timers.schedule(due, task),
            // Beyond the clock's range: never fires on its own.
            None => timers.schedule_after(Duration::MAX, task),
        };
        match scheduled {
            Ok(key) => Ok(Timer {
                runtime: shared.runtime.clone(),
                topic: shared.name,
                key,
                event: PhantomData,
            }),
            Err(refused) => {
                let closed = matches!(
                    refused.reason,
                    crate::time::timer::ScheduleErrorReason::ShutDown
                );
                match refused.task.into_any().downcast::<DelayTask<T>>() {
                    Ok(task) if closed => Err(PublishError::Closed(task.event)),
                    Ok(task) => Err(PublishError::TimerUnavailable(task.event)),
                    // The task was built above with this type.
                    Err(_) => unreachable!("a delay task changed type"),
                }
            }
        }
    }
}

/// A delayed event waiting in the timer wheel.
pub(super) struct DelayTask<T> {
    /// A handle: the topic lives on while the event waits.
    pub(super) topic: Topic<T>,
    pub(super) event: T,
    /// The trace context current when it was scheduled: the event joins it
    /// when it fires.
    pub(super) trace: Option<TraceContext>,
}

impl<T: Clone + Send + 'static> TimerTask for DelayTask<T> {
    fn fire(self: Box<Self>) {
        let DelayTask {
            topic,
            event,
            trace,
        } = *self;
        let _trace = trace.map(TraceContext::enter);
        // Block (never Full): the timer waits for room rather than lose it.
        if TopicShared::send(&topic.shared, &topic.hint, event, WhenFull::Wait).is_err() {
            // Closed: the engine shut down under a `FireDue`/`Drop` race.
            topic.shared.delayed_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any + Send> {
        self
    }
}

/// A delayed event ([`Topic::publish_after`], [`Topic::publish_at`]) that
/// can be taken back until it fires. Dropping the `Timer` leaves the event
/// scheduled.
///
/// # Examples
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// let engine = pinbus::Engine::builder().workers(1).build()?;
/// let emails = engine.topic::<u32>("emails")?;
/// let timer = emails.publish_after(Duration::from_secs(60), 7)?;
/// assert_eq!(timer.cancel(), Some(7)); // never published
/// # Ok(()) }
/// ```
pub struct Timer<T> {
    pub(super) runtime: Arc<Runtime>,
    pub(super) topic: &'static TopicName,
    pub(super) key: TimerKey,
    pub(super) event: PhantomData<fn() -> T>,
}

impl<T: Send + 'static> Timer<T> {
    /// Takes the event back if it has not fired yet: `Some(event)` means it
    /// will never be published; `None` means it fired (or shutdown took it).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// use pinbus::{Engine, ManualClock};
    /// let clock = ManualClock::new();
    /// let engine = Engine::builder().clock(clock.clone()).build()?;
    /// let alarms = engine.topic::<&'static str>("alarms")?;
    /// let early = alarms.publish_after(Duration::from_secs(1), "early")?;
    /// let late = alarms.publish_after(Duration::from_secs(9), "late")?;
    /// clock.advance(Duration::from_secs(2)); // "early" fires
    /// assert_eq!(early.cancel(), None);
    /// assert_eq!(late.cancel(), Some("late"));
    /// # Ok(()) }
    /// ```
    pub fn cancel(self) -> Option<T> {
        let task = self.runtime.timers.cancel(self.key)?;
        match task.into_any().downcast::<DelayTask<T>>() {
            Ok(task) => Some(task.event),
            Err(_) => None,
        }
    }
}

impl<T> fmt::Debug for Timer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timer")
            .field("topic", &self.topic.as_str())
            .finish_non_exhaustive()
    }
}
