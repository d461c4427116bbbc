//! `Bridge`: the connection, its runtime, the stream, and the exports and
//! imports running on them.

use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer};
use tokio::sync::{broadcast, mpsc, watch};

use super::codec::{Codec, Json};
use super::dedupe::Window;
use super::error::BridgeError;
use super::export;
use super::handles::{Export, ExportShared, Import, ImportShared};
use super::import;
use super::options::{BridgeOptions, ExportOptions, ImportOptions};
use super::rejected::{RejectedMessage, Store};
use super::stats::{add, BridgeStats, Counters, LinkKind, LinkStats};
use super::stream::ensure_stream;
use super::subject;
use crate::loom::sync::atomic::Ordering;
use crate::loom::sync::{Arc, Mutex, MutexGuard};
use crate::loom::thread;
use crate::{Engine, SubscribeOptions, Topic};

/// Locks `m`, recovering from poisoning (no bridge state is left half-made
/// by a panic).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock()
}

/// The connection's state as the client reports it, for exports to replay
/// after a reconnect.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ConnState {
    /// Connected now.
    pub(crate) up: bool,
    /// Incremented on every (re)connect.
    pub(crate) epoch: u64,
    /// When the connection last dropped.
    pub(crate) down_at: Option<Instant>,
}

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
/// dead-letters on the topic ([`Topic::dead_letters`]). An import has at
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
    inner: Arc<Inner>,
    runtime: Option<tokio::runtime::Runtime>,
}

struct Inner {
    url: String,
    js: jetstream::Context,
    options: BridgeOptions,
    instance: u64,
    /// The engine's instance id (to check the engine given to `drain`).
    engine_id: u64,
    workers: usize,
    /// The bridge's own counters (reconnects); each link has its own.
    counters: Arc<Counters>,
    conn: watch::Receiver<ConnState>,
    /// Errors the server sent (`-ERR`), as text; only with `connect`.
    server_errors: broadcast::Sender<String>,
    exports: Mutex<Vec<Arc<ExportShared>>>,
    imports: Mutex<Vec<Arc<ImportShared>>>,
    closed: Mutex<bool>,
    /// Set when the close timeout has passed: export tasks count what they
    /// still hold as failed and end.
    abort: Arc<watch::Sender<bool>>,
}

impl Bridge {
    /// Connects to the NATS server at `url` (`nats://host:port`, several
    /// separated by commas for a cluster; `tls://` for TLS), with the
    /// credentials and TLS settings of `options`, and makes sure the stream
    /// of [`BridgeOptions::stream`] exists, captures its subjects and has
    /// the limits set there.
    ///
    /// `engine` is the engine whose topics this bridge will carry.
    ///
    /// # Errors
    ///
    /// [`BridgeError::InvalidOption`] / [`InvalidSubject`](BridgeError::InvalidSubject)
    /// for bad options, [`BridgeError::Connect`] when no server answers
    /// within the connect timeout, [`BridgeError::Auth`] for refused
    /// credentials, [`BridgeError::Tls`] for a failed TLS handshake,
    /// [`BridgeError::Credentials`] for an unreadable credentials file,
    /// [`BridgeError::Permission`] when the user may not use JetStream, [`BridgeError::JetStream`] when the stream
    /// cannot be created or updated (JetStream off, a subject taken by
    /// another stream), [`BridgeError::Runtime`] when the runtime's threads
    /// cannot start.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pinbus::nats::{Bridge, BridgeOptions};
    /// let engine = pinbus::Engine::builder().build()?;
    /// let bridge = Bridge::connect(
    ///     "nats://10.0.0.5:4222,nats://10.0.0.6:4222",
    ///     &engine,
    ///     BridgeOptions::default().stream("ORDERS", ["orders.>"]).name("checkout"),
    /// )?;
    /// # drop(bridge);
    /// # Ok(()) }
    /// ```
    pub fn connect(
        url: &str,
        engine: &Engine,
        options: BridgeOptions,
    ) -> Result<Bridge, BridgeError> {
        options.validate()?;
        let runtime = runtime(&options)?;
        let counters = Arc::new(Counters::default());
        let (conn_tx, conn_rx) = watch::channel(ConnState::default());
        let conn_tx = Arc::new(conn_tx);
        let (errors_tx, _) = broadcast::channel(64);
        let opts = connect_options(&options, &counters, &conn_tx, &errors_tx)?;
        let connect = {
            let url = url.to_owned();
            let errors = errors_tx.clone();
            let options = options.clone();
            async move {
                let client = opts
                    .connect(url.as_str())
                    .await
                    .map_err(|e| connect_error(&url, e))?;
                let js = context(client, &options);
                guarded(&errors, ensure_stream(&js, &options)).await?;
                Ok::<_, BridgeError>(js)
            }
        };
        let js = block_on(runtime.handle(), connect)??;
        Ok(Bridge::assemble(
            url, js, engine, options, runtime, counters, conn_rx, errors_tx,
        ))
    }

