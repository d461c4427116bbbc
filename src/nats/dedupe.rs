//! Consumer-side dedupe: a bounded window of the messages an import has
//! handed to its local topic.
//!
//! JetStream delivers at least once. After the server is killed and
//! restarted, a durable consumer's persisted state can be behind what was
//! acknowledged, so it re-delivers messages the local subscribers already
//! handled (NATS 2.9: tens to hundreds per restart). Each message is keyed
//! by its `Nats-Msg-Id` header (a 128-bit hash of it), or, when it has none,
//! by its stream sequence; a message whose key is in the window is not
//! published again.
//!
//! # Bounds
//!
//! The window remembers the last `capacity` keys (FIFO; about 64 bytes
//! each). A re-delivery is recognised if fewer than `capacity` newer
//! messages came in between; `ImportOptions::max_ack_pending` is at most
//! half the window, so every message the server may still re-deliver on its
//! own is inside it. Messages without an id whose stream sequence is at or
//! below the highest sequence already evicted are treated as seen as well
//! (first deliveries come in stream order).
//!
//! Why ids first: a server killed with `-9` may lose the last few
//! milliseconds of writes it had already acknowledged, and then hands their
//! stream sequences to new messages. An id names the event, not the slot,
//! so the window never mistakes a new event for an old one; exports always
//! set it, and other publishers should (`Nats-Msg-Id`).

use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};

/// What identifies a message across re-deliveries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    /// A 128-bit hash of the `Nats-Msg-Id` header.
    Id(u128),
    /// The stream sequence, for messages without an id.
    Seq(u64),
}

impl Key {
    pub(crate) fn of(msg_id: Option<&str>, stream_seq: u64) -> Key {
        match msg_id {
            Some(id) => Key::Id(hash128(id)),
            None => Key::Seq(stream_seq),
        }
    }
}

fn hash128(id: &str) -> u128 {
    let half = |salt: u8| {
        // `DefaultHasher::new()` has fixed keys: stable within the process,
        // which is all the window needs. Two salts make 128 bits, so a false
        // match (a new event taken for a seen one) is out of reach.
        let mut h = std::hash::DefaultHasher::new();
        (salt, id).hash(&mut h);
        h.finish()
    };
    (u128::from(half(1)) << 64) | u128::from(half(2))
}

/// Whether a delivered message is new.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Not seen: hand it to the topic, then call [`Window::finish`].
    New(Key),
    /// Its first delivery is still being handled locally: drop this copy
    /// without acking (the first delivery's ack settles both).
    InFlight,
    /// Already handled: ack this copy and drop it.
    Done,
}

/// The dedupe window of one import.
#[derive(Debug)]
pub(crate) struct Window {
    capacity: usize,
    /// Key → handled (`true`) or still in flight (`false`).
    state: HashMap<Key, bool>,
    /// Insertion order, for eviction.
    order: VecDeque<Key>,
    /// Highest stream sequence of an id-less key evicted so far.
    evicted_seq: u64,
}

impl Window {
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Window {
            capacity,
            state: HashMap::with_capacity(capacity.min(1 << 16)),
            order: VecDeque::with_capacity(capacity.min(1 << 16)),
            evicted_seq: 0,
        }
    }

    /// Classifies a delivery and, when it is new, records it as in flight.
    pub(crate) fn begin(&mut self, msg_id: Option<&str>, stream_seq: u64) -> Verdict {
        let key = Key::of(msg_id, stream_seq);
        match self.state.get(&key) {
            Some(true) => return Verdict::Done,
            Some(false) => return Verdict::InFlight,
            None => {}
        }
        if let Key::Seq(seq) = key {
            if seq <= self.evicted_seq {
                return Verdict::Done;
            }
        }
        while self.order.len() >= self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.state.remove(&old);
                if let Key::Seq(seq) = old {
                    self.evicted_seq = self.evicted_seq.max(seq);
                }
            }
        }
        self.state.insert(key, false);
        self.order.push_back(key);
        Verdict::New(key)
    }

    /// Marks `key` handled (its later deliveries are acked and dropped).
    pub(crate) fn finish(&mut self, key: Key) {
        if let Some(done) = self.state.get_mut(&key) {
            *done = true;
        }
    }

    /// Forgets an in-flight `key` whose handling was abandoned (a nak), so
    /// its re-delivery is handled again.
    pub(crate) fn abandon(&mut self, key: Key) {
        if self.state.get(&key) == Some(&false) {
            self.state.remove(&key);
            self.order.retain(|k| *k != key);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.order.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_deduped_and_in_flight_copies_wait() {
        let mut w = Window::new(8);
        let Verdict::New(k) = w.begin(Some("a-1"), 1) else {
            panic!("first delivery is new")
        };
        assert_eq!(w.begin(Some("a-1"), 1), Verdict::InFlight);
        w.finish(k);
        assert_eq!(w.begin(Some("a-1"), 1), Verdict::Done);
        // Same stream sequence, another id: a new event (sequence reused
        // after the server lost its tail).
        assert!(matches!(w.begin(Some("a-2"), 1), Verdict::New(_)));
    }

    #[test]
    fn window_is_bounded_and_id_less_floor_holds() {
        let mut w = Window::new(4);
        for seq in 1..=10 {
            let Verdict::New(k) = w.begin(None, seq) else {
                panic!("seq {seq} is new")
            };
            w.finish(k);
        }
        assert_eq!(w.len(), 4);
        // Evicted sequences still count as seen, recent ones by the set.
        assert_eq!(w.begin(None, 2), Verdict::Done);
        assert_eq!(w.begin(None, 9), Verdict::Done);
        assert!(matches!(w.begin(None, 11), Verdict::New(_)));
        // Ids fall out of the window after `capacity` newer keys.
        let mut w = Window::new(2);
        for id in ["x", "y", "z"] {
            let Verdict::New(k) = w.begin(Some(id), 0) else {
                panic!()
            };
            w.finish(k);
        }
        assert!(matches!(w.begin(Some("x"), 0), Verdict::New(_)));
        assert_eq!(w.begin(Some("z"), 0), Verdict::Done);
    }

    #[test]
    fn abandoned_keys_are_new_again() {
        let mut w = Window::new(4);
        let Verdict::New(k) = w.begin(Some("id"), 3) else {
            panic!()
        };
        w.abandon(k);
        assert!(matches!(w.begin(Some("id"), 3), Verdict::New(_)));
    }
}
