//! Workers: one OS thread each, draining its lanes in batches, calling
//! handlers, and idling by the configured [`IdleStrategy`] when every lane is
//! empty.
//!
//! A worker owns its handlers outright (they are `FnMut`), so every change to
//! them — a subscription added or removed — reaches it as a [`Command`]: a
//! closure run on the worker thread between batches.
//!
//! # Parking (no lost wake-up)
//!
//! - worker: `sleeping.store(true)`, [`fence::heavy`], re-check every lane,
//!   pending commands and the run state; park only if all are empty.
//! - producer: commit the ring's tail, [`fence::light`], load `sleeping`;
//!   unpark the worker if it is set.
//!
//! The fence pair forbids the outcome "the worker's re-check misses the new
//! tail *and* the producer misses `sleeping`". Commands and state changes
//! always `unpark` after publishing themselves; `unpark` leaves a token, so a
//! park that starts later returns at once.
//!
//! # Quiescence (shutdown)
//!
//! `epoch` counts the worker's busy/idle transitions: even while busy, odd
//! while idle. The worker makes it even (`Relaxed`) *before* it consumes any
//! event — so before the `Release` head store that frees the slot — and odd
//! (`Release`) after a pass that found no work and left no backlog. Shutdown
//! reads every epoch (`Acquire`), checks every lane is empty, and reads the
//! epochs again: if all were odd and none changed, no worker was busy in
//! between and no event was queued, so nothing can produce another event.
//! (External producers were stopped before, by the grace period in
//! `producer.rs`.)

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;

use crate::contain::contain;
use crate::fence;
use crate::loom::hint::spin_loop;
use crate::loom::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use crate::loom::sync::{Arc, Condvar, Mutex};
use crate::loom::thread;
use crate::loom::thread_local;
use crate::timer::{TimerService, TimerShutdown};

/// How a worker waits when all its lanes are empty, ranked from lowest
/// latency / highest CPU cost to lowest CPU cost.
///
/// | strategy | wake-up latency | idle CPU | cost on the publish path |
/// |---|---|---|---|
/// | `BusySpin` | lowest (the next poll) | one core at 100% | none |
/// | `Yield` | low (next time it is scheduled) | one core, shared | none |
/// | `Backoff` | up to `IdleTuning::max_sleep` after long idle | low | none |
/// | `Park` | an OS wake-up (µs) after idling | none | one flag load per lane |
///
/// Every strategy first spins `IdleTuning::spins` empty passes, so a busy
/// stream never pays the slow part.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum IdleStrategy {
    /// Poll without pause.
    BusySpin,
    /// Poll, calling `std::thread::yield_now` between empty passes.
    Yield,
    /// Spin, then yield, then sleep with doubling pauses up to
    /// `IdleTuning::max_sleep`.
    Backoff,
    /// Spin, then yield, then park the thread until a publish, a subscription
    /// change or shutdown wakes it.
    #[default]
    Park,
}

/// Parameters of the idle strategies (see [`IdleStrategy`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdleTuning {
    /// Empty passes spent spinning before yielding (all strategies but
    /// `BusySpin`).
    pub spins: u32,
    /// Empty passes spent yielding before sleeping or parking (`Backoff`,
    /// `Park`).
    pub yields: u32,
    /// Longest single sleep of `Backoff`.
    pub max_sleep: Duration,
}

impl Default for IdleTuning {
    fn default() -> Self {
        IdleTuning {
            spins: 64,
            yields: 8,
            max_sleep: Duration::from_micros(500),
        }
    }
}

/// A closure run on the worker thread between batches.
pub(crate) type Command = Box<dyn FnOnce(&mut Worker) + Send>;

/// Engine run state.
pub(crate) const RUNNING: u8 = 0;
/// External intake closed; workers drain; handlers may still publish.
pub(crate) const DRAINING: u8 = 1;
/// Quiescent: workers exit.
pub(crate) const EXITING: u8 = 2;

