//! Messages an import terminated (`+TERM`) because they could not be
//! decoded: kept, bounded, for the user to inspect.

use std::collections::VecDeque;
use std::fmt;
use std::time::SystemTime;

use super::stats::{add, Counters};
use crate::loom::sync::{Arc, Mutex};

/// A message an import could not decode (or whose `Content-Type` named
/// another codec): terminated on the server (`+TERM`, never re-delivered)
/// and kept here with what it carried, so that it can be inspected, fixed
/// and published again. Read them with [`Import::rejected`](super::Import::rejected)
/// or take them with [`Bridge::take_rejected`](super::Bridge::take_rejected).
///
/// # Examples
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # use pinbus::nats::{Bridge, BridgeOptions, ImportOptions};
/// # let engine = pinbus::Engine::builder().build()?;
/// # let bridge = Bridge::connect("nats://127.0.0.1:4222", &engine, BridgeOptions::default())?;
/// # let orders = engine.topic::<u64>("orders.in")?;
/// let import = bridge.import::<u64, _>("orders.>", &orders, ImportOptions::durable("billing"))?;
/// for bad in import.rejected() {
///     eprintln!("{} (seq {}): {} — {:?}", bad.subject, bad.stream_sequence, bad.reason,
///         String::from_utf8_lossy(&bad.payload));
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RejectedMessage {
    /// The subject it was published to.
    pub subject: String,
    /// Its headers, sorted by name (one entry per value).
    pub headers: Vec<(String, String)>,
    /// Its body, cut to [`ImportOptions::rejected_payload_limit`](super::ImportOptions::rejected_payload_limit)
    /// bytes.
    pub payload: Vec<u8>,
    /// The body's full length in bytes (more than `payload.len()` if cut).
    pub payload_len: usize,
    /// Why it was refused (the codec's error, or the foreign `Content-Type`).
    pub reason: String,
    /// Its sequence number in the stream.
    pub stream_sequence: u64,
    /// The stream it came from.
    pub stream: String,
    /// The durable consumer that delivered it.
    pub durable: String,
    /// The local topic it was meant for.
    pub topic: String,
    /// When the import terminated it.
    pub rejected_at: SystemTime,
}

impl RejectedMessage {
    /// The value of header `name` (case-insensitive), if any.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn f(bad: &pinbus::nats::RejectedMessage) {
    /// if let Some(id) = bad.header("Nats-Msg-Id") {
    ///     eprintln!("publisher's id: {id}");
    /// }
    /// # }
    /// ```
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl fmt::Debug for RejectedMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RejectedMessage")
            .field("subject", &self.subject)
            .field("stream_sequence", &self.stream_sequence)
            .field("reason", &self.reason)
            .field("headers", &self.headers)
            .field("payload", &String::from_utf8_lossy(&self.payload))
            .field("payload_len", &self.payload_len)
            .field("durable", &self.durable)
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

/// The bounded store of one import.
pub(crate) struct Store {
    items: Mutex<VecDeque<RejectedMessage>>,
    capacity: usize,
    counters: Arc<Counters>,
}

impl Store {
    pub(crate) fn new(capacity: usize, counters: Arc<Counters>) -> Store {
        Store {
            items: Mutex::new(VecDeque::new()),
            capacity,
            counters,
        }
    }

    pub(crate) fn keep(&self, m: RejectedMessage) {
        if self.capacity == 0 {
            add(&self.counters.import_rejected_dropped, 1);
            return;
        }
        let mut items = self.items.lock();
        while items.len() >= self.capacity {
            items.pop_front();
            add(&self.counters.import_rejected_dropped, 1);
        }
        items.push_back(m);
    }

    pub(crate) fn snapshot(&self) -> Vec<RejectedMessage> {
        self.items.lock().iter().cloned().collect()
    }

    pub(crate) fn take(&self) -> Vec<RejectedMessage> {
        self.items.lock().drain(..).collect()
    }
}
