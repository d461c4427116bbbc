//! Shutdown: stop intake, wait for external producers and quiescence
//! with no lock held, join the workers, report.

use std::time::{Duration, Instant};

use crate::loom::sync::atomic::Ordering;
use crate::loom::sync::{Arc, Mutex, MutexGuard};
use crate::loom::thread::JoinHandle;

use crate::runtime::drain::Totals;
use crate::runtime::workers::{Runtime, DRAINING, EXITING, RUNNING};

use crate::sys::fence;

use crate::topic::control::TopicControl;

use crate::topic::names::Hub;

/// What [`Engine::shutdown`](crate::Engine::shutdown) found: every count covers the engine's whole
/// life.
///
/// # Examples
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let engine = pinbus::Engine::builder().workers(1).build()?;
/// let jobs = engine.topic::<u32>("jobs")?;
/// jobs.subscribe(|n| if **n % 2 == 0 { Ok(()) } else { Err("odd") })?;
/// jobs.publish_batch([1, 2, 3, 4])?;
/// let report = engine.shutdown();
/// assert_eq!((report.published, report.handled, report.failed), (4, 2, 2));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Events accepted by a publish call (each counted once, however many
    /// subscriptions received it).
    pub published: u64,
    /// Handler calls that returned success.
    pub handled: u64,
    /// Handler calls that returned `Err` or panicked.
    pub failed: u64,
    /// Of `failed`, the panics.
    pub panicked: u64,
    /// Panics in user code outside a handler call that the workers caught
    /// and went on from: a handler's `Drop`, an event's `Clone` while a
    /// retry copy or dead letter was made, an event's `Drop`, the `Drop` of
    /// a handler's panic payload.
    pub stray_panics: u64,
    /// Lane copies of events that no subscription took because it was
    /// removed first (or, for a group, because its last member left).
    pub discarded: u64,
    /// Worker threads joined.
    pub workers: usize,
    /// Topics the engine had.
    pub topics: usize,
    /// Delayed events and retries that shutdown fired early or on time
    /// (by [`TimerShutdown`](crate::TimerShutdown) policy).
    pub timers_fired: u64,
    /// Delayed events and retries that shutdown dropped unfired (policies
    /// `FireDue` and `Drop`).
    pub timers_dropped: u64,
    /// Retries that never ran: dropped at shutdown, or their subscription
    /// was removed first. (Included in `timers_dropped` when dropped from the
    /// wheel.)
    pub retries_dropped: u64,
    /// Events given up on after their last attempt (dead letters).
    pub dead_letters: u64,
    /// Time from the start of shutdown until the workers were joined.
    pub drain_time: Duration,
    /// Whether everything finished: every accepted event handled or counted,
    /// the workers joined. False when `shutdown` was called from inside a
    /// handler, or when [`Engine::shutdown_timeout`](crate::Engine::shutdown_timeout) ran out of time: intake
    /// is closed, the drain goes on and completes on a later `shutdown` or
    /// on drop. An incomplete report counts only `published`, `workers` and
    /// `topics`.
    pub complete: bool,
}

/// What shutdown needs: shared with the thread that finishes a shutdown the
/// engine's own handler started by dropping it.
pub(crate) struct Inner {
    pub(crate) runtime: Arc<Runtime>,
    pub(crate) hub: Arc<Hub>,
    pub(crate) joins: Mutex<Vec<JoinHandle<Totals>>>,
    /// Serializes shutdowns and keeps what they found.
    pub(crate) shutdown: Mutex<ShutdownState>,
}

#[derive(Default)]
pub(crate) struct ShutdownState {
    /// When the first shutdown started.
    pub(crate) started: Option<Instant>,
    /// What the timer service's shutdown fired and dropped (it runs once).
    pub(crate) timers: Option<(u64, u64)>,
    /// The final report, once a shutdown completed.
    pub(crate) report: Option<ShutdownReport>,
    /// A `shutdown_timeout` gave up: dropping the engine does not wait again.
    pub(crate) gave_up: bool,
}

impl Inner {
    pub(crate) fn sum(&self, f: impl Fn(&dyn TopicControl) -> u64) -> u64 {
        self.hub.controls().iter().map(|c| f(&**c)).sum()
    }

    /// The report of a shutdown that could not finish: what is known so far.
    pub(crate) fn incomplete(&self) -> ShutdownReport {
        ShutdownReport {
            published: self.sum(|c| c.published())
                + self.hub.freed.published.load(Ordering::Relaxed),
            workers: self.runtime.workers.len(),
            topics: self.hub.registry.lock().topics.len(),
            complete: false,
            ..ShutdownReport::default()
        }
    }