/// What every part of an engine shares: its workers' control blocks and
/// settings. Holds no topics (topics hold it), so there is no cycle.
pub(crate) struct Runtime {
    pub(crate) id: u64,
    pub(crate) workers: Vec<Arc<WorkerShared>>,
    pub(crate) idle: IdleStrategy,
    pub(crate) tuning: IdleTuning,
    pub(crate) lane_capacity: usize,
    pub(crate) drain_batch: usize,
    pub(crate) producer_slots: usize,
    pub(crate) state: AtomicU8,
    /// Shutdown's event count: bumped by every worker that turns idle while
    /// shutdown waits, so shutdown waits for a change instead of polling.
    pub(crate) quiet: Mutex<u64>,
    pub(crate) quiet_cv: Condvar,
    /// Set (once) by shutdown before it starts waiting on `quiet`.
    pub(crate) quiet_waiting: AtomicBool,
    /// Delayed events and retries (`timer.rs`, `recovery.rs`).
    pub(crate) timers: TimerService,
    /// What shutdown does with pending timers.
    pub(crate) timer_policy: TimerShutdown,
    /// Retries scheduled and not yet run or dropped (`recovery::Inflight`).
    /// `SeqCst`: off the hot path; shutdown reads it beside the epochs.
    pub(crate) inflight: AtomicU64,
    /// Retries that never ran: dropped by the shutdown policy, or their
    /// subscription was gone.
    pub(crate) retries_dropped: AtomicU64,
}

impl Runtime {
    /// Announces that shutdown will wait on the quiescence event count. After
    /// this returns, every worker that turns idle bumps the count, and every
    /// idle transition before it is visible to the caller's epoch reads:
    /// the store, `fence::heavy`, and the worker's `fence::light` between its
    /// epoch store and its load of this flag pair up (`fence.rs`).
    pub(crate) fn announce_quiet_waiter(&self) {
        self.quiet_waiting.store(true, Ordering::Relaxed);
        fence::heavy();
    }

    /// The current value of the quiescence event count.
    pub(crate) fn quiet_generation(&self) -> u64 {
        *self.quiet.lock()
    }

    /// Blocks until the event count differs from `seen`, or until
    /// `deadline`; returns whether it changed.
    pub(crate) fn wait_quiet_change(&self, seen: u64, deadline: Option<Instant>) -> bool {
        let mut g = self.quiet.lock();
        while *g == seen {
            let Some(deadline) = deadline else {
                g = self.quiet_cv.wait(g);
                continue;
            };
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            g = self.quiet_cv.wait_timeout(g, deadline - now);
        }
        true
    }

    /// A retry finished (ran or was dropped): wakes shutdown's wait when it
    /// was the last.
    pub(crate) fn task_done(&self) {
        if self.inflight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.bump_quiet();
        }
    }

    fn bump_quiet(&self) {
        *self.quiet.lock() += 1;
        self.quiet_cv.notify_all();
    }

    /// Whether producers must check `sleeping` after each push.
    #[inline(always)]
    pub(crate) fn wakes_on_publish(&self) -> bool {
        self.idle == IdleStrategy::Park
    }

    pub(crate) fn state(&self) -> u8 {
        self.state.load(Ordering::Acquire)
    }

    /// Worker thread tokens, in worker order.
    pub(crate) fn worker_tokens(&self) -> Vec<u64> {
        self.workers
            .iter()
            .map(|w| w.token.load(Ordering::Acquire))
            .collect()
    }

    /// Queues `command` on worker `w` and wakes it. Hands the command back
    /// if the worker has already exited (the caller drops it where no lock
    /// is held: it may own a handler, whose `Drop` is user code).
    pub(crate) fn send(&self, w: usize, command: Command) -> Result<(), Command> {
        let worker = &self.workers[w];
        {
            let mut q = worker.commands.lock();
            if q.exited {
                return Err(command);
            }
            q.queue.push(command);
        }
        // Release: the command is in the queue (under the mutex) before the
        // flag; pairs with the Acquire in `Worker::run_commands`.
        worker.pending.store(true, Ordering::Release);
        worker.unpark();
        Ok(())
    }

    /// Removes subscription `id` from worker `w`; with `wait`, returns only
    /// once the worker has dropped the handler (or has exited), even if the
    /// handler's `Drop` panics.
    pub(crate) fn remove_subscription(&self, w: usize, id: u64, wait: bool) {
        let done = Arc::new(Completion::default());
        let signal = CompleteOnDrop(done.clone());
        let sent = self.send(
            w,
            Box::new(move |worker: &mut Worker| {
                let _signal = signal;
                worker.remove(id);
            }),
        );
        if sent.is_ok() && wait {
            done.wait();
        }
    }

    /// Removes the drain `key` from worker `w` at once (its lane lives on
    /// through other workers).
    pub(crate) fn remove_drain(&self, w: usize, key: DrainKey) {
        let _ = self.send(
            w,
            Box::new(move |worker: &mut Worker| worker.drop_drain(key)),
        );
    }

    /// Removes the drain `key` from worker `w` once `quiet` says no producer
    /// can push into its (retired) lane any more; until then the drain keeps
    /// taking what arrives, and counts it as discarded.
    pub(crate) fn retire_drain(&self, w: usize, key: DrainKey, quiet: Box<dyn Quiesce>) {
        let _ = self.send(
            w,
            Box::new(move |worker: &mut Worker| worker.retiring.push((key, quiet))),
        );
    }
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("id", &self.id)
            .field("workers", &self.workers.len())
            .field("idle", &self.idle)
            .finish_non_exhaustive()
    }
}

