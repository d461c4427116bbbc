//! Topics: typed, named streams, and the publish family.
//!
//! A publish takes the calling thread's producer slot (`producer.rs`), checks
//! the topic's snapshot version against the slot's cached copy (the only load
//! of shared state on the common path), then pushes the event once per lane
//! of the cached snapshot: cloned into all lanes but the last, moved into the
//! last.
//!
//! Subscribing or unsubscribing changes the snapshot under the topic's
//! `control` mutex (copy-on-write, `snapshot.rs`); the worker learns about the
//! handler through a command queued *before* the new version is published, so
//! it has the handler before it can see an event stamped with that version.

use std::fmt;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;

use crate::dead_letter::{DeadLetter, DeadLetterStore};
use crate::dispatch::{GroupDrain, PlainDrain};
use crate::engine::Hub;
use crate::error::{PublishError, SubscribeError, TopicError};
use crate::event::{now_nanos, Event, TopicName};
use crate::fence;
use crate::lane::{Lane, LaneProducer, Outgoing};
use crate::layer::{Handler, Layers};
use crate::loom::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use crate::loom::sync::{Arc, Mutex};
use crate::metrics::{SubscriptionMetrics, TopicMetrics};
use crate::producer::{ProducerSlots, SlotInfo, SlotKind, SnapshotAccess};
use crate::receipt::{self, Receipt};
use crate::recovery::{OnFailure, Recovery};
use crate::retry::RetryPolicy;
use crate::solo::{self, BoxedHandler};
use crate::subscription::{
    Detach, HandlerEntry, HandlerOutcome, SubShared, SubscribeOptions, Subscription,
};
use crate::timer::{TimerKey, TimerTask};
use crate::trace::{self, TraceContext};
use crate::worker::{
    self, Backlog, DrainKey, Quiesce, Runtime, Snooze, WorkerShared, DRAINING, EXITING, RUNNING,
};

/// Sequence numbers are handed to producer slots in blocks of this size, so
/// the shared counter is touched once per this many events.
const SEQ_BLOCK: u64 = 1024;

/// What a publish does when a lane is full.
///
/// ## Backpressure
///
/// - `Block`: wait until the worker frees room. On a worker thread (a handler
///   publishing) the event goes to that worker's backlog instead and is pushed
///   as room appears, so a handler never waits for its own worker — or for
///   another worker that waits for it.
/// - `Fail`: return [`PublishError::Full`] with the event.
///
/// Either way nothing is lost: an event is in every lane it is meant for, or
/// handed back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Backpressure {
    /// Wait for room.
    #[default]
    Block,
    /// Hand the event back.
    Fail,
}

/// Options of a topic, fixed when it is created.
///
/// # Examples
///
/// ```
/// use pinbus::{Backpressure, TopicOptions};
/// let opts = TopicOptions::default()
///     .backpressure(Backpressure::Fail)
///     .timestamps(false)
///     .worker(0);
/// # let _ = opts;
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicOptions {
    pub(crate) backpressure: Backpressure,
    pub(crate) timestamps: bool,
    pub(crate) worker: Option<usize>,
}

impl Default for TopicOptions {
    fn default() -> Self {
        TopicOptions {
            backpressure: Backpressure::Block,
            timestamps: false,
            worker: None,
        }
    }
}

impl TopicOptions {
    /// What `publish` does when a lane is full (default `Block`).
    pub fn backpressure(mut self, backpressure: Backpressure) -> Self {
        self.backpressure = backpressure;
        self
    }

    /// Whether each publish reads the clock for an exact
    /// [`Event::published_at`] (default `false`). A clock read costs more than
    /// the rest of a publish; without it, `published_at` reports the worker's
    /// dispatch clock (see [`Event::published_at`]).
    pub fn timestamps(mut self, on: bool) -> Self {
        self.timestamps = on;
        self
    }

    /// The worker that runs this topic's plain subscriptions (default: topics
    /// are spread over the workers in creation order).
    pub fn worker(mut self, worker: usize) -> Self {
        self.worker = Some(worker);
        self
    }
}

/// One lane of a snapshot and the workers to wake after pushing to it.
pub(crate) struct Target<T> {
    lane: Arc<Lane<T>>,
    wake: Vec<Arc<WorkerShared>>,
}

/// The immutable snapshot producers read: the lanes with live subscriptions.
pub(crate) struct Targets<T> {
    state: u8,
    lanes: Vec<Target<T>>,
}

impl<T> Targets<T> {
    /// Whether a slot of `kind` may publish: anyone while running; only
    /// handlers (worker slots) while draining.
    #[inline(always)]
    fn accepts(&self, kind: SlotKind) -> bool {
        self.state == RUNNING || (self.state == DRAINING && kind == SlotKind::Worker)
    }
}

/// Per-slot sequence numbers, drawn from the topic in blocks.
struct Seq {
    next: u64,
    end: u64,
}

impl Seq {
    /// The next number, drawing a new block when this one is used up.
    #[inline(always)]
    fn next(&mut self, blocks: &AtomicU64) -> u64 {
        if self.next == self.end {
            self.refill(blocks);
        }
        let s = self.next;
        self.next += 1;
        s
    }

    #[cold]
    fn refill(&mut self, blocks: &AtomicU64) {
        // Relaxed: only uniqueness matters.
        self.next = blocks.fetch_add(SEQ_BLOCK, Ordering::Relaxed);
        self.end = self.next + SEQ_BLOCK;
    }
}

/// What a publish does when a lane has no room: resolved on the slow path
/// only, so the fast path reads no option for it.
#[derive(Clone, Copy)]
enum WhenFull {
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
enum OnFull {
    Fail,
    /// Wait, until the deadline if there is one.
    Wait(Option<Instant>),
}

/// Why a publish found no room.
enum Refused {
    Full,
    Timeout,
    Closed,
}

impl Refused {
    fn with<T>(self, value: T) -> PublishError<T> {
        match self {
            Refused::Full => PublishError::Full(value),
            Refused::Timeout => PublishError::Timeout(value),
            Refused::Closed => PublishError::Closed(value),
        }
    }
}

/// An iterator that turns a panic of the one it wraps into its end, keeping
/// the payload (see [`TopicShared::send_batch`]).
struct Contained<I> {
    inner: I,
    panic: Option<Box<dyn std::any::Any + Send>>,
}

impl<I: Iterator> Iterator for Contained<I> {
    type Item = I::Item;

    #[inline(always)]
    fn next(&mut self) -> Option<I::Item> {
        if self.panic.is_some() {
            return None;
        }
        let inner = &mut self.inner;
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.next())) {
            Ok(next) => next,
            Err(payload) => {
                self.panic = Some(payload);
                None
            }
        }
    }
}

/// Events a batch published, added to the slot's count when it drops (also
/// on unwind).
struct Counted<'a, 'b>(&'a SlotInfo<'b>, u64);

impl Drop for Counted<'_, '_> {
    fn drop(&mut self) {
        self.0.count_published(self.1);
    }
}

