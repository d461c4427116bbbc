//! The worker side of lanes: calling handlers on drained events.
//!
//! - [`PlainDrain`]: a topic's lane on one worker. Every subscription of the
//!   topic on that worker sees each event, in per-producer order.
//! - [`GroupDrain`]: the members of one consumer group on one worker. Members
//!   take a batch from the group lane under its claim lock, then dispatch it
//!   without the lock, one member per event.
//!
//! The worker moves each value out of its ring slot and builds the
//! [`Event`] on its own stack (the slot holds only the payload and a tag; see
//! [`lane`](crate::lane)), so handlers get `&Event<T>` without the lane carrying the
//! metadata. A panic in a handler is caught, counted, and the event goes on to
//! the next handler.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::event::meta::Event;
use crate::event::name::TopicName;
use crate::event::trace;
use crate::lane::consumer::LaneConsumer;
use crate::lane::keyed::{Held, Partitions};
use crate::lane::rings::Lane;
use crate::lane::tag::Delivered;
use crate::loom::sync::Arc;
use crate::runtime::delivery::event;
use crate::runtime::drain::{Drain, DrainCx, DrainKey, Drained, Totals};
use crate::runtime::solo::Alone;
use crate::runtime::subscription::{drop_payload, HandlerEntry};
use crate::runtime::workers::{Runtime, Worker};
use crate::sys::contain::contain;

/// How many events a group member takes per claim: small, so members on
/// other workers get their share.
const GROUP_BATCH: usize = 32;

/// Adds a removed handler's counts to `totals`, then drops it (a panic in
/// its `Drop` is contained and counted, after the counts are in).
fn retire<T>(entry: HandlerEntry<T>, totals: &mut Totals) {
    entry.publish_counts();
    let c = entry.counts();
    totals.handled += c.handled;
    totals.failed += c.failed;
    totals.panicked += c.panicked;
    totals.stray_panics += entry.stray_panics;
    contain(&mut totals.stray_panics, move || drop(entry));
}

/// A topic's lane on one worker, with the worker's subscriptions to it.
pub(crate) struct PlainDrain<T> {
    lane: Arc<Lane<T>>,
    topic: u64,
    name: &'static TopicName,
    /// The topic's trace salt (`Meta::salt`).
    salt: u64,
    rings: Vec<LaneConsumer<T>>,
    pub(crate) handlers: Vec<HandlerEntry<T>>,
    /// Lane copies that reached no live subscription.
    discarded: u64,
    /// Panics contained in events' `Drop`.
    stray: u64,
    /// Counts of handlers removed before the worker exits.
    retired: Totals,
}

impl<T: Send + 'static> PlainDrain<T> {
    pub(crate) fn new(lane: Arc<Lane<T>>, topic: u64, name: &'static TopicName, salt: u64) -> Self {
        PlainDrain {
            lane,
            topic,
            name,
            salt,
            rings: Vec::new(),
            handlers: Vec::new(),
            discarded: 0,
            stray: 0,
            retired: Totals::default(),
        }
    }
}

/// Calls every accepting handler on `ev`, resuming after a panic with the
/// next handler. Returns whether any handler took the event. The caller has
/// made `ev` the trace context (`trace::HandlingBatch`).
///
/// `ev` lives outside `catch_unwind`, so a panicking handler does not take
/// the event from the handlers after it. (A guard per event measured cheaper
/// than one per batch that parks the event in an `Option` so it survives the
/// unwind: moving the event in and out costs more than the guard.)
#[inline(always)]
fn deliver<T>(handlers: &mut [HandlerEntry<T>], ev: &Event<T>) -> bool {
    let mut h = 0;
    let mut delivered = false;
    loop {
        let run = catch_unwind(AssertUnwindSafe(|| {
            while let Some(entry) = handlers.get_mut(h) {
                // Advance first: after a panic, resume with the next handler.
                h += 1;
                if entry.accepts(ev.meta.version) {
                    delivered = true;
                    entry.call_in_context(ev);
                }
            }
        }));
        match run {
            Ok(()) => return delivered,
            Err(payload) => {
                // `h` was advanced past the handler that panicked.
                match h.checked_sub(1).and_then(|k| handlers.get_mut(k)) {
                    Some(entry) => {
                        entry.record_panic(ev, &*payload);
                        drop_payload(payload, &mut entry.stray_panics);
                    }
                    // Not reached: only a handler call panics here, and it
                    // advanced `h` first. Contain it anyway, uncounted.
                    None => drop_payload(payload, &mut 0),
                }
            }
        }
    }
}

