//! Export: a local subscription feeds a bounded queue; one tokio task per
//! export drains it into JetStream with many publish acks in flight.
//!
//! ```text
//! worker thread                         bridge runtime (tokio)
//! ─────────────                         ──────────────────────
//! handler(&Event<T>)                    task: queue → send_publish (Nats-Msg-Id) ─► JetStream
//!   encode, send ─► queue (bounded)           window of un-acked publishes, in order
//!   full: wait ≤ max_block, then Err          front ack ok: done; error/timeout: re-send
//!     ─► retry policy ─► dead letters         the whole window (same ids), with backoff
//! ```
//!
//! # Backpressure
//!
//! The queue is bounded. When NATS is slow it fills and the handler waits
//! for room, up to `ExportOptions::max_block`: the lane backs up, and
//! publishers with `Backpressure::Block` slow down to NATS's pace. When NATS
//! stays slow or down longer, the handler returns `Err` and the event goes
//! through the subscription's retry policy (the timer wheel, never blocking
//! the lane) and finally to the topic's dead letters. Nothing waits
//! unbounded and nothing disappears uncounted
//! ([`BridgeStats`](super::BridgeStats)).
//!
//! # Order and duplicates
//!
//! Publishes go out in queue order on one connection, so the stream keeps
//! the order of one producer — except for an event that went through a
//! retry (the queue stayed full past `max_block`): it comes back later. A failed or timed-out ack re-sends the whole
//! un-acked window in order with the same ids; JetStream drops the copies it
//! already stored (within its duplicate window). After a reconnect the
//! publishes acknowledged shortly before the connection dropped are sent
//! again too, because a server killed without warning can lose writes it
//! had already acknowledged.

use std::collections::VecDeque;
use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::time::{Duration, Instant};

use async_nats::jetstream::context::{PublishAckFuture, PublishErrorKind};
use async_nats::jetstream::publish::PublishAck;
use async_nats::jetstream::{self, context::PublishError};
use bytes::Bytes;
use tokio::sync::{mpsc, watch};

use super::codec::Codec;
use super::conn::ConnState;
use super::headers::{CONTENT_TYPE, TRACEPARENT};
use super::stats::{add, Counters};
use crate::loom::sync::Arc;
use crate::Event;

/// Acked publishes kept for a replay after a reconnect, at most.
const REPLAY_KEEP: usize = 65_536;
/// First and longest pause before re-sending after a failed ack.
const BACKOFF_MIN: Duration = Duration::from_millis(20);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// One event on its way to JetStream.
#[derive(Clone, Debug)]
pub(crate) struct Outgoing {
    /// `Nats-Msg-Id`: `<instance>-<topic>-<seq>`.
    pub(crate) id: String,
    pub(crate) payload: Bytes,
    pub(crate) traceparent: Option<String>,
}

/// Why the export subscription failed an event (the text lands in the dead
/// letter).
#[derive(Debug)]
pub(crate) enum Refused {
    QueueFull { capacity: usize, subject: Arc<str> },
    Encode(super::CodecError),
    Closed,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::QueueFull { capacity, subject } => write!(
                f,
                "NATS export queue to {subject:?} is full ({capacity} events): NATS is slow or \
                 unreachable; raise ExportOptions::queue_capacity or the retry policy's attempts"
            ),
            Refused::Encode(e) => write!(f, "cannot export: {e}"),
            Refused::Closed => f.write_str("the NATS bridge is closed; the event was not exported"),
        }
    }
}

