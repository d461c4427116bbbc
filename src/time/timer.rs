//! Timer service: tasks that fire at an [`Instant`], scheduled and cancelled
//! from any thread, exactly once.
//!
//! The pending tasks live in a [`Wheel`] behind one lock. Time is cut into
//! ticks (1 ms by default) counted from the service's creation; a task due at
//! `t` goes into the tick that ends at or after `t`, so it never fires early
//! and, on the system clock, fires within about one tick after `t` (plus the
//! OS's wake-up latency). Tasks with the same tick fire in scheduling order.
//!
//! # Driving
//!
//! - On a [`ManualClock`](crate::ManualClock): no thread. Every move of the
//!   clock calls `Driver::drive`, which fires what is due on the moving
//!   thread before the move returns.
//! - On any other clock: a thread named `pinbus-timer`, spawned on the first
//!   [`schedule`](TimerService::schedule), sleeps on a condvar until the next
//!   due tick (a schedule earlier than that wakes it) and fires what is due.
//! - `TimerService::external`: nobody; the owner calls
//!   `fire_due` (the loom model does).
//!
//! # Exactly once
//!
//! A task is in the wheel until one of three things takes it out, each under
//! the state lock: `cancel` (returns it), a firing step (fires it), shutdown
//! (fires or drops it, and counts it). So for every key exactly one happens.
//! Firing runs tasks *outside* the state lock: a step collects the due tasks
//! into a reused batch under the lock, releases it, then runs them. Steps are
//! serialized by the `firing` lock (taken before the state lock), so batches
//! run in due order and a step returns only after every task due at its
//! `now` has run, whoever collected it.
//!
//! Tasks may schedule and cancel from inside [`TimerTask::fire`]. A nested
//! firing step on the same service from inside a task returns at once (the
//! outer step is still running the batch); a panicking task is counted as
//! fired and the rest of its batch still runs.
#![allow(unreachable_pub)] // `pub` for `internals` under cfg(loom); crate-private otherwise

use std::any::Any;
use std::cell::Cell;
use std::fmt;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use crate::loom::sync::{Arc, Condvar, Mutex, MutexGuard};
use crate::loom::thread::{self, JoinHandle};
use crate::loom::thread_local;
use crate::time::clock::{Clock, Tick};
use crate::time::wheel::{Wheel, WheelKey, MAX_TICK};

/// The default tick.
pub const DEFAULT_TICK: Duration = Duration::from_millis(1);

/// Something to run when its timer fires.
pub trait TimerTask: Send + 'static {
    /// Runs the task; called at most once, on the firing thread.
    fn fire(self: Box<Self>);
    /// The task as `Any`, so whoever cancels it can recover its concrete
    /// type (and, say, return the event it carried).
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send>;
}

/// Identifies one scheduled task in one service; stale once the task fired,
/// was cancelled or was taken by shutdown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimerKey {
    /// The id of the service that issued it.
    service: u64,
    key: WheelKey,
}

/// What engine shutdown does with delayed events and retries still waiting
/// for their time ([`EngineBuilder::timer_shutdown`]). Whatever it does is
/// counted in the [`ShutdownReport`] (`timers_fired`, `timers_dropped`,
/// `retries_dropped`): nothing vanishes uncounted.
///
/// # Examples
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use pinbus::{Engine, TimerShutdown};
/// let engine = Engine::builder().timer_shutdown(TimerShutdown::Drop).build()?;
/// let later = engine.topic::<u8>("later")?;
/// later.publish_after(Duration::from_secs(60), 1)?;
/// let report = engine.shutdown();
/// assert_eq!((report.timers_dropped, report.published), (1, 0));
/// # Ok(()) }
/// ```
///
/// [`EngineBuilder::timer_shutdown`]: crate::EngineBuilder::timer_shutdown
/// [`ShutdownReport`]: crate::ShutdownReport
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerShutdown {
    /// Fire the timers already due; drop the rest.
    FireDue,
    /// Fire every pending timer now, in due order (the default: every
    /// accepted event is delivered).
    FireAllNow,
    /// Drop every pending timer without firing it.
    Drop,
}

