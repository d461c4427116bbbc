//! Topics: typed, named streams, and the publish family.
//!
//! A publish takes the calling thread's producer slot ([`producer`](crate::core::producer)), checks
//! the topic's snapshot version against the slot's cached copy (the only load
//! of shared state on the common path), then pushes the event once per lane
//! of the cached snapshot: cloned into all lanes but the last, moved into the
//! last.
//!
//! Subscribing or unsubscribing changes the snapshot under the topic's
//! `control` mutex (copy-on-write, [`snapshot`](crate::core::snapshot)); the worker learns about the
//! handler through a command queued *before* the new version is published, so
//! it has the handler before it can see an event stamped with that version.

use std::time::Instant;

use crossbeam_utils::CachePadded;

use super::control::TopicControl;
use super::options::TopicOptions;
use super::targets::{Control, Target, Targets};
use super::view::{producer_for, View};
use crate::core::producer::{ProducerSlots, SlotInfo, SlotKind, SnapshotAccess};
use crate::event::name::TopicName;
use crate::failure::dead_letter::DeadLetterStore;
use crate::loom::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use crate::loom::sync::{Arc, Mutex};
use crate::observe::metrics::{SubscriptionMetrics, TopicMetrics};
use crate::runtime::workers::{Runtime, RUNNING};
use crate::sys::epoch::now_nanos;
use crate::sys::error::SubscribeError;
use crate::topic::names::Hub;

/// Everything a topic's handles share.
pub(crate) struct TopicShared<T> {
    pub(crate) name: &'static TopicName,
    pub(crate) uid: u64,
    pub(crate) options: TopicOptions,
    pub(super) home: usize,
    pub(crate) runtime: Arc<Runtime>,
    pub(super) slots: ProducerSlots<View<T>, Targets<T>>,
    pub(super) seq_blocks: CachePadded<AtomicU64>,
    /// Whether publishers must check the workers' `sleeping` flags.
    pub(super) wakes: bool,
    /// Lane copies dropped outside a worker: a group lane lost its last
    /// member while a producer waited on it, or held events at shutdown.
    pub(super) discarded: AtomicU64,
    /// Publish calls refused with `PublishError::Full`. Touched only on that
    /// cold path, never per accepted event. Relaxed: a statistic, read by
    /// `Engine::metrics` with no other data depending on it.
    pub(super) full: AtomicU64,
    pub(super) control: Mutex<Control<T>>,
    /// The engine's topic registry (opens the dead-letter topic).
    pub(super) hub: Arc<Hub>,
    /// Dead letters kept while the dead-letter topic has no subscriber.
    pub(crate) dead: DeadLetterStore<T>,
    /// Delayed events dropped because the engine closed before they fired.
    pub(crate) delayed_dropped: AtomicU64,
    /// Events publish interceptors refused ([`intercept`](crate::intercept)).
    pub(crate) rejected: AtomicU64,
    /// Live [`Topic`](crate::Topic) handles (a [`Group`](crate::Group) and a pending delayed event hold
    /// one each). With no handle, no subscription and no kept dead letter,
    /// the topic leaves the registry ([`Hub::release`]). `AcqRel` on the
    /// decrement that may free it; increments from zero happen only under
    /// the registry's lock.
    pub(super) handles: AtomicUsize,
    /// Random per topic (and engine): what its root events' trace and span
    /// ids are derived from, with their sequence numbers.
    pub(crate) salt: u64,
}

