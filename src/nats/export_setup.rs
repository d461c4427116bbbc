//! Setting up an export: [`Bridge::export`] and [`Bridge::export_with`].

use tokio::sync::mpsc;

use super::bridge::Bridge;
use super::codec::{Codec, Json};
use super::error::BridgeError;
use super::export;
use super::handles::{Export, ExportShared};
use super::link_options::ExportOptions;
use super::stats::Counters;
use super::subject;
use crate::loom::sync::{Arc, Mutex};
use crate::{SubscribeOptions, Topic};

impl Bridge {
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
    /// [`BridgeOptions::stream`](super::BridgeOptions::stream) fixed the
    /// bridge's subjects,
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
}
