//! Reply slots: the one-shot cell a service request carries from its caller
//! to the member that answers it.
//!
//! A call puts its query in a [`ReplySlot`] and publishes a [`Request`] (an
//! `Arc` of the slot) on the service's internal topic. The member that gets
//! the request [takes](ReplySlot::take_query) the query, runs the handler and
//! [answers](ReplySlot::answer); the caller waits on the slot's condition
//! variable (blocking calls) or its waker (async calls).
//!
//! # States
//!
//! 1. `Query(q)`: published, not yet taken by a member.
//! 2. `Taken`: a member runs the handler.
//! 3. `Done(answer)`: answered; the caller takes it.
//! 4. `Unanswered(q)`: the request was dropped with its query untaken (no
//!    member, the last member left, shutdown discarded it): the query goes
//!    back to the caller.
//! 5. `Abandoned`: the caller gave up (timeout, dropped future); a member
//!    that gets the request skips the handler, a late answer is discarded.
//! 6. `Deferred`: a member took the query and answers later, from another
//!    thread, through a [`Responder`] (the NATS bridge's remote members).
//! 7. `Expired`: a deferred answer did not come in its member's time limit.
//!
//! A request dropped in state 2 (its member never answered) is answered with
//! a failure, so no caller waits forever; in state 6 the [`Responder`] owns
//! the answer, and answers with a failure if it is dropped unused.
//!
//! # Reuse
//!
//! Slots are reused as receipts' trackers are (`event::reuse`): each thread
//! keeps a few per query/reply type and takes one that nobody else holds
//! any more.

use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::task::{Context, Poll};
use std::time::Instant;

use crate::event::reuse;
use crate::event::spin::{self, YIELD_UNTIL};
use crate::loom::future::AtomicWaker;
use crate::loom::sync::atomic::{AtomicBool, Ordering};
use crate::loom::sync::{Arc, Condvar, Mutex, MutexGuard};

/// A slot's state; see [States](self#states).
enum State<Q, R> {
    Query(Q),
    Taken,
    Done(Result<R, String>),
    Unanswered(Q),
    Abandoned,
    #[cfg_attr(not(feature = "nats"), allow(dead_code))] // used by the NATS bridge
    Deferred,
    #[cfg_attr(not(feature = "nats"), allow(dead_code))] // used by the NATS bridge
    Expired,
}

/// What a caller finds in a slot once it is settled.
pub(crate) enum Settled<Q, R> {
    /// The member's answer: the reply or the handler's failure message.
    Answered(Result<R, String>),
    /// Nobody took the query; here it is back.
    Unanswered(Q),
    /// A deferred member's time limit passed without an answer.
    #[cfg_attr(not(feature = "nats"), allow(dead_code))] // used by the NATS bridge
    Expired,
}

/// The one-shot cell between a caller and the member answering it.
pub(crate) struct ReplySlot<Q, R> {
    state: Mutex<State<Q, R>>,
    /// Notified when the state leaves `Query`/`Taken` (blocking callers).
    settled: Condvar,
    /// Whether a blocking caller waits on `settled` (so the settler must
    /// notify). Read and written under `state`'s lock only.
    sleeper: AtomicBool,
    /// Set when the slot settles: what a spinning caller watches. A hint:
    /// the caller then takes the state under the lock.
    ready: AtomicBool,
    /// Woken when the state leaves `Query`/`Taken` (async callers).
    waker: AtomicWaker,
}

impl<Q, R> ReplySlot<Q, R> {
    fn new(query: Q) -> Self {
        Self::with(State::Query(query))
    }

    /// A spare slot for the pool (holds nothing until reused).
    fn spare() -> Self {
        Self::with(State::Abandoned)
    }

    fn with(state: State<Q, R>) -> Self {
        ReplySlot {
            state: Mutex::new(state),
            settled: Condvar::new(),
            sleeper: AtomicBool::new(false),
            ready: AtomicBool::new(false),
            waker: AtomicWaker::new(),
        }
    }

