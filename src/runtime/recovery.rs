//! What happens after a handler fails: retries through the timer wheel,
//! dead letters, and slow-handler reports.
//!
//! A subscription made with a [`RetryPolicy`] gets a [`Recovery`]. When its
//! handler fails an event (an `Err` or a panic):
//!
//! 1. attempts left: a copy of the event (`T: Clone`, attempt + 1) goes into
//!    the engine's timer wheel; when it fires, the timer sends a command to
//!    the subscription's worker, which calls that one handler with it
//!    ([`Redeliver`]). The lane is never held up.
//! 2. no attempts left: a [`DeadLetter`] goes to the topic's dead-letter
//!    topic, or into the topic's bounded store while nobody subscribes there.
//!
//! Retries in flight (in the wheel, or queued to a worker) are counted in
//! `Runtime::inflight`; shutdown waits for that count to reach zero, after
//! firing or dropping the wheel's tasks by its `TimerShutdown` policy. A
//! retry that comes due while the wheel is closed is delivered at once
//! (`FireAllNow`) or dropped and counted (`FireDue`, `Drop`).

use std::any::Any;
use std::time::Duration;

use crate::event::meta::{Event, Meta};
use crate::event::receipt::TrackerRef;
use crate::failure::dead_letter::DeadLetter;
use crate::failure::retry::{Jitter, RetryPolicy};
use crate::loom::sync::atomic::Ordering;
use crate::loom::sync::Arc;
use crate::runtime::drain::DrainKey;
use crate::runtime::sub_state::SubShared;
use crate::runtime::workers::{Runtime, Worker};
use crate::time::timer::{TimerShutdown, TimerTask};

/// What to do after a failed attempt.
pub(crate) enum Next<T> {
    /// Nothing more (retry scheduled, dead-lettered, or no policy).
    Done,
    /// Deliver this copy again now, on this thread (the wheel is closed and
    /// the shutdown policy fires everything).
    RetryNow(Event<T>),
}

/// Per-subscription failure handling (type-erased over `T: Clone` so that
/// `HandlerEntry<T>` needs no bound).
pub(crate) trait OnFailure<T>: Send {
    /// After attempt `ev.attempt()` failed with `error`.
    fn failed(&mut self, sub: &SubShared, ev: &Event<T>, error: Box<str>) -> Next<T>;
}

/// Where a subscription's dead letters go: the topic layer owns the
/// dead-letter topic and the topic's bounded store, and implements this.
pub(crate) trait DeadLetterSink<T>: Send {
    /// Publishes `letter`, or keeps it when nobody subscribes to the dead
    /// letters (or the publish is refused).
    fn send(&self, letter: DeadLetter<T>);
}

/// Calls subscription `sub`'s handler, in drain `key` of the calling worker,
/// with a retry copy again, if the subscription still exists; says whether
/// it did. (The drain types, which know plain subscriptions from group
/// members, provide it.)
pub(crate) type Redeliver<T> = fn(&mut Worker, DrainKey, u64, &Event<T>) -> bool;

/// The retry and dead-letter path of one subscription.
pub(crate) struct Recovery<T> {
    policy: RetryPolicy,
    runtime: Arc<Runtime>,
    sink: Box<dyn DeadLetterSink<T>>,
    worker: usize,
    /// The key of the drain that holds the handler on `worker`.
    key: DrainKey,
    redeliver: Redeliver<T>,
    jitter: Jitter,
}

impl<T: Clone + Send + 'static> Recovery<T> {
    pub(crate) fn new(
        policy: RetryPolicy,
        runtime: Arc<Runtime>,
        sink: Box<dyn DeadLetterSink<T>>,
        (worker, key): (usize, DrainKey),
        redeliver: Redeliver<T>,
    ) -> Self {
        Recovery {
            policy,
            runtime,
            sink,
            worker,
            key,
            redeliver,
            jitter: Jitter::new(key.topic ^ key.lane << 32 ^ worker as u64),
        }
    }

    fn dead_letter(&self, sub: &SubShared, ev: &Event<T>, error: Box<str>) {
        let letter = DeadLetter {
            event: ev.get().clone(),
            error: error.into(),
            attempts: ev.attempt(),
            topic: ev.topic.as_str(),
            subscription: sub.name.clone(),
            seq: ev.seq(),
            trace_id: ev.trace_id(),
            published_at: ev.published_at(),
            failed_at: self.runtime.timers.now(),
        };
        self.sink.send(letter);
        // Release: a test that sees the count finds the letter.
        sub.dead_lettered.fetch_add(1, Ordering::Release);
    }
}

