//! [`EventStream`]: a subscription consumed by an async task.
//!
//! A stream is an ordinary subscription (plain, or one member of a group)
//! whose handler, on its worker, moves an owned copy of each event — with a
//! share of its receipt — into a bounded SPSC ring ([`ring`](crate::core::ring))
//! that the stream drains in `poll_next`. The worker is the ring's only
//! producer (a subscription runs on one worker), the stream its only consumer
//! (`poll_next` takes `&mut self`).
//!
//! # Full buffer
//!
//! When the ring is full the handler waits for room, as a slow handler
//! would: the worker's other lanes wait too, and the topic's lane fills up
//! behind it, so `Block` producers wait and `Fail` producers get their event
//! back. Nothing is dropped. The wait ends when
//!
//! 1. the stream takes an event (it wakes the worker, see below);
//! 2. the stream is dropped: the event in hand joins the *spill* queue
//!    (below) with the others the stream did not yield — a group member
//!    hands them all back to its group ([`stream_back`](super::stream_back)),
//!    a plain subscription's are dropped with the stream, as guarantee 1
//!    allows for a subscription being removed — so unsubscribing never
//!    hangs on a stream nobody polls;
//! 3. the engine starts shutting down: the handler then stops waiting and
//!    appends to an unbounded *spill* queue, so shutdown's drain never hangs
//!    on a stream nobody polls either; the stream yields the spilled events
//!    after the ring's, in order, then ends.
//!
//! # Orderings
//!
//! - Events: the ring's own stamp Release/Acquire pair.
//! - Task wake-up: the handler pushes, then `waker.wake()`; `poll_next`
//!   registers its waker, then pops again ("register, then re-check"). A
//!   plain or pattern stream wakes its task once per drained batch, after
//!   pushing the batch's last event ([`Event::end_of_batch`]): its handler
//!   is called for every event of each batch it takes part in (events of
//!   one ring reach a subscription from its start version on, so the
//!   batch's last event is never skipped while an earlier one was pushed),
//!   so every push is followed by a wake before the worker moves on. A full
//!   ring wakes at once. A group member may not get its batch's last
//!   event: it wakes per event.
//! - Worker wake-up (store-buffering shape, asymmetric fences as for
//!   parking, [`fence`](crate::sys::fence)): the waiting handler stores
//!   `room_wanted`, runs `fence::heavy()`, then re-tries the push (which
//!   loads the ring's head); the stream pops (storing head), runs
//!   `fence::light()`, then loads `room_wanted`. One of the two sees the
//!   other. The wait itself is a condvar under `room_lock`, with a short
//!   timeout that only bounds how late a shutdown that starts meanwhile is
//!   noticed. The stream wakes a waiting handler once it has taken half a
//!   ring since its last wake-up, or when it finds the ring dry, so the
//!   handler refills half the ring per wake-up rather than one slot; a
//!   stream that stops polling before either leaves the handler to its
//!   timeout, after which it finds the room it freed.
//! - `spilled` is stored (Release) after the handler's last ring push and
//!   loaded (Acquire) by `poll_next` *before* it pops the ring, so when it
//!   sees the flag it also sees every event pushed to the ring before the
//!   first spilled one.
//! - `ended` is stored (Release) when the handler is dropped, after its last
//!   push; `poll_next` loads it (Acquire) after registering, then drains.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;

use super::groups::Group;
use super::handle::Topic;
use super::pattern::{Pattern, PatternGroup};
use super::stream_back::{Back, HandBack, Handoff};
use super::subscribe::SubscribeChain;
use crate::core::ring::{self, Consumer, Producer};
use crate::event::meta::Event;
use crate::loom::future::AtomicWaker;
use crate::loom::sync::atomic::{AtomicBool, Ordering};
use crate::loom::sync::{Arc, Condvar, Mutex};
use crate::runtime::subscription::{SubscribeOptions, Subscription};
use crate::runtime::workers::{Runtime, RUNNING};
use crate::sys::error::SubscribeError;
use crate::sys::fence;

/// The most events a stream buffers beyond its lane (fewer if the engine's
/// `lane_capacity` is smaller).
///
/// ```
/// assert!(pinbus::STREAM_BUFFER.is_power_of_two());
/// ```
pub const STREAM_BUFFER: usize = 256;

/// How long a handler waiting for room in a full stream buffer sleeps
/// before it looks at the engine's state again (a stream pop or drop wakes
/// it at once).
const ROOM_RECHECK: Duration = Duration::from_millis(2);

