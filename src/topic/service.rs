//! Local request/reply: a [`Service`] is an internal topic of requests
//! whose members are one consumer group.
//!
//! A call moves its query into a reply slot (`event::reply`, reused from a
//! per-thread pool), publishes the request on the service's topic,
//! `$service.<name>`, and waits on the slot. The member that gets the
//! request runs the handler on an [`Event`] of the query (same metadata,
//! the service's name as its topic) and fills the slot. A request that is
//! dropped untaken (no member; the last one left) hands its query back.
//! Pattern subscriptions never match the topic (`open::is_internal`).

use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::event::meta::Event;
use crate::event::name::{invalid_topic_name, TopicName};
use crate::event::reply::{self, ReplySlot, Request, Responder, Settled};
use crate::layer::outcome::ReplyOutcome;
use crate::loom::sync::atomic::{AtomicU64, Ordering};
use crate::loom::sync::Arc;
use crate::runtime::subscription::Subscription;
use crate::runtime::workers::RUNNING;
use crate::sys::call_error::CallError;
use crate::sys::error::{PublishError, SubscribeError, TopicError};
use crate::topic::handle::Topic;
use crate::topic::names::Hub;
use crate::topic::open::SERVICE_PREFIX;

/// The group a service's members form on its topic.
const MEMBERS: &str = "members";

/// A request/reply service: queries of type `Q` answered with replies of
/// type `R` by the members that [`serve`](Service::serve) it.
///
/// Members are one consumer group: each call is handled by exactly one
/// member, and calls spread over them (they run on their workers, in
/// parallel). The service's name is checked as a topic name; its requests
/// travel on an internal topic that pattern subscriptions never match.
/// Handles are cheap to clone; every handle of a name reaches the same
/// members.
///
/// ## Errors
///
/// A call says why it got no reply with a [`CallError`]: no member (at
/// once, the query handed back), the handler failed (its message or panic),
/// timed out, or the engine is closed.
///
/// ## Shutdown
///
/// Calls accepted before shutdown are answered (shutdown drains them
/// through the members); calls after it, or whose request shutdown
/// discarded, get [`CallError::Closed`].
///
/// # Examples
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use pinbus::{Engine, Service};
/// let engine = Engine::builder().workers(2).build()?;
/// let square: Service<u64, u64> = engine.service("math.square")?;
/// square.serve(|n| **n * **n)?;
/// square.serve(|n| **n * **n)?; // a second member: calls spread over both
/// assert_eq!(square.call(12)?, 144);
/// # Ok(()) }
/// ```
pub struct Service<Q, R> {
    topic: Topic<Request<Q, R>>,
    /// The service's own name, the topic of the events handlers see.
    name: &'static TopicName,
}

impl Hub {
    /// Opens or creates the service `name` (`Engine::service`).
    pub(crate) fn service<Q: Send + 'static, R: Send + 'static>(
        this: &Arc<Self>,
        name: &str,
    ) -> Result<Service<Q, R>, TopicError> {
        if let Some(reason) = invalid_topic_name(name) {
            return Err(TopicError::InvalidName {
                name: name.to_owned(),
                reason,
            });
        }
        let topic = Hub::open_internal(this, &format!("{SERVICE_PREFIX}{name}"))?;
        Ok(Service {
            topic,
            name: TopicName::intern(name),
        })
    }
}

impl<Q: Send + 'static, R: Send + 'static> Service<Q, R> {
    /// The service's name.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// assert_eq!(engine.service::<u8, u8>("ping")?.name(), "ping");
    /// # Ok(()) }
    /// ```
    pub fn name(&self) -> &str {
        self.name.as_str()
    }