impl<T: Clone + Send + 'static> TopicShared<T> {
    pub(crate) fn new(
        name: &'static TopicName,
        options: TopicOptions,
        runtime: Arc<Runtime>,
        hub: Arc<Hub>,
        home: usize,
    ) -> Self {
        let workers = runtime.workers.len();
        let slots = ProducerSlots::new(
            runtime.producer_slots,
            &runtime.worker_tokens(),
            Targets {
                state: RUNNING,
                lanes: Vec::new(),
            },
            |_| View::new(),
        );
        let uid = crate::loom::unique_id();
        TopicShared {
            name,
            uid,
            options,
            home,
            wakes: runtime.wakes_on_publish(),
            runtime,
            slots,
            seq_blocks: CachePadded::new(AtomicU64::new(0)),
            discarded: AtomicU64::new(0),
            full: AtomicU64::new(0),
            control: Mutex::new(Control {
                state: RUNNING,
                lanes: Vec::new(),
                worker_lane: vec![None; workers],
                worker_subs: vec![0; workers],
                groups: Vec::new(),
                subs: Vec::new(),
            }),
            salt: crate::sys::mix::mix64(hub.trace_seed ^ crate::sys::mix::mix64(uid)),
            hub,
            dead: DeadLetterStore::new(),
            delayed_dropped: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            handles: AtomicUsize::new(0),
        }
    }

    /// Whether any subscription (plain or group member) is live.
    pub(crate) fn has_subscribers(&self) -> bool {
        self.control.lock().has_subscribers()
    }

    /// Leaves the registry if nothing uses the topic any more (see
    /// `handles`). Call with no lock held.
    pub(super) fn release_if_unused(&self) {
        if self.handles.load(Ordering::Acquire) == 0 {
            self.hub.release(self.name.as_str(), self.uid);
        }
    }

    /// Loads the current snapshot into the view and makes sure the slot has a
    /// ring in each of its lanes.
    #[cold]
    pub(super) fn revalidate(&self, view: &mut View<T>, access: &SnapshotAccess<'_, Targets<T>>) {
        let (version, targets) = access.load();
        view.fast_off();
        // Retired lanes' rings go (their ids may come back with new lanes);
        // what a backlog still held for them is discarded. The retirement
        // happened before this snapshot was published, so it is visible.
        let mut dropped = 0;
        for entry in &mut view.producers {
            if entry.as_ref().is_some_and(|p| p.lane.is_retired()) {
                dropped += entry.take().map_or(0, |p| p.backlog.len() as u64);
            }
        }
        if dropped > 0 {
            self.discarded.fetch_add(dropped, Ordering::Relaxed);
        }
        for t in &targets.lanes {
            producer_for(&mut view.producers, &t.lane);
        }
        view.fast_off();
        view.version = version;
        view.targets = Some(targets);
    }

    /// Decides whether `send`'s fast path may take this slot's next publish:
    /// yes when `targets` has exactly one lane, this slot may publish, the
    /// topic takes no timestamps, and an event with the slot's next sequence
    /// number under its version continues that lane's sequence with nothing
    /// waiting before it (so the consumer can infer its sequence number and
    /// version: a plain entry). Only this slot's publishes change any of
    /// that, and each general one ends here (`with_view`); the fast path's
    /// own publish keeps it true, and a new topic version fails its version
    /// check. A trace context does not change the answer: the fast path
    /// carries a lineage that steps from the lane's previous one, and
    /// declines any other.
    ///
    /// The caller has turned the fast path off (`View::fast_off`).
    pub(super) fn refresh_fast(&self, view: &mut View<T>, kind: SlotKind) {
        if self.options.timestamps {
            return;
        }
        let Some(targets) = view.targets.as_deref() else {
            return;
        };
        let [one] = targets.lanes.as_slice() else {
            return;
        };
        if !targets.accepts(kind) {
            return;
        }
        let Some(entry) = view.producers.get_mut(one.lane.id) else {
            return;
        };
        if entry
            .as_ref()
            .is_some_and(|p| p.continues(view.seq.next, view.version))
        {
            view.fast = entry.take();
            view.fast_version = view.version;
        }
    }

    /// Runs a general publish `f` on the calling thread's slot, with the fast
    /// path off while it runs (so it stays off should `f` unwind) and decided
    /// again afterwards.
    #[inline(always)]
    pub(super) fn with_view<R>(
        this: &Arc<Self>,
        hint: &AtomicUsize,
        f: impl FnOnce(&mut View<T>, &SnapshotAccess<'_, Targets<T>>, SlotInfo<'_>) -> R,
    ) -> R {
        this.slots.with_slot(
            hint,
            #[inline(always)]
            |view, access, info| {
                let kind = info.kind;
                view.fast_off();
                let out = f(view, access, info);
                this.refresh_fast(view, kind);
                out
            },
        )
    }

    #[inline(always)]
    pub(super) fn wake(&self, target: &Target<T>) {
        if self.wakes {
            for w in &target.wake {
                w.wake_if_sleeping();
            }
        }
    }

    #[inline(always)]
    pub(super) fn stamp(&self) -> u64 {
        if self.options.timestamps {
            now_nanos()
        } else {
            0
        }
    }

    pub(super) fn closed(&self) -> SubscribeError {
        SubscribeError::Closed {
            topic: self.name.as_str().to_owned(),
        }
    }

    pub(super) fn publish_snapshot(&self, control: &Control<T>) {
        self.slots
            .snapshot()
            .update(|_, _| control.targets(&self.runtime));
    }
}

impl<T: Clone + Send + 'static> TopicControl for Arc<TopicShared<T>> {
    fn share(&self) -> Box<dyn TopicControl> {
        Box::new(self.clone())
    }

    fn uid(&self) -> u64 {
        self.uid
    }

    fn is_unused(&self) -> bool {
        self.handles.load(Ordering::Acquire) == 0
            && !self.has_subscribers()
            && self.dead.kept() == 0
    }

    fn set_state(&self, state: u8) {
        let mut control = self.control.lock();
        control.state = state;
        self.publish_snapshot(&control);
        // Async producers waiting for room see the new state.
        for lane in control.lanes.iter().flatten() {
            lane.room.notify_all();
        }
    }

    fn wait_external_idle(&self, deadline: Option<Instant>) -> bool {
        self.slots.wait_inactive(self.slots.external(), deadline)
    }

    fn is_drained(&self) -> bool {
        let control = self.control.lock();
        control.lanes.iter().flatten().all(|l| l.is_empty())
    }

    fn published(&self) -> u64 {
        self.slots.published()
    }

    fn discarded(&self) -> u64 {
        self.discarded.load(Ordering::Relaxed)
    }

    fn dead_letters(&self) -> u64 {
        self.dead.total()
    }

    fn metrics(&self, subs: &mut Vec<SubscriptionMetrics>) -> TopicMetrics {
        {
            let control = self.control.lock();
            subs.extend(control.subs.iter().map(|s| {
                let lag = s.lane.depth();
                s.shared.metrics(s.group.as_deref(), s.worker, lag)
            }));
        }
        TopicMetrics {
            name: self.name.as_str().to_owned(),
            published: self.published(),
            full: self.full.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            discarded: self.discarded(),
            dead_letters: self.dead.total(),
            dead_letters_kept: self.dead.kept(),
        }
    }
}

impl<T> Drop for TopicShared<T> {
    /// A freed topic's counts stay in the engine's shutdown report.
    fn drop(&mut self) {
        let freed = &self.hub.freed;
        freed
            .published
            .fetch_add(self.slots.published(), Ordering::Relaxed);
        freed
            .discarded
            .fetch_add(self.discarded.load(Ordering::Relaxed), Ordering::Relaxed);
        freed
            .dead_letters
            .fetch_add(self.dead.total(), Ordering::Relaxed);
    }
}
