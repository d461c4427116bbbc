//! Subscribing and unsubscribing: handler entries, lane retirement.

use std::time::Duration;

use super::handle::Topic;
use super::shared::TopicShared;
use super::targets::LiveSub;
use crate::event::meta::Event;
use crate::failure::dead_letter::DeadLetter;
use crate::failure::retry::RetryPolicy;
use crate::lane::rings::Lane;
use crate::layer::outcome::HandlerOutcome;
use crate::layer::{Handler, Layers};
use crate::loom::sync::{Arc, Mutex};
use crate::runtime::dispatch::{redeliver_group, redeliver_plain, PlainDrain};
use crate::runtime::recovery::{DeadLetterSink, OnFailure, Recovery, Redeliver};
use crate::runtime::solo::{self, BoxedHandler};
use crate::runtime::sub_state::SubShared;
use crate::runtime::subscription::{Detach, HandlerEntry, SubscribeOptions, Subscription};

use crate::runtime::drain::{DrainKey, Quiesce};
use crate::runtime::workers::RUNNING;
use crate::sys::error::{SubscribeError, TopicError};
use crate::sys::fence;
use crate::topic::names::Hub;

impl<T: Clone + Send + 'static> TopicShared<T> {
    /// The fallible half of a new subscription's failure path: checks the
    /// retry policy and, when `open` says so, opens the dead-letter topic.
    pub(super) fn prepare_recovery(
        this: &Arc<Self>,
        policy: Option<RetryPolicy>,
        open: OpenDeadLetters,
    ) -> Result<Option<Prepared<T>>, SubscribeError> {
        let Some(policy) = policy else {
            return Ok(None);
        };
        check_retry(&policy)?;
        if open == OpenDeadLetters::OnFirstLetter {
            return Ok(Some((policy, None)));
        }
        let dead_letters = Hub::open_dead_letters::<DeadLetter<T>>(&this.hub, this.name.as_str())
            .map_err(|e| match e {
            TopicError::Closed => this.closed(),
            other => SubscribeError::DeadLetterTopic {
                reason: other.to_string(),
            },
        })?;
        Ok(Some((policy, Some(dead_letters))))
    }

    /// The handler entry of a new subscription on drain `key` of worker `w`.
    pub(super) fn entry(
        this: &Arc<Self>,
        sub: &Arc<SubShared>,
        since: u64,
        handler: BoxedHandler<T>,
        recovery: Option<Prepared<T>>,
        slow: Option<Duration>,
        (w, key, group): (usize, DrainKey, bool),
    ) -> HandlerEntry<T> {
        let on_failure = recovery.map(|(policy, dead_letters)| {
            let sink = Box::new(DeadLetterRoute {
                topic: this.clone(),
                dead_letters: Mutex::new(dead_letters),
            });
            let redeliver: Redeliver<T> = match group {
                true => redeliver_group::<T>,
                false => redeliver_plain::<T>,
            };
            let (runtime, at) = (this.runtime.clone(), (w, key));
            Box::new(Recovery::new(policy, runtime, sink, at, redeliver)) as Box<dyn OnFailure<T>>
        });
        HandlerEntry::new(sub.clone(), since, handler).with_recovery(on_failure, slow)
    }

    pub(super) fn subscribe_plain(
        this: &Arc<Self>,
        handler: BoxedHandler<T>,
        options: SubscribeOptions,
        open: OpenDeadLetters,
    ) -> Result<Subscription, SubscribeError> {
        let workers = this.runtime.workers.len();
        let w = options.worker.unwrap_or(this.home);
        if w >= workers {
            return Err(SubscribeError::NoSuchWorker { worker: w, workers });
        }
        let recovery = Self::prepare_recovery(this, options.retry, open)?;
        let slow = options.slow;
        let sub = Arc::new(SubShared::new(
            options.name,
            this.name.as_str(),
            options.latency_every,
        ));
        let mut control = this.control.lock();
        if control.state != RUNNING {
            return Err(this.closed());
        }
        let lane = control.worker_lane(w, this.runtime.lane_capacity);
        control.worker_subs[w] += 1;
        // A command the worker refused (it has exited): dropped once no lock
        // is held, since it owns the handler.
        let mut refused = None;
        let (uid, name, salt) = (this.uid, this.name, this.salt);
        let key = DrainKey {
            topic: uid,
            lane: lane.uid,
        };
        this.slots.snapshot().update(|_, next| {
            // Queued before `next` is published: the worker has the handler
            // before it can see an event stamped `next` (`DrainCx`).
            let entry = Self::entry(this, &sub, next, handler, recovery, slow, (w, key, false));
            let drained = lane.clone();
            refused = this
                .runtime
                .send(
                    w,
                    Box::new(move |worker: &mut crate::runtime::workers::Worker| {
                        worker
                            .drain_mut(key, || PlainDrain::new(drained, uid, name, salt))
                            .handlers
                            .push(entry);
                    }),
                )
                .err();
            if refused.is_some() {
                control.worker_subs[w] -= 1;
            }
            control.targets(&this.runtime)
        });
        if refused.is_none() {
            control.subs.push(LiveSub {
                shared: sub.clone(),
                group: None,
                lane,
                worker: w,
            });
        }
        drop(control);
        if refused.is_some() {
            drop(refused);
            return Err(this.closed());
        }
        Ok(Subscription {
            detach: Box::new(PlainDetach {
                topic: this.clone(),
                worker: w,
                sub: sub.id,
            }),
            shared: sub,
            runtime: this.runtime.clone(),
            worker: w,
        })
    }

    /// Hands a retired lane's drain on worker `w` to the worker, to be
    /// removed once no publish can reach the lane: the caller has published
    /// a snapshot without the lane; the heavy fence makes every publish that
    /// starts after it see that snapshot, and [`SlotsQuiet`] waits out the
    /// ones already running (the shutdown grace period's argument,
    /// [`producer`](crate::core::producer)).
    pub(super) fn retire_drain(this: &Arc<Self>, w: usize, lane: &Lane<T>) {
        fence::heavy();
        let key = DrainKey {
            topic: this.uid,
            lane: lane.uid,
        };
        let quiet = SlotsQuiet {
            topic: this.clone(),
            pending: this.slots.all().collect(),
        };
        this.runtime.retire_drain(w, key, Box::new(quiet));
    }
}