/// A worker's parking spot (tokio's `park` design): `unpark` leaves a token
/// that makes the next `park` return at once; unparking a worker that is not
/// parked costs one atomic swap and no syscall.
///
/// Workers use this rather than `thread::park` so that an `unpark` meant for
/// the parked state never touches a thread blocked on something else (loom
/// models `thread::unpark` as waking a thread from *any* block, which real
/// threads do not do).
///
/// # Orderings
///
/// `unpark` swaps in `NOTIFIED` with `Release`; `park` consumes it with an
/// `Acquire` compare-exchange, so what the unparker wrote before is visible
/// after `park` returns. The `PARKED` → wake path goes through the mutex and
/// condition variable, which carry their own happens-before.
#[derive(Default)]
pub(crate) struct Parker {
    /// `EMPTY`, `PARKED` or `NOTIFIED`.
    state: AtomicUsize,
    lock: Mutex<()>,
    cv: Condvar,
}

const EMPTY: usize = 0;
const PARKED: usize = 1;
const NOTIFIED: usize = 2;

impl Parker {
    /// Blocks until `unpark` (or returns at once if a token is waiting).
    pub(crate) fn park(&self) {
        // Fast path: consume a waiting token.
        if self
            .state
            .compare_exchange(NOTIFIED, EMPTY, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return;
        }
        let mut guard = self.lock.lock();
        if self
            .state
            .compare_exchange(EMPTY, PARKED, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            // NOTIFIED arrived between the fast path and the lock. Consume it
            // with a swap, not a store: another `unpark` may have swapped in a
            // newer NOTIFIED meanwhile, and only a read-modify-write reads (and
            // acquires) the latest one. A store would erase that wake-up
            // without synchronizing with it (found by loom).
            // Acquire: pairs with the Release swap in `unpark`.
            self.state.swap(EMPTY, Ordering::Acquire);
            return;
        }
        loop {
            guard = self.cv.wait(guard);
            if self
                .state
                .compare_exchange(NOTIFIED, EMPTY, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
            // Spurious wake-up: still PARKED.
        }
    }

    /// Wakes the parked thread, or leaves a token for its next `park`.
    pub(crate) fn unpark(&self) {
        // Release: pairs with the Acquire in `park`.
        if self.state.swap(NOTIFIED, Ordering::Release) == PARKED {
            // Lock so the notification cannot slip in between the parker's
            // state change and its wait.
            drop(self.lock.lock());
            self.cv.notify_one();
        }
    }
}

/// A one-shot signal.
#[derive(Default)]
pub(crate) struct Completion {
    done: Mutex<bool>,
    cv: Condvar,
}

/// Completes its [`Completion`] when dropped: also when the command that
/// holds it unwinds.
struct CompleteOnDrop(Arc<Completion>);

impl Drop for CompleteOnDrop {
    fn drop(&mut self) {
        self.0.complete();
    }
}

impl Completion {
    pub(crate) fn complete(&self) {
        *self.done.lock() = true;
        self.cv.notify_all();
    }

