//! A local [`Service`](crate::Service) standing for a remote one
//! ([`Bridge::remote`]): a member of the service that sends each call as a
//! core NATS request and answers it with the reply, from the bridge's
//! runtime (the worker that hands it the call never waits).
//!
//! A reply with the `Nats-Service-Error` header fails the call with its
//! text; code 503 (no member took it) and NATS's "no responders" hand the
//! query back ([`CallError::NoServer`](crate::CallError::NoServer)); no
//! reply within the link's timeout is
//! [`CallError::Timeout`](crate::CallError::Timeout).
//!
//! [`Bridge::remote`]: super::Bridge::remote

use std::time::Duration;

use async_nats::{HeaderMap, Message, RequestErrorKind};

use super::codec::Codec;
use super::headers::{CONTENT_TYPE, SERVICE_ERROR, SERVICE_ERROR_CODE, TRACEPARENT};
use super::serve::{NO_SERVER, TIMED_OUT};
use super::service_link::ServiceShared;
use crate::event::reply::Responder;
use crate::loom::sync::atomic::{AtomicUsize, Ordering};
use crate::loom::sync::Arc;
use crate::TraceContext;

/// What the remote member needs to forward a call.
pub(crate) struct Remote<C> {
    pub(crate) client: async_nats::Client,
    pub(crate) subject: async_nats::Subject,
    pub(crate) codec: C,
    pub(crate) timeout: Duration,
    pub(crate) max_in_flight: usize,
    pub(crate) in_flight: AtomicUsize,
    pub(crate) shared: Arc<ServiceShared>,
}

/// Frees a call's place in `max_in_flight` when it ends, however it ends.
struct Place<C>(Arc<Remote<C>>);

impl<C> Drop for Place<C> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The member's handler: starts the call on `runtime`, or refuses it at
/// once when `max_in_flight` calls are out.
pub(crate) fn member<Q, R, C>(
    remote: Arc<Remote<C>>,
    runtime: tokio::runtime::Handle,
) -> impl FnMut(Q, Responder<Q, R>, TraceContext) + Send + 'static
where
    Q: Send + 'static,
    R: Send + 'static,
    C: Codec<Q> + Codec<R>,
{
    move |query, responder, trace| {
        // Relaxed: a bound on work in flight, no data travels with it.
        if remote.in_flight.fetch_add(1, Ordering::Relaxed) >= remote.max_in_flight {
            remote.in_flight.fetch_sub(1, Ordering::Relaxed);
            remote.shared.count(false);
            responder.answer(Err(format!(
                "{} calls to NATS subject {:?} are in flight already; raise \
                 ServiceOptions::max_in_flight or call less at once",
                remote.max_in_flight, remote.shared.subject
            )));
            return;
        }
        let place = Place(remote.clone());
        runtime.spawn(async move {
            place.0.call(query, responder, trace).await;
            drop(place);
        });
    }
}

impl<C> Remote<C> {
    async fn call<Q, R>(&self, query: Q, responder: Responder<Q, R>, trace: TraceContext)
    where
        C: Codec<Q> + Codec<R>,
    {
        if responder.abandoned() {
            return;
        }
        let subject = &self.shared.subject;
        let body = match Codec::<Q>::encode(&self.codec, &query) {
            Ok(body) => body,
            Err(e) => {
                self.shared.count(false);
                return responder.answer(Err(format!(
                    "the query cannot be encoded for NATS subject {subject:?}: {e}"
                )));
            }
        };
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, Codec::<Q>::content_type(&self.codec));
        headers.insert(TRACEPARENT, trace.to_traceparent().as_str());
        let request = async_nats::Request::new()
            .headers(headers)
            .payload(body.into())
            .timeout(Some(self.timeout));
        let sent = self
            .client
            .send_request(self.subject.clone(), request)
            .await;
        let outcome = match sent {
            Ok(message) => self.read(message),
            Err(e) if e.kind() == RequestErrorKind::NoResponders => Outcome::NoServer,
            Err(e) if e.kind() == RequestErrorKind::TimedOut => Outcome::TimedOut,
            Err(e) => Outcome::Failed(format!("the NATS request on {subject:?} failed: {e}")),
        };
        self.shared.count(matches!(outcome, Outcome::Reply(_)));
        match outcome {
            Outcome::Reply(reply) => responder.answer(Ok(reply)),
            Outcome::Failed(text) => responder.answer(Err(text)),
            Outcome::NoServer => responder.hand_back(query),
            Outcome::TimedOut => responder.expire(),
        }
    }

    /// What a reply message says.
    fn read<R>(&self, message: Message) -> Outcome<R>
    where
        C: Codec<R>,
    {
        let header = |name: &str| {
            let headers = message.headers.as_ref()?;
            Some(headers.get(name)?.as_str().to_owned())
        };
        if let Some(text) = header(SERVICE_ERROR) {
            return match header(SERVICE_ERROR_CODE).as_deref() {
                Some(NO_SERVER) => Outcome::NoServer,
                Some(TIMED_OUT) => Outcome::TimedOut,
                Some(code) => Outcome::Failed(format!("{text} (error {code})")),
                None => Outcome::Failed(text),
            };
        }
        match self.codec.decode(&message.payload) {
            Ok(reply) => Outcome::Reply(reply),
            Err(e) => Outcome::Failed(format!(
                "the reply on NATS subject {:?} is not a valid {}: {e}",
                self.shared.subject,
                std::any::type_name::<R>()
            )),
        }
    }
}

/// How a remote call ended.
enum Outcome<R> {
    Reply(R),
    Failed(String),
    NoServer,
    TimedOut,
}