/// What the stream and its handler share.
struct StreamShared<T> {
    /// The task polling the stream.
    waker: AtomicWaker,
    /// Set by the stream's `Drop`: the handler stops waiting for room.
    dropped: AtomicBool,
    /// Set when the handler is dropped: nothing more will arrive.
    ended: AtomicBool,
    /// A handler is waiting for room in the ring (module docs, Orderings).
    room_wanted: AtomicBool,
    room_lock: Mutex<()>,
    room_cv: Condvar,
    /// Set once the handler has spilled: later events go to `spill` too.
    spilled: AtomicBool,
    spill: Mutex<VecDeque<Event<T>>>,
    /// Which end hands back a group member's events.
    handoff: Mutex<Handoff<T>>,
}

impl<T> StreamShared<T> {
    fn wake_worker(&self) {
        let _held = self.room_lock.lock();
        self.room_cv.notify_all();
    }
}

/// The handler's end: pushes owned events into the ring.
struct StreamSender<T> {
    ring: Producer<Event<T>>,
    shared: Arc<StreamShared<T>>,
    runtime: Arc<Runtime>,
    /// Wake the task once per drained batch (on the batch's last event)
    /// rather than per event: for streams whose handler sees every event
    /// of each batch it takes part in (plain and pattern subscriptions). A
    /// group member may not get its batch's last event, so it wakes per
    /// event.
    per_batch: bool,
}

impl<T: Clone> StreamSender<T> {
    fn send(&mut self, ev: &Event<T>) {
        let owned = Event::tracked(
            ev.value.clone(),
            ev.topic,
            // The task reads it after this batch: fix the time now.
            ev.meta.resolved(),
            // The stream's own share: the receipt completes when the stream
            // yields the event, not when this handler returns.
            ev.receipt.as_ref().map(|r| r.another()),
        );
        let shared = &*self.shared;
        if shared.spilled.load(Ordering::Relaxed) {
            // Only this thread stores `spilled`: Relaxed suffices here.
            return self.spill(owned);
        }
        let wake_now = !self.per_batch || ev.end_of_batch();
        let mut owned = match self.ring.push(owned) {
            Ok(()) => {
                if wake_now {
                    shared.waker.wake();
                }
                return;
            }
            Err(owned) => owned,
        };
        // Full: the task must run to make room, whatever the batch.
        shared.waker.wake();
        loop {
            // Acquire: pairs with the stream's Release store in `Drop`.
            if shared.dropped.load(Ordering::Acquire) {
                // The stream is going away: keep the event with the others
                // it did not yield (a group member hands them back).
                return shared.spill.lock().push_back(owned);
            }
            if self.runtime.state() != RUNNING {
                return self.spill(owned);
            }
            let held = shared.room_lock.lock();
            shared.room_wanted.store(true, Ordering::Relaxed);
            // Pairs with the `fence::light()` in `EventStream::take`.
            fence::heavy();
            owned = match self.ring.push(owned) {
                Ok(()) => {
                    shared.room_wanted.store(false, Ordering::Relaxed);
                    if wake_now {
                        shared.waker.wake();
                    }
                    return;
                }
                Err(owned) => owned,
            };
            if shared.dropped.load(Ordering::Acquire) {
                shared.room_wanted.store(false, Ordering::Relaxed);
                return shared.spill.lock().push_back(owned);
            }
            drop(shared.room_cv.wait_timeout(held, ROOM_RECHECK));
            shared.room_wanted.store(false, Ordering::Relaxed);
            owned = match self.ring.push(owned) {
                Ok(()) => {
                    if wake_now {
                        shared.waker.wake();
                    }
                    return;
                }
                Err(owned) => owned,
            };
        }
    }

    /// Appends to the spill queue (engine shutting down, ring full).
    #[cold]
    fn spill(&self, owned: Event<T>) {
        self.shared.spill.lock().push_back(owned);
        // Release: the ring pushes before it are visible to a `poll_next`
        // that sees the flag.
        self.shared.spilled.store(true, Ordering::Release);
        self.shared.waker.wake();
    }
}

impl<T> Drop for StreamSender<T> {
    /// The subscription is gone (unsubscribed, or its worker stopped):
    /// nothing more arrives; the stream yields what it holds, then ends.
    fn drop(&mut self) {
        // Release: pairs with the Acquire in `poll_next`; every push came
        // before.
        self.shared.ended.store(true, Ordering::Release);
        self.shared.waker.wake();
        Handoff::handler_dropped(&self.shared.handoff, &self.shared.spill);
    }
}

