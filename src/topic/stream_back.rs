//! What a consumer group's stream member hands back when it is dropped.
//!
//! A stream member takes events from the group like any member (its handler
//! moves them into the stream's buffer), so the events it buffered and did
//! not yield yet were taken from the group. Dropping the stream must not
//! lose them for the group (guarantee 1: each event to exactly one member):
//! once the member's subscription is removed (its handler will not run
//! again), they go back to the group's lane, where the next member to claim
//! takes them first, in their order. If the member was the group's last,
//! they are discarded, as the rest of the lane is, and counted so (in the
//! topic's `discarded`, or the freed topics' if the topic is gone). A
//! pattern group's stream member took events from the group of each
//! matching topic: each goes back to its own topic's group, in its order.
//!
//! Who hands back ([`Handoff`]): the stream's drop, once the handler is
//! gone. A stream dropped on one of its engine's workers (by a handler)
//! cannot wait for the member's handler to be removed from *its* worker:
//! that handler may still run and buffer an event after the drop. Then the
//! stream leaves its buffer to the handler, whose own drop (after its last
//! call) hands everything back.

use std::collections::VecDeque;

use super::names::Hub;
use super::shared::TopicShared;
use crate::core::ring::Consumer;
use crate::event::meta::Event;
use crate::lane::rings::Lane;
use crate::lane::tag::Delivered;
use crate::loom::sync::atomic::Ordering;
use crate::loom::sync::{Arc, Mutex};

/// The group a stream member belongs to, found by its lane.
pub(super) struct HandBack<T> {
    topic: Arc<TopicShared<T>>,
    lane: Arc<Lane<T>>,
}

impl<T: Clone + Send + 'static> HandBack<T> {
    /// The group `name` of `topic`, which has a live member (the caller's).
    pub(super) fn of(topic: &Arc<TopicShared<T>>, name: &str) -> Option<HandBack<T>> {
        let control = topic.control.lock();
        let g = control.groups.iter().find(|g| &*g.name == name)?;
        let lane = control.lane(g.lane)?.clone();
        Some(HandBack {
            topic: topic.clone(),
            lane,
        })
    }
}

/// Where a stream member of a group hands back what it did not yield.
pub(super) enum Back<T> {
    /// A topic's group.
    Group(HandBack<T>),
    /// A pattern group: each event to its own topic's group, which this
    /// finds by the topic's name.
    Pattern(FindGroup<T>),
}

/// Gives a pattern group's events of the topic named so back to that
/// topic's group, or counts them as discarded where the group (or the
/// topic) is gone.
pub(super) type FindGroup<T> = Box<dyn Fn(&str, Vec<Event<T>>) + Send + Sync>;

impl<T: Clone + Send + 'static> Back<T> {
    /// [`Back::Pattern`] for the pattern group `group` of `hub`'s topics.
    pub(super) fn pattern(hub: Arc<Hub>, group: &str) -> Back<T> {
        let group: Box<str> = group.into();
        Back::Pattern(Box::new(move |name, events| {
            let n = events.len() as u64;
            // The registry's lock is let go before the topic's control
            // lock is taken (`HandBack::of`).
            let Some(topic) = live_topic::<T>(&hub, name) else {
                // The topic was freed with its last member (this one): its
                // counts are the freed topics' now. Relaxed: a statistic.
                hub.freed.discarded.fetch_add(n, Ordering::Relaxed);
                return;
            };
            match HandBack::of(&topic, &group) {
                Some(back) => back.give(events),
                // The last member left: the group's lane was discarded too.
                // Relaxed: a statistic.
                None => {
                    topic.discarded.fetch_add(n, Ordering::Relaxed);
                }
            }
        }))
    }
}

/// The live topic `name` of type `T`, if any.
fn live_topic<T: Send + 'static>(hub: &Hub, name: &str) -> Option<Arc<TopicShared<T>>> {
    let registry = hub.registry.lock();
    let live = registry.topics.get(name)?.live.as_ref()?;
    live.typed.downcast_ref().cloned()
}

