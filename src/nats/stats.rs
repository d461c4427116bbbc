//! Bridge counters and their snapshot.
//!
//! # Orderings
//!
//! Every counter is a statistic read by no protocol: `Relaxed` increments
//! and loads. A snapshot is not atomic across counters.

use crate::loom::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of a bridge's counters ([`Bridge::stats`](super::Bridge::stats)),
/// summed over its exports and imports, or of one export or import
/// ([`Export::stats`](super::Export::stats), [`Import::stats`](super::Import::stats),
/// [`Bridge::link_stats`](super::Bridge::link_stats)): the fields of the
/// other side are zero there, and `reconnects` is the bridge's.
///
/// Every event an export subscription receives ends in exactly one of:
/// `exported` (stored by JetStream), the topic's dead letters (counted in
/// `export_dead_lettered`, after `export_refused` failures), `export_failed`
/// (still unpublished when the bridge closed), or `export_pending` (still
/// on its way).
///
/// # Examples
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use pinbus::nats::{Bridge, BridgeOptions};
/// let engine = pinbus::Engine::builder().build()?;
/// let bridge = Bridge::connect("nats://127.0.0.1:4222", &engine, BridgeOptions::default())?;
/// let s = bridge.stats();
/// println!("{} exported, {} imported, {} duplicates skipped",
///     s.exported, s.imported, s.duplicates_skipped);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BridgeStats {
    /// Events whose publish JetStream acknowledged (each event once, however
    /// often it was sent).
    pub exported: u64,
    /// Of `exported`, acks that JetStream marked duplicate (a re-sent
    /// publish it already had; stored once).
    pub export_duplicates: u64,
    /// Publishes sent again (same id) after an ack failed or timed out, or
    /// after a reconnect.
    pub export_retries: u64,
    /// Acknowledged publishes sent again after a reconnect (see
    /// [`ExportOptions::replay_window`](super::ExportOptions::replay_window)).
    pub export_replayed: u64,
    /// Times an export subscription's handler failed an event because the
    /// queue was full (the event then goes through the retry policy).
    pub export_refused: u64,
    /// Events an export subscription could not encode (dead-lettered).
    pub export_encode_failed: u64,
    /// Events the export subscriptions gave up on: in the topic's dead
    /// letters.
    pub export_dead_lettered: u64,
    /// Events accepted into an export queue but not published when the
    /// bridge closed (its close timeout passed).
    pub export_failed: u64,
    /// Events queued or awaiting their ack now.
    pub export_pending: u64,
    /// Messages handed to the local topic, handled by its subscriptions
    /// and acked.
    pub imported: u64,
    /// Re-delivered messages recognised by the dedupe window and not
    /// handed to the topic again.
    pub duplicates_skipped: u64,
    /// Messages that could not be decoded (or had another codec's
    /// `Content-Type`): terminated (`+TERM`), never re-delivered.
    pub import_terminated: u64,
    /// Messages handed back (`-NAK`) because the local topic refused them
    /// (engine shut down).
    pub import_nacked: u64,
    /// Of `import_terminated`, the messages no longer kept for inspection
    /// ([`Import::rejected`](super::Import::rejected)) because newer ones
    /// filled the store ([`ImportOptions::keep_rejected`](super::ImportOptions::keep_rejected)).
    pub import_rejected_dropped: u64,
    /// Times the connection to NATS was re-established.
    pub reconnects: u64,
}

/// The live counters (shared by the bridge's tasks).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) exported: AtomicU64,
    pub(crate) export_duplicates: AtomicU64,
    pub(crate) export_retries: AtomicU64,
    pub(crate) export_replayed: AtomicU64,
    pub(crate) export_refused: AtomicU64,
    pub(crate) export_encode_failed: AtomicU64,
    pub(crate) export_failed: AtomicU64,
    /// Events accepted into export queues (`export_pending` = this minus
    /// `exported` minus `export_failed`).
    pub(crate) export_accepted: AtomicU64,
    pub(crate) imported: AtomicU64,
    pub(crate) duplicates_skipped: AtomicU64,
    pub(crate) import_terminated: AtomicU64,
    pub(crate) import_nacked: AtomicU64,
    pub(crate) import_rejected_dropped: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    /// Events an export subscription was handed for the first time
    /// (attempt 1), for [`Bridge::drain`](super::Bridge::drain).
    pub(crate) export_seen: AtomicU64,
}