    pub(crate) fn wait(&self) {
        let mut done = self.done.lock();
        while !*done {
            done = self.cv.wait(done);
        }
    }
}

#[derive(Default)]
pub(crate) struct CommandQueue {
    queue: Vec<Command>,
    /// Set by the worker as it exits; later commands are refused.
    exited: bool,
}

/// A worker's control block, shared with producers and the control path.
pub(crate) struct WorkerShared {
    pub(crate) index: usize,
    /// Set while the worker is (about to be) parked; see module docs.
    sleeping: CachePadded<AtomicBool>,
    parker: Parker,
    /// The worker thread's producer token (`producer::thread_token`); set once
    /// at start, before the engine is handed to the user.
    pub(crate) token: AtomicU64,
    commands: Mutex<CommandQueue>,
    /// Commands are queued; see `Runtime::send`.
    pending: AtomicBool,
    /// Busy/idle transitions: even = busy, odd = idle (module docs).
    epoch: AtomicU64,
    /// When the worker was created (nanoseconds since the event epoch).
    pub(crate) started: u64,
    /// Nanoseconds spent in busy bursts, from a burst's first dispatch-clock
    /// read to its idle transition; written by the worker at each idle
    /// transition (a statistic: `Relaxed`).
    pub(crate) busy_ns: AtomicU64,
}

impl WorkerShared {
    pub(crate) fn new(index: usize) -> Self {
        WorkerShared {
            index,
            sleeping: CachePadded::new(AtomicBool::new(false)),
            parker: Parker::default(),
            token: AtomicU64::new(0),
            commands: Mutex::new(CommandQueue::default()),
            pending: AtomicBool::new(false),
            epoch: AtomicU64::new(0),
            started: crate::event::now_nanos(),
            busy_ns: AtomicU64::new(0),
        }
    }

    /// The producer side of the parking protocol: call after committing a
    /// push to one of this worker's lanes.
    #[inline(always)]
    pub(crate) fn wake_if_sleeping(&self) {
        fence::light();
        if self.sleeping.load(fence::AFTER_LIGHT) {
            self.unpark();
        }
    }

    pub(crate) fn unpark(&self) {
        self.parker.unpark();
    }

    /// The worker's busy/idle epoch (see module docs).
    pub(crate) fn epoch(&self) -> u64 {
        // Acquire: pairs with the Release store of an odd epoch.
        self.epoch.load(Ordering::Acquire)
    }
}

impl std::fmt::Debug for WorkerShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerShared")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

thread_local! {
    /// `(engine id, worker index)` on worker threads.
    // loom's `thread_local!` has no `const` form; the shim must accept both.
    #[allow(clippy::missing_const_for_thread_local)]
    static CURRENT: Cell<Option<(u64, usize)>> = Cell::new(None);
    /// Producer backlogs of this worker waiting for ring space.
    static BACKLOGS: RefCell<Vec<Box<dyn Backlog>>> = RefCell::new(Vec::new());
}

/// Whether the calling thread is one of engine `engine`'s workers.
pub(crate) fn on_worker_of(engine: u64) -> bool {
    current_worker(engine).is_some()
}

/// The calling thread's worker index, if it is one of engine `engine`'s.
pub(crate) fn current_worker(engine: u64) -> Option<usize> {
    CURRENT
        .try_with(|c| c.get())
        .ok()
        .flatten()
        .and_then(|(e, w)| (e == engine).then_some(w))
}

/// A producer backlog held by a worker slot (`lane.rs`), flushed by the
/// worker loop until empty.
pub(crate) trait Backlog {
    /// Moves what fits into the rings; returns true once nothing is left.
    fn flush(&mut self) -> bool;
}

/// Hands a backlog to the calling worker's loop. Call once, when the backlog
/// first becomes non-empty, from that worker's thread.
pub(crate) fn register_backlog(backlog: Box<dyn Backlog>) {
    // A worker thread being torn down has no loop left to flush; its events
    // stay in the backlog and are counted as discarded when the topic drops.
    let _ = BACKLOGS.try_with(|b| b.borrow_mut().push(backlog));
}

/// Result of one drain call.
pub(crate) enum Drained {
    /// Handled this many events.
    Events(usize),
    /// Events are ready but commands must run first (a subscription they are
    /// meant for may be waiting in the queue).
    NeedCommands(usize),
}

/// The worker's clock for events published without a timestamp: read when a
/// burst starts and every `CLOCK_EVERY` events during one, so busy workers
/// pay a fraction of a clock read per event.
#[derive(Default)]
pub(crate) struct DispatchClock {
    nanos: u64,
    /// Events stamped since the last read; `u32::MAX` = read before next use.
    since_read: u32,
    /// The first read of the current busy burst; 0 = none yet. Busy time is
    /// counted from it to the next idle transition.
    burst_start: u64,
}

const CLOCK_EVERY: u32 = 64;

impl DispatchClock {
    fn invalidate(&mut self) {
        self.since_read = u32::MAX;
    }
}

/// Per-pass context handed to drains.
pub(crate) struct DrainCx<'a> {
    shared: &'a WorkerShared,
    idle: &'a mut bool,
    epoch: &'a mut u64,
    clock: &'a mut DispatchClock,
    pub(crate) batch: usize,
}