/// A subscription consumed as a [`Stream`] of owned [`Event`]s, from
/// [`Topic::subscribe_stream`] or [`Group::subscribe_stream`]. Runtime
/// agnostic: it works under tokio, smol, async-std or `futures::executor`.
///
/// The subscription's handler, on its worker, moves a copy of each event
/// (one `T::clone`; wrap large payloads in `Arc`) into a bounded buffer of
/// up to [`STREAM_BUFFER`] events; the stream yields them in the
/// subscription's order. The task is woken by the worker that buffers
/// events, once per batch it drained: no polling loop.
///
/// ## Backpressure
///
/// Lossless: a consumer that stops polling holds its lane like a slow
/// handler. Once the buffer is full the handler waits for room — its
/// worker's other lanes wait too — and then the lane fills up, so `Block`
/// producers wait and `Fail` producers get the event back. Give a slow
/// stream a worker of its own
/// ([`SubscribeOptions::worker`](crate::SubscribeOptions::worker) for the
/// other subscriptions) if that matters.
///
/// ## Handled, receipts, metrics
///
/// A stream has handled an event when it yields it: a
/// [`Receipt`](crate::Receipt) completes then. Subscription metrics count an
/// event as handled when it enters the stream's buffer (at most the buffer's
/// size ahead of what was yielded).
///
/// ## Dropping and shutdown
///
/// Dropping the stream unsubscribes (guarantee 4: when the drop returns the
/// handler is not running and never runs again); what it buffered but did
/// not yield is dropped, as for any subscription removed before it got to
/// an event (their receipts complete). It never hangs, even on a full
/// buffer. At shutdown the stream yields everything the engine drained to it
/// — past the buffer's bound if need be, so shutdown does not wait for the
/// task — and then ends (`None`).
///
/// ## Cancel safety
///
/// `poll_next` yields an event only in `Poll::Ready`, so a `next()` future
/// dropped before it completes (in `select!`, under a timeout) loses
/// nothing: the event stays buffered for the next call.
///
/// # Examples
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use futures::StreamExt;
/// use pinbus::{Engine, EventStream};
/// let engine = Engine::builder().workers(1).build()?;
/// let orders = engine.topic::<u64>("orders")?;
/// let mut s: EventStream<u64> = orders.subscribe_stream()?;
/// orders.publish(1)?;
/// orders.publish(2)?;
/// futures::executor::block_on(async {
///     assert_eq!(*s.next().await.unwrap(), 1);
///     assert_eq!(*s.next().await.unwrap(), 2);
/// });
/// # Ok(()) }
/// ```
pub struct EventStream<T> {
    ring: Consumer<Event<T>>,
    shared: Arc<StreamShared<T>>,
    sub: Option<Subscription>,
    /// A group member's group, to hand its unyielded events back to.
    hand_back: Option<Back<T>>,
    /// Events taken since the stream last woke a waiting handler: it wakes
    /// one only every half ring (or when the ring runs dry), so a handler
    /// waiting for room refills half the ring per wake-up instead of one
    /// slot (a wake-up per event costs a context switch each).
    since_wake: usize,
}

impl<T> EventStream<T> {
    /// The next buffered event, if any; completes its receipt share.
    fn take(&mut self) -> Option<Event<T>> {
        let shared = &*self.shared;
        // Before the pop: pairs with the Release in `StreamSender::spill`.
        let spilled = shared.spilled.load(Ordering::Acquire);
        let mut ev = match self.ring.pop() {
            Some((_, ev)) => {
                // The head store is done; pairs with `fence::heavy()` in
                // `StreamSender::send`.
                fence::light();
                self.since_wake += 1;
                if self.since_wake >= self.ring.capacity() / 2
                    && shared.room_wanted.load(fence::AFTER_LIGHT)
                {
                    self.since_wake = 0;
                    shared.wake_worker();
                }
                ev
            }
            None => {
                // Dry: a handler that waits must hear of the room now.
                fence::light();
                if shared.room_wanted.load(fence::AFTER_LIGHT) {
                    self.since_wake = 0;
                    shared.wake_worker();
                }
                if !spilled {
                    return None;
                }
                shared.spill.lock().pop_front()?
            }
        };
        drop(ev.receipt.take());
        Some(ev)
    }