impl<T: Send + 'static> PlainDrain<T> {
    /// Dispatches up to `n` events of ring `r` to every accepting handler.
    #[inline(always)]
    fn dispatch(&mut self, r: usize, n: usize) -> usize {
        let name = self.name;
        let handlers = &mut self.handlers;
        let discarded = &mut self.discarded;
        let stray = &mut self.stray;
        // Each event is this thread's trace context while its handlers run.
        let salt = self.salt;
        let context = trace::HandlingBatch::enter(name, salt);
        // A lone subscription drains the batch in its own loop ([`solo`](crate::runtime::solo)).
        if let [only] = &mut handlers[..] {
            if only.runs_alone() {
                let mut run = Alone::new(&mut self.rings[r], n, name, salt, &context);
                only.run_alone(&mut run);
                *discarded += run.discarded;
                *stray += run.stray;
                return run.taken;
            }
        }
        self.rings[r].consume(n, |value, d| {
            let ev = event(value, d, name, salt);
            context.event(ev.meta.seq, &ev.meta.lineage);
            if !deliver(handlers, &ev) {
                *discarded += 1;
            }
            // `ev` and the receipt share in `d` drop here: this lane's copy
            // is done.
            ev.drop_contained(stray);
        })
    }
}

impl<T: Send + 'static> Drain for PlainDrain<T> {
    fn key(&self) -> DrainKey {
        DrainKey {
            topic: self.topic,
            lane: self.lane.uid,
        }
    }

    fn drain(&mut self, cx: &mut DrainCx<'_>) -> Drained {
        self.lane.adopt(&mut self.rings);
        let mut total = 0;
        for r in 0..self.rings.len() {
            // Count first, then look for commands, then take exactly what was
            // counted: a new subscription's command is visible for every event
            // counted here (`DrainCx::commands_pending`), not for events
            // published after the check.
            let ready = self.rings[r].ready(cx.batch);
            if ready == 0 {
                continue;
            }
            if cx.commands_pending() {
                if total > 0 {
                    self.lane.room.consumed();
                }
                return Drained::NeedCommands(total);
            }
            cx.consuming();
            cx.open_batch();
            total += self.dispatch(r, ready);
        }
        if total > 0 {
            for h in &self.handlers {
                h.publish_counts();
            }
            // The batch's head stores are done: async producers waiting for
            // room look again (one relaxed load when none waits).
            self.lane.room.consumed();
        }
        Drained::Events(total)
    }

    fn has_work(&mut self) -> bool {
        self.lane.has_fresh() || self.rings.iter().any(LaneConsumer::has_next)
    }

    fn remove(&mut self, id: u64) -> bool {
        match self.handlers.iter().position(|h| h.shared.id == id) {
            Some(pos) => {
                retire(self.handlers.remove(pos), &mut self.retired);
                true
            }
            None => false,
        }
    }

    fn finish(&mut self, totals: &mut Totals) {
        for h in std::mem::take(&mut self.handlers) {
            retire(h, totals);
        }
        if self.lane.is_retired() {
            // Nobody subscribes any more: what is left is discarded (each
            // value dropped on its own, so one panicking `Drop` loses nothing
            // else).
            self.lane.adopt(&mut self.rings);
            for ring in &mut self.rings {
                while ring.has_next() {
                    let discarded = &mut self.discarded;
                    let taken = contain(&mut totals.stray_panics, || {
                        ring.consume(usize::MAX, |_, _| *discarded += 1)
                    });
                    if taken == Some(0) {
                        break;
                    }
                }
            }
        }
        *totals += std::mem::take(&mut self.retired);
        totals.discarded += std::mem::take(&mut self.discarded);
        totals.stray_panics += std::mem::take(&mut self.stray);
    }

    fn as_any(&mut self) -> &mut dyn Any {
        self
    }
}

/// The members of one consumer group that run on one worker.
pub(crate) struct GroupDrain<T> {
    lane: Arc<Lane<T>>,
    topic: u64,
    name: &'static TopicName,
    /// The topic's trace salt (`Meta::salt`).
    salt: u64,
    pub(crate) members: Vec<HandlerEntry<T>>,
    /// Member to try first for the next event (round robin).
    next: usize,
    /// Events taken from the group lane, not yet dispatched.
    buf: Vec<(T, Delivered)>,
    /// Panics contained in events' `Drop`.
    stray: u64,
    /// Whose workers to wake when events are handed back to the group.
    runtime: Arc<Runtime>,
    /// Counts of members removed before the worker exits.
    retired: Totals,
    /// A keyed group's partitions ([`keyed`](crate::lane::keyed)).
    keyed: Option<Arc<Partitions<T>>>,
    /// The partitions this drain holds during a keyed pass (empty between
    /// passes).
    held: Held,
    /// A keyed pass's events, in the order they are handled.
    local: Vec<(T, Delivered)>,
}

