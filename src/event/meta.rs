//! `Event<T>`: what a handler receives — the payload plus the metadata the
//! engine attaches at publish time.
//!
//! A lane slot holds only the payload and a 64-bit tag ([`lane`](crate::lane)); the worker
//! moves the payload out and builds the `Event` on its stack around it, with
//! metadata the lane's markers and the worker know. The topic name is a
//! pointer to an interned, immortal string (one per distinct name in the
//! process) and times are `u64` nanoseconds since a process-wide epoch.

use std::fmt;
use std::time::{Duration, Instant};

use crate::event::name::TopicName;
use crate::event::receipt::TrackerRef;
use crate::event::trace::{self, Lineage, Origin, TraceContext, TraceId};
use crate::sys::epoch::{dispatch_now, epoch};

/// Metadata attached to every event at publish time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Meta {
    /// Unique within the topic; see [`Event::seq`].
    pub(crate) seq: u64,
    /// Nanoseconds since [`epoch`]: the publisher's timestamp, or 0 = the
    /// dispatch clock of the batch it is delivered in ([`Meta::published_nanos`]).
    pub(crate) published: u64,
    /// The trace it joins and its parent span, ids derived on demand.
    pub(crate) lineage: Lineage,
    /// Delivery attempt, starting at 1.
    pub(crate) attempt: u32,
    /// Last event of the batch the worker drained (see
    /// [`Event::end_of_batch`]).
    pub(crate) end_of_batch: bool,
    /// The topic's random salt (`TopicShared::salt`): root events' trace and
    /// span ids are derived from it and `seq`, so no two topics, engines or
    /// processes share them.
    pub(crate) salt: u64,
    /// The topic snapshot version the publisher used; compared with a
    /// subscription's start version.
    pub(crate) version: u64,
}

impl Meta {
    /// The publish time in nanoseconds since [`epoch`]: the publisher's
    /// timestamp, or else the dispatch clock of the batch being handled on
    /// this thread ([`dispatch_now`]).
    #[inline]
    pub(crate) fn published_nanos(&self) -> u64 {
        if self.published != 0 {
            self.published
        } else {
            dispatch_now()
        }
    }

    /// The same metadata with the publish time fixed: for an event kept
    /// past the batch it was delivered in (a retry, a stream item), which
    /// the next batch's clock would no longer describe.
    #[inline]
    pub(crate) fn resolved(self) -> Meta {
        Meta {
            published: self.published_nanos(),
            ..self
        }
    }
}

/// An event as handlers see it: the payload (`Deref<Target = T>`) plus its
/// metadata.
///
/// Handlers receive `&Event<T>` pointing into the lane slot; the event is
/// dropped after every subscription on that lane has seen it.
///
/// # Examples
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use pinbus::Engine;
/// let engine = Engine::builder().workers(1).build()?;
/// let prices = engine.topic::<u64>("prices")?;
/// prices.subscribe(|ev| {
///     let price: u64 = **ev;                // the payload, through Deref
///     assert_eq!(ev.topic(), "prices");
///     assert_eq!(ev.attempt(), 1);
///     assert!(ev.trace_id().is_valid());
///     let _ = (price, ev.seq(), ev.published_at());
/// })?;
/// prices.publish(42)?;
/// engine.shutdown();
/// # Ok(()) }
/// ```
pub struct Event<T> {
    pub(crate) meta: Meta,
    pub(crate) topic: &'static TopicName,
    pub(crate) value: T,
    /// The lane's share of a tracked event's receipt: held while the event
    /// (or a retry copy of it) is alive, so the receipt completes after the
    /// last attempt or the dead letter.
    pub(crate) receipt: Option<TrackerRef>,
}

impl<T> Event<T> {
    #[cfg(test)]
    pub(crate) fn new(value: T, topic: &'static TopicName, meta: Meta) -> Self {
        Event {
            meta,
            topic,
            value,
            receipt: None,
        }
    }

    /// The same, holding a receipt share.
    #[inline(always)]
    pub(crate) fn tracked(
        value: T,
        topic: &'static TopicName,
        meta: Meta,
        receipt: Option<TrackerRef>,
    ) -> Self {
        Event {
            meta,
            topic,
            value,
            receipt,
        }
    }

    /// Drops the event on an engine thread: the payload's `Drop` (user
    /// code) is contained, a panic counted in `stray`; then the receipt
    /// share, so the receipt completes after the payload is gone. Moves
    /// only the payload into the containment, not the whole event.
    #[inline(always)]
    pub(crate) fn drop_contained(self, stray: &mut u64) {
        let Event { value, receipt, .. } = self;
        crate::sys::contain::drop_contained(value, stray);
        drop(receipt);
    }

    /// The payload (also reachable through `Deref`).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let names = engine.topic::<String>("names")?;
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// names.subscribe(move |ev| tx.send(ev.get().len()).unwrap())?; // or `ev.len()`
    /// names.publish("pinbus".to_owned())?;
    /// assert_eq!(rx.recv()?, 6);
    /// # Ok(()) }
    /// ```
    pub fn get(&self) -> &T {
        &self.value
    }

