//! The publish path for one event: the fast path, the general path, full
//! lanes, fan-out.

use std::time::{Duration, Instant};

use super::backlog::TopicBacklog;
use super::options::Backpressure;
use super::shared::TopicShared;
use super::targets::{Target, Targets};
use super::view::{producer_for, View};
use crate::core::producer::{SlotInfo, SlotKind, SnapshotAccess};
use crate::event::receipt::{self, Receipt};
use crate::event::trace::{self, Lineage};
use crate::lane::producer::{LaneProducer, Outgoing};
use crate::loom::sync::atomic::{AtomicUsize, Ordering};
use crate::loom::sync::Arc;

use crate::runtime::idle::Snooze;
use crate::runtime::workers::EXITING;
use crate::sys::error::PublishError;

/// What a publish does when a lane has no room: resolved on the slow path
/// only, so the fast path reads no option for it.
#[derive(Clone, Copy)]
pub(super) enum WhenFull {
    /// As the topic's [`Backpressure`] says.
    AsConfigured,
    /// Return [`PublishError::Full`].
    Fail,
    /// Wait for room.
    Wait,
    /// Wait for room this long at most, then return
    /// [`PublishError::Timeout`].
    Within(Duration),
}

/// [`WhenFull`] resolved by the slow path.
#[derive(Clone, Copy)]
pub(super) enum OnFull {
    Fail,
    /// Wait, until the deadline if there is one.
    Wait(Option<Instant>),
}

/// Why a publish found no room.
pub(super) enum Refused {
    Full,
    Timeout,
    Closed,
}

impl Refused {
    pub(super) fn with<T>(self, value: T) -> PublishError<T> {
        match self {
            Refused::Full => PublishError::Full(value),
            Refused::Timeout => PublishError::Timeout(value),
            Refused::Closed => PublishError::Closed(value),
        }
    }
}

/// Sends `value` into every lane of `lanes` through `push`: all lanes but
/// the last get a copy, the last the value itself. Every copy is made
/// before the first push, so a `Clone` that panics leaves the event in no
/// lane (guarantee 12). `copies` is scratch space kept by the caller (no
/// allocation once it has grown to the fan-out).
#[inline(always)]
pub(super) fn fan_out<T: Clone>(
    lanes: &[Target<T>],
    value: T,
    copies: &mut Vec<T>,
    mut push: impl FnMut(&Target<T>, T),
) {
    let Some((last, rest)) = lanes.split_last() else {
        return;
    };
    if !rest.is_empty() {
        // Taken out: should a `Clone` panic, the copies made so far drop
        // with this local as it unwinds.
        let mut made = std::mem::take(copies);
        made.extend(rest.iter().map(|_| value.clone()));
        for (t, copy) in rest.iter().zip(made.drain(..)) {
            push(t, copy);
        }
        *copies = made;
    }
    push(last, value);
}

/// The fast path's push under a trace context: a lineage step, or the
/// value back for the general path. Out of line, so that the plain fast
/// path stays small enough to inline into the caller.
#[inline(never)]
fn push_traced<T>(p: &mut LaneProducer<T>, value: T) -> Result<(), T> {
    match trace::lineage() {
        Lineage::Root => p.push_plain(value),
        lineage => p.push_step(value, lineage),
    }
}