/// When a new subscription with a retry policy opens its topic's
/// dead-letter topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum OpenDeadLetters {
    /// As it subscribes, so that a dead-letter name taken by another type
    /// is refused then ([`SubscribeError::DeadLetterTopic`]).
    AtSubscribe,
    /// On its worker, when its first dead letter comes: for a pattern's
    /// part, which subscribes under the registry's lock and so cannot open
    /// a topic ([`pattern_parts`](crate::topic::pattern_parts), invariant
    /// 2). Letters are kept in the topic's store until the topic opens.
    OnFirstLetter,
}

/// Checks a retry policy; the error says what to change.
pub(super) fn check_retry(policy: &RetryPolicy) -> Result<(), SubscribeError> {
    policy
        .check()
        .map_err(|problem| SubscribeError::InvalidRetry { problem })
}

/// A subscription's dead letters: published to the topic's dead-letter
/// topic while it has subscribers, kept in the topic's bounded store
/// otherwise (or when the publish is refused, or the dead-letter topic
/// cannot be opened).
pub(super) struct DeadLetterRoute<T> {
    pub(super) topic: Arc<TopicShared<T>>,
    /// The dead-letter topic; `None` until it is opened
    /// ([`OpenDeadLetters::OnFirstLetter`]). Only the subscription's worker
    /// takes the lock (uncontended), and takes the registry's lock under it
    /// to open the topic; nothing takes them the other way round.
    pub(super) dead_letters: Mutex<Option<Topic<DeadLetter<T>>>>,
}

impl<T: Clone + Send + 'static> DeadLetterRoute<T> {
    /// The dead-letter topic, opened now if it was not yet. `None` when it
    /// cannot be opened: the engine is shutting down, or its name is taken
    /// by a topic of another type.
    fn dead_letters(&self) -> Option<Topic<DeadLetter<T>>> {
        let mut opened = self.dead_letters.lock();
        if opened.is_none() {
            let topic = &self.topic;
            *opened = Hub::open_dead_letters(&topic.hub, topic.name.as_str()).ok();
        }
        opened.clone()
    }
}

impl<T: Clone + Send + 'static> DeadLetterSink<T> for DeadLetterRoute<T> {
    fn send(&self, letter: DeadLetter<T>) {
        match self.dead_letters() {
            Some(dead) if dead.shared.has_subscribers() => match dead.publish(letter) {
                Ok(()) => self.topic.dead.count(),
                // Closed or full: keep it rather than lose it.
                Err(e) => self.topic.dead.keep(e.into_inner()),
            },
            _ => self.topic.dead.keep(letter),
        }
    }
}

/// Says when every producer slot of a topic has been seen outside a publish
/// since a retirement's heavy fence ([`TopicShared::retire_drain`]).
pub(super) struct SlotsQuiet<T> {
    pub(super) topic: Arc<TopicShared<T>>,
    /// Slots not yet seen inactive.
    pub(super) pending: Vec<usize>,
}

impl<T: Clone + Send + 'static> Quiesce for SlotsQuiet<T> {
    fn quiescent(&mut self) -> bool {
        let slots = &self.topic.slots;
        self.pending.retain(|&i| slots.is_active(i));
        self.pending.is_empty()
    }
}

pub(super) struct PlainDetach<T> {
    pub(super) topic: Arc<TopicShared<T>>,
    pub(super) worker: usize,
    /// `SubShared::id`, to drop it from `Control::subs`.
    pub(super) sub: u64,
}