/// The export subscription's handler.
///
/// A full queue first makes the handler wait up to `max_block` for room
/// (the lane backs up and, with `Backpressure::Block`, so do publishers:
/// order is kept). Past that it fails the event into the retry policy.
pub(crate) fn handler<T, C>(
    codec: C,
    tx: mpsc::Sender<Outgoing>,
    id_prefix: String,
    subject: Arc<str>,
    counters: Arc<Counters>,
    runtime: tokio::runtime::Handle,
    max_block: Duration,
) -> impl FnMut(&Event<T>) -> Result<(), Refused> + Send + 'static
where
    T: Send + 'static,
    C: Codec<T>,
{
    let capacity = tx.max_capacity();
    move |ev| {
        if ev.attempt() <= 1 {
            // Release: `Bridge::drain` reads it after the lane (Acquire).
            counters
                .export_seen
                .fetch_add(1, crate::loom::sync::atomic::Ordering::Release);
        }
        let payload = codec.encode(ev).map_err(|e| {
            add(&counters.export_encode_failed, 1);
            Refused::Encode(e)
        })?;
        let out = Outgoing {
            id: format!("{id_prefix}{}", ev.seq()),
            payload: Bytes::from(payload),
            traceparent: Some(ev.trace_context().to_traceparent()),
        };
        let sent = match tx.try_send(out) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(out)) if !max_block.is_zero() => {
                // Not a tokio thread (an engine worker): blocking here is
                // the backpressure.
                let tx = &tx;
                runtime.block_on(async move {
                    match tokio::time::timeout(max_block, tx.reserve()).await {
                        Ok(Ok(permit)) => {
                            permit.send(out);
                            Ok(())
                        }
                        Ok(Err(_closed)) => Err(mpsc::error::TrySendError::Closed(())),
                        Err(_elapsed) => Err(mpsc::error::TrySendError::Full(())),
                    }
                })
            }
            Err(e) => Err(match e {
                mpsc::error::TrySendError::Full(_) => mpsc::error::TrySendError::Full(()),
                mpsc::error::TrySendError::Closed(_) => mpsc::error::TrySendError::Closed(()),
            }),
        };
        match sent {
            Ok(()) => {
                add(&counters.export_accepted, 1);
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(())) => {
                add(&counters.export_refused, 1);
                Err(Refused::QueueFull {
                    capacity,
                    subject: subject.clone(),
                })
            }
            Err(mpsc::error::TrySendError::Closed(())) => Err(Refused::Closed),
        }
    }
}

type AckFuture = Pin<Box<dyn Future<Output = Result<PublishAck, PublishError>> + Send>>;

/// A publish sent (or to be sent) and not yet acknowledged.
struct InFlight {
    out: Outgoing,
    ack: Option<AckFuture>,
    /// A replay of an event already counted as exported.
    replay: bool,
}

/// What the export task needs.
pub(crate) struct Task {
    pub(crate) js: jetstream::Context,
    pub(crate) subject: async_nats::Subject,
    pub(crate) content_type: &'static str,
    pub(crate) rx: mpsc::Receiver<Outgoing>,
    pub(crate) max_in_flight: usize,
    pub(crate) replay_window: Duration,
    pub(crate) counters: Arc<Counters>,
    pub(crate) conn: watch::Receiver<ConnState>,
    /// Becomes `true` when the bridge's close timeout has passed.
    pub(crate) abort: watch::Receiver<bool>,
}

impl Task {
    async fn send(&self, out: &Outgoing) -> Result<PublishAckFuture, PublishError> {
        let mut publish = jetstream::message::PublishMessage::build()
            .payload(out.payload.clone())
            .message_id(&out.id)
            .header(CONTENT_TYPE, self.content_type);
        if let Some(tp) = &out.traceparent {
            publish = publish.header(TRACEPARENT, tp.as_str());
        }
        self.js.send_publish(self.subject.clone(), publish).await
    }

    /// Sends every entry of `window` without an ack future; stops at the
    /// first send that fails (returns `false`).
    async fn send_unsent(&self, window: &mut VecDeque<InFlight>) -> bool {
        for entry in window.iter_mut().filter(|e| e.ack.is_none()) {
            match self.send(&entry.out).await {
                Ok(ack) => entry.ack = Some(ack.into_future()),
                Err(e) => {
                    log_failure("send", &self.subject, &e);
                    return false;
                }
            }
        }
        true
    }

