//! Wildcard subscriptions: [`Pattern`], a subscription to every topic of
//! one event type whose name matches a NATS-style filter, and
//! [`PatternGroup`], one consumer group across those topics.
//!
//! A pattern subscription is made of ordinary subscriptions, one per
//! matching topic ([`pattern_parts`](crate::topic::pattern_parts)): the
//! registry attaches one to each matching topic that exists when it
//! subscribes and to each matching topic created later, before that topic
//! is visible to anyone, so guarantee 5 holds. Each topic's snapshot then
//! simply has one more lane or handler: publishing costs nothing more than
//! for any subscriber, and nothing at all while no pattern matches.

use std::any::TypeId;
use std::fmt;
use std::marker::PhantomData;

use crate::event::meta::Event;
use crate::event::name::TopicName;
use crate::event::subject::{self, Problem};
use crate::layer::outcome::HandlerOutcome;
use crate::layer::Layers;
use crate::loom::sync::atomic::{AtomicUsize, Ordering};
use crate::loom::sync::{Arc, Mutex};
use crate::runtime::solo::BoxedHandler;
use crate::runtime::sub_state::SubShared;
use crate::runtime::subscription::{SubscribeOptions, Subscription};
use crate::runtime::workers::RUNNING;
use crate::sys::error::{SubscribeError, TopicError};
use crate::topic::groups::invalid_group_name;
use crate::topic::names::{Hub, PatternEntry};
use crate::topic::open::is_internal;
use crate::topic::pattern_parts::{Parts, PatternDetach};
use crate::topic::subscribe::{check_retry, SubscribeChain};

/// A wildcard filter over topic names, for events of type `T`: its
/// subscriptions receive the events of every topic of type `T` whose name
/// it matches, the topics that exist when they subscribe and those created
/// later. Made by [`Engine::pattern`](crate::Engine::pattern).
///
/// Filters have NATS subject semantics: dot-separated tokens, where `*`
/// matches exactly one token and a final `>` one or more (`orders.>`
/// matches `orders.created` and `orders.eu.created`, not `orders`).
///
/// ## Matching
///
/// - [`Event::topic`] names the topic each event came from.
/// - A matching topic of another event type is not delivered; it is counted
///   in [`Metrics::pattern_type_mismatches`](crate::Metrics::pattern_type_mismatches).
/// - The engine's internal topics (dead-letter topics, `<topic>.dead_letters`)
///   are never matched.
/// - A subscription made before a publish starts sees that event
///   (guarantee 5), also on a topic created after the subscription.
///
/// ## Cost
///
/// A pattern subscription is one ordinary subscription per matching topic,
/// all on one worker, sharing the handler behind an uncontended lock (one
/// lock per handler call, or per batch where it is its lane's only
/// subscriber on that worker). Publishing to a topic costs what it costs
/// with that many plain subscribers; while no pattern exists, nothing at
/// all, and creating a topic checks the live patterns once.
///
/// ## Ordering
///
/// Per topic as for a plain subscription (per-producer publish order); no
/// order between topics.
///
/// ## Retries and dead letters
///
/// With a [`RetryPolicy`](crate::RetryPolicy)
/// ([`SubscribeOptions::retry`]), an event of topic X that the handler
/// fails is retried by the policy and, once no attempt is left,
/// dead-lettered on X, as a plain subscription to X would do it: to X's
/// dead-letter topic ([`Topic::dead_letters`](crate::Topic::dead_letters))
/// while it has subscribers, else into X's store
/// ([`Topic::take_dead_letters`](crate::Topic::take_dead_letters)). The
/// dead letter names the pattern subscription. One difference: a plain
/// subscription opens X's dead-letter topic when it subscribes, a pattern
/// subscription on X's first dead letter (the pattern joins topics as they
/// are created, when no other topic can be opened), so a dead-letter name
/// taken by a topic of another type is not an error at subscribe: such
/// letters stay in X's store.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use pinbus::{Engine, RetryPolicy, SubscribeOptions};
/// let engine = Engine::builder().workers(1).build()?;
/// let policy = RetryPolicy::fixed(Duration::from_millis(1)).max_attempts(2);
/// let sub = engine.pattern::<u32>("jobs.*")?.subscribe_with(
///     |_| Err::<(), _>("always fails"),
///     SubscribeOptions::new().name("all-jobs").retry(policy),
/// )?;
/// let render = engine.topic::<u32>("jobs.render")?;
/// render.publish_tracked(7)?.wait()?; // complete once dead-lettered
/// let dead = render.take_dead_letters();
/// assert_eq!((*dead[0].event(), dead[0].attempts()), (7, 2));
/// assert_eq!((dead[0].topic(), dead[0].subscription()), ("jobs.render", "all-jobs"));
/// assert_eq!(sub.stats().retried, 1);
/// # Ok(()) }
/// ```
///
/// # Examples
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use pinbus::Engine;
/// let engine = Engine::builder().workers(1).build()?;
/// let created = engine.topic::<u32>("orders.created")?;
/// let (tx, rx) = std::sync::mpsc::channel();
/// engine
///     .pattern::<u32>("orders.>")?
///     .subscribe(move |ev| tx.send((ev.topic().to_owned(), **ev)).unwrap())?;
/// let shipped = engine.topic::<u32>("orders.eu.shipped")?; // created later: matched too
/// created.publish(1)?;
/// shipped.publish(2)?;
/// let mut got = vec![rx.recv()?, rx.recv()?];
/// got.sort();
/// assert_eq!(got, [("orders.created".into(), 1), ("orders.eu.shipped".into(), 2)]);
/// # Ok(()) }
/// ```
pub struct Pattern<T> {
    pub(super) hub: Arc<Hub>,
    filter: &'static str,
    /// The worker plain subscriptions run on unless told otherwise.
    pub(super) home: usize,
    /// Group members placed so far (round-robin cursor over the workers).
    placed: Arc<AtomicUsize>,
    _type: PhantomData<fn(T)>,
}

