//! The handles [`Bridge::export`](super::Bridge::export) and
//! [`Bridge::import`](super::Bridge::import) return, and the state they share
//! with the bridge.

use std::fmt;

use tokio::sync::watch;

use super::rejected::{RejectedMessage, Store};
use super::stats::{BridgeStats, Counters};
use crate::loom::sync::atomic::Ordering;
use crate::loom::sync::{Arc, Mutex};
use crate::loom::thread;
use crate::Subscription;

pub(crate) struct ExportShared {
    pub(crate) subject: String,
    pub(crate) topic: String,
    /// The local subscription's name (`nats-export:<subject>`).
    pub(crate) subscription_name: String,
    pub(crate) counters: Arc<Counters>,
    pub(crate) subscription: Mutex<Option<Subscription>>,
    /// `dead_lettered` of the subscription when it was removed.
    pub(crate) final_dead: Mutex<u64>,
    pub(crate) task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

pub(crate) struct ImportShared {
    pub(crate) filter: String,
    pub(crate) topic: String,
    pub(crate) durable: String,
    pub(crate) stream: String,
    pub(crate) counters: Arc<Counters>,
    pub(crate) rejected: Arc<Store>,
    pub(crate) stop: watch::Sender<bool>,
    pub(crate) thread: Mutex<Option<thread::JoinHandle<()>>>,
    pub(crate) task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl ExportShared {
    fn dead_lettered(&self) -> u64 {
        match self.subscription.lock().as_ref() {
            Some(sub) => sub.stats().dead_lettered,
            None => *self.final_dead.lock(),
        }
    }

    pub(crate) fn stats(&self) -> BridgeStats {
        self.counters.snapshot(self.dead_lettered())
    }

    /// Events queued or awaiting their ack, and events the subscription
    /// was handed but neither queued nor dead-lettered (in its retry
    /// policy). `seen` is read last, so an event that moves on between the
    /// reads is counted in progress (never missed).
    pub(crate) fn in_progress(&self) -> (u64, u64) {
        let dead = self.dead_lettered();
        let c = &self.counters;
        let get = |a: &crate::loom::sync::atomic::AtomicU64| a.load(Ordering::Acquire);
        let accepted = get(&c.export_accepted);
        let done = get(&c.exported) + get(&c.export_failed);
        let seen = c.seen();
        (
            accepted.saturating_sub(done),
            seen.saturating_sub(accepted + dead),
        )
    }

    pub(crate) fn unsubscribe(&self) {
        if let Some(sub) = self.subscription.lock().take() {
            *self.final_dead.lock() = sub.stats().dead_lettered;
            sub.unsubscribe();
        }
    }
}

impl ImportShared {
    pub(crate) fn stats(&self) -> BridgeStats {
        self.counters.snapshot(0)
    }

    pub(crate) fn stop_and_join(&self) {
        let _ = self.stop.send(true);
        if let Some(thread) = self.thread.lock().take() {
            let _ = thread.join();
        }
        self.task.lock().take();
    }
}

/// One export: the local subscription and the task that publishes its
/// events ([`Bridge::export`](super::Bridge::export)).
///
/// # Examples
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # use pinbus::nats::{Bridge, BridgeOptions};
/// # let engine = pinbus::Engine::builder().build()?;
/// # let bridge = Bridge::connect("nats://127.0.0.1:4222", &engine,
/// #     BridgeOptions::default().stream("ORDERS", ["orders.>"]))?;
/// # let orders = engine.topic::<u64>("orders.created")?;
/// let export = bridge.export(&orders, "orders.created")?;
/// println!("{export:?}");
/// export.stop(); // events published from now on stay local
/// # Ok(()) }
/// ```
pub struct Export {
    pub(crate) shared: Arc<ExportShared>,
}

impl Export {
    /// The NATS subject events go to.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use pinbus::nats::{Bridge, BridgeOptions};
    /// # let engine = pinbus::Engine::builder().build()?;
    /// # let bridge = Bridge::connect("nats://127.0.0.1:4222", &engine, BridgeOptions::default())?;
    /// # let orders = engine.topic::<u64>("orders.created")?;
    /// let export = bridge.export(&orders, "eu.orders.created")?;
    /// assert_eq!(export.subject(), "eu.orders.created");
    /// # Ok(()) }
    /// ```
    pub fn subject(&self) -> &str {
        &self.shared.subject
    }

    /// The local topic's name.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use pinbus::nats::{Bridge, BridgeOptions};
    /// # let engine = pinbus::Engine::builder().build()?;
    /// # let bridge = Bridge::connect("nats://127.0.0.1:4222", &engine, BridgeOptions::default())?;
    /// # let orders = engine.topic::<u64>("orders.created")?;
    /// let export = bridge.export(&orders, "eu.orders.created")?;
    /// assert_eq!(export.topic(), "orders.created");
    /// # Ok(()) }
    /// ```
    pub fn topic(&self) -> &str {
        &self.shared.topic
    }

