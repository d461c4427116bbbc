//! Trace context: which trace a new event joins, and which span it points at.
//!
//! Every thread has a *current context*. While a worker runs a handler it is
//! the handled event (its trace id, its span id); a [`TraceGuard`] from
//! [`TraceContext::enter`] sets it explicitly (the NATS bridge does so with a
//! `traceparent` header it received). An event published while a context is
//! current joins that trace with the context's span as its parent; that is
//! the causal chain `Event::trace_id` / `Event::parent_span_id` report.
//!
//! Cost: the publish path reads one thread-local to see that no context is
//! current. With one, the event carries a [`Lineage`]: ids derived from a
//! topic's salt and a sequence number stay in that form until someone asks
//! for them (`Event::trace_id`, a `traceparent` header), so a handler that
//! forwards hashes nothing. A lane carries a lineage as a side item
//! ([`lane`](crate::lane)), or — when it is the previous traced event's
//! lineage one sequence number on, as the events one handler forwards are —
//! as a single tag bit, on the publish fast path.

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;

use crate::event::name::TopicName;
use crate::loom::thread_local;
use crate::sys::mix::mix64;

/// A W3C-compatible 128-bit trace id (never all zeros).
///
/// Displays as 32 lowercase hex digits, the `trace-id` field of a
/// `traceparent` header.
///
/// # Examples
///
/// ```
/// use pinbus::TraceId;
/// let id = TraceId::from_u128(0xabc);
/// assert_eq!(id.to_string(), "00000000000000000000000000000abc");
/// assert_eq!(id.as_u128(), 0xabc);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TraceId(u128);

impl TraceId {
    /// Wraps a raw id. Zero is the W3C "invalid" id; see [`TraceId::is_valid`].
    ///
    /// # Examples
    ///
    /// ```
    /// use pinbus::TraceId;
    /// let id = TraceId::from_u128(0x4bf9);
    /// assert_eq!(id.as_u128(), 0x4bf9);
    /// ```
    pub const fn from_u128(id: u128) -> Self {
        TraceId(id)
    }

    /// The raw 128-bit value.
    ///
    /// # Examples
    ///
    /// ```
    /// use pinbus::TraceId;
    /// assert_eq!(TraceId::from_u128(u128::MAX).as_u128(), u128::MAX);
    /// ```
    pub const fn as_u128(self) -> u128 {
        self.0
    }

    /// Whether the id is non-zero (W3C forbids the all-zero id).
    ///
    /// # Examples
    ///
    /// ```
    /// use pinbus::TraceId;
    /// assert!(TraceId::from_u128(1).is_valid());
    /// assert!(!TraceId::from_u128(0).is_valid());
    /// ```
    pub const fn is_valid(self) -> bool {
        self.0 != 0
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceId({:032x})", self.0)
    }
}

/// A W3C trace context: a trace id and the id of one span in it.
///
/// It travels between processes as a `traceparent` header
/// (`00-<trace id>-<span id>-01`), and within the engine as the current
/// context of a thread: events published while it is current join its trace
/// as children of its span.
///
/// # Examples
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use pinbus::{Engine, TraceContext, TraceId};
/// use std::sync::mpsc;
///
/// let engine = Engine::builder().workers(1).build()?;
/// let orders = engine.topic::<u32>("orders")?;
/// let (tx, rx) = mpsc::channel();
/// orders.subscribe(move |ev| {
///     let _ = tx.send((ev.trace_id(), ev.parent_span_id()));
/// })?;
///
/// let remote = TraceContext::from_traceparent(
///     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
/// ).ok_or("bad header")?;
/// {
///     let _guard = remote.enter();
///     orders.publish(7)?;
/// }
/// let (trace, parent) = rx.recv()?;
/// assert_eq!(trace, TraceId::from_u128(0x4bf92f3577b34da6a3ce929d0e0e4736));
/// assert_eq!(parent, Some(0x00f067aa0ba902b7));
/// engine.shutdown();
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceContext {
    trace_id: TraceId,
    span_id: u64,
}

impl TraceContext {
    /// A context from its two ids. W3C calls a context with an all-zero
    /// trace id or span id invalid; see [`TraceContext::is_valid`].
    ///
    /// ```
    /// use pinbus::{TraceContext, TraceId};
    /// let ctx = TraceContext::new(TraceId::from_u128(1), 2);
    /// assert_eq!((ctx.trace_id().as_u128(), ctx.span_id()), (1, 2));
    /// ```
    pub const fn new(trace_id: TraceId, span_id: u64) -> Self {
        TraceContext { trace_id, span_id }
    }