impl Hub {
    /// `Engine::pattern`: checks the filter.
    pub(crate) fn pattern<T>(this: &Arc<Hub>, filter: &str) -> Result<Pattern<T>, TopicError> {
        if let Err(problem) = subject::check(filter, true) {
            return Err(TopicError::InvalidPattern {
                pattern: filter.to_owned(),
                reason: match problem {
                    Problem::Empty => {
                        "it is empty; give dot-separated tokens such as \"orders.*\" or \"orders.>\""
                    }
                    other => other.reason(),
                },
            });
        }
        let workers = this.runtime.workers.len();
        Ok(Pattern {
            hub: this.clone(),
            filter: TopicName::intern(filter).as_str(),
            home: this.next_home.fetch_add(1, Ordering::Relaxed) % workers,
            placed: Arc::new(AtomicUsize::new(0)),
            _type: PhantomData,
        })
    }
}

impl<T> Pattern<T> {
    /// The wildcard filter.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// assert_eq!(engine.pattern::<u32>("orders.*")?.filter(), "orders.*");
    /// # Ok(()) }
    /// ```
    pub fn filter(&self) -> &str {
        self.filter
    }
}

impl<T: Clone + Send + 'static> Pattern<T> {
    /// Subscribes `handler` to every topic of type `T` the pattern matches,
    /// now and as they are created. The handler runs on one worker for all
    /// of them; [`Event::topic`] says which topic an event came from.
    ///
    /// The returned [`Subscription`] stands for all the parts:
    /// [`unsubscribe`](Subscription::unsubscribe) removes every one (with
    /// guarantee 4), [`stats`](Subscription::stats) sums them, and
    /// [`topic`](Subscription::topic) is the filter. Engine metrics list
    /// each part under its topic.
    ///
    /// # Errors
    ///
    /// [`SubscribeError::Closed`] after shutdown started.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pinbus::Engine;
    /// let engine = Engine::builder().build()?;
    /// let sub = engine.pattern::<u64>("ticks.*")?.subscribe(|ev| println!("{}: {}", ev.topic(), **ev))?;
    /// engine.topic::<u64>("ticks.eurusd")?.publish_and_wait(7)?;
    /// assert_eq!(sub.stats().handled, 1);
    /// sub.unsubscribe();
    /// # Ok(()) }
    /// ```
    pub fn subscribe<F, R>(&self, handler: F) -> Result<Subscription, SubscribeError>
    where
        F: FnMut(&Event<T>) -> R + Send + 'static,
        R: HandlerOutcome + 'static,
    {
        self.subscribe_with(handler, SubscribeOptions::new())
    }

    /// [`subscribe`](Pattern::subscribe) with options (name, worker, layers,
    /// retry policy, slow threshold, latency sampling). A retry policy
    /// works per topic, as described under
    /// [Retries and dead letters](Pattern#retries-and-dead-letters).
    ///
    /// # Errors
    ///
    /// As [`subscribe`](Pattern::subscribe), plus
    /// [`SubscribeError::NoSuchWorker`], and
    /// [`SubscribeError::InvalidRetry`] for a retry policy that cannot work.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pinbus::{Engine, SubscribeOptions};
    /// let engine = Engine::builder().workers(2).build()?;
    /// let sub = engine
    ///     .pattern::<u32>("jobs.>")?
    ///     .subscribe_with(|_| (), SubscribeOptions::new().name("all-jobs").worker(1))?;
    /// assert_eq!((sub.name(), sub.worker(), sub.topic()), ("all-jobs", 1, "jobs.>"));
    /// # Ok(()) }
    /// ```
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

    /// A consumer group across every topic the pattern matches: each event
    /// of those topics goes to exactly one of the group's members.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pinbus::Engine;
    /// let engine = Engine::builder().workers(2).build()?;
    /// let audit = engine.pattern::<u32>("orders.*")?.group("audit");
    /// audit.subscribe(|ev| println!("member A: {} from {}", **ev, ev.topic()))?;
    /// audit.subscribe(|ev| println!("member B: {} from {}", **ev, ev.topic()))?;
    /// engine.topic::<u32>("orders.created")?.publish(1)?;
    /// engine.shutdown();
    /// # Ok(()) }
    /// ```
    pub fn group(&self, name: &str) -> PatternGroup<T> {
        PatternGroup {
            pattern: self.clone(),
            name: name.to_owned(),
        }
    }

    pub(super) fn subscribe_parts(
        &self,
        group: Option<&str>,
        handler: BoxedHandler<T>,
        mut options: SubscribeOptions,
        w: usize,
    ) -> Result<Subscription, SubscribeError> {
        let runtime = &self.hub.runtime;
        let workers = runtime.workers.len();
        if w >= workers {
            return Err(SubscribeError::NoSuchWorker { worker: w, workers });
        }
        if let Some(policy) = &options.retry {
            check_retry(policy)?;
        }
        let shared = Arc::new(SubShared::new(options.name.take(), self.filter, 0));
        // The parts carry the pattern subscription's name: its dead letters
        // and metrics name it on every topic.
        options.name = Some(shared.name.clone());
        options.worker = Some(w);
        let parts = Arc::new(Parts {
            runtime: runtime.clone(),
            worker: w,
            group: group.map(Into::into),
            options,
            chain: Mutex::new(Some(Arc::new(Mutex::new(handler)))),
            subs: Mutex::new(Vec::new()),
        });
        let closed = || SubscribeError::Closed {
            topic: self.filter.to_owned(),
        };
        let mut failed = None;
        {
            let mut registry = self.hub.registry.lock();
            if runtime.state() != RUNNING {
                failed = Some(closed());
            }
            let matching = (registry.topics.iter())
                .filter(|(name, _)| !is_internal(name) && subject::matches(self.filter, name))
                .filter_map(|(_, entry)| Some((entry.type_id, entry.live.as_ref()?)));
            for (type_id, live) in matching {
                if failed.is_some() {
                    break;
                }
                if type_id != TypeId::of::<T>() {
                    // Relaxed: a statistic.
                    self.hub.pattern_mismatches.fetch_add(1, Ordering::Relaxed);
                } else if let Err(e) = parts.attach_to(&*live.typed) {
                    failed = Some(e);
                }
            }
            if failed.is_none() {
                registry.patterns.push(PatternEntry {
                    id: shared.id,
                    filter: self.filter,
                    type_id: TypeId::of::<T>(),
                    attach: Box::new(parts.clone()),
                });
            }
        }
        if let Some(e) = failed {
            let wait = !crate::sys::context::on_worker_of(runtime.id);
            parts.detach_all(wait);
            return Err(match e {
                SubscribeError::Closed { .. } => closed(),
                other => other,
            });
        }
        Ok(Subscription {
            detach: Box::new(PatternDetach {
                hub: self.hub.clone(),
                id: shared.id,
                parts,
            }),
            shared,
            runtime: runtime.clone(),
            worker: w,
        })
    }
}

