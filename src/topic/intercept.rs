//! Publish interceptors: admission (auth), rate limits and enrichment in
//! front of a topic's publish calls.
//!
//! [`Topic::intercept`](crate::Topic::intercept) returns an [`Intercepted`]
//! handle: every publish through it first runs the interceptor on the event,
//! which may change it (enrichment) or refuse it — the publish then returns
//! [`PublishError::Rejected`] with the event and the reason, and the topic's
//! [`rejected_count`](crate::Topic::rejected_count) grows. Interceptors are
//! static types (no indirect call per publish) and the plain [`Topic`]
//! handle is untouched: publishers that do not use interceptors pay nothing.
//! Hand out only the intercepted handle where admission must hold.
//!
//! Interceptors chain: `topic.intercept(a).intercept(b)` runs `a`, then
//! `b`, then publishes.
//!
//! # Examples
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use pinbus::intercept::RateLimit;
//! use pinbus::{Engine, PublishError};
//!
//! #[derive(Clone, Debug)]
//! struct Order { user: String, amount: u64 }
//!
//! let engine = Engine::builder().workers(1).build()?;
//! let orders = engine
//!     .topic::<Order>("orders")?
//!     .intercept(|o: &mut Order| -> Result<(), &str> {
//!         if o.user.is_empty() {
//!             return Err("anonymous orders are refused");
//!         }
//!         o.user.make_ascii_lowercase(); // enrichment / normalisation
//!         Ok(())
//!     })
//!     .intercept(RateLimit::per_second(10_000));
//!
//! orders.publish(Order { user: "Ann".into(), amount: 5 })?;
//! match orders.publish(Order { user: String::new(), amount: 9 }) {
//!     Err(PublishError::Rejected { event, reason }) => {
//!         assert_eq!(event.amount, 9);
//!         assert_eq!(&*reason, "anonymous orders are refused");
//!     }
//!     other => panic!("{other:?}"),
//! }
//! assert_eq!(orders.topic().rejected_count(), 1);
//! engine.shutdown();
//! # Ok(()) }
//! ```

use std::fmt;
use std::time::{Duration, Instant};

use crate::event::receipt::Receipt;
use crate::layer::gcra::Gcra;
use crate::loom::sync::atomic::{AtomicU64, Ordering};
use crate::loom::sync::Arc;
use crate::sys::epoch::now_nanos;
use crate::sys::error::PublishError;
use crate::topic::delayed::Timer;
use crate::topic::handle::Topic;

/// Admits, changes or refuses an event before it is published.
///
/// Closures `Fn(&mut T) -> Result<(), E>` with `E: Into<Box<str>>` are
/// interceptors.
///
/// # Examples
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use pinbus::intercept::Interceptor;
/// struct Clamp(u32);
/// impl Interceptor<u32> for Clamp {
///     fn admit(&self, event: &mut u32) -> Result<(), Box<str>> {
///         *event = (*event).min(self.0);
///         Ok(())
///     }
/// }
/// let engine = pinbus::Engine::builder().workers(1).build()?;
/// let levels = engine.topic::<u32>("levels")?;
/// let (tx, rx) = std::sync::mpsc::channel();
/// levels.subscribe(move |ev| tx.send(**ev).unwrap())?;
/// levels.intercept(Clamp(10)).publish(99)?;
/// assert_eq!(rx.recv()?, 10);
/// # Ok(()) }
/// ```
pub trait Interceptor<T>: Send + Sync + 'static {
    /// `Ok(())` to go on (after changing `event` if need be), or the reason
    /// for refusing it.
    fn admit(&self, event: &mut T) -> Result<(), Box<str>>;
}

impl<T, F, E> Interceptor<T> for F
where
    F: Fn(&mut T) -> Result<(), E> + Send + Sync + 'static,
    E: Into<Box<str>>,
{
    #[inline]
    fn admit(&self, event: &mut T) -> Result<(), Box<str>> {
        self(event).map_err(Into::into)
    }
}

/// Two interceptors, the first one first.
///
/// # Examples
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let engine = pinbus::Engine::builder().workers(1).build()?;
/// let t = engine.topic::<u32>("t")?;
/// // An Intercepted<u32, Chain<..>>: the doubling runs first, then the check.
/// let both = t
///     .intercept(|n: &mut u32| -> Result<(), &str> { *n *= 2; Ok(()) })
///     .intercept(|n: &mut u32| if *n > 10 { Err("too big") } else { Ok(()) });
/// assert!(both.publish(4).is_ok());
/// assert!(both.publish(6).unwrap_err().is_rejected()); // 12 > 10
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Chain<A, B>(A, B);