    /// The event's sequence number: unique within its topic, and strictly
    /// increasing for the events one thread publishes to the topic. A single
    /// producer thread gets consecutive numbers from 0; several producer
    /// threads draw blocks of numbers, so the topic-wide sequence has gaps and
    /// is not a global order.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let ticks = engine.topic::<u32>("ticks")?;
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// ticks.subscribe(move |ev| tx.send(ev.seq()).unwrap())?;
    /// ticks.publish_batch([10, 20, 30])?; // one producer thread: 0, 1, 2
    /// assert_eq!(rx.iter().take(3).collect::<Vec<_>>(), [0, 1, 2]);
    /// # Ok(()) }
    /// ```
    pub fn seq(&self) -> u64 {
        self.meta.seq
    }

    /// The name of the topic the event was published to.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// engine.pattern::<u32>("orders.*")?.subscribe(move |ev| tx.send(ev.topic().to_owned()).unwrap())?;
    /// engine.topic::<u32>("orders.paid")?.publish(1)?;
    /// assert_eq!(rx.recv()?, "orders.paid");
    /// # Ok(()) }
    /// ```
    pub fn topic(&self) -> &str {
        self.topic.as_str()
    }

    /// When the event was published — exactly, if its topic was created with
    /// `TopicOptions::timestamps(true)` (one clock read per `publish`, or per
    /// `publish_batch`). Otherwise (the default) publishers read no clock and
    /// this is the worker's dispatch clock: read the first time an event of
    /// the batch the worker took from the lane asks for it, and the same for
    /// every event of that batch, so it is an upper bound on the publish time
    /// and a lower bound on the time of the call. (A worker reads no clock
    /// for events whose time nobody asks for; an event the engine keeps past
    /// its handler call — a retry, a dead letter, a stream item — has its
    /// time fixed before it leaves the worker.)
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Instant;
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let ticks = engine.topic::<u32>("ticks")?;
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// ticks.subscribe(move |ev| tx.send((ev.published_at(), Instant::now())).unwrap())?;
    /// ticks.publish(1)?;
    /// let (published, handled) = rx.recv()?;
    /// assert!(published <= handled); // a lower bound on the time of the call
    /// # Ok(()) }
    /// ```
    pub fn published_at(&self) -> Instant {
        epoch() + Duration::from_nanos(self.meta.published_nanos())
    }

    /// Whether this is the last event of the batch its worker took from the
    /// lane in one go, as the Disruptor's `endOfBatch`: a handler that
    /// buffers work (writes, acknowledgements) can flush once per batch
    /// instead of once per event. A worker takes at most `drain_batch`
    /// events at a time from each producer's ring of a lane (a consumer
    /// group's member, from the group's rings together), so this is true
    /// at least once every `drain_batch` events, and on the last event of a
    /// burst. A retry is delivered on its own: always true.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pinbus::Engine;
    /// use std::sync::mpsc;
    /// let engine = Engine::builder().workers(1).build()?;
    /// let writes = engine.topic::<u32>("writes")?;
    /// let (tx, rx) = mpsc::channel();
    /// let mut buffered = Vec::new();
    /// writes.subscribe(move |ev| {
    ///     buffered.push(**ev);
    ///     if ev.end_of_batch() {
    ///         // One flush per batch.
    ///         let _ = tx.send(std::mem::take(&mut buffered));
    ///     }
    /// })?;
    /// writes.publish_batch(0..100)?;
    /// engine.shutdown();
    /// let flushed: Vec<u32> = rx.iter().flatten().collect();
    /// assert_eq!(flushed, (0..100).collect::<Vec<_>>());
    /// # Ok(()) }
    /// ```
    pub fn end_of_batch(&self) -> bool {
        self.meta.end_of_batch
    }

    /// Which delivery attempt this is: 1 for the first.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// use pinbus::{Engine, RetryPolicy, SubscribeOptions};
    /// let engine = Engine::builder().workers(1).build()?;
    /// let jobs = engine.topic::<u32>("jobs")?;
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// let retry = RetryPolicy::exponential(Duration::from_millis(1), Duration::from_millis(1));
    /// jobs.subscribe_with(
    ///     move |ev| { tx.send(ev.attempt()).unwrap(); if ev.attempt() == 1 { Err("try again") } else { Ok(()) } },
    ///     SubscribeOptions::new().retry(retry),
    /// )?;
    /// jobs.publish(1)?;
    /// assert_eq!(rx.recv()?, 1);
    /// assert_eq!(rx.recv()?, 2); // the retry, about 1 ms later
    /// # Ok(()) }
    /// ```
    pub fn attempt(&self) -> u32 {
        self.meta.attempt
    }