    /// The trace id.
    ///
    /// # Examples
    ///
    /// ```
    /// use pinbus::{TraceContext, TraceId};
    /// let ctx = TraceContext::new(TraceId::from_u128(7), 3);
    /// assert_eq!(ctx.trace_id(), TraceId::from_u128(7));
    /// ```
    pub const fn trace_id(&self) -> TraceId {
        self.trace_id
    }

    /// The span id: the parent of events published under this context.
    ///
    /// # Examples
    ///
    /// ```
    /// use pinbus::{TraceContext, TraceId};
    /// let ctx = TraceContext::new(TraceId::from_u128(7), 3);
    /// assert_eq!(ctx.span_id(), 3);
    /// ```
    pub const fn span_id(&self) -> u64 {
        self.span_id
    }

    /// Whether both ids are non-zero (the W3C validity rule).
    ///
    /// ```
    /// use pinbus::{TraceContext, TraceId};
    /// assert!(!TraceContext::new(TraceId::from_u128(0), 5).is_valid());
    /// ```
    pub const fn is_valid(&self) -> bool {
        self.trace_id.is_valid() && self.span_id != 0
    }

    /// The W3C `traceparent` header value: `00-<32 hex>-<16 hex>-01`
    /// (version 00, sampled).
    ///
    /// ```
    /// use pinbus::{TraceContext, TraceId};
    /// let ctx = TraceContext::new(TraceId::from_u128(0xab), 0xcd);
    /// assert_eq!(
    ///     ctx.to_traceparent(),
    ///     "00-000000000000000000000000000000ab-00000000000000cd-01"
    /// );
    /// ```
    pub fn to_traceparent(&self) -> String {
        format!("00-{}-{:016x}-01", self.trace_id, self.span_id)
    }

    /// Parses a W3C `traceparent` header value. Returns `None` unless it is
    /// `<version>-<32 hex>-<16 hex>-<2 hex>` with a known shape (version
    /// `ff` is forbidden; a future version may append fields after the
    /// flags) and non-zero ids. Upper-case hex is refused, as W3C requires.
    ///
    /// ```
    /// use pinbus::TraceContext;
    /// let ctx = TraceContext::from_traceparent(
    ///     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    /// ).unwrap();
    /// assert_eq!(ctx.span_id(), 0x00f067aa0ba902b7);
    /// assert!(TraceContext::from_traceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01").is_none());
    /// assert!(TraceContext::from_traceparent("not a header").is_none());
    /// ```
    pub fn from_traceparent(header: &str) -> Option<TraceContext> {
        let header = header.trim();
        let mut parts = header.splitn(5, '-');
        let version = parts.next()?;
        let trace = parts.next()?;
        let span = parts.next()?;
        let flags = parts.next()?;
        let extra = parts.next();
        let hex = |s: &str, len: usize| {
            s.len() == len
                && s.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        if !hex(version, 2) || version == "ff" || !hex(trace, 32) || !hex(span, 16) {
            return None;
        }
        if !hex(flags, 2) || (version == "00" && extra.is_some()) {
            return None;
        }
        let ctx = TraceContext {
            trace_id: TraceId::from_u128(u128::from_str_radix(trace, 16).ok()?),
            span_id: u64::from_str_radix(span, 16).ok()?,
        };
        ctx.is_valid().then_some(ctx)
    }

    /// Makes this the current context of the calling thread until the guard
    /// drops (then the previous one is current again). Events published on
    /// this thread meanwhile join this trace, with [`span_id`] as their
    /// parent span.
    ///
    /// Inside a handler the handled event is current; a guard entered there
    /// overrides it until dropped.
    ///
    /// [`span_id`]: TraceContext::span_id
    ///
    /// ```
    /// use pinbus::{TraceContext, TraceId};
    /// let ctx = TraceContext::new(TraceId::from_u128(9), 3);
    /// assert_eq!(TraceContext::current(), None);
    /// {
    ///     let _guard = ctx.enter();
    ///     assert_eq!(TraceContext::current(), Some(ctx));
    /// }
    /// assert_eq!(TraceContext::current(), None);
    /// ```
    pub fn enter(self) -> TraceGuard {
        let previous = enter_explicit(self);
        TraceGuard {
            previous,
            _not_send: PhantomData,
        }
    }

    /// The calling thread's current context: the one a [`TraceGuard`] set,
    /// or, inside a handler, the handled event's
    /// ([`Event::trace_context`](crate::Event::trace_context)).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pinbus::TraceContext;
    /// assert_eq!(TraceContext::current(), None); // outside any handler or guard
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let jobs = engine.topic::<u32>("jobs")?;
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// jobs.subscribe(move |ev| tx.send(TraceContext::current() == Some(ev.trace_context())).unwrap())?;
    /// jobs.publish(1)?;
    /// assert!(rx.recv()?); // inside a handler: the handled event's context
    /// # Ok(()) }
    /// ```
    pub fn current() -> Option<TraceContext> {
        match lineage() {
            Lineage::Root => None,
            // A child's lineage is never `Root`, so `own` is not read.
            l => Some(TraceContext::new(
                TraceId::from_u128(join(l.trace(Origin::default()))),
                l.parent_span(),
            )),
        }
    }
}

impl fmt::Debug for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceContext({})", self.to_traceparent())
    }
}

impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_traceparent())
    }
}

/// Keeps a [`TraceContext`] current on this thread; see
/// [`TraceContext::enter`]. Not `Send`: it belongs to the thread that
/// entered it.
///
/// # Examples
///
/// ```
/// use pinbus::{TraceContext, TraceId};
/// let outer = TraceContext::new(TraceId::from_u128(1), 1);
/// let inner = TraceContext::new(TraceId::from_u128(2), 2);
/// let _a = outer.enter();
/// {
///     let _b = inner.enter();
///     assert_eq!(TraceContext::current(), Some(inner));
/// }
/// assert_eq!(TraceContext::current(), Some(outer)); // restored when `_b` dropped
/// ```
#[must_use = "the context is current only while the guard lives"]
pub struct TraceGuard {
    previous: (u8, Carry),
    _not_send: PhantomData<*const ()>,
}

impl Drop for TraceGuard {
    fn drop(&mut self) {
        leave_explicit(self.previous);
    }
}

impl fmt::Debug for TraceGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TraceGuard").finish_non_exhaustive()
    }
}

/// Resolved trace ids: the trace an event joins and its parent span.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Carry {
    pub(crate) trace: [u64; 2],
    pub(crate) parent_span: u64,
}

/// One event of one topic, named by its topic's salt and its sequence
/// number: the ids derived from it ([`derived_trace`], [`span_of`]) are
/// computed only when asked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Origin {
    pub(crate) salt: u64,
    pub(crate) seq: u64,
}

impl Origin {
    /// The next event of the same topic and producer: sequence + 1.
    #[inline(always)]
    fn next(self) -> Origin {
        Origin {
            salt: self.salt,
            seq: self.seq.wrapping_add(1),
        }
    }
}

/// An event's place in a trace, as it travels with the event: which trace
/// it joins and which span is its parent. Ids derived from topic salts and
/// sequence numbers stay in that form until asked for, so forwarding an
/// event costs no hashing, and the forwarded events of one handler, which
/// step one sequence number at a time, cost nothing in the lane
/// ([`Lineage::follows`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Lineage {
    /// A root event: its trace is derived from its own topic and sequence
    /// number, and it has no parent.
    #[default]
    Root,
    /// Published while handling `parent`, in the trace that starts at the
    /// root event `root` (both derived ids).
    Derived { parent: Origin, root: Origin },
    /// Explicit ids: published under a [`TraceGuard`], or while handling an
    /// event whose trace came from outside (a `traceparent` header).
    Explicit(Carry),
}

impl Lineage {
    /// The lineage of an event published while handling an event of
    /// `handled` (salt and seq) whose own lineage is `self`.
    #[inline(always)]
    pub(crate) fn child(self, handled: Origin) -> Lineage {
        match self {
            Lineage::Root => Lineage::Derived {
                parent: handled,
                root: handled,
            },
            Lineage::Derived { root, .. } => Lineage::Derived {
                parent: handled,
                root,
            },
            Lineage::Explicit(c) => Lineage::Explicit(Carry {
                trace: c.trace,
                parent_span: span_of(handled.salt, handled.seq),
            }),
        }
    }

    /// Whether `self` is what a derived lineage `previous` becomes one
    /// event later (both origins one sequence number on): then a lane
    /// carries it as a one-bit step instead of a side item.
    #[inline(always)]
    pub(crate) fn follows(&self, previous: &Lineage) -> bool {
        match (self, previous) {
            (
                Lineage::Derived { parent, root },
                Lineage::Derived {
                    parent: p0,
                    root: r0,
                },
            ) => *parent == p0.next() && *root == r0.next(),
            _ => false,
        }
    }

