//! Options of the bridge, its exports and its imports.

use std::time::Duration;

use super::codec::Json;
use super::error::BridgeError;
use crate::RetryPolicy;

/// Options for [`Bridge::connect`](super::Bridge::connect): the JetStream
/// stream the bridge uses, timeouts, and the bridge's own threads.
///
/// Defaults: stream `PINBUS` capturing `pinbus.>`, file storage, one
/// replica, a two-minute duplicate window, 5 s request timeout, 5 s connect timeout,
/// reconnect delays up to 1 s, one runtime thread, a random instance id.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use pinbus::nats::BridgeOptions;
/// let options = BridgeOptions::default()
///     .stream("ORDERS", ["orders.>"])
///     .duplicate_window(Duration::from_secs(300))
///     .request_timeout(Duration::from_secs(2))
///     .name("billing-service");
/// # let _ = options;
/// ```
#[derive(Debug, Clone)]
pub struct BridgeOptions {
    pub(crate) stream: String,
    pub(crate) subjects: Vec<String>,
    pub(crate) duplicate_window: Duration,
    pub(crate) memory_storage: bool,
    pub(crate) replicas: usize,
    pub(crate) request_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) max_reconnect_delay: Duration,
    pub(crate) threads: usize,
    pub(crate) name: Option<String>,
    pub(crate) instance_id: Option<u64>,
    pub(crate) close_timeout: Duration,
}

impl Default for BridgeOptions {
    fn default() -> Self {
        BridgeOptions {
            stream: "PINBUS".to_owned(),
            subjects: vec!["pinbus.>".to_owned()],
            duplicate_window: Duration::from_secs(120),
            memory_storage: false,
            replicas: 1,
            request_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            max_reconnect_delay: Duration::from_secs(1),
            threads: 1,
            name: None,
            instance_id: None,
            close_timeout: Duration::from_secs(10),
        }
    }
}

impl BridgeOptions {
    /// The JetStream stream that stores bridged events, and the subjects it
    /// captures (wildcards allowed). Created if missing; if it exists, any
    /// subject not yet in its list is added. Every export subject and
    /// import filter must fall under one of `subjects`.
    pub fn stream<S: Into<String>>(
        mut self,
        name: impl Into<String>,
        subjects: impl IntoIterator<Item = S>,
    ) -> Self {
        self.stream = name.into();
        self.subjects = subjects.into_iter().map(Into::into).collect();
        self
    }

    /// How long JetStream remembers a `Nats-Msg-Id` to drop a re-sent
    /// duplicate (the server-side half of the dedupe). Must cover the
    /// longest outage an export should ride out without duplicates.
    pub fn duplicate_window(mut self, window: Duration) -> Self {
        self.duplicate_window = window;
        self
    }

    /// Creates the stream in memory instead of on disk (faster, lost when
    /// the server stops). Off by default.
    pub fn memory_storage(mut self, on: bool) -> Self {
        self.memory_storage = on;
        self
    }

    /// Copies of the stream kept on a NATS cluster's servers when the bridge
    /// creates it (1 to 5; 3 survives the loss of one server). Default 1.
    pub fn replicas(mut self, replicas: usize) -> Self {
        self.replicas = replicas;
        self
    }

    /// Bound on each JetStream API call and on each publish ack; a publish
    /// whose ack takes longer is sent again (same id).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Bound on the first connection.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Longest wait between two reconnect attempts (they start at 50 ms and
    /// double). The client reconnects for ever.
    pub fn max_reconnect_delay(mut self, delay: Duration) -> Self {
        self.max_reconnect_delay = delay;
        self
    }

    /// Threads of the bridge's tokio runtime (NATS I/O, publish acks,
    /// pulls). Each import also has one thread of its own that publishes
    /// into the local topic.
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }

    /// The connection name shown by the NATS server (`nats server report
    /// connections`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The instance id that starts every `Nats-Msg-Id` this bridge writes
    /// (`<instance>-<topic>-<seq>`). By default the engine's
    /// [`Engine::instance_id`](crate::Engine::instance_id) (random per
    /// engine); set it only if you know no two running bridges share it.
    pub fn instance_id(mut self, id: u64) -> Self {
        self.instance_id = Some(id);
        self
    }

    /// How long [`Bridge::close`](super::Bridge::close) waits for queued
    /// exports to be acknowledged and imports to finish.
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), BridgeError> {
        let bad = |problem: String| Err(BridgeError::InvalidOption { problem });
        if !valid_name(&self.stream) {
            return bad(format!(
                "stream name {:?} must be non-empty and without '.', '*', '>', '/', '\\\\' or \
                 whitespace; try \"PINBUS\"",
                self.stream
            ));
        }
        if self.subjects.is_empty() {
            return bad(
                "BridgeOptions::stream needs at least one subject, e.g. \"orders.>\"".into(),
            );
        }
        for s in &self.subjects {
            super::subject::validate(s, true)?;
        }
        if !(1..=5).contains(&self.replicas) {
            return bad(format!(
                "replicas({}): JetStream keeps 1 to 5 copies of a stream; use 3 on a \
                 three-server cluster",
                self.replicas
            ));
        }
        if self.threads == 0 {
            return bad("threads(0): the bridge needs at least one runtime thread".into());
        }
        if self.request_timeout.is_zero() || self.connect_timeout.is_zero() {
            return bad("request_timeout and connect_timeout must be above zero".into());
        }
        if self.duplicate_window.is_zero() {
            return bad(
                "duplicate_window must be above zero: it is what lets a re-sent export be dropped"
                    .into(),
            );
        }
        Ok(())
    }
}