impl<T> Clone for Pattern<T> {
    fn clone(&self) -> Self {
        Pattern {
            hub: self.hub.clone(),
            filter: self.filter,
            home: self.home,
            placed: self.placed.clone(),
            _type: PhantomData,
        }
    }
}

impl<T> fmt::Debug for Pattern<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pattern")
            .field("filter", &self.filter)
            .field("type", &std::any::type_name::<T>())
            .finish_non_exhaustive()
    }
}

/// One consumer group across every topic a [`Pattern`] matches: each event
/// of those topics goes to exactly one member. Made by
/// [`Pattern::group`].
///
/// Each member takes part in a group of that name on every matching topic
/// (existing ones and those created later), all on the member's worker; on
/// each topic the group's lane hands every event to one member. Order
/// between members is not kept.
///
/// # Examples
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::{Arc, atomic::{AtomicU32, Ordering}};
/// use pinbus::Engine;
/// let engine = Engine::builder().workers(2).build()?;
/// let seen = Arc::new(AtomicU32::new(0));
/// let audit = engine.pattern::<u32>("orders.*")?.group("audit");
/// for _ in 0..2 {
///     let seen = seen.clone();
///     audit.subscribe(move |_| { seen.fetch_add(1, Ordering::SeqCst); })?;
/// }
/// engine.topic::<u32>("orders.created")?.publish(1)?;
/// engine.topic::<u32>("orders.paid")?.publish(2)?;
/// engine.shutdown();
/// assert_eq!(seen.load(Ordering::SeqCst), 2); // each event once, across both members
/// # Ok(()) }
/// ```
pub struct PatternGroup<T> {
    pattern: Pattern<T>,
    name: String,
}