    /// A derived lineage one event on (see [`follows`](Lineage::follows));
    /// any other lineage unchanged.
    #[inline(always)]
    pub(crate) fn step(self) -> Lineage {
        match self {
            Lineage::Derived { parent, root } => Lineage::Derived {
                parent: parent.next(),
                root: root.next(),
            },
            other => other,
        }
    }

    /// A copy that stores only the tag for the common [`Lineage::Root`]
    /// (not all 40 bytes).
    #[inline(always)]
    fn copied(&self) -> Lineage {
        match self {
            Lineage::Root => Lineage::Root,
            other => *other,
        }
    }

    /// The trace id of an event with this lineage, itself `own`.
    pub(crate) fn trace(&self, own: Origin) -> [u64; 2] {
        match self {
            Lineage::Root => derived_trace(own.salt, own.seq),
            Lineage::Derived { root, .. } => derived_trace(root.salt, root.seq),
            Lineage::Explicit(c) => c.trace,
        }
    }

    /// The parent span id, or 0 for a root event.
    pub(crate) fn parent_span(&self) -> u64 {
        match self {
            Lineage::Root => 0,
            Lineage::Derived { parent, .. } => span_of(parent.salt, parent.seq),
            Lineage::Explicit(c) => c.parent_span,
        }
    }
}

/// No context is current.
const NONE: u8 = 0;
/// A handler runs: the context is the handled event (`State::topic`,
/// `seq`, `lineage`).
const HANDLING: u8 = 1;
/// A [`TraceGuard`] is live: the context is `State::explicit`.
const EXPLICIT: u8 = 2;

/// A thread's current context. Entering a handled event writes `kind` and
/// the event's `topic`, `seq` and `lineage` only, and leaving it writes
/// `kind` back: a few stores per handler call. A worker draining a batch of
/// one topic ([`HandlingBatch`]) writes `kind` and `topic` once per batch
/// and `seq` and `lineage` per event. Ids are derived only when asked for.
struct State {
    kind: Cell<u8>,
    /// The handled event's topic (`None`: no event handled yet).
    topic: Cell<Option<&'static TopicName>>,
    /// The handled event's topic salt (`Meta::salt`).
    salt: Cell<u64>,
    /// The handled event's sequence number.
    seq: Cell<u64>,
    /// The handled event's lineage.
    lineage: Cell<Lineage>,
    explicit: Cell<Carry>,
}

impl State {
    const fn new() -> State {
        State {
            kind: Cell::new(NONE),
            topic: Cell::new(None),
            salt: Cell::new(0),
            seq: Cell::new(0),
            lineage: Cell::new(Lineage::Root),
            explicit: Cell::new(Carry {
                trace: [0, 0],
                parent_span: 0,
            }),
        }
    }

    /// The lineage of an event published now ([`Lineage::Root`] if no
    /// context is current).
    #[inline(always)]
    fn resolve(&self) -> Lineage {
        match self.kind.get() {
            HANDLING => {
                if self.topic.get().is_none() {
                    return Lineage::Root;
                }
                let handled = Origin {
                    salt: self.salt.get(),
                    seq: self.seq.get(),
                };
                self.lineage.get().child(handled)
            }
            EXPLICIT => Lineage::Explicit(self.explicit.get()),
            _ => Lineage::Root,
        }
    }
}

#[cfg(not(loom))]
thread_local! {
    static STATE: State = const { State::new() };
}

// loom's `thread_local!` has no `const` form.
#[cfg(loom)]
thread_local! {
    static STATE: State = State::new();
}

/// Sets an explicit context; returns the previous (kind, explicit) pair.
fn enter_explicit(ctx: TraceContext) -> (u8, Carry) {
    let carry = Carry {
        trace: split(ctx.trace_id.as_u128()),
        parent_span: ctx.span_id,
    };
    // During thread teardown the thread-local may be gone: nothing to set.
    STATE
        .try_with(|s| (s.kind.replace(EXPLICIT), s.explicit.replace(carry)))
        .unwrap_or((NONE, Carry::default()))
}

fn leave_explicit((kind, carry): (u8, Carry)) {
    let _ = STATE.try_with(|s| {
        s.explicit.set(carry);
        s.kind.set(kind);
    });
}

