//! Workers: one OS thread each, draining its lanes in batches, calling
//! handlers, and idling by the configured [`IdleStrategy`] when every lane is
//! empty.
//!
//! A worker owns its handlers outright (they are `FnMut`), so every change to
//! them — a subscription added or removed — reaches it as a [`Command`](crate::runtime::workers::Command): a
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
//! [`producer`](crate::core::producer).)

use std::time::Duration;

use crate::loom::hint::spin_loop;
use crate::loom::sync::atomic::Ordering;
use crate::loom::sync::{Arc, Condvar, Mutex};
use crate::loom::thread;

use crate::sys::contain::contain;
use crate::sys::context;
use crate::sys::fence;

use crate::runtime::drain::{DrainCx, Drained, Totals, BACKLOGS, IDLE_READ_EVERY};
use crate::runtime::idle::{IdleState, IdleStrategy};
use crate::runtime::workers::{Runtime, Worker, WorkerShared, EXITING};

impl Worker {
    /// Registers the thread, then runs until the engine exits.
    pub(crate) fn run(mut self) -> Totals {
        let engine = self.runtime.id;
        let index = self.shared.index;
        context::enter_worker(engine, index);
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
    pub(crate) fn pass(&mut self) -> (usize, bool) {
        let mut work = 0;
        let mut cx = DrainCx {
            pending: &self.shared.pending,
            shared_epoch: &self.shared.epoch,
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

    pub(crate) fn set_idle(&mut self) {
        if self.clock.burst_start != 0 {
            // Once per burst: one clock read, off the per-event path; it is
            // also the idle reading the next burst may start from.
            self.clock.idle_reading();
            let busy = self.clock.last_idle.saturating_sub(self.clock.burst_start);
            self.clock.burst_start = 0;
            crate::sys::epoch::close_batch();
            let total = self.shared.busy_ns.load(Ordering::Relaxed) + busy;
            self.shared.busy_ns.store(total, Ordering::Relaxed);
        }
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

    pub(crate) fn run_commands(&mut self) {
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
    pub(crate) fn has_work(&mut self) -> bool {
        self.shared.pending.load(Ordering::Acquire)
            || self.runtime.state() == EXITING
            || self.drains.iter_mut().any(|d| d.has_work())
            || BACKLOGS
                .try_with(|b| !b.borrow().is_empty())
                .unwrap_or(false)
    }

    pub(crate) fn wait(&mut self, idle: &mut IdleState) {
        let tuning = self.runtime.tuning;
        let strategy = self.runtime.idle;
        let step = idle.step();
        if strategy == IdleStrategy::BusySpin || step < tuning.spins {
            // The next burst's busy time starts at the last idle reading:
            // one every few passes keeps the poll loop short.
            if step % IDLE_READ_EVERY == IDLE_READ_EVERY - 1 {
                self.clock.idle_reading();
            }
            // `BusySpin` polls without a pause (as its docs and the
            // Disruptor's `BusySpin` do): a `pause` costs tens of cycles
            // on the next event's path. Under loom every wait must yield.
            if strategy != IdleStrategy::BusySpin || cfg!(loom) {
                spin_loop();
            }
            return;
        }
        // Saturating: `yields = u32::MAX` means "yield for ever".
        let spun_and_yielded = tuning.spins.saturating_add(tuning.yields);
        if strategy == IdleStrategy::Yield || step < spun_and_yielded {
            thread::yield_now();
        } else if !self.retiring.is_empty() {
            // A retired lane waits for a producer to finish its publish:
            // poll for that instead of parking.
            crate::loom::sleep(Duration::from_micros(200));
        } else if strategy == IdleStrategy::Backoff {
            let exp = (step - spun_and_yielded).min(20);
            let pause = Duration::from_micros(1 << exp).min(tuning.max_sleep);
            crate::loom::sleep(pause);
        } else {
            self.park();
        }
        // Back from the scheduler: the time a burst found now starts from.
        self.clock.idle_reading();
    }

    /// Announce, re-check, park (module docs).
    pub(crate) fn park(&mut self) {
        self.shared.sleeping.store(true, Ordering::Relaxed);
        fence::heavy();
        if !self.has_work() {
            self.shared.parker.park();
        }
        self.shared.sleeping.store(false, Ordering::Relaxed);
    }

    pub(crate) fn exit(mut self) -> Totals {
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
        context::leave_worker();
        totals
    }
}

/// Start-up handshake: each worker reports its token and pinning result.
pub(crate) struct StartGate {
    pub(crate) results: Mutex<Vec<Option<Result<(), usize>>>>,
    pub(crate) cv: Condvar,
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
        .store(crate::core::token::thread_token(), Ordering::Release);
    let pinned = match core {
        Some(c) if !crate::sys::pinning::pin_current(c) => Err(c),
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