    /// A bridge on an `async_nats::Client` the service already connected
    /// and configured (credentials, TLS, callbacks, inbox prefix...): the
    /// bridge adds no connection of its own. Makes sure the stream of
    /// `options` exists, as [`connect`](Bridge::connect) does; the
    /// connection options in `options` (credentials, TLS, timeouts of the
    /// first connect, name) are not used.
    ///
    /// The client's connection task runs on the runtime it was connected
    /// on, which must outlive the bridge. The bridge notices reconnects by
    /// polling the client's statistics every 50 ms (for the replay after a
    /// reconnect), and it does not see the server's permission errors:
    /// an export to a subject the user may not publish to fails with
    /// [`BridgeError::JetStream`] after `request_timeout` instead of
    /// [`BridgeError::Permission`] at once.
    ///
    /// # Errors
    ///
    /// As [`connect`](Bridge::connect), except `Connect`, `Auth` and `Tls`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pinbus::nats::{Bridge, BridgeOptions};
    /// let rt = tokio::runtime::Runtime::new()?;
    /// let client = rt.block_on(
    ///     async_nats::ConnectOptions::with_user_and_password("billing".into(), "s3cret".into())
    ///         .require_tls(true)
    ///         .connect("tls://nats.internal:4222"),
    /// )?;
    /// let engine = pinbus::Engine::builder().build()?;
    /// let bridge = Bridge::with_client(client, &engine, BridgeOptions::default())?;
    /// # drop(bridge);
    /// # Ok(()) }
    /// ```
    pub fn with_client(
        client: async_nats::Client,
        engine: &Engine,
        options: BridgeOptions,
    ) -> Result<Bridge, BridgeError> {
        options.validate()?;
        let runtime = runtime(&options)?;
        let counters = Arc::new(Counters::default());
        let (connects, up) = client_state(&client);
        let (conn_tx, conn_rx) = watch::channel(ConnState {
            up,
            epoch: connects,
            down_at: None,
        });
        let conn_tx = Arc::new(conn_tx);
        let (errors_tx, _) = broadcast::channel(64);
        let url = format!(
            "(caller's client, server {})",
            client.server_info().server_name
        );
        runtime
            .handle()
            .spawn(watch_client(client.clone(), conn_tx, counters.clone()));
        let setup = {
            let options = options.clone();
            async move {
                let js = context(client, &options);
                ensure_stream(&js, &options).await?;
                Ok::<_, BridgeError>(js)
            }
        };
        let js = block_on(runtime.handle(), setup)??;
        Ok(Bridge::assemble(
            &url, js, engine, options, runtime, counters, conn_rx, errors_tx,
        ))
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble(
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
            closed: Mutex::new(false),
            abort: Arc::new(watch::channel(false).0),
        });
        Bridge {
            inner,
            runtime: Some(runtime),
        }
    }

    /// Exports every event of `topic` to the NATS subject `subject`, as
    /// JSON, with the default [`ExportOptions`].
    ///
    /// # Errors
    ///
    /// As [`export_with`](Bridge::export_with).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use pinbus::nats::{Bridge, BridgeOptions};
    /// # let engine = pinbus::Engine::builder().build()?;
    /// # let bridge = Bridge::connect("nats://127.0.0.1:4222", &engine,
    /// #     BridgeOptions::default().stream("ORDERS", ["orders.>"]))?;
    /// let created = engine.topic::<u64>("orders.created")?;
    /// let export = bridge.export(&created, "orders.created")?;
    /// assert_eq!(export.subject(), "orders.created");
    /// # Ok(()) }
    /// ```
    pub fn export<T>(&self, topic: &Topic<T>, subject: &str) -> Result<Export, BridgeError>
    where
        T: Clone + Send + 'static,
        Json: Codec<T>,
    {
        self.export_with(topic, subject, ExportOptions::new())
    }

    /// Exports every event of `topic` to `subject` with `options` (codec,
    /// queue size, acks in flight, local retry policy).
    ///
    /// A subscription named `nats-export:<subject>` is added to the topic;
    /// events published from now on are exported.
    ///
    /// # Errors
    ///
    /// [`BridgeError::InvalidSubject`] for a subject with wildcards or bad
    /// tokens, [`BridgeError::NotInStream`] when no stream captures it and
    /// [`BridgeOptions::stream`] fixed the bridge's subjects,
    /// [`BridgeError::Permission`] when the user may not publish to it, [`BridgeError::InvalidOption`], [`BridgeError::Subscribe`]
    /// when the engine is shut down, [`BridgeError::Closed`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use pinbus::nats::{Bridge, BridgeOptions};
    /// use pinbus::nats::{Binary, ExportOptions};
    /// # let engine = pinbus::Engine::builder().build()?;
    /// # let bridge = Bridge::connect("nats://127.0.0.1:4222", &engine,
    /// #     BridgeOptions::default().stream("TICKS", ["ticks.>"]))?;
    /// let ticks = engine.topic::<(u32, f64)>("ticks.eurusd")?;
    /// bridge.export_with(&ticks, "ticks.eurusd", ExportOptions::new().codec(Binary))?;
    /// # Ok(()) }
    /// ```
    pub fn export_with<T, C>(
        &self,
        topic: &Topic<T>,
        subject: &str,
        options: ExportOptions<C>,
    ) -> Result<Export, BridgeError>
    where
        T: Clone + Send + 'static,
        C: Codec<T>,
    {
        self.check_open()?;
        options.validate()?;
        subject::validate(subject, false)?;
        if let Some(w) = options.worker.filter(|w| *w >= self.inner.workers) {
            return Err(BridgeError::InvalidOption {
                problem: format!(
                    "ExportOptions::worker({w}) names a worker the engine lacks; it has {} \
                     workers, numbered 0 to {}",
                    self.inner.workers,
                    self.inner.workers.saturating_sub(1)
                ),
            });
        }
        self.place_export(subject)?;
        let counters = Arc::new(Counters::default());
        let (tx, rx) = mpsc::channel(options.queue_capacity);
        let content_type = options.codec.content_type();
        let prefix = format!("{:016x}-{}-", self.inner.instance, topic.name());
        let handler = export::handler(
            options.codec,
            tx,
            prefix,
            Arc::from(subject),
            counters.clone(),
            self.handle()?.clone(),
            options.max_block,
        );
        let mut sub_options = SubscribeOptions::new()
            .name(format!("nats-export:{subject}"))
            .retry(options.retry);
        if let Some(w) = options.worker {
            sub_options = sub_options.worker(w);
        }
        let task = export::Task {
            js: self.inner.js.clone(),
            subject: async_nats::Subject::from(subject),
            content_type,
            rx,
            max_in_flight: options.max_in_flight,
            replay_window: options.replay_window,
            counters: counters.clone(),
            conn: self.inner.conn.clone(),
            abort: self.abort_signal(),
        };
        // The task first, so that it drains whatever the subscription queues.
        let handle = self.handle()?.spawn(task.run());
        let subscription = match topic.subscribe_with(handler, sub_options) {
            Ok(s) => s,
            Err(e) => {
                handle.abort();
                return Err(BridgeError::Subscribe {
                    topic: topic.name().to_owned(),
                    reason: e.to_string(),
                });
            }
        };
        let shared = Arc::new(ExportShared {
            subject: subject.to_owned(),
            topic: topic.name().to_owned(),
            subscription_name: format!("nats-export:{subject}"),
            counters,
            subscription: Mutex::new(Some(subscription)),
            final_dead: Mutex::new(0),
            task: Mutex::new(Some(handle)),
        });
        self.inner.exports.lock().push(shared.clone());
        Ok(Export { shared })
    }

    /// Publishes the messages of the stream that match `filter` (NATS
    /// wildcards: `orders.*`, `orders.>`) into `topic`, through the durable
    /// pull consumer `options` names, decoding them with its codec (JSON by
    /// default: `ImportOptions::durable(name)`).
    ///
    /// The consumer is created if missing (explicit acks, the ack wait and
    /// max-ack-pending of `options`); if it exists it resumes where it
    /// stopped. Each message is acked once every subscription of `topic`
    /// live at its publish has handled it.
    ///
    /// # Errors
    ///
    /// [`BridgeError::InvalidSubject`], [`BridgeError::NotInStream`],
    /// [`BridgeError::InvalidOption`], [`BridgeError::JetStream`] when the
    /// consumer cannot be created (for example a durable of that name with
    /// another filter), [`BridgeError::Runtime`] when the import thread
    /// cannot start, [`BridgeError::Closed`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use pinbus::nats::{Bridge, BridgeOptions};
    /// use pinbus::nats::ImportOptions;
    /// # let engine = pinbus::Engine::builder().build()?;
    /// # let bridge = Bridge::connect("nats://127.0.0.1:4222", &engine,
    /// #     BridgeOptions::default().stream("ORDERS", ["orders.>"]))?;
    /// let orders = engine.topic::<serde_json::Value>("orders.all")?;
    /// orders.subscribe(|ev| println!("{}", **ev))?;
    /// let import = bridge.import("orders.>", &orders, ImportOptions::durable("audit"))?;
    /// assert_eq!(import.durable(), "audit");
    /// # Ok(()) }
    /// ```
    pub fn import<T, C>(
        &self,
        filter: &str,
        topic: &Topic<T>,
        options: ImportOptions<C>,
    ) -> Result<Import, BridgeError>
    where
        T: Clone + Send + 'static,
        C: Codec<T>,
    {
        self.check_open()?;
        options.validate()?;
        subject::validate(filter, true)?;
        let stream_name = self.place_import(filter)?;
        let config = consumer::pull::Config {
            durable_name: Some(options.durable.clone()),
            filter_subject: filter.to_owned(),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: options.ack_wait,
            max_ack_pending: options.max_ack_pending as i64,
            deliver_policy: if options.deliver_new {
                consumer::DeliverPolicy::New
            } else {
                consumer::DeliverPolicy::All
            },
            ..Default::default()
        };
        let js = self.inner.js.clone();
        let durable = options.durable.clone();
        let errors = self.inner.server_errors.clone();
        let setup_stream = stream_name.clone();
        let consumer = block_on(self.handle()?, async move {
            let stream_name = setup_stream;
            guarded(&errors, async move {
                let stream =
                    js.get_stream(&stream_name)
                        .await
                        .map_err(|e| BridgeError::JetStream {
                            action: format!("open stream {stream_name:?}"),
                            reason: e.to_string(),
                        })?;
                stream
                    .get_or_create_consumer(&durable, config)
                    .await
                    .map_err(|e| BridgeError::JetStream {
                        action: format!(
                            "create durable consumer {durable:?} on stream {stream_name:?}"
                        ),
                        reason: e.to_string(),
                    })
            })
            .await
        })??;
        let existing = consumer.cached_info().config.filter_subject.clone();
        if existing != filter {
            return Err(BridgeError::DurableInUse {
                durable: options.durable,
                filter: existing,
                wanted: filter.to_owned(),
            });
        }

        let counters = Arc::new(Counters::default());
        let rejected = Arc::new(Store::new(options.keep_rejected, counters.clone()));
        let window = Arc::new(Mutex::new(Window::new(options.dedupe_window)));
        let (tx, rx) = mpsc::channel(options.max_ack_pending);
        let (stop_tx, stop_rx) = watch::channel(false);
        let publisher = import::Publisher {
            topic: topic.clone(),
            codec: options.codec,
            rx,
            window: window.clone(),
            counters: counters.clone(),
            runtime: self.handle()?.clone(),
            max_pending: options.max_ack_pending,
            close_timeout: self.inner.options.close_timeout,
            rejected: rejected.clone(),
            payload_limit: options.rejected_payload_limit,
            durable: options.durable.clone(),
        };
        let thread = thread::Builder::new()
            .name(format!("pinbus-nats-{}", options.durable))
            .spawn(move || publisher.run())
            .map_err(BridgeError::Runtime)?;
        let puller = import::Puller {
            consumer,
            batch: options.batch,
            window,
            tx,
            counters: counters.clone(),
            stop: stop_rx,
        };
        let task = self.handle()?.spawn(puller.run());
        let shared = Arc::new(ImportShared {
            filter: filter.to_owned(),
            topic: topic.name().to_owned(),
            durable: options.durable,
            stream: stream_name,
            counters,
            rejected,
            stop: stop_tx,
            thread: Mutex::new(Some(thread)),
            task: Mutex::new(Some(task)),
        });
        self.inner.imports.lock().push(shared.clone());
        Ok(Import { shared })
    }

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
    /// pinbus's [`Engine::metrics`] knows nothing of the bridge (the core
    /// has no NATS dependency), so these come from the bridge; with the
    /// cargo feature `metrics`, [`export_metrics`](Bridge::export_metrics)
    /// hands them to the `metrics` facade.
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

    /// Waits until every event that the exported topics accepted before
    /// this call has been acknowledged by JetStream or dead-lettered by its
    /// export (or counted in `export_failed`): nothing is left in the export
    /// subscriptions' lanes, their queues, their acks in flight or their
    /// retry policies. Returns the bridge's stats then. The call to make
    /// before [`close`](Bridge::close) (and [`Engine::shutdown`]) when every
    /// event must be out, and after publishing a batch that must be stored.
    ///
    /// `engine` is the engine the bridge was made with (its lanes are where
    /// the events wait before the export sees them).
    ///
    /// It waits for the exports to be idle, so while producers keep
    /// publishing it returns only once the exports catch up.
    ///
    /// # Errors
    ///
    /// [`BridgeError::DrainTimeout`] with what is still on its way;
    /// [`BridgeError::InvalidOption`] for another engine;
    /// [`BridgeError::Closed`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use pinbus::nats::{Bridge, BridgeOptions};
    /// # let engine = pinbus::Engine::builder().build()?;
    /// # let bridge = Bridge::connect("nats://127.0.0.1:4222", &engine, BridgeOptions::default())?;
    /// let orders = engine.topic::<u64>("orders.created")?;
    /// bridge.export(&orders, "orders.created")?;
    /// for id in 0..10_000 {
    ///     orders.publish(id)?;
    /// }
    /// let stats = bridge.drain(&engine, std::time::Duration::from_secs(30))?;
    /// assert_eq!(stats.exported + stats.export_dead_lettered, 10_000);
    /// bridge.close();
    /// engine.shutdown();
    /// # Ok(()) }
    /// ```
    pub fn drain(&self, engine: &Engine, timeout: Duration) -> Result<BridgeStats, BridgeError> {
        self.check_open()?;
        if engine.instance_id() != self.inner.engine_id {
            return Err(BridgeError::InvalidOption {
                problem: "Bridge::drain was given another engine than the bridge's; pass the \
                          engine given to Bridge::connect"
                    .into(),
            });
        }
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_micros(200);
        loop {
            // The lanes first, then the counters: an event handled in
            // between is counted by both (never by neither).
            let metrics = engine.metrics();
            let exports: Vec<_> = self.inner.exports.lock().clone();
            let (mut unseen, mut pending, mut retrying) = (0u64, 0u64, 0u64);
            for e in &exports {
                let running = e.subscription.lock().is_some();
                if running {
                    unseen += metrics
                        .subscriptions
                        .iter()
                        .filter(|m| m.topic == e.topic && m.name == e.subscription_name)
                        .map(|m| m.lag as u64)
                        .sum::<u64>();
                }
                let (p, r) = e.in_progress();
                pending += p;
                if running {
                    // A stopped export's retries are discarded with it.
                    retrying += r;
                }
            }
            if unseen == 0 && pending == 0 && retrying == 0 {
                return Ok(self.stats());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(BridgeError::DrainTimeout {
                    unseen,
                    pending,
                    retrying,
                });
            }
            crate::loom::sleep(pause.min(left));
            pause = (pause * 2).min(Duration::from_millis(10));
        }
    }

    /// Waits until every event accepted by the exports so far is
    /// acknowledged by JetStream (or counted failed).
    ///
    /// # Errors
    ///
    /// [`BridgeError::FlushTimeout`] with the number still pending.
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
    /// # bridge.export(&orders, "orders.created")?;
    /// orders.publish_and_wait(1)?;  // the export subscription has queued it
    /// bridge.flush(std::time::Duration::from_secs(5))?; // and JetStream has stored it
    /// # Ok(()) }
    /// ```
    pub fn flush(&self, timeout: Duration) -> Result<(), BridgeError> {
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_micros(100);
        loop {
            let pending = self.stats().export_pending;
            if pending == 0 {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(BridgeError::FlushTimeout { pending });
            }
            crate::loom::sleep(pause.min(left));
            pause = (pause * 2).min(Duration::from_millis(10));
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

    fn handle(&self) -> Result<&tokio::runtime::Handle, BridgeError> {
        self.runtime
            .as_ref()
            .map(|rt| rt.handle())
            .ok_or(BridgeError::Closed)
    }

    fn check_open(&self) -> Result<(), BridgeError> {
        if *self.inner.closed.lock() {
            return Err(BridgeError::Closed);
        }
        Ok(())
    }

    fn not_in_stream(&self, subject: &str, found: Option<(String, Vec<String>)>) -> BridgeError {
        let o = &self.inner.options;
        let (stream, subjects) = found.unwrap_or_else(|| (o.stream.clone(), o.subjects.clone()));
        BridgeError::NotInStream {
            subject: subject.to_owned(),
            stream,
            subjects,
        }
    }

    /// Makes sure a stream captures `subject` and that the user may publish
    /// to it (a probe JetStream answers without storing anything), adding
    /// the subject to the bridge's stream where the options allow.
    fn place_export(&self, subject: &str) -> Result<(), BridgeError> {
        let inner = self.inner.clone();
        let subject = subject.to_owned();
        let errors = self.inner.server_errors.clone();
        let verdict = block_on(self.handle()?, {
            let subject = subject.clone();
            async move { probe(&inner.js, &subject, &errors, inner.options.request_timeout).await }
        })?;
        match verdict {
            Probe::Captured => Ok(()),
            Probe::Denied(reason) => Err(BridgeError::Permission {
                operation: "publish to",
                subject,
                reason,
            }),
            Probe::NoAnswer(reason) => Err(BridgeError::JetStream {
                action: format!("answer a test publish to {subject:?}"),
                reason: format!(
                    "{reason}; the user may lack permission to publish to {subject:?} or to \
                     subscribe to _INBOX.> (for the acks), or JetStream is not running"
                ),
            }),
            Probe::NoStream => {
                let o = &self.inner.options;
                let ours = o.subjects.iter().any(|p| subject::covers(p, &subject));
                if o.stream_explicit && !ours {
                    return Err(self.not_in_stream(&subject, None));
                }
                let inner = self.inner.clone();
                let errors = self.inner.server_errors.clone();
                block_on(self.handle()?, async move {
                    guarded(
                        &errors,
                        super::stream::extend(&inner.js, &inner.options, &subject),
                    )
                    .await
                })?
            }
        }
    }

    /// The stream an import of `filter` reads: the bridge's if it covers
    /// the filter, else the server's stream that does, else (without an
    /// explicit `BridgeOptions::stream`) the bridge's, extended.
    fn place_import(&self, filter: &str) -> Result<String, BridgeError> {
        let o = &self.inner.options;
        if o.subjects.iter().any(|p| subject::covers(p, filter)) {
            return Ok(o.stream.clone());
        }
        let inner = self.inner.clone();
        let errors = self.inner.server_errors.clone();
        let owned = filter.to_owned();
        let found = block_on(self.handle()?, async move {
            guarded(&errors, super::stream::find(&inner.js, &owned)).await
        })??;
        match found {
            Some((name, subjects)) if subjects.iter().any(|p| subject::covers(p, filter)) => {
                Ok(name)
            }
            Some((name, _)) if name == o.stream && !o.stream_explicit => self.extend(filter),
            None if !o.stream_explicit => self.extend(filter),
            other => Err(self.not_in_stream(filter, other)),
        }
    }

    fn extend(&self, subject: &str) -> Result<String, BridgeError> {
        let inner = self.inner.clone();
        let errors = self.inner.server_errors.clone();
        let subject = subject.to_owned();
        block_on(self.handle()?, async move {
            guarded(
                &errors,
                super::stream::extend(&inner.js, &inner.options, &subject),
            )
            .await
        })??;
        Ok(self.inner.options.stream.clone())
    }

    fn abort_signal(&self) -> watch::Receiver<bool> {
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
            .finish_non_exhaustive()
    }
}

/// The bridge's tokio runtime.
fn runtime(options: &BridgeOptions) -> Result<tokio::runtime::Runtime, BridgeError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(options.threads)
        .thread_name("pinbus-nats")
        .enable_all()
        .build()
        .map_err(BridgeError::Runtime)
}

