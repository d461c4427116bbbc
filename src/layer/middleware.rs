//! The layers and the chain they build around a handler (see [the module
//! docs](crate::layer)).

use std::fmt;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use crate::event::meta::Event;
use crate::layer::gcra::Gcra;
use crate::layer::outcome::HandlerOutcome;

/// What became of an event that did not fail.
///
/// # Examples
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use pinbus::layer::{Disposition, Handle, Layer, Outcome};
/// use pinbus::{Event, SubscribeOptions};
/// struct SkipZero;
/// impl Layer<u32> for SkipZero {
///     fn call<H: Handle<u32>>(&mut self, ev: &Event<u32>, next: &mut H) -> Outcome {
///         if **ev == 0 { Ok(Disposition::Skipped) } else { next.handle(ev) }
///     }
/// }
/// let engine = pinbus::Engine::builder().workers(1).build()?;
/// let jobs = engine.topic::<u32>("jobs")?;
/// let sub = jobs.subscribe_with(|_| (), SubscribeOptions::new().layer(SkipZero))?;
/// jobs.publish_batch([0, 1])?;
/// engine.shutdown();
/// assert_eq!((sub.stats().skipped, sub.stats().handled), (1, 1));
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// The handler ran and succeeded.
    Handled,
    /// A layer left the event out on purpose (a filter, a rate limit).
    Skipped,
}

/// The outcome of one step of a chain: a [`Disposition`], or the reason the
/// event failed (which goes on to retries and dead letters).
///
/// # Examples
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use pinbus::layer::{Disposition, Handle, Layer, Outcome};
/// use pinbus::{Event, SubscribeOptions};
/// struct IgnoreErrors; // turns every failure into a success
/// impl<T> Layer<T> for IgnoreErrors {
///     fn call<H: Handle<T>>(&mut self, ev: &Event<T>, next: &mut H) -> Outcome {
///         next.handle(ev).or(Ok(Disposition::Handled))
///     }
/// }
/// let engine = pinbus::Engine::builder().workers(1).build()?;
/// let jobs = engine.topic::<u32>("jobs")?;
/// let sub = jobs.subscribe_with(|_| Err::<(), _>("no"), SubscribeOptions::new().layer(IgnoreErrors))?;
/// jobs.publish(1)?;
/// engine.shutdown();
/// assert_eq!((sub.stats().handled, sub.stats().failed), (1, 0));
/// # Ok(()) }
/// ```
pub type Outcome = Result<Disposition, Box<str>>;

/// The rest of a chain, as a layer sees it: the next layer, or the handler.
///
/// # Examples
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::{Arc, atomic::{AtomicU32, Ordering}};
/// use pinbus::layer::{Handle, Layer, Outcome};
/// use pinbus::{Event, SubscribeOptions};
/// struct CountFailures(Arc<AtomicU32>);
/// impl<T> Layer<T> for CountFailures {
///     fn call<H: Handle<T>>(&mut self, ev: &Event<T>, next: &mut H) -> Outcome {
///         let outcome = next.handle(ev); // runs the inner layers and the handler
///         if outcome.is_err() { self.0.fetch_add(1, Ordering::Relaxed); }
///         outcome
///     }
/// }
/// let failures = Arc::new(AtomicU32::new(0));
/// let engine = pinbus::Engine::builder().workers(1).build()?;
/// let jobs = engine.topic::<u32>("jobs")?;
/// let opts = SubscribeOptions::new().layer(CountFailures(failures.clone()));
/// jobs.subscribe_with(|n| if **n > 1 { Err("big") } else { Ok(()) }, opts)?;
/// jobs.publish_batch([1, 2, 3])?;
/// engine.shutdown();
/// assert_eq!(failures.load(Ordering::Relaxed), 2);
/// # Ok(()) }
/// ```
pub trait Handle<T>: Send + 'static {
    /// Runs the rest of the chain on `event`.
    fn handle(&mut self, event: &Event<T>) -> Outcome;
}