/// Sends `value` into every lane of `lanes` through `push`: all lanes but
/// the last get a copy, the last the value itself. Every copy is made
/// before the first push, so a `Clone` that panics leaves the event in no
/// lane (guarantee 12). `copies` is scratch space kept by the caller (no
/// allocation once it has grown to the fan-out).
#[inline(always)]
fn fan_out<T: Clone>(
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

/// A producer slot's view of the topic (owned by the slot holder).
pub(crate) struct View<T> {
    /// Version of `targets`; `u64::MAX` before the first load.
    version: u64,
    targets: Option<Arc<Targets<T>>>,
    /// This slot's end of each lane it has pushed to, by lane id (but the
    /// one in `fast`, whose entry is `None` meanwhile).
    producers: Vec<Option<LaneProducer<T>>>,
    seq: Seq,
    /// Worker slots: a backlog is registered with the worker loop.
    backlog_registered: bool,
    /// The producer of `send`'s fast path, moved out of `producers` while
    /// the fast path is on (so the fast path reaches it without an index),
    /// and back in before any other publish (`View::fast_off`).
    fast: Option<LaneProducer<T>>,
    /// `version` while the fast path may take the next publish, `u64::MAX`
    /// (no version reaches it) otherwise; see [`TopicShared::refresh_fast`].
    fast_version: u64,
    /// The copies a fan-out makes before it pushes any (see [`fan_out`]);
    /// kept between publishes for its allocation.
    copies: Vec<T>,
}

impl<T> View<T> {
    /// Turns the fast path off and puts its producer back in `producers`.
    #[inline(always)]
    fn fast_off(&mut self) {
        self.fast_version = u64::MAX;
        // Checked first: `take` would copy the whole `Option` even when empty.
        if self.fast.is_some() {
            self.put_back_fast();
        }
    }

    #[inline(never)]
    fn put_back_fast(&mut self) {
        if let Some(p) = self.fast.take() {
            let id = p.lane.id;
            // Taken from `producers[id]`, which never shrinks.
            if let Some(entry) = self.producers.get_mut(id) {
                *entry = Some(p);
            }
        }
    }
}

/// This slot's producer for `lane`, created on first use.
#[inline(always)]
fn producer_for<'p, T>(
    producers: &'p mut Vec<Option<LaneProducer<T>>>,
    lane: &Arc<Lane<T>>,
) -> &'p mut LaneProducer<T> {
    let id = lane.id;
    // The id may have belonged to a retired lane (`revalidate` prunes those
    // first, so this is a check, not a path).
    if matches!(producers.get(id), Some(Some(p)) if Arc::ptr_eq(&p.lane, lane)) {
        match &mut producers[id] {
            Some(p) => return p,
            None => unreachable!("checked just above"),
        }
    }
    create_producer(producers, lane)
}

#[cold]
#[inline(never)]
fn create_producer<'p, T>(
    producers: &'p mut Vec<Option<LaneProducer<T>>>,
    lane: &Arc<Lane<T>>,
) -> &'p mut LaneProducer<T> {
    let id = lane.id;
    if producers.len() <= id {
        producers.resize_with(id + 1, || None);
    }
    producers[id].insert(Lane::new_producer(lane))
}

/// Subscription bookkeeping, changed under `TopicShared::control`.
struct Control<T> {
    state: u8,
    /// Live lanes by id (a lane's index in producer views); `None`: a free
    /// id, reused by the next new lane.
    lanes: Vec<Option<Arc<Lane<T>>>>,
    /// Lane id of each worker's lane, while it has one.
    worker_lane: Vec<Option<usize>>,
    /// Live plain subscriptions per worker.
    worker_subs: Vec<usize>,
    /// Groups with at least one member (a group whose last member leaves is
    /// removed, and its lane retired).
    groups: Vec<GroupEntry>,
    /// Live subscriptions, in subscription order, for `Engine::metrics`:
    /// pushed once the worker has the handler, removed by their detach.
    subs: Vec<LiveSub<T>>,
}

/// A live subscription as the topic lists it (`Control::subs`).
struct LiveSub<T> {
    shared: Arc<SubShared>,
    /// The group's name, for a group member.
    group: Option<Box<str>>,
    /// The lane it takes its events from (fixed for its life).
    lane: Arc<Lane<T>>,
    worker: usize,
}

struct GroupEntry {
    name: Box<str>,
    /// Lane id.
    lane: usize,
    /// Live members per worker.
    members: Vec<usize>,
    /// Members placed so far (round-robin cursor).
    placed: usize,
}

impl<T> Control<T> {
    /// A new lane, under the first free id.
    fn new_lane(&mut self, group: bool, capacity: usize) -> Arc<Lane<T>> {
        let id = match self.lanes.iter().position(Option::is_none) {
            Some(free) => free,
            None => {
                self.lanes.push(None);
                self.lanes.len() - 1
            }
        };
        let lane = Arc::new(Lane::new(id, group, capacity));
        self.lanes[id] = Some(lane.clone());
        lane
    }

    fn lane(&self, id: usize) -> Option<&Arc<Lane<T>>> {
        self.lanes.get(id).and_then(Option::as_ref)
    }

    fn worker_lane(&mut self, w: usize, capacity: usize) -> Arc<Lane<T>> {
        if let Some(lane) = self.worker_lane[w].and_then(|id| self.lane(id)) {
            return lane.clone();
        }
        let lane = self.new_lane(false, capacity);
        self.worker_lane[w] = Some(lane.id);
        lane
    }

    /// Takes worker `w`'s lane out of the bookkeeping and retires it (its
    /// last subscription left).
    fn retire_worker_lane(&mut self, w: usize) -> Option<Arc<Lane<T>>> {
        let id = self.worker_lane[w].take()?;
        let lane = self.lanes.get_mut(id)?.take()?;
        lane.retire();
        Some(lane)
    }

    fn group(&mut self, name: &str, workers: usize, capacity: usize) -> usize {
        if let Some(g) = self.groups.iter().position(|g| &*g.name == name) {
            return g;
        }
        let name: Box<str> = name.into();
        let lane = self.new_lane(true, capacity);
        self.groups.push(GroupEntry {
            name,
            lane: lane.id,
            members: vec![0; workers],
            placed: 0,
        });
        self.groups.len() - 1
    }

    /// The group whose lane is `lane`, if it is still live.
    fn group_of(&self, lane: &Arc<Lane<T>>) -> Option<usize> {
        self.groups
            .iter()
            .position(|g| self.lane(g.lane).is_some_and(|l| Arc::ptr_eq(l, lane)))
    }

    /// Drops subscription `id` from the live list (its detach).
    fn forget(&mut self, id: u64) {
        self.subs.retain(|s| s.shared.id != id);
    }

    /// Whether any subscription (plain or group member) is live.
    fn has_subscribers(&self) -> bool {
        self.worker_subs.iter().any(|&n| n > 0) || !self.groups.is_empty()
    }