/// The JetStream context the bridge works through.
fn context(client: async_nats::Client, options: &BridgeOptions) -> jetstream::Context {
    jetstream::ContextBuilder::new()
        .timeout(options.request_timeout)
        .ack_timeout(options.request_timeout)
        .max_ack_inflight(1 << 16)
        .backpressure_on_inflight(true)
        .build(client)
}

/// The client options of [`Bridge::connect`]: timeouts, reconnects, the
/// event callback, credentials and TLS.
fn connect_options(
    options: &BridgeOptions,
    counters: &Arc<Counters>,
    conn_tx: &Arc<watch::Sender<ConnState>>,
    errors: &broadcast::Sender<String>,
) -> Result<async_nats::ConnectOptions, BridgeError> {
    let counters = counters.clone();
    let conn_tx = conn_tx.clone();
    let errors = errors.clone();
    let max_delay = options.max_reconnect_delay;
    let mut opts = async_nats::ConnectOptions::new()
        .connection_timeout(options.connect_timeout)
        .request_timeout(Some(options.request_timeout))
        .reconnect_delay_callback(move |attempts| {
            let shift = attempts.min(16) as u32;
            Duration::from_millis(50u64 << shift).min(max_delay)
        })
        .event_callback(move |event| {
            let (conn_tx, counters, errors) = (conn_tx.clone(), counters.clone(), errors.clone());
            async move { on_event(&conn_tx, &counters, &errors, event) }
        });
    if let Some(name) = &options.name {
        opts = opts.name(name);
    }
    let auth = &options.auth;
    if let Some((user, pass)) = &auth.user_and_password {
        opts = opts.user_and_password(user.clone(), pass.clone());
    }
    if let Some(token) = &auth.token {
        opts = opts.token(token.clone());
    }
    if let Some(seed) = &auth.nkey {
        opts = opts.nkey(seed.clone());
    }
    if let Some(path) = &auth.credentials_file {
        let creds = std::fs::read_to_string(path).map_err(|e| BridgeError::Credentials {
            what: "credentials file",
            path: path.clone(),
            reason: e.to_string(),
        })?;
        opts = opts
            .credentials(&creds)
            .map_err(|e| BridgeError::Credentials {
                what: "credentials file",
                path: path.clone(),
                reason: format!("{e} (expected a user JWT and an NKey seed, as `nsc` writes)"),
            })?;
    }
    let tls = &options.tls;
    if let Some(ca) = &tls.root_certificates {
        opts = opts.add_root_certificates(ca.clone());
    }
    if let Some((cert, key)) = &tls.client_certificate {
        opts = opts.add_client_certificate(cert.clone(), key.clone());
    }
    if tls.require_tls {
        opts = opts.require_tls(true);
    }
    Ok(opts)
}