/// One piece of middleware around a handler. See the [module
/// docs](crate::layer) for the contract and the order.
///
/// # Examples
///
/// A layer that fails events whose payload is odd:
///
/// ```
/// use pinbus::layer::{Handle, Layer, Outcome};
/// use pinbus::Event;
///
/// struct EvenOnly;
///
/// impl Layer<u32> for EvenOnly {
///     fn call<H: Handle<u32>>(&mut self, event: &Event<u32>, next: &mut H) -> Outcome {
///         if **event % 2 == 1 {
///             return Err(format!("{} is odd", **event).into());
///         }
///         next.handle(event)
///     }
/// }
/// # let _ = pinbus::SubscribeOptions::new().layer(EvenOnly);
/// ```
pub trait Layer<T>: Send + 'static {
    /// Handles `event`, calling `next` to run the rest of the chain (or not).
    fn call<H: Handle<T>>(&mut self, event: &Event<T>, next: &mut H) -> Outcome;
}

/// A list of layers, outermost first; built by
/// [`SubscribeOptions::layer`](crate::SubscribeOptions::layer).
///
/// # Examples
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use pinbus::layer::{Filter, Layers};
/// use pinbus::{Event, SubscribeError, SubscribeOptions, Subscription, Topic};
/// // Generic over whatever layers the caller stacked.
/// fn audit<L: Layers<u32>>(t: &Topic<u32>, opts: SubscribeOptions<L>) -> Result<Subscription, SubscribeError> {
///     t.subscribe_with(|_| (), opts.name("audit"))
/// }
/// let engine = pinbus::Engine::builder().workers(1).build()?;
/// let jobs = engine.topic::<u32>("jobs")?;
/// audit(&jobs, SubscribeOptions::new())?;
/// audit(&jobs, SubscribeOptions::new().layer(Filter::new(|ev: &Event<u32>| **ev > 0)))?;
/// # Ok(()) }
/// ```
pub trait Layers<T>: Send + 'static {
    /// The chain these layers form around `handler`.
    fn wrap<H: Handle<T>>(self, handler: H) -> impl Handle<T>;
}

/// No layers (the default).
///
/// # Examples
///
/// ```
/// use pinbus::layer::Identity;
/// use pinbus::SubscribeOptions;
/// let opts: SubscribeOptions<Identity> = SubscribeOptions::new(); // no layers
/// # let _ = opts;
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Identity;

impl<T: 'static> Layers<T> for Identity {
    #[inline(always)]
    fn wrap<H: Handle<T>>(self, handler: H) -> impl Handle<T> {
        handler
    }
}

/// Layers `outer` with `inner` added inside them.
///
/// # Examples
///
/// ```
/// use pinbus::layer::{Identity, RateLimit, Stack};
/// use pinbus::SubscribeOptions;
/// // Each `layer` call wraps the layers so far: outermost first.
/// let opts: SubscribeOptions<Stack<Stack<Identity, RateLimit>, RateLimit>> =
///     SubscribeOptions::new().layer(RateLimit::per_second(1_000)).layer(RateLimit::per_second(100));
/// # let _ = opts;
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Stack<Outer, Inner> {
    outer: Outer,
    inner: Inner,
}

impl<Outer, Inner> Stack<Outer, Inner> {
    pub(crate) fn new(outer: Outer, inner: Inner) -> Self {
        Stack { outer, inner }
    }
}

impl<T: 'static, Outer: Layers<T>, Inner: Layer<T>> Layers<T> for Stack<Outer, Inner> {
    #[inline(always)]
    fn wrap<H: Handle<T>>(self, handler: H) -> impl Handle<T> {
        self.outer.wrap(Layered {
            layer: self.inner,
            next: handler,
        })
    }
}

/// A layer in front of the rest of its chain.
struct Layered<L, N> {
    layer: L,
    next: N,
}

impl<T: 'static, L: Layer<T>, N: Handle<T>> Handle<T> for Layered<L, N> {
    #[inline(always)]
    fn handle(&mut self, event: &Event<T>) -> Outcome {
        self.layer.call(event, &mut self.next)
    }
}