impl DrainCx<'_> {
    /// Whether commands are queued. Called after the events about to be
    /// dispatched were seen ready (their stamps loaded with `Acquire`): the
    /// publish of an event stamped with a new subscription's version happened
    /// after that subscription's command was queued, so the flag is visible
    /// here (`Relaxed` suffices given that happens-before chain). Events that
    /// become ready after this check must not be dispatched in the same
    /// batch.
    #[inline(always)]
    pub(crate) fn commands_pending(&self) -> bool {
        self.shared.pending.load(Ordering::Relaxed)
    }

    /// The dispatch clock (see [`DispatchClock`]).
    #[inline(always)]
    pub(crate) fn clock(&mut self) -> u64 {
        let c = &mut *self.clock;
        if c.since_read >= CLOCK_EVERY {
            c.nanos = crate::event::now_nanos();
            c.since_read = 0;
            if c.burst_start == 0 {
                c.burst_start = c.nanos;
            }
        }
        c.nanos
    }

    /// Counts `events` stamped with the dispatch clock.
    #[inline(always)]
    pub(crate) fn count_clock(&mut self, events: usize) {
        let c = &mut *self.clock;
        c.since_read = c.since_read.saturating_add(events as u32);
    }

    /// Call before consuming events: makes the worker busy for quiescence
    /// detection (module docs).
    #[inline(always)]
    pub(crate) fn consuming(&mut self) {
        if *self.idle {
            *self.idle = false;
            *self.epoch += 1;
            // Relaxed: ordered before the consumer's Release head store.
            self.shared.epoch.store(*self.epoch, Ordering::Relaxed);
        }
    }
}

/// Totals a worker reports when it exits.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Totals {
    pub(crate) handled: u64,
    pub(crate) failed: u64,
    pub(crate) panicked: u64,
    /// Lane copies of events that no live subscription took.
    pub(crate) discarded: u64,
    /// Panics in user code outside a handler call that the worker caught
    /// (a handler's `Drop`, an event's `Drop` or `Clone` on the failure
    /// path).
    pub(crate) stray_panics: u64,
}

impl std::ops::AddAssign for Totals {
    fn add_assign(&mut self, o: Totals) {
        self.handled += o.handled;
        self.failed += o.failed;
        self.panicked += o.panicked;
        self.discarded += o.discarded;
        self.stray_panics += o.stray_panics;
    }
}

/// Names one drain on a worker: the topic's uid and its lane's uid (never
/// reused, so a retired lane's drain and its successor's never meet).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct DrainKey {
    pub(crate) topic: u64,
    pub(crate) lane: u64,
}

/// Says when a retired lane can receive nothing more (see
/// [`Runtime::retire_drain`]); polled by the worker between passes.
pub(crate) trait Quiesce: Send {
    /// Whether no producer can push into the lane any more.
    fn quiescent(&mut self) -> bool;
}

/// A lane's consumer on a worker: a topic's plain lane, or a group lane.
pub(crate) trait Drain: Send {
    fn key(&self) -> DrainKey;
    /// Handles up to `cx.batch` events per ring.
    fn drain(&mut self, cx: &mut DrainCx<'_>) -> Drained;
    /// Whether events are (or may be) waiting; used before parking.
    fn has_work(&mut self) -> bool;
    /// Removes subscription `id` if it is here (drops the handler).
    fn remove(&mut self, id: u64) -> bool;
    /// Publishes counters and drops every handler (a panicking `Drop` is
    /// contained); takes what a retired lane still holds, as discarded; adds
    /// this drain's totals.
    fn finish(&mut self, totals: &mut Totals);
    fn as_any(&mut self) -> &mut dyn Any;
}

/// The worker thread's state.
pub(crate) struct Worker {
    pub(crate) shared: Arc<WorkerShared>,
    pub(crate) runtime: Arc<Runtime>,
    drains: Vec<Box<dyn Drain>>,
    /// Drains of retired lanes, removed once their lanes are quiescent.
    retiring: Vec<(DrainKey, Box<dyn Quiesce>)>,
    idle: bool,
    epoch: u64,
    clock: DispatchClock,
    totals: Totals,
}

impl Worker {
    pub(crate) fn new(shared: Arc<WorkerShared>, runtime: Arc<Runtime>) -> Self {
        Worker {
            shared,
            runtime,
            drains: Vec::new(),
            retiring: Vec::new(),
            idle: false,
            epoch: 0,
            clock: DispatchClock {
                nanos: 0,
                since_read: u32::MAX,
                burst_start: 0,
            },
            totals: Totals::default(),
        }
    }