    /// Takes the query to answer it; `None` if the caller gave up already.
    pub(crate) fn take_query(&self) -> Option<Q> {
        let mut state = self.state.lock();
        match std::mem::replace(&mut *state, State::Taken) {
            State::Query(q) => Some(q),
            other => {
                *state = other;
                None
            }
        }
    }

    /// Answers a taken query; discarded if the caller gave up meanwhile.
    pub(crate) fn answer(&self, answer: Result<R, String>) {
        self.settle(State::Done(answer));
    }

    /// Moves a taken (or deferred) query's slot to `settled` and wakes the
    /// caller; nothing if the caller gave up meanwhile.
    fn settle(&self, settled: State<Q, R>) {
        let state = self.state.lock();
        if matches!(*state, State::Taken | State::Deferred) {
            self.finish(state, settled);
        }
    }

    /// Stores `settled` (the lock held) and wakes the caller: notifies a
    /// blocked one, tells a spinning one, wakes an async one.
    fn finish(&self, mut state: MutexGuard<'_, State<Q, R>>, settled: State<Q, R>) {
        *state = settled;
        // Relaxed, both: `sleeper` is only touched under the lock; `ready`
        // is a hint, after which the caller takes the lock.
        let sleeping = self.sleeper.swap(false, Ordering::Relaxed);
        self.ready.store(true, Ordering::Relaxed);
        drop(state);
        if sleeping {
            self.settled.notify_all();
        }
        self.waker.wake();
    }

    /// Takes the settled outcome, if the slot is settled.
    fn take_settled(state: &mut State<Q, R>) -> Option<Settled<Q, R>> {
        match std::mem::replace(state, State::Abandoned) {
            State::Done(answer) => Some(Settled::Answered(answer)),
            State::Unanswered(q) => Some(Settled::Unanswered(q)),
            State::Expired => Some(Settled::Expired),
            other => {
                *state = other;
                None
            }
        }
    }

    /// Waits until the slot is settled or `deadline` passes: spins briefly
    /// first when `spin` (no spinning worker lacks a core), then blocks. On
    /// timeout the caller gives up (the slot is `Abandoned`) and `None`
    /// comes back.
    pub(crate) fn wait(&self, deadline: Option<Instant>, spin: bool) -> Option<Settled<Q, R>> {
        if spin {
            let left =
                deadline.map_or(YIELD_UNTIL, |d| d.saturating_duration_since(Instant::now()));
            spin::until(left.min(YIELD_UNTIL), || {
                // Relaxed: a hint; the state is read under the lock below.
                self.ready.load(Ordering::Relaxed)
            });
        }
        let mut state = self.state.lock();
        loop {
            if let Some(settled) = Self::take_settled(&mut state) {
                return Some(settled);
            }
            // Relaxed: under the lock, which the settler takes too.
            self.sleeper.store(true, Ordering::Relaxed);
            match deadline {
                None => state = self.settled.wait(state),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        *state = State::Abandoned;
                        return None;
                    }
                    state = self.settled.wait_timeout(state, deadline - now);
                }
            }
        }
    }

    /// Polls for the settled outcome: registers the waker, *then* checks
    /// (under the lock that `answer` takes before its wake), so no wake-up
    /// is lost.
    pub(crate) fn poll_settled(&self, cx: &mut Context<'_>) -> Poll<Settled<Q, R>> {
        self.waker.register_by_ref(cx.waker());
        let mut state = self.state.lock();
        match Self::take_settled(&mut state) {
            Some(settled) => Poll::Ready(settled),
            None => Poll::Pending,
        }
    }

    /// The caller gives up: a member skips the query, a late answer is
    /// discarded.
    pub(crate) fn abandon(&self) {
        *self.state.lock() = State::Abandoned;
    }
}

/// The right to answer a deferred request, from any thread, at any time:
/// [`Request::defer`] hands it out with the query. Dropped without an
/// answer, it answers with a failure, so no caller waits forever.
#[cfg_attr(not(feature = "nats"), allow(dead_code))] // used by the NATS bridge
pub(crate) struct Responder<Q, R> {
    slot: Option<Arc<ReplySlot<Q, R>>>,
}

