//! A subscription's handler chain as its worker calls it, and the batch loop
//! for a lane that has only that one subscription on its worker.
//!
//! A worker holds each chain (layers and handler) as one boxed [`Handles`].
//! Where a lane feeds several subscriptions on a worker, the drain calls each
//! chain per event through the box ([`dispatch`](crate::runtime::dispatch)). Where it feeds one — the
//! common 1 producer → 1 subscriber shape — the drain hands the whole batch
//! to the chain instead ([`Handles::run_alone`]): one dynamic call per
//! batch, and inside it the ring loop, the building of each [`Event`] and the
//! chain are one function, compiled for that chain. The handler is inlined
//! into the loop, and the event fields it never reads are never written.
//!
//! The loop stops at the first event that is neither handled nor skipped (an
//! `Err`, or a panic, caught per event) and hands that event back as a
//! [`Halt`]; the caller sends it down the subscription's failure path
//! (counts, retries, dead letters) and resumes the batch. Everything the
//! general path guarantees holds here too: per-producer order, no call after
//! the subscription is removed, no call for events published before it was
//! added, the trace context set per event.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::event::meta::Event;
use crate::event::name::TopicName;
use crate::event::trace::HandlingBatch;
use crate::lane::consumer::LaneConsumer;
use crate::layer::{Disposition, Handle, Outcome};
use crate::loom::sync::atomic::AtomicBool;
use crate::runtime::delivery::event;
use crate::runtime::sub_state::sees;

/// A handler chain, callable per event or per batch.
pub(crate) trait Handles<T>: Send {
    /// Runs the chain on one event.
    fn handle(&mut self, event: &Event<T>) -> Outcome;

    /// Runs the chain on the events `run` has left, in order, for a
    /// subscription that started at topic version `since` and is live while
    /// `removed` is unset. Stops early with the first event that failed.
    fn run_alone(&mut self, run: &mut Alone<'_, T>, since: u64, removed: &AtomicBool) -> Halt<T>;
}

/// The type-erased chain a worker keeps per subscription.
pub(crate) type BoxedHandler<T> = Box<dyn Handles<T>>;

/// Boxes `chain` for a worker.
pub(crate) fn boxed<T: 'static, H: Handle<T>>(chain: H) -> BoxedHandler<T> {
    Box::new(Chain(chain))
}

/// A chain with its loops compiled for it.
struct Chain<H>(H);

impl<T: 'static, H: Handle<T>> Handles<T> for Chain<H> {
    #[inline]
    fn handle(&mut self, event: &Event<T>) -> Outcome {
        self.0.handle(event)
    }

    fn run_alone(&mut self, run: &mut Alone<'_, T>, since: u64, removed: &AtomicBool) -> Halt<T> {
        run.run(since, removed, |ev| self.0.handle(ev))
    }
}

/// Why [`Handles::run_alone`] returned.
pub(crate) enum Halt<T> {
    /// Every event of the run was taken.
    Done,
    /// The chain returned `Err` for this event.
    Failed(Event<T>, Box<str>),
    /// The chain panicked on this event.
    Panicked(Event<T>, Box<dyn Any + Send>),
}

/// A batch of one lane's ring for a subscription alone on its worker, and
/// what became of its events so far.
pub(crate) struct Alone<'a, T> {
    lane: &'a mut LaneConsumer<T>,
    /// Events still to take.
    left: usize,
    name: &'static TopicName,
    salt: u64,
    context: &'a HandlingBatch,
    /// Events taken from the ring.
    pub(crate) taken: usize,
    /// Of those, handled / skipped by the chain.
    pub(crate) handled: u64,
    pub(crate) skipped: u64,
    /// Events the subscription did not see (published before it existed,
    /// or taken after it was removed).
    pub(crate) discarded: u64,
    /// Panics contained in events' `Drop`.
    pub(crate) stray: u64,
}

impl<'a, T> Alone<'a, T> {
    /// `count` events of `lane` (all counted ready), for topic `name`, with
    /// `context` entered for the batch.
    pub(crate) fn new(
        lane: &'a mut LaneConsumer<T>,
        count: usize,
        name: &'static TopicName,
        salt: u64,
        context: &'a HandlingBatch,
    ) -> Self {
        Alone {
            lane,
            left: count,
            name,
            salt,
            context,
            taken: 0,
            handled: 0,
            skipped: 0,
            discarded: 0,
            stray: 0,
        }
    }

    /// The loop of [`Handles::run_alone`], for the chain `f`.
    #[inline(always)]
    fn run(
        &mut self,
        since: u64,
        removed: &AtomicBool,
        mut f: impl FnMut(&Event<T>) -> Outcome,
    ) -> Halt<T> {
        let (name, salt, context) = (self.name, self.salt, self.context);
        let (mut handled, mut skipped, mut discarded, mut stray) = (0, 0, 0, 0);
        let mut halt = Halt::Done;
        let taken = self.lane.consume_while(self.left, |value, d| {
            let ev = event(value, d, name, salt);
            if !sees(ev.meta.version, since, removed) {
                discarded += 1;
                ev.drop_contained(&mut stray);
                return true;
            }
            context.event(ev.meta.seq, &ev.meta.lineage);
            match catch_unwind(AssertUnwindSafe(|| f(&ev))) {
                Ok(Ok(Disposition::Handled)) => handled += 1,
                Ok(Ok(Disposition::Skipped)) => skipped += 1,
                Ok(Err(error)) => {
                    // The event goes on to the failure path (it drops there).
                    halt = Halt::Failed(ev, error);
                    return false;
                }
                Err(payload) => {
                    halt = Halt::Panicked(ev, payload);
                    return false;
                }
            }
            ev.drop_contained(&mut stray);
            true
        });
        self.left -= taken;
        self.taken += taken;
        self.handled += handled;
        self.skipped += skipped;
        self.discarded += discarded;
        self.stray += stray;
        halt
    }
}