impl<T: Send + 'static> GroupDrain<T> {
    pub(crate) fn new(
        lane: Arc<Lane<T>>,
        topic: u64,
        name: &'static TopicName,
        salt: u64,
        runtime: Arc<Runtime>,
    ) -> Self {
        let keyed = lane.group.as_ref().and_then(|g| g.partitions());
        GroupDrain {
            lane,
            topic,
            name,
            salt,
            members: Vec::new(),
            next: 0,
            buf: Vec::with_capacity(GROUP_BATCH),
            stray: 0,
            keyed,
            held: Held::default(),
            local: Vec::new(),
            runtime,
            retired: Totals::default(),
        }
    }

    /// A keyed group's pass ([`keyed`](crate::lane::keyed)): under the
    /// claim lock, takes orphaned partitions and claims a batch, routing
    /// each event to this pass or to the queue of the member holding its
    /// partition; handles the pass's events in order (K2), at most `max`;
    /// releases the pass's partitions (K1). Reports the events it handled or
    /// claimed, so a pass whose events all went to other members' queues
    /// counts the claim, and one that found nothing reports 0.
    fn drain_keyed(&mut self, parts: &Partitions<T>, cx: &mut DrainCx<'_>) -> Drained {
        let Some(group) = self.lane.group.as_ref() else {
            return Drained::Events(0);
        };
        let max = cx.batch.min(GROUP_BATCH);
        let mut local = std::mem::take(&mut self.local);
        let claimed = group.claim_keyed(
            &self.lane,
            max,
            parts,
            &mut self.held,
            &mut local,
            &mut self.stray,
            || cx.consuming(),
        );
        if claimed > 0 {
            // The claim freed room: waiting async producers look again.
            self.lane.room.consumed();
        }
        if local.is_empty() {
            // Nothing taken: nothing held either (a partition is taken only
            // with an event).
            debug_assert!(self.held.is_empty());
            self.local = local;
            return Drained::Events(claimed);
        }
        cx.consuming();
        cx.open_batch();
        let mut handled = 0;
        let mut rest = local.drain(..);
        while let Some((value, mut d)) = rest.next() {
            let Some(m) = self.pick() else {
                // Every local member left mid-pass: the rest goes back to
                // the front of its partitions' queues, for members on other
                // workers, which may be parked with nothing else to wake
                // them (K3).
                parts.give_back(
                    &mut self.held,
                    std::iter::once((value, d)).chain(rest.by_ref()),
                    &mut self.stray,
                );
                for w in &self.runtime.workers {
                    w.unpark();
                }
                break;
            };
            // The pass's last event ends its batch.
            d.end_of_batch = rest.len() == 0;
            let ev = event(value, d, self.name, self.salt);
            self.members[m].call_guarded(&ev);
            handled += 1;
            // `ev` and the receipt share in `d` drop here.
            ev.drop_contained(&mut self.stray);
        }
        drop(rest);
        // The pass is over: its partitions go back (K1, K3). Events other
        // members queued behind this pass wait for whoever takes them
        // first: wake the other workers so that keys spread.
        if parts.release(&mut self.held) {
            for w in &self.runtime.workers {
                w.unpark();
            }
        }
        // Keep the allocation for the next pass.
        self.local = local;
        for m in &self.members {
            m.publish_counts();
        }
        Drained::Events(handled.max(claimed))
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
        let mut handled = 0;
        let mut pending = std::mem::take(&mut self.buf);
        let mut rest = pending.drain(..);
        while let Some((value, mut d)) = rest.next() {
            let Some(m) = self.pick() else {
                // Every local member left mid-batch: hand the events back to
                // the group, for members on other workers.
                if let Some(g) = self.lane.group.as_ref() {
                    g.give_back(std::iter::once((value, d)).chain(rest.by_ref()));
                }
                // The members elsewhere may be parked with nothing else to
                // wake them (rare: a member left mid-batch).
                for w in &self.runtime.workers {
                    w.unpark();
                }
                break;
            };
            // The claim took the batch from several rings: its end is here.
            d.end_of_batch = rest.len() == 0;
            let ev = event(value, d, self.name, self.salt);
            self.members[m].call_guarded(&ev);
            handled += 1;
            // `ev` and the receipt share in `d` drop here.
            ev.drop_contained(&mut self.stray);
        }
        drop(rest);
        // Keep the allocation for the next claim.
        self.buf = pending;
        handled
    }
}

