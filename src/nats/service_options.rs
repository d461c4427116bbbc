//! Options of a service link ([`ServiceOptions`]): how a local service
//! answers NATS requests ([`Bridge::serve_with`](super::Bridge::serve_with))
//! or stands for a remote one ([`Bridge::remote_with`](super::Bridge::remote_with)).

use std::time::Duration;

use super::codec::Json;
use super::error::BridgeError;

/// Options for [`Bridge::serve_with`](super::Bridge::serve_with) and
/// [`Bridge::remote_with`](super::Bridge::remote_with).
///
/// Defaults: the [`Json`] codec for queries and replies, the queue group
/// `pinbus` (every process serving a subject shares its requests, each
/// answered once), 1,024 calls in flight, and a 5 s time limit per call.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use pinbus::nats::ServiceOptions;
/// let options = ServiceOptions::new()
///     .queue_group("pricing")
///     .max_in_flight(256)
///     .timeout(Duration::from_millis(500));
/// # let _ = options;
/// ```
#[derive(Debug, Clone)]
pub struct ServiceOptions<C = Json> {
    pub(crate) codec: C,
    pub(crate) queue_group: String,
    pub(crate) max_in_flight: usize,
    pub(crate) timeout: Duration,
}

impl Default for ServiceOptions<Json> {
    fn default() -> Self {
        ServiceOptions {
            codec: Json,
            queue_group: "pinbus".to_owned(),
            max_in_flight: 1024,
            timeout: Duration::from_secs(5),
        }
    }
}

impl ServiceOptions<Json> {
    /// The defaults (see the type's docs).
    ///
    /// ```
    /// let options = pinbus::nats::ServiceOptions::new();
    /// # let _ = options;
    /// ```
    pub fn new() -> Self {
        Self::default()
    }
}

impl<C> ServiceOptions<C> {
    /// Encodes queries and replies with `codec` instead (both sides of a
    /// subject must agree).
    ///
    /// ```
    /// use pinbus::nats::{Binary, ServiceOptions};
    /// let options = ServiceOptions::new().codec(Binary);
    /// # let _ = options;
    /// ```
    pub fn codec<D>(self, codec: D) -> ServiceOptions<D> {
        ServiceOptions {
            codec,
            queue_group: self.queue_group,
            max_in_flight: self.max_in_flight,
            timeout: self.timeout,
        }
    }

    /// The NATS queue group a served subject is subscribed in: the
    /// processes (in any language) subscribed with the same group share the
    /// requests, one answer each. Only used by `serve`.
    ///
    /// ```
    /// let options = pinbus::nats::ServiceOptions::new().queue_group("pricing-eu");
    /// # let _ = options;
    /// ```
    pub fn queue_group(mut self, group: impl Into<String>) -> Self {
        self.queue_group = group.into();
        self
    }

    /// Calls the link runs at once. `serve` takes no more requests off the
    /// subject while this many are being answered (NATS buffers the rest);
    /// a `remote` service answers a call beyond it at once with
    /// [`CallError::Failed`](crate::CallError::Failed), saying so.
    ///
    /// ```
    /// let options = pinbus::nats::ServiceOptions::new().max_in_flight(64);
    /// # let _ = options;
    /// ```
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n;
        self
    }

    /// How long one call may take: `serve` answers a request whose local
    /// members did not reply in time with a 504 error; a `remote` call
    /// without a reply in time fails with
    /// [`CallError::Timeout`](crate::CallError::Timeout).
    ///
    /// ```
    /// use std::time::Duration;
    /// let options = pinbus::nats::ServiceOptions::new().timeout(Duration::from_secs(1));
    /// # let _ = options;
    /// ```
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.timeout = limit;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), BridgeError> {
        let bad = |problem: String| Err(BridgeError::InvalidOption { problem });
        if self.max_in_flight == 0 {
            return bad("ServiceOptions::max_in_flight(0): at least one call must run".into());
        }
        if self.timeout.is_zero() {
            return bad("ServiceOptions::timeout(0): a call needs time to be answered".into());
        }
        let group = &self.queue_group;
        if group.is_empty() || group.chars().any(|c| c.is_whitespace()) {
            return bad(format!(
                "queue group {group:?} must be non-empty and without whitespace; try \"pinbus\""
            ));
        }
        Ok(())
    }
}