/// A typed error for a failed first connect.
fn connect_error(url: &str, e: async_nats::ConnectError) -> BridgeError {
    use async_nats::ConnectErrorKind as K;
    let reason = e.to_string();
    let url = url.to_owned();
    let lower = reason.to_lowercase();
    match e.kind() {
        K::AuthorizationViolation | K::Authentication => BridgeError::Auth { url, reason },
        K::Tls => BridgeError::Tls { url, reason },
        _ if lower.contains("certificate")
            || lower.contains("tls")
            || lower.contains("handshake") =>
        {
            BridgeError::Tls { url, reason }
        }
        _ if lower.contains("authorization") || lower.contains("authentication") => {
            BridgeError::Auth { url, reason }
        }
        _ => BridgeError::Connect { url, reason },
    }
}

/// The state of a caller's client as the bridge tracks it.
fn client_state(client: &async_nats::Client) -> (u64, bool) {
    let connects = client.statistics().connects.load(Ordering::Relaxed);
    let up = client.connection_state() == async_nats::connection::State::Connected;
    (connects, up)
}

/// Reconnects of a caller's client, seen by polling its statistics.
async fn watch_client(
    client: async_nats::Client,
    conn: Arc<watch::Sender<ConnState>>,
    counters: Arc<Counters>,
) {
    let (mut connects, mut up) = client_state(&client);
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (now_connects, now_up) = client_state(&client);
        if now_connects == connects && now_up == up {
            continue;
        }
        let reconnected = now_connects > connects;
        if reconnected && connects > 0 {
            add(&counters.reconnects, now_connects - connects);
        }
        conn.send_modify(|s| {
            // A drop shorter than the poll shows only as a new connect.
            if up && (!now_up || reconnected) {
                s.down_at = Some(Instant::now());
            }
            s.epoch += now_connects.saturating_sub(connects);
            s.up = now_up;
        });
        connects = now_connects;
        up = now_up;
    }
}