    /// The subscription behind the stream (name, worker, stats).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use pinbus::Engine;
    /// let engine = Engine::builder().workers(1).build()?;
    /// let s = engine.topic::<u8>("t")?.subscribe_stream()?;
    /// assert_eq!(s.subscription().topic(), "t");
    /// # Ok(()) }
    /// ```
    pub fn subscription(&self) -> &Subscription {
        // Present until `Drop`.
        self.sub.as_ref().unwrap_or_else(|| unreachable!())
    }
}

impl<T> Stream for EventStream<T> {
    type Item = Event<T>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event<T>>> {
        let this = self.get_mut();
        if let Some(ev) = this.take() {
            return Poll::Ready(Some(ev));
        }
        // Register, then re-check (module docs, Orderings).
        this.shared.waker.register_by_ref(cx.waker());
        // Acquire: pairs with the Release in `StreamSender::drop`; loaded
        // before the last look, so nothing pushed before it is missed.
        let ended = this.shared.ended.load(Ordering::Acquire);
        match this.take() {
            Some(ev) => Poll::Ready(Some(ev)),
            None if ended => Poll::Ready(None),
            None => Poll::Pending,
        }
    }
}

impl<T> Drop for EventStream<T> {
    fn drop(&mut self) {
        // Release: pairs with the Acquire in `StreamSender::send`.
        self.shared.dropped.store(true, Ordering::Release);
        self.shared.wake_worker();
        if let Some(sub) = self.sub.take() {
            sub.unsubscribe();
        }
        // A group member hands back what it took and did not yield, now or,
        // if its handler may still run (the drop was on a worker, where
        // `unsubscribe` cannot wait), from the handler's drop; otherwise the
        // ring and the spill drop what they hold with `self` (a removed
        // subscription's events).
        if let Some(back) = self.hand_back.take() {
            Handoff::stream_dropped(
                &self.shared.handoff,
                &mut self.ring,
                back,
                &self.shared.spill,
            );
        }
    }
}

impl<T> fmt::Debug for EventStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventStream")
            .field("subscription", &self.sub)
            .finish_non_exhaustive()
    }
}

/// The stream's end before it has its subscription.
struct Receiving<T> {
    ring: Consumer<Event<T>>,
    shared: Arc<StreamShared<T>>,
}

impl<T> Receiving<T> {
    fn with(self, sub: Subscription) -> EventStream<T> {
        EventStream {
            ring: self.ring,
            shared: self.shared,
            sub: Some(sub),
            hand_back: None,
            since_wake: 0,
        }
    }
}

/// A stream's two ends: the handler to subscribe, and the stream's end.
fn stream_parts<T: Clone + Send + 'static>(
    runtime: &Arc<Runtime>,
    per_batch: bool,
) -> (impl FnMut(&Event<T>) + Send + 'static, Receiving<T>) {
    let capacity = STREAM_BUFFER.min(runtime.lane_capacity).max(1);
    let (tx, rx) = ring::channel(capacity.next_power_of_two());
    let shared = Arc::new(StreamShared {
        waker: AtomicWaker::new(),
        dropped: AtomicBool::new(false),
        ended: AtomicBool::new(false),
        room_wanted: AtomicBool::new(false),
        room_lock: Mutex::new(()),
        room_cv: Condvar::new(),
        spilled: AtomicBool::new(false),
        spill: Mutex::new(VecDeque::new()),
        handoff: Mutex::new(Handoff::Open),
    });
    let mut sender = StreamSender {
        ring: tx,
        shared: shared.clone(),
        runtime: runtime.clone(),
        per_batch,
    };
    let rx = Receiving { ring: rx, shared };
    (move |ev: &Event<T>| sender.send(ev), rx)
}

impl<T: Clone + Send + 'static> Topic<T> {
    /// Subscribes an [`EventStream`]: every event published from now on, in
    /// per-producer order, as a [`Stream`] of owned events for an async
    /// task. Dropping the stream unsubscribes.
    ///
    /// # Errors
    ///
    /// [`SubscribeError::Closed`] after shutdown started.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use futures::StreamExt;
    /// use pinbus::Engine;
    /// let engine = Engine::builder().workers(1).build()?;
    /// let ticks = engine.topic::<u32>("ticks")?;
    /// let mut s = ticks.subscribe_stream()?;
    /// let receipt = ticks.publish_tracked(5)?;
    /// futures::executor::block_on(async {
    ///     let ev = s.next().await.unwrap();
    ///     assert_eq!((*ev, ev.topic()), (5, "ticks"));
    ///     receipt.await; // complete: the stream yielded it
    /// });
    /// # Ok(()) }
    /// ```
    pub fn subscribe_stream(&self) -> Result<EventStream<T>, SubscribeError> {
        let (handler, rx) = stream_parts(&self.shared.runtime, true);
        let sub = self.subscribe_via(handler, SubscribeOptions::new())?;
        Ok(rx.with(sub))
    }
}