/// Adds `n` to a statistic.
#[inline]
pub(crate) fn add(counter: &AtomicU64, n: u64) {
    // Relaxed: a statistic (module docs).
    counter.fetch_add(n, Ordering::Relaxed);
}

impl Counters {
    pub(crate) fn snapshot(&self, export_dead_lettered: u64) -> BridgeStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let accepted = get(&self.export_accepted);
        let exported = get(&self.exported);
        let failed = get(&self.export_failed);
        BridgeStats {
            exported,
            export_duplicates: get(&self.export_duplicates),
            export_retries: get(&self.export_retries),
            export_replayed: get(&self.export_replayed),
            export_refused: get(&self.export_refused),
            export_encode_failed: get(&self.export_encode_failed),
            export_dead_lettered,
            export_failed: failed,
            export_pending: accepted.saturating_sub(exported + failed),
            imported: get(&self.imported),
            duplicates_skipped: get(&self.duplicates_skipped),
            import_terminated: get(&self.import_terminated),
            import_nacked: get(&self.import_nacked),
            import_rejected_dropped: get(&self.import_rejected_dropped),
            reconnects: get(&self.reconnects),
        }
    }

    pub(crate) fn seen(&self) -> u64 {
        self.export_seen.load(Ordering::Relaxed)
    }
}

impl BridgeStats {
    /// Adds `o`'s counters to these (`reconnects` excepted).
    pub(crate) fn add(&mut self, o: &BridgeStats) {
        self.exported += o.exported;
        self.export_duplicates += o.export_duplicates;
        self.export_retries += o.export_retries;
        self.export_replayed += o.export_replayed;
        self.export_refused += o.export_refused;
        self.export_encode_failed += o.export_encode_failed;
        self.export_dead_lettered += o.export_dead_lettered;
        self.export_failed += o.export_failed;
        self.export_pending += o.export_pending;
        self.imported += o.imported;
        self.duplicates_skipped += o.duplicates_skipped;
        self.import_terminated += o.import_terminated;
        self.import_nacked += o.import_nacked;
        self.import_rejected_dropped += o.import_rejected_dropped;
    }
}

/// Which way a link carries events.
///
/// # Examples
///
/// ```
/// use pinbus::nats::LinkKind;
/// assert_ne!(LinkKind::Export, LinkKind::Import);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkKind {
    /// A local topic to a NATS subject ([`Bridge::export`](super::Bridge::export)).
    Export,
    /// A durable consumer into a local topic ([`Bridge::import`](super::Bridge::import)).
    Import,
}

/// The counters of one export or import ([`Bridge::link_stats`](super::Bridge::link_stats)).
///
/// # Examples
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use pinbus::nats::{Bridge, BridgeOptions, LinkKind};
/// let engine = pinbus::Engine::builder().build()?;
/// let bridge = Bridge::connect("nats://127.0.0.1:4222", &engine, BridgeOptions::default())?;
/// for link in bridge.link_stats() {
///     match link.kind {
///         LinkKind::Export => println!("{} -> {}: {} exported", link.topic, link.subject,
///             link.stats.exported),
///         LinkKind::Import => println!("{} ({:?}) -> {}: {} imported", link.subject,
///             link.durable, link.topic, link.stats.imported),
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LinkStats {
    /// Export or import.
    pub kind: LinkKind,
    /// The export's subject, or the import's filter.
    pub subject: String,
    /// The local topic.
    pub topic: String,
    /// The import's durable consumer (`None` for an export).
    pub durable: Option<String>,
    /// Whether the link still runs (not stopped, bridge not closed).
    pub running: bool,
    /// Its counters.
    pub stats: BridgeStats,
}