impl<T: Clone + Send + 'static> PatternGroup<T> {
    /// The group's name.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let audit = engine.pattern::<u32>("orders.*")?.group("audit");
    /// assert_eq!(audit.name(), "audit");
    /// # Ok(()) }
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds a member. Call it N times for N members; they are spread over
    /// the workers.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pinbus::SubscribeError;
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let pattern = engine.pattern::<u32>("orders.*")?;
    /// pattern.group("audit").subscribe(|_| ())?;
    /// let err = pattern.group("").subscribe(|_| ()).unwrap_err();
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

    /// [`subscribe`](PatternGroup::subscribe) with options. With a retry
    /// policy, a failed event of topic X comes back to the member that
    /// failed it and is dead-lettered on X, as for a pattern subscription
    /// ([Retries and dead letters](Pattern#retries-and-dead-letters)).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pinbus::SubscribeOptions;
    /// let engine = pinbus::Engine::builder().workers(2).build()?;
    /// let audit = engine.pattern::<u32>("orders.*")?.group("audit");
    /// let member = audit.subscribe_with(|_| (), SubscribeOptions::new().worker(1))?;
    /// assert_eq!(member.worker(), 1);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`subscribe`](PatternGroup::subscribe), plus
    /// [`SubscribeError::NoSuchWorker`] and
    /// [`SubscribeError::InvalidRetry`] for a retry policy that cannot work.
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

    /// The pattern the group spans.
    pub(super) fn pattern(&self) -> &Pattern<T> {
        &self.pattern
    }
}

impl<T: Clone + Send + 'static> SubscribeChain<T> for Pattern<T> {
    fn subscribe_boxed(
        &self,
        handler: BoxedHandler<T>,
        options: SubscribeOptions,
    ) -> Result<Subscription, SubscribeError> {
        let w = options.worker.unwrap_or(self.home);
        self.subscribe_parts(None, handler, options, w)
    }
}

impl<T: Clone + Send + 'static> SubscribeChain<T> for PatternGroup<T> {
    /// Adds the member `handler` (name checked, worker chosen).
    fn subscribe_boxed(
        &self,
        handler: BoxedHandler<T>,
        options: SubscribeOptions,
    ) -> Result<Subscription, SubscribeError> {
        if let Some(reason) = invalid_group_name(&self.name) {
            return Err(SubscribeError::InvalidGroupName {
                name: self.name.clone(),
                reason,
            });
        }
        let p = &self.pattern;
        let workers = p.hub.runtime.workers.len();
        let w = options
            .worker
            .unwrap_or_else(|| (p.home + p.placed.fetch_add(1, Ordering::Relaxed)) % workers);
        p.subscribe_parts(Some(&self.name), handler, options, w)
    }
}

impl<T> fmt::Debug for PatternGroup<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PatternGroup")
            .field("filter", &self.pattern.filter)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}