    /// Removes the local subscription: events published from now on are
    /// not exported; those already queued still are.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use pinbus::nats::{Bridge, BridgeOptions};
    /// # let engine = pinbus::Engine::builder().build()?;
    /// # let bridge = Bridge::connect("nats://127.0.0.1:4222", &engine, BridgeOptions::default())?;
    /// # let orders = engine.topic::<u64>("orders.created")?;
    /// let export = bridge.export(&orders, "orders.created")?;
    /// orders.publish(1)?; // exported
    /// export.stop();
    /// orders.publish(2)?; // stays local
    /// # Ok(()) }
    /// ```
    pub fn stop(&self) {
        self.shared.unsubscribe();
    }

    /// This export's counters (the import fields are zero; `reconnects` is
    /// zero here, see [`Bridge::link_stats`](super::Bridge::link_stats)).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use pinbus::nats::{Bridge, BridgeOptions};
    /// # let engine = pinbus::Engine::builder().build()?;
    /// # let bridge = Bridge::connect("nats://127.0.0.1:4222", &engine, BridgeOptions::default())?;
    /// # let orders = engine.topic::<u64>("orders.created")?;
    /// let export = bridge.export(&orders, "orders.created")?;
    /// orders.publish(1)?;
    /// bridge.drain(&engine, std::time::Duration::from_secs(5))?;
    /// assert_eq!(export.stats().exported, 1);
    /// # Ok(()) }
    /// ```
    pub fn stats(&self) -> BridgeStats {
        self.shared.stats()
    }
}

impl fmt::Debug for Export {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Export")
            .field("topic", &self.shared.topic)
            .field("subject", &self.shared.subject)
            .finish()
    }
}

/// One import: the durable consumer's pull task and the thread that
/// publishes into the local topic ([`Bridge::import`](super::Bridge::import)).
///
/// # Examples
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # use pinbus::nats::{Bridge, BridgeOptions, ImportOptions};
/// # let engine = pinbus::Engine::builder().build()?;
/// # let bridge = Bridge::connect("nats://127.0.0.1:4222", &engine,
/// #     BridgeOptions::default().stream("ORDERS", ["orders.>"]))?;
/// # let orders = engine.topic::<u64>("orders.in")?;
/// let import = bridge.import("orders.*", &orders, ImportOptions::durable("audit"))?;
/// assert_eq!((import.filter(), import.topic()), ("orders.*", "orders.in"));
/// import.stop(); // waits for outstanding receipts, acks them, stops pulling
/// # Ok(()) }
/// ```
pub struct Import {
    pub(crate) shared: Arc<ImportShared>,
}

impl Import {
    /// The subject filter.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use pinbus::nats::{Bridge, BridgeOptions, ImportOptions};
    /// # let engine = pinbus::Engine::builder().build()?;
    /// # let bridge = Bridge::connect("nats://127.0.0.1:4222", &engine,
    /// #     BridgeOptions::default().stream("ORDERS", ["orders.>"]))?;
    /// # let orders = engine.topic::<u64>("orders.in")?;
    /// let import = bridge.import("orders.*", &orders, ImportOptions::durable("audit"))?;
    /// assert_eq!(import.filter(), "orders.*");
    /// # Ok(()) }
    /// ```
    pub fn filter(&self) -> &str {
        &self.shared.filter
    }

    /// The local topic's name.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use pinbus::nats::{Bridge, BridgeOptions, ImportOptions};
    /// # let engine = pinbus::Engine::builder().build()?;
    /// # let bridge = Bridge::connect("nats://127.0.0.1:4222", &engine,
    /// #     BridgeOptions::default().stream("ORDERS", ["orders.>"]))?;
    /// # let orders = engine.topic::<u64>("orders.in")?;
    /// let import = bridge.import("orders.*", &orders, ImportOptions::durable("audit"))?;
    /// assert_eq!(import.topic(), "orders.in");
    /// # Ok(()) }
    /// ```
    pub fn topic(&self) -> &str {
        &self.shared.topic
    }

    /// The durable consumer's name.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use pinbus::nats::{Bridge, BridgeOptions, ImportOptions};
    /// # let engine = pinbus::Engine::builder().build()?;
    /// # let bridge = Bridge::connect("nats://127.0.0.1:4222", &engine,
    /// #     BridgeOptions::default().stream("ORDERS", ["orders.>"]))?;
    /// # let orders = engine.topic::<u64>("orders.in")?;
    /// let import = bridge.import("orders.*", &orders, ImportOptions::durable("audit"))?;
    /// assert_eq!(import.durable(), "audit");
    /// # Ok(()) }
    /// ```
    pub fn durable(&self) -> &str {
        &self.shared.durable
    }