/// What a shutdown did with the tasks pending at that moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimerReport {
    /// Tasks the shutdown fired.
    pub fired: usize,
    /// Tasks the shutdown dropped unfired.
    pub dropped: usize,
}

/// Lifetime counts. Always `scheduled == cancelled + fired + dropped +
/// pending`. (For the unit tests and loom models.)
#[cfg(any(test, loom))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimerStats {
    /// Tasks accepted by `schedule`.
    pub scheduled: u64,
    /// Tasks returned by `cancel`.
    pub cancelled: u64,
    /// Tasks fired (or being fired), including by shutdown.
    pub fired: u64,
    /// Tasks dropped by shutdown.
    pub dropped: u64,
    /// Tasks still pending.
    pub pending: usize,
}

/// A task `schedule` did not accept, handed back.
pub struct ScheduleError {
    /// The task, unscheduled.
    pub task: Box<dyn TimerTask>,
    /// Why.
    pub reason: ScheduleErrorReason,
}

/// Why `schedule` refused a task.
#[derive(Debug)]
pub enum ScheduleErrorReason {
    /// The service was shut down.
    ShutDown,
    /// The firing thread could not be spawned.
    Spawn(std::io::Error),
}

impl fmt::Debug for ScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScheduleError")
            .field("reason", &self.reason)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.reason {
            ScheduleErrorReason::ShutDown => f.write_str("timer service is shut down"),
            ScheduleErrorReason::Spawn(e) => write!(f, "cannot spawn the timer thread: {e}"),
        }
    }
}

impl std::error::Error for ScheduleError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.reason {
            ScheduleErrorReason::ShutDown => None,
            ScheduleErrorReason::Spawn(e) => Some(e),
        }
    }
}

/// Who fires due tasks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// A lazily spawned `pinbus-timer` thread.
    Thread,
    /// The thread moving a `ManualClock`.
    Manual,
    /// The owner, through `fire_due`.
    #[cfg(any(test, loom))]
    External,
}

thread_local! {
    /// Id of the service whose batch this thread is running (0: none).
    // loom's `thread_local!` has no `const` form; the shim must accept both.
    #[allow(clippy::missing_const_for_thread_local)]
    static FIRING: Cell<u64> = Cell::new(0);
    /// Id of the service whose `pinbus-timer` thread this is (0: none).
    #[allow(clippy::missing_const_for_thread_local)]
    static TIMER_THREAD: Cell<u64> = Cell::new(0);
}

/// A timer service: see the module docs.
pub struct TimerService {
    shared: Arc<Shared>,
}

struct Shared {
    /// Process-unique (keys of other services never match).
    id: u64,
    clock: Box<dyn Clock>,
    /// Tick 0 starts here.
    origin: Instant,
    /// Tick length in nanoseconds, `>= 1`.
    tick_nanos: u64,
    mode: Mode,
    state: Mutex<State>,
    /// Wakes the firing thread: a schedule earlier than its deadline, or
    /// shutdown.
    wake: Condvar,
    /// Serializes firing steps; the reused batch of due tasks. Taken before
    /// `state`, never after.
    firing: Mutex<Vec<Box<dyn TimerTask>>>,
}

struct State {
    wheel: Wheel<Box<dyn TimerTask>>,
    closed: bool,
    /// Whether the firing thread was spawned (`Mode::Thread` only).
    started: bool,
    thread: Option<JoinHandle<()>>,
    /// The tick the firing thread sleeps until (`u64::MAX`: no deadline);
    /// `None` while it is not waiting on `wake`.
    sleeping_until: Option<u64>,
    scheduled: u64,
    cancelled: u64,
    fired: u64,
    dropped: u64,
}

impl fmt::Debug for TimerService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimerService")
            .field("id", &self.shared.id)
            .field("mode", &self.shared.mode)
            .field("tick_nanos", &self.shared.tick_nanos)
            .finish_non_exhaustive()
    }
}