impl<T, A: Interceptor<T>, B: Interceptor<T>> Interceptor<T> for Chain<A, B> {
    #[inline]
    fn admit(&self, event: &mut T) -> Result<(), Box<str>> {
        self.0.admit(event)?;
        self.1.admit(event)
    }
}

/// A topic handle whose publishes pass an interceptor first; from
/// [`Topic::intercept`]. Cloning it shares the interceptor (and its state,
/// such as a rate limit's bucket).
///
/// # Examples
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let engine = pinbus::Engine::builder().workers(1).build()?;
/// let orders = engine.topic::<u32>("orders")?;
/// let nonzero = orders.intercept(|n: &mut u32| if *n == 0 { Err("zero") } else { Ok(()) });
/// let other = nonzero.clone(); // shares the interceptor
/// assert!(other.publish(1).is_ok());
/// assert!(other.publish(0).unwrap_err().is_rejected());
/// # Ok(()) }
/// ```
pub struct Intercepted<T, I> {
    topic: Topic<T>,
    interceptor: Arc<I>,
}

impl<T, I> Clone for Intercepted<T, I> {
    fn clone(&self) -> Self {
        Intercepted {
            topic: self.topic.clone(),
            interceptor: self.interceptor.clone(),
        }
    }
}

impl<T, I> fmt::Debug for Intercepted<T, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Intercepted")
            .field("topic", &self.topic.name())
            .finish_non_exhaustive()
    }
}

impl<T: Clone + Send + 'static> Topic<T> {
    /// A handle whose publishes run `interceptor` first; see
    /// [`crate::topic::intercept`].
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pinbus::PublishError;
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let orders = engine.topic::<u32>("orders")?;
    /// let nonzero = orders.intercept(|n: &mut u32| if *n == 0 { Err("zero") } else { Ok(()) });
    /// let err = nonzero.publish(0).unwrap_err();
    /// assert!(matches!(err, PublishError::Rejected { event: 0, ref reason } if &**reason == "zero"));
    /// # Ok(()) }
    /// ```
    pub fn intercept<I: Interceptor<T>>(&self, interceptor: I) -> Intercepted<T, I> {
        Intercepted {
            topic: self.clone(),
            interceptor: Arc::new(interceptor),
        }
    }
}