#[cfg_attr(not(feature = "nats"), allow(dead_code))] // used by the NATS bridge
impl<Q, R> Responder<Q, R> {
    /// Answers the call (the reply, or the failure's text).
    pub(crate) fn answer(mut self, answer: Result<R, String>) {
        if let Some(slot) = self.slot.take() {
            slot.settle(State::Done(answer));
        }
    }

    /// Gives the query back untaken: the caller sees no server.
    pub(crate) fn hand_back(mut self, query: Q) {
        if let Some(slot) = self.slot.take() {
            slot.settle(State::Unanswered(query));
        }
    }

    /// The member's time limit passed: the caller sees a timeout.
    pub(crate) fn expire(mut self) {
        if let Some(slot) = self.slot.take() {
            slot.settle(State::Expired);
        }
    }

    /// Whether the caller gave up (timed out, dropped its future): the
    /// answer would be discarded.
    pub(crate) fn abandoned(&self) -> bool {
        self.slot
            .as_ref()
            .is_none_or(|slot| matches!(*slot.state.lock(), State::Abandoned))
    }
}

impl<Q, R> Drop for Responder<Q, R> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            slot.settle(State::Done(Err(
                "the member answering the request stopped before its reply came".to_owned(),
            )));
        }
    }
}

/// A service request as its internal topic carries it: an `Arc` of the
/// reply slot, which holds the query. Exactly one member gets it (a
/// service's subscriptions are one group, and patterns never match its
/// topic), so it is cloned only if the engine ever copies it; dropping the
/// request settles a slot nobody settled (see [States](self#states)).
pub(crate) struct Request<Q, R> {
    pub(crate) slot: Arc<ReplySlot<Q, R>>,
}

#[cfg_attr(not(feature = "nats"), allow(dead_code))] // used by the NATS bridge
impl<Q, R> Request<Q, R> {
    /// Takes the query to answer it later through the [`Responder`];
    /// `None` if the caller gave up already (or another member took it).
    pub(crate) fn defer(&self) -> Option<(Q, Responder<Q, R>)> {
        let mut state = self.slot.state.lock();
        match std::mem::replace(&mut *state, State::Deferred) {
            State::Query(q) => Some((
                q,
                Responder {
                    slot: Some(self.slot.clone()),
                },
            )),
            other => {
                *state = other;
                None
            }
        }
    }
}

impl<Q, R> Clone for Request<Q, R> {
    fn clone(&self) -> Self {
        Request {
            slot: self.slot.clone(),
        }
    }
}

impl<Q, R> Drop for Request<Q, R> {
    fn drop(&mut self) {
        let slot = &self.slot;
        let mut state = slot.state.lock();
        let settled = match std::mem::replace(&mut *state, State::Abandoned) {
            State::Query(q) => State::Unanswered(q),
            State::Taken => State::Done(Err("the member handling the request stopped \
                 without answering (it panicked or was dropped)"
                .to_owned())),
            other => {
                *state = other;
                return;
            }
        };
        slot.finish(state, settled);
    }
}

#[cfg(not(loom))]
crate::loom::thread_local! {
    static SLOTS: RefCell<Vec<(TypeId, Box<dyn Any>)>> = const { RefCell::new(Vec::new()) };
}

// loom's `thread_local!` has no `const` form.
#[cfg(loom)]
crate::loom::thread_local! {
    static SLOTS: RefCell<Vec<(TypeId, Box<dyn Any>)>> = RefCell::new(Vec::new());
}