    /// Adds a member answering calls with `handler`: it returns the reply,
    /// or `Result<R, E>` with `E: Display` (an `Err` answers
    /// [`CallError::Failed`] with its text). A panic answers
    /// [`CallError::Failed`] with the panic message; the member stays.
    /// Call it N times for N members. Unsubscribing the returned
    /// [`Subscription`] removes the member (dropping it does not).
    ///
    /// # Errors
    ///
    /// [`SubscribeError::Closed`] after shutdown started.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let upper = engine.service::<String, String>("text.upper")?;
    /// let member = upper.serve(|s| s.to_uppercase())?;
    /// assert_eq!(upper.call("hi".to_owned())?, "HI");
    /// member.unsubscribe();
    /// assert!(upper.call("hi".to_owned()).is_err()); // no member left
    /// # Ok(()) }
    /// ```
    pub fn serve<F, O>(&self, mut handler: F) -> Result<Subscription, SubscribeError>
    where
        F: FnMut(&Event<Q>) -> O + Send + 'static,
        O: ReplyOutcome<R> + 'static,
    {
        let name = self.name;
        let runtime = self.topic.shared.runtime.clone();
        self.topic.group(MEMBERS).subscribe(
            move |request: &Event<Request<Q, R>>| -> Result<(), Box<str>> {
                let slot = &request.value.slot;
                let Some(query) = slot.take_query() else {
                    return Ok(()); // the caller gave up
                };
                let event = Event::tracked(query, name, request.meta, None);
                let answer = catch_unwind(AssertUnwindSafe(|| {
                    let answer = handler(&event).into_reply();
                    drop(event);
                    answer
                }))
                .unwrap_or_else(|panic| Err(panic_message(panic, &runtime.stray_panics)));
                let failed = answer.as_ref().err().map(|e| e.clone().into_boxed_str());
                slot.answer(answer);
                failed.map_or(Ok(()), Err)
            },
        )
    }

    /// Adds a member that answers later, from any thread: `handler` gets
    /// each query with its [`Responder`] and the request's trace context,
    /// and must not block (it runs on the member's worker). The NATS
    /// bridge's remote services are such members.
    #[cfg_attr(not(feature = "nats"), allow(dead_code))] // used by the NATS bridge
    pub(crate) fn serve_deferred<F>(
        &self,
        mut handler: F,
        options: crate::SubscribeOptions,
    ) -> Result<Subscription, SubscribeError>
    where
        F: FnMut(Q, Responder<Q, R>, crate::TraceContext) + Send + 'static,
    {
        self.topic.group(MEMBERS).subscribe_with(
            move |request: &Event<Request<Q, R>>| {
                if let Some((query, responder)) = request.value.defer() {
                    handler(query, responder, request.trace_context());
                }
            },
            options,
        )
    }

    /// Calls the service and waits for the reply.
    ///
    /// # Errors
    ///
    /// [`CallError::NoServer`] at once when no member serves it (the query
    /// comes back), [`CallError::Failed`] with the handler's error or panic
    /// message, [`CallError::Closed`] after shutdown, and
    /// [`CallError::WouldDeadlock`] from a handler on this engine's workers.
    /// A handler on *another* engine's workers is not refused: if that
    /// engine's service is called back from here in turn (A's member calls
    /// B, B's member calls A), both wait on each other for ever; use
    /// [`call_timeout`](Service::call_timeout) or
    /// [`call_async`](Service::call_async) across engines.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let len = engine.service::<String, usize>("text.len")?;
    /// len.serve(|s| s.len())?;
    /// assert_eq!(len.call("four".to_owned())?, 4);
    /// # Ok(()) }
    /// ```
    pub fn call(&self, query: Q) -> Result<R, CallError<Q>> {
        self.call_until(query, None)
    }

    /// [`call`](Service::call), waiting at most about `timeout` for the
    /// reply (a late reply is discarded; a member that has not started on
    /// the request yet skips it).
    ///
    /// # Errors
    ///
    /// As [`call`](Service::call), plus [`CallError::Timeout`].
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// use pinbus::CallError;
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let slow = engine.service::<u64, u64>("slow")?;
    /// slow.serve(|ms| { std::thread::sleep(Duration::from_millis(**ms)); **ms })?;
    /// assert!(matches!(slow.call_timeout(200, Duration::from_millis(5)), Err(CallError::Timeout)));
    /// assert_eq!(slow.call_timeout(0, Duration::from_secs(5))?, 0);
    /// # Ok(()) }
    /// ```
    pub fn call_timeout(&self, query: Q, timeout: Duration) -> Result<R, CallError<Q>> {
        self.call_until(query, Some(Instant::now() + timeout))
    }

