//! The [`Bridge`] handle: its state, its runtime, and closing it.

use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use tokio::sync::{broadcast, watch};

use super::conn::ConnState;
use super::error::BridgeError;
use super::handles::{ExportShared, ImportShared};
use super::options::BridgeOptions;
use super::service_link::ServiceShared;
use super::stats::{BridgeStats, Counters};
use crate::loom::sync::{Arc, Mutex};
use crate::Engine;

/// A connection from an [`Engine`]'s topics to NATS JetStream.
///
/// [`export`](Bridge::export) sends every event of a local topic to a
/// subject; [`import`](Bridge::import) publishes the messages of a durable
/// consumer into a local topic. The bridge owns a small tokio runtime
/// (`BridgeOptions::threads`, one thread by default) and one thread per
/// import; its methods are blocking and may be called from any thread,
/// including inside another tokio runtime.
///
/// ## Delivery
///
/// At least once end to end, with duplicates removed on both sides:
/// exports set `Nats-Msg-Id` (`<instance>-<topic>-<seq>`) so JetStream drops
/// re-sent copies within its duplicate window, and imports keep a bounded
/// window of message ids so a re-delivery after a server crash is acked, not
/// handled again. See the [module docs](super) for the exact bounds.
///
/// ## Backpressure
///
/// Each export has a bounded queue; when it is full the export
/// subscription waits up to `ExportOptions::max_block` (the lane backs up),
/// then fails the event, which its retry policy retries and finally
/// dead-letters on the topic
/// ([`Topic::dead_letters`](crate::Topic::dead_letters)). An import has at
/// most `ImportOptions::max_ack_pending` messages in flight and publishes
/// with the topic's backpressure (`Block` waits for room).
///
/// ## Shutdown
///
/// [`close`](Bridge::close) (or drop) stops the imports (outstanding
/// receipts are awaited and acked), then waits up to
/// `BridgeOptions::close_timeout` for queued exports to be acknowledged;
/// what is still unpublished then is counted in
/// [`BridgeStats::export_failed`]. Events still in the engine's lanes are not
/// the bridge's yet: when every event must go out, stop publishing and call
/// [`drain`](Bridge::drain) first (`bridge.drain(&engine, timeout)?;
/// bridge.close(); engine.shutdown();`).
///
/// # Examples
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use pinbus::Engine;
/// use pinbus::nats::{Bridge, BridgeOptions, ImportOptions};
///
/// #[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
/// struct Order { id: u64, cents: u64 }
///
/// let engine = Engine::builder().build()?;
/// let bridge = Bridge::connect(
///     "nats://127.0.0.1:4222",
///     &engine,
///     BridgeOptions::default().stream("ORDERS", ["orders.>"]),
/// )?;
///
/// // This process publishes locally; every event also goes to NATS.
/// let created = engine.topic::<Order>("orders.created")?;
/// bridge.export(&created, "orders.created")?;
/// created.publish(Order { id: 1, cents: 990 })?;
///
/// // Events from every process (any subject under orders.) come in here.
/// let incoming = engine.topic::<Order>("orders.incoming")?;
/// incoming.subscribe(|ev| println!("order {} from NATS", ev.id))?;
/// bridge.import::<Order, _>("orders.>", &incoming, ImportOptions::durable("billing"))?;
///
/// bridge.flush(std::time::Duration::from_secs(5))?;
/// bridge.close();
/// # Ok(()) }
/// ```
pub struct Bridge {
    pub(crate) inner: Arc<Inner>,
    runtime: Option<tokio::runtime::Runtime>,
}

pub(crate) struct Inner {
    pub(crate) url: String,
    pub(crate) js: jetstream::Context,
    pub(crate) options: BridgeOptions,
    pub(crate) instance: u64,
    /// The engine's instance id (to check the engine given to `drain`).
    pub(crate) engine_id: u64,
    pub(crate) workers: usize,
    /// The bridge's own counters (reconnects); each link has its own.
    pub(crate) counters: Arc<Counters>,
    pub(crate) conn: watch::Receiver<ConnState>,
    /// Errors the server sent (`-ERR`), as text; only with `connect`.
    pub(crate) server_errors: broadcast::Sender<String>,
    pub(crate) exports: Mutex<Vec<Arc<ExportShared>>>,
    pub(crate) imports: Mutex<Vec<Arc<ImportShared>>>,
    pub(crate) services: Mutex<Vec<Arc<ServiceShared>>>,
    pub(crate) closed: Mutex<bool>,
    /// Set when the close timeout has passed: export tasks count what they
    /// still hold as failed and end.
    pub(crate) abort: Arc<watch::Sender<bool>>,
}

