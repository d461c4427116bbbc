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
    /// The server refused the credentials (wrong user or password, token,
    /// NKey, or credentials file; or none given where the server needs
    /// some).
    #[error(
        "NATS at {url} refused the credentials: {reason}; check BridgeOptions::user_and_password, \
         token, nkey or credentials_file against the server's authorization (or accounts) \
         block, and that the user is not expired or revoked"
    )]
    Auth {
        /// The URL given to [`Bridge::connect`](crate::nats::Bridge::connect).
        url: String,
        /// The client's error, as text.
        reason: String,
    },
    /// The TLS handshake with the server failed (certificate not trusted,
    /// wrong host name, no client certificate where the server verifies
    /// clients, TLS required on one side only).
    #[error(
        "TLS with NATS at {url} failed: {reason}; if the server's certificate comes from a \
         private CA, pass that CA with BridgeOptions::add_root_certificates(\"ca.pem\"); if the \
         server verifies clients (tls {{ verify: true }}), add \
         add_client_certificate(\"cert.pem\", \"key.pem\"); the certificate must name the host \
         or IP address in the URL"
    )]
    Tls {
        /// The URL given to [`Bridge::connect`](crate::nats::Bridge::connect).
        url: String,
        /// The client's error, as text.
        reason: String,
    },
    /// A credentials file or certificate could not be read or parsed.
    #[error(
        "cannot use {path:?} as {what}: {reason}; give the file nsc or your PKI wrote \
         (readable by this process)"
    )]
    Credentials {
        /// What the file was meant to be (`"credentials file"`, ...).
        what: &'static str,
        /// The path given.
        path: std::path::PathBuf,
        /// What is wrong, as text.
        reason: String,
    },
    /// The server's permissions for this user forbid what the bridge needs:
    /// publishing to an export's subject, or the JetStream API calls (and
    /// `$JS.ACK.>` publishes) an import makes.
    #[error(
        "the NATS user may not {operation} {subject:?}: {reason}; allow it in the user's \
         permissions on the server (permissions {{ {operation}: {{ allow: [...] }} }}), or \
         use a subject the user may {operation}"
    )]
    Permission {
        /// `"publish to"` or `"subscribe to"`.
        operation: &'static str,
        /// The subject refused.
        subject: String,
        /// The server's message.
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
         takes {subjects:?}, and no other stream on the server covers it); add a matching \
         pattern with BridgeOptions::stream(name, subjects), or leave BridgeOptions::stream \
         out so that the bridge adds the subject to its stream"
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
    #[error(
        "cannot subscribe to local topic or service {topic:?} for the bridge (an export or a \
         remote service): {reason}"
    )]
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
    /// [`Bridge::drain`](crate::nats::Bridge::drain) ran out of time.
    #[error(
        "after the timeout, {unseen} events published to exported topics had not reached \
         their export yet (still in the engine's lanes), {pending} were queued or awaiting \
         JetStream's ack and {retrying} were in the exports' retry policy; wait longer, or \
         check that the NATS server is reachable and the export handlers are not blocked"
    )]
    DrainTimeout {
        /// Events the topics accepted that their export subscription has
        /// not been handed yet.
        unseen: u64,
        /// Events queued in an export or awaiting their publish ack.
        pending: u64,
        /// Events refused by a full queue, waiting in the retry policy.
        retrying: u64,
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