impl<T: Clone + Send + 'static, I: Interceptor<T>> Intercepted<T, I> {
    /// Adds `next` after this handle's interceptor(s).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pinbus::intercept::RateLimit;
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let orders = engine.topic::<u32>("orders")?;
    /// let guarded = orders
    ///     .intercept(|n: &mut u32| if *n == 0 { Err("zero") } else { Ok(()) })
    ///     .intercept(RateLimit::per_second(1)); // runs after the first check
    /// assert!(guarded.publish(0).unwrap_err().is_rejected());
    /// assert!(guarded.publish(1).is_ok());
    /// # Ok(()) }
    /// ```
    pub fn intercept<J: Interceptor<T>>(self, next: J) -> Intercepted<T, Chain<ArcI<I>, J>> {
        Intercepted {
            topic: self.topic,
            interceptor: Arc::new(Chain(ArcI(self.interceptor), next)),
        }
    }

    /// The plain topic handle (no interceptor).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let checked = engine.topic::<u32>("orders")?.intercept(|_: &mut u32| Err::<(), _>("closed"));
    /// assert!(checked.publish(1).is_err());
    /// assert!(checked.topic().publish(1).is_ok()); // the plain handle skips the interceptor
    /// assert_eq!(checked.topic().rejected_count(), 1);
    /// # Ok(()) }
    /// ```
    pub fn topic(&self) -> &Topic<T> {
        &self.topic
    }

    /// Runs the interceptor: the (possibly changed) event, or the event and
    /// the reason it was refused (counted).
    #[inline]
    fn check(&self, mut event: T) -> Result<T, (T, Box<str>)> {
        match self.interceptor.admit(&mut event) {
            Ok(()) => Ok(event),
            Err(reason) => {
                self.topic.count_rejected();
                Err((event, reason))
            }
        }
    }

    #[inline]
    fn admit(&self, event: T) -> Result<T, PublishError<T>> {
        self.check(event)
            .map_err(|(event, reason)| PublishError::Rejected { event, reason })
    }

    /// [`Topic::publish`] after the interceptor.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let orders = engine.topic::<u32>("orders")?;
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// orders.subscribe(move |ev| tx.send(**ev).unwrap())?;
    /// let plus_one = orders.intercept(|n: &mut u32| -> Result<(), &str> { *n += 1; Ok(()) });
    /// plus_one.publish(1)?;
    /// assert_eq!(rx.recv()?, 2);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`PublishError::Rejected`] if the interceptor refused the event; else
    /// as [`Topic::publish`].
    pub fn publish(&self, event: T) -> Result<(), PublishError<T>> {
        self.topic.publish(self.admit(event)?)
    }

    /// [`Topic::try_publish`] after the interceptor.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let orders = engine.topic::<u32>("orders")?;
    /// let nonzero = orders.intercept(|n: &mut u32| if *n == 0 { Err("zero") } else { Ok(()) });
    /// assert!(nonzero.try_publish(1).is_ok());
    /// assert!(nonzero.try_publish(0).unwrap_err().is_rejected());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`PublishError::Rejected`], or as [`Topic::try_publish`].
    pub fn try_publish(&self, event: T) -> Result<(), PublishError<T>> {
        self.topic.try_publish(self.admit(event)?)
    }

    /// [`Topic::publish_async`] after the interceptor (which runs when the
    /// future is first polled; an interceptor that blocks — a waiting
    /// [`RateLimit`] — blocks the polling thread, so prefer a refusing one
    /// in async code).
    ///
    /// # Errors
    ///
    /// [`PublishError::Rejected`], or as [`Topic::publish_async`].
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pinbus::{Engine, PublishError};
    /// let engine = Engine::builder().workers(1).build()?;
    /// let orders = engine.topic::<u32>("orders")?;
    /// let positive = orders.intercept(|o: &mut u32| if *o > 0 { Ok(()) } else { Err("zero") });
    /// futures::executor::block_on(async {
    ///     positive.publish_async(1).await.unwrap();
    ///     assert!(matches!(positive.publish_async(0).await, Err(PublishError::Rejected { .. })));
    /// });
    /// # Ok(()) }
    /// ```
    pub async fn publish_async(&self, event: T) -> Result<(), PublishError<T>> {
        let event = self.admit(event)?;
        self.topic.publish_async(event).await
    }

    /// [`Topic::publish_tracked_async`] after the interceptor (which runs
    /// when the future is first polled; as for
    /// [`publish_async`](Intercepted::publish_async), prefer a refusing
    /// interceptor to a waiting one in async code).
    ///
    /// # Errors
    ///
    /// [`PublishError::Rejected`], or as [`Topic::publish_tracked_async`].
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pinbus::{Engine, PublishError};
    /// let engine = Engine::builder().workers(1).build()?;
    /// let orders = engine.topic::<u32>("orders")?;
    /// orders.subscribe(|_| ())?;
    /// let positive = orders.intercept(|o: &mut u32| if *o > 0 { Ok(()) } else { Err("zero") });
    /// futures::executor::block_on(async {
    ///     positive.publish_tracked_async(1).await.unwrap().await; // published and handled
    ///     assert!(matches!(
    ///         positive.publish_tracked_async(0).await,
    ///         Err(PublishError::Rejected { .. })
    ///     ));
    /// });
    /// assert_eq!(engine.shutdown().handled, 1);
    /// # Ok(()) }
    /// ```
    pub async fn publish_tracked_async(&self, event: T) -> Result<Receipt, PublishError<T>> {
        let event = self.admit(event)?;
        self.topic.publish_tracked_async(event).await
    }

    /// [`Topic::publish_tracked`] after the interceptor.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let orders = engine.topic::<u32>("orders")?;
    /// orders.subscribe(|_| ())?;
    /// let nonzero = orders.intercept(|n: &mut u32| if *n == 0 { Err("zero") } else { Ok(()) });
    /// nonzero.publish_tracked(1)?.wait()?;
    /// assert!(nonzero.publish_tracked(0).is_err());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`PublishError::Rejected`], or as [`Topic::publish_tracked`].
    pub fn publish_tracked(&self, event: T) -> Result<Receipt, PublishError<T>> {
        self.topic.publish_tracked(self.admit(event)?)
    }

    /// [`Topic::publish_and_wait`] after the interceptor.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let orders = engine.topic::<u32>("orders")?;
    /// orders.subscribe(|_| ())?;
    /// let nonzero = orders.intercept(|n: &mut u32| if *n == 0 { Err("zero") } else { Ok(()) });
    /// nonzero.publish_and_wait(1)?;
    /// assert!(nonzero.publish_and_wait(0).unwrap_err().is_rejected());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`PublishError::Rejected`], or as [`Topic::publish_and_wait`].
    pub fn publish_and_wait(&self, event: T) -> Result<(), PublishError<T>> {
        self.topic.publish_and_wait(self.admit(event)?)
    }

    /// [`Topic::publish_after`] after the interceptor (which runs now, not
    /// when the event fires).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let orders = engine.topic::<u32>("orders")?;
    /// let nonzero = orders.intercept(|n: &mut u32| if *n == 0 { Err("zero") } else { Ok(()) });
    /// let timer = nonzero.publish_after(Duration::from_secs(60), 1)?;
    /// assert_eq!(timer.cancel(), Some(1));
    /// assert!(nonzero.publish_after(Duration::from_secs(60), 0).is_err()); // refused now
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`PublishError::Rejected`], or as [`Topic::publish_after`].
    pub fn publish_after(&self, delay: Duration, event: T) -> Result<Timer<T>, PublishError<T>> {
        self.topic.publish_after(delay, self.admit(event)?)
    }

    /// [`Topic::publish_batch`] after the interceptor: events it refuses are
    /// left out and returned with their reasons; the rest are published as
    /// one batch.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let orders = engine.topic::<u32>("orders")?;
    /// let nonzero = orders.intercept(|n: &mut u32| if *n == 0 { Err("zero") } else { Ok(()) });
    /// let refused = nonzero.publish_batch([1, 0, 2])?;
    /// assert_eq!(refused.len(), 1);
    /// assert_eq!((refused[0].0, &*refused[0].1), (0, "zero"));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Topic::publish_batch`] for the admitted events.
    #[allow(clippy::type_complexity)]
    pub fn publish_batch(
        &self,
        events: impl IntoIterator<Item = T>,
    ) -> Result<Vec<(T, Box<str>)>, PublishError<Vec<T>>> {
        let mut refused = Vec::new();
        let admitted: Vec<T> = events
            .into_iter()
            .filter_map(|ev| match self.check(ev) {
                Ok(ev) => Some(ev),
                Err(no) => {
                    refused.push(no);
                    None
                }
            })
            .collect();
        self.topic.publish_batch(admitted)?;
        Ok(refused)
    }
}

