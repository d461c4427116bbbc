//! `Receipt`: completion of one tracked publish.
//!
//! A tracked publish pushes one [`TrackerRef`] per lane with its event. A lane
//! drops its copy of the event (and so its `TrackerRef`) only after every
//! subscription on that lane has handled it — or, for a group lane, after the
//! member that took it has. When the last `TrackerRef` drops, the receipt is
//! complete.
//!
//! # Orderings
//!
//! `remaining.fetch_sub`: the release half publishes the handlers' effects;
//! the acquire half, on the thread that reaches zero, makes every lane's
//! effects visible before it signals `done` under the mutex. Waiters read
//! `done` under the same mutex, or `remaining` with `Acquire`.
//!
//! The thread that completes a receipt takes the mutex and notifies only if
//! a thread may be blocked on it (`blocked`), so a receipt nobody blocks on
//! costs its completer no lock and no system call. (R1) No lost wake-up: a
//! waiter stores `blocked`, runs `fence::heavy()` and loads `remaining`; the
//! completer decrements `remaining`, runs `fence::light()` and loads
//! `blocked` — the store-buffering shape of parking, with the asymmetric
//! fences of [`fence`](crate::sys::fence): either the waiter's load sees 0
//! (it returns without blocking) or the completer's load sees `true` (it
//! sets `done` under the mutex, which the waiter checks under the mutex
//! before each wait). The waiter is the rare side: it pays the heavy fence
//! only after spinning in vain.
//!
//! # Waiting
//!
//! A worker that is running completes a receipt within microseconds, far
//! sooner than a blocked thread is woken (tens of µs on a VM), so `wait`
//! first spins on `remaining` (then yields) for a short, bounded time and
//! only then blocks on the condition variable.
//!
//! # No allocation per tracked publish
//!
//! Trackers are reused (`event::reuse`): each thread keeps a few, filled at
//! its first tracked publish, and takes one that nobody else holds any
//! more (every receipt and lane share of its last use is gone).
//!
//! # Awaiting
//!
//! [`Receipt`] is a [`Future`]. A poll registers the task's waker in the
//! tracker's `waker`, *then* re-checks `remaining`; the thread that takes
//! `remaining` to zero calls `waker.wake()` *after* the decrement. Either
//! the re-check sees zero, or the decrement comes after the registration
//! in `remaining`'s modification order — and then `AtomicWaker`'s own
//! handshake (an `AcqRel` read-modify-write of its state on both sides)
//! makes the waker visible to `wake()`. So a wake-up is never lost and no
//! task polls in a loop (loom model: `loom-tests/tests/loom_receipt.rs`).

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::core::attach::{Attached, Settle};
use crate::event::reuse;
use crate::event::spin::{self, YIELD_UNTIL};
use crate::loom::future::AtomicWaker;
use crate::loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use crate::loom::sync::{Arc, Condvar, Mutex};
use crate::sys::error::WaitError;
use crate::sys::fence;

pub(crate) struct Tracker {
    /// Lane copies not yet dropped; 0 = complete.
    remaining: AtomicUsize,
    /// Whether a thread may block on `cv` (set before it re-checks
    /// `remaining`; never cleared during one use): see (R1).
    blocked: AtomicBool,
    done: Mutex<bool>,
    cv: Condvar,
    /// Id of the engine whose workers must not block on this receipt.
    engine: u64,
    /// Whether `wait` may spin before it blocks (the engine leaves a core
    /// free for it).
    spin: bool,
    /// The task awaiting the receipt, if any (see the module's "Awaiting").
    waker: AtomicWaker,
}

/// One lane's share of a tracked event; dropping it counts that lane done.
pub(crate) struct TrackerRef(Attached<Tracker>);

impl TrackerRef {
    /// One more share (a retry copy of the event): the receipt now also
    /// waits for it.
    pub(crate) fn another(&self) -> TrackerRef {
        // Relaxed, as for an `Arc` clone: `self` is a live share, so the
        // count is at least 1 and cannot reach 0 (completion) meanwhile.
        self.0.get().remaining.fetch_add(1, Ordering::Relaxed);
        TrackerRef(Attached::new(self.0.arc().clone()))
    }

    /// The share as a ring carries it in a slot's stamp.
    pub(crate) fn into_share(self) -> Attached<Tracker> {
        self.0
    }

    /// The share a ring carried in a slot's stamp.
    pub(crate) fn from_share(share: Attached<Tracker>) -> TrackerRef {
        TrackerRef(share)
    }

    /// Whether a ring can carry this share in a slot's stamp.
    pub(crate) fn fits_in_stamp(&self) -> bool {
        self.0.fits()
    }
}