/// A request for `query` and the caller's slot: from this thread's pool when
/// one is free (no allocation), otherwise a new one (kept in the pool while
/// it has room).
pub(crate) fn request<Q: Send + 'static, R: Send + 'static>(
    query: Q,
) -> (Request<Q, R>, Arc<ReplySlot<Q, R>>) {
    let mut query = Some(query);
    let pooled = SLOTS.try_with(|pools| {
        let mut pools = pools.try_borrow_mut().ok()?;
        let id = TypeId::of::<ReplySlot<Q, R>>();
        let at = match pools.iter().position(|(t, _)| *t == id) {
            Some(at) => at,
            None => {
                let fresh: Vec<Arc<ReplySlot<Q, R>>> = Vec::new();
                pools.push((id, Box::new(fresh)));
                pools.len() - 1
            }
        };
        let pool = pools[at].1.downcast_mut::<Vec<Arc<ReplySlot<Q, R>>>>()?;
        Some(reuse::take(
            pool,
            query.take()?,
            |free, q| {
                *free.state.lock() = State::Query(q);
                // Relaxed: the slot is this thread's alone (`get_mut`).
                free.ready.store(false, Ordering::Relaxed);
                free.sleeper.store(false, Ordering::Relaxed);
            },
            ReplySlot::new,
            ReplySlot::spare,
        ))
    });
    let slot = match (pooled.ok().flatten(), query) {
        (Some(slot), _) => slot,
        // During thread teardown the pool may be gone.
        (None, Some(q)) => Arc::new(ReplySlot::new(q)),
        (None, None) => unreachable!("the query is moved into a slot only on success"),
    };
    (Request { slot: slot.clone() }, slot)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn settled(slot: &ReplySlot<u32, u32>) -> Option<Settled<u32, u32>> {
        slot.wait(Some(Instant::now()), false)
    }

    #[test]
    fn a_deferred_request_is_settled_by_its_responder_not_by_the_request() {
        let (req, slot) = super::request::<u32, u32>(7);
        let (query, responder) = req.defer().expect("the query is there");
        assert_eq!(query, 7);
        assert!(req.defer().is_none(), "taken once");
        drop(req); // the worker is done with the event: no settlement
        assert!(settled(&slot).is_none());
        // `wait` with a passed deadline abandoned the slot; start over.
        let (req, slot) = super::request::<u32, u32>(7);
        let (_, responder2) = req.defer().unwrap();
        drop(req);
        responder2.answer(Ok(49));
        assert!(matches!(
            slot.wait(None, false),
            Some(Settled::Answered(Ok(49)))
        ));
        assert!(responder.abandoned(), "the first caller gave up");
    }

    #[test]
    fn a_responder_hands_back_expires_or_fails_when_dropped() {
        let (req, slot) = super::request::<u32, u32>(1);
        let (q, responder) = req.defer().unwrap();
        responder.hand_back(q);
        assert!(matches!(
            slot.wait(None, false),
            Some(Settled::Unanswered(1))
        ));

        let (req, slot) = super::request::<u32, u32>(2);
        let (_, responder) = req.defer().unwrap();
        responder.expire();
        assert!(matches!(slot.wait(None, false), Some(Settled::Expired)));

        let (req, slot) = super::request::<u32, u32>(3);
        let (_, responder) = req.defer().unwrap();
        drop(responder);
        match slot.wait(None, false) {
            Some(Settled::Answered(Err(text))) => assert!(text.contains("stopped"), "{text}"),
            _ => panic!("a dropped responder answers with a failure"),
        }
    }

    /// A forgotten responder never settles the slot (no `Drop` runs):
    /// only a caller with a deadline gets out, as a timeout. The crate's
    /// one user of `defer` (the NATS bridge) always answers, hands back,
    /// expires or drops its responder.
    #[test]
    fn a_forgotten_responder_leaves_only_callers_with_a_deadline_an_exit() {
        let (req, slot) = super::request::<u32, u32>(5);
        let (_, responder) = req.defer().unwrap();
        std::mem::forget(responder);
        drop(req); // the worker is done with the event: no settlement
        let deadline = Instant::now() + std::time::Duration::from_millis(1);
        assert!(slot.wait(Some(deadline), false).is_none(), "a timeout");
        // The slot is abandoned now: nothing is waiting on it.
        assert!(matches!(*slot.state.lock(), State::Abandoned));
    }

    #[test]
    fn an_answer_after_the_caller_gave_up_is_discarded() {
        let (req, slot) = super::request::<u32, u32>(4);
        let (_, responder) = req.defer().unwrap();
        slot.abandon();
        assert!(responder.abandoned());
        responder.answer(Ok(16));
        assert!(settled(&slot).is_none());
    }
}
