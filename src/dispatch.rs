//! The worker side of lanes: calling handlers on drained events.
//!
//! - [`PlainDrain`]: a topic's lane on one worker. Every subscription of the
//!   topic on that worker sees each event, in place in the ring slot (no copy),
//!   in per-producer order. The slot is freed once per batch.
//! - [`GroupDrain`]: the members of one consumer group on one worker. Members
//!   take a batch from the group lane under its claim lock, then dispatch it
//!   without the lock, one member per event.
//!
//! A panic is caught once per batch, not per call: the loop state (event
//! index, handler index) lives outside `catch_unwind`, so after a panic the
//! batch resumes with the next handler of the same event.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::event::now_nanos;
use crate::lane::{Envelope, Lane};
use crate::loom::sync::Arc;
use crate::ring::Consumer;
use crate::subscription::HandlerEntry;
use crate::worker::{Drain, DrainCx, Drained, Totals};

/// How many events a group member takes per claim: small, so members on
/// other workers get their share.
const GROUP_BATCH: usize = 32;

/// Drops a panic payload without letting a second panic escape.
fn drop_payload(payload: Box<dyn Any + Send>) {
    let _ = catch_unwind(AssertUnwindSafe(move || drop(payload)));
}

/// A topic's lane on one worker, with the worker's subscriptions to it.
pub(crate) struct PlainDrain<T> {
    lane: Arc<Lane<T>>,
    topic: u64,
    rings: Vec<Consumer<Envelope<T>>>,
    pub(crate) handlers: Vec<HandlerEntry<T>>,
    /// The topic records no publish time: stamp the dequeue time instead.
    stamp_dequeue: bool,
    discarded: u64,
}

impl<T: Send + 'static> PlainDrain<T> {
    pub(crate) fn new(lane: Arc<Lane<T>>, topic: u64, stamp_dequeue: bool) -> Self {
        PlainDrain {
            lane,
            topic,
            rings: Vec::new(),
            handlers: Vec::new(),
            stamp_dequeue,
            discarded: 0,
        }
    }

    /// Calls every accepting handler on the `n` oldest events of ring `r`,
    /// then frees them.
    fn dispatch(&mut self, r: usize, n: usize) {
        let ring = &mut self.rings[r];
        let handlers = &mut self.handlers;
        let now = if self.stamp_dequeue { now_nanos() } else { 0 };
        let mut i = 0;
        let mut h = 0;
        let mut delivered = false;
        let mut discarded = 0;
        loop {
            let run = catch_unwind(AssertUnwindSafe(|| {
                while i < n {
                    ring.with_mut(i, |env| {
                        if now != 0 && env.event.meta.published == 0 {
                            env.event.meta.published = now;
                        }
                        let event = &env.event;
                        while h < handlers.len() {
                            let entry = &mut handlers[h];
                            // Advance first: after a panic the batch resumes
                            // with the next handler.
                            h += 1;
                            if entry.accepts(event.meta.version) {
                                delivered = true;
                                entry.call(event);
                            }
                        }
                    });
                    if !delivered {
                        discarded += 1;
                    }
                    delivered = false;
                    h = 0;
                    i += 1;
                }
            }));
            match run {
                Ok(()) => break,
                Err(payload) => {
                    // `h` was advanced past the handler that panicked.
                    if let Some(entry) = h.checked_sub(1).and_then(|k| handlers.get_mut(k)) {
                        entry.record_panic();
                    }
                    drop_payload(payload);
                }
            }
        }
        self.discarded += discarded;
        // Drops the events (and their receipt shares) and frees the slots.
        ring.release(n);
    }
}

impl<T: Send + 'static> Drain for PlainDrain<T> {
    fn key(&self) -> (u64, usize) {
        (self.topic, self.lane.id)
    }

    fn drain(&mut self, cx: &mut DrainCx<'_>) -> Drained {
        self.lane.adopt(&mut self.rings);
        let mut total = 0;
        for r in 0..self.rings.len() {
            let n = self.rings[r].ready(cx.batch).min(cx.batch);
            if n == 0 {
                continue;
            }
            // After the Acquire in `ready`: see `DrainCx::commands_pending`.
            if cx.commands_pending() {
                return Drained::NeedCommands(total);
            }
            cx.consuming();
            self.dispatch(r, n);
            total += n;
        }
        if total > 0 {
            for h in &self.handlers {
                h.publish_counts();
            }
        }
        Drained::Events(total)
    }

    fn has_work(&mut self) -> bool {
        self.lane.has_fresh() || self.rings.iter_mut().any(|r| r.ready(1) > 0)
    }

    fn remove(&mut self, id: u64) -> bool {
        match self.handlers.iter().position(|h| h.shared.id == id) {
            Some(pos) => {
                let entry = self.handlers.remove(pos);
                entry.publish_counts();
                true
            }
            None => false,
        }
    }

    fn finish(&mut self, totals: &mut Totals) {
        for h in self.handlers.drain(..) {
            h.publish_counts();
            let c = h.counts();
            totals.handled += c.handled;
            totals.failed += c.failed;
            totals.panicked += c.panicked;
        }
        totals.discarded += self.discarded;
    }

    fn as_any(&mut self) -> &mut dyn Any {
        self
    }
}

