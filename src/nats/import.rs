//! Import: a durable pull consumer feeds a local topic; each message is
//! acked only after every local subscription has handled it.
//!
//! ```text
//! bridge runtime (tokio)                    import thread (one per import)
//! ──────────────────────                    ──────────────────────────────
//! pull task: consumer.messages()            decode (codec, Content-Type check)
//!   dedupe window: seen? ack/skip ─┐        topic.publish_tracked(value) → Receipt
//!   new ─► channel (bounded) ──────┴──────► receipts in order: complete ─► +ACK, window.finish
//!                                           undecodable ─► +TERM; engine closed ─► -NAK
//! ```
//!
//! The thread, not the runtime, publishes: `publish` may block on a full
//! lane (`Backpressure::Block`), and a blocked runtime thread would stall the
//! NATS connection itself.
//!
//! # Acks
//!
//! A message is acked when its [`Receipt`] completes: every subscription of
//! the topic that was live at publish time has handled it (a failed attempt
//! counts as handled: the subscription's retry policy and dead letters take
//! it from there, so a failing handler never stalls the stream). Until then
//! the server holds it as pending; if this process dies, it is re-delivered
//! to the next consumer instance.

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime};

use async_nats::jetstream::consumer::pull;
use async_nats::jetstream::consumer::Consumer;
use async_nats::jetstream::{AckKind, Message};
use futures_util::StreamExt;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, watch};

use super::codec::Codec;
use super::dedupe::{Key, Verdict, Window};
use super::headers::{CONTENT_TYPE, TRACEPARENT};
use super::rejected::{RejectedMessage, Store};
use super::stats::{add, Counters};
use crate::loom::sync::{Arc, Mutex};
use crate::{Receipt, Topic, TraceContext};

/// How long the import thread waits on the oldest receipt before it looks
/// for new messages again.
const RECEIPT_POLL: Duration = Duration::from_millis(1);
/// Pause before a pull stream is opened again after it failed.
const REOPEN_MIN: Duration = Duration::from_millis(50);
const REOPEN_MAX: Duration = Duration::from_secs(1);

/// A new message, on its way to the import thread.
pub(crate) struct Delivery {
    pub(crate) msg: Message,
    pub(crate) key: Key,
}

/// The pull side (runs on the bridge runtime).
pub(crate) struct Puller {
    pub(crate) consumer: Consumer<pull::Config>,
    pub(crate) batch: usize,
    pub(crate) window: Arc<Mutex<Window>>,
    pub(crate) tx: mpsc::Sender<Delivery>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) stop: watch::Receiver<bool>,
}

impl Puller {
    pub(crate) async fn run(mut self) {
        let mut pause = REOPEN_MIN;
        loop {
            if *self.stop.borrow() {
                return;
            }
            let opened = self
                .consumer
                .stream()
                .max_messages_per_batch(self.batch)
                .heartbeat(Duration::from_secs(1))
                .expires(Duration::from_secs(5))
                .messages()
                .await;
            let mut messages = match opened {
                Ok(m) => m,
                Err(_e) => {
                    #[cfg(feature = "tracing")]
                    tracing::debug!(error = %_e, "pinbus nats import: cannot pull yet");
                    if self.pause(pause).await {
                        return;
                    }
                    pause = (pause * 2).min(REOPEN_MAX);
                    continue;
                }
            };
            loop {
                let next = tokio::select! {
                    biased;
                    _ = self.stop.changed() => return,
                    next = messages.next() => next,
                };
                match next {
                    Some(Ok(msg)) => {
                        pause = REOPEN_MIN;
                        if !self.deliver(msg).await {
                            return;
                        }
                    }
                    Some(Err(_e)) => {
                        // Missed heartbeats, a restarted server, ...: open
                        // a fresh pull stream.
                        #[cfg(feature = "tracing")]
                        tracing::debug!(error = %_e, "pinbus nats import: pull stream failed");
                        break;
                    }
                    None => break,
                }
            }
            if self.pause(pause).await {
                return;
            }
            pause = (pause * 2).min(REOPEN_MAX);
        }
    }

    /// Waits `d` unless told to stop (returns whether to stop).
    async fn pause(&mut self, d: Duration) -> bool {
        tokio::select! {
            _ = self.stop.changed() => true,
            _ = tokio::time::sleep(d) => *self.stop.borrow(),
        }
    }

    /// Dedupes one message and hands a new one to the thread; returns
    /// `false` when the thread is gone.
    async fn deliver(&mut self, msg: Message) -> bool {
        let Ok(info) = msg.info() else {
            // Not a JetStream delivery (cannot happen on a pull consumer).
            return true;
        };
        let seq = info.stream_sequence;
        let id = msg
            .headers
            .as_ref()
            .and_then(|h| h.get("Nats-Msg-Id"))
            .map(|v| v.as_str().to_owned());
        let verdict = self.window.lock().begin(id.as_deref(), seq);
        match verdict {
            Verdict::New(key) => self.tx.send(Delivery { msg, key }).await.is_ok(),
            Verdict::Done => {
                add(&self.counters.duplicates_skipped, 1);
                let _ = msg.ack().await;
                true
            }
            Verdict::InFlight => {
                add(&self.counters.duplicates_skipped, 1);
                true
            }
        }
    }
}

