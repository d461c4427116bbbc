//! A local service answering NATS requests ([`Bridge::serve`]): a task
//! reads the subject in a queue group and answers each request through
//! [`Service::call_async`], replies in the codec, failures as error replies
//! in the NATS services convention (`Nats-Service-Error` and
//! `Nats-Service-Error-Code` headers, empty body), so any NATS client can
//! tell them apart.
//!
//! [`Bridge::serve`]: super::Bridge::serve

use std::time::Duration;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use async_nats::{HeaderMap, Message, Subscriber};
use futures_util::StreamExt;
use tokio::sync::Semaphore;

use super::codec::Codec;
use super::headers::{CONTENT_TYPE, SERVICE_ERROR, SERVICE_ERROR_CODE, TRACEPARENT};
use super::service_link::ServiceShared;
use crate::loom::sync::Arc;
use crate::{CallError, Service, TraceContext};

/// What a served subject needs to answer its requests.
pub(crate) struct Serve<Q, R, C> {
    pub(crate) client: async_nats::Client,
    pub(crate) service: Service<Q, R>,
    pub(crate) codec: Arc<C>,
    pub(crate) timeout: Duration,
    pub(crate) max_in_flight: usize,
    pub(crate) shared: Arc<ServiceShared>,
}

impl<Q, R, C> Serve<Q, R, C>
where
    Q: Send + 'static,
    R: Send + 'static,
    C: Codec<Q> + Codec<R>,
{
    /// Answers the requests `requests` brings, at most `max_in_flight` at
    /// once, until the subscription ends or the task is aborted.
    pub(crate) async fn run(self, mut requests: Subscriber) {
        let this = Arc::new(self);
        let permits = Arc::new(Semaphore::new(this.max_in_flight));
        loop {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return;
            };
            let Some(message) = requests.next().await else {
                return;
            };
            let this = this.clone();
            tokio::spawn(async move {
                this.answer(message).await;
                drop(permit);
            });
        }
    }

    async fn answer(&self, message: Message) {
        let Some(reply_to) = message.reply else {
            // A publish, not a request: nobody waits for an answer.
            self.shared.count(false);
            return;
        };
        // The local call joins the caller's trace, as an import does.
        let trace = (message.headers.as_ref())
            .and_then(|h| h.get(TRACEPARENT))
            .and_then(|v| TraceContext::from_traceparent(v.as_str()));
        let reply = InTrace {
            trace,
            inner: Box::pin(self.reply(&message.payload)),
        };
        let (headers, body) = match reply.await {
            Ok(body) => {
                let mut headers = HeaderMap::new();
                headers.insert(CONTENT_TYPE, Codec::<R>::content_type(&*self.codec));
                (headers, body)
            }
            Err((code, text)) => {
                let mut headers = HeaderMap::new();
                headers.insert(SERVICE_ERROR_CODE, code.to_string().as_str());
                headers.insert(SERVICE_ERROR, text.as_str());
                (headers, Vec::new())
            }
        };
        let replied = headers.get(SERVICE_ERROR).is_none();
        let sent = (self.client)
            .publish_with_headers(reply_to, headers, body.into())
            .await;
        self.shared.count(replied && sent.is_ok());
    }

    /// The reply's body, or an error reply's code and text.
    async fn reply(&self, payload: &[u8]) -> Result<Vec<u8>, (u16, String)> {
        let name = self.service.name();
        let query = Codec::<Q>::decode(&*self.codec, payload).map_err(|e| {
            (
                400,
                format!(
                    "the request is not a valid {} for service {name:?}: {e}",
                    std::any::type_name::<Q>()
                ),
            )
        })?;
        let answer = tokio::time::timeout(self.timeout, self.service.call_async(query)).await;
        let reply = match answer {
            Err(_) => Err((
                504,
                format!("service {name:?} did not answer within {:?}", self.timeout),
            )),
            Ok(Err(e)) => Err((code_of(&e), format!("service {name:?}: {e}"))),
            Ok(Ok(reply)) => Ok(reply),
        }?;
        Codec::<R>::encode(&*self.codec, &reply).map_err(|e| {
            (
                500,
                format!("service {name:?} answered a reply that cannot be encoded: {e}"),
            )
        })
    }
}

/// A future polled under a trace context: what it publishes during each
/// poll joins that trace (the context is the thread's only while it polls).
struct InTrace<F> {
    trace: Option<TraceContext>,
    inner: Pin<Box<F>>,
}

impl<F: Future> Future for InTrace<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let _current = self.trace.map(TraceContext::enter);
        self.inner.as_mut().poll(cx)
    }
}

/// The error reply's code for a failed local call: 503 where no member
/// took the call (a caller may try again elsewhere), 504 for a timeout,
/// 500 for the handler's failure.
fn code_of<Q>(e: &CallError<Q>) -> u16 {
    match e {
        CallError::NoServer(_) | CallError::Closed => 503,
        CallError::Timeout => 504,
        _ => 500,
    }
}

/// The error code that says no member took the call.
pub(crate) const NO_SERVER: &str = "503";
/// The error code that says the call timed out.
pub(crate) const TIMED_OUT: &str = "504";
