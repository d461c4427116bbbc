//! Consumer groups.

use std::fmt;

use super::handle::Topic;
use super::shared::TopicShared;
use super::subscribe::{OpenDeadLetters, SubscribeChain};
use super::targets::LiveSub;
use crate::event::meta::Event;
use crate::lane::keyed::{KeyFn, Partitions, PARTITIONS};
use crate::lane::rings::Lane;
use crate::layer::outcome::HandlerOutcome;
use crate::layer::Layers;
use crate::loom::sync::atomic::Ordering;
use crate::loom::sync::Arc;
use crate::runtime::dispatch::GroupDrain;

use crate::runtime::solo::BoxedHandler;
use crate::runtime::sub_state::SubShared;
use crate::runtime::subscription::{Detach, SubscribeOptions, Subscription};

use crate::runtime::drain::DrainKey;
use crate::runtime::workers::RUNNING;
use crate::sys::error::SubscribeError;

impl<T: Clone + Send + 'static> TopicShared<T> {
    /// Adds a member to group `group`: of a keyed group (`keyed`: its key),
    /// or of a plain one (`None`).
    pub(super) fn subscribe_group(
        this: &Arc<Self>,
        group: &str,
        handler: BoxedHandler<T>,
        options: SubscribeOptions,
        keyed: Option<KeyFn<T>>,
        open: OpenDeadLetters,
    ) -> Result<Subscription, SubscribeError> {
        let refuse = |what, instead| SubscribeError::KeyedGroup {
            group: group.to_owned(),
            what,
            instead,
        };
        if keyed.is_some() && options.retry.is_some() {
            return Err(refuse(
                "is keyed and cannot take a retry policy (a retry would break the order per key)",
                "retry inside the handler, or use a plain group",
            ));
        }
        if let Some(reason) = invalid_group_name(group) {
            return Err(SubscribeError::InvalidGroupName {
                name: group.to_owned(),
                reason,
            });
        }
        let workers = this.runtime.workers.len();
        if let Some(w) = options.worker.filter(|&w| w >= workers) {
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
        let g = control.group(group, workers, this.runtime.lane_capacity);
        let first = control.groups[g].members.iter().all(|&m| m == 0);
        if let Some(side) = control
            .lane(control.groups[g].lane)
            .and_then(|l| l.group.as_ref())
        {
            let mut parts = side.keyed.lock();
            match (parts.is_some(), &keyed) {
                (false, Some(key)) if first => {
                    *parts = Some(Arc::new(Partitions::new(key.clone(), PARTITIONS)));
                }
                (false, Some(_)) => {
                    return Err(refuse(
                        "has plain members",
                        "give the keyed group a name of its own",
                    ))
                }
                (true, None) => {
                    return Err(refuse(
                        "is keyed",
                        "subscribe through topic.group(name).keyed(key)",
                    ))
                }
                _ => {}
            }
        }
        let entry = &mut control.groups[g];
        let w = options
            .worker
            .unwrap_or((this.home + entry.placed) % workers);
        entry.placed += 1;
        entry.members[w] += 1;
        let lane_id = entry.lane;
        let Some(lane) = control.lane(lane_id).cloned() else {
            // A live group always has its lane.
            return Err(this.closed());
        };
        // Counted in before producers can see the lane (snapshot below).
        lane.add_consumer(1);
        let mut refused = None;
        let (uid, name, salt) = (this.uid, this.name, this.salt);
        let key = DrainKey {
            topic: uid,
            lane: lane.uid,
        };
        this.slots.snapshot().update(|_, next| {
            let entry = Self::entry(this, &sub, next, handler, recovery, slow, (w, key, true));
            let drained = lane.clone();
            let runtime = this.runtime.clone();
            refused = this
                .runtime
                .send(
                    w,
                    Box::new(move |worker: &mut crate::runtime::workers::Worker| {
                        worker
                            .drain_mut(key, || GroupDrain::new(drained, uid, name, salt, runtime))
                            .members
                            .push(entry);
                    }),
                )
                .err();
            if refused.is_some() {
                control.groups[g].members[w] -= 1;
                lane.add_consumer(-1);
                if control.groups[g].members.iter().all(|&m| m == 0) {
                    let entry = control.groups.remove(g);
                    control.lanes[entry.lane] = None;
                }
            }
            control.targets(&this.runtime)
        });
        if refused.is_none() {
            control.subs.push(LiveSub {
                shared: sub.clone(),
                group: Some(group.into()),
                lane: lane.clone(),
                worker: w,
            });
        }
        drop(control);
        if refused.is_some() {
            drop(refused);
            return Err(this.closed());
        }
        Ok(Subscription {
            detach: Box::new(GroupDetach {
                topic: this.clone(),
                lane,
                worker: w,
                sub: sub.id,
            }),
            shared: sub,
            runtime: this.runtime.clone(),
            worker: w,
        })
    }
}

/// Why a group name is refused, if it is. Group names become parts of NATS
/// durable and subject names in bridges, so they follow topic names' rules
/// for a single part.
pub(super) fn invalid_group_name(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("it is empty; give the group a name")
    } else {
        crate::event::name::invalid_name_part(name)
    }
}

pub(super) struct GroupDetach<T> {
    pub(super) topic: Arc<TopicShared<T>>,
    /// The group's lane (a group is found by it: its index may change).
    pub(super) lane: Arc<Lane<T>>,
    pub(super) worker: usize,
    /// `SubShared::id`, to drop it from `Control::subs`.
    pub(super) sub: u64,
}