    /// The trace this event belongs to. An event published while a trace
    /// context was current on the publishing thread — inside a handler (the
    /// handled event's trace), or under [`TraceContext::enter`] — joins that
    /// trace. Any other event starts a trace of its own, with an id derived
    /// from its topic and sequence number. The id is the same for every
    /// subscription that receives the event.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let orders = engine.topic::<u32>("orders")?;
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// for _ in 0..2 {
    ///     let tx = tx.clone();
    ///     orders.subscribe(move |ev| tx.send(ev.trace_id()).unwrap())?;
    /// }
    /// orders.publish(1)?;
    /// let (a, b) = (rx.recv()?, rx.recv()?);
    /// assert_eq!(a, b); // the same for every subscription
    /// assert!(a.is_valid());
    /// # Ok(()) }
    /// ```
    pub fn trace_id(&self) -> TraceId {
        let own = Origin {
            salt: self.meta.salt,
            seq: self.meta.seq,
        };
        TraceId::from_u128(trace::join(self.meta.lineage.trace(own)))
    }

    /// This event's own span id: derived from its topic and sequence
    /// number, the same for every subscription that receives it, never 0.
    /// Events published while handling it name it as their parent span.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let orders = engine.topic::<u32>("orders")?;
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// orders.subscribe(move |ev| tx.send(ev.span_id()).unwrap())?;
    /// orders.publish(1)?;
    /// assert_ne!(rx.recv()?, 0);
    /// # Ok(()) }
    /// ```
    pub fn span_id(&self) -> u64 {
        trace::span_of(self.meta.salt, self.meta.seq)
    }

    /// This event's trace context: its trace id and its own span id — what
    /// a `traceparent` header for work caused by this event should carry.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pinbus::Engine;
    /// use std::sync::mpsc;
    /// let engine = Engine::builder().workers(1).build()?;
    /// let orders = engine.topic::<u32>("orders")?;
    /// let (tx, rx) = mpsc::channel();
    /// orders.subscribe(move |ev| {
    ///     let _ = tx.send(ev.trace_context().to_traceparent());
    /// })?;
    /// orders.publish(1)?;
    /// let header = rx.recv()?;
    /// assert!(pinbus::TraceContext::from_traceparent(&header).is_some());
    /// engine.shutdown();
    /// # Ok(()) }
    /// ```
    pub fn trace_context(&self) -> TraceContext {
        TraceContext::new(self.trace_id(), self.span_id())
    }

    /// The parent span: the span id of the event whose handler published
    /// this one, or of the [`TraceContext`] entered when it was published;
    /// `None` for a root event.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let (orders, emails) = (engine.topic::<u32>("orders")?, engine.topic::<u32>("emails")?);
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// let fwd = emails.clone();
    /// orders.subscribe(move |ev| fwd.publish(**ev).unwrap())?;
    /// emails.subscribe(move |ev| tx.send(ev.parent_span_id()).unwrap())?;
    /// orders.publish(1)?;
    /// assert!(rx.recv()?.is_some()); // published by a handler: its event is the parent
    /// # Ok(()) }
    /// ```
    pub fn parent_span_id(&self) -> Option<u64> {
        let parent = self.meta.lineage.parent_span();
        (parent != 0).then_some(parent)
    }
}

impl<T> std::ops::Deref for Event<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: fmt::Debug> fmt::Debug for Event<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("topic", &self.topic())
            .field("seq", &self.meta.seq)
            .field("attempt", &self.meta.attempt)
            .field("value", &self.value)
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::sys::epoch::now_nanos;

    #[test]
    fn names_are_interned_once() {
        let a = TopicName::intern("orders.created");
        let b = TopicName::intern("orders.created");
        assert!(std::ptr::eq(a, b));
        assert_eq!(a.as_str(), "orders.created");
    }

    #[test]
    fn derived_trace_ids_are_stable_and_distinct() {
        let name = TopicName::intern("t");
        let meta = |seq| Meta {
            seq,
            attempt: 1,
            ..Meta::default()
        };
        let a = Event::new(1u8, name, meta(1));
        let b = Event::new(2u8, name, meta(1));
        let c = Event::new(3u8, name, meta(2));
        assert_eq!(a.trace_id(), b.trace_id());
        assert_ne!(a.trace_id(), c.trace_id());
        assert!(a.trace_id().is_valid());
        let explicit = Event::new(
            0u8,
            name,
            Meta {
                lineage: Lineage::Explicit(trace::Carry {
                    trace: [1, 2],
                    parent_span: 0,
                }),
                ..meta(5)
            },
        );
        assert_eq!(explicit.trace_id().as_u128(), (1u128 << 64) | 2);
    }

    #[test]
    fn timestamps_round_trip_through_nanos() {
        let before = Instant::now();
        let n = now_nanos();
        let ev = Event::new(
            (),
            TopicName::intern("t"),
            Meta {
                published: n,
                ..Meta::default()
            },
        );
        let at = ev.published_at();
        assert!(at + Duration::from_micros(1) >= before);
        assert!(at <= Instant::now());
    }
}
