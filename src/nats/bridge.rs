//! `Bridge`: the connection, its runtime, the stream, and the exports and
//! imports running on them.

use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer};
use tokio::sync::{mpsc, watch};

use super::codec::{Codec, Json};
use super::dedupe::Window;
use super::error::BridgeError;
use super::export;
use super::handles::{Export, ExportShared, Import, ImportShared};
use super::import;
use super::options::{BridgeOptions, ExportOptions, ImportOptions};
use super::stats::{add, BridgeStats, Counters};
use super::stream::{ensure_stream, stream_config};
use super::subject;
use crate::loom::sync::{Arc, Mutex, MutexGuard};
use crate::loom::thread;
use crate::{Engine, SubscribeOptions, Topic};

/// Locks `m`, recovering from poisoning (no bridge state is left half-made
/// by a panic).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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
/// the bridge's yet: stop publishing (or [`Engine::shutdown`]) first if they
/// must go out.
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
    workers: usize,
    counters: Arc<Counters>,
    conn: watch::Receiver<ConnState>,
    exports: Mutex<Vec<Arc<ExportShared>>>,
    imports: Mutex<Vec<Arc<ImportShared>>>,
    closed: Mutex<bool>,
    /// Set when the close timeout has passed: export tasks count what they
    /// still hold as failed and end.
    abort: Arc<watch::Sender<bool>>,
}