impl<T: Clone + Send + 'static> Group<T> {
    /// Adds an [`EventStream`] as one member of the group: it yields the
    /// events the group hands this member. Dropping the stream removes the
    /// member, and the events it took but did not yield go back to the
    /// group (the next member to claim takes them first), so the group
    /// loses none — unless it was the last member (then, as for any group
    /// whose last member leaves, they are discarded and counted).
    ///
    /// # Errors
    ///
    /// As [`Group::subscribe`].
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use futures::StreamExt;
    /// use pinbus::Engine;
    /// let engine = Engine::builder().workers(1).build()?;
    /// let jobs = engine.topic::<u32>("jobs")?;
    /// let mut member = jobs.group("billing").subscribe_stream()?;
    /// jobs.publish(9)?;
    /// let ev = futures::executor::block_on(member.next()).unwrap();
    /// assert_eq!(*ev, 9);
    /// # Ok(()) }
    /// ```
    pub fn subscribe_stream(&self) -> Result<EventStream<T>, SubscribeError> {
        let (handler, rx) = stream_parts(&self.topic.shared.runtime, false);
        let sub = self.subscribe_via(handler, SubscribeOptions::new())?;
        let mut stream = rx.with(sub);
        stream.hand_back = HandBack::of(&self.topic.shared, &self.name).map(Back::Group);
        Ok(stream)
    }
}

impl<T: Clone + Send + 'static> Pattern<T> {
    /// Subscribes an [`EventStream`] to every topic the pattern matches,
    /// existing ones and those created later: one stream, fed by one
    /// worker, with each event's [`topic`](Event::topic) naming its source.
    /// Dropping the stream unsubscribes from all of them.
    ///
    /// # Errors
    ///
    /// [`SubscribeError::Closed`] after shutdown started.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use futures::StreamExt;
    /// use pinbus::Engine;
    /// let engine = Engine::builder().workers(1).build()?;
    /// let mut all = engine.pattern::<u32>("prices.*")?.subscribe_stream()?;
    /// engine.topic::<u32>("prices.eurusd")?.publish(11)?;
    /// let ev = futures::executor::block_on(all.next()).unwrap();
    /// assert_eq!((*ev, ev.topic()), (11, "prices.eurusd"));
    /// # Ok(()) }
    /// ```
    pub fn subscribe_stream(&self) -> Result<EventStream<T>, SubscribeError> {
        let (handler, rx) = stream_parts(&self.hub.runtime, true);
        let sub = self.subscribe_via(handler, SubscribeOptions::new())?;
        Ok(rx.with(sub))
    }
}

impl<T: Clone + Send + 'static> PatternGroup<T> {
    /// Adds an [`EventStream`] as one member of the group that spans the
    /// pattern's topics. Dropping the stream removes the member and, as a
    /// topic's group stream does ([`Group::subscribe_stream`]), hands the
    /// events it took and did not yield back to the group of each event's
    /// topic, in their order (discarded where it was that group's last
    /// member).
    ///
    /// # Errors
    ///
    /// As [`PatternGroup::subscribe`].
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use futures::StreamExt;
    /// use pinbus::Engine;
    /// let engine = Engine::builder().workers(1).build()?;
    /// let mut member = engine.pattern::<u32>("jobs.>")?.group("w").subscribe_stream()?;
    /// engine.topic::<u32>("jobs.eu.render")?.publish(3)?;
    /// let ev = futures::executor::block_on(member.next()).unwrap();
    /// assert_eq!(*ev, 3);
    /// # Ok(()) }
    /// ```
    pub fn subscribe_stream(&self) -> Result<EventStream<T>, SubscribeError> {
        let hub = &self.pattern().hub;
        let (handler, rx) = stream_parts(&hub.runtime, false);
        let sub = self.subscribe_via(handler, SubscribeOptions::new())?;
        let mut stream = rx.with(sub);
        stream.hand_back = Some(Back::pattern(hub.clone(), self.name()));
        Ok(stream)
    }
}
