//! Setting up service links: [`Bridge::serve`] and [`Bridge::remote`]
//! (core NATS request/reply, no JetStream).

use std::time::Duration;

use futures_util::StreamExt;

use super::bridge::{block_on, Bridge};
use super::codec::{Codec, Json};
use super::error::BridgeError;
use super::permission::guarded;
use super::remote::{self, Remote};
use super::serve::Serve;
use super::service_link::{Direction, ServiceLink, ServiceShared};
use super::service_options::ServiceOptions;
use super::subject;
use crate::loom::sync::atomic::AtomicUsize;
use crate::loom::sync::Arc;
use crate::{Service, SubscribeOptions};

impl Bridge {
    /// Answers the NATS requests on `subject` with `service`'s members, as
    /// JSON, with the default [`ServiceOptions`].
    ///
    /// # Errors
    ///
    /// As [`serve_with`](Bridge::serve_with).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use pinbus::nats::{Bridge, BridgeOptions};
    /// # let engine = pinbus::Engine::builder().build()?;
    /// # let bridge = Bridge::connect("nats://127.0.0.1:4222", &engine, BridgeOptions::default())?;
    /// let square = engine.service::<u64, u64>("math.square")?;
    /// square.serve(|n| **n * **n)?;
    /// bridge.serve(&square, "math.square")?;
    /// // Any NATS client now gets `144` for a request `12` on math.square,
    /// // e.g. `nats req math.square 12`.
    /// # Ok(()) }
    /// ```
    pub fn serve<Q, R>(
        &self,
        service: &Service<Q, R>,
        subject: &str,
    ) -> Result<ServiceLink, BridgeError>
    where
        Q: Send + 'static,
        R: Send + 'static,
        Json: Codec<Q> + Codec<R>,
    {
        self.serve_with(service, subject, ServiceOptions::new())
    }

    /// Answers the NATS requests on `subject` with `service`'s members.
    ///
    /// The bridge subscribes to `subject` in the queue group
    /// [`ServiceOptions::queue_group`] (processes in the same group share
    /// the requests) and answers each request with a local
    /// [`call`](Service::call_async): the reply encoded with the codec
    /// (`Content-Type` header), or an error reply in the NATS services
    /// convention, an empty body with the headers `Nats-Service-Error` (the
    /// text) and `Nats-Service-Error-Code`: 400 for a query the codec
    /// cannot decode, 500 when the handler failed, 503 when no member
    /// serves the service, 504 past [`ServiceOptions::timeout`]. The
    /// subscription is in place (the server has it) when this returns.
    ///
    /// # Errors
    ///
    /// [`BridgeError::InvalidSubject`] for a subject with wildcards or bad
    /// tokens, [`BridgeError::InvalidOption`], [`BridgeError::Permission`]
    /// when the user may not subscribe to the subject,
    /// [`BridgeError::Connect`] when the subscription could not be made,
    /// [`BridgeError::Closed`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use pinbus::nats::{Bridge, BridgeOptions};
    /// use std::time::Duration;
    /// use pinbus::nats::ServiceOptions;
    /// # let engine = pinbus::Engine::builder().build()?;
    /// # let bridge = Bridge::connect("nats://127.0.0.1:4222", &engine, BridgeOptions::default())?;
    /// let quotes = engine.service::<String, f64>("pricing.quote")?;
    /// quotes.serve(|sku| if sku.is_empty() { Err("empty SKU") } else { Ok(9.99) })?;
    /// let options = ServiceOptions::new().queue_group("pricing").timeout(Duration::from_secs(1));
    /// bridge.serve_with(&quotes, "pricing.quote", options)?;
    /// # Ok(()) }
    /// ```
    pub fn serve_with<Q, R, C>(
        &self,
        service: &Service<Q, R>,
        subject: &str,
        options: ServiceOptions<C>,
    ) -> Result<ServiceLink, BridgeError>
    where
        Q: Send + 'static,
        R: Send + 'static,
        C: Codec<Q> + Codec<R>,
    {
        let shared = self.new_link(service.name(), subject, &options, Direction::Serve)?;
        let client = self.inner.js.client();
        let (c, s, group) = (client.clone(), subject.to_owned(), options.queue_group);
        let (url, errors) = (self.inner.url.clone(), self.inner.server_errors.clone());
        let requests = block_on(self.handle()?, async move {
            guarded(&errors, subscribe_confirmed(c, s, group, url)).await
        })??;
        let serve = Serve {
            client,
            service: service.clone(),
            codec: Arc::new(options.codec),
            timeout: options.timeout,
            max_in_flight: options.max_in_flight,
            shared: shared.clone(),
        };
        *shared.task.lock() = Some(self.handle()?.spawn(serve.run(requests)));
        self.inner.services.lock().push(shared.clone());
        Ok(ServiceLink { shared })
    }

