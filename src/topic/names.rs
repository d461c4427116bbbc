//! The topic registry: names, their types and options, the live topics.
//!
//! Lock order: the registry's lock before any topic's `control` lock, and
//! no user code runs under it (removed entries are dropped after it is
//! released).

use std::any::{Any, TypeId};
use std::collections::BTreeMap;

use crate::loom::sync::atomic::{AtomicU64, AtomicUsize};
use crate::loom::sync::{Arc, Mutex};

use crate::runtime::workers::Runtime;

use crate::topic::control::TopicControl;

use crate::topic::options::TopicOptions;

/// A topic name of the engine: its type and options, and the topic while it
/// lives. A freed topic leaves its name behind (a few dozen bytes), so the
/// name keeps its type and options for the engine's life: opening it again
/// with another type is still [`TopicError::TypeMismatch`](crate::TopicError::TypeMismatch).
pub(crate) struct TopicEntry {
    pub(crate) type_id: TypeId,
    pub(crate) type_name: &'static str,
    pub(crate) options: TopicOptions,
    /// `None` once the topic was freed.
    pub(crate) live: Option<LiveTopic>,
}

pub(crate) struct LiveTopic {
    /// An `Arc<TopicShared<T>>`.
    pub(crate) typed: Box<dyn Any + Send + Sync>,
    pub(crate) control: Box<dyn TopicControl>,
}

impl Registry {
    pub(crate) fn live(&self) -> impl Iterator<Item = &LiveTopic> {
        self.topics.values().filter_map(|t| t.live.as_ref())
    }
}

pub(crate) struct Registry {
    /// Ordered, so shutdown visits topics in the same order every time (loom
    /// requires a deterministic model).
    pub(crate) topics: BTreeMap<String, TopicEntry>,
    /// Live pattern subscriptions: each is attached to every matching topic
    /// when it subscribes, and to each matching topic created later, under
    /// this lock ([`pattern`](crate::topic::pattern)).
    pub(crate) patterns: Vec<PatternEntry>,
}

/// A live pattern subscription as the registry keeps it.
pub(crate) struct PatternEntry {
    /// The pattern subscription's id (its `SubShared::id`).
    pub(crate) id: u64,
    /// The wildcard filter, valid (`event::subject::check`).
    pub(crate) filter: &'static str,
    /// The event type it takes.
    pub(crate) type_id: TypeId,
    /// Adds its part on a new matching topic of its type.
    pub(crate) attach: Box<dyn AttachPattern>,
}

/// What the registry needs from a pattern subscription, without its event
/// type.
pub(crate) trait AttachPattern: Send + Sync {
    /// Subscribes a part of the pattern subscription to `topic`, an
    /// `Arc<TopicShared<T>>` of the pattern's type. Called under the
    /// registry's lock; runs no user code and opens no topic.
    fn attach(&self, topic: &(dyn Any + Send + Sync));

    /// Drops the pattern's own reference to its handler on its worker and
    /// waits for it (shutdown, while the workers still run; its parts'
    /// references go with the workers' drains).
    fn release(&self);
}

/// The topic registry, shared by the engine and its topics (a topic opens
/// its dead-letter topic through it, and leaves it when it is freed). Topics
/// hold it and it holds topics: a freed topic leaves the registry, and the
/// engine's drop empties it.
///
/// Lock order: the registry's lock before any topic's `control` lock, and no
/// user code runs under it (removed entries are dropped after it is
/// released).
pub(crate) struct Hub {
    pub(crate) runtime: Arc<Runtime>,
    pub(crate) registry: Mutex<Registry>,
    pub(crate) next_home: AtomicUsize,
    /// `Config::topics`: options for `topic()` to create these topics with.
    pub(crate) configured: BTreeMap<String, TopicOptions>,
    /// Counts of the topics freed so far (added when each is dropped).
    pub(crate) freed: FreedCounts,
    /// Random per engine: mixed into every topic's trace-id salt.
    pub(crate) trace_seed: u64,
    /// Topics a pattern subscription matched by name but not by event type
    /// (counted once per pattern subscription and topic; not delivered).
    /// Relaxed: a statistic.
    pub(crate) pattern_mismatches: AtomicU64,
}

/// What freed topics had counted (for the shutdown report). `Relaxed`
/// statistics: read after the workers are joined.
#[derive(Default)]
pub(crate) struct FreedCounts {
    pub(crate) published: AtomicU64,
    pub(crate) discarded: AtomicU64,
    pub(crate) dead_letters: AtomicU64,
}

impl Hub {
    /// The registry's topics, handed out so that callers wait or read
    /// without holding the registry's lock.
    pub(crate) fn controls(&self) -> Vec<Box<dyn TopicControl>> {
        (self.registry.lock().live())
            .map(|t| t.control.share())
            .collect()
    }

    /// Frees topic `name` if it is still the topic `uid` and nothing uses it
    /// any more (no handle, no subscription, no kept dead letters). Called
    /// when its last handle drops or its last subscription leaves.
    pub(crate) fn release(&self, name: &str, uid: u64) {
        let removed = {
            let mut registry = self.registry.lock();
            match registry.topics.get_mut(name) {
                Some(TopicEntry {
                    live: live @ Some(_),
                    ..
                }) if live
                    .as_ref()
                    .is_some_and(|l| l.control.uid() == uid && l.control.is_unused()) =>
                {
                    live.take()
                }
                _ => None,
            }
        };
        // Dropped outside the lock: what it holds may run user code (an
        // event's `Drop`) that opens topics.
        drop(removed);
    }
}