/// The user's handler at the end of a chain.
pub(crate) struct Handler<F, R> {
    f: F,
    _outcome: PhantomData<fn() -> R>,
}

impl<F, R> Handler<F, R> {
    pub(crate) fn new(f: F) -> Self {
        Handler {
            f,
            _outcome: PhantomData,
        }
    }
}

impl<T: 'static, F, R> Handle<T> for Handler<F, R>
where
    F: FnMut(&Event<T>) -> R + Send + 'static,
    R: HandlerOutcome + 'static,
{
    #[inline(always)]
    fn handle(&mut self, event: &Event<T>) -> Outcome {
        (self.f)(event)
            .into_outcome()
            .map(|()| Disposition::Handled)
    }
}

/// Skips events a predicate rejects (counted as skipped).
///
/// ```
/// use pinbus::layer::Filter;
/// use pinbus::{Event, SubscribeOptions};
/// let big_orders = SubscribeOptions::new().layer(Filter::new(|ev: &Event<u64>| **ev >= 1_000));
/// # let _ = big_orders;
/// ```
pub struct Filter<P> {
    keep: P,
}

impl<P> Filter<P> {
    /// Passes on the events for which `keep` returns `true`.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pinbus::layer::Filter;
    /// use pinbus::{Event, SubscribeOptions};
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let orders = engine.topic::<u64>("orders")?;
    /// let big = SubscribeOptions::new().layer(Filter::new(|ev: &Event<u64>| **ev >= 1_000));
    /// let sub = orders.subscribe_with(|_| (), big)?;
    /// orders.publish_batch([5, 5_000])?;
    /// engine.shutdown();
    /// assert_eq!((sub.stats().handled, sub.stats().skipped), (1, 1));
    /// # Ok(()) }
    /// ```
    pub fn new<T>(keep: P) -> Self
    where
        P: FnMut(&Event<T>) -> bool,
    {
        Filter { keep }
    }
}

impl<T, P> Layer<T> for Filter<P>
where
    P: FnMut(&Event<T>) -> bool + Send + 'static,
{
    #[inline(always)]
    fn call<H: Handle<T>>(&mut self, event: &Event<T>, next: &mut H) -> Outcome {
        if (self.keep)(event) {
            next.handle(event)
        } else {
            Ok(Disposition::Skipped)
        }
    }
}

impl<P> fmt::Debug for Filter<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Filter").finish_non_exhaustive()
    }
}

/// What [`RateLimit`] does with an event that finds no token.
///
/// # Examples
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use pinbus::layer::{Excess, RateLimit};
/// use pinbus::SubscribeOptions;
/// let engine = pinbus::Engine::builder().workers(1).build()?;
/// let jobs = engine.topic::<u32>("jobs")?;
/// let limit = RateLimit::per_second(1).on_excess(Excess::Fail); // burst 1
/// let sub = jobs.subscribe_with(|_| (), SubscribeOptions::new().layer(limit))?;
/// jobs.publish_batch([1, 2])?;
/// engine.shutdown();
/// assert_eq!((sub.stats().handled, sub.stats().failed), (1, 1));
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Excess {
    /// Wait for the next token, then handle it (a throttle). The worker
    /// waits too, so other subscriptions on it wait as well: give a
    /// throttled subscription a worker of its own
    /// ([`SubscribeOptions::worker`](crate::SubscribeOptions::worker)).
    Wait,
    /// Skip it (counted as skipped).
    Skip,
    /// Fail it: retries and dead letters apply.
    Fail,
}

/// A token bucket in front of a handler: at most `rate` events per second on
/// average, bursts of up to `burst` events.
///
/// The bucket belongs to one subscription and is touched only by its worker,
/// so it is plain arithmetic: no atomics, no locks. (The publish side's
/// shared bucket is [`crate::topic::intercept::RateLimit`].)
///
/// ```
/// use pinbus::layer::{Excess, RateLimit};
/// use pinbus::SubscribeOptions;
/// let opts = SubscribeOptions::new()
///     .layer(RateLimit::per_second(500).burst(50).on_excess(Excess::Skip));
/// # let _ = opts;
/// ```
#[derive(Clone, Debug)]
pub struct RateLimit {
    bucket: Bucket,
    excess: Excess,
}