/// What JetStream said to a probe publish.
enum Probe {
    /// A stream captures the subject (it refused the probe, as asked).
    Captured,
    /// No stream captures it ("no responders").
    NoStream,
    /// The server refused the publish (permissions), with its message.
    Denied(String),
    /// No answer within the timeout.
    NoAnswer(String),
}

/// A stream name no stream has: a publish that expects it is answered
/// with an error by the stream that captures the subject, and not stored.
const PROBE_STREAM: &str = "pinbus-probe-no-such-stream";

/// Publishes an empty message to `subject` that JetStream refuses without
/// storing it (`Nats-Expected-Stream` names no stream): its answer says
/// whether a stream captures the subject, and a permission error from the
/// server says the user may not publish there.
async fn probe(
    js: &jetstream::Context,
    subject: &str,
    errors: &broadcast::Sender<String>,
    timeout: Duration,
) -> Probe {
    use async_nats::jetstream::context::PublishErrorKind as K;
    let mut errs = errors.subscribe();
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Expected-Stream", PROBE_STREAM);
    let answer = async {
        let ack = js
            .publish_with_headers(subject.to_owned(), headers, bytes::Bytes::new())
            .await?;
        ack.await
    };
    let violation = permission_violation(&mut errs, Some(subject));
    let result = tokio::select! {
        r = answer => r,
        msg = violation => return Probe::Denied(msg),
        _ = tokio::time::sleep(timeout + Duration::from_millis(500)) => {
            return Probe::NoAnswer(format!("no answer within {timeout:?}"));
        }
    };
    match result {
        // Only a stream named PROBE_STREAM would store it.
        Ok(_) => Probe::Captured,
        Err(e) if e.kind() == K::StreamNotFound => Probe::NoStream,
        Err(e) if e.kind() == K::TimedOut || e.kind() == K::BrokenPipe => {
            // The violation may come just after the ack gave up.
            match tokio::time::timeout(Duration::from_millis(200), async {
                permission_violation(&mut errs, Some(subject)).await
            })
            .await
            {
                Ok(msg) => Probe::Denied(msg),
                Err(_) => Probe::NoAnswer(e.to_string()),
            }
        }
        Err(_) => Probe::Captured,
    }
}