    /// Makes `service` stand for the remote service answering on
    /// `subject`, as JSON, with the default [`ServiceOptions`].
    ///
    /// # Errors
    ///
    /// As [`remote_with`](Bridge::remote_with).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use pinbus::nats::{Bridge, BridgeOptions};
    /// # let engine = pinbus::Engine::builder().build()?;
    /// # let bridge = Bridge::connect("nats://127.0.0.1:4222", &engine, BridgeOptions::default())?;
    /// let square = engine.service::<u64, u64>("math.square")?;
    /// bridge.remote(&square, "math.square")?;
    /// // Answered by whichever process serves math.square, in any language.
    /// let n = square.call(12)?;
    /// # let _ = n;
    /// # Ok(()) }
    /// ```
    pub fn remote<Q, R>(
        &self,
        service: &Service<Q, R>,
        subject: &str,
    ) -> Result<ServiceLink, BridgeError>
    where
        Q: Send + 'static,
        R: Send + 'static,
        Json: Codec<Q> + Codec<R>,
    {
        self.remote_with(service, subject, ServiceOptions::new())
    }

    /// Makes `service` stand for the remote service answering on
    /// `subject`: a member joins it that sends each call as a core NATS
    /// request (body in the codec, `Content-Type` and `traceparent`
    /// headers) and answers the call with the reply, from the bridge's
    /// runtime (the member's worker never waits on NATS). `call`,
    /// `call_timeout` and `call_async` then work as for a local service:
    /// an error reply (`Nats-Service-Error`) is [`CallError::Failed`]
    /// with its text; NATS's "no responders" and error code 503 are
    /// [`CallError::NoServer`] with the query back; no reply within
    /// [`ServiceOptions::timeout`] (or error code 504) is
    /// [`CallError::Timeout`]. Local members may serve alongside: calls
    /// spread over all members. The subject is not probed at set-up (a
    /// probe would be a call): where the user may not publish to it, the
    /// server drops each request and calls time out.
    ///
    /// [`CallError::Failed`]: crate::CallError::Failed
    /// [`CallError::NoServer`]: crate::CallError::NoServer
    /// [`CallError::Timeout`]: crate::CallError::Timeout
    ///
    /// # Errors
    ///
    /// [`BridgeError::InvalidSubject`], [`BridgeError::InvalidOption`],
    /// [`BridgeError::Subscribe`] when the engine is shut down,
    /// [`BridgeError::Closed`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use pinbus::nats::{Bridge, BridgeOptions};
    /// use std::time::Duration;
    /// use pinbus::CallError;
    /// use pinbus::nats::ServiceOptions;
    /// # let engine = pinbus::Engine::builder().build()?;
    /// # let bridge = Bridge::connect("nats://127.0.0.1:4222", &engine, BridgeOptions::default())?;
    /// let quotes = engine.service::<String, f64>("pricing.quote")?;
    /// bridge.remote_with(&quotes, "eu.pricing.quote",
    ///     ServiceOptions::new().timeout(Duration::from_millis(200)))?;
    /// match quotes.call("sku-1".to_owned()) {
    ///     Ok(price) => println!("{price}"),
    ///     Err(CallError::NoServer(sku)) => println!("nobody prices {sku} right now"),
    ///     Err(e) => println!("{e}"),
    /// }
    /// # Ok(()) }
    /// ```
    pub fn remote_with<Q, R, C>(
        &self,
        service: &Service<Q, R>,
        subject: &str,
        options: ServiceOptions<C>,
    ) -> Result<ServiceLink, BridgeError>
    where
        Q: Send + 'static,
        R: Send + 'static,
        C: Codec<Q> + Codec<R>,
    {
        let shared = self.new_link(service.name(), subject, &options, Direction::Remote)?;
        let remote = Arc::new(Remote {
            client: self.inner.js.client(),
            subject: async_nats::Subject::from(subject),
            codec: options.codec,
            timeout: options.timeout,
            max_in_flight: options.max_in_flight,
            in_flight: AtomicUsize::new(0),
            shared: shared.clone(),
        });
        let member = remote::member::<Q, R, C>(remote, self.handle()?.clone());
        let sub_options = SubscribeOptions::new().name(format!("nats-remote:{subject}"));
        let member =
            service
                .serve_deferred(member, sub_options)
                .map_err(|e| BridgeError::Subscribe {
                    topic: service.name().to_owned(),
                    reason: e.to_string(),
                })?;
        *shared.member.lock() = Some(member);
        self.inner.services.lock().push(shared.clone());
        Ok(ServiceLink { shared })
    }