impl<T: Send + 'static> Drain for GroupDrain<T> {
    fn key(&self) -> DrainKey {
        DrainKey {
            topic: self.topic,
            lane: self.lane.uid,
        }
    }

    fn drain(&mut self, cx: &mut DrainCx<'_>) -> Drained {
        if !self.members.iter().any(HandlerEntry::is_live) {
            return Drained::Events(0);
        }
        if let Some(parts) = self.keyed.clone() {
            return self.drain_keyed(&parts, cx);
        }
        let Some(group) = self.lane.group.as_ref() else {
            return Drained::Events(0);
        };
        let max = cx.batch.min(GROUP_BATCH);
        match group.claim(&self.lane, max, &mut self.buf, || cx.consuming()) {
            0 => Drained::Events(0),
            _ => {
                // The claim freed room: waiting async producers look again.
                self.lane.room.consumed();
                cx.open_batch();
                let handled = self.dispatch_buffered();
                for m in &self.members {
                    m.publish_counts();
                }
                Drained::Events(handled.max(1))
            }
        }
    }

    fn has_work(&mut self) -> bool {
        self.members.iter().any(HandlerEntry::is_live)
            && (self.keyed.as_ref().is_some_and(|k| k.has_orphans())
                || self
                    .lane
                    .group
                    .as_ref()
                    .is_some_and(|g| g.has_ready(&self.lane)))
    }

    fn remove(&mut self, id: u64) -> bool {
        match self.members.iter().position(|h| h.shared.id == id) {
            Some(pos) => {
                retire(self.members.remove(pos), &mut self.retired);
                if self.next >= self.members.len() {
                    self.next = 0;
                }
                if self.keyed.as_ref().is_some_and(|k| k.has_orphans())
                    && !self.members.iter().any(HandlerEntry::is_live)
                {
                    // Partitions this worker left behind wait for members
                    // elsewhere, which may be parked (K3).
                    for w in &self.runtime.workers {
                        w.unpark();
                    }
                }
                true
            }
            None => false,
        }
    }

    fn finish(&mut self, totals: &mut Totals) {
        for h in std::mem::take(&mut self.members) {
            retire(h, totals);
        }
        if let (Some(group), true) = (self.lane.group.as_ref(), self.lane.is_retired()) {
            totals.discarded += group.sweep(&self.lane, &mut totals.stray_panics);
        }
        *totals += std::mem::take(&mut self.retired);
        totals.stray_panics += std::mem::take(&mut self.stray);
    }

    fn as_any(&mut self) -> &mut dyn Any {
        self
    }
}

/// On the worker: calls subscription `sub` of plain drain `key` with a retry
/// copy again, if it still exists
/// ([`Redeliver`](crate::runtime::recovery::Redeliver)).
pub(crate) fn redeliver_plain<T: Send + 'static>(
    w: &mut Worker,
    key: DrainKey,
    sub: u64,
    event: &Event<T>,
) -> bool {
    let entry = (w.find_drain::<PlainDrain<T>>(key))
        .and_then(|d| d.handlers.iter_mut().find(|h| h.shared.id == sub));
    redeliver_to(entry, event)
}

/// [`redeliver_plain`] for a group member.
pub(crate) fn redeliver_group<T: Send + 'static>(
    w: &mut Worker,
    key: DrainKey,
    sub: u64,
    event: &Event<T>,
) -> bool {
    let entry = (w.find_drain::<GroupDrain<T>>(key))
        .and_then(|d| d.members.iter_mut().find(|h| h.shared.id == sub));
    redeliver_to(entry, event)
}

/// A retry copy to a live subscription's handler; whether it ran. (A removed
/// subscription's retry is dropped: its handler is gone.)
fn redeliver_to<T>(entry: Option<&mut HandlerEntry<T>>, event: &Event<T>) -> bool {
    match entry {
        Some(entry) if entry.is_live() => {
            entry.call_guarded(event);
            entry.publish_counts();
            true
        }
        _ => false,
    }
}