    /// The drain for `key`, created by `make` if the worker has none yet.
    pub(crate) fn drain_mut<D: Drain + 'static>(
        &mut self,
        key: DrainKey,
        make: impl FnOnce() -> D,
    ) -> &mut D {
        let pos = match self.drains.iter().position(|d| d.key() == key) {
            Some(p) => p,
            None => {
                self.drains.push(Box::new(make()));
                self.drains.len() - 1
            }
        };
        match self.drains[pos].as_any().downcast_mut::<D>() {
            Some(d) => d,
            // Keys are (topic uid, lane id) and each lane has one drain type.
            None => unreachable!("drain type mismatch for lane {key:?}"),
        }
    }

    /// The drain with `key`, if this worker has it.
    pub(crate) fn find_drain<D: Drain + 'static>(&mut self, key: DrainKey) -> Option<&mut D> {
        self.drains
            .iter_mut()
            .find(|d| d.key() == key)
            .and_then(|d| d.as_any().downcast_mut::<D>())
    }

    fn remove(&mut self, id: u64) {
        for d in &mut self.drains {
            if d.remove(id) {
                return;
            }
        }
    }

    /// Removes and finishes drain `key`, if this worker has it.
    fn drop_drain(&mut self, key: DrainKey) {
        if let Some(pos) = self.drains.iter().position(|d| d.key() == key) {
            let mut d = self.drains.remove(pos);
            let mut stray = 0;
            contain(&mut stray, || d.finish(&mut self.totals));
            contain(&mut stray, move || drop(d));
            self.totals.stray_panics += stray;
        }
    }

    /// Removes the retired drains whose lanes are quiescent.
    fn reap(&mut self) {
        let mut i = 0;
        while i < self.retiring.len() {
            if self.retiring[i].1.quiescent() {
                let (key, quiet) = self.retiring.swap_remove(i);
                self.drop_drain(key);
                contain(&mut self.totals.stray_panics, move || drop(quiet));
            } else {
                i += 1;
            }
        }
    }

    /// Registers the thread, then runs until the engine exits.
    pub(crate) fn run(mut self) -> Totals {
        let engine = self.runtime.id;
        let index = self.shared.index;
        let _ = CURRENT.try_with(|c| c.set(Some((engine, index))));
        let mut idle = IdleState::default();
        loop {
            // Acquire: pairs with the Release in `Runtime::send`.
            if self.shared.pending.load(Ordering::Acquire) {
                self.run_commands();
            }
            let (work, need_commands) = self.pass();
            if need_commands {
                continue;
            }
            if work > 0 {
                idle.reset();
                continue;
            }
            if self.runtime.state() == EXITING {
                break;
            }
            self.set_idle();
            self.wait(&mut idle);
        }
        self.exit()
    }

    /// One pass over every drain and the backlogs; returns events handled and
    /// whether commands must run first.
    fn pass(&mut self) -> (usize, bool) {
        let mut work = 0;
        let mut cx = DrainCx {
            shared: &self.shared,
            idle: &mut self.idle,
            epoch: &mut self.epoch,
            clock: &mut self.clock,
            batch: self.runtime.drain_batch,
        };
        let stray = &mut self.totals.stray_panics;
        for d in &mut self.drains {
            // A panic in user code outside a handler call (an event's `Drop`,
            // the failure path's `Clone`) ends the batch, not the worker: the
            // ring has consumed the events up to the one that panicked.
            match contain(stray, || d.drain(&mut cx)) {
                Some(Drained::Events(n)) => work += n,
                Some(Drained::NeedCommands(n)) => return (work + n, true),
                None => work += 1,
            }
        }
        // Backlogs: producer envelopes this worker's handlers could not push.
        let pending_backlogs = contain(stray, || {
            BACKLOGS
                .try_with(|b| {
                    let mut b = b.borrow_mut();
                    b.retain_mut(|backlog| !backlog.flush());
                    b.len()
                })
                .unwrap_or(0)
        })
        .unwrap_or(1);
        if pending_backlogs > 0 {
            cx.consuming();
            // Not idle while a backlog waits: count it as work so the worker
            // keeps polling (the ring it waits for belongs to a busy worker).
            work = work.max(1);
        }
        if !self.retiring.is_empty() {
            self.reap();
        }
        (work, false)
    }

    fn set_idle(&mut self) {
        if self.clock.burst_start != 0 {
            // Once per burst: one clock read, off the per-event path.
            let busy = crate::event::now_nanos().saturating_sub(self.clock.burst_start);
            self.clock.burst_start = 0;
            let total = self.shared.busy_ns.load(Ordering::Relaxed) + busy;
            self.shared.busy_ns.store(total, Ordering::Relaxed);
        }
        // The next burst reads the clock afresh.
        self.clock.invalidate();
        if !self.idle {
            self.idle = true;
            self.epoch += 1;
            // Release: pairs with the Acquire in `WorkerShared::epoch`: the
            // pushes made while busy are visible to the shutdown check.
            self.shared.epoch.store(self.epoch, Ordering::Release);
            // For shutdown's wait (`Runtime::announce_quiet_waiter`): either
            // shutdown sees the epoch store above, or this sees its flag.
            fence::light();
            if self.runtime.quiet_waiting.load(fence::AFTER_LIGHT) {
                self.runtime.bump_quiet();
            }
        }
    }

    fn run_commands(&mut self) {
        // Clear first, then take: a command queued after the take sets the
        // flag again.
        self.shared.pending.store(false, Ordering::Relaxed);
        let commands = std::mem::take(&mut self.shared.commands.lock().queue);
        for c in commands {
            // A command may drop a handler, whose `Drop` may panic.
            let mut stray = 0;
            contain(&mut stray, || c(self));
            self.totals.stray_panics += stray;
        }
    }

    /// Whether anything could be waiting: checked after announcing sleep.
    fn has_work(&mut self) -> bool {
        self.shared.pending.load(Ordering::Acquire)
            || self.runtime.state() == EXITING
            || self.drains.iter_mut().any(|d| d.has_work())
            || BACKLOGS
                .try_with(|b| !b.borrow().is_empty())
                .unwrap_or(false)
    }

    fn wait(&mut self, idle: &mut IdleState) {
        let tuning = self.runtime.tuning;
        let strategy = self.runtime.idle;
        let step = idle.step();
        if strategy == IdleStrategy::BusySpin || step < tuning.spins {
            spin_loop();
            return;
        }
        // Saturating: `yields = u32::MAX` means "yield for ever".
        let spun_and_yielded = tuning.spins.saturating_add(tuning.yields);
        if strategy == IdleStrategy::Yield || step < spun_and_yielded {
            thread::yield_now();
            return;
        }
        if !self.retiring.is_empty() {
            // A retired lane waits for a producer to finish its publish:
            // poll for that instead of parking.
            crate::loom::sleep(Duration::from_micros(200));
            return;
        }
        match strategy {
            IdleStrategy::Backoff => {
                let exp = (step - spun_and_yielded).min(20);
                let pause = Duration::from_micros(1 << exp).min(tuning.max_sleep);
                crate::loom::sleep(pause);
            }
            _ => self.park(),
        }
    }

    /// Announce, re-check, park (module docs).
    fn park(&mut self) {
        self.shared.sleeping.store(true, Ordering::Relaxed);
        fence::heavy();
        if !self.has_work() {
            self.shared.parker.park();
        }
        self.shared.sleeping.store(false, Ordering::Relaxed);
    }

    fn exit(mut self) -> Totals {
        // Refuse new commands, then run what was queued (removals waiting for
        // an answer must get one).
        let commands = {
            let mut q = self.shared.commands.lock();
            q.exited = true;
            std::mem::take(&mut q.queue)
        };
        let mut stray = 0;
        for c in commands {
            contain(&mut stray, || c(&mut self));
        }
        self.totals.stray_panics += stray;
        let mut totals = self.totals;
        // Handlers are dropped here, on their worker; a panicking `Drop`
        // loses neither the worker's totals nor the other handlers.
        let mut stray = 0;
        for mut d in std::mem::take(&mut self.drains) {
            contain(&mut stray, || d.finish(&mut totals));
            contain(&mut stray, move || drop(d));
        }
        self.retiring.clear();
        let backlogs = BACKLOGS.try_with(|b| std::mem::take(&mut *b.borrow_mut()));
        contain(&mut stray, move || drop(backlogs));
        totals.stray_panics += stray;
        let _ = CURRENT.try_with(|c| c.set(None));
        totals
    }
}