    /// The snapshot for the current bookkeeping.
    fn targets(&self, runtime: &Runtime) -> Targets<T> {
        let mut lanes = Vec::new();
        for (w, id) in self.worker_lane.iter().enumerate() {
            let lane = id.and_then(|id| self.lane(id));
            if let (Some(lane), true) = (lane, self.worker_subs[w] > 0) {
                lanes.push(Target {
                    lane: lane.clone(),
                    wake: vec![runtime.workers[w].clone()],
                });
            }
        }
        for g in &self.groups {
            let wake: Vec<_> = (g.members.iter().enumerate())
                .filter(|(_, &m)| m > 0)
                .map(|(w, _)| runtime.workers[w].clone())
                .collect();
            if let (Some(lane), false) = (self.lane(g.lane), wake.is_empty()) {
                lanes.push(Target {
                    lane: lane.clone(),
                    wake,
                });
            }
        }
        Targets {
            state: self.state,
            lanes,
        }
    }
}

/// Everything a topic's handles share.
pub(crate) struct TopicShared<T> {
    pub(crate) name: &'static TopicName,
    pub(crate) uid: u64,
    pub(crate) options: TopicOptions,
    home: usize,
    pub(crate) runtime: Arc<Runtime>,
    slots: ProducerSlots<View<T>, Targets<T>>,
    seq_blocks: CachePadded<AtomicU64>,
    /// Whether publishers must check the workers' `sleeping` flags.
    wakes: bool,
    /// Lane copies dropped outside a worker: a group lane lost its last
    /// member while a producer waited on it, or held events at shutdown.
    discarded: AtomicU64,
    /// Publish calls refused with `PublishError::Full`. Touched only on that
    /// cold path, never per accepted event. Relaxed: a statistic, read by
    /// `Engine::metrics` with no other data depending on it.
    full: AtomicU64,
    control: Mutex<Control<T>>,
    /// The engine's topic registry (opens the dead-letter topic).
    hub: Arc<Hub>,
    /// Dead letters kept while the dead-letter topic has no subscriber.
    pub(crate) dead: DeadLetterStore<T>,
    /// Delayed events dropped because the engine closed before they fired.
    pub(crate) delayed_dropped: AtomicU64,
    /// Events publish interceptors refused (`intercept.rs`).
    pub(crate) rejected: AtomicU64,
    /// Live [`Topic`] handles (a [`Group`] and a pending delayed event hold
    /// one each). With no handle, no subscription and no kept dead letter,
    /// the topic leaves the registry ([`Hub::release`]). `AcqRel` on the
    /// decrement that may free it; increments from zero happen only under
    /// the registry's lock.
    handles: AtomicUsize,
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
            |_| View {
                version: u64::MAX,
                targets: None,
                producers: Vec::new(),
                seq: Seq { next: 0, end: 0 },
                backlog_registered: false,
                fast: None,
                fast_version: u64::MAX,
                copies: Vec::new(),
            },
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
            salt: crate::event::mix64(hub.trace_seed ^ crate::event::mix64(uid)),
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
    fn release_if_unused(&self) {
        if self.handles.load(Ordering::Acquire) == 0 {
            self.hub.release(self.name.as_str(), self.uid);
        }
    }

    /// The fallible half of a new subscription's failure path: checks the
    /// retry policy and opens the dead-letter topic.
    fn prepare_recovery(
        this: &Arc<Self>,
        policy: Option<RetryPolicy>,
    ) -> Result<Option<Prepared<T>>, SubscribeError> {
        let Some(policy) = policy else {
            return Ok(None);
        };
        policy
            .check()
            .map_err(|problem| SubscribeError::InvalidRetry { problem })?;
        let dead_letters = Hub::open_dead_letters::<DeadLetter<T>>(&this.hub, this.name.as_str())
            .map_err(|e| match e {
            TopicError::Closed => this.closed(),
            other => SubscribeError::DeadLetterTopic {
                reason: other.to_string(),
            },
        })?;
        Ok(Some((policy, dead_letters)))
    }

    /// The handler entry of a new subscription on drain `key` of worker `w`.
    fn entry(
        this: &Arc<Self>,
        sub: &Arc<SubShared>,
        since: u64,
        handler: BoxedHandler<T>,
        recovery: Option<Prepared<T>>,
        slow: Option<Duration>,
        (w, key, group): (usize, DrainKey, bool),
    ) -> HandlerEntry<T> {
        let on_failure = recovery.map(|(policy, dead_letters)| {
            Box::new(Recovery::new(
                policy,
                this.runtime.clone(),
                this.clone(),
                dead_letters,
                w,
                key,
                group,
            )) as Box<dyn OnFailure<T>>
        });
        HandlerEntry::new(sub.clone(), since, handler).with_recovery(on_failure, slow)
    }