/// The import thread: decodes, publishes into the topic, acks on receipt.
pub(crate) struct Publisher<T, C> {
    pub(crate) topic: Topic<T>,
    pub(crate) codec: C,
    pub(crate) rx: mpsc::Receiver<Delivery>,
    pub(crate) window: Arc<Mutex<Window>>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) runtime: Handle,
    pub(crate) max_pending: usize,
    /// How long to wait for outstanding receipts once the pull side stopped.
    pub(crate) close_timeout: Duration,
    /// Where undecodable messages are kept.
    pub(crate) rejected: Arc<Store>,
    pub(crate) payload_limit: usize,
    pub(crate) durable: String,
}

impl<T, C> Publisher<T, C>
where
    T: Clone + Send + 'static,
    C: Codec<T>,
{
    pub(crate) fn run(mut self) {
        let mut pending: VecDeque<(Receipt, Message, Key)> = VecDeque::new();
        loop {
            self.settle(&mut pending);
            let next = if pending.is_empty() {
                match self.rx.blocking_recv() {
                    Some(d) => d,
                    None => return,
                }
            } else if pending.len() >= self.max_pending {
                if let Some((r, _, _)) = pending.front() {
                    r.wait_timeout(RECEIPT_POLL);
                }
                continue;
            } else {
                match self.rx.try_recv() {
                    Ok(d) => d,
                    Err(mpsc::error::TryRecvError::Empty) => {
                        if let Some((r, _, _)) = pending.front() {
                            r.wait_timeout(RECEIPT_POLL);
                        }
                        continue;
                    }
                    Err(mpsc::error::TryRecvError::Disconnected) => break,
                }
            };
            self.publish(next, &mut pending);
        }
        // The pull side stopped: settle what is outstanding, within bounds.
        let deadline = Instant::now() + self.close_timeout;
        while let Some((r, _, _)) = pending.front() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !r.wait_timeout(left) {
                break; // not acked: the server re-delivers them later
            }
            self.settle(&mut pending);
        }
    }

    /// Acks the completed receipts at the front, in order.
    fn settle(&self, pending: &mut VecDeque<(Receipt, Message, Key)>) {
        while pending.front().is_some_and(|(r, _, _)| r.is_complete()) {
            let Some((_, msg, key)) = pending.pop_front() else {
                break;
            };
            let _ = self.runtime.block_on(msg.ack());
            self.window.lock().finish(key);
            add(&self.counters.imported, 1);
        }
    }

    fn keep_rejected(&self, msg: &Message, reason: String) {
        let mut headers: Vec<(String, String)> = msg
            .headers
            .iter()
            .flat_map(|h| h.iter())
            .flat_map(|(name, values)| {
                values
                    .iter()
                    .map(move |v| (name.to_string(), v.as_str().to_owned()))
            })
            .collect();
        headers.sort();
        let (stream, stream_sequence) = msg
            .info()
            .map(|i| (i.stream.to_owned(), i.stream_sequence))
            .unwrap_or_default();
        let body = &msg.payload;
        self.rejected.keep(RejectedMessage {
            subject: msg.subject.to_string(),
            headers,
            payload: body[..body.len().min(self.payload_limit)].to_vec(),
            payload_len: body.len(),
            reason,
            stream_sequence,
            stream,
            durable: self.durable.clone(),
            topic: self.topic.name().to_owned(),
            rejected_at: SystemTime::now(),
        });
    }

    fn publish(&self, d: Delivery, pending: &mut VecDeque<(Receipt, Message, Key)>) {
        let Delivery { msg, key } = d;
        let headers = msg.headers.as_ref();
        let wanted = self.codec.content_type();
        let foreign = headers
            .and_then(|h| h.get(CONTENT_TYPE))
            .map(|v| v.as_str())
            .filter(|ct| !ct.eq_ignore_ascii_case(wanted));
        let value = match foreign {
            Some(other) => Err(format!(
                "Content-Type {other:?}, but this import's codec reads {wanted:?}; import it \
                 with the matching codec (ImportOptions::codec)"
            )),
            None => self.codec.decode(&msg.payload).map_err(|e| e.to_string()),
        };
        let value = match value {
            Ok(v) => v,
            Err(reason) => {
                #[cfg(feature = "tracing")]
                tracing::warn!(subject = %msg.subject, %reason,
                    "pinbus nats import: undecodable message terminated and kept");
                self.keep_rejected(&msg, reason);
                let _ = self.runtime.block_on(msg.ack_with(AckKind::Term));
                self.window.lock().finish(key);
                add(&self.counters.import_terminated, 1);
                return;
            }
        };
        // The remote event's trace: the local event joins it, with the
        // remote event's span as parent.
        let guard = headers
            .and_then(|h| h.get(TRACEPARENT))
            .and_then(|v| TraceContext::from_traceparent(v.as_str()))
            .map(TraceContext::enter);
        let published = self.topic.publish_tracked(value);
        drop(guard);
        match published {
            Ok(receipt) => pending.push_back((receipt, msg, key)),
            Err(_closed) => {
                let _ = self.runtime.block_on(msg.ack_with(AckKind::Nak(None)));
                self.window.lock().abandon(key);
                add(&self.counters.import_nacked, 1);
            }
        }
    }
}