/// Counts empty passes for the idle strategies.
#[derive(Default)]
struct IdleState {
    empty: u32,
}

impl IdleState {
    fn reset(&mut self) {
        self.empty = 0;
    }

    fn step(&mut self) -> u32 {
        let s = self.empty;
        self.empty = self.empty.saturating_add(1);
        s
    }
}

/// Start-up handshake: each worker reports its token and pinning result.
pub(crate) struct StartGate {
    results: Mutex<Vec<Option<Result<(), usize>>>>,
    cv: Condvar,
}

impl StartGate {
    pub(crate) fn new(workers: usize) -> Self {
        StartGate {
            results: Mutex::new((0..workers).map(|_| None).collect()),
            cv: Condvar::new(),
        }
    }

    /// Called by worker `w`: `Err(core)` if pinning to `core` failed.
    pub(crate) fn report(&self, w: usize, result: Result<(), usize>) {
        self.results.lock()[w] = Some(result);
        self.cv.notify_all();
    }

    /// Waits for `started` workers; returns the first pinning failure.
    pub(crate) fn wait(&self, started: usize) -> Result<(), (usize, usize)> {
        let mut results = self.results.lock();
        while results.iter().take(started).any(Option::is_none) {
            results = self.cv.wait(results);
        }
        for (w, r) in results.iter().take(started).enumerate() {
            if let Some(Err(core)) = r {
                return Err((w, *core));
            }
        }
        Ok(())
    }
}