/// Stream and consumer names: no dots, wildcards, path separators or
/// whitespace.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.chars().any(|c| {
            matches!(c, '.' | '*' | '>' | '/' | '\\') || c.is_whitespace() || c.is_control()
        })
}

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
    pub fn new() -> Self {
        Self::default()
    }
}

impl<C> ExportOptions<C> {
    /// Encodes events with `codec` instead.
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
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = capacity;
        self
    }

    /// Publishes whose ack is awaited at once (pipelining).
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n;
        self
    }

    /// The local subscription's retry policy: how an event that found the
    /// queue full (NATS slow or down) is tried again before it goes to
    /// the topic's dead letters.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// How long the export subscription's handler waits for room in a full
    /// queue before it fails the event into the retry policy. While it
    /// waits, its worker's lanes back up and publishers feel NATS's pace
    /// (order is kept); a failed event is retried later, out of order.
    /// Zero: never wait. Default 100 ms.
    pub fn max_block(mut self, wait: Duration) -> Self {
        self.max_block = wait;
        self
    }

    /// Runs the local export subscription on worker `worker`.
    pub fn worker(mut self, worker: usize) -> Self {
        self.worker = Some(worker);
        self
    }

    /// How far back, before a lost connection, acknowledged publishes are
    /// sent again (same ids) once it is back. A NATS server killed without
    /// warning may lose the last milliseconds of writes it had already
    /// acknowledged (NATS 2.9 flushes its writes within milliseconds); the
    /// server drops the copies it still has. Default 250 ms.
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
/// messages.
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
}

impl ImportOptions<Json> {
    /// A durable pull consumer named `name`: it keeps its place in the
    /// stream across restarts of this process and of the server. Processes
    /// that import with the same name share the work (each message goes to
    /// one of them).
    pub fn durable(name: impl Into<String>) -> Self {
        ImportOptions {
            durable: name.into(),
            codec: Json,
            ack_wait: Duration::from_secs(30),
            max_ack_pending: 4096,
            batch: 256,
            dedupe_window: 65_536,
            deliver_new: false,
        }
    }
}

impl<C> ImportOptions<C> {
    /// Decodes events with `codec` instead.
    pub fn codec<D>(self, codec: D) -> ImportOptions<D> {
        ImportOptions {
            durable: self.durable,
            codec,
            ack_wait: self.ack_wait,
            max_ack_pending: self.max_ack_pending,
            batch: self.batch,
            dedupe_window: self.dedupe_window,
            deliver_new: self.deliver_new,
        }
    }

    /// How long the server waits for an ack before it re-delivers. Set it
    /// above the slowest local handling of one event.
    pub fn ack_wait(mut self, wait: Duration) -> Self {
        self.ack_wait = wait;
        self
    }

    /// Messages delivered and not yet acked, at most (the server stops
    /// delivering at this many). At most half the dedupe window.
    pub fn max_ack_pending(mut self, n: usize) -> Self {
        self.max_ack_pending = n;
        self
    }

    /// Messages asked for per pull request.
    pub fn batch(mut self, n: usize) -> Self {
        self.batch = n;
        self
    }

    /// Messages remembered to recognise re-deliveries (see the module docs
    /// of [`pinbus::nats`](super), "Dedupe").
    pub fn dedupe_window(mut self, n: usize) -> Self {
        self.dedupe_window = n;
        self
    }

    /// For a consumer created now: start with messages stored from now on
    /// instead of everything the stream holds.
    pub fn deliver_new(mut self, on: bool) -> Self {
        self.deliver_new = on;
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
        let e = BridgeOptions::default().stream("A.B", ["x"]).validate();
        assert!(e.unwrap_err().to_string().contains("stream name"));
        let e = BridgeOptions::default()
            .stream("S", Vec::<String>::new())
            .validate();
        assert!(e.unwrap_err().to_string().contains("at least one subject"));
        let e = BridgeOptions::default().replicas(0).validate();
        assert!(e.unwrap_err().to_string().contains("use 3"));
        let e = BridgeOptions::default().threads(0).validate();
        assert!(e.unwrap_err().to_string().contains("threads(0)"));
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
        assert!(BridgeOptions::default().validate().is_ok());
        assert!(ImportOptions::durable("billing").validate().is_ok());
    }
}
