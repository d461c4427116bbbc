//! The handles [`Bridge::export`](super::Bridge::export) and
//! [`Bridge::import`](super::Bridge::import) return, and the state they share
//! with the bridge.

use std::fmt;

use tokio::sync::watch;

use super::bridge::lock;
use crate::loom::sync::{Arc, Mutex};
use crate::loom::thread;
use crate::Subscription;

pub(crate) struct ExportShared {
    pub(crate) subject: String,
    pub(crate) topic: String,
    pub(crate) subscription: Mutex<Option<Subscription>>,
    /// `dead_lettered` of the subscription when it was removed.
    pub(crate) final_dead: Mutex<u64>,
    pub(crate) task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

pub(crate) struct ImportShared {
    pub(crate) filter: String,
    pub(crate) topic: String,
    pub(crate) durable: String,
    pub(crate) stop: watch::Sender<bool>,
    pub(crate) thread: Mutex<Option<thread::JoinHandle<()>>>,
    pub(crate) task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl ExportShared {
    pub(crate) fn unsubscribe(&self) {
        if let Some(sub) = lock(&self.subscription).take() {
            *lock(&self.final_dead) = sub.stats().dead_lettered;
            sub.unsubscribe();
        }
    }
}

impl ImportShared {
    pub(crate) fn stop_and_join(&self) {
        let _ = self.stop.send(true);
        if let Some(thread) = lock(&self.thread).take() {
            let _ = thread.join();
        }
        lock(&self.task).take();
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
    pub fn subject(&self) -> &str {
        &self.shared.subject
    }

    /// The local topic's name.
    pub fn topic(&self) -> &str {
        &self.shared.topic
    }

    /// Removes the local subscription: events published from now on are
    /// not exported; those already queued still are.
    pub fn stop(&self) {
        self.shared.unsubscribe();
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
    pub fn filter(&self) -> &str {
        &self.shared.filter
    }

    /// The local topic's name.
    pub fn topic(&self) -> &str {
        &self.shared.topic
    }

    /// The durable consumer's name.
    pub fn durable(&self) -> &str {
        &self.shared.durable
    }

    /// Stops pulling, waits (up to the bridge's close timeout) for the
    /// messages already published locally to be handled, and acks them.
    /// The durable consumer stays on the server; importing again with the
    /// same name resumes.
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