/// Keeps a handled event current while its handler runs; restores the outer
/// kind on drop, also when the handler panics. Handler calls do not nest on
/// a thread (a worker runs one handler at a time), so only the kind needs
/// restoring.
pub(crate) struct Handling(u8);

impl Handling {
    /// Makes the event (topic and its salt, seq, lineage) current.
    #[inline(always)]
    pub(crate) fn enter(
        topic: &'static TopicName,
        salt: u64,
        seq: u64,
        lineage: &Lineage,
    ) -> Handling {
        Handling(
            STATE
                .try_with(|s| {
                    s.topic.set(Some(topic));
                    s.salt.set(salt);
                    s.seq.set(seq);
                    s.lineage.set(lineage.copied());
                    s.kind.replace(HANDLING)
                })
                .unwrap_or(NONE),
        )
    }
}

impl Drop for Handling {
    #[inline(always)]
    fn drop(&mut self) {
        let _ = STATE.try_with(|s| s.kind.set(self.0));
    }
}

/// [`Handling`] for a batch of one topic's events on a worker: the kind and
/// topic are written once, then [`event`](HandlingBatch::event) makes each
/// event current before its handlers run. Restores the outer kind on drop.
pub(crate) struct HandlingBatch(u8);

impl HandlingBatch {
    /// Makes `topic`'s events the context from now on (the event itself is
    /// set by [`event`](HandlingBatch::event)).
    #[inline(always)]
    pub(crate) fn enter(topic: &'static TopicName, salt: u64) -> HandlingBatch {
        HandlingBatch(
            STATE
                .try_with(|s| {
                    s.topic.set(Some(topic));
                    s.salt.set(salt);
                    s.kind.replace(HANDLING)
                })
                .unwrap_or(NONE),
        )
    }

    /// Makes the batch's event with `seq` and `lineage` current. (A handler cannot leave another topic or kind
    /// behind: its own contexts restore what they found.)
    #[inline(always)]
    pub(crate) fn event(&self, seq: u64, lineage: &Lineage) {
        let _ = STATE.try_with(|s| {
            s.seq.set(seq);
            // A run of root events (the common case) writes the lineage
            // once, not 40 bytes per event.
            if !(matches!(lineage, Lineage::Root) && matches!(s.lineage.get(), Lineage::Root)) {
                s.lineage.set(*lineage);
            }
        });
    }
}

impl Drop for HandlingBatch {
    #[inline(always)]
    fn drop(&mut self) {
        let _ = STATE.try_with(|s| s.kind.set(self.0));
    }
}

/// Whether a context is current on this thread (one thread-local load).
#[inline(always)]
pub(crate) fn active() -> bool {
    STATE.try_with(|s| s.kind.get() != NONE).unwrap_or(false)
}

/// The lineage of an event published now on this thread
/// ([`Lineage::Root`] if no context is current).
#[inline(always)]
pub(crate) fn lineage() -> Lineage {
    STATE.try_with(State::resolve).unwrap_or(Lineage::Root)
}

fn split(id: u128) -> [u64; 2] {
    [(id >> 64) as u64, id as u64]
}

pub(crate) fn join([hi, lo]: [u64; 2]) -> u128 {
    ((hi as u128) << 64) | lo as u128
}

/// The trace id of a root event: derived from its topic's random salt and
/// its sequence number, never all zeros.
pub(crate) fn derived_trace(salt: u64, seq: u64) -> [u64; 2] {
    let hi = mix64(salt ^ 0x7069_6e62_7573_0001);
    let lo = mix64(seq ^ hi);
    // The mix is a bijection; force a bit in the (unlikely) all-zero case.
    if hi == 0 && lo == 0 {
        [0, 1]
    } else {
        [hi, lo]
    }
}