impl RateLimit {
    /// `rate` events per second (at least 1), bursts of `rate / 10` (at
    /// least 1); waits for a token when out of them ([`Excess::Wait`]).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pinbus::layer::RateLimit;
    /// use pinbus::SubscribeOptions;
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let jobs = engine.topic::<u32>("jobs")?;
    /// let limit = RateLimit::per_second(10_000); // bursts of 1,000, then waits for tokens
    /// let sub = jobs.subscribe_with(|_| (), SubscribeOptions::new().layer(limit))?;
    /// jobs.publish_batch(0..10)?;
    /// engine.shutdown();
    /// assert_eq!(sub.stats().handled, 10); // waiting drops nothing
    /// # Ok(()) }
    /// ```
    pub fn per_second(rate: u32) -> Self {
        let rate = rate.max(1);
        RateLimit {
            bucket: Bucket::new(Gcra::new(rate, rate / 10)),
            excess: Excess::Wait,
        }
    }

    /// Lets up to `burst` (at least 1) events through back to back.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pinbus::layer::{Excess, RateLimit};
    /// use pinbus::SubscribeOptions;
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let jobs = engine.topic::<u32>("jobs")?;
    /// let limit = RateLimit::per_second(1).burst(3).on_excess(Excess::Skip);
    /// let sub = jobs.subscribe_with(|_| (), SubscribeOptions::new().layer(limit))?;
    /// jobs.publish_batch(0..5)?;
    /// engine.shutdown();
    /// assert_eq!((sub.stats().handled, sub.stats().skipped), (3, 2));
    /// # Ok(()) }
    /// ```
    pub fn burst(mut self, burst: u32) -> Self {
        self.bucket = Bucket::new(Gcra::new(self.bucket.gcra.rate, burst));
        self
    }

    /// What to do with an event that finds no token.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pinbus::layer::{Excess, RateLimit};
    /// use pinbus::SubscribeOptions;
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let jobs = engine.topic::<u32>("jobs")?;
    /// let limit = RateLimit::per_second(1).on_excess(Excess::Skip); // burst 1
    /// let sub = jobs.subscribe_with(|_| (), SubscribeOptions::new().layer(limit))?;
    /// jobs.publish_batch([1, 2])?;
    /// engine.shutdown();
    /// assert_eq!((sub.stats().handled, sub.stats().skipped), (1, 1));
    /// # Ok(()) }
    /// ```
    pub fn on_excess(mut self, excess: Excess) -> Self {
        self.excess = excess;
        self
    }
}

impl<T> Layer<T> for RateLimit {
    #[inline]
    fn call<H: Handle<T>>(&mut self, event: &Event<T>, next: &mut H) -> Outcome {
        match self.bucket.take(Instant::now()) {
            None => next.handle(event),
            Some(wait) => match self.excess {
                Excess::Skip => Ok(Disposition::Skipped),
                Excess::Fail => Err(format!(
                    "rate limit: {} events/s exceeded (next token in {wait:?})",
                    self.bucket.gcra.rate
                )
                .into()),
                Excess::Wait => {
                    crate::loom::sleep(wait);
                    // Take the token the wait was for.
                    let _ = self.bucket.take(Instant::now());
                    next.handle(event)
                }
            },
        }
    }
}

/// A token bucket owned by one subscription ([`gcra`](crate::layer::gcra)); times are
/// nanoseconds since its first event.
#[derive(Clone, Debug)]
struct Bucket {
    gcra: Gcra,
    start: Option<Instant>,
    /// The next event's theoretical arrival time, nanoseconds since `start`.
    tat: u64,
}

impl Bucket {
    fn new(gcra: Gcra) -> Self {
        Bucket {
            gcra,
            start: None,
            tat: 0,
        }
    }

