//! Waiting for the exports: [`Bridge::drain`] and [`Bridge::flush`].

use std::time::{Duration, Instant};

use super::bridge::Bridge;
use super::error::BridgeError;
use super::stats::BridgeStats;
use crate::Engine;

impl Bridge {
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
}