impl<T: Clone + Send + 'static> Detach for GroupDetach<T> {
    /// A group whose last member leaves is removed: what its lane still
    /// holds is discarded (receipts complete), as for any subscription
    /// removed before it got to an event, and a later member starts a new
    /// group with a new lane.
    fn detach(&self) {
        let topic = &self.topic;
        let mut control = topic.control.lock();
        control.forget(self.sub);
        let Some(g) = control.group_of(&self.lane) else {
            return;
        };
        let entry = &mut control.groups[g];
        let members = &mut entry.members[self.worker];
        *members = members.saturating_sub(1);
        let worker_done = *members == 0;
        let group_done = entry.members.iter().all(|&m| m == 0);
        self.lane.add_consumer(-1);
        if group_done {
            let entry = control.groups.remove(g);
            control.lanes[entry.lane] = None;
        }
        topic.publish_snapshot(&control);
        drop(control);
        let key = DrainKey {
            topic: topic.uid,
            lane: self.lane.uid,
        };
        if group_done {
            // Discard now what is queued, so nothing waits on it; what a
            // publish already under way still adds is swept when the drain
            // is removed. Not if a claim holds the group's locks: a keyed
            // group's key function that removed the last member runs under
            // them (waiting would deadlock); the drain's sweep does it then.
            if let Some(group) = self.lane.group.as_ref() {
                let mut stray = 0;
                let swept = group.sweep_unless_busy(&self.lane, &mut stray);
                topic.discarded.fetch_add(swept, Ordering::Relaxed);
            }
            TopicShared::retire_drain(topic, self.worker, &self.lane);
        } else if worker_done {
            // No member left on this worker: its drain goes (the group's
            // events wait in the shared lane for the members elsewhere).
            topic.runtime.remove_drain(self.worker, key);
        }
        topic.release_if_unused();
    }
}

/// A consumer group: every event of the topic goes to exactly one member.
/// Members are spread over the workers and run in parallel; order between
/// members is not kept.
///
/// # Examples
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use pinbus::Engine;
/// let engine = Engine::builder().workers(2).build()?;
/// let jobs = engine.topic::<u32>("jobs")?;
/// let workers = jobs.group("workers");
/// workers.subscribe(|job| println!("member A got {}", **job))?;
/// workers.subscribe(|job| println!("member B got {}", **job))?;
/// for j in 0..10 { jobs.publish(j)?; }
/// engine.shutdown();
/// # Ok(()) }
/// ```
pub struct Group<T> {
    /// A handle: the topic lives on while the group handle does.
    pub(super) topic: Topic<T>,
    pub(super) name: String,
}

impl<T: Clone + Send + 'static> Group<T> {
    /// The group's name.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let billing = engine.topic::<u32>("orders")?.group("billing");
    /// assert_eq!(billing.name(), "billing");
    /// # Ok(()) }
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds a member. Call it N times for N members.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pinbus::SubscribeError;
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let jobs = engine.topic::<u32>("jobs")?;
    /// jobs.group("workers").subscribe(|_| ())?;
    /// let err = jobs.group("").subscribe(|_| ()).unwrap_err();
    /// assert!(matches!(err, SubscribeError::InvalidGroupName { .. }));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`SubscribeError::InvalidGroupName`] for an empty or malformed name;
    /// [`SubscribeError::Closed`] after shutdown started.
    pub fn subscribe<F, R>(&self, handler: F) -> Result<Subscription, SubscribeError>
    where
        F: FnMut(&Event<T>) -> R + Send + 'static,
        R: HandlerOutcome + 'static,
    {
        self.subscribe_with(handler, SubscribeOptions::new())
    }

    /// [`subscribe`](Group::subscribe) with options (name, worker).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pinbus::{SubscribeError, SubscribeOptions};
    /// let engine = pinbus::Engine::builder().workers(2).build()?;
    /// let workers = engine.topic::<u32>("jobs")?.group("workers");
    /// let member = workers.subscribe_with(|_| (), SubscribeOptions::new().name("w1").worker(1))?;
    /// assert_eq!((member.name(), member.worker()), ("w1", 1));
    /// let err = workers.subscribe_with(|_| (), SubscribeOptions::new().worker(5)).unwrap_err();
    /// assert!(matches!(err, SubscribeError::NoSuchWorker { worker: 5, workers: 2 }));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`subscribe`](Group::subscribe), plus
    /// [`SubscribeError::NoSuchWorker`] for a worker index the engine lacks,
    /// [`SubscribeError::InvalidRetry`] for a retry policy that cannot work,
    /// and [`SubscribeError::DeadLetterTopic`] when a retry policy's
    /// dead-letter topic cannot be opened (its name is taken by another
    /// type, or too long).
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

impl<T: Clone + Send + 'static> SubscribeChain<T> for Group<T> {
    fn subscribe_boxed(
        &self,
        handler: BoxedHandler<T>,
        options: SubscribeOptions,
    ) -> Result<Subscription, SubscribeError> {
        let (topic, open) = (&self.topic.shared, OpenDeadLetters::AtSubscribe);
        TopicShared::subscribe_group(topic, &self.name, handler, options, None, open)
    }
}

impl<T> fmt::Debug for Group<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Group")
            .field("topic", &self.topic.name())
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<T: Clone + Send + 'static> Topic<T> {
    /// A consumer group of this topic: each event goes to exactly one of the
    /// group's members (subscriptions made through the returned handle).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let engine = pinbus::Engine::builder().workers(2).build()?;
    /// let jobs = engine.topic::<u32>("jobs")?;
    /// let workers = jobs.group("workers");
    /// workers.subscribe(|_| ())?;
    /// workers.subscribe(|_| ())?;
    /// jobs.publish_batch(0..10)?;
    /// assert_eq!(engine.shutdown().handled, 10); // each event to one member only
    /// # Ok(()) }
    /// ```
    pub fn group(&self, name: &str) -> Group<T> {
        Group {
            topic: self.clone(),
            name: name.to_owned(),
        }
    }
}
