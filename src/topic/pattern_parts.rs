//! A pattern subscription's parts: one ordinary subscription per matching
//! topic, all sharing the one handler chain, and how the registry attaches
//! them to topics created later.
//!
//! # Invariants
//!
//! 1. Every part of a pattern subscription runs on the same worker
//!    ([`Parts::worker`]), so the mutex around the shared chain is only ever
//!    taken by that worker: uncontended, one lock per call (per batch for a
//!    subscription alone on its lane).
//! 2. Parts are added only under the registry's lock, by the pattern's own
//!    subscribe or by [`Hub::attach_patterns`] while a new topic is not yet
//!    visible; the pattern leaves the registry (under that lock) before its
//!    parts are removed, so no part is added after [`Parts::detach_all`]
//!    took them.
//! 3. The chain's last reference is dropped on the worker: each part's on
//!    its removal (or when the worker exits), the owner's by
//!    [`Runtime::drop_on`] on unsubscribe or at shutdown, before the workers
//!    exit ([`AttachPattern::release`]).

use std::any::{Any, TypeId};

use crate::event::meta::Event;
use crate::event::subject;
use crate::layer::Outcome;
use crate::loom::sync::atomic::Ordering;
use crate::loom::sync::{Arc, Mutex};
use crate::runtime::solo::{Alone, BoxedHandler, Halt, Handles};
use crate::runtime::sub_state::SubscriptionStats;
use crate::runtime::subscription::{Detach, SubscribeOptions, Subscription};
use crate::runtime::workers::Runtime;
use crate::sys::error::SubscribeError;
use crate::topic::names::{AttachPattern, Hub, Registry};
use crate::topic::open::is_internal;
use crate::topic::shared::TopicShared;
use crate::topic::subscribe::OpenDeadLetters;

use crate::loom::sync::atomic::AtomicBool;

/// The handler chain all parts of one pattern subscription call.
pub(super) type SharedChain<T> = Arc<Mutex<BoxedHandler<T>>>;

/// One part's handler: the shared chain, locked per call (uncontended:
/// invariant 1).
struct PartHandler<T>(SharedChain<T>);

impl<T: 'static> Handles<T> for PartHandler<T> {
    #[inline]
    fn handle(&mut self, event: &Event<T>) -> Outcome {
        self.0.lock().handle(event)
    }

    fn run_alone(&mut self, run: &mut Alone<'_, T>, since: u64, removed: &AtomicBool) -> Halt<T> {
        self.0.lock().run_alone(run, since, removed)
    }
}

/// A pattern subscription's parts and what makes new ones.
pub(super) struct Parts<T> {
    pub(super) runtime: Arc<Runtime>,
    /// The worker every part runs on (invariant 1).
    pub(super) worker: usize,
    /// The group, for a pattern group member.
    pub(super) group: Option<Box<str>>,
    /// Options of each part: `worker` set to [`Parts::worker`], `name` to
    /// the pattern subscription's, the retry policy checked.
    pub(super) options: SubscribeOptions,
    /// `None` once the subscription is removed.
    pub(super) chain: Mutex<Option<SharedChain<T>>>,
    /// The live parts, one per matching topic.
    pub(super) subs: Mutex<Vec<Subscription>>,
}

impl<T: Clone + Send + 'static> Parts<T> {
    /// Subscribes a part to `topic` (an `Arc<TopicShared<T>>`). Under the
    /// registry's lock (invariant 2).
    pub(super) fn attach_to(&self, topic: &(dyn Any + Send + Sync)) -> Result<(), SubscribeError> {
        let Some(topic) = topic.downcast_ref::<Arc<TopicShared<T>>>() else {
            return Ok(());
        };
        let Some(chain) = self.chain.lock().clone() else {
            return Ok(());
        };
        let handler: BoxedHandler<T> = Box::new(PartHandler(chain));
        let options = self.options.clone();
        // Dead letters cannot open their topic under the registry's lock:
        // it is opened on the first one.
        let open = OpenDeadLetters::OnFirstLetter;
        let sub = match &self.group {
            None => TopicShared::subscribe_plain(topic, handler, options, open)?,
            Some(g) => TopicShared::subscribe_group(topic, g, handler, options, None, open)?,
        };
        self.subs.lock().push(sub);
        Ok(())
    }

    /// Removes every part, then drops the owner's reference to the chain on
    /// the worker (invariant 3); waits for both if `wait`. Call once the
    /// pattern is out of the registry, with no lock held.
    pub(super) fn detach_all(&self, wait: bool) {
        let subs = std::mem::take(&mut *self.subs.lock());
        for sub in subs {
            sub.unsubscribe();
        }
        let chain = self.chain.lock().take();
        if let Some(chain) = chain {
            self.runtime.drop_on(self.worker, Box::new(chain), wait);
        }
    }
}

impl<T: Clone + Send + 'static> AttachPattern for Arc<Parts<T>> {
    fn attach(&self, topic: &(dyn Any + Send + Sync)) {
        // Only `Closed` can happen here (the engine shuts down): the new
        // topic refuses subscribers then.
        let _ = self.attach_to(topic);
    }

    fn release(&self) {
        let chain = self.chain.lock().take();
        if let Some(chain) = chain {
            self.runtime.drop_on(self.worker, Box::new(chain), true);
        }
    }
}

/// Removes a pattern subscription: out of the registry, then its parts.
pub(super) struct PatternDetach<T> {
    pub(super) hub: Arc<Hub>,
    /// The pattern subscription's id (`PatternEntry::id`).
    pub(super) id: u64,
    pub(super) parts: Arc<Parts<T>>,
}

impl<T: Clone + Send + 'static> Detach for PatternDetach<T> {
    fn detach(&self) {
        let wait = !crate::sys::context::on_worker_of(self.parts.runtime.id);
        let entry = {
            let mut registry = self.hub.registry.lock();
            let at = registry.patterns.iter().position(|p| p.id == self.id);
            at.map(|i| registry.patterns.remove(i))
        };
        drop(entry);
        self.parts.detach_all(wait);
    }

    fn stats(&self) -> Option<SubscriptionStats> {
        let subs = self.parts.subs.lock();
        Some(
            subs.iter()
                .map(Subscription::stats)
                .fold(SubscriptionStats::default(), |a, b| SubscriptionStats {
                    handled: a.handled + b.handled,
                    failed: a.failed + b.failed,
                    panicked: a.panicked + b.panicked,
                    retried: a.retried + b.retried,
                    dead_lettered: a.dead_lettered + b.dead_lettered,
                    slow: a.slow + b.slow,
                    skipped: a.skipped + b.skipped,
                }),
        )
    }
}

impl Hub {
    /// Attaches every matching pattern subscription to `topic`, a topic
    /// being created under the registry's lock and not yet visible
    /// (invariant 2). Internal topics are never matched; a matching pattern
    /// of another event type is counted, not attached. With no pattern
    /// subscription this is one emptiness check, at topic creation only.
    pub(super) fn attach_patterns<T: Clone + Send + 'static>(
        &self,
        registry: &Registry,
        topic: &Arc<TopicShared<T>>,
    ) {
        let name = topic.name.as_str();
        if registry.patterns.is_empty() || is_internal(name) {
            return;
        }
        for p in registry
            .patterns
            .iter()
            .filter(|p| subject::matches(p.filter, name))
        {
            if p.type_id == TypeId::of::<T>() {
                p.attach.attach(topic);
            } else {
                // Relaxed: a statistic (see `pattern_mismatches`).
                self.pattern_mismatches.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}