impl<T: Clone + Send + 'static> Detach for PlainDetach<T> {
    fn detach(&self) {
        let topic = &self.topic;
        let mut control = topic.control.lock();
        control.forget(self.sub);
        let subs = &mut control.worker_subs[self.worker];
        *subs = subs.saturating_sub(1);
        let retired = if *subs == 0 {
            // The worker's last subscription to the topic: its lane goes.
            let lane = control.retire_worker_lane(self.worker);
            topic.publish_snapshot(&control);
            lane
        } else {
            None
        };
        drop(control);
        if let Some(lane) = retired {
            TopicShared::retire_drain(topic, self.worker, &lane);
        }
        topic.release_if_unused();
    }
}

/// A checked retry policy and the dead-letter topic it feeds (`None`: not
/// opened yet, [`OpenDeadLetters::OnFirstLetter`]).
pub(super) type Prepared<T> = (RetryPolicy, Option<Topic<DeadLetter<T>>>);

/// What every public subscribing handle is to the engine: [`Topic`],
/// [`Group`](crate::Group), [`KeyedGroup`](crate::KeyedGroup),
/// [`Pattern`](crate::Pattern) and [`PatternGroup`](crate::PatternGroup)
/// each say how a handler chain becomes a subscription
/// ([`subscribe_boxed`](SubscribeChain::subscribe_boxed)), and their
/// `subscribe`, `subscribe_with` and `subscribe_stream` all go through
/// the one wrapping step, [`subscribe_via`](SubscribeChain::subscribe_via).
pub(super) trait SubscribeChain<T: 'static> {
    /// Subscribes `handler`, its layers already around it, with `options`
    /// (their layers taken out).
    fn subscribe_boxed(
        &self,
        handler: BoxedHandler<T>,
        options: SubscribeOptions,
    ) -> Result<Subscription, SubscribeError>;

    /// Wraps `handler` in the options' layers, as the one boxed call a
    /// worker makes per event, and subscribes it.
    fn subscribe_via<F, R, L>(
        &self,
        handler: F,
        options: SubscribeOptions<L>,
    ) -> Result<Subscription, SubscribeError>
    where
        F: FnMut(&Event<T>) -> R + Send + 'static,
        R: HandlerOutcome + 'static,
        L: Layers<T>,
    {
        let (options, layers) = options.split();
        self.subscribe_boxed(solo::boxed(layers.wrap(Handler::new(handler))), options)
    }
}

impl<T: Clone + Send + 'static> SubscribeChain<T> for Topic<T> {
    fn subscribe_boxed(
        &self,
        handler: BoxedHandler<T>,
        options: SubscribeOptions,
    ) -> Result<Subscription, SubscribeError> {
        TopicShared::subscribe_plain(&self.shared, handler, options, OpenDeadLetters::AtSubscribe)
    }
}

impl<T: Clone + Send + 'static> Topic<T> {
    /// Adds a subscription: `handler` runs on a worker for every event
    /// published from now on, in per-producer order.
    ///
    /// The handler may return `()` or `Result<(), E>` with `E: Display`; an
    /// `Err` or a panic counts as a failed delivery and never stops the worker.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pinbus::SubscribeError;
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let jobs = engine.topic::<u32>("jobs")?;
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// jobs.subscribe(move |ev| tx.send(**ev).unwrap())?;
    /// jobs.publish(3)?;
    /// assert_eq!(rx.recv()?, 3);
    /// engine.shutdown();
    /// assert!(matches!(jobs.subscribe(|_| ()), Err(SubscribeError::Closed { .. })));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`SubscribeError::Closed`] after shutdown started.
    pub fn subscribe<F, R>(&self, handler: F) -> Result<Subscription, SubscribeError>
    where
        F: FnMut(&Event<T>) -> R + Send + 'static,
        R: HandlerOutcome + 'static,
    {
        self.subscribe_with(handler, SubscribeOptions::new())
    }

    /// [`subscribe`](Topic::subscribe) with options (name, worker).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pinbus::{SubscribeError, SubscribeOptions};
    /// let engine = pinbus::Engine::builder().workers(2).build()?;
    /// let jobs = engine.topic::<u32>("jobs")?;
    /// let sub = jobs.subscribe_with(|_| (), SubscribeOptions::new().name("audit").worker(1))?;
    /// assert_eq!((sub.name(), sub.worker()), ("audit", 1));
    /// let err = jobs.subscribe_with(|_| (), SubscribeOptions::new().worker(2)).unwrap_err();
    /// assert!(matches!(err, SubscribeError::NoSuchWorker { worker: 2, workers: 2 }));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`SubscribeError::Closed`] after shutdown started;
    /// [`SubscribeError::NoSuchWorker`] for a worker index the engine lacks;
    /// [`SubscribeError::InvalidRetry`] for a retry policy that cannot work;
    /// [`SubscribeError::DeadLetterTopic`] when a retry policy's dead-letter
    /// topic cannot be opened (its name is taken by another type, or too long).
    pub fn subscribe_with<F, R, L>(
        &self,
        handler: F,
        options: SubscribeOptions<L>,
    ) -> Result<Subscription, SubscribeError>
    where
        F: FnMut(&Event<T>) -> R + Send + 'static,
        R: HandlerOutcome + 'static,
        L: Layers<T>,
    {
        self.subscribe_via(handler, options)
    }
}