    /// Loads the current snapshot into the view and makes sure the slot has a
    /// ring in each of its lanes.
    #[cold]
    fn revalidate(&self, view: &mut View<T>, access: &SnapshotAccess<'_, Targets<T>>) {
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
    /// check. Under a trace context the answer is no as well: the fast path
    /// would decline the thread's next publish too (likely under the same
    /// context), so the lane producer is not moved out and back per publish.
    ///
    /// The caller has turned the fast path off (`View::fast_off`).
    fn refresh_fast(&self, view: &mut View<T>, kind: SlotKind) {
        if self.options.timestamps || trace::active() {
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
    fn with_view<R>(
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
    fn wake(&self, target: &Target<T>) {
        if self.wakes {
            for w in &target.wake {
                w.wake_if_sleeping();
            }
        }
    }

    #[inline(always)]
    fn stamp(&self) -> u64 {
        if self.options.timestamps {
            now_nanos()
        } else {
            0
        }
    }

    /// The publish path for one untracked event.
    #[inline(always)]
    fn send(
        this: &Arc<Self>,
        hint: &AtomicUsize,
        value: T,
        when_full: WhenFull,
    ) -> Result<(), PublishError<T>> {
        // Fast path: the thread's own slot, one lane, nothing to tell the
        // consumer but the value.
        let fast = this
            .slots
            .fast(hint, value, |view, version, published, value| {
                if version != view.fast_version || view.seq.next == view.seq.end || trace::active()
                {
                    return Err(value);
                }
                let Some(p) = view.fast.as_mut() else {
                    return Err(value);
                };
                debug_assert!(p.continues(view.seq.next, version));
                p.push_plain(value)?;
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
    fn wake_first(this: &Self, view: &View<T>) {
        if let Some(t) = view.targets.as_deref().and_then(|t| t.lanes.first()) {
            this.wake(t);
        }
    }

    /// `send` when the fast path declined: through `with_slot`, whatever the
    /// slot, lanes or context.
    #[cold]
    #[inline(never)]
    fn send_slow(
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
    fn on_full(&self, when_full: WhenFull) -> OnFull {
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
    fn send_tracked(
        this: &Arc<Self>,
        hint: &AtomicUsize,
        value: T,
        when_full: WhenFull,
    ) -> Result<Receipt, PublishError<T>> {
        let on_full = this.on_full(when_full);
        Self::with_view(this, hint, |view, access, info| {
            let receipt = Self::send_general(this, view, access, info, value, on_full, true)?;
            // `send_general` returns a receipt whenever asked to track.
            Ok(receipt.unwrap_or_else(|| receipt::tracked(this.runtime.id, 0)))
        })
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
    fn send_general(
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
        let receipt = track.then(|| receipt::tracked(this.runtime.id, lanes.len()));
        let trace = trace::carry();
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
                    trace,
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
    fn await_room(
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
    fn push(
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
    fn push_slow(
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
                worker::register_backlog(Box::new(TopicBacklog {
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

    /// The publish path for a batch: one room check per lane for each run
    /// that fits, one clock read for the whole batch.
    fn send_batch(
        this: &Arc<Self>,
        hint: &AtomicUsize,
        events: impl IntoIterator<Item = T>,
    ) -> Result<(), PublishError<Vec<T>>> {
        // The caller's iterator runs inside the ring writes: a panic in it
        // ends the batch cleanly (what came before is published and counted)
        // and is resumed once the publish is complete.
        let mut iter = Contained {
            inner: events.into_iter(),
            panic: None,
        };
        let fail = this.options.backpressure == Backpressure::Fail;
        let published = this.stamp();
        let trace = trace::carry();
        let result = Self::with_view(this, hint, |view, access, info| {
            // Counted even if a `Clone` unwinds out of a fan-out.
            let mut count = Counted(&info, 0);
            let count = &mut count.1;
            let mut snooze = Snooze::new(this.runtime.idle);
            let result = loop {
                if access.version() != view.version {
                    this.revalidate(view, access);
                }
                let View {
                    version,
                    targets,
                    producers,
                    copies,
                    backlog_registered,
                    seq: seqs,
                    ..
                } = &mut *view;
                let Some(targets) = targets.as_deref() else {
                    break Err(PublishError::Closed(iter.by_ref().collect()));
                };
                if !targets.accepts(info.kind) {
                    break Err(PublishError::Closed(iter.by_ref().collect()));
                }
                let lanes = &targets.lanes;
                let Some((last, rest)) = lanes.split_last() else {
                    *count += iter.by_ref().count() as u64;
                    break Ok(());
                };
                let version = *version;
                let (kind, index) = (info.kind, info.index);
                // A run that fits every lane (a retired lane takes anything:
                // nobody drains it, and what reaches it is discarded).
                let room = lanes
                    .iter()
                    .map(|t| match t.lane.is_retired() {
                        true => usize::MAX,
                        false => producer_for(producers, &t.lane).room(),
                    })
                    .min()
                    .unwrap_or(0);
                if room == 0 {
                    if fail {
                        this.count_full();
                        break Err(PublishError::Full(iter.by_ref().collect()));
                    }
                    if kind == SlotKind::Worker {
                        // A handler never waits: the rest goes to backlogs.
                        for value in iter.by_ref() {
                            let seq = seqs.next(&this.seq_blocks);
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
                                        tracker: None,
                                        trace,
                                    };
                                    Self::push(
                                        this,
                                        t,
                                        producers,
                                        ev,
                                        kind,
                                        index,
                                        backlog_registered,
                                    );
                                },
                            );
                            *count += 1;
                        }
                        break Ok(());
                    }
                    if this.runtime.state() == EXITING {
                        // The workers are gone: no room will ever appear.
                        break Err(PublishError::Closed(iter.by_ref().collect()));
                    }
                    for t in lanes {
                        this.wake(t);
                    }
                    snooze.snooze();
                    continue;
                }
                let mut pushed = 0;
                // One lane and nothing to attach: plain entries while they
                // continue the lane's sequence within this seq block.
                if rest.is_empty() && published == 0 && trace.is_none() {
                    let p = producer_for(producers, &last.lane);
                    if p.continues(seqs.next, version) {
                        let block = usize::try_from(seqs.end - seqs.next).unwrap_or(room);
                        let n = p.push_plain_from(&mut iter, room.min(block));
                        seqs.next += n as u64;
                        pushed = n;
                        *count += n as u64;
                    }
                }
                while pushed < room {
                    let Some(value) = iter.next() else {
                        break;
                    };
                    let seq = seqs.next(&this.seq_blocks);
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
                                tracker: None,
                                trace,
                            };
                            Self::write(this, t, producers, ev, kind, index, backlog_registered);
                        },
                    );
                    pushed += 1;
                    *count += 1;
                }
                for t in lanes {
                    this.wake(t);
                }
                if pushed < room {
                    break Ok(());
                }
                snooze = Snooze::new(this.runtime.idle);
            };
            result
        });
        if let Some(payload) = iter.panic.take() {
            std::panic::resume_unwind(payload);
        }
        result
    }

    /// Counts a publish refused for a full lane (`TopicMetrics::full`).
    #[cold]
    #[inline(never)]
    fn count_full(&self) {
        self.full.fetch_add(1, Ordering::Relaxed);
    }

    /// Writes into a lane whose room the caller checked; commits later.
    #[inline(always)]
    fn write(
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

    fn subscribe_plain(
        this: &Arc<Self>,
        handler: BoxedHandler<T>,
        options: SubscribeOptions,
    ) -> Result<Subscription, SubscribeError> {
        let workers = this.runtime.workers.len();
        let w = options.worker.unwrap_or(this.home);
        if w >= workers {
            return Err(SubscribeError::NoSuchWorker { worker: w, workers });
        }
        let recovery = Self::prepare_recovery(this, options.retry)?;
        let slow = options.slow;
        let sub = Arc::new(SubShared::new(
            options.name,
            this.name.as_str(),
            options.latency_every,
        ));
        let mut control = this.control.lock();
        if control.state != RUNNING {
            return Err(this.closed());
        }
        let lane = control.worker_lane(w, this.runtime.lane_capacity);
        control.worker_subs[w] += 1;
        // A command the worker refused (it has exited): dropped once no lock
        // is held, since it owns the handler.
        let mut refused = None;
        let (uid, name, salt) = (this.uid, this.name, this.salt);
        let key = DrainKey {
            topic: uid,
            lane: lane.uid,
        };
        this.slots.snapshot().update(|_, next| {
            // Queued before `next` is published: the worker has the handler
            // before it can see an event stamped `next` (`DrainCx`).
            let entry = Self::entry(this, &sub, next, handler, recovery, slow, (w, key, false));
            let drained = lane.clone();
            refused = this
                .runtime
                .send(
                    w,
                    Box::new(move |worker: &mut worker::Worker| {
                        worker
                            .drain_mut(key, || PlainDrain::new(drained, uid, name, salt))
                            .handlers
                            .push(entry);
                    }),
                )
                .err();
            if refused.is_some() {
                control.worker_subs[w] -= 1;
            }
            control.targets(&this.runtime)
        });
        if refused.is_none() {
            control.subs.push(LiveSub {
                shared: sub.clone(),
                group: None,
                lane,
                worker: w,
            });
        }
        drop(control);
        if refused.is_some() {
            drop(refused);
            return Err(this.closed());
        }
        Ok(Subscription {
            detach: Box::new(PlainDetach {
                topic: this.clone(),
                worker: w,
                sub: sub.id,
            }),
            shared: sub,
            runtime: this.runtime.clone(),
            worker: w,
        })
    }

    fn subscribe_group(
        this: &Arc<Self>,
        group: &str,
        handler: BoxedHandler<T>,
        options: SubscribeOptions,
    ) -> Result<Subscription, SubscribeError> {
        if let Some(reason) = invalid_group_name(group) {
            return Err(SubscribeError::InvalidGroupName {
                name: group.to_owned(),
                reason,
            });
        }
        let workers = this.runtime.workers.len();
        if let Some(w) = options.worker.filter(|&w| w >= workers) {
            return Err(SubscribeError::NoSuchWorker { worker: w, workers });
        }
        let recovery = Self::prepare_recovery(this, options.retry)?;
        let slow = options.slow;
        let sub = Arc::new(SubShared::new(
            options.name,
            this.name.as_str(),
            options.latency_every,
        ));
        let mut control = this.control.lock();
        if control.state != RUNNING {
            return Err(this.closed());
        }
        let g = control.group(group, workers, this.runtime.lane_capacity);
        let entry = &mut control.groups[g];
        let w = options
            .worker
            .unwrap_or((this.home + entry.placed) % workers);
        entry.placed += 1;
        entry.members[w] += 1;
        let lane_id = entry.lane;
        let Some(lane) = control.lane(lane_id).cloned() else {
            // A live group always has its lane.
            return Err(this.closed());
        };
        // Counted in before producers can see the lane (snapshot below).
        lane.add_consumer(1);
        let mut refused = None;
        let (uid, name, salt) = (this.uid, this.name, this.salt);
        let key = DrainKey {
            topic: uid,
            lane: lane.uid,
        };
        this.slots.snapshot().update(|_, next| {
            let entry = Self::entry(this, &sub, next, handler, recovery, slow, (w, key, true));
            let drained = lane.clone();
            let runtime = this.runtime.clone();
            refused = this
                .runtime
                .send(
                    w,
                    Box::new(move |worker: &mut worker::Worker| {
                        worker
                            .drain_mut(key, || GroupDrain::new(drained, uid, name, salt, runtime))
                            .members
                            .push(entry);
                    }),
                )
                .err();
            if refused.is_some() {
                control.groups[g].members[w] -= 1;
                lane.add_consumer(-1);
                if control.groups[g].members.iter().all(|&m| m == 0) {
                    let entry = control.groups.remove(g);
                    control.lanes[entry.lane] = None;
                }
            }
            control.targets(&this.runtime)
        });
        if refused.is_none() {
            control.subs.push(LiveSub {
                shared: sub.clone(),
                group: Some(group.into()),
                lane: lane.clone(),
                worker: w,
            });
        }
        drop(control);
        if refused.is_some() {
            drop(refused);
            return Err(this.closed());
        }
        Ok(Subscription {
            detach: Box::new(GroupDetach {
                topic: this.clone(),
                lane,
                worker: w,
                sub: sub.id,
            }),
            shared: sub,
            runtime: this.runtime.clone(),
            worker: w,
        })
    }

    fn closed(&self) -> SubscribeError {
        SubscribeError::Closed {
            topic: self.name.as_str().to_owned(),
        }
    }

    fn publish_snapshot(&self, control: &Control<T>) {
        self.slots
            .snapshot()
            .update(|_, _| control.targets(&self.runtime));
    }

    /// Hands a retired lane's drain on worker `w` to the worker, to be
    /// removed once no publish can reach the lane: the caller has published
    /// a snapshot without the lane; the heavy fence makes every publish that
    /// starts after it see that snapshot, and [`SlotsQuiet`] waits out the
    /// ones already running (the shutdown grace period's argument,
    /// `producer.rs`).
    fn retire_drain(this: &Arc<Self>, w: usize, lane: &Lane<T>) {
        fence::heavy();
        let key = DrainKey {
            topic: this.uid,
            lane: lane.uid,
        };
        let quiet = SlotsQuiet {
            topic: this.clone(),
            pending: this.slots.all().collect(),
        };
        this.runtime.retire_drain(w, key, Box::new(quiet));
    }
}

/// Why a group name is refused, if it is. Group names become parts of NATS
/// durable and subject names in bridges, so they follow topic names' rules
/// for a single part.
fn invalid_group_name(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("it is empty; give the group a name")
    } else if name.len() > 255 {
        Some("it is longer than 255 bytes")
    } else if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("it contains whitespace or control characters")
    } else if name.contains(['*', '>']) {
        Some("'*' and '>' are reserved for subscription wildcards")
    } else if name.split('.').any(str::is_empty) {
        Some("it has an empty dot-separated part (a leading, trailing or doubled '.')")
    } else {
        None
    }
}

/// Says when every producer slot of a topic has been seen outside a publish
/// since a retirement's heavy fence ([`TopicShared::retire_drain`]).
struct SlotsQuiet<T> {
    topic: Arc<TopicShared<T>>,
    /// Slots not yet seen inactive.
    pending: Vec<usize>,
}

impl<T: Clone + Send + 'static> Quiesce for SlotsQuiet<T> {
    fn quiescent(&mut self) -> bool {
        let slots = &self.topic.slots;
        self.pending.retain(|&i| slots.is_active(i));
        self.pending.is_empty()
    }
}

struct PlainDetach<T> {
    topic: Arc<TopicShared<T>>,
    worker: usize,
    /// `SubShared::id`, to drop it from `Control::subs`.
    sub: u64,
}

impl<T: Clone + Send + 'static> Detach for PlainDetach<T> {
    fn detach(&self) {
        let topic = &self.topic;
        let mut control = topic.control.lock();
        control.forget(self.sub);
        let subs = &mut control.worker_subs[self.worker];
        *subs = subs.saturating_sub(1);
        let retired = if *subs == 0 {
            // The worker's last subscription to the topic: its lane goes.
            let lane = control.retire_worker_lane(self.worker);
            topic.publish_snapshot(&control);
            lane
        } else {
            None
        };
        drop(control);
        if let Some(lane) = retired {
            TopicShared::retire_drain(topic, self.worker, &lane);
        }
        topic.release_if_unused();
    }
}

struct GroupDetach<T> {
    topic: Arc<TopicShared<T>>,
    /// The group's lane (a group is found by it: its index may change).
    lane: Arc<Lane<T>>,
    worker: usize,
    /// `SubShared::id`, to drop it from `Control::subs`.
    sub: u64,
}

impl<T: Clone + Send + 'static> Detach for GroupDetach<T> {
    /// A group whose last member leaves is removed: what its lane still
    /// holds is discarded (receipts complete), as for any subscription
    /// removed before it got to an event, and a later member starts a new
    /// group with a new lane.
    fn detach(&self) {
        let topic = &self.topic;
        let mut control = topic.control.lock();
        control.forget(self.sub);
        let Some(g) = control.group_of(&self.lane) else {
            return;
        };
        let entry = &mut control.groups[g];
        let members = &mut entry.members[self.worker];
        *members = members.saturating_sub(1);
        let worker_done = *members == 0;
        let group_done = entry.members.iter().all(|&m| m == 0);
        self.lane.add_consumer(-1);
        if group_done {
            let entry = control.groups.remove(g);
            control.lanes[entry.lane] = None;
        }
        topic.publish_snapshot(&control);
        drop(control);
        let key = DrainKey {
            topic: topic.uid,
            lane: self.lane.uid,
        };
        if group_done {
            // Discard now what is queued, so nothing waits on it; what a
            // publish already under way still adds is swept when the drain
            // is removed.
            if let Some(group) = self.lane.group.as_ref() {
                let mut stray = 0;
                let swept = group.sweep(&self.lane, &mut stray);
                topic.discarded.fetch_add(swept, Ordering::Relaxed);
            }
            TopicShared::retire_drain(topic, self.worker, &self.lane);
        } else if worker_done {
            // No member left on this worker: its drain goes (the group's
            // events wait in the shared lane for the members elsewhere).
            topic.runtime.remove_drain(self.worker, key);
        }
        topic.release_if_unused();
    }
}

/// A worker slot's backlog for this topic, flushed by the worker loop.
struct TopicBacklog<T> {
    topic: Arc<TopicShared<T>>,
    slot: usize,
}

impl<T: Clone + Send + 'static> Backlog for TopicBacklog<T> {
    fn flush(&mut self) -> bool {
        let topic = &self.topic;
        let empty = topic
            .slots
            .with_owned(self.slot, |view, _, _| {
                // Re-decided by the slot's next general publish.
                view.fast_off();
                let mut empty = true;
                let mut dropped = 0;
                for p in view.producers.iter_mut().flatten() {
                    let (d, e) = p.flush_backlog();
                    dropped += d;
                    empty &= e;
                }
                if dropped > 0 {
                    topic.discarded.fetch_add(dropped, Ordering::Relaxed);
                }
                if empty {
                    view.backlog_registered = false;
                }
                empty
            })
            // Not this worker's slot: cannot happen (registered by its owner).
            .unwrap_or(true);
        if topic.runtime.wakes_on_publish() {
            for w in &topic.runtime.workers {
                w.wake_if_sleeping();
            }
        }
        empty
    }
}

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
                SubscriptionMetrics::read(&s.shared, s.group.as_deref(), s.worker, lag)
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

/// A handle to a typed topic. Cheap to clone; `Send + Sync`, so it can be
/// shared between threads or cloned into each.
///
/// ## Ordering
///
/// Events one thread publishes to a topic reach every plain subscription in
/// publish order. Consumer group members share a topic's events and give up
/// order between members.
///
/// ## Backpressure
///
/// See [`Backpressure`]: `publish` waits (or hands the event back, per the
/// topic's options); `try_publish` always hands it back.
///
/// ## Shutdown
///
/// After [`Engine::shutdown`](crate::Engine::shutdown) starts, publishes from
/// outside the engine return [`PublishError::Closed`] with the event; events
/// accepted before are all handled. Handlers may keep publishing while the
/// engine drains.
///
/// # Examples
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use pinbus::Engine;
/// #[derive(Clone, Debug)]
/// struct Order { id: u64 }
///
/// let engine = Engine::builder().workers(2).build()?;
/// let orders = engine.topic::<Order>("orders.created")?;
/// orders.subscribe(|ev| println!("order {}", ev.id))?;
/// orders.group("billing").subscribe(|ev| println!("bill {}", ev.id))?;
/// orders.publish(Order { id: 1 })?;
/// orders.publish_batch(vec![Order { id: 2 }, Order { id: 3 }])?;
/// orders.publish_and_wait(Order { id: 4 })?;
/// let report = engine.shutdown();
/// assert_eq!(report.published, 4);
/// # Ok(()) }
/// ```
pub struct Topic<T> {
    pub(crate) shared: Arc<TopicShared<T>>,
    /// The producer slot last used through this handle (a cache; see
    /// `ProducerSlots::with_slot`).
    hint: AtomicUsize,
}

impl<T> Topic<T> {
    /// A new handle. From a topic with no handle, only under the registry's
    /// lock (see `TopicShared::handles`).
    pub(crate) fn from_shared(shared: Arc<TopicShared<T>>) -> Self {
        // Relaxed, as for an `Arc` clone: the count only has to reach zero
        // after every handle's last use, which the decrement orders.
        shared.handles.fetch_add(1, Ordering::Relaxed);
        Topic {
            shared,
            hint: AtomicUsize::new(usize::MAX),
        }
    }

    /// The topic's name.
    pub fn name(&self) -> &str {
        self.shared.name.as_str()
    }
}

impl<T: Clone + Send + 'static> Topic<T> {
    /// Publishes `event` to every subscription, waiting for room if a lane is
    /// full and the topic's backpressure is `Block`.
    ///
    /// # Errors
    ///
    /// - [`PublishError::Full`] if a lane is full and the topic's backpressure
    ///   is `Fail`.
    /// - [`PublishError::Closed`] after shutdown started.
    ///
    /// The event comes back inside the error either way.
    #[inline(always)]
    pub fn publish(&self, event: T) -> Result<(), PublishError<T>> {
        TopicShared::send(&self.shared, &self.hint, event, WhenFull::AsConfigured)
    }

    /// Publishes `event` if every lane has room now; never waits.
    ///
    /// # Errors
    ///
    /// [`PublishError::Full`] (some lane is full: the event is in no lane) or
    /// [`PublishError::Closed`]; the event comes back inside the error.
    #[inline(always)]
    pub fn try_publish(&self, event: T) -> Result<(), PublishError<T>> {
        TopicShared::send(&self.shared, &self.hint, event, WhenFull::Fail)
    }

    /// Publishes `event`, waiting at most `timeout` for room when a lane is
    /// full (whatever the topic's backpressure).
    ///
    /// # Errors
    ///
    /// [`PublishError::Timeout`] when a lane stayed full for the whole
    /// timeout (the event is in no lane), [`PublishError::Closed`] after
    /// shutdown started; the event comes back inside the error.
    ///
    /// The event is in every lane or in none: a timeout never leaves it in
    /// some lanes only. Called from a handler (on one of the engine's
    /// workers), it never waits: what does not fit waits in the worker's
    /// backlog, as for [`publish`](Topic::publish) (guarantee 10).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// use pinbus::{Engine, PublishError};
    /// let engine = Engine::builder().workers(1).lane_capacity(2).build()?;
    /// let jobs = engine.topic::<u32>("jobs")?;
    /// let (release, gate) = std::sync::mpsc::channel::<()>();
    /// jobs.subscribe(move |_| { let _ = gate.recv(); })?; // stuck until released
    /// let mut timed_out = None;
    /// for job in 0..10 {
    ///     if let Err(PublishError::Timeout(back)) = jobs.publish_timeout(job, Duration::from_millis(20)) {
    ///         timed_out = Some(back); // the lane stayed full: the event is handed back
    ///         break;
    ///     }
    /// }
    /// assert!(timed_out.is_some());
    /// drop(release); // unblocks the handler
    /// # engine.shutdown();
    /// # Ok(()) }
    /// ```
    pub fn publish_timeout(&self, event: T, timeout: Duration) -> Result<(), PublishError<T>> {
        TopicShared::send(&self.shared, &self.hint, event, WhenFull::Within(timeout))
    }

    /// Publishes many events with one ring claim per lane for each run that
    /// fits, and one clock read for the whole batch. Events keep their order.
    ///
    /// # Errors
    ///
    /// Under `Backpressure::Fail`, [`PublishError::Full`] with the events that
    /// did not fit (those before them were published);
    /// [`PublishError::Closed`] with the events not published after shutdown
    /// started.
    pub fn publish_batch(
        &self,
        events: impl IntoIterator<Item = T>,
    ) -> Result<(), PublishError<Vec<T>>> {
        TopicShared::send_batch(&self.shared, &self.hint, events)
    }

    /// Publishes `event` and returns a [`Receipt`] that completes when every
    /// subscription live now has handled it. Allocates the receipt.
    ///
    /// # Errors
    ///
    /// As [`publish`](Topic::publish).
    pub fn publish_tracked(&self, event: T) -> Result<Receipt, PublishError<T>> {
        TopicShared::send_tracked(&self.shared, &self.hint, event, WhenFull::AsConfigured)
    }

    /// Publishes `event` and returns once every subscription live now has
    /// handled it. Handlers still run on their workers (thread affinity is
    /// kept); only the caller waits.
    ///
    /// # Errors
    ///
    /// As [`publish`](Topic::publish), plus [`PublishError::WouldDeadlock`]
    /// when called from a handler on this engine's workers (nothing is
    /// published then).
    pub fn publish_and_wait(&self, event: T) -> Result<(), PublishError<T>> {
        if worker::on_worker_of(self.shared.runtime.id) {
            return Err(PublishError::WouldDeadlock(event));
        }
        let receipt = self.publish_tracked(event)?;
        // Not a worker thread of this engine (checked above): cannot fail.
        let _ = receipt.wait();
        Ok(())
    }

    /// Publishes `event` once `delay` has passed on the engine's clock
    /// (within one timer tick after it). Returns a [`Timer`] that can take the
    /// event back before it fires.
    ///
    /// Delayed events of one topic due at the same tick are published in the
    /// order they were scheduled; earlier due times first. When the timer
    /// fires the event is published as by [`publish`](Topic::publish), except
    /// that a full lane makes the timer wait for room (never `Full`). At
    /// shutdown, pending timers fire or are dropped by the engine's
    /// [`TimerShutdown`](crate::TimerShutdown) policy, counted in the report.
    ///
    /// # Errors
    ///
    /// [`PublishError::Closed`] after shutdown started;
    /// [`PublishError::TimerUnavailable`] if the timer thread could not be
    /// started. The event comes back inside the error.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// use pinbus::Engine;
    /// let engine = Engine::builder().build()?;
    /// let emails = engine.topic::<String>("emails")?;
    /// let timer = emails.publish_after(Duration::from_secs(60), "reminder".to_owned())?;
    /// assert_eq!(timer.cancel(), Some("reminder".to_owned())); // taken back
    /// # Ok(()) }
    /// ```
    pub fn publish_after(&self, delay: Duration, event: T) -> Result<Timer<T>, PublishError<T>> {
        let due = self.shared.runtime.timers.now().checked_add(delay);
        self.schedule(due, event)
    }

    /// Publishes `event` at `at` on the engine's clock (at once if it has
    /// passed); as [`publish_after`](Topic::publish_after).
    ///
    /// # Errors
    ///
    /// As [`publish_after`](Topic::publish_after).
    pub fn publish_at(&self, at: Instant, event: T) -> Result<Timer<T>, PublishError<T>> {
        self.schedule(Some(at), event)
    }

    fn schedule(&self, due: Option<Instant>, event: T) -> Result<Timer<T>, PublishError<T>> {
        let shared = &self.shared;
        if shared.runtime.state() != RUNNING {
            return Err(PublishError::Closed(event));
        }
        let task = Box::new(DelayTask {
            topic: self.clone(),
            event,
            trace: TraceContext::current(),
        });
        let timers = &shared.runtime.timers;
        let scheduled = match due {
            Some(due) => timers.schedule(due, task),
            // Beyond the clock's range: never fires on its own.
            None => timers.schedule_after(Duration::MAX, task),
        };
        match scheduled {
            Ok(key) => Ok(Timer {
                runtime: shared.runtime.clone(),
                topic: shared.name,
                key,
                event: PhantomData,
            }),
            Err(refused) => {
                let closed = matches!(refused.reason, crate::timer::ScheduleErrorReason::ShutDown);
                match refused.task.into_any().downcast::<DelayTask<T>>() {
                    Ok(task) if closed => Err(PublishError::Closed(task.event)),
                    Ok(task) => Err(PublishError::TimerUnavailable(task.event)),
                    // The task was built above with this type.
                    Err(_) => unreachable!("a delay task changed type"),
                }
            }
        }
    }

    /// The topic's dead-letter topic, `<name>.dead_letters`: events that a
    /// subscription with a [`RetryPolicy`] failed on every attempt.
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

    /// Takes the dead letters kept while the dead-letter topic had no
    /// subscriber (oldest first).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pinbus::{Engine, RetryPolicy, SubscribeOptions};
    /// let engine = Engine::builder().build()?;
    /// let orders = engine.topic::<u32>("orders")?;
    /// orders.subscribe_with(
    ///     |_| Err::<(), _>("rejected"),
    ///     SubscribeOptions::new().retry(RetryPolicy::never()),
    /// )?;
    /// orders.publish_and_wait(1)?;
    /// orders.publish_and_wait(2)?;
    /// assert_eq!((orders.dead_letter_count(), orders.dead_letters_kept()), (2, 2));
    /// let kept: Vec<u32> = orders.take_dead_letters().into_iter().map(|d| d.into_event()).collect();
    /// assert_eq!(kept, [1, 2]);
    /// assert_eq!((orders.dead_letters_kept(), orders.dead_letters_dropped()), (0, 0));
    /// # Ok(()) }
    /// ```
    pub fn take_dead_letters(&self) -> Vec<DeadLetter<T>> {
        self.shared.dead.take()
    }

    /// Dead letters kept but not yet taken.
    pub fn dead_letters_kept(&self) -> usize {
        self.shared.dead.kept()
    }

    /// Dead letters produced for this topic so far (published or kept).
    pub fn dead_letter_count(&self) -> u64 {
        self.shared.dead.total()
    }

    /// Kept dead letters dropped because the store was full (oldest first).
    pub fn dead_letters_dropped(&self) -> u64 {
        self.shared.dead.dropped()
    }

    /// Events publish interceptors refused on this topic, through any
    /// [`Intercepted`](crate::intercept::Intercepted) handle.
    pub fn rejected_count(&self) -> u64 {
        self.shared.rejected.load(Ordering::Relaxed)
    }

    /// Counts one refused event.
    pub(crate) fn count_rejected(&self) {
        self.shared.rejected.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds a subscription: `handler` runs on a worker for every event
    /// published from now on, in per-producer order.
    ///
    /// The handler may return `()` or `Result<(), E>` with `E: Display`; an
    /// `Err` or a panic counts as a failed delivery and never stops the worker.
    ///
    /// # Errors
    ///
    /// [`SubscribeError::Closed`] after shutdown started.
    pub fn subscribe<F, R>(&self, handler: F) -> Result<Subscription, SubscribeError>
    where
        F: FnMut(&Event<T>) -> R + Send + 'static,
        R: HandlerOutcome + 'static,
    {
        self.subscribe_with(handler, SubscribeOptions::new())
    }

    /// [`subscribe`](Topic::subscribe) with options (name, worker).
    ///
    /// # Errors
    ///
    /// [`SubscribeError::Closed`] after shutdown started;
    /// [`SubscribeError::NoSuchWorker`] for a worker index the engine lacks.
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
        let (options, layers) = options.split();
        TopicShared::subscribe_plain(&self.shared, chain(handler, layers), options)
    }

    /// A consumer group of this topic: each event goes to exactly one of the
    /// group's members (subscriptions made through the returned handle).
    pub fn group(&self, name: &str) -> Group<T> {
        Group {
            topic: self.clone(),
            name: name.to_owned(),
        }
    }
}

impl<T> Clone for Topic<T> {
    fn clone(&self) -> Self {
        let topic = Topic::from_shared(self.shared.clone());
        topic
            .hint
            .store(self.hint.load(Ordering::Relaxed), Ordering::Relaxed);
        topic
    }
}

impl<T> Drop for Topic<T> {
    /// The last handle of a topic with no subscription frees it.
    fn drop(&mut self) {
        // AcqRel: the release half orders this handle's uses before the
        // count reaches zero; the acquire half, on the last one, sees theirs.
        if self.shared.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared
                .hub
                .release(self.shared.name.as_str(), self.shared.uid);
        }
    }
}

impl<T> fmt::Debug for Topic<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Topic")
            .field("name", &self.name())
            .field("type", &std::any::type_name::<T>())
            .finish_non_exhaustive()
    }
}

/// A checked retry policy and the dead-letter topic it feeds.
type Prepared<T> = (RetryPolicy, Topic<DeadLetter<T>>);

/// The name of `topic`'s dead-letter topic.
pub(crate) fn dead_letter_name(topic: &str) -> String {
    format!("{topic}.dead_letters")
}

/// A delayed event waiting in the timer wheel.
struct DelayTask<T> {
    /// A handle: the topic lives on while the event waits.
    topic: Topic<T>,
    event: T,
    /// The trace context current when it was scheduled: the event joins it
    /// when it fires.
    trace: Option<TraceContext>,
}

impl<T: Clone + Send + 'static> TimerTask for DelayTask<T> {
    fn fire(self: Box<Self>) {
        let DelayTask {
            topic,
            event,
            trace,
        } = *self;
        let _trace = trace.map(TraceContext::enter);
        // Block (never Full): the timer waits for room rather than lose it.
        if TopicShared::send(&topic.shared, &topic.hint, event, WhenFull::Wait).is_err() {
            // Closed: the engine shut down under a `FireDue`/`Drop` race.
            topic.shared.delayed_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any + Send> {
        self
    }
}

/// The handler with its layers around it, as the one boxed call a worker
/// makes per event.
fn chain<T, F, R, L>(handler: F, layers: L) -> BoxedHandler<T>
where
    T: 'static,
    F: FnMut(&Event<T>) -> R + Send + 'static,
    R: HandlerOutcome + 'static,
    L: Layers<T>,
{
    solo::boxed(layers.wrap(Handler::new(handler)))
}

/// A delayed event ([`Topic::publish_after`], [`Topic::publish_at`]) that
/// can be taken back until it fires. Dropping the `Timer` leaves the event
/// scheduled.
pub struct Timer<T> {
    runtime: Arc<Runtime>,
    topic: &'static TopicName,
    key: TimerKey,
    event: PhantomData<fn() -> T>,
}

impl<T: Send + 'static> Timer<T> {
    /// Takes the event back if it has not fired yet: `Some(event)` means it
    /// will never be published; `None` means it fired (or shutdown took it).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// use pinbus::{Engine, ManualClock};
    /// let clock = ManualClock::new();
    /// let engine = Engine::builder().clock(clock.clone()).build()?;
    /// let alarms = engine.topic::<&'static str>("alarms")?;
    /// let early = alarms.publish_after(Duration::from_secs(1), "early")?;
    /// let late = alarms.publish_after(Duration::from_secs(9), "late")?;
    /// clock.advance(Duration::from_secs(2)); // "early" fires
    /// assert_eq!(early.cancel(), None);
    /// assert_eq!(late.cancel(), Some("late"));
    /// # Ok(()) }
    /// ```
    pub fn cancel(self) -> Option<T> {
        let task = self.runtime.timers.cancel(self.key)?;
        match task.into_any().downcast::<DelayTask<T>>() {
            Ok(task) => Some(task.event),
            Err(_) => None,
        }
    }
}

impl<T> fmt::Debug for Timer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timer")
            .field("topic", &self.topic.as_str())
            .finish_non_exhaustive()
    }
}

