//! Setting up an import: [`Bridge::import`].

use async_nats::jetstream::consumer;
use tokio::sync::{mpsc, watch};

use super::bridge::{block_on, Bridge};
use super::codec::Codec;
use super::dedupe::Window;
use super::error::BridgeError;
use super::handles::{Import, ImportShared};
use super::import;
use super::link_options::ImportOptions;
use super::permission::guarded;
use super::rejected::Store;
use super::stats::Counters;
use super::subject;
use crate::loom::sync::{Arc, Mutex};
use crate::loom::thread;
use crate::Topic;

impl Bridge {
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
}