    pub(crate) async fn run(mut self) {
        let mut window: VecDeque<InFlight> = VecDeque::with_capacity(self.max_in_flight);
        // Acked publishes with their ack time, for replay after a reconnect.
        let mut recent: VecDeque<(Instant, Outgoing)> = VecDeque::new();
        let mut open = true;
        let mut epoch = self.conn.borrow().epoch;
        let mut backoff = BACKOFF_MIN;
        // When set, the window is re-sent at that instant.
        let mut resend_at: Option<tokio::time::Instant> = None;
        loop {
            if !open && window.is_empty() {
                break;
            }
            let front_ready =
                resend_at.is_none() && window.front().is_some_and(|e| e.ack.is_some());
            let room = open && resend_at.is_none() && window.len() < self.max_in_flight;
            let wake = resend_at.unwrap_or_else(tokio::time::Instant::now);
            tokio::select! {
                biased;
                _ = self.abort.changed() => {
                    self.give_up(&mut window);
                    return;
                }
                changed = self.conn.changed() => {
                    if changed.is_err() {
                        continue;
                    }
                    let state = *self.conn.borrow_and_update();
                    if state.up && state.epoch != epoch {
                        epoch = state.epoch;
                        self.replay(&mut window, &recent, state.down_at);
                        resend_at = Some(tokio::time::Instant::now());
                    }
                }
                _ = tokio::time::sleep_until(wake), if resend_at.is_some() => {
                    resend_at = None;
                    for e in window.iter_mut() {
                        e.ack = None;
                    }
                    add(&self.counters.export_retries, window.len() as u64);
                    if !self.send_unsent(&mut window).await {
                        resend_at = Some(tokio::time::Instant::now() + backoff);
                        backoff = (backoff * 2).min(BACKOFF_MAX);
                    }
                }
                result = front_ack(&mut window), if front_ready => {
                    match result {
                        Ok(ack) => {
                            backoff = BACKOFF_MIN;
                            let Some(done) = window.pop_front() else { continue };
                            if ack.duplicate {
                                add(&self.counters.export_duplicates, 1);
                            }
                            if !done.replay {
                                add(&self.counters.exported, 1);
                                self.remember(&mut recent, done.out);
                            }
                        }
                        Err(e) if e.kind() == PublishErrorKind::MaxPayloadExceeded => {
                            // Can never succeed: count it and go on.
                            log_failure("publish (dropped, too large)", &self.subject, &e);
                            if let Some(done) = window.pop_front() {
                                if !done.replay {
                                    add(&self.counters.export_failed, 1);
                                }
                            }
                        }
                        Err(e) => {
                            log_failure("ack", &self.subject, &e);
                            resend_at = Some(tokio::time::Instant::now() + backoff);
                            backoff = (backoff * 2).min(BACKOFF_MAX);
                        }
                    }
                }
                item = self.rx.recv(), if room => match item {
                    None => open = false,
                    Some(out) => {
                        let ack = match self.send(&out).await {
                            Ok(ack) => Some(ack.into_future()),
                            Err(e) if e.kind() == PublishErrorKind::MaxPayloadExceeded => {
                                log_failure("publish (dropped, too large)", &self.subject, &e);
                                add(&self.counters.export_failed, 1);
                                continue;
                            }
                            Err(e) => {
                                log_failure("send", &self.subject, &e);
                                resend_at = Some(tokio::time::Instant::now() + backoff);
                                backoff = (backoff * 2).min(BACKOFF_MAX);
                                None
                            }
                        };
                        window.push_back(InFlight { out, ack, replay: false });
                    }
                },
            }
        }
    }

    /// Keeps an acked publish for a possible replay; drops what is older
    /// than the replay window (only while connected: after a disconnect the
    /// entries from just before it are exactly the ones needed).
    fn remember(&self, recent: &mut VecDeque<(Instant, Outgoing)>, out: Outgoing) {
        let now = Instant::now();
        recent.push_back((now, out));
        if self.conn.borrow().up {
            while recent
                .front()
                .is_some_and(|(t, _)| now.duration_since(*t) > self.replay_window)
            {
                recent.pop_front();
            }
        }
        while recent.len() > REPLAY_KEEP {
            recent.pop_front();
        }
    }

    /// Puts the publishes acked within the replay window before `down_at`
    /// in front of the window (they are older), and marks everything for
    /// re-sending.
    fn replay(
        &self,
        window: &mut VecDeque<InFlight>,
        recent: &VecDeque<(Instant, Outgoing)>,
        down_at: Option<Instant>,
    ) {
        let Some(down_at) = down_at else { return };
        let from = down_at.checked_sub(self.replay_window).unwrap_or(down_at);
        let replays: Vec<Outgoing> = recent
            .iter()
            .filter(|(t, _)| *t >= from)
            .map(|(_, o)| o.clone())
            .collect();
        add(&self.counters.export_replayed, replays.len() as u64);
        for entry in window.iter_mut() {
            entry.ack = None;
        }
        for out in replays.into_iter().rev() {
            window.push_front(InFlight {
                out,
                ack: None,
                replay: true,
            });
        }
    }

    /// The close timeout passed: count what is still unpublished.
    fn give_up(&mut self, window: &mut VecDeque<InFlight>) {
        let mut lost = window.iter().filter(|e| !e.replay).count() as u64;
        self.rx.close();
        while self.rx.try_recv().is_ok() {
            lost += 1;
        }
        add(&self.counters.export_failed, lost);
    }
}

/// The front entry's ack (the caller checked it has one).
async fn front_ack(window: &mut VecDeque<InFlight>) -> Result<PublishAck, PublishError> {
    match window.front_mut().and_then(|e| e.ack.as_mut()) {
        Some(ack) => ack.await,
        None => std::future::pending().await,
    }
}

#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
fn log_failure(what: &str, subject: &async_nats::Subject, error: &PublishError) {
    #[cfg(feature = "tracing")]
    tracing::debug!(%subject, %error, "pinbus nats export: {what} failed; will re-send");
}
