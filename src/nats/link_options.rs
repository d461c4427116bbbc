//! Options of a link: an export ([`ExportOptions`]) and an import
//! ([`ImportOptions`]).

use std::time::Duration;

use super::codec::Json;
use super::error::BridgeError;
use super::options::valid_name;
use crate::RetryPolicy;

/// Options for [`Bridge::export_with`](super::Bridge::export_with).
///
/// Defaults: the [`Json`] codec, a queue of 8,192 events, 1,024 publish
/// acks in flight, up to 100 ms of waiting for room in a full queue, and a
/// local retry policy of exponential backoff from 10 ms to 1 s for 20
/// attempts (about 14 s of NATS outage) before an event goes to the
/// topic's dead letters.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use pinbus::RetryPolicy;
/// use pinbus::nats::{Binary, ExportOptions};
/// let options = ExportOptions::new()
///     .codec(Binary)
///     .queue_capacity(1024)
///     .max_in_flight(256)
///     .retry(RetryPolicy::fixed(Duration::from_millis(50)).max_attempts(100));
/// # let _ = options;
/// ```
#[derive(Debug, Clone)]
pub struct ExportOptions<C = Json> {
    pub(crate) codec: C,
    pub(crate) queue_capacity: usize,
    pub(crate) max_in_flight: usize,
    pub(crate) retry: RetryPolicy,
    pub(crate) worker: Option<usize>,
    pub(crate) replay_window: Duration,
    pub(crate) max_block: Duration,
}

impl Default for ExportOptions<Json> {
    fn default() -> Self {
        ExportOptions {
            codec: Json,
            queue_capacity: 8192,
            max_in_flight: 1024,
            retry: RetryPolicy::exponential(Duration::from_millis(10), Duration::from_secs(1))
                .max_attempts(20),
            worker: None,
            replay_window: Duration::from_millis(250),
            max_block: Duration::from_millis(100),
        }
    }
}

impl ExportOptions<Json> {
    /// The defaults (see the type's docs).
    ///
    /// # Examples
    ///
    /// ```
    /// use pinbus::nats::ExportOptions;
    /// let options = ExportOptions::new(); // Json, 8,192 queued events, 1,024 acks in flight
    /// # let _ = options;
    /// ```
    pub fn new() -> Self {
        Self::default()
    }
}

impl<C> ExportOptions<C> {
    /// Encodes events with `codec` instead.
    ///
    /// # Examples
    ///
    /// ```
    /// use pinbus::nats::{Binary, ExportOptions};
    /// let options: ExportOptions<Binary> = ExportOptions::new().codec(Binary);
    /// # let _ = options;
    /// ```
    pub fn codec<D>(self, codec: D) -> ExportOptions<D> {
        ExportOptions {
            codec,
            queue_capacity: self.queue_capacity,
            max_in_flight: self.max_in_flight,
            retry: self.retry,
            worker: self.worker,
            replay_window: self.replay_window,
            max_block: self.max_block,
        }
    }

    /// Events the export may hold between the local subscription and NATS
    /// (queued, not yet published). When it is full the subscription's
    /// handler waits up to [`max_block`](ExportOptions::max_block), then
    /// fails the event, which goes through `retry`.
    ///
    /// # Examples
    ///
    /// ```
    /// use pinbus::nats::ExportOptions;
    /// let options = ExportOptions::new().queue_capacity(1024);
    /// # let _ = options;
    /// ```
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = capacity;
        self
    }

    /// Publishes whose ack is awaited at once (pipelining).
    ///
    /// # Examples
    ///
    /// ```
    /// use pinbus::nats::ExportOptions;
    /// let options = ExportOptions::new().max_in_flight(64);
    /// # let _ = options;
    /// ```
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n;
        self
    }

    /// The local subscription's retry policy: how an event that found the
    /// queue full (NATS slow or down) is tried again before it goes to
    /// the topic's dead letters.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use pinbus::{nats::ExportOptions, RetryPolicy};
    /// let options = ExportOptions::new().retry(RetryPolicy::fixed(Duration::from_millis(100)).max_attempts(600));
    /// # let _ = options;
    /// ```
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// How long the export subscription's handler waits for room in a full
    /// queue before it fails the event into the retry policy. While it
    /// waits, its worker's lanes back up and publishers feel NATS's pace
    /// (order is kept); a failed event is retried later, out of order.
    /// Zero: never wait. Default 100 ms.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use pinbus::nats::ExportOptions;
    /// let options = ExportOptions::new().max_block(Duration::ZERO); // never wait: fail into the retry policy
    /// # let _ = options;
    /// ```
    pub fn max_block(mut self, wait: Duration) -> Self {
        self.max_block = wait;
        self
    }

    /// Runs the local export subscription on worker `worker`.
    ///
    /// # Examples
    ///
    /// ```
    /// use pinbus::nats::ExportOptions;
    /// let options = ExportOptions::new().worker(1);
    /// # let _ = options;
    /// ```
    pub fn worker(mut self, worker: usize) -> Self {
        self.worker = Some(worker);
        self
    }

    /// How far back, before a lost connection, acknowledged publishes are
    /// sent again (same ids) once it is back. A NATS server killed without
    /// warning may lose the last milliseconds of writes it had already
    /// acknowledged (NATS 2.9 flushes its writes within milliseconds); the
    /// server drops the copies it still has. Default 250 ms.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use pinbus::nats::ExportOptions;
    /// let options = ExportOptions::new().replay_window(Duration::from_secs(1));
    /// # let _ = options;
    /// ```
    pub fn replay_window(mut self, window: Duration) -> Self {
        self.replay_window = window;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), BridgeError> {
        let bad = |problem: &str| {
            Err(BridgeError::InvalidOption {
                problem: problem.to_owned(),
            })
        };
        if self.queue_capacity == 0 {
            return bad("ExportOptions::queue_capacity(0): the queue needs room for one event");
        }
        if self.max_in_flight == 0 {
            return bad("ExportOptions::max_in_flight(0): at least one publish must be in flight");
        }
        Ok(())
    }
}