impl Bridge {
    /// Connects to the NATS server at `url` (`nats://host:port`, several
    /// separated by commas for a cluster; `tls://` for TLS; user and
    /// password or token in the URL) and makes sure the stream of
    /// [`BridgeOptions::stream`] exists and captures its subjects.
    ///
    /// `engine` is the engine whose topics this bridge will carry.
    ///
    /// # Errors
    ///
    /// [`BridgeError::InvalidOption`] / [`InvalidSubject`](BridgeError::InvalidSubject)
    /// for bad options, [`BridgeError::Connect`] when no server answers
    /// within the connect timeout, [`BridgeError::JetStream`] when the stream
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
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(options.threads)
            .thread_name("pinbus-nats")
            .enable_all()
            .build()
            .map_err(BridgeError::Runtime)?;
        let counters = Arc::new(Counters::default());
        let (conn_tx, conn_rx) = watch::channel(ConnState::default());
        let conn_tx = Arc::new(conn_tx);
        let connect = {
            let counters = counters.clone();
            let max_delay = options.max_reconnect_delay;
            let mut opts = async_nats::ConnectOptions::new()
                .connection_timeout(options.connect_timeout)
                .request_timeout(Some(options.request_timeout))
                .reconnect_delay_callback(move |attempts| {
                    let shift = attempts.min(16) as u32;
                    Duration::from_millis(50u64 << shift).min(max_delay)
                })
                .event_callback(move |event| {
                    let (conn_tx, counters) = (conn_tx.clone(), counters.clone());
                    async move { on_event(&conn_tx, &counters, event) }
                });
            if let Some(name) = &options.name {
                opts = opts.name(name);
            }
            let url = url.to_owned();
            let (timeout, stream) = (options.request_timeout, stream_config(&options));
            async move {
                let client =
                    opts.connect(url.as_str())
                        .await
                        .map_err(|e| BridgeError::Connect {
                            url: url.clone(),
                            reason: e.to_string(),
                        })?;
                let js = jetstream::ContextBuilder::new()
                    .timeout(timeout)
                    .ack_timeout(timeout)
                    .max_ack_inflight(1 << 16)
                    .backpressure_on_inflight(true)
                    .build(client);
                ensure_stream(&js, stream).await?;
                Ok::<_, BridgeError>(js)
            }
        };
        let js = block_on(runtime.handle(), connect)??;
        let inner = Arc::new(Inner {
            url: url.to_owned(),
            js,
            instance: options.instance_id.unwrap_or_else(|| engine.instance_id()),
            workers: engine.workers(),
            options,
            counters,
            conn: conn_rx,
            exports: Mutex::new(Vec::new()),
            imports: Mutex::new(Vec::new()),
            closed: Mutex::new(false),
            abort: Arc::new(watch::channel(false).0),
        });
        Ok(Bridge {
            inner,
            runtime: Some(runtime),
        })
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
    /// tokens, [`BridgeError::NotInStream`] when the bridge's stream does not
    /// capture it, [`BridgeError::InvalidOption`], [`BridgeError::Subscribe`]
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
        self.check_covered(subject)?;
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
        let (tx, rx) = mpsc::channel(options.queue_capacity);
        let content_type = options.codec.content_type();
        let prefix = format!("{:016x}-{}-", self.inner.instance, topic.name());
        let handler = export::handler(
            options.codec,
            tx,
            prefix,
            Arc::from(subject),
            self.inner.counters.clone(),
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
            counters: self.inner.counters.clone(),
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
            subscription: Mutex::new(Some(subscription)),
            final_dead: Mutex::new(0),
            task: Mutex::new(Some(handle)),
        });
        lock(&self.inner.exports).push(shared.clone());
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
        self.check_covered(filter)?;
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
        let stream_name = self.inner.options.stream.clone();
        let durable = options.durable.clone();
        let consumer = block_on(self.handle()?, async move {
            let stream = js
                .get_stream(&stream_name)
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
        })??;
        let existing = consumer.cached_info().config.filter_subject.clone();
        if existing != filter {
            return Err(BridgeError::DurableInUse {
                durable: options.durable,
                filter: existing,
                wanted: filter.to_owned(),
            });
        }

        let window = Arc::new(Mutex::new(Window::new(options.dedupe_window)));
        let (tx, rx) = mpsc::channel(options.max_ack_pending);
        let (stop_tx, stop_rx) = watch::channel(false);
        let publisher = import::Publisher {
            topic: topic.clone(),
            codec: options.codec,
            rx,
            window: window.clone(),
            counters: self.inner.counters.clone(),
            runtime: self.handle()?.clone(),
            max_pending: options.max_ack_pending,
            close_timeout: self.inner.options.close_timeout,
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
            counters: self.inner.counters.clone(),
            stop: stop_rx,
        };
        let task = self.handle()?.spawn(puller.run());
        let shared = Arc::new(ImportShared {
            filter: filter.to_owned(),
            topic: topic.name().to_owned(),
            durable: options.durable,
            stop: stop_tx,
            thread: Mutex::new(Some(thread)),
            task: Mutex::new(Some(task)),
        });
        lock(&self.inner.imports).push(shared.clone());
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
        let dead: u64 = lock(&self.inner.exports)
            .iter()
            .map(|e| match lock(&e.subscription).as_ref() {
                Some(sub) => sub.stats().dead_lettered,
                None => *lock(&e.final_dead),
            })
            .sum();
        self.inner.counters.snapshot(dead)
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
            let mut closed = lock(&self.inner.closed);
            if *closed {
                return;
            }
            *closed = true;
        }
        let deadline = Instant::now() + self.inner.options.close_timeout;
        let imports: Vec<_> = lock(&self.inner.imports).clone();
        for i in &imports {
            i.stop_and_join();
        }
        let exports: Vec<_> = lock(&self.inner.exports).clone();
        for e in &exports {
            e.unsubscribe();
        }
        // The queues close once their handlers are gone; each task drains
        // its queue and ends. Past the deadline, the rest is counted failed.
        if let Some(rt) = &self.runtime {
            for e in &exports {
                if let Some(mut task) = lock(&e.task).take() {
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
        if *lock(&self.inner.closed) {
            return Err(BridgeError::Closed);
        }
        Ok(())
    }

    fn check_covered(&self, subject: &str) -> Result<(), BridgeError> {
        let o = &self.inner.options;
        if o.subjects.iter().any(|p| subject::covers(p, subject)) {
            return Ok(());
        }
        Err(BridgeError::NotInStream {
            subject: subject.to_owned(),
            stream: o.stream.clone(),
            subjects: o.subjects.clone(),
        })
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
            .field("exports", &lock(&self.inner.exports).len())
            .field("imports", &lock(&self.inner.imports).len())
            .finish_non_exhaustive()
    }
}

fn on_event(conn: &watch::Sender<ConnState>, counters: &Counters, event: async_nats::Event) {
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