    /// Takes a token at `now`, or says how long until one is free.
    fn take(&mut self, now: Instant) -> Option<Duration> {
        let start = *self.start.get_or_insert(now);
        let now = now.saturating_duration_since(start).as_nanos() as u64;
        match self.gcra.step(self.tat, now) {
            Ok(tat) => {
                self.tat = tat;
                None
            }
            Err(wait) => Some(Duration::from_nanos(wait)),
        }
    }
}

/// Logs every event through the `tracing` crate: topic, seq, trace id,
/// attempt and outcome, at DEBUG (handled, skipped) and WARN (failed).
///
/// ```
/// use pinbus::layer::Logging;
/// use pinbus::SubscribeOptions;
/// let opts = SubscribeOptions::new().layer(Logging);
/// # let _ = opts;
/// ```
#[cfg(feature = "tracing")]
#[derive(Clone, Copy, Debug, Default)]
pub struct Logging;

#[cfg(feature = "tracing")]
impl<T> Layer<T> for Logging {
    #[inline]
    fn call<H: Handle<T>>(&mut self, event: &Event<T>, next: &mut H) -> Outcome {
        let outcome = next.handle(event);
        match &outcome {
            Ok(d) => tracing::debug!(
                topic = event.topic(),
                seq = event.seq(),
                trace_id = %event.trace_id(),
                attempt = event.attempt(),
                outcome = ?d,
                "pinbus: event"
            ),
            Err(reason) => tracing::warn!(
                topic = event.topic(),
                seq = event.seq(),
                trace_id = %event.trace_id(),
                attempt = event.attempt(),
                reason = &**reason,
                "pinbus: event failed"
            ),
        }
        outcome
    }
}

/// Opens a `tracing` span per dispatch (`pinbus.dispatch`, with topic, seq,
/// trace id, parent span and attempt), so a `tracing-opentelemetry` layer
/// can export each handler call as a span of the event's trace. `sampled(n)`
/// opens one for every n-th event only.
///
/// ```
/// use pinbus::layer::Spans;
/// use pinbus::SubscribeOptions;
/// let opts = SubscribeOptions::new().layer(Spans::sampled(100));
/// # let _ = opts;
/// ```
#[cfg(feature = "tracing")]
#[derive(Clone, Copy, Debug)]
pub struct Spans {
    every: u64,
    count: u64,
}

#[cfg(feature = "tracing")]
impl Spans {
    /// A span for every event.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pinbus::layer::Spans;
    /// use pinbus::SubscribeOptions;
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let jobs = engine.topic::<u32>("jobs")?;
    /// let sub = jobs.subscribe_with(|_| (), SubscribeOptions::new().layer(Spans::all()))?;
    /// jobs.publish(1)?; // with no tracing subscriber installed the span costs next to nothing
    /// engine.shutdown();
    /// assert_eq!(sub.stats().handled, 1);
    /// # Ok(()) }
    /// ```
    pub fn all() -> Self {
        Spans::sampled(1)
    }

    /// A span for one event in `every` (at least 1).
    ///
    /// # Examples
    ///
    /// ```
    /// use pinbus::layer::Spans;
    /// use pinbus::SubscribeOptions;
    /// let opts = SubscribeOptions::new().layer(Spans::sampled(0)); // 0 counts as 1: every event
    /// # let _ = opts;
    /// ```
    pub fn sampled(every: u64) -> Self {
        Spans {
            every: every.max(1),
            count: 0,
        }
    }
}

#[cfg(feature = "tracing")]
impl<T> Layer<T> for Spans {
    #[inline]
    fn call<H: Handle<T>>(&mut self, event: &Event<T>, next: &mut H) -> Outcome {
        self.count += 1;
        if self.count < self.every {
            return next.handle(event);
        }
        self.count = 0;
        let span = tracing::info_span!(
            "pinbus.dispatch",
            topic = event.topic(),
            seq = event.seq(),
            trace_id = %event.trace_id(),
            span_id = event.span_id(),
            parent_span_id = event.parent_span_id(),
            attempt = event.attempt(),
        );
        let _entered = span.enter();
        next.handle(event)
    }
}