/// Dropping a share ([`TrackerRef`], or the share a ring carries for it)
/// counts its lane's copy as done.
impl Settle for Tracker {
    fn settle(&self) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            // The decrement, this fence, then the load: (R1).
            fence::light();
            if self.blocked.load(fence::AFTER_LIGHT) {
                *self.done.lock() = true;
                self.cv.notify_all();
            }
            // After the decrement: pairs with the register-then-check in
            // `Receipt::poll`.
            self.waker.wake();
        }
    }
}

impl Tracker {
    fn new(engine: u64, spin: bool, lanes: usize) -> Tracker {
        Tracker {
            spin,
            remaining: AtomicUsize::new(lanes),
            blocked: AtomicBool::new(false),
            done: Mutex::new(lanes == 0),
            cv: Condvar::new(),
            engine,
            waker: AtomicWaker::new(),
        }
    }
}

#[cfg(not(loom))]
crate::loom::thread_local! {
    static TRACKERS: RefCell<Vec<Arc<Tracker>>> = const { RefCell::new(Vec::new()) };
}

// loom's `thread_local!` has no `const` form.
#[cfg(loom)]
crate::loom::thread_local! {
    static TRACKERS: RefCell<Vec<Arc<Tracker>>> = RefCell::new(Vec::new());
}

/// Creates a receipt expecting `lanes` lane copies; hand out exactly that many
/// [`Receipt::share`]s. Reuses a tracker of this thread's pool that nobody
/// holds any more; allocates only while the pool has none free.
pub(crate) fn tracked(engine: u64, spin: bool, lanes: usize) -> Receipt {
    let reused = TRACKERS.try_with(|pool| {
        let mut pool = pool.try_borrow_mut().ok()?;
        Some(reuse::take(
            &mut pool,
            (),
            |free, ()| *free = Tracker::new(engine, spin, lanes),
            |()| Tracker::new(engine, spin, lanes),
            || Tracker::new(engine, spin, 0),
        ))
    });
    let tracker = reused
        .ok()
        .flatten()
        // During thread teardown the pool may be gone.
        .unwrap_or_else(|| Arc::new(Tracker::new(engine, spin, lanes)));
    Receipt { tracker }
}

/// Completion of one event published with [`Topic::publish_tracked`]: complete
/// once every subscription that was live when the event was published has
/// handled it (each consumer group counts once, through the member that took
/// it). A handler that fails or panics has handled the event too — unless
/// its subscription has a [`RetryPolicy`](crate::RetryPolicy): then the
/// receipt waits for the event's last attempt, or for its dead letter.
///
/// Subscriptions removed before they got to the event do not hold it back.
///
/// # Examples
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use pinbus::Engine;
/// let engine = Engine::builder().workers(1).build()?;
/// let jobs = engine.topic::<u32>("jobs")?;
/// jobs.subscribe(|job| println!("job {}", **job))?;
/// let receipt = jobs.publish_tracked(7)?;
/// assert!(receipt.wait_timeout(Duration::from_secs(5)));
/// assert!(receipt.is_complete());
/// # Ok(()) }
/// ```
///
/// [`Topic::publish_tracked`]: crate::Topic::publish_tracked
#[derive(Clone)]
pub struct Receipt {
    tracker: Arc<Tracker>,
}

impl Receipt {
    /// One lane's share of the event (see [`tracked`]).
    pub(crate) fn share(&self) -> TrackerRef {
        TrackerRef(Attached::new(self.tracker.clone()))
    }

    /// Whether every subscription has handled the event.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let jobs = engine.topic::<u32>("jobs")?;
    /// jobs.subscribe(|_| ())?;
    /// let receipt = jobs.publish_tracked(1)?;
    /// receipt.wait()?;
    /// assert!(receipt.is_complete());
    /// # Ok(()) }
    /// ```
    pub fn is_complete(&self) -> bool {
        // Acquire: pairs with the AcqRel decrements, so the handlers' effects
        // are visible once this returns true.
        self.tracker.remaining.load(Ordering::Acquire) == 0
    }