/// The members of one consumer group that run on one worker.
pub(crate) struct GroupDrain<T> {
    lane: Arc<Lane<T>>,
    topic: u64,
    pub(crate) members: Vec<HandlerEntry<T>>,
    /// Member to try first for the next event (round robin).
    next: usize,
    /// Events taken from the group lane, not yet dispatched.
    buf: Vec<Envelope<T>>,
    stamp_dequeue: bool,
    /// Totals of members removed before the worker exits.
    retired: Totals,
}

impl<T: Send + 'static> GroupDrain<T> {
    pub(crate) fn new(lane: Arc<Lane<T>>, topic: u64, stamp_dequeue: bool) -> Self {
        GroupDrain {
            lane,
            topic,
            members: Vec::new(),
            next: 0,
            buf: Vec::with_capacity(GROUP_BATCH),
            stamp_dequeue,
            retired: Totals::default(),
        }
    }

    /// The next live member, round robin.
    fn pick(&mut self) -> Option<usize> {
        let n = self.members.len();
        (0..n)
            .map(|k| (self.next + k) % n)
            .find(|&m| self.members[m].is_live())
            .inspect(|&m| self.next = (m + 1) % n)
    }

    fn dispatch_buffered(&mut self) -> usize {
        let now = if self.stamp_dequeue { now_nanos() } else { 0 };
        let mut handled = 0;
        let mut pending = std::mem::take(&mut self.buf);
        let mut rest = pending.drain(..);
        while let Some(mut env) = rest.next() {
            let Some(m) = self.pick() else {
                // Every local member left mid-batch: hand the events back to
                // the group, for members on other workers.
                if let Some(g) = self.lane.group.as_ref() {
                    g.give_back(std::iter::once(env).chain(rest.by_ref()));
                }
                break;
            };
            if now != 0 && env.event.meta.published == 0 {
                env.event.meta.published = now;
            }
            let member = &mut self.members[m];
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| member.call(&env.event))) {
                member.record_panic();
                drop_payload(payload);
            }
            handled += 1;
            // `env` (and its receipt share) drops here.
        }
        drop(rest);
        // Keep the allocation for the next claim.
        self.buf = pending;
        handled
    }
}

impl<T: Send + 'static> Drain for GroupDrain<T> {
    fn key(&self) -> (u64, usize) {
        (self.topic, self.lane.id)
    }

    fn drain(&mut self, cx: &mut DrainCx<'_>) -> Drained {
        if !self.members.iter().any(HandlerEntry::is_live) {
            return Drained::Events(0);
        }
        let Some(group) = self.lane.group.as_ref() else {
            return Drained::Events(0);
        };
        let max = cx.batch.min(GROUP_BATCH);
        match group.claim(&self.lane, max, &mut self.buf, || cx.consuming()) {
            0 => Drained::Events(0),
            _ => {
                let n = self.dispatch_buffered();
                for m in &self.members {
                    m.publish_counts();
                }
                Drained::Events(n)
            }
        }
    }

    fn has_work(&mut self) -> bool {
        self.members.iter().any(HandlerEntry::is_live)
            && self
                .lane
                .group
                .as_ref()
                .is_some_and(|g| g.has_ready(&self.lane))
    }

    fn remove(&mut self, id: u64) -> bool {
        match self.members.iter().position(|h| h.shared.id == id) {
            Some(pos) => {
                let entry = self.members.remove(pos);
                entry.publish_counts();
                let c = entry.counts();
                self.retired.handled += c.handled;
                self.retired.failed += c.failed;
                self.retired.panicked += c.panicked;
                if self.next >= self.members.len() {
                    self.next = 0;
                }
                true
            }
            None => false,
        }
    }

    fn finish(&mut self, totals: &mut Totals) {
        for h in self.members.drain(..) {
            h.publish_counts();
            let c = h.counts();
            totals.handled += c.handled;
            totals.failed += c.failed;
            totals.panicked += c.panicked;
        }
        *totals += self.retired;
    }

    fn as_any(&mut self) -> &mut dyn Any {
        self
    }
}