/// A consumer group: every event of the topic goes to exactly one member.
/// Members are spread over the workers and run in parallel; order between
/// members is not kept.
///
/// # Examples
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use pinbus::Engine;
/// let engine = Engine::builder().workers(2).build()?;
/// let jobs = engine.topic::<u32>("jobs")?;
/// let workers = jobs.group("workers");
/// workers.subscribe(|job| println!("member A got {}", **job))?;
/// workers.subscribe(|job| println!("member B got {}", **job))?;
/// for j in 0..10 { jobs.publish(j)?; }
/// engine.shutdown();
/// # Ok(()) }
/// ```
pub struct Group<T> {
    /// A handle: the topic lives on while the group handle does.
    topic: Topic<T>,
    name: String,
}

impl<T: Clone + Send + 'static> Group<T> {
    /// The group's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds a member. Call it N times for N members.
    ///
    /// # Errors
    ///
    /// [`SubscribeError::InvalidGroupName`] for an empty or malformed name;
    /// [`SubscribeError::Closed`] after shutdown started.
    pub fn subscribe<F, R>(&self, handler: F) -> Result<Subscription, SubscribeError>
    where
        F: FnMut(&Event<T>) -> R + Send + 'static,
        R: HandlerOutcome + 'static,
    {
        self.subscribe_with(handler, SubscribeOptions::new())
    }

    /// [`subscribe`](Group::subscribe) with options (name, worker).
    ///
    /// # Errors
    ///
    /// As [`subscribe`](Group::subscribe), plus
    /// [`SubscribeError::NoSuchWorker`].
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
        let (options, layers) = options.split();
        TopicShared::subscribe_group(
            &self.topic.shared,
            &self.name,
            chain(handler, layers),
            options,
        )
    }
}

impl<T> fmt::Debug for Group<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Group")
            .field("topic", &self.topic.name())
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}