/// Options for [`Bridge::import`](super::Bridge::import): the durable
/// consumer's name and its flow settings.
///
/// Defaults: the [`Json`] codec, deliver everything the stream holds, ack
/// wait 30 s, 4,096 acks pending, pulls of 256, a dedupe window of 65,536
/// messages, the last 1,024 undecodable messages kept (64 KiB of body each).
///
/// The ack wait is also how long a message that a crashed process had
/// pulled but not acked stays with the server before it is delivered to
/// another process of the same durable: lower it for faster recovery, but
/// keep it above the slowest local handling (retries included).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use pinbus::nats::{Binary, ImportOptions};
/// let options = ImportOptions::durable("billing")
///     .codec(Binary)
///     .ack_wait(Duration::from_secs(10))
///     .max_ack_pending(1024)
///     .dedupe_window(100_000);
/// # let _ = options;
/// ```
#[derive(Debug, Clone)]
pub struct ImportOptions<C = Json> {
    pub(crate) durable: String,
    pub(crate) codec: C,
    pub(crate) ack_wait: Duration,
    pub(crate) max_ack_pending: usize,
    pub(crate) batch: usize,
    pub(crate) dedupe_window: usize,
    pub(crate) deliver_new: bool,
    pub(crate) keep_rejected: usize,
    pub(crate) rejected_payload_limit: usize,
}

impl ImportOptions<Json> {
    /// A durable pull consumer named `name`: it keeps its place in the
    /// stream across restarts of this process and of the server. Processes
    /// that import with the same name share the work (each message goes to
    /// one of them).
    ///
    /// # Examples
    ///
    /// ```
    /// use pinbus::nats::ImportOptions;
    /// let options = ImportOptions::durable("billing"); // share the name to share the work
    /// # let _ = options;
    /// ```
    pub fn durable(name: impl Into<String>) -> Self {
        ImportOptions {
            durable: name.into(),
            codec: Json,
            ack_wait: Duration::from_secs(30),
            max_ack_pending: 4096,
            batch: 256,
            dedupe_window: 65_536,
            deliver_new: false,
            keep_rejected: 1024,
            rejected_payload_limit: 64 * 1024,
        }
    }
}

impl<C> ImportOptions<C> {
    /// Decodes events with `codec` instead.
    ///
    /// # Examples
    ///
    /// ```
    /// use pinbus::nats::{Binary, ImportOptions};
    /// let options: ImportOptions<Binary> = ImportOptions::durable("billing").codec(Binary);
    /// # let _ = options;
    /// ```
    pub fn codec<D>(self, codec: D) -> ImportOptions<D> {
        ImportOptions {
            durable: self.durable,
            codec,
            ack_wait: self.ack_wait,
            max_ack_pending: self.max_ack_pending,
            batch: self.batch,
            dedupe_window: self.dedupe_window,
            deliver_new: self.deliver_new,
            keep_rejected: self.keep_rejected,
            rejected_payload_limit: self.rejected_payload_limit,
        }
    }

    /// How long the server waits for an ack before it re-delivers. Set it
    /// above the slowest local handling of one event.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use pinbus::nats::ImportOptions;
    /// let options = ImportOptions::durable("billing").ack_wait(Duration::from_secs(5));
    /// # let _ = options;
    /// ```
    pub fn ack_wait(mut self, wait: Duration) -> Self {
        self.ack_wait = wait;
        self
    }