    /// The checks every service link passes, and its new shared state.
    /// Linking `service` to `subject` one way when this bridge links them
    /// the other way is refused: each call would go round between the
    /// served subject and the remote stand-in until it timed out.
    fn new_link<C>(
        &self,
        service: &str,
        subject: &str,
        options: &ServiceOptions<C>,
        direction: Direction,
    ) -> Result<Arc<ServiceShared>, BridgeError> {
        self.check_open()?;
        options.validate()?;
        subject::validate_service(subject)?;
        let services = self.inner.services.lock();
        let looped = services
            .iter()
            .any(|s| s.direction != direction && s.subject == subject && s.service == service);
        if looped {
            return Err(BridgeError::InvalidOption {
                problem: format!(
                    "service {service:?} is both served on and answered through NATS subject \
                     {subject:?} by this bridge: calls would go round between the two until \
                     they time out; serve it in one process and call it through `remote` in \
                     the others, or use two subjects"
                ),
            });
        }
        Ok(Arc::new(ServiceShared::new(subject, service, direction)))
    }
}

/// Subscribes to `subject` in `group` and returns once the server has the
/// subscription: it handles a connection's messages in order, so once a
/// message to a fresh inbox, subscribed after, comes back, it has it (a
/// flush only empties the socket). A short grace then lets a permission
/// error the server sent about the subscription arrive (it travels apart
/// from the messages), which [`guarded`] turns into
/// [`BridgeError::Permission`].
async fn subscribe_confirmed(
    client: async_nats::Client,
    subject: String,
    group: String,
    url: String,
) -> Result<async_nats::Subscriber, BridgeError> {
    let failed = |e: &dyn std::fmt::Display| BridgeError::Connect {
        url: url.clone(),
        reason: format!("cannot subscribe to {subject:?} to serve it: {e}"),
    };
    let requests =
        (client.queue_subscribe(subject.clone(), group).await).map_err(|e| failed(&e))?;
    let inbox = client.new_inbox();
    let mut probe = (client.subscribe(inbox.clone()).await).map_err(|e| failed(&e))?;
    (client.publish(inbox, bytes::Bytes::new()).await).map_err(|e| failed(&e))?;
    let confirmed = tokio::time::timeout(CONFIRM_WITHIN, probe.next()).await;
    if !matches!(confirmed, Ok(Some(_))) {
        return Err(failed(
            &"the server did not confirm the subscription within 10 s",
        ));
    }
    tokio::time::sleep(PERMISSION_GRACE).await;
    Ok(requests)
}

/// How long a served subject's subscription may take to be confirmed.
const CONFIRM_WITHIN: Duration = Duration::from_secs(10);
/// How long after the confirmation a permission error may still come.
const PERMISSION_GRACE: Duration = Duration::from_millis(50);