    /// The JetStream stream the consumer reads.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use pinbus::nats::{Bridge, BridgeOptions, ImportOptions};
    /// # let engine = pinbus::Engine::builder().build()?;
    /// # let bridge = Bridge::connect("nats://127.0.0.1:4222", &engine,
    /// #     BridgeOptions::default().stream("ORDERS", ["orders.>"]))?;
    /// # let orders = engine.topic::<u64>("orders.in")?;
    /// let import = bridge.import("orders.*", &orders, ImportOptions::durable("audit"))?;
    /// assert_eq!(import.stream(), "ORDERS"); // the stream that captures "orders.*"
    /// # Ok(()) }
    /// ```
    pub fn stream(&self) -> &str {
        &self.shared.stream
    }

    /// This import's counters (the export fields are zero; `reconnects` is
    /// zero here, see [`Bridge::link_stats`](super::Bridge::link_stats)).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use pinbus::nats::{Bridge, BridgeOptions, ImportOptions};
    /// # let engine = pinbus::Engine::builder().build()?;
    /// # let bridge = Bridge::connect("nats://127.0.0.1:4222", &engine, BridgeOptions::default())?;
    /// # let orders = engine.topic::<u64>("orders.in")?;
    /// let import = bridge.import::<u64, _>("orders.>", &orders, ImportOptions::durable("audit"))?;
    /// let s = import.stats();
    /// println!("{} imported, {} terminated", s.imported, s.import_terminated);
    /// # Ok(()) }
    /// ```
    pub fn stats(&self) -> BridgeStats {
        self.shared.stats()
    }

    /// The undecodable messages this import terminated and kept, oldest
    /// first (at most [`ImportOptions::keep_rejected`](super::ImportOptions::keep_rejected)).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use pinbus::nats::{Bridge, BridgeOptions, ImportOptions};
    /// # let engine = pinbus::Engine::builder().build()?;
    /// # let bridge = Bridge::connect("nats://127.0.0.1:4222", &engine, BridgeOptions::default())?;
    /// # let orders = engine.topic::<u64>("orders.in")?;
    /// let import = bridge.import::<u64, _>("orders.>", &orders, ImportOptions::durable("audit"))?;
    /// for bad in import.rejected() {
    ///     eprintln!("{}: {}", bad.subject, bad.reason);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn rejected(&self) -> Vec<RejectedMessage> {
        self.shared.rejected.snapshot()
    }

    /// Takes (removes) the kept undecodable messages, oldest first.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use pinbus::nats::{Bridge, BridgeOptions, ImportOptions};
    /// # let engine = pinbus::Engine::builder().build()?;
    /// # let bridge = Bridge::connect("nats://127.0.0.1:4222", &engine,
    /// #     BridgeOptions::default().stream("ORDERS", ["orders.>"]))?;
    /// # let orders = engine.topic::<u64>("orders.in")?;
    /// let import = bridge.import("orders.*", &orders, ImportOptions::durable("audit"))?;
    /// let bad = import.take_rejected();
    /// assert!(import.rejected().is_empty()); // taken
    /// # drop(bad);
    /// # Ok(()) }
    /// ```
    pub fn take_rejected(&self) -> Vec<RejectedMessage> {
        self.shared.rejected.take()
    }

    /// Stops pulling, waits (up to the bridge's close timeout) for the
    /// messages already published locally to be handled, and acks them.
    /// The durable consumer stays on the server; importing again with the
    /// same name resumes.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use pinbus::nats::{Bridge, BridgeOptions, ImportOptions};
    /// # let engine = pinbus::Engine::builder().build()?;
    /// # let bridge = Bridge::connect("nats://127.0.0.1:4222", &engine,
    /// #     BridgeOptions::default().stream("ORDERS", ["orders.>"]))?;
    /// # let orders = engine.topic::<u64>("orders.in")?;
    /// let import = bridge.import("orders.*", &orders, ImportOptions::durable("audit"))?;
    /// import.stop(); // the durable stays: importing as "audit" again resumes
    /// let again = bridge.import("orders.*", &orders, ImportOptions::durable("audit"))?;
    /// # drop(again);
    /// # Ok(()) }
    /// ```
    pub fn stop(&self) {
        self.shared.stop_and_join();
    }
}

impl fmt::Debug for Import {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Import")
            .field("filter", &self.shared.filter)
            .field("topic", &self.shared.topic)
            .field("durable", &self.shared.durable)
            .finish()
    }
}