    /// Blocks until the event has been handled by every subscription.
    ///
    /// It first spins on the receipt for up to 20 µs, then yields for up to
    /// 50 µs in all, and only then sleeps on a condition variable: a running
    /// worker answers in well under a microsecond, a sleeping thread takes
    /// tens of microseconds to wake. It does not spin when the engine's
    /// spinning workers (`BusySpin`, `Yield`) already take every core: every
    /// core of the machine when they are pinned, every core the thread that
    /// built the engine may use when they are not (they inherit its CPU
    /// affinity).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pinbus::WaitError;
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let (outer, inner) = (engine.topic::<u32>("outer")?, engine.topic::<u32>("inner")?);
    /// inner.subscribe(|_| ())?;
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// // The one worker is busy with this handler, so `inner`'s event is pending.
    /// outer.subscribe(move |_| tx.send(inner.publish_tracked(1).unwrap().wait()).unwrap())?;
    /// outer.publish(1)?;
    /// assert_eq!(rx.recv()?, Err(WaitError::OnWorkerThread));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`WaitError::OnWorkerThread`] if called from one of this engine's
    /// worker threads (inside a handler) while the event is still pending:
    /// the event may be waiting for that very thread, so waiting could never
    /// end. Use [`is_complete`](Receipt::is_complete) there instead.
    pub fn wait(&self) -> Result<(), WaitError> {
        if self.is_complete() {
            return Ok(());
        }
        if crate::sys::context::on_worker_of(self.tracker.engine) {
            return Err(WaitError::OnWorkerThread);
        }
        if self.spin(YIELD_UNTIL) || self.announce_block() {
            return Ok(());
        }
        let mut done = self.tracker.done.lock();
        while !*done {
            done = self.tracker.cv.wait(done);
        }
        Ok(())
    }

    /// Blocks until the event has been handled or `timeout` has passed;
    /// returns whether it was handled.
    ///
    /// On one of this engine's worker threads it still waits at most
    /// `timeout`, but the event may be queued behind the calling handler.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let jobs = engine.topic::<u32>("jobs")?;
    /// jobs.subscribe(|_| ())?;
    /// let receipt = jobs.publish_tracked(1)?;
    /// assert!(receipt.wait_timeout(Duration::from_secs(5)));
    /// # Ok(()) }
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        if self.is_complete() {
            return true;
        }
        let deadline = Instant::now() + timeout;
        if self.spin(timeout.min(YIELD_UNTIL)) || self.announce_block() {
            return true;
        }
        let mut done = self.tracker.done.lock();
        while !*done {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            done = self.tracker.cv.wait_timeout(done, deadline - now);
        }
        true
    }
}

impl Receipt {
    /// Tells the completer that this thread may block; returns whether the
    /// receipt completed before that was seen (then nobody will notify).
    fn announce_block(&self) -> bool {
        // The store, the heavy fence, then the load: (R1). Relaxed: the
        // fences order them.
        self.tracker.blocked.store(true, Ordering::Relaxed);
        fence::heavy();
        self.tracker.remaining.load(Ordering::Acquire) == 0
    }

    /// Spins, then yields, for at most `limit` (at most [`SPIN_FOR`] of
    /// it spinning) while the event is pending; returns whether it
    /// completed meanwhile.
    fn spin(&self, limit: Duration) -> bool {
        if !self.tracker.spin {
            return self.is_complete();
        }
        spin::until(limit, || self.is_complete())
    }
}

/// Awaiting a receipt (`receipt.await`) completes when
/// [`is_complete`](Receipt::is_complete) would return true: the task is woken
/// by the worker that completes the event — no polling loop, no allocation
/// beyond the receipt itself, and no runtime dependency (it works under
/// tokio, smol, async-std or `futures::executor`). Unlike
/// [`wait`](Receipt::wait) it is fine inside a task on any thread, and never
/// fails.
///
/// One task at a time: a receipt keeps a single waker, so when clones of
/// it are awaited by several tasks at once only the one that polled last is
/// sure to be woken. Await one clone per task in turn, or hand the others
/// [`wait`](Receipt::wait).
///
/// Awaiting from a handler of the same engine (inside `block_on` on a
/// worker) would wait for events queued behind that very handler; don't.
///
/// # Examples
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use pinbus::Engine;
/// let engine = Engine::builder().workers(1).build()?;
/// let jobs = engine.topic::<u32>("jobs")?;
/// jobs.subscribe(|job| println!("job {}", **job))?;
/// let receipt = jobs.publish_tracked(7)?;
/// futures::executor::block_on(async move {
///     receipt.await; // the worker that handles job 7 wakes this task
/// });
/// # Ok(()) }
/// ```
impl Future for Receipt {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.is_complete() {
            return Poll::Ready(());
        }
        // Register, then re-check: a completion after the check wakes the
        // waker registered before it (module docs, "Awaiting").
        self.tracker.waker.register_by_ref(cx.waker());
        if self.is_complete() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl std::fmt::Debug for Receipt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receipt")
            .field("complete", &self.is_complete())
            .finish_non_exhaustive()
    }
}