/// An event's own span id: derived from its topic's random salt and its
/// sequence number, never 0, and unrelated to its trace id's bits.
pub(crate) fn span_of(salt: u64, seq: u64) -> u64 {
    mix64(mix64(salt ^ 0x7370_616e_0000_0002) ^ seq).max(1)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn traceparent_round_trips() {
        let ctx = TraceContext::new(TraceId::from_u128(0x0123_4567_89ab_cdef << 3), 0xfeed);
        let text = ctx.to_traceparent();
        assert_eq!(text.len(), 55);
        assert_eq!(TraceContext::from_traceparent(&text), Some(ctx));
    }

    #[test]
    fn malformed_headers_are_refused() {
        let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert!(TraceContext::from_traceparent(good).is_some());
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceContext::from_traceparent(bad), None, "{bad:?}");
        }
        // A later version may append fields.
        assert!(TraceContext::from_traceparent(
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more"
        )
        .is_some());
    }

    #[test]
    fn guards_nest_and_restore() {
        let a = TraceContext::new(TraceId::from_u128(1), 1);
        let b = TraceContext::new(TraceId::from_u128(2), 2);
        assert_eq!(lineage(), Lineage::Root);
        let ga = a.enter();
        {
            let _gb = b.enter();
            assert_eq!(TraceContext::current(), Some(b));
            assert_eq!(
                lineage(),
                Lineage::Explicit(Carry {
                    trace: [0, 2],
                    parent_span: 2
                })
            );
        }
        assert_eq!(TraceContext::current(), Some(a));
        drop(ga);
        assert_eq!(lineage(), Lineage::Root);
    }

    #[test]
    fn a_handled_event_resolves_lazily() {
        let topic = TopicName::intern("trace.lazy");
        let salt = 0x5eed;
        let handling = Handling::enter(topic, salt, 41, &Lineage::Root);
        let c = lineage();
        let own = Origin { salt, seq: 41 };
        assert_eq!(
            c,
            Lineage::Derived {
                parent: own,
                root: own
            }
        );
        assert_eq!(c.trace(Origin::default()), derived_trace(salt, 41));
        assert_eq!(c.parent_span(), span_of(salt, 41));
        assert_ne!(span_of(salt, 41), span_of(salt, 42));
        assert_ne!(derived_trace(salt, 41), derived_trace(salt + 1, 41));
        assert_ne!(span_of(salt, 41), span_of(salt + 1, 41));
        drop(handling);
        assert_eq!(lineage(), Lineage::Root);
    }

    #[test]
    fn a_batch_context_follows_each_events_lineage() {
        let topic = TopicName::intern("trace.batch");
        let salt = 0xba7c;
        let at = |seq| Origin { salt, seq };
        let derived = Lineage::Root.child(Origin { salt: 0xa, seq: 7 });
        let batch = HandlingBatch::enter(topic, salt);
        // Root, root (the lineage is not rewritten), derived, root again.
        batch.event(1, &Lineage::Root);
        assert_eq!(lineage(), Lineage::Root.child(at(1)));
        batch.event(2, &Lineage::Root);
        assert_eq!(lineage(), Lineage::Root.child(at(2)));
        batch.event(3, &derived);
        assert_eq!(lineage(), derived.child(at(3)));
        batch.event(4, &Lineage::Root);
        assert_eq!(lineage(), Lineage::Root.child(at(4)));
        drop(batch);
        assert_eq!(lineage(), Lineage::Root);
    }

    #[test]
    fn a_chain_keeps_its_root_and_steps_with_the_handled_events() {
        let (a, b) = (0xa, 0xb);
        let at = |salt, seq| Origin { salt, seq };
        // Hop 1: handling a's event 7 (a root).
        let hop1 = Lineage::Root.child(at(a, 7));
        // Hop 2: handling the forwarded event, b's event 3.
        let hop2 = hop1.child(at(b, 3));
        assert_eq!(
            hop2,
            Lineage::Derived {
                parent: at(b, 3),
                root: at(a, 7)
            }
        );
        assert_eq!(hop2.trace(at(0xc, 0)), derived_trace(a, 7));
        assert_eq!(hop2.parent_span(), span_of(b, 3));
        // The next event down the chain follows it; anything else does not.
        let next = hop1.step().child(at(b, 4));
        assert!(next.follows(&hop2));
        assert_eq!(hop2.step(), next);
        assert!(!hop2.follows(&hop2));
        assert!(!Lineage::Root.child(at(b, 4)).follows(&hop2));
        let explicit = Lineage::Explicit(Carry {
            trace: [1, 2],
            parent_span: 3,
        });
        assert!(!explicit.follows(&explicit));
        assert_eq!(explicit.step(), explicit);
        // An explicit trace is kept, with the handled event as the parent.
        let child = explicit.child(at(b, 9));
        assert_eq!(child.trace(at(0, 0)), [1, 2]);
        assert_eq!(child.parent_span(), span_of(b, 9));
        assert_eq!(Lineage::Root.parent_span(), 0);
        assert_eq!(Lineage::Root.trace(at(a, 1)), derived_trace(a, 1));
    }
}