    fn call_until(&self, query: Q, deadline: Option<Instant>) -> Result<R, CallError<Q>> {
        if crate::sys::context::on_worker_of(self.topic.shared.runtime.id) {
            return Err(CallError::WouldDeadlock(query));
        }
        let (request, slot) = reply::request::<Q, R>(query);
        let published = match deadline {
            None => self.topic.publish(request),
            Some(d) => {
                (self.topic).publish_timeout(request, d.saturating_duration_since(Instant::now()))
            }
        };
        if let Err(refused) = published {
            return Err(self.refused(refused, &slot));
        }
        match slot.wait(deadline, self.topic.shared.runtime.waiters_spin) {
            Some(settled) => self.settled(settled),
            None => Err(CallError::Timeout),
        }
    }

    /// [`call`](Service::call) for async code: awaits the reply (and room
    /// in a full lane) without blocking the thread. Runtime-agnostic. Safe
    /// to call from a handler. Dropping the future gives up the call.
    ///
    /// # Errors
    ///
    /// As [`call`](Service::call), without `WouldDeadlock`.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let double = engine.service::<u32, u32>("double")?;
    /// double.serve(|n| **n * 2)?;
    /// let reply = futures::executor::block_on(double.call_async(21))?;
    /// assert_eq!(reply, 42);
    /// # Ok(()) }
    /// ```
    pub async fn call_async(&self, query: Q) -> Result<R, CallError<Q>> {
        let (request, slot) = reply::request::<Q, R>(query);
        let waiting = Waiting(slot.clone());
        if let Err(refused) = self.topic.publish_async(request).await {
            return Err(self.refused(refused, &slot));
        }
        let settled = waiting.await;
        self.settled(settled)
    }

    /// The error for a request the topic refused: it was dropped with its
    /// query untaken, so the query is in the slot.
    fn refused(
        &self,
        refused: PublishError<Request<Q, R>>,
        slot: &ReplySlot<Q, R>,
    ) -> CallError<Q> {
        let timed_out = refused.is_timeout();
        drop(refused);
        match slot.wait(Some(Instant::now()), false) {
            Some(Settled::Unanswered(q)) if !timed_out && self.running() => CallError::NoServer(q),
            _ if timed_out => CallError::Timeout,
            _ => CallError::Closed,
        }
    }

    fn settled(&self, settled: Settled<Q, R>) -> Result<R, CallError<Q>> {
        match settled {
            Settled::Answered(answer) => answer.map_err(CallError::Failed),
            Settled::Unanswered(q) if self.running() => Err(CallError::NoServer(q)),
            Settled::Unanswered(_) => Err(CallError::Closed),
            Settled::Expired => Err(CallError::Timeout),
        }
    }

    fn running(&self) -> bool {
        self.topic.shared.runtime.state() == RUNNING
    }
}

/// Awaits a reply slot; gives the call up when dropped unsettled.
struct Waiting<Q, R>(Arc<ReplySlot<Q, R>>);

impl<Q, R> Future for Waiting<Q, R> {
    type Output = Settled<Q, R>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.poll_settled(cx)
    }
}

impl<Q, R> Drop for Waiting<Q, R> {
    fn drop(&mut self) {
        // Settled already: a no-op (the outcome was taken, the slot is
        // `Abandoned`). Otherwise the member skips or discards the call.
        self.0.abandon();
    }
}

/// The text of a handler's panic. A panic in the payload's `Drop` is
/// contained and counted in `stray` (the engine's stray panics).
fn panic_message(panic: Box<dyn std::any::Any + Send>, stray: &AtomicU64) -> String {
    let text = match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
        (Some(s), _) => format!("the handler panicked: {s}"),
        (None, Some(s)) => format!("the handler panicked: {s}"),
        (None, None) => "the handler panicked".to_owned(),
    };
    let mut strays = 0;
    crate::sys::contain::drop_payload(panic, &mut strays);
    if strays > 0 {
        stray.fetch_add(strays, Ordering::Relaxed);
    }
    text
}

impl<Q, R> Clone for Service<Q, R> {
    fn clone(&self) -> Self {
        Service {
            topic: self.topic.clone(),
            name: self.name,
        }
    }
}

impl<Q, R> fmt::Debug for Service<Q, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Service")
            .field("name", &self.name.as_str())
            .field("query", &std::any::type_name::<Q>())
            .field("reply", &std::any::type_name::<R>())
            .finish_non_exhaustive()
    }
}
