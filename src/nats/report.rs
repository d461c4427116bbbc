//! What a bridge reports: its stats, summed and per link, their `metrics`
//! export, and the rejected messages of its imports.

use super::bridge::Bridge;
use super::rejected::RejectedMessage;
use super::stats::{BridgeStats, LinkKind, LinkStats};
use crate::loom::sync::atomic::Ordering;

impl Bridge {
    /// A snapshot of the bridge's counters, summed over its exports and
    /// imports.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use pinbus::nats::{Bridge, BridgeOptions};
    /// # let engine = pinbus::Engine::builder().build()?;
    /// # let bridge = Bridge::connect("nats://127.0.0.1:4222", &engine, BridgeOptions::default())?;
    /// let stats = bridge.stats();
    /// assert_eq!(stats.export_pending, 0);
    /// # Ok(()) }
    /// ```
    pub fn stats(&self) -> BridgeStats {
        let mut total = BridgeStats::default();
        for link in self.link_stats() {
            total.add(&link.stats);
        }
        total.reconnects = self.inner.counters.reconnects.load(Ordering::Relaxed);
        total
    }

    /// The counters of each export and import, in the order they were made
    /// (stopped ones included, with `running: false`).
    ///
    /// pinbus's [`Engine::metrics`](crate::Engine::metrics) knows nothing of
    /// the bridge (the core has no NATS dependency), so these come from the
    /// bridge; with the cargo feature `metrics`,
    /// [`export_metrics`](#method.export_metrics) hands them to the `metrics`
    /// facade.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use pinbus::nats::{Bridge, BridgeOptions};
    /// # let engine = pinbus::Engine::builder().build()?;
    /// # let bridge = Bridge::connect("nats://127.0.0.1:4222", &engine, BridgeOptions::default())?;
    /// for link in bridge.link_stats() {
    ///     println!("{:?} {} <-> {}: {:?}", link.kind, link.topic, link.subject, link.stats);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn link_stats(&self) -> Vec<LinkStats> {
        let reconnects = self.inner.counters.reconnects.load(Ordering::Relaxed);
        let exports: Vec<_> = self.inner.exports.lock().clone();
        let imports: Vec<_> = self.inner.imports.lock().clone();
        let open = !*self.inner.closed.lock();
        let mut links = Vec::with_capacity(exports.len() + imports.len());
        for e in exports {
            let mut stats = e.stats();
            stats.reconnects = reconnects;
            links.push(LinkStats {
                kind: LinkKind::Export,
                subject: e.subject.clone(),
                topic: e.topic.clone(),
                durable: None,
                running: open && e.subscription.lock().is_some(),
                stats,
            });
        }
        for i in imports {
            let mut stats = i.stats();
            stats.reconnects = reconnects;
            links.push(LinkStats {
                kind: LinkKind::Import,
                subject: i.filter.clone(),
                topic: i.topic.clone(),
                durable: Some(i.durable.clone()),
                running: open && i.thread.lock().is_some(),
                stats,
            });
        }
        links
    }

    /// Takes the undecodable messages every import has kept (see
    /// [`RejectedMessage`]), oldest first per import.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use pinbus::nats::{Bridge, BridgeOptions};
    /// # let engine = pinbus::Engine::builder().build()?;
    /// # let bridge = Bridge::connect("nats://127.0.0.1:4222", &engine, BridgeOptions::default())?;
    /// for bad in bridge.take_rejected() {
    ///     eprintln!("{} #{}: {}", bad.subject, bad.stream_sequence, bad.reason);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn take_rejected(&self) -> Vec<RejectedMessage> {
        let imports: Vec<_> = self.inner.imports.lock().clone();
        imports.iter().flat_map(|i| i.rejected.take()).collect()
    }

    /// Hands [`link_stats`](Bridge::link_stats) to the
    /// [`metrics`](https://docs.rs/metrics) crate's global recorder (cargo
    /// features `nats` and `metrics`), next to
    /// [`Metrics::export`](crate::Metrics::export) for the engine. Call it
    /// periodically; each call sets every value to the current one.
    ///
    /// | name | kind | labels |
    /// |---|---|---|
    /// | `pinbus_nats_export_exported_total`, `_duplicates_total`, `_retries_total`, `_replayed_total`, `_refused_total`, `_encode_failed_total`, `_dead_lettered_total`, `_failed_total` | counter | topic, subject |
    /// | `pinbus_nats_export_pending` | gauge | topic, subject |
    /// | `pinbus_nats_import_imported_total`, `_duplicates_skipped_total`, `_terminated_total`, `_nacked_total`, `_rejected_dropped_total` | counter | topic, filter, durable |
    /// | `pinbus_nats_reconnects_total` | counter | — |
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use pinbus::nats::{Bridge, BridgeOptions};
    /// # let engine = pinbus::Engine::builder().build()?;
    /// # let bridge = Bridge::connect("nats://127.0.0.1:4222", &engine, BridgeOptions::default())?;
    /// engine.metrics().export();
    /// bridge.export_metrics();
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "metrics")]
    pub fn export_metrics(&self) {
        use ::metrics::{counter, gauge};
        for link in self.link_stats() {
            let s = &link.stats;
            match link.kind {
                LinkKind::Export => {
                    let labels = [
                        ("topic", link.topic.clone()),
                        ("subject", link.subject.clone()),
                    ];
                    for (name, v) in [
                        ("pinbus_nats_export_exported_total", s.exported),
                        ("pinbus_nats_export_duplicates_total", s.export_duplicates),
                        ("pinbus_nats_export_retries_total", s.export_retries),
                        ("pinbus_nats_export_replayed_total", s.export_replayed),
                        ("pinbus_nats_export_refused_total", s.export_refused),
                        (
                            "pinbus_nats_export_encode_failed_total",
                            s.export_encode_failed,
                        ),
                        (
                            "pinbus_nats_export_dead_lettered_total",
                            s.export_dead_lettered,
                        ),
                        ("pinbus_nats_export_failed_total", s.export_failed),
                    ] {
                        counter!(name, &labels).absolute(v);
                    }
                    gauge!("pinbus_nats_export_pending", &labels).set(s.export_pending as f64);
                }
                LinkKind::Import => {
                    let labels = [
                        ("topic", link.topic.clone()),
                        ("filter", link.subject.clone()),
                        ("durable", link.durable.clone().unwrap_or_default()),
                    ];
                    for (name, v) in [
                        ("pinbus_nats_import_imported_total", s.imported),
                        (
                            "pinbus_nats_import_duplicates_skipped_total",
                            s.duplicates_skipped,
                        ),
                        ("pinbus_nats_import_terminated_total", s.import_terminated),
                        ("pinbus_nats_import_nacked_total", s.import_nacked),
                        (
                            "pinbus_nats_import_rejected_dropped_total",
                            s.import_rejected_dropped,
                        ),
                    ] {
                        counter!(name, &labels).absolute(v);
                    }
                }
            }
        }
        counter!("pinbus_nats_reconnects_total")
            .absolute(self.inner.counters.reconnects.load(Ordering::Relaxed));
    }
}