/// The next "Permissions Violation" the server sends (about `subject`, if
/// given).
async fn permission_violation(
    errs: &mut broadcast::Receiver<String>,
    subject: Option<&str>,
) -> String {
    loop {
        match errs.recv().await {
            Ok(msg) => {
                let lower = msg.to_lowercase();
                let about = subject.is_none_or(|s| msg.contains(&format!("\"{s}\"")));
                if lower.contains("permissions violation") && about {
                    return msg;
                }
            }
            Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
        }
    }
}

/// Runs a set-up step; a permission error from the server meanwhile fails
/// it at once with [`BridgeError::Permission`] (instead of a timeout).
async fn guarded<T>(
    errors: &broadcast::Sender<String>,
    step: impl Future<Output = Result<T, BridgeError>>,
) -> Result<T, BridgeError> {
    let mut errs = errors.subscribe();
    tokio::select! {
        r = step => r,
        msg = permission_violation(&mut errs, None) => {
            let operation = if msg.to_lowercase().contains("subscription") {
                "subscribe to"
            } else {
                "publish to"
            };
            let subject = msg.split('"').nth(1).unwrap_or_default().to_owned();
            Err(BridgeError::Permission { operation, subject, reason: msg })
        }
    }
}

fn on_event(
    conn: &watch::Sender<ConnState>,
    counters: &Counters,
    errors: &broadcast::Sender<String>,
    event: async_nats::Event,
) {
    match event {
        async_nats::Event::Connected => conn.send_modify(|s| {
            if s.epoch > 0 {
                add(&counters.reconnects, 1);
            }
            s.up = true;
            s.epoch += 1;
        }),
        async_nats::Event::Disconnected => conn.send_modify(|s| {
            s.up = false;
            s.down_at = Some(Instant::now());
        }),
        async_nats::Event::ServerError(e) => {
            #[cfg(feature = "tracing")]
            tracing::warn!(error = %e, "pinbus nats: the server reported an error");
            let _ = errors.send(match e {
                async_nats::ServerError::Other(text) => text,
                other => other.to_string(),
            });
        }
        _ => {}
    }
}

/// Runs `fut` on the bridge's runtime and waits for it from this thread,
/// which may itself be inside another runtime (no nested `block_on`).
fn block_on<F>(handle: &tokio::runtime::Handle, fut: F) -> Result<F::Output, BridgeError>
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
