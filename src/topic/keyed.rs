//! [`KeyedGroup`]: a consumer group that handles events with equal keys one
//! at a time, in order ([`keyed`](crate::lane::keyed) has the mechanism).

use std::fmt;
use std::hash::Hash;

use super::groups::Group;
use super::shared::TopicShared;
use super::subscribe::{OpenDeadLetters, SubscribeChain};
use crate::event::meta::Event;
use crate::lane::keyed::{key_fn, KeyFn};
use crate::layer::outcome::HandlerOutcome;
use crate::layer::Layers;
use crate::runtime::solo::BoxedHandler;
use crate::runtime::subscription::{SubscribeOptions, Subscription};
use crate::sys::error::SubscribeError;

/// A consumer group with a key: each event goes to exactly one member, and
/// events with equal keys are handled one at a time, in the order each
/// producer published them — also while members join and leave. Keys
/// spread over the members: events are sorted into 64 partitions by the
/// key's hash, and each partition is handled by one member at a time,
/// whichever takes it next; no key is bound to a member, so a membership
/// change moves nothing (a member leaves between two handler calls).
///
/// Made by [`Group::keyed`]. The key function runs on the member's worker
/// as events are taken, once per event, while the group's other members
/// wait to take theirs (keep it short); the first member's key function is
/// the group's. It may call the engine as a handler may (publish,
/// subscribe, unsubscribe, even the group's last member); a key function
/// that panics is counted (`stray_panics`) and its event handled as if its
/// key were one fixed value. A keyed group takes no retry policy (a retry would be
/// handled after later events of its key), and a group name is either
/// keyed or plain for as long as it has members.
///
/// # Examples
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use pinbus::Engine;
/// #[derive(Clone)]
/// struct Order { customer: u32, cents: u64 }
/// let engine = Engine::builder().workers(2).build()?;
/// let orders = engine.topic::<Order>("orders")?;
/// let billing = orders.group("billing").keyed(|o: &Order| o.customer);
/// // Two members; one customer's orders are never billed twice at once.
/// billing.subscribe(|o| println!("A bills {} for {}", o.cents, o.customer))?;
/// billing.subscribe(|o| println!("B bills {} for {}", o.cents, o.customer))?;
/// orders.publish(Order { customer: 7, cents: 250 })?;
/// engine.shutdown();
/// # Ok(()) }
/// ```
pub struct KeyedGroup<T> {
    group: Group<T>,
    key: KeyFn<T>,
}

impl<T: Clone + Send + 'static> Group<T> {
    /// This group, keyed by `key`: see [`KeyedGroup`].
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use pinbus::Engine;
    /// let engine = Engine::builder().workers(1).build()?;
    /// let ticks = engine.topic::<(String, f64)>("ticks")?;
    /// let per_symbol = ticks.group("vwap").keyed(|t: &(String, f64)| t.0.clone());
    /// per_symbol.subscribe(|t| println!("{} {}", t.0, t.1))?;
    /// # Ok(()) }
    /// ```
    pub fn keyed<K: Hash>(&self, key: impl Fn(&T) -> K + Send + Sync + 'static) -> KeyedGroup<T> {
        KeyedGroup {
            group: Group {
                topic: self.topic.clone(),
                name: self.name.clone(),
            },
            key: key_fn(key),
        }
    }
}

impl<T: Clone + Send + 'static> KeyedGroup<T> {
    /// The group's name.
    ///
    /// ```
    /// # let engine = pinbus::Engine::builder().workers(1).build().unwrap();
    /// let g = engine.topic::<u8>("t").unwrap().group("g").keyed(|v: &u8| *v);
    /// assert_eq!(g.name(), "g");
    /// ```
    pub fn name(&self) -> &str {
        self.group.name()
    }

    /// Adds a member. Call it N times for N members.
    ///
    /// # Errors
    ///
    /// As [`Group::subscribe`], plus [`SubscribeError::KeyedGroup`] when the
    /// group already has plain members.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use pinbus::Engine;
    /// let engine = Engine::builder().workers(1).build()?;
    /// let t = engine.topic::<u32>("jobs")?;
    /// t.group("by_user").keyed(|j: &u32| j % 10).subscribe(|j| println!("{}", **j))?;
    /// // The name is keyed now: a plain member is refused.
    /// assert!(t.group("by_user").subscribe(|_| ()).is_err());
    /// # Ok(()) }
    /// ```
    pub fn subscribe<F, R>(&self, handler: F) -> Result<Subscription, SubscribeError>
    where
        F: FnMut(&Event<T>) -> R + Send + 'static,
        R: HandlerOutcome + 'static,
    {
        self.subscribe_with(handler, SubscribeOptions::new())
    }

    /// [`subscribe`](KeyedGroup::subscribe) with options (name, worker,
    /// layers); a retry policy is refused with
    /// [`SubscribeError::KeyedGroup`].
    ///
    /// # Errors
    ///
    /// As [`subscribe`](KeyedGroup::subscribe), plus
    /// [`SubscribeError::NoSuchWorker`].
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use pinbus::{Engine, SubscribeOptions};
    /// let engine = Engine::builder().workers(2).build()?;
    /// let g = engine.topic::<u32>("jobs")?.group("g").keyed(|j: &u32| *j);
    /// let member = g.subscribe_with(|_| (), SubscribeOptions::new().worker(1))?;
    /// assert_eq!(member.worker(), 1);
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
}

impl<T: Clone + Send + 'static> SubscribeChain<T> for KeyedGroup<T> {
    fn subscribe_boxed(
        &self,
        handler: BoxedHandler<T>,
        options: SubscribeOptions,
    ) -> Result<Subscription, SubscribeError> {
        TopicShared::subscribe_group(
            &self.group.topic.shared,
            &self.group.name,
            handler,
            options,
            Some(self.key.clone()),
            OpenDeadLetters::AtSubscribe,
        )
    }
}

impl<T> fmt::Debug for KeyedGroup<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedGroup")
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}