impl<T> Back<T> {
    /// Gives back what `ring` and `spill` still hold (the member's
    /// subscription is gone: nothing is added meanwhile).
    pub(super) fn give(self, ring: &mut Consumer<Event<T>>, spill: &mut VecDeque<Event<T>>) {
        let mut events: Vec<Event<T>> = Vec::new();
        while let Some((_, ev)) = ring.pop() {
            events.push(ev);
        }
        events.extend(spill.drain(..));
        match self {
            Back::Group(back) => back.give(events),
            Back::Pattern(find) => {
                // Split by topic, keeping each topic's order.
                let mut by_topic: Vec<(&'static str, Vec<Event<T>>)> = Vec::new();
                for ev in events {
                    let name = ev.topic.as_str();
                    match by_topic.iter_mut().find(|(n, _)| *n == name) {
                        Some((_, evs)) => evs.push(ev),
                        None => by_topic.push((name, vec![ev])),
                    }
                }
                for (name, evs) in by_topic {
                    find(name, evs);
                }
            }
        }
    }
}

/// Which end of a group stream hands back what it did not yield (module
/// docs).
pub(super) enum Handoff<T> {
    /// Both ends live.
    Open,
    /// The handler was dropped (it will not run again): the stream hands
    /// back when it is dropped.
    HandlerGone,
    /// The stream was dropped while the handler could still run: the
    /// handler's drop hands back the stream's buffer.
    Orphaned(Consumer<Event<T>>, Back<T>),
}

impl<T> Handoff<T> {
    /// The stream is dropped (its subscription removed, the handler
    /// perhaps still running on another worker): hands back `ring` and
    /// `spill` now if the handler is gone, else leaves `ring` (swapped for
    /// an empty one) and `back` to the handler's drop.
    pub(super) fn stream_dropped(
        cell: &Mutex<Handoff<T>>,
        ring: &mut Consumer<Event<T>>,
        back: Back<T>,
        spill: &Mutex<VecDeque<Event<T>>>,
    ) {
        {
            let mut handoff = cell.lock();
            if !matches!(*handoff, Handoff::HandlerGone) {
                // Rare (a stream dropped by a handler while its member runs
                // on another worker): the one-slot ring is its only cost.
                let (_, empty) = crate::core::ring::channel(1);
                *handoff = Handoff::Orphaned(std::mem::replace(ring, empty), back);
                return;
            }
        }
        back.give(ring, &mut spill.lock());
    }

    /// The handler is dropped, after its last call: hands back what an
    /// orphaned stream left, if it did.
    pub(super) fn handler_dropped(cell: &Mutex<Handoff<T>>, spill: &Mutex<VecDeque<Event<T>>>) {
        let left = std::mem::replace(&mut *cell.lock(), Handoff::HandlerGone);
        if let Handoff::Orphaned(mut ring, back) = left {
            back.give(&mut ring, &mut spill.lock());
        }
    }
}

impl<T> HandBack<T> {
    /// Gives the group `events`, in their order.
    fn give(self, events: Vec<Event<T>>) {
        if events.is_empty() {
            return;
        }
        let Some(group) = self
            .lane
            .group
            .as_ref()
            .filter(|_| self.lane.has_consumers())
        else {
            // The last member left: the group's lane was discarded too.
            let n = events.len() as u64;
            self.topic.discarded.fetch_add(n, Ordering::Relaxed);
            return;
        };
        group.give_back(events.into_iter().map(|ev| {
            let Event {
                meta,
                value,
                receipt,
                ..
            } = ev;
            let d = Delivered {
                seq: meta.seq,
                version: meta.version,
                published: meta.published,
                tracker: receipt,
                lineage: meta.lineage,
                end_of_batch: false,
            };
            (value, d)
        }));
        // Members elsewhere may be parked with nothing else to wake them.
        for w in &self.topic.runtime.workers {
            w.unpark();
        }
    }
}