impl<T: Clone + Send + 'static> OnFailure<T> for Recovery<T> {
    fn failed(&mut self, sub: &SubShared, ev: &Event<T>, error: Box<str>) -> Next<T> {
        let attempt = ev.attempt();
        if attempt >= self.policy.attempts() || sub.removed.load(Ordering::Relaxed) {
            self.dead_letter(sub, ev, error);
            return Next::Done;
        }
        // The copy holds its own receipt share: a tracked event's receipt
        // completes after its last attempt (or its dead letter).
        let again = Event::tracked(
            ev.get().clone(),
            ev.topic,
            Meta {
                attempt: attempt + 1,
                // Redelivered on its own.
                end_of_batch: true,
                // Its time is this batch's, not the redelivery's.
                ..ev.meta.resolved()
            },
            ev.receipt.as_ref().map(TrackerRef::another),
        );
        let delay = self.policy.delay_before(attempt + 1, self.jitter.unit());
        let task = Box::new(RetryTask {
            event: again,
            sub: sub.id,
            worker: self.worker,
            key: self.key,
            redeliver: self.redeliver,
            guard: Inflight::new(self.runtime.clone()),
        });
        match self.runtime.timers.schedule_after(delay, task) {
            Ok(_) => {
                // Release: whoever sees the count sees the timer in the wheel
                // (tests move a ManualClock once retries are counted).
                sub.retried.fetch_add(1, Ordering::Release);
                Next::Done
            }
            Err(refused) => {
                // The wheel is closed: the engine is shutting down.
                let Ok(task) = refused.task.into_any().downcast::<RetryTask<T>>() else {
                    return Next::Done;
                };
                let task = *task;
                if self.runtime.timer_policy == TimerShutdown::FireAllNow {
                    sub.retried.fetch_add(1, Ordering::Release);
                    task.guard.complete();
                    Next::RetryNow(task.event)
                } else {
                    // Dropping the task counts it as a dropped retry.
                    drop(task);
                    Next::Done
                }
            }
        }
    }
}

/// One retry in flight: counted in `Runtime::inflight` from scheduling until
/// the worker has run it, or counted as dropped if it never runs.
pub(crate) struct Inflight {
    runtime: Arc<Runtime>,
    done: bool,
}

impl Inflight {
    pub(crate) fn new(runtime: Arc<Runtime>) -> Self {
        runtime.inflight.fetch_add(1, Ordering::SeqCst);
        Inflight {
            runtime,
            done: false,
        }
    }

    /// Marks the retry delivered (not dropped).
    pub(crate) fn complete(mut self) {
        self.done = true;
    }
}

impl Drop for Inflight {
    fn drop(&mut self) {
        if !self.done {
            self.runtime.retries_dropped.fetch_add(1, Ordering::Relaxed);
        }
        self.runtime.task_done();
    }
}

/// A retry waiting in the wheel.
struct RetryTask<T> {
    event: Event<T>,
    sub: u64,
    worker: usize,
    key: DrainKey,
    redeliver: Redeliver<T>,
    guard: Inflight,
}

impl<T: Send + 'static> TimerTask for RetryTask<T> {
    fn fire(self: Box<Self>) {
        let RetryTask {
            event,
            sub,
            worker,
            key,
            redeliver,
            guard,
        } = *self;
        let runtime = guard.runtime.clone();
        // If the worker has exited the command (and the guard) is dropped:
        // counted as a dropped retry.
        let _ = runtime.send(
            worker,
            Box::new(move |w: &mut Worker| {
                if redeliver(w, key, sub, &event) {
                    guard.complete();
                }
                // Otherwise the guard drops here and counts the retry as
                // dropped.
            }),
        );
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        self
    }
}

/// Reports a handler call that took longer than `threshold`.
pub(crate) fn report_slow(sub: &SubShared, elapsed: Duration, threshold: Duration) {
    sub.slow.fetch_add(1, Ordering::Relaxed);
    #[cfg(feature = "tracing")]
    tracing::warn!(
        topic = sub.topic,
        subscription = %sub.name,
        elapsed_us = elapsed.as_micros() as u64,
        threshold_us = threshold.as_micros() as u64,
        "pinbus: slow handler"
    );
    #[cfg(not(feature = "tracing"))]
    let _ = (elapsed, threshold);
}
