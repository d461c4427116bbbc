//! What shutdown and the registry need from a topic, without its event
//! type.

use std::time::Instant;

use crate::observe::metrics::{SubscriptionMetrics, TopicMetrics};

/// What shutdown and the registry need from a topic, without its event
/// type.
pub(crate) trait TopicControl: Send + Sync {
    /// Another handle to the same topic.
    fn share(&self) -> Box<dyn TopicControl>;
    /// The topic's process-unique id.
    fn uid(&self) -> u64;
    /// Whether nothing uses the topic: no handle, no subscription, no kept
    /// dead letter.
    fn is_unused(&self) -> bool;
    /// Publishes a snapshot in `state` (`DRAINING` or `EXITING`).
    fn set_state(&self, state: u8);
    /// Waits until no non-worker thread is inside a publish, or until
    /// `deadline`; returns whether it got there.
    fn wait_external_idle(&self, deadline: Option<Instant>) -> bool;
    /// Whether every lane is empty.
    fn is_drained(&self) -> bool;
    fn published(&self) -> u64;
    fn discarded(&self) -> u64;
    /// Dead letters produced for this topic's events.
    fn dead_letters(&self) -> u64;
    /// The topic's counters; appends its live subscriptions' counters to
    /// `subs` (`Engine::metrics`).
    fn metrics(&self, subs: &mut Vec<SubscriptionMetrics>) -> TopicMetrics;
}
