//! Errors of the NATS bridge: each message says what to change.

/// Why a bridge operation failed.
///
/// # Examples
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use pinbus::nats::{Bridge, BridgeError, BridgeOptions};
/// let engine = pinbus::Engine::builder().build()?;
/// match Bridge::connect("nats://127.0.0.1:1", &engine, BridgeOptions::default()) {
///     Err(BridgeError::Connect { url, .. }) => eprintln!("no NATS server at {url}"),
///     Err(other) => eprintln!("{other}"),
///     Ok(_) => {}
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BridgeError {
    /// The NATS server could not be reached.
    #[error(
        "cannot connect to NATS at {url}: {reason}; check that nats-server runs there \
         (with -js for JetStream) and that the URL, port and credentials are right"
    )]
    Connect {
        /// The URL given to [`Bridge::connect`](crate::nats::Bridge::connect).
        url: String,
        /// The client's error, as text.
        reason: String,
    },
    /// A JetStream API call (stream or consumer set-up) failed.
    #[error(
        "JetStream refused to {action}: {reason}; check that the server runs with JetStream \
         enabled (nats-server -js) and that the account may use it"
    )]
    JetStream {
        /// What the bridge asked for.
        action: String,
        /// The server's or client's error, as text.
        reason: String,
    },
    /// A subject that NATS would not accept (or, for an export, one with a
    /// wildcard).
    #[error("invalid NATS subject {subject:?}: {reason}")]
    InvalidSubject {
        /// The subject given.
        subject: String,
        /// What is wrong and what to change.
        reason: &'static str,
    },
    /// No stream captures the subject, so JetStream would store nothing.
    #[error(
        "no JetStream stream captures subject {subject:?} (the bridge's stream {stream:?} \
         takes {subjects:?}); add a matching pattern with BridgeOptions::stream(name, subjects)"
    )]
    NotInStream {
        /// The subject or filter given.
        subject: String,
        /// The bridge's stream.
        stream: String,
        /// Its subjects.
        subjects: Vec<String>,
    },
    /// A durable consumer of that name exists with another filter.
    #[error(
        "durable consumer {durable:?} already exists with filter {filter:?}, not {wanted:?};          use another durable name, or delete the consumer (nats consumer rm) to change its filter"
    )]
    DurableInUse {
        /// The durable name.
        durable: String,
        /// Its existing filter.
        filter: String,
        /// The filter asked for.
        wanted: String,
    },
    /// An option value that cannot work.
    #[error("invalid bridge option: {problem}")]
    InvalidOption {
        /// What is wrong and what to change.
        problem: String,
    },
    /// The local subscription that feeds an export could not be made.
    #[error("cannot subscribe to local topic {topic:?} for export: {reason}")]
    Subscribe {
        /// The topic name.
        topic: String,
        /// The engine's error, as text.
        reason: String,
    },
    /// The bridge's async runtime could not be started.
    #[error("cannot start the bridge's tokio runtime: {0}; free threads or memory and retry")]
    Runtime(#[source] std::io::Error),
    /// The bridge is closed.
    #[error("the bridge is closed; connect a new one")]
    Closed,
    /// [`Bridge::flush`](crate::nats::Bridge::flush) ran out of time.
    #[error(
        "exports still had {pending} events not acknowledged by JetStream after the timeout; \
         wait longer or check that the NATS server is reachable"
    )]
    FlushTimeout {
        /// Events queued or awaiting their publish ack.
        pending: u64,
    },
}

/// Why a value could not be encoded or decoded.
///
/// # Examples
///
/// ```
/// use pinbus::nats::{Codec, Json};
/// let err = <Json as Codec<u32>>::decode(&Json, b"not json").unwrap_err();
/// assert!(err.to_string().contains("JSON"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{codec} cannot {action} the event: {reason}")]
pub struct CodecError {
    /// The codec's name (`"JSON"`, `"postcard"`, ...).
    pub codec: &'static str,
    /// `"encode"` or `"decode"`.
    pub action: &'static str,
    /// The underlying error, as text.
    pub reason: String,
}

impl CodecError {
    /// An encode error of `codec`.
    ///
    /// # Examples
    ///
    /// ```
    /// let e = pinbus::nats::CodecError::encode("mine", "too big");
    /// assert_eq!(e.to_string(), "mine cannot encode the event: too big");
    /// ```
    pub fn encode(codec: &'static str, reason: impl std::fmt::Display) -> Self {
        CodecError {
            codec,
            action: "encode",
            reason: reason.to_string(),
        }
    }

    /// A decode error of `codec`.
    ///
    /// # Examples
    ///
    /// ```
    /// let e = pinbus::nats::CodecError::decode("mine", "truncated");
    /// assert_eq!(e.to_string(), "mine cannot decode the event: truncated");
    /// ```
    pub fn decode(codec: &'static str, reason: impl std::fmt::Display) -> Self {
        CodecError {
            codec,
            action: "decode",
            reason: reason.to_string(),
        }
    }
}