/// The body of a worker thread: register, pin, report, run.
pub(crate) fn worker_main(
    shared: Arc<WorkerShared>,
    runtime: Arc<Runtime>,
    gate: Arc<StartGate>,
    core: Option<usize>,
) -> Totals {
    shared
        .token
        .store(crate::producer::thread_token(), Ordering::Release);
    let pinned = match core {
        Some(c) if !crate::pinning::pin_current(c) => Err(c),
        _ => Ok(()),
    };
    let failed = pinned.is_err();
    gate.report(shared.index, pinned);
    if failed {
        // The builder stops the engine; wait for that instead of running
        // unpinned.
        while runtime.state() != EXITING {
            shared.parker.park();
        }
    }
    Worker::new(shared, runtime).run()
}

/// Waiting for room in a full ring, in the manner of the engine's
/// [`IdleStrategy`]: spin, then yield; engines that may sleep when idle
/// (`Backoff`, `Park`) then also sleep, with doubling pauses up to 100 µs.
/// A latency-tuned engine (`BusySpin`, `Yield`) never sleeps: on Linux a
/// 1 µs sleep lasts ~50 µs (timer slack), long enough for the worker to drain
/// the whole ring and sit idle.
pub(crate) struct Snooze {
    step: u32,
    may_sleep: bool,
}

impl Snooze {
    const SPIN: u32 = 32;
    const YIELD: u32 = 48;
    const MAX_SLEEP_EXP: u32 = 7;

    pub(crate) fn new(strategy: IdleStrategy) -> Self {
        Snooze {
            step: 0,
            may_sleep: matches!(strategy, IdleStrategy::Backoff | IdleStrategy::Park),
        }
    }

    pub(crate) fn snooze(&mut self) {
        if cfg!(loom) {
            // Under loom every wait is a yield to the other model threads.
            thread::yield_now();
            return;
        }
        if self.step < Self::SPIN {
            for _ in 0..(1u32 << self.step.min(6)) {
                spin_loop();
            }
        } else if self.step < Self::YIELD || !self.may_sleep {
            thread::yield_now();
        } else {
            let exp = (self.step - Self::YIELD).min(Self::MAX_SLEEP_EXP);
            crate::loom::sleep(Duration::from_micros(1 << exp));
        }
        self.step = self.step.saturating_add(1);
    }
}