    /// Messages delivered and not yet acked, at most (the server stops
    /// delivering at this many). At most half the dedupe window.
    ///
    /// # Examples
    ///
    /// ```
    /// use pinbus::nats::ImportOptions;
    /// let options = ImportOptions::durable("billing").max_ack_pending(1024); // dedupe_window >= 2048
    /// # let _ = options;
    /// ```
    pub fn max_ack_pending(mut self, n: usize) -> Self {
        self.max_ack_pending = n;
        self
    }

    /// Messages asked for per pull request.
    ///
    /// # Examples
    ///
    /// ```
    /// use pinbus::nats::ImportOptions;
    /// let options = ImportOptions::durable("billing").batch(64);
    /// # let _ = options;
    /// ```
    pub fn batch(mut self, n: usize) -> Self {
        self.batch = n;
        self
    }

    /// Messages remembered to recognise re-deliveries (see the module docs
    /// of [`pinbus::nats`](super), "Dedupe").
    ///
    /// # Examples
    ///
    /// ```
    /// use pinbus::nats::ImportOptions;
    /// let options = ImportOptions::durable("billing").max_ack_pending(8192).dedupe_window(16_384);
    /// # let _ = options;
    /// ```
    pub fn dedupe_window(mut self, n: usize) -> Self {
        self.dedupe_window = n;
        self
    }

    /// For a consumer created now: start with messages stored from now on
    /// instead of everything the stream holds.
    ///
    /// # Examples
    ///
    /// ```
    /// use pinbus::nats::ImportOptions;
    /// let options = ImportOptions::durable("live-dashboard").deliver_new(true); // skip the history
    /// # let _ = options;
    /// ```
    pub fn deliver_new(mut self, on: bool) -> Self {
        self.deliver_new = on;
        self
    }

    /// Undecodable messages kept for inspection ([`Import::rejected`](super::Import::rejected)),
    /// at most; the oldest make room for newer ones (counted in
    /// [`BridgeStats::import_rejected_dropped`](super::BridgeStats::import_rejected_dropped)).
    /// Default 1,024; 0 keeps none (they are still terminated and counted).
    ///
    /// # Examples
    ///
    /// ```
    /// use pinbus::nats::ImportOptions;
    /// let options = ImportOptions::durable("billing").keep_rejected(0); // count them, keep none
    /// # let _ = options;
    /// ```
    pub fn keep_rejected(mut self, n: usize) -> Self {
        self.keep_rejected = n;
        self
    }

    /// Bytes of each rejected message's body that are kept (default 64 KiB;
    /// [`RejectedMessage::payload_len`](super::RejectedMessage::payload_len)
    /// has the full length).
    ///
    /// # Examples
    ///
    /// ```
    /// use pinbus::nats::ImportOptions;
    /// let options = ImportOptions::durable("billing").rejected_payload_limit(1024);
    /// # let _ = options;
    /// ```
    pub fn rejected_payload_limit(mut self, bytes: usize) -> Self {
        self.rejected_payload_limit = bytes;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), BridgeError> {
        let bad = |problem: String| Err(BridgeError::InvalidOption { problem });
        if !valid_name(&self.durable) {
            return bad(format!(
                "durable name {:?} must be non-empty and without '.', '*', '>', '/', '\\\\' or \
                 whitespace; try \"billing\"",
                self.durable
            ));
        }
        if self.max_ack_pending == 0 || self.batch == 0 {
            return bad("ImportOptions::max_ack_pending and batch must be at least 1".into());
        }
        if self.dedupe_window < 2 * self.max_ack_pending {
            return bad(format!(
                "dedupe_window({}) must be at least twice max_ack_pending({}) so that every \
                 message the server may re-deliver is still remembered; raise dedupe_window \
                 to {} or lower max_ack_pending",
                self.dedupe_window,
                self.max_ack_pending,
                2 * self.max_ack_pending
            ));
        }
        if self.ack_wait < Duration::from_millis(100) {
            return bad(
                "ImportOptions::ack_wait below 100 ms re-delivers nearly everything".into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_options_say_what_to_change() {
        let e = ImportOptions::durable("b")
            .max_ack_pending(100)
            .dedupe_window(150)
            .validate();
        assert!(e
            .unwrap_err()
            .to_string()
            .contains("raise dedupe_window to 200"));
        let e = ImportOptions::durable("a b").validate();
        assert!(e.unwrap_err().to_string().contains("durable name"));
        let e = ExportOptions::new().queue_capacity(0).validate();
        assert!(e.unwrap_err().to_string().contains("queue_capacity(0)"));
        assert!(ImportOptions::durable("billing").validate().is_ok());
    }
}