impl TimerService {
    /// A service on `clock` with ticks of `tick` (at least 1 ns). On a
    /// [`ManualClock`](crate::ManualClock) it is driven by the clock's moves;
    /// on any other clock a thread is spawned on the first schedule.
    pub fn new(clock: Box<dyn Clock>, tick: Duration) -> TimerService {
        let manual = clock.as_manual().is_some();
        let service = Self::build(
            clock,
            tick,
            if manual { Mode::Manual } else { Mode::Thread },
        );
        if let Some(m) = service.shared.clock.as_manual() {
            m.attach(service.shared.id, Box::new(Driver(service.shared.clone())));
        }
        service
    }

    #[cfg(any(test, loom))]
    /// A service that nothing drives: due tasks fire only in
    /// [`fire_due`](Self::fire_due) (and shutdown). No thread is spawned.
    pub fn external(clock: Box<dyn Clock>, tick: Duration) -> TimerService {
        Self::build(clock, tick, Mode::External)
    }

    fn build(clock: Box<dyn Clock>, tick: Duration, mode: Mode) -> TimerService {
        let origin = clock.now();
        let tick_nanos = tick.as_nanos().clamp(1, u128::from(u64::MAX)) as u64;
        TimerService {
            shared: Arc::new(Shared {
                id: crate::loom::unique_id(),
                clock,
                origin,
                tick_nanos,
                mode,
                state: Mutex::new(State {
                    wheel: Wheel::new(),
                    closed: false,
                    started: false,
                    thread: None,
                    sleeping_until: None,
                    scheduled: 0,
                    cancelled: 0,
                    fired: 0,
                    dropped: 0,
                }),
                wake: Condvar::new(),
                firing: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The service's clock reading.
    pub fn now(&self) -> Instant {
        self.shared.clock.now()
    }

    /// The tick length.
    #[cfg(any(test, loom))]
    pub fn tick(&self) -> Duration {
        Duration::from_nanos(self.shared.tick_nanos)
    }

    /// Schedules `task` to fire at `due` (at once if `due` has passed:
    /// on the next firing step). O(1).
    ///
    /// # Errors
    ///
    /// Hands the task back if the service was shut down, or if its firing
    /// thread could not be spawned (a later call tries again).
    pub fn schedule(
        &self,
        due: Instant,
        task: Box<dyn TimerTask>,
    ) -> Result<TimerKey, ScheduleError> {
        self.schedule_tick(self.shared.due_tick(due), task)
    }

    /// Schedules `task` to fire `delay` from the clock's now. As
    /// [`schedule`](Self::schedule).
    ///
    /// # Errors
    ///
    /// As [`schedule`](Self::schedule).
    pub fn schedule_after(
        &self,
        delay: Duration,
        task: Box<dyn TimerTask>,
    ) -> Result<TimerKey, ScheduleError> {
        let tick = match self.now().checked_add(delay) {
            Some(due) => self.shared.due_tick(due),
            None => MAX_TICK,
        };
        self.schedule_tick(tick, task)
    }

    fn schedule_tick(
        &self,
        tick: u64,
        task: Box<dyn TimerTask>,
    ) -> Result<TimerKey, ScheduleError> {
        let shared = &self.shared;
        let mut st = shared.state.lock();
        if st.closed {
            return Err(ScheduleError {
                task,
                reason: ScheduleErrorReason::ShutDown,
            });
        }
        if shared.mode == Mode::Thread && !st.started {
            let s = shared.clone();
            #[cfg(feature = "fault-injection")]
            if crate::sys::pinning::fault::refuses_timer_thread() {
                return Err(ScheduleError {
                    task,
                    reason: ScheduleErrorReason::Spawn(std::io::Error::other(
                        "timer thread refused by fault injection",
                    )),
                });
            }
            let spawned = thread::Builder::new()
                .name("pinbus-timer".into())
                .spawn(move || run(s));
            match spawned {
                Ok(handle) => {
                    st.thread = Some(handle);
                    st.started = true;
                }
                Err(e) => {
                    return Err(ScheduleError {
                        task,
                        reason: ScheduleErrorReason::Spawn(e),
                    })
                }
            }
        }
        let key = st.wheel.insert(tick, task);
        st.scheduled += 1;
        if st.sleeping_until.is_some_and(|until| tick < until) {
            shared.wake.notify_one();
        }
        Ok(TimerKey {
            service: shared.id,
            key,
        })
    }

    /// Takes the task of `key` out before it fires. `None` if it already
    /// fired (or is firing), was cancelled, was taken by shutdown, or `key`
    /// is another service's. O(1).
    pub fn cancel(&self, key: TimerKey) -> Option<Box<dyn TimerTask>> {
        if key.service != self.shared.id {
            return None;
        }
        let mut st = self.shared.state.lock();
        let task = st.wheel.cancel(key.key)?;
        st.cancelled += 1;
        Some(task)
    }

    /// One firing step: runs every task due at `now`, in due order, on the
    /// calling thread, and returns how many it ran. Returns 0 after shutdown
    /// and when called from inside one of this service's tasks.
    #[cfg(any(test, loom))]
    pub fn fire_due(&self, now: Instant) -> usize {
        self.shared.fire_due(now)
    }

    /// Tasks pending. Racy: may change as soon as it returns.
    #[cfg(any(test, loom))]
    pub fn pending(&self) -> usize {
        self.shared.state.lock().wheel.len()
    }

    /// Lifetime counts (a consistent snapshot).
    #[cfg(any(test, loom))]
    pub fn stats(&self) -> TimerStats {
        let st = self.shared.state.lock();
        TimerStats {
            scheduled: st.scheduled,
            cancelled: st.cancelled,
            fired: st.fired,
            dropped: st.dropped,
            pending: st.wheel.len(),
        }
    }

    /// Stops the service: joins its thread (after the batch it is running),
    /// waits for a firing step in progress elsewhere, then fires or drops
    /// every pending task as `policy` says and counts them. Later schedules
    /// are refused; later calls return an empty report.
    pub fn shutdown(&self, policy: TimerShutdown) -> TimerReport {
        self.shared.shutdown(policy)
    }
}

impl Drop for TimerService {
    fn drop(&mut self) {
        self.shared.shutdown(TimerShutdown::Drop);
    }
}

/// How a [`ManualClock`](crate::ManualClock) drives a service attached to it.
struct Driver(Arc<Shared>);

impl Tick for Driver {
    /// Fires what is due at the clock's now, again until nothing is (tasks
    /// may schedule tasks already due).
    fn drive(&self) {
        while self.0.fire_due(self.0.clock.now()) > 0 {}
    }

    fn share(&self) -> Box<dyn Tick> {
        Box::new(Driver(self.0.clone()))
    }
}

impl Shared {
    /// Ticks in `d`, rounded up (due times: never early) or down (now).
    fn ticks(&self, d: Duration, round_up: bool) -> u64 {
        let (n, t) = (d.as_nanos(), u128::from(self.tick_nanos));
        let q = if round_up { n.div_ceil(t) } else { n / t };
        q.min(u128::from(MAX_TICK)) as u64
    }

    fn due_tick(&self, due: Instant) -> u64 {
        self.ticks(due.saturating_duration_since(self.origin), true)
    }

    fn now_tick(&self, now: Instant) -> u64 {
        self.ticks(now.saturating_duration_since(self.origin), false)
    }

    /// Where tick `tick` starts; `None` past what `Instant` holds.
    fn tick_start(&self, tick: u64) -> Option<Instant> {
        let nanos = u128::from(tick) * u128::from(self.tick_nanos);
        let secs = u64::try_from(nanos / 1_000_000_000).ok()?;
        self.origin
            .checked_add(Duration::new(secs, (nanos % 1_000_000_000) as u32))
    }

    fn fire_due(&self, now: Instant) -> usize {
        if FIRING.with(|f| f.get()) == self.id {
            return 0;
        }
        let mut batch = self.firing.lock();
        {
            let mut st = self.state.lock();
            if st.closed {
                return 0;
            }
            st.wheel
                .advance(self.now_tick(now), |_, task| batch.push(task));
            st.fired += batch.len() as u64;
        }
        let n = batch.len();
        run_batch(self.id, &mut batch);
        n
    }

    fn shutdown(&self, policy: TimerShutdown) -> TimerReport {
        let thread = {
            let mut st = self.state.lock();
            if st.closed {
                return TimerReport::default();
            }
            st.closed = true;
            st.thread.take()
        };
        self.wake.notify_all();
        if let Some(handle) = thread {
            // From a task on our own thread: it exits after this batch.
            if TIMER_THREAD.with(|t| t.get()) != self.id {
                let _ = handle.join();
            }
        }
        if let Some(m) = self.clock.as_manual() {
            m.detach(self.id);
        }
        // Inside one of our own tasks the firing lock is ours already.
        let mut own = Vec::new();
        let mut guard: Option<MutexGuard<'_, Vec<Box<dyn TimerTask>>>> =
            (FIRING.with(|f| f.get()) != self.id).then(|| self.firing.lock());
        let batch = match guard.as_mut() {
            Some(g) => &mut **g,
            None => &mut own,
        };
        let mut doomed = Vec::new();
        {
            let mut st = self.state.lock();
            match policy {
                TimerShutdown::FireDue => {
                    let now = self.now_tick(self.clock.now());
                    st.wheel.advance(now, |_, task| batch.push(task));
                    st.wheel.advance(MAX_TICK, |_, task| doomed.push(task));
                }
                TimerShutdown::FireAllNow => {
                    st.wheel.advance(MAX_TICK, |_, task| batch.push(task));
                }
                TimerShutdown::Drop => {
                    st.wheel.advance(MAX_TICK, |_, task| doomed.push(task));
                }
            }
            st.fired += batch.len() as u64;
            st.dropped += doomed.len() as u64;
        }
        let report = TimerReport {
            fired: batch.len(),
            dropped: doomed.len(),
        };
        run_batch(self.id, batch);
        // Outside the state lock: a task's `Drop` may call into the service.
        drop(doomed);
        report
    }
}

/// Runs (and empties) `batch` for service `id`. A panicking task counts as
/// fired; the rest still run.
fn run_batch(id: u64, batch: &mut Vec<Box<dyn TimerTask>>) {
    let outer = FIRING.with(|f| f.replace(id));
    for task in batch.drain(..) {
        let _ = std::panic::catch_unwind(AssertUnwindSafe(move || task.fire()));
    }
    FIRING.with(|f| f.set(outer));
}

/// The `pinbus-timer` thread: fire what is due, then sleep until the next
/// due tick or a wake-up, until shutdown.
fn run(shared: Arc<Shared>) {
    TIMER_THREAD.with(|t| t.set(shared.id));
    loop {
        shared.fire_due(shared.clock.now());
        let mut st = shared.state.lock();
        if st.closed {
            return;
        }
        let now = shared.clock.now();
        // Decided under the lock a schedule takes to notify: no lost wake-up.
        let next = st.wheel.next_due();
        if next.is_some_and(|due| due <= shared.now_tick(now)) {
            continue;
        }
        st.sleeping_until = Some(next.unwrap_or(u64::MAX));
        let timeout = next
            .and_then(|due| shared.tick_start(due))
            .map(|at| at.saturating_duration_since(now));
        st = match timeout {
            Some(t) => shared.wake.wait_timeout(st, t),
            None => shared.wake.wait(st),
        };
        st.sleeping_until = None;
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::time::clock::{ManualClock, SystemClock};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex as StdMutex;

    /// A task running a closure.
    struct FnTask<F>(F);
    impl<F: FnOnce() + Send + 'static> TimerTask for FnTask<F> {
        fn fire(self: Box<Self>) {
            (self.0)()
        }
        fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
            self
        }
    }

    fn task(f: impl FnOnce() + Send + 'static) -> Box<dyn TimerTask> {
        Box::new(FnTask(f))
    }

    type Log = std::sync::Arc<StdMutex<Vec<u32>>>;

    fn push(log: &Log, v: u32) -> Box<dyn TimerTask> {
        let log = log.clone();
        task(move || log.lock().unwrap().push(v))
    }

    fn taken(log: &Log) -> Vec<u32> {
        std::mem::take(&mut *log.lock().unwrap())
    }

    fn manual() -> (ManualClock, TimerService) {
        let clock = ManualClock::new();
        let svc = TimerService::new(Box::new(clock.clone()), DEFAULT_TICK);
        (clock, svc)
    }

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn manual_advance_fires_due_in_order() {
        let (clock, svc) = manual();
        let log = Log::default();
        let t0 = clock.now();
        svc.schedule(t0 + 10 * MS, push(&log, 1)).unwrap();
        svc.schedule(t0 + 5 * MS, push(&log, 2)).unwrap();
        svc.schedule(t0 + 10 * MS, push(&log, 3)).unwrap();
        svc.schedule_after(200 * MS, push(&log, 4)).unwrap();
        clock.advance(4 * MS);
        assert_eq!(taken(&log), Vec::<u32>::new());
        clock.advance(MS);
        assert_eq!(taken(&log), vec![2]);
        clock.advance(5 * MS);
        assert_eq!(taken(&log), vec![1, 3]);
        clock.set(t0 + 199 * MS);
        assert_eq!(taken(&log), Vec::<u32>::new());
        clock.set(t0 + 10 * 60_000 * MS);
        assert_eq!(taken(&log), vec![4]);
        assert!(!svc.shared.lock_started());
    }

    #[test]
    fn never_fires_early() {
        let (clock, svc) = manual();
        let log = Log::default();
        // 1.5 ticks away: the tick ending at 2 ms holds it.
        svc.schedule(clock.now() + MS + MS / 2, push(&log, 1))
            .unwrap();
        clock.advance(MS + MS / 2 - Duration::from_nanos(1));
        assert_eq!(taken(&log), Vec::<u32>::new());
        clock.advance(Duration::from_nanos(1));
        assert_eq!(taken(&log), Vec::<u32>::new());
        clock.advance(MS / 2);
        assert_eq!(taken(&log), vec![1]);
    }

    #[test]
    fn due_now_fires_on_zero_advance() {
        let (clock, svc) = manual();
        let log = Log::default();
        svc.schedule(clock.now(), push(&log, 1)).unwrap();
        assert_eq!(svc.pending(), 1);
        clock.advance(Duration::ZERO);
        assert_eq!(taken(&log), vec![1]);
    }

    #[derive(Debug, PartialEq)]
    struct Payload(u32);
    impl TimerTask for Payload {
        fn fire(self: Box<Self>) {
            panic!("cancelled payload fired");
        }
        fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
            self
        }
    }

    #[test]
    fn cancel_hands_the_task_back() {
        let (clock, svc) = manual();
        let key = svc.schedule_after(MS, Box::new(Payload(7))).unwrap();
        let back = svc.cancel(key).expect("pending").into_any();
        assert_eq!(*back.downcast::<Payload>().unwrap(), Payload(7));
        assert!(svc.cancel(key).is_none());
        // A key of another service never matches.
        let (_, other) = manual();
        let k2 = other.schedule_after(MS, Box::new(Payload(8))).unwrap();
        assert!(svc.cancel(k2).is_none());
        assert!(other.cancel(k2).is_some());
        clock.advance(10 * MS);
        let s = svc.stats();
        assert_eq!((s.scheduled, s.cancelled, s.fired, s.pending), (1, 1, 0, 0));
    }

    #[test]
    fn external_service_fires_only_in_fire_due() {
        let svc = TimerService::external(Box::new(SystemClock), 10 * MS);
        assert_eq!(svc.tick(), 10 * MS);
        let log = Log::default();
        let t0 = svc.now();
        svc.schedule(t0 + 15 * MS, push(&log, 1)).unwrap();
        svc.schedule(t0, push(&log, 2)).unwrap();
        // `t0` is inside tick 1 (origin was read before it): due at its end.
        assert_eq!(svc.fire_due(t0), 0);
        assert_eq!(svc.fire_due(t0 + 10 * MS), 1);
        assert_eq!(taken(&log), vec![2]);
        assert_eq!(svc.fire_due(t0 + 30 * MS), 1);
        assert_eq!(taken(&log), vec![1]);
        assert!(!svc.shared.lock_started());
        svc.shutdown(TimerShutdown::FireDue);
        let err = svc.schedule(t0, Box::new(Payload(3))).unwrap_err();
        assert_eq!(err.to_string(), "timer service is shut down");
        assert!(std::error::Error::source(&err).is_none());
        let back = err.task.into_any().downcast::<Payload>().unwrap();
        assert_eq!(*back, Payload(3));
        assert_eq!(svc.fire_due(t0 + 60 * MS), 0);
    }

    #[test]
    fn tasks_can_schedule_due_tasks_and_move_the_clock() {
        let (clock, svc) = manual();
        let svc = std::sync::Arc::new(svc);
        let log = Log::default();
        let (s, l, c) = (svc.clone(), log.clone(), clock.clone());
        svc.schedule_after(
            MS,
            task(move || {
                l.lock().unwrap().push(1);
                // Already due: fires before the outer advance returns.
                s.schedule(c.now(), push(&l, 2)).unwrap();
                // Nested move: only moves time; the outer advance fires 3.
                s.schedule(c.now() + 5 * MS, push(&l, 3)).unwrap();
                c.advance(5 * MS);
            }),
        )
        .unwrap();
        clock.advance(MS);
        assert_eq!(taken(&log), vec![1, 2, 3]);
    }

    #[test]
    fn panicking_task_does_not_lose_the_batch() {
        let (clock, svc) = manual();
        let log = Log::default();
        svc.schedule_after(MS, task(|| panic!("task panics (expected in this test)")))
            .unwrap();
        svc.schedule_after(MS, push(&log, 1)).unwrap();
        clock.advance(MS);
        assert_eq!(taken(&log), vec![1]);
        assert_eq!(svc.stats().fired, 2);
    }

    /// Counts drops, to check that no task vanishes.
    struct Counted(std::sync::Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn shutdown_policies_count_everything() {
        for policy in [
            TimerShutdown::FireDue,
            TimerShutdown::FireAllNow,
            TimerShutdown::Drop,
        ] {
            let (clock, svc) = manual();
            let log = Log::default();
            let drops = std::sync::Arc::new(AtomicUsize::new(0));
            let t0 = clock.now();
            for (i, delay) in [30u32, 0, 10, 0, 20].into_iter().enumerate() {
                let (l, c) = (log.clone(), Counted(drops.clone()));
                let t = task(move || {
                    let _c = c;
                    l.lock().unwrap().push(i as u32);
                });
                svc.schedule(t0 + delay * MS, t).unwrap();
            }
            let report = svc.shutdown(policy);
            let expect = match policy {
                TimerShutdown::FireDue => vec![1, 3],
                TimerShutdown::FireAllNow => vec![1, 3, 2, 4, 0],
                TimerShutdown::Drop => vec![],
            };
            assert_eq!(taken(&log), expect, "{policy:?}");
            assert_eq!(report.fired, expect.len());
            assert_eq!(report.fired + report.dropped, 5);
            assert_eq!(drops.load(Ordering::Relaxed), 5, "every task was consumed");
            let err = svc.schedule(t0, push(&log, 9)).unwrap_err();
            assert!(matches!(err.reason, ScheduleErrorReason::ShutDown));
            assert_eq!(svc.shutdown(policy), TimerReport::default());
            let s = svc.stats();
            assert_eq!(s.scheduled, s.cancelled + s.fired + s.dropped);
            // Detached: moving the clock reaches no service.
            clock.advance(MS);
        }
    }

    #[test]
    fn dropping_the_service_drops_its_tasks() {
        let drops = std::sync::Arc::new(AtomicUsize::new(0));
        let clock = ManualClock::new();
        {
            let svc = TimerService::new(Box::new(clock.clone()), DEFAULT_TICK);
            let c = Counted(drops.clone());
            svc.schedule_after(MS, task(move || drop(c))).unwrap();
        }
        assert_eq!(drops.load(Ordering::Relaxed), 1);
        clock.advance(MS);
    }

    #[test]
    fn system_clock_fires_within_a_tick_on_the_timer_thread() {
        let svc = TimerService::new(Box::new(SystemClock), DEFAULT_TICK);
        assert!(!svc.shared.lock_started(), "spawned lazily");
        let (tx, rx) = std::sync::mpsc::channel();
        // A far timer first, so the thread sleeps long; the near one must
        // wake it.
        svc.schedule_after(Duration::from_secs(3600), task(|| {}))
            .unwrap();
        std::thread::sleep(5 * MS);
        let mut lateness = Vec::new();
        for _ in 0..5 {
            let due = Instant::now() + 20 * MS;
            let tx = tx.clone();
            svc.schedule(
                due,
                task(move || {
                    let name = std::thread::current().name().map(str::to_owned);
                    tx.send((Instant::now(), name)).unwrap();
                }),
            )
            .unwrap();
            let (at, name) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
            assert_eq!(name.as_deref(), Some("pinbus-timer"));
            assert!(at >= due, "fired early");
            lateness.push(at - due);
        }
        lateness.sort();
        // One tick plus OS wake-up latency; generous for a loaded 2-core box.
        assert!(lateness[2] < 20 * MS, "median lateness {:?}", lateness[2]);
        let report = svc.shutdown(TimerShutdown::Drop);
        assert_eq!(
            report,
            TimerReport {
                fired: 0,
                dropped: 1
            }
        );
    }

    #[test]
    fn exactly_once_with_racing_threads() {
        let svc = std::sync::Arc::new(TimerService::new(
            Box::new(SystemClock),
            Duration::from_micros(100),
        ));
        let fired = std::sync::Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let (svc, fired) = (svc.clone(), fired.clone());
                std::thread::spawn(move || {
                    let mut cancelled = 0;
                    for i in 0..2_000u64 {
                        let f = fired.clone();
                        let delay = Duration::from_micros((i * 37 + t * 11) % 3_000);
                        let key = svc
                            .schedule_after(
                                delay,
                                task(move || {
                                    f.fetch_add(1, Ordering::Relaxed);
                                }),
                            )
                            .unwrap();
                        if i % 3 == 0 && svc.cancel(key).is_some() {
                            cancelled += 1;
                        }
                    }
                    cancelled
                })
            })
            .collect();
        let cancelled: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        let report = svc.shutdown(TimerShutdown::FireAllNow);
        assert_eq!(report.dropped, 0);
        assert_eq!(fired.load(Ordering::Relaxed) + cancelled, 8_000);
        let s = svc.stats();
        assert_eq!(s.scheduled, 8_000);
        assert_eq!(s.cancelled as usize, cancelled);
        assert_eq!(s.fired as usize, fired.load(Ordering::Relaxed));
        assert_eq!(s.pending, 0);
    }

    #[test]
    fn task_may_shut_its_own_service_down() {
        let svc = std::sync::Arc::new(TimerService::new(Box::new(SystemClock), DEFAULT_TICK));
        let (tx, rx) = std::sync::mpsc::channel();
        let s = svc.clone();
        svc.schedule_after(
            MS,
            task(move || {
                tx.send(s.shutdown(TimerShutdown::Drop)).unwrap();
            }),
        )
        .unwrap();
        svc.schedule_after(Duration::from_secs(60), task(|| {}))
            .unwrap();
        let report = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(
            report,
            TimerReport {
                fired: 0,
                dropped: 1
            }
        );
    }

    impl Shared {
        fn lock_started(&self) -> bool {
            self.state.lock().started
        }
    }
}
