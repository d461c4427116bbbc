//! Opening topics: by name and type through the registry, and each
//! topic's dead-letter topic.

use std::any::TypeId;

use crate::event::name::{invalid_topic_name, TopicName};
use crate::loom::sync::atomic::Ordering;
use crate::loom::sync::Arc;

use crate::runtime::workers::RUNNING;
use crate::sys::error::TopicError;

use crate::topic::handle::Topic;
use crate::topic::options::TopicOptions;
use crate::topic::shared::TopicShared;

use crate::failure::dead_letter::DeadLetter;
use crate::topic::names::Hub;
use crate::topic::names::{LiveTopic, TopicEntry};

/// The last token of every dead-letter topic's name.
const DEAD_LETTER_SUFFIX: &str = ".dead_letters";

/// The name of `topic`'s dead-letter topic.
pub(crate) fn dead_letter_name(topic: &str) -> String {
    format!("{topic}{DEAD_LETTER_SUFFIX}")
}

/// The first token of every service's internal topic name
/// ([`Service`](crate::Service)): `$service.<name>`.
pub(crate) const SERVICE_PREFIX: &str = "$service.";

/// Whether `name` is one of the engine's internal topics, which pattern
/// subscriptions never match: a dead-letter topic or a service's topic
/// (and, as they come, the internal topics of other engine features, named
/// here).
pub(crate) fn is_internal(name: &str) -> bool {
    name.ends_with(DEAD_LETTER_SUFFIX) || name.starts_with(SERVICE_PREFIX)
}

impl<T: Clone + Send + 'static> Topic<T> {
    /// The topic's dead-letter topic, `<name>.dead_letters`: events that a
    /// subscription with a [`RetryPolicy`](crate::RetryPolicy) failed on every attempt.
    ///
    /// While it has no subscriber, dead letters are kept (up to
    /// [`DEAD_LETTER_KEEP`](crate::DEAD_LETTER_KEEP)) for
    /// [`take_dead_letters`](Topic::take_dead_letters).
    ///
    /// # Errors
    ///
    /// As [`Engine::topic`](crate::Engine::topic) for that name.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pinbus::{Engine, RetryPolicy, SubscribeOptions};
    /// let engine = Engine::builder().build()?;
    /// let orders = engine.topic::<u32>("orders")?;
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// orders.dead_letters()?.subscribe(move |dl| tx.send((*dl.event(), dl.attempts())).unwrap())?;
    /// orders.subscribe_with(
    ///     |_| Err::<(), _>("always fails"),
    ///     SubscribeOptions::new().retry(RetryPolicy::never()),
    /// )?;
    /// orders.publish(9)?;
    /// assert_eq!(rx.recv()?, (9, 1));
    /// # Ok(()) }
    /// ```
    pub fn dead_letters(&self) -> Result<Topic<DeadLetter<T>>, TopicError> {
        Hub::open_dead_letters(&self.shared.hub, self.shared.name.as_str())
    }
}

impl Hub {
    /// Opens or creates a topic (`Engine::topic`, `Engine::topic_with`).
    pub(crate) fn open<T: Clone + Send + 'static>(
        this: &Arc<Self>,
        name: &str,
        options: Option<TopicOptions>,
    ) -> Result<Topic<T>, TopicError> {
        if let Some(reason) = invalid_topic_name(name) {
            return Err(TopicError::InvalidName {
                name: name.to_owned(),
                reason,
            });
        }
        if name.starts_with(SERVICE_PREFIX) {
            return Err(TopicError::InvalidName {
                name: name.to_owned(),
                reason: "the '$service.' prefix is reserved for services' internal topics; \
                         open a service with Engine::service",
            });
        }
        Hub::open_valid(this, name, options)
    }

    /// Opens or creates an internal topic (a service's): `name` is built
    /// by the engine from a checked name.
    pub(crate) fn open_internal<T: Clone + Send + 'static>(
        this: &Arc<Self>,
        name: &str,
    ) -> Result<Topic<T>, TopicError> {
        Hub::open_valid(this, name, None)
    }

    /// Opens or creates the dead-letter topic of `topic`: its name may be
    /// longer than a user's topic name may be, so that every topic has one.
    pub(crate) fn open_dead_letters<T: Clone + Send + 'static>(
        this: &Arc<Self>,
        topic: &str,
    ) -> Result<Topic<T>, TopicError> {
        Hub::open_valid(this, &dead_letter_name(topic), None)
    }

    fn open_valid<T: Clone + Send + 'static>(
        this: &Arc<Self>,
        name: &str,
        options: Option<TopicOptions>,
    ) -> Result<Topic<T>, TopicError> {
        let workers = this.runtime.workers.len();
        if let Some(w) = options
            .as_ref()
            .and_then(|o| o.worker)
            .filter(|&w| w >= workers)
        {
            return Err(TopicError::NoSuchWorker { worker: w, workers });
        }
        let mut registry = this.registry.lock();
        if this.runtime.state() != RUNNING {
            return Err(TopicError::Closed);
        }
        if let Some(entry) = registry.topics.get(name) {
            if entry.type_id != TypeId::of::<T>() {
                return Err(TopicError::TypeMismatch {
                    name: name.to_owned(),
                    existing: entry.type_name,
                    requested: std::any::type_name::<T>(),
                });
            }
            if options.as_ref().is_some_and(|o| *o != entry.options) {
                return Err(TopicError::OptionsMismatch {
                    name: name.to_owned(),
                });
            }
            if let Some(live) = entry.live.as_ref() {
                return match live.typed.downcast_ref::<Arc<TopicShared<T>>>() {
                    // Under the registry's lock, so `Hub::release` cannot
                    // free the topic between this handle's count and its use.
                    Some(shared) => Ok(Topic::from_shared(shared.clone())),
                    // Same TypeId, so the downcast cannot fail.
                    None => Err(TopicError::TypeMismatch {
                        name: name.to_owned(),
                        existing: entry.type_name,
                        requested: std::any::type_name::<T>(),
                    }),
                };
            }
        }
        // A freed name comes back with the options it had.
        let options = options
            .or_else(|| registry.topics.get(name).map(|e| e.options.clone()))
            .or_else(|| this.configured.get(name).cloned())
            .unwrap_or_default();
        let home = options
            .worker
            .unwrap_or_else(|| this.next_home.fetch_add(1, Ordering::Relaxed) % workers);
        let shared = Arc::new(TopicShared::<T>::new(
            TopicName::intern(name),
            options.clone(),
            this.runtime.clone(),
            this.clone(),
            home,
        ));
        // Before the topic is in the registry or has a handle, so no publish
        // can start before the pattern subscriptions are attached
        // (guarantee 5).
        this.attach_patterns(&registry, &shared);
        let topic = Topic::from_shared(shared.clone());
        let live = Some(LiveTopic {
            typed: Box::new(shared.clone()),
            control: Box::new(shared),
        });
        match registry.topics.get_mut(name) {
            Some(entry) => entry.live = live,
            None => {
                registry.topics.insert(
                    name.to_owned(),
                    TopicEntry {
                        type_id: TypeId::of::<T>(),
                        type_name: std::any::type_name::<T>(),
                        options,
                        live,
                    },
                );
            }
        }
        Ok(topic)
    }
}
