//! The handle of a service link ([`ServiceLink`]) and the state it shares
//! with the bridge.

use std::fmt;

use crate::loom::sync::atomic::{AtomicU64, Ordering};
use crate::loom::sync::{Arc, Mutex};
use crate::Subscription;

/// Which way a link carries calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// NATS requests answered by the local service (`Bridge::serve`).
    Serve,
    /// Local calls answered over NATS (`Bridge::remote`).
    Remote,
}

pub(crate) struct ServiceShared {
    pub(crate) subject: String,
    pub(crate) service: String,
    pub(crate) direction: Direction,
    /// Calls answered with a reply.
    pub(crate) replied: AtomicU64,
    /// Calls answered with an error (or dropped: a request without a reply
    /// subject).
    pub(crate) failed: AtomicU64,
    /// `Serve`: the task taking requests off the subject.
    pub(crate) task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// `Remote`: the local member forwarding calls to NATS.
    pub(crate) member: Mutex<Option<Subscription>>,
}

impl ServiceShared {
    pub(crate) fn new(subject: &str, service: &str, direction: Direction) -> Self {
        ServiceShared {
            subject: subject.to_owned(),
            service: service.to_owned(),
            direction,
            replied: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            task: Mutex::new(None),
            member: Mutex::new(None),
        }
    }

    /// Counts one call's end.
    pub(crate) fn count(&self, replied: bool) {
        let counter = if replied { &self.replied } else { &self.failed };
        // Relaxed: a statistic.
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes no more calls: the serve task stops reading the subject (the
    /// calls it started finish), the remote member leaves the service.
    pub(crate) fn stop(&self) {
        if let Some(task) = self.task.lock().take() {
            task.abort();
        }
        if let Some(member) = self.member.lock().take() {
            member.unsubscribe();
        }
    }
}

/// A service carried over NATS: a local [`Service`](crate::Service) that
/// answers requests on a subject ([`Bridge::serve`](super::Bridge::serve)),
/// or one whose calls a remote server answers
/// ([`Bridge::remote`](super::Bridge::remote)). It lasts until
/// [`stop`](ServiceLink::stop) or the bridge closes; dropping the handle
/// keeps it.
///
/// # Examples
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # use pinbus::nats::{Bridge, BridgeOptions};
/// # let engine = pinbus::Engine::builder().build()?;
/// # let bridge = Bridge::connect("nats://127.0.0.1:4222", &engine, BridgeOptions::default())?;
/// let square = engine.service::<u64, u64>("math.square")?;
/// square.serve(|n| **n * **n)?;
/// let link = bridge.serve(&square, "math.square")?;
/// println!("{link:?}: {} answered", link.replied());
/// link.stop();
/// # Ok(()) }
/// ```
pub struct ServiceLink {
    pub(crate) shared: Arc<ServiceShared>,
}

impl ServiceLink {
    /// The NATS subject the calls travel on.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use pinbus::nats::{Bridge, BridgeOptions};
    /// # let engine = pinbus::Engine::builder().build()?;
    /// # let bridge = Bridge::connect("nats://127.0.0.1:4222", &engine, BridgeOptions::default())?;
    /// let quotes = engine.service::<u64, u64>("pricing.quote")?;
    /// assert_eq!(bridge.remote(&quotes, "eu.pricing.quote")?.subject(), "eu.pricing.quote");
    /// # Ok(()) }
    /// ```
    pub fn subject(&self) -> &str {
        &self.shared.subject
    }

    /// The local service's name.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use pinbus::nats::{Bridge, BridgeOptions};
    /// # let engine = pinbus::Engine::builder().build()?;
    /// # let bridge = Bridge::connect("nats://127.0.0.1:4222", &engine, BridgeOptions::default())?;
    /// let quotes = engine.service::<u64, u64>("pricing.quote")?;
    /// assert_eq!(bridge.remote(&quotes, "eu.pricing.quote")?.service(), "pricing.quote");
    /// # Ok(()) }
    /// ```
    pub fn service(&self) -> &str {
        &self.shared.service
    }

    /// Calls answered with a reply so far.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use pinbus::nats::{Bridge, BridgeOptions};
    /// # let engine = pinbus::Engine::builder().build()?;
    /// # let bridge = Bridge::connect("nats://127.0.0.1:4222", &engine, BridgeOptions::default())?;
    /// # let quotes = engine.service::<u64, u64>("pricing.quote")?;
    /// let link = bridge.remote(&quotes, "pricing.quote")?;
    /// assert_eq!(link.replied(), 0);
    /// # Ok(()) }
    /// ```
    pub fn replied(&self) -> u64 {
        // Relaxed: a statistic.
        self.shared.replied.load(Ordering::Relaxed)
    }

    /// Calls answered with an error so far (the handler failed, no server,
    /// timed out, undecodable query or reply), plus NATS requests that had
    /// no reply subject.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use pinbus::nats::{Bridge, BridgeOptions};
    /// # let engine = pinbus::Engine::builder().build()?;
    /// # let bridge = Bridge::connect("nats://127.0.0.1:4222", &engine, BridgeOptions::default())?;
    /// # let quotes = engine.service::<u64, u64>("pricing.quote")?;
    /// let link = bridge.remote(&quotes, "pricing.quote")?;
    /// assert_eq!(link.failed(), 0);
    /// # Ok(()) }
    /// ```
    pub fn failed(&self) -> u64 {
        // Relaxed: a statistic.
        self.shared.failed.load(Ordering::Relaxed)
    }

    /// Ends the link: a served subject takes no more requests (those being
    /// answered are answered); a remote stand-in leaves its service (calls
    /// in flight get their replies).
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use pinbus::nats::{Bridge, BridgeOptions};
    /// # let engine = pinbus::Engine::builder().build()?;
    /// # let bridge = Bridge::connect("nats://127.0.0.1:4222", &engine, BridgeOptions::default())?;
    /// # let quotes = engine.service::<u64, u64>("pricing.quote")?;
    /// bridge.remote(&quotes, "pricing.quote")?.stop();
    /// assert!(quotes.call(1).is_err()); // no member any more
    /// # Ok(()) }
    /// ```
    pub fn stop(self) {
        self.shared.stop();
    }
}

impl fmt::Debug for ServiceLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceLink")
            .field("subject", &self.shared.subject)
            .field("service", &self.shared.service)
            .field("direction", &self.shared.direction)
            .field("replied", &self.replied())
            .field("failed", &self.failed())
            .finish()
    }
}