    /// Shutdown, waiting until `deadline` at most (none: until done).
    pub(crate) fn shutdown(&self, deadline: Option<Instant>) -> ShutdownReport {
        if crate::sys::context::on_worker_of(self.runtime.id) {
            // Neither the shutdown lock (an outer shutdown may hold it while
            // it waits for this worker) nor the grace period (an external
            // producer may be blocked on this worker's lane): only close
            // intake.
            self.close_intake();
            return self.incomplete();
        }
        let Some(mut state) = lock_until(&self.shutdown, deadline) else {
            return self.incomplete();
        };
        if let Some(report) = state.report.as_ref() {
            return report.clone();
        }
        let start = *state.started.get_or_insert_with(Instant::now);
        // Timers first, while intake is open: delayed events fired now are
        // published normally, retries fired now go to their workers (and
        // shutdown waits for them below, `Runtime::inflight`).
        let (fired, dropped) = *state.timers.get_or_insert_with(|| {
            let t = self.runtime.timers.shutdown(self.runtime.timer_policy);
            (t.fired as u64, t.dropped as u64)
        });
        self.close_intake();
        // Grace period ([`producer`](crate::core::producer)): every publish that has not marked its
        // slot active yet will see the draining snapshot; wait for the rest.
        // No lock is held while waiting: a handler may open topics or read
        // metrics meanwhile.
        fence::heavy();
        // The topics, once: none is created after intake closed (opening
        // one fails now), and holding them keeps their counts here.
        let controls = self.hub.controls();
        for c in &controls {
            if !c.wait_external_idle(deadline) {
                state.gave_up = true;
                return self.incomplete();
            }
        }
        for w in &self.runtime.workers {
            w.unpark();
        }
        if !self.await_quiescence(&controls, deadline) {
            state.gave_up = true;
            return self.incomplete();
        }
        // Pattern subscriptions leave the registry (no topic opens now) and
        // drop their handlers on their workers while those still run.
        let patterns = std::mem::take(&mut self.hub.registry.lock().patterns);
        for p in &patterns {
            p.attach.release();
        }
        drop(patterns);
        self.runtime.state.store(EXITING, Ordering::Release);
        for c in &controls {
            c.set_state(EXITING);
        }
        let joins = std::mem::take(&mut *self.joins.lock());
        let totals = stop_workers(&self.runtime, joins);
        let freed = &self.hub.freed;
        let sum =
            |f: fn(&dyn TopicControl) -> u64| -> u64 { controls.iter().map(|c| f(&**c)).sum() };
        let report = ShutdownReport {
            published: sum(|c| c.published()) + freed.published.load(Ordering::Relaxed),
            handled: totals.handled,
            failed: totals.failed,
            panicked: totals.panicked,
            stray_panics: totals.stray_panics + self.runtime.stray_panics.load(Ordering::Relaxed),
            discarded: totals.discarded
                + sum(|c| c.discarded())
                + freed.discarded.load(Ordering::Relaxed),
            timers_fired: fired,
            timers_dropped: dropped,
            retries_dropped: self.runtime.retries_dropped.load(Ordering::Relaxed),
            dead_letters: sum(|c| c.dead_letters()) + freed.dead_letters.load(Ordering::Relaxed),
            workers: self.runtime.workers.len(),
            topics: self.hub.registry.lock().topics.len(),
            drain_time: start.elapsed(),
            complete: true,
        };
        state.report = Some(report.clone());
        report
    }

    /// Closes external intake: publishes from outside the engine now fail.
    pub(crate) fn close_intake(&self) {
        let registry = self.hub.registry.lock();
        if self.runtime.state() != RUNNING {
            return;
        }
        self.runtime.state.store(DRAINING, Ordering::Release);
        for t in registry.live() {
            t.control.set_state(DRAINING);
        }
    }

    /// Waits until no worker is busy and no lane holds an event ([`worker`](crate::runtime::worker),
    /// "Quiescence"), or until `deadline`; returns whether it got there.
    /// Workers bump an event count whenever they turn idle while the engine
    /// drains; between checks this waits for that count to change rather
    /// than polling.
    pub(crate) fn await_quiescence(
        &self,
        controls: &[Box<dyn TopicControl>],
        deadline: Option<Instant>,
    ) -> bool {
        let epochs = |rt: &Runtime| -> Vec<u64> { rt.workers.iter().map(|w| w.epoch()).collect() };
        self.runtime.announce_quiet_waiter();
        loop {
            // Read the count before checking: an idle transition after this
            // read makes the wait below return at once.
            let seen = self.runtime.quiet_generation();
            let before = epochs(&self.runtime);
            // Retries in flight first: one that ran published before it was
            // counted done (SeqCst both sides), so the lane check below sees
            // what it published.
            let retrying = self.runtime.inflight.load(Ordering::SeqCst) > 0;
            if !retrying && before.iter().all(|e| e % 2 == 1) {
                let drained = controls.iter().all(|c| c.is_drained());
                if drained && epochs(&self.runtime) == before {
                    return true;
                }
            }
            // Not quiet: a busy worker will turn idle (bumping the count), an
            // idle one with queued events will be woken by their producer and
            // turn busy, then idle.
            if !self.runtime.wait_quiet_change(seen, deadline) {
                return false;
            }
        }
    }
}

/// Locks `m`, giving up at `deadline` (none: waits as long as it takes).
pub(crate) fn lock_until<T>(m: &Mutex<T>, deadline: Option<Instant>) -> Option<MutexGuard<'_, T>> {
    let Some(deadline) = deadline else {
        return Some(m.lock());
    };
    loop {
        if let Some(guard) = m.try_lock() {
            return Some(guard);
        }
        if Instant::now() >= deadline {
            return None;
        }
        crate::loom::sleep(Duration::from_millis(1));
    }
}

/// Tells every worker to exit, wakes them, joins them, and adds up their
/// totals.
pub(crate) fn stop_workers(runtime: &Runtime, joins: Vec<JoinHandle<Totals>>) -> Totals {
    runtime.state.store(EXITING, Ordering::Release);
    for w in &runtime.workers {
        w.unpark();
    }
    let mut totals = Totals::default();
    for j in joins {
        if let Ok(t) = j.join() {
            totals += t;
        }
    }
    totals
}

impl Inner {
    /// Topics hold the hub and the hub holds topics: break the cycle. The
    /// topics are dropped outside the registry's lock.
    pub(crate) fn clear(&self) {
        let (topics, patterns) = {
            let mut registry = self.hub.registry.lock();
            let patterns = std::mem::take(&mut registry.patterns);
            (std::mem::take(&mut registry.topics), patterns)
        };
        drop(patterns);
        drop(topics);
    }
}