impl Bridge {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn assemble(
        url: &str,
        js: jetstream::Context,
        engine: &Engine,
        options: BridgeOptions,
        runtime: tokio::runtime::Runtime,
        counters: Arc<Counters>,
        conn: watch::Receiver<ConnState>,
        server_errors: broadcast::Sender<String>,
    ) -> Bridge {
        let inner = Arc::new(Inner {
            url: url.to_owned(),
            js,
            instance: options.instance_id.unwrap_or_else(|| engine.instance_id()),
            engine_id: engine.instance_id(),
            workers: engine.workers(),
            options,
            counters,
            conn,
            server_errors,
            exports: Mutex::new(Vec::new()),
            imports: Mutex::new(Vec::new()),
            services: Mutex::new(Vec::new()),
            closed: Mutex::new(false),
            abort: Arc::new(watch::channel(false).0),
        });
        Bridge {
            inner,
            runtime: Some(runtime),
        }
    }

    /// The instance id at the start of every `Nats-Msg-Id` this bridge
    /// writes.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use pinbus::nats::{Bridge, BridgeOptions};
    /// # let engine = pinbus::Engine::builder().build()?;
    /// let bridge = Bridge::connect("nats://127.0.0.1:4222", &engine,
    ///     BridgeOptions::default().instance_id(42))?;
    /// assert_eq!(bridge.instance_id(), 42);
    /// # Ok(()) }
    /// ```
    pub fn instance_id(&self) -> u64 {
        self.inner.instance
    }

    /// Stops every import and export and closes the connection; see
    /// [Shutdown](#shutdown). Dropping the bridge does the same.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use pinbus::nats::{Bridge, BridgeOptions};
    /// # let engine = pinbus::Engine::builder().build()?;
    /// let bridge = Bridge::connect("nats://127.0.0.1:4222", &engine, BridgeOptions::default())?;
    /// let stats = bridge.close();
    /// assert_eq!(stats.export_pending, 0);
    /// # Ok(()) }
    /// ```
    pub fn close(mut self) -> BridgeStats {
        self.shutdown();
        self.stats()
    }

    fn shutdown(&mut self) {
        {
            let mut closed = self.inner.closed.lock();
            if *closed {
                return;
            }
            *closed = true;
        }
        let deadline = Instant::now() + self.inner.options.close_timeout;
        // Services first: remote stand-ins leave their services (their
        // calls in flight fail when the runtime stops), served subjects
        // take no more requests.
        for s in self.inner.services.lock().drain(..) {
            s.stop();
        }
        let imports: Vec<_> = self.inner.imports.lock().clone();
        for i in &imports {
            i.stop_and_join();
        }
        let exports: Vec<_> = self.inner.exports.lock().clone();
        for e in &exports {
            e.unsubscribe();
        }
        // The queues close once their handlers are gone; each task drains
        // its queue and ends. Past the deadline, the rest is counted failed.
        if let Some(rt) = &self.runtime {
            for e in &exports {
                if let Some(mut task) = e.task.lock().take() {
                    let left = deadline.saturating_duration_since(Instant::now());
                    let abort = self.inner.abort.clone();
                    let _ = block_on(rt.handle(), async move {
                        if tokio::time::timeout(left, &mut task).await.is_err() {
                            // Past the deadline: the task counts what it
                            // still holds as failed, then ends.
                            let _ = abort.send(true);
                            let _ = task.await;
                        }
                    });
                }
            }
        }
        if let Some(rt) = self.runtime.take() {
            if tokio::runtime::Handle::try_current().is_ok() {
                // Inside the caller's runtime, where blocking is not allowed.
                rt.shutdown_background();
            } else {
                rt.shutdown_timeout(Duration::from_millis(100));
            }
        }
    }

    pub(crate) fn handle(&self) -> Result<&tokio::runtime::Handle, BridgeError> {
        self.runtime
            .as_ref()
            .map(|rt| rt.handle())
            .ok_or(BridgeError::Closed)
    }

    pub(crate) fn check_open(&self) -> Result<(), BridgeError> {
        if *self.inner.closed.lock() {
            return Err(BridgeError::Closed);
        }
        Ok(())
    }

    pub(crate) fn abort_signal(&self) -> watch::Receiver<bool> {
        self.inner.abort.subscribe()
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl fmt::Debug for Bridge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bridge")
            .field("url", &self.inner.url)
            .field("stream", &self.inner.options.stream)
            .field("instance_id", &format_args!("{:016x}", self.inner.instance))
            .field("exports", &self.inner.exports.lock().len())
            .field("imports", &self.inner.imports.lock().len())
            .field("services", &self.inner.services.lock().len())
            .finish_non_exhaustive()
    }
}

/// Runs `fut` on the bridge's runtime and waits for it from this thread,
/// which may itself be inside another runtime (no nested `block_on`).
pub(crate) fn block_on<F>(handle: &tokio::runtime::Handle, fut: F) -> Result<F::Output, BridgeError>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    handle.spawn(async move {
        let _ = tx.send(fut.await);
    });
    rx.recv().map_err(|_| BridgeError::Closed)
}