/// An interceptor shared behind an `Arc` (the earlier part of a chain).
///
/// # Examples
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use pinbus::intercept::{ArcI, Chain, Intercepted, RateLimit};
/// let engine = pinbus::Engine::builder().workers(1).build()?;
/// // The first part of a chain is kept as an `ArcI`.
/// let limited: Intercepted<u32, Chain<ArcI<RateLimit>, RateLimit>> = engine
///     .topic::<u32>("t")?
///     .intercept(RateLimit::per_second(100))
///     .intercept(RateLimit::per_second(100));
/// # drop(limited);
/// # Ok(()) }
/// ```
pub struct ArcI<I>(Arc<I>);

impl<I> fmt::Debug for ArcI<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ArcI(..)")
    }
}

impl<T, I: Interceptor<T>> Interceptor<T> for ArcI<I> {
    #[inline]
    fn admit(&self, event: &mut T) -> Result<(), Box<str>> {
        self.0.admit(event)
    }
}

/// A lock-free token bucket shared by every publisher of a handle: at most
/// `rate` events per second on average, bursts of up to `burst`. By default
/// an event that finds no token is refused ([`PublishError::Rejected`]);
/// [`RateLimit::wait`] makes the publisher wait for one instead.
///
/// The state is one atomic timestamp (GCRA: the theoretical arrival time of
/// the next event), updated with a compare-and-swap, so publishers never
/// block each other.
///
/// ```
/// use pinbus::intercept::RateLimit;
/// let limit = RateLimit::per_second(1_000).burst(100);
/// # let _ = limit;
/// ```
#[derive(Debug)]
pub struct RateLimit {
    gcra: Gcra,
    wait: bool,
    /// Nanoseconds since the event epoch when the next event is due.
    tat: AtomicU64,
}