impl<T: Clone + Send + 'static> TopicShared<T> {
    /// The publish path for one untracked event.
    #[inline(always)]
    pub(super) fn send(
        this: &Arc<Self>,
        hint: &AtomicUsize,
        value: T,
        when_full: WhenFull,
    ) -> Result<(), PublishError<T>> {
        // Fast path: the thread's own slot, one lane, nothing to tell the
        // consumer but the value (and perhaps a lineage step).
        let fast = this
            .slots
            .fast(hint, value, |view, version, published, value| {
                if version != view.fast_version || view.seq.next == view.seq.end {
                    return Err(value);
                }
                let Some(p) = view.fast.as_mut() else {
                    return Err(value);
                };
                debug_assert!(p.continues(view.seq.next, version));
                // Under a trace context (a handler that forwards), the
                // event's lineage usually steps from the previous one in
                // this lane: one tag bit. Otherwise the general path.
                if trace::active() {
                    push_traced(p, value)?;
                } else {
                    p.push_plain(value)?;
                }
                view.seq.next += 1;
                published.add(1);
                if this.wakes {
                    Self::wake_first(this, view);
                }
                Ok(())
            });
        match fast {
            Ok(()) => Ok(()),
            Err(value) => Self::send_slow(this, hint, value, when_full),
        }
    }

    /// Wakes the workers of the view's one lane: kept out of line, so that
    /// topics whose workers never park (`this.wakes` false) keep a lean fast
    /// path.
    #[inline(never)]
    pub(super) fn wake_first(this: &Self, view: &View<T>) {
        if let Some(t) = view.targets.as_deref().and_then(|t| t.lanes.first()) {
            this.wake(t);
        }
    }

    /// `send` when the fast path declined: through `with_slot`, whatever the
    /// slot, lanes or context.
    #[cold]
    #[inline(never)]
    pub(super) fn send_slow(
        this: &Arc<Self>,
        hint: &AtomicUsize,
        value: T,
        when_full: WhenFull,
    ) -> Result<(), PublishError<T>> {
        let on_full = this.on_full(when_full);
        Self::with_view(this, hint, |view, access, info| {
            Self::send_general(this, view, access, info, value, on_full, false).map(drop)
        })
    }

    /// What a general publish does while a lane is full.
    pub(super) fn on_full(&self, when_full: WhenFull) -> OnFull {
        match when_full {
            WhenFull::AsConfigured if self.options.backpressure == Backpressure::Fail => {
                OnFull::Fail
            }
            WhenFull::AsConfigured | WhenFull::Wait => OnFull::Wait(None),
            WhenFull::Fail => OnFull::Fail,
            // Past what an `Instant` holds: as good as no deadline.
            WhenFull::Within(timeout) => OnFull::Wait(Instant::now().checked_add(timeout)),
        }
    }

    /// The publish path for one tracked event.
    pub(super) fn send_tracked(
        this: &Arc<Self>,
        hint: &AtomicUsize,
        value: T,
        when_full: WhenFull,
    ) -> Result<Receipt, PublishError<T>> {
        let on_full = this.on_full(when_full);
        Self::with_view(this, hint, |view, access, info| {
            let receipt = Self::send_general(this, view, access, info, value, on_full, true)?;
            Ok(this.receipt_or_done(receipt))
        })
    }

    /// The receipt of a tracked [`send_general`](Self::send_general), which
    /// returns one whenever asked to track; should it not, a receipt that is
    /// complete already (zero shares) rather than a panic.
    pub(super) fn receipt_or_done(&self, receipt: Option<Receipt>) -> Receipt {
        receipt.unwrap_or_else(|| receipt::tracked(self.runtime.id, self.runtime.waiters_spin, 0))
    }

    /// Every case of a single publish: several lanes, markers, timestamps,
    /// receipts, full lanes, a closed topic.
    ///
    /// All or nothing: the event goes into every lane of the snapshot or
    /// into none. Outside a worker, every lane must have room before the
    /// first push (room cannot shrink meanwhile: only this slot fills its
    /// rings), and the copies are made before the first push
    /// ([`fan_out`]), so neither a full lane, a timeout nor a panicking
    /// `Clone` leaves the event in some lanes only. A handler never waits:
    /// what does not fit goes to its worker's backlog (guarantee 10).
    #[cold]
    #[inline(never)]
    pub(super) fn send_general(
        this: &Arc<Self>,
        view: &mut View<T>,
        access: &SnapshotAccess<'_, Targets<T>>,
        info: SlotInfo<'_>,
        value: T,
        on_full: OnFull,
        track: bool,
    ) -> Result<Option<Receipt>, PublishError<T>> {
        if access.version() != view.version {
            this.revalidate(view, access);
        }
        let Some(targets) = view.targets.as_deref() else {
            return Err(PublishError::Closed(value));
        };
        if !targets.accepts(info.kind) {
            return Err(PublishError::Closed(value));
        }
        let lanes = &targets.lanes;
        if info.kind != SlotKind::Worker || matches!(on_full, OnFull::Fail) {
            if let Err(refused) = this.await_room(lanes, &mut view.producers, on_full) {
                return Err(refused.with(value));
            }
        }
        let version = view.version;
        let published = this.stamp();
        let seq = view.seq.next(&this.seq_blocks);
        let receipt = track
            .then(|| receipt::tracked(this.runtime.id, this.runtime.waiters_spin, lanes.len()));
        let lineage = trace::lineage();
        let View {
            producers,
            copies,
            backlog_registered,
            ..
        } = view;
        fan_out(
            lanes,
            value,
            copies,
            #[inline(always)]
            |t, value| {
                let ev = Outgoing {
                    value,
                    seq,
                    version,
                    published,
                    tracker: receipt.as_ref().map(Receipt::share),
                    lineage,
                };
                Self::push(
                    this,
                    t,
                    producers,
                    ev,
                    info.kind,
                    info.index,
                    backlog_registered,
                );
            },
        );
        info.count_published(1);
        Ok(receipt)
    }

    /// Waits until every lane has room (or nobody drains it any more) as
    /// `on_full` says; a worker only asks under [`OnFull::Fail`].
    pub(super) fn await_room(
        &self,
        lanes: &[Target<T>],
        producers: &mut Vec<Option<LaneProducer<T>>>,
        on_full: OnFull,
    ) -> Result<(), Refused> {
        let mut snooze: Option<Snooze> = None;
        loop {
            let full = lanes
                .iter()
                .find(|t| !t.lane.is_retired() && !producer_for(producers, &t.lane).has_room());
            let Some(full) = full else {
                return Ok(());
            };
            let deadline = match on_full {
                OnFull::Fail => {
                    self.count_full();
                    return Err(Refused::Full);
                }
                OnFull::Wait(deadline) => deadline,
            };
            if deadline.is_some_and(|d| Instant::now() >= d) {
                self.count_full();
                return Err(Refused::Timeout);
            }
            if self.runtime.state() == EXITING {
                // The workers are gone: no room will ever appear.
                return Err(Refused::Closed);
            }
            self.wake(full);
            snooze
                .get_or_insert_with(|| Snooze::new(self.runtime.idle))
                .snooze();
        }
    }

    /// Pushes one event into one lane and publishes it (a worker slot that
    /// finds the lane full queues it in its backlog).
    #[inline(always)]
    pub(super) fn push(
        this: &Arc<Self>,
        target: &Target<T>,
        producers: &mut Vec<Option<LaneProducer<T>>>,
        ev: Outgoing<T>,
        kind: SlotKind,
        slot: usize,
        registered: &mut bool,
    ) {
        let p = producer_for(producers, &target.lane);
        let ev = if p.backlog.is_empty() {
            match p.write(ev) {
                Ok(()) => {
                    this.wake(target);
                    return;
                }
                Err(ev) => ev,
            }
        } else {
            ev
        };
        Self::push_slow(this, target, p, ev, kind, slot, registered);
    }

    /// The lane is full (or this slot has a backlog for it): a worker slot
    /// queues the event in its backlog; any other slot waits for room (its
    /// caller checked for room, so this is a fallback, not a path).
    #[cold]
    #[inline(never)]
    pub(super) fn push_slow(
        this: &Arc<Self>,
        target: &Target<T>,
        p: &mut LaneProducer<T>,
        mut ev: Outgoing<T>,
        kind: SlotKind,
        slot: usize,
        registered: &mut bool,
    ) {
        if kind == SlotKind::Worker {
            p.backlog.push_back(ev);
            if !*registered {
                *registered = true;
                crate::runtime::drain::register_backlog(Box::new(TopicBacklog {
                    topic: this.clone(),
                    slot,
                }));
            }
            return;
        }
        let mut snooze = Snooze::new(this.runtime.idle);
        loop {
            if target.lane.is_retired() {
                // Nobody will ever drain this lane, and the event was meant
                // for it only.
                this.discarded.fetch_add(1, Ordering::Relaxed);
                return;
            }
            match p.write(ev) {
                Ok(()) => {
                    this.wake(target);
                    return;
                }
                Err(e) => ev = e,
            }
            this.wake(target);
            snooze.snooze();
        }
    }

    /// Counts a publish refused for a full lane (`TopicMetrics::full`).
    #[cold]
    #[inline(never)]
    pub(super) fn count_full(&self) {
        self.full.fetch_add(1, Ordering::Relaxed);
    }

    /// Writes into a lane whose room the caller checked; commits later.
    #[inline(always)]
    pub(super) fn write(
        this: &Arc<Self>,
        target: &Target<T>,
        producers: &mut Vec<Option<LaneProducer<T>>>,
        ev: Outgoing<T>,
        kind: SlotKind,
        slot: usize,
        registered: &mut bool,
    ) {
        let p = producer_for(producers, &target.lane);
        if let Err(ev) = p.write(ev) {
            // Not reached: the caller saw room for this write. Stay correct
            // anyway: take the slow path.
            Self::push_slow(this, target, p, ev, kind, slot, registered);
        }
    }
}
