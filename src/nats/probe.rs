//! A probe publish JetStream refuses without storing it: whether a stream
//! captures a subject and whether the user may publish to it.

use std::time::Duration;

use async_nats::jetstream;
use tokio::sync::broadcast;

use super::permission::permission_violation;

/// What JetStream said to a probe publish.
pub(crate) enum Probe {
    /// A stream captures the subject (it refused the probe, as asked).
    Captured,
    /// No stream captures it ("no responders").
    NoStream,
    /// The server refused the publish (permissions), with its message.
    Denied(String),
    /// No answer within the timeout.
    NoAnswer(String),
}

/// A stream name no stream has: a publish that expects it is answered
/// with an error by the stream that captures the subject, and not stored.
const PROBE_STREAM: &str = "pinbus-probe-no-such-stream";

/// Publishes an empty message to `subject` that JetStream refuses without
/// storing it (`Nats-Expected-Stream` names no stream): its answer says
/// whether a stream captures the subject, and a permission error from the
/// server says the user may not publish there.
pub(crate) async fn probe(
    js: &jetstream::Context,
    subject: &str,
    errors: &broadcast::Sender<String>,
    timeout: Duration,
) -> Probe {
    use async_nats::jetstream::context::PublishErrorKind as K;
    let mut errs = errors.subscribe();
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Expected-Stream", PROBE_STREAM);
    let answer = async {
        let ack = js
            .publish_with_headers(subject.to_owned(), headers, bytes::Bytes::new())
            .await?;
        ack.await
    };
    let violation = permission_violation(&mut errs, Some(subject));
    let result = tokio::select! {
        r = answer => r,
        msg = violation => return Probe::Denied(msg),
        _ = tokio::time::sleep(timeout + Duration::from_millis(500)) => {
            return Probe::NoAnswer(format!("no answer within {timeout:?}"));
        }
    };
    match result {
        // Only a stream named PROBE_STREAM would store it.
        Ok(_) => Probe::Captured,
        Err(e) if e.kind() == K::StreamNotFound => Probe::NoStream,
        Err(e) if e.kind() == K::TimedOut || e.kind() == K::BrokenPipe => {
            // The violation may come just after the ack gave up.
            match tokio::time::timeout(Duration::from_millis(200), async {
                permission_violation(&mut errs, Some(subject)).await
            })
            .await
            {
                Ok(msg) => Probe::Denied(msg),
                Err(_) => Probe::NoAnswer(e.to_string()),
            }
        }
        Err(_) => Probe::Captured,
    }
}