impl RateLimit {
    /// `rate` events per second (at least 1), bursts of `rate / 10` (at
    /// least 1), refusing the excess.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pinbus::intercept::RateLimit;
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let limited = engine.topic::<u32>("t")?.intercept(RateLimit::per_second(1)); // burst 1
    /// assert!(limited.publish(1).is_ok());
    /// assert!(limited.publish(2).unwrap_err().is_rejected()); // next token in a second
    /// # Ok(()) }
    /// ```
    pub fn per_second(rate: u32) -> Self {
        RateLimit::with(Gcra::new(rate, rate.max(1) / 10), false)
    }

    /// Lets up to `burst` (at least 1) events through back to back.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pinbus::intercept::RateLimit;
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let limited = engine.topic::<u32>("t")?.intercept(RateLimit::per_second(1).burst(3));
    /// assert!((0..3).all(|n| limited.publish(n).is_ok()));
    /// assert!(limited.publish(3).unwrap_err().is_rejected());
    /// # Ok(()) }
    /// ```
    pub fn burst(self, burst: u32) -> Self {
        RateLimit::with(Gcra::new(self.gcra.rate, burst), self.wait)
    }

    /// Waits for a token instead of refusing the event (a throttle).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pinbus::intercept::RateLimit;
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let throttled = engine.topic::<u32>("t")?.intercept(RateLimit::per_second(1000).burst(1).wait());
    /// for n in 0..3 {
    ///     throttled.publish(n)?; // waits about 1 ms for a token instead of refusing
    /// }
    /// # Ok(()) }
    /// ```
    pub fn wait(self) -> Self {
        RateLimit::with(Gcra::new(self.gcra.rate, self.gcra.burst()), true)
    }

    fn with(gcra: Gcra, wait: bool) -> Self {
        RateLimit {
            gcra,
            wait,
            tat: AtomicU64::new(0),
        }
    }

    /// Takes a token at `now` (nanoseconds), or says how long until one.
    fn take(&self, now: u64) -> Option<u64> {
        // Relaxed: the bucket orders nothing but itself; the CAS makes each
        // token go to one publisher.
        let mut tat = self.tat.load(Ordering::Relaxed);
        loop {
            let next = match self.gcra.step(tat, now) {
                Ok(next) => next,
                Err(wait) => return Some(wait),
            };
            match self
                .tat
                .compare_exchange_weak(tat, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return None,
                Err(current) => tat = current,
            }
        }
    }
}

impl<T> Interceptor<T> for RateLimit {
    fn admit(&self, _event: &mut T) -> Result<(), Box<str>> {
        loop {
            match self.take(now_nanos()) {
                None => return Ok(()),
                Some(wait) if self.wait => {
                    let until = Instant::now() + Duration::from_nanos(wait);
                    crate::loom::sleep(until.saturating_duration_since(Instant::now()));
                }
                Some(wait) => {
                    return Err(format!(
                        "rate limit of {} events/s reached; next token in {:?}",
                        self.gcra.rate,
                        Duration::from_nanos(wait)
                    )
                    .into())
                }
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_allows_a_burst_then_one_token_per_interval() {
        let limit = RateLimit::per_second(1_000).burst(3);
        let t0 = 1_000_000_000;
        assert_eq!(
            (0..5).map(|_| limit.take(t0).is_none()).collect::<Vec<_>>(),
            [true, true, true, false, false]
        );
        // 1 ms later: one more token.
        assert!(limit.take(t0 + 1_000_000).is_none());
        assert!(limit.take(t0 + 1_000_000).is_some());
        // After a long pause the burst is back, not more.
        let later = t0 + 10_000_000_000;
        assert_eq!((0..4).filter(|_| limit.take(later).is_none()).count(), 3);
    }

    #[test]
    fn a_refusal_says_how_long_until_the_next_token() {
        let limit = RateLimit::per_second(10).burst(1);
        assert!(limit.take(5).is_none());
        assert_eq!(limit.take(5), Some(100_000_000));
    }
}
