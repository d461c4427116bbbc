//! What an engine's parts share about its workers: the [`Runtime`], each
//! worker's control block, the command queue, and the worker's state.

use std::cell::RefCell;
use std::time::Instant;

use crossbeam_utils::CachePadded;

use crate::loom::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use crate::loom::sync::{Arc, Condvar, Mutex};

use crate::loom::thread_local;
use crate::observe::metrics::WorkerMetrics;
use crate::sys::contain::contain;

use crate::runtime::drain::{Backlog, BusyClock, Drain, DrainKey, Quiesce, Totals};
use crate::runtime::idle::{IdleStrategy, IdleTuning};
use crate::runtime::park::{CompleteOnDrop, Completion, Parker};
use crate::sys::fence;
use crate::time::timer::{TimerService, TimerShutdown};

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
    /// Delayed events and retries ([`timer`](crate::time::timer), [`recovery`](crate::runtime::recovery)).
    pub(crate) timers: TimerService,
    /// What shutdown does with pending timers.
    pub(crate) timer_policy: TimerShutdown,
    /// Retries scheduled and not yet run or dropped (`recovery::Inflight`).
    /// `SeqCst`: off the hot path; shutdown reads it beside the epochs.
    pub(crate) inflight: AtomicU64,
    /// Retries that never ran: dropped by the shutdown policy, or their
    /// subscription was gone.
    pub(crate) retries_dropped: AtomicU64,
    /// Stray panics caught off the workers' own counts: the `Drop` of a
    /// panic payload a service member turned into a failed reply.
    pub(crate) stray_panics: AtomicU64,
    /// Whether a thread waiting for a receipt may spin before it blocks:
    /// not when spinning workers already take every core (the waiter would
    /// take CPU from the very worker it waits for).
    pub(crate) waiters_spin: bool,
}

impl Runtime {
    /// Announces that shutdown will wait on the quiescence event count. After
    /// this returns, every worker that turns idle bumps the count, and every
    /// idle transition before it is visible to the caller's epoch reads:
    /// the store, `fence::heavy`, and the worker's `fence::light` between its
    /// epoch store and its load of this flag pair up ([`fence`]).
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

    pub(crate) fn bump_quiet(&self) {
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
    /// Drops `value` on worker `w` (a handler's last reference, so that it
    /// is dropped on its worker), waiting for it if `wait`. If the worker has
    /// exited, `value` is dropped here.
    pub(crate) fn drop_on(&self, w: usize, value: Box<dyn std::any::Any + Send>, wait: bool) {
        let done = Arc::new(Completion::default());
        let signal = CompleteOnDrop(done.clone());
        let sent = self.send(
            w,
            Box::new(move |_: &mut Worker| {
                drop(value);
                drop(signal);
            }),
        );
        if sent.is_ok() && wait {
            done.wait();
        }
    }

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

#[derive(Default)]
pub(crate) struct CommandQueue {
    pub(crate) queue: Vec<Command>,
    /// Set by the worker as it exits; later commands are refused.
    pub(crate) exited: bool,
}

/// A worker's control block, shared with producers and the control path.
pub(crate) struct WorkerShared {
    pub(crate) index: usize,
    /// Set while the worker is (about to be) parked; see module docs.
    pub(crate) sleeping: CachePadded<AtomicBool>,
    pub(crate) parker: Parker,
    /// The worker thread's producer token (`producer::thread_token`); set once
    /// at start, before the engine is handed to the user.
    pub(crate) token: AtomicU64,
    pub(crate) commands: Mutex<CommandQueue>,
    /// Commands are queued; see `Runtime::send`.
    pub(crate) pending: AtomicBool,
    /// Busy/idle transitions: even = busy, odd = idle (module docs).
    pub(crate) epoch: AtomicU64,
    /// When the worker was created (nanoseconds since the event epoch).
    pub(crate) started: u64,
    /// Nanoseconds spent in busy bursts, from the worker's last idle clock
    /// reading before a burst to its idle transition (`BusyClock`);
    /// written by the worker at each idle transition (a statistic:
    /// `Relaxed`).
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
            started: crate::sys::epoch::now_nanos(),
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

impl WorkerShared {
    /// The worker's metrics now.
    pub(crate) fn metrics(&self) -> WorkerMetrics {
        let w = self;
        let uptime_ns = crate::sys::epoch::now_nanos()
            .saturating_sub(w.started)
            .max(1);
        let busy_ns = w.busy_ns.load(Ordering::Relaxed).min(uptime_ns);
        WorkerMetrics {
            index: w.index,
            uptime_ns,
            busy_ns,
            busy_share: busy_ns as f64 / uptime_ns as f64,
        }
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
    /// Producer backlogs of this worker waiting for ring space.
    static BACKLOGS: RefCell<Vec<Box<dyn Backlog>>> = RefCell::new(Vec::new());
}

/// The worker thread's state.
pub(crate) struct Worker {
    pub(crate) shared: Arc<WorkerShared>,
    pub(crate) runtime: Arc<Runtime>,
    pub(crate) drains: Vec<Box<dyn Drain>>,
    /// Drains of retired lanes, removed once their lanes are quiescent.
    pub(crate) retiring: Vec<(DrainKey, Box<dyn Quiesce>)>,
    pub(crate) idle: bool,
    pub(crate) epoch: u64,
    pub(crate) clock: BusyClock,
    pub(crate) totals: Totals,
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
            clock: BusyClock::default(),
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

    pub(crate) fn remove(&mut self, id: u64) {
        for d in &mut self.drains {
            if d.remove(id) {
                return;
            }
        }
    }

    /// Removes and finishes drain `key`, if this worker has it.
    pub(crate) fn drop_drain(&mut self, key: DrainKey) {
        if let Some(pos) = self.drains.iter().position(|d| d.key() == key) {
            let mut d = self.drains.remove(pos);
            let mut stray = 0;
            contain(&mut stray, || d.finish(&mut self.totals));
            contain(&mut stray, move || drop(d));
            self.totals.stray_panics += stray;
        }
    }

    /// Removes the retired drains whose lanes are quiescent.
    pub(crate) fn reap(&mut self) {
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
}
