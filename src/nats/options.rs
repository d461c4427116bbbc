//! Options of the bridge, its exports and its imports.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::codec::Json;
use super::error::BridgeError;
use crate::RetryPolicy;

/// Options for [`Bridge::connect`](super::Bridge::connect): the JetStream
/// stream the bridge uses, timeouts, and the bridge's own threads.
///
/// Defaults: stream `PINBUS` capturing `pinbus.>` and, as long as
/// [`stream`](BridgeOptions::stream) is not called, every export subject and
/// import filter that no other stream captures; file storage, one replica,
/// no limits (JetStream's defaults), a two-minute duplicate window, 5 s
/// request timeout, 5 s connect timeout, reconnect delays up to 1 s, one
/// runtime thread, a random instance id, no credentials, TLS only if the URL
/// (`tls://`) or the server asks for it.
///
/// The credential and TLS options are named as `async_nats::ConnectOptions`
/// names them. They apply to [`Bridge::connect`](super::Bridge::connect);
/// [`Bridge::with_client`](super::Bridge::with_client) uses the client as
/// it was configured.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use pinbus::nats::BridgeOptions;
/// let options = BridgeOptions::default()
///     .stream("ORDERS", ["orders.>"])
///     .duplicate_window(Duration::from_secs(300))
///     .request_timeout(Duration::from_secs(2))
///     .name("billing-service");
/// # let _ = options;
/// ```
///
/// On a secured cluster (see `docs/nats.md`, "Running on a secured
/// cluster"):
///
/// ```
/// use std::time::Duration;
/// use pinbus::nats::{BridgeOptions, DiscardPolicy};
/// let options = BridgeOptions::default()
///     .user_and_password("billing", "s3cret")
///     .add_root_certificates("/etc/nats/ca.pem")
///     .add_client_certificate("/etc/nats/billing.pem", "/etc/nats/billing-key.pem")
///     .require_tls(true)
///     .max_age(Duration::from_secs(7 * 24 * 3600))
///     .max_bytes(10 << 30)
///     .discard(DiscardPolicy::Old);
/// # let _ = options;
/// ```
#[derive(Clone)]
pub struct BridgeOptions {
    pub(crate) stream: String,
    pub(crate) subjects: Vec<String>,
    /// `false` until [`BridgeOptions::stream`] is called: the bridge then
    /// adds export subjects and import filters that no stream captures to
    /// its stream.
    pub(crate) stream_explicit: bool,
    pub(crate) duplicate_window: Duration,
    pub(crate) storage: Option<Storage>,
    pub(crate) replicas: usize,
    pub(crate) limits: StreamLimits,
    pub(crate) request_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) max_reconnect_delay: Duration,
    pub(crate) threads: usize,
    pub(crate) name: Option<String>,
    pub(crate) instance_id: Option<u64>,
    pub(crate) close_timeout: Duration,
    pub(crate) auth: Auth,
    pub(crate) tls: Tls,
}

/// The stream limits set through [`BridgeOptions`]; `None`: not set (a new
/// stream gets JetStream's default, an existing one keeps its value).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct StreamLimits {
    pub(crate) max_age: Option<Duration>,
    pub(crate) max_bytes: Option<i64>,
    pub(crate) max_messages: Option<i64>,
    pub(crate) max_messages_per_subject: Option<i64>,
    pub(crate) discard: Option<DiscardPolicy>,
}

/// Credentials for the NATS server (secrets are never printed by `Debug`).
#[derive(Clone, Default)]
pub(crate) struct Auth {
    pub(crate) user_and_password: Option<(String, String)>,
    pub(crate) token: Option<String>,
    pub(crate) nkey: Option<String>,
    pub(crate) credentials_file: Option<PathBuf>,
}

/// TLS settings.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tls {
    pub(crate) root_certificates: Option<PathBuf>,
    pub(crate) client_certificate: Option<(PathBuf, PathBuf)>,
    pub(crate) require_tls: bool,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hidden = |set: bool| if set { "<set>" } else { "<none>" };
        f.debug_struct("Auth")
            .field(
                "user",
                &self.user_and_password.as_ref().map(|(u, _)| u.as_str()),
            )
            .field("password", &hidden(self.user_and_password.is_some()))
            .field("token", &hidden(self.token.is_some()))
            .field("nkey", &hidden(self.nkey.is_some()))
            .field("credentials_file", &self.credentials_file)
            .finish()
    }
}

impl fmt::Debug for BridgeOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BridgeOptions")
            .field("stream", &self.stream)
            .field("subjects", &self.subjects)
            .field("stream_explicit", &self.stream_explicit)
            .field("duplicate_window", &self.duplicate_window)
            .field("storage", &self.storage)
            .field("replicas", &self.replicas)
            .field("limits", &self.limits)
            .field("request_timeout", &self.request_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_reconnect_delay", &self.max_reconnect_delay)
            .field("threads", &self.threads)
            .field("name", &self.name)
            .field("instance_id", &self.instance_id)
            .field("close_timeout", &self.close_timeout)
            .field("auth", &self.auth)
            .field("tls", &self.tls)
            .finish()
    }
}

/// Where JetStream keeps a stream's messages ([`BridgeOptions::storage`]).
///
/// # Examples
///
/// ```
/// use pinbus::nats::{BridgeOptions, Storage};
/// let options = BridgeOptions::default().storage(Storage::Memory);
/// # let _ = options;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// On disk (the default): survives a server restart.
    File,
    /// In memory: faster, lost when the server stops.
    Memory,
}

/// What a stream does when a limit (max messages, bytes, age) is reached
/// ([`BridgeOptions::discard`]).
///
/// # Examples
///
/// ```
/// use pinbus::nats::{BridgeOptions, DiscardPolicy};
/// let options = BridgeOptions::default().max_messages(1_000_000).discard(DiscardPolicy::Old);
/// # let _ = options;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscardPolicy {
    /// Drop the oldest messages to make room (JetStream's default).
    Old,
    /// Refuse new messages. An export then keeps re-sending the refused
    /// publish until room appears (or the bridge closes, counting it in
    /// `export_failed`), so use it only with consumers that keep up.
    New,
}

impl Default for BridgeOptions {
    fn default() -> Self {
        BridgeOptions {
            stream: "PINBUS".to_owned(),
            subjects: vec!["pinbus.>".to_owned()],
            stream_explicit: false,
            duplicate_window: Duration::from_secs(120),
            storage: None,
            replicas: 1,
            limits: StreamLimits::default(),
            request_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            max_reconnect_delay: Duration::from_secs(1),
            threads: 1,
            name: None,
            instance_id: None,
            close_timeout: Duration::from_secs(10),
            auth: Auth::default(),
            tls: Tls::default(),
        }
    }
}

impl BridgeOptions {
    /// The JetStream stream that stores bridged events, and the subjects it
    /// captures (wildcards allowed). Created if missing; if it exists, any
    /// subject not yet in its list is added.
    ///
    /// Without this call the bridge uses the stream `PINBUS` and adds to it
    /// each export subject and import filter that no stream on the server
    /// captures yet, so `bridge.export(&t, "orders.created")` just works.
    /// With it, the subject list is fixed: an export or import outside
    /// `subjects` that no other stream on the server captures is refused
    /// with [`BridgeError::NotInStream`](super::BridgeError::NotInStream).
    /// Either way a subject that another stream already captures (one your
    /// operators made with the `nats` CLI, say) is used where it is.
    ///
    /// # Examples
    ///
    /// ```
    /// use pinbus::nats::BridgeOptions;
    /// let options = BridgeOptions::default().stream("ORDERS", ["orders.>", "refunds.>"]);
    /// # let _ = options;
    /// ```
    pub fn stream<S: Into<String>>(
        mut self,
        name: impl Into<String>,
        subjects: impl IntoIterator<Item = S>,
    ) -> Self {
        self.stream = name.into();
        self.subjects = subjects.into_iter().map(Into::into).collect();
        self.stream_explicit = true;
        self
    }

    /// How long JetStream remembers a `Nats-Msg-Id` to drop a re-sent
    /// duplicate (the server-side half of the dedupe). Must cover the
    /// longest outage an export should ride out without duplicates.
    pub fn duplicate_window(mut self, window: Duration) -> Self {
        self.duplicate_window = window;
        self
    }

    /// Creates the stream in memory instead of on disk (faster, lost when
    /// the server stops). Off by default. The same as
    /// [`storage`](BridgeOptions::storage)`(Storage::Memory)`.
    pub fn memory_storage(mut self, on: bool) -> Self {
        self.storage = Some(if on { Storage::Memory } else { Storage::File });
        self
    }

    /// Where the stream keeps its messages (default [`Storage::File`]).
    /// JetStream cannot change the storage of an existing stream: if the
    /// stream exists with the other kind, connecting fails with
    /// [`BridgeError::InvalidOption`](super::BridgeError::InvalidOption).
    pub fn storage(mut self, storage: Storage) -> Self {
        self.storage = Some(storage);
        self
    }

    /// Messages older than `age` are removed from the stream. Applied when
    /// the bridge creates the stream and, if set, to an existing stream
    /// (the limits not set here are left as they are).
    pub fn max_age(mut self, age: Duration) -> Self {
        self.limits.max_age = Some(age);
        self
    }

    /// The stream holds at most `bytes` bytes of messages (then
    /// [`discard`](BridgeOptions::discard) applies).
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.limits.max_bytes = Some(i64::try_from(bytes).unwrap_or(i64::MAX));
        self
    }

    /// The stream holds at most `n` messages (then
    /// [`discard`](BridgeOptions::discard) applies).
    pub fn max_messages(mut self, n: u64) -> Self {
        self.limits.max_messages = Some(i64::try_from(n).unwrap_or(i64::MAX));
        self
    }

    /// The stream holds at most `n` messages per subject.
    pub fn max_messages_per_subject(mut self, n: u64) -> Self {
        self.limits.max_messages_per_subject = Some(i64::try_from(n).unwrap_or(i64::MAX));
        self
    }

    /// What the stream does at a limit: drop the oldest messages
    /// ([`DiscardPolicy::Old`], JetStream's default) or refuse new ones.
    pub fn discard(mut self, policy: DiscardPolicy) -> Self {
        self.limits.discard = Some(policy);
        self
    }

    /// Authenticates with a user name and password (the server's
    /// `authorization { users = [...] }` or an account's users). The same as
    /// `nats://user:pass@host` in the URL.
    pub fn user_and_password(mut self, user: impl Into<String>, pass: impl Into<String>) -> Self {
        self.auth.user_and_password = Some((user.into(), pass.into()));
        self
    }

    /// Authenticates with a token (the server's `authorization { token }`).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.auth.token = Some(token.into());
        self
    }

    /// Authenticates with an NKey: `seed` is the user's seed (`SU...`); the
    /// server lists the matching public key (`U...`).
    pub fn nkey(mut self, seed: impl Into<String>) -> Self {
        self.auth.nkey = Some(seed.into());
        self
    }

    /// Authenticates with a credentials file (`.creds`: the user's JWT and
    /// NKey seed, as `nsc` writes it), for servers in operator mode. The file
    /// is read when the bridge connects.
    pub fn credentials_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.auth.credentials_file = Some(path.into());
        self
    }

    /// Trusts the CA certificates in the PEM file `ca_path` (besides the
    /// system's) for the server's certificate: needed when the cluster's
    /// certificates come from a private CA. A later call replaces the file.
    pub fn add_root_certificates(mut self, ca_path: impl Into<PathBuf>) -> Self {
        self.tls.root_certificates = Some(ca_path.into());
        self
    }

    /// Presents the client certificate `cert_path` with its private key
    /// `key_path` (both PEM), for servers that verify clients (`tls {
    /// verify: true }`).
    pub fn add_client_certificate(
        mut self,
        cert_path: impl Into<PathBuf>,
        key_path: impl Into<PathBuf>,
    ) -> Self {
        self.tls.client_certificate = Some((cert_path.into(), key_path.into()));
        self
    }

    /// Refuses to talk to a server without TLS, even on a `nats://` URL.
    pub fn require_tls(mut self, on: bool) -> Self {
        self.tls.require_tls = on;
        self
    }

    /// Copies of the stream kept on a NATS cluster's servers when the bridge
    /// creates it (1 to 5; 3 survives the loss of one server). Default 1.
    pub fn replicas(mut self, replicas: usize) -> Self {
        self.replicas = replicas;
        self
    }

    /// Bound on each JetStream API call and on each publish ack; a publish
    /// whose ack takes longer is sent again (same id).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Bound on the first connection.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Longest wait between two reconnect attempts (they start at 50 ms and
    /// double). The client reconnects for ever.
    pub fn max_reconnect_delay(mut self, delay: Duration) -> Self {
        self.max_reconnect_delay = delay;
        self
    }

    /// Threads of the bridge's tokio runtime (NATS I/O, publish acks,
    /// pulls). Each import also has one thread of its own that publishes
    /// into the local topic.
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }

    /// The connection name shown by the NATS server (`nats server report
    /// connections`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The instance id that starts every `Nats-Msg-Id` this bridge writes
    /// (`<instance>-<topic>-<seq>`). By default the engine's
    /// [`Engine::instance_id`](crate::Engine::instance_id) (random per
    /// engine); set it only if you know no two running bridges share it.
    pub fn instance_id(mut self, id: u64) -> Self {
        self.instance_id = Some(id);
        self
    }

    /// How long [`Bridge::close`](super::Bridge::close) waits for queued
    /// exports to be acknowledged and imports to finish.
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), BridgeError> {
        let bad = |problem: String| Err(BridgeError::InvalidOption { problem });
        if !valid_name(&self.stream) {
            return bad(format!(
                "stream name {:?} must be non-empty and without '.', '*', '>', '/', '\\\\' or \
                 whitespace; try \"PINBUS\"",
                self.stream
            ));
        }
        if self.subjects.is_empty() {
            return bad(
                "BridgeOptions::stream needs at least one subject, e.g. \"orders.>\"".into(),
            );
        }
        for s in &self.subjects {
            super::subject::validate(s, true)?;
        }
        if !(1..=5).contains(&self.replicas) {
            return bad(format!(
                "replicas({}): JetStream keeps 1 to 5 copies of a stream; use 3 on a \
                 three-server cluster",
                self.replicas
            ));
        }
        if self.threads == 0 {
            return bad("threads(0): the bridge needs at least one runtime thread".into());
        }
        if self.request_timeout.is_zero() || self.connect_timeout.is_zero() {
            return bad("request_timeout and connect_timeout must be above zero".into());
        }
        let a = &self.auth;
        let methods = [
            a.user_and_password.is_some(),
            a.token.is_some(),
            a.nkey.is_some(),
            a.credentials_file.is_some(),
        ];
        if methods.iter().filter(|m| **m).count() > 1 {
            return bad(
                "give one of user_and_password, token, nkey and credentials_file: a NATS \
                 server accepts one way of authenticating per connection"
                    .into(),
            );
        }
        for (what, path) in [
            ("add_root_certificates", self.tls.root_certificates.as_ref()),
            ("credentials_file", a.credentials_file.as_ref()),
            (
                "add_client_certificate (certificate)",
                self.tls.client_certificate.as_ref().map(|(c, _)| c),
            ),
            (
                "add_client_certificate (key)",
                self.tls.client_certificate.as_ref().map(|(_, k)| k),
            ),
        ] {
            if let Some(path) = path {
                if !path.is_file() {
                    return bad(format!(
                        "{what}: no readable file at {}; give the path of the PEM or .creds file",
                        path.display()
                    ));
                }
            }
        }
        if self.duplicate_window.is_zero() {
            return bad(
                "duplicate_window must be above zero: it is what lets a re-sent export be dropped"
                    .into(),
            );
        }
        Ok(())
    }
}

/// Stream and consumer names: no dots, wildcards, path separators or
/// whitespace.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.chars().any(|c| {
            matches!(c, '.' | '*' | '>' | '/' | '\\') || c.is_whitespace() || c.is_control()
        })
}

/// Options for [`Bridge::export_with`](super::Bridge::export_with).
///
/// Defaults: the [`Json`] codec, a queue of 8,192 events, 1,024 publish
/// acks in flight, up to 100 ms of waiting for room in a full queue, and a
/// local retry policy of exponential backoff from 10 ms to 1 s for 20
/// attempts (about 14 s of NATS outage) before an event goes to the
/// topic's dead letters.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use pinbus::RetryPolicy;
/// use pinbus::nats::{Binary, ExportOptions};
/// let options = ExportOptions::new()
///     .codec(Binary)
///     .queue_capacity(1024)
///     .max_in_flight(256)
///     .retry(RetryPolicy::fixed(Duration::from_millis(50)).max_attempts(100));
/// # let _ = options;
/// ```
#[derive(Debug, Clone)]
pub struct ExportOptions<C = Json> {
    pub(crate) codec: C,
    pub(crate) queue_capacity: usize,
    pub(crate) max_in_flight: usize,
    pub(crate) retry: RetryPolicy,
    pub(crate) worker: Option<usize>,
    pub(crate) replay_window: Duration,
    pub(crate) max_block: Duration,
}

impl Default for ExportOptions<Json> {
    fn default() -> Self {
        ExportOptions {
            codec: Json,
            queue_capacity: 8192,
            max_in_flight: 1024,
            retry: RetryPolicy::exponential(Duration::from_millis(10), Duration::from_secs(1))
                .max_attempts(20),
            worker: None,
            replay_window: Duration::from_millis(250),
            max_block: Duration::from_millis(100),
        }
    }
}

impl ExportOptions<Json> {
    /// The defaults (see the type's docs).
    pub fn new() -> Self {
        Self::default()
    }
}

impl<C> ExportOptions<C> {
    /// Encodes events with `codec` instead.
    pub fn codec<D>(self, codec: D) -> ExportOptions<D> {
        ExportOptions {
            codec,
            queue_capacity: self.queue_capacity,
            max_in_flight: self.max_in_flight,
            retry: self.retry,
            worker: self.worker,
            replay_window: self.replay_window,
            max_block: self.max_block,
        }
    }

    /// Events the export may hold between the local subscription and NATS
    /// (queued, not yet published). When it is full the subscription's
    /// handler waits up to [`max_block`](ExportOptions::max_block), then
    /// fails the event, which goes through `retry`.
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = capacity;
        self
    }

    /// Publishes whose ack is awaited at once (pipelining).
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n;
        self
    }

    /// The local subscription's retry policy: how an event that found the
    /// queue full (NATS slow or down) is tried again before it goes to
    /// the topic's dead letters.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// How long the export subscription's handler waits for room in a full
    /// queue before it fails the event into the retry policy. While it
    /// waits, its worker's lanes back up and publishers feel NATS's pace
    /// (order is kept); a failed event is retried later, out of order.
    /// Zero: never wait. Default 100 ms.
    pub fn max_block(mut self, wait: Duration) -> Self {
        self.max_block = wait;
        self
    }

    /// Runs the local export subscription on worker `worker`.
    pub fn worker(mut self, worker: usize) -> Self {
        self.worker = Some(worker);
        self
    }

    /// How far back, before a lost connection, acknowledged publishes are
    /// sent again (same ids) once it is back. A NATS server killed without
    /// warning may lose the last milliseconds of writes it had already
    /// acknowledged (NATS 2.9 flushes its writes within milliseconds); the
    /// server drops the copies it still has. Default 250 ms.
    pub fn replay_window(mut self, window: Duration) -> Self {
        self.replay_window = window;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), BridgeError> {
        let bad = |problem: &str| {
            Err(BridgeError::InvalidOption {
                problem: problem.to_owned(),
            })
        };
        if self.queue_capacity == 0 {
            return bad("ExportOptions::queue_capacity(0): the queue needs room for one event");
        }
        if self.max_in_flight == 0 {
            return bad("ExportOptions::max_in_flight(0): at least one publish must be in flight");
        }
        Ok(())
    }
}

/// Options for [`Bridge::import`](super::Bridge::import): the durable
/// consumer's name and its flow settings.
///
/// Defaults: the [`Json`] codec, deliver everything the stream holds, ack
/// wait 30 s, 4,096 acks pending, pulls of 256, a dedupe window of 65,536
/// messages, the last 1,024 undecodable messages kept (64 KiB of body each).
///
/// The ack wait is also how long a message that a crashed process had
/// pulled but not acked stays with the server before it is delivered to
/// another process of the same durable: lower it for faster recovery, but
/// keep it above the slowest local handling (retries included).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use pinbus::nats::{Binary, ImportOptions};
/// let options = ImportOptions::durable("billing")
///     .codec(Binary)
///     .ack_wait(Duration::from_secs(10))
///     .max_ack_pending(1024)
///     .dedupe_window(100_000);
/// # let _ = options;
/// ```
#[derive(Debug, Clone)]
pub struct ImportOptions<C = Json> {
    pub(crate) durable: String,
    pub(crate) codec: C,
    pub(crate) ack_wait: Duration,
    pub(crate) max_ack_pending: usize,
    pub(crate) batch: usize,
    pub(crate) dedupe_window: usize,
    pub(crate) deliver_new: bool,
    pub(crate) keep_rejected: usize,
    pub(crate) rejected_payload_limit: usize,
}

impl ImportOptions<Json> {
    /// A durable pull consumer named `name`: it keeps its place in the
    /// stream across restarts of this process and of the server. Processes
    /// that import with the same name share the work (each message goes to
    /// one of them).
    pub fn durable(name: impl Into<String>) -> Self {
        ImportOptions {
            durable: name.into(),
            codec: Json,
            ack_wait: Duration::from_secs(30),
            max_ack_pending: 4096,
            batch: 256,
            dedupe_window: 65_536,
            deliver_new: false,
            keep_rejected: 1024,
            rejected_payload_limit: 64 * 1024,
        }
    }
}

impl<C> ImportOptions<C> {
    /// Decodes events with `codec` instead.
    pub fn codec<D>(self, codec: D) -> ImportOptions<D> {
        ImportOptions {
            durable: self.durable,
            codec,
            ack_wait: self.ack_wait,
            max_ack_pending: self.max_ack_pending,
            batch: self.batch,
            dedupe_window: self.dedupe_window,
            deliver_new: self.deliver_new,
            keep_rejected: self.keep_rejected,
            rejected_payload_limit: self.rejected_payload_limit,
        }
    }

    /// How long the server waits for an ack before it re-delivers. Set it
    /// above the slowest local handling of one event.
    pub fn ack_wait(mut self, wait: Duration) -> Self {
        self.ack_wait = wait;
        self
    }

    /// Messages delivered and not yet acked, at most (the server stops
    /// delivering at this many). At most half the dedupe window.
    pub fn max_ack_pending(mut self, n: usize) -> Self {
        self.max_ack_pending = n;
        self
    }

    /// Messages asked for per pull request.
    pub fn batch(mut self, n: usize) -> Self {
        self.batch = n;
        self
    }

    /// Messages remembered to recognise re-deliveries (see the module docs
    /// of [`pinbus::nats`](super), "Dedupe").
    pub fn dedupe_window(mut self, n: usize) -> Self {
        self.dedupe_window = n;
        self
    }

    /// For a consumer created now: start with messages stored from now on
    /// instead of everything the stream holds.
    pub fn deliver_new(mut self, on: bool) -> Self {
        self.deliver_new = on;
        self
    }

    /// Undecodable messages kept for inspection ([`Import::rejected`](super::Import::rejected)),
    /// at most; the oldest make room for newer ones (counted in
    /// [`BridgeStats::import_rejected_dropped`](super::BridgeStats::import_rejected_dropped)).
    /// Default 1,024; 0 keeps none (they are still terminated and counted).
    pub fn keep_rejected(mut self, n: usize) -> Self {
        self.keep_rejected = n;
        self
    }

    /// Bytes of each rejected message's body that are kept (default 64 KiB;
    /// [`RejectedMessage::payload_len`](super::RejectedMessage::payload_len)
    /// has the full length).
    pub fn rejected_payload_limit(mut self, bytes: usize) -> Self {
        self.rejected_payload_limit = bytes;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), BridgeError> {
        let bad = |problem: String| Err(BridgeError::InvalidOption { problem });
        if !valid_name(&self.durable) {
            return bad(format!(
                "durable name {:?} must be non-empty and without '.', '*', '>', '/', '\\\\' or \
                 whitespace; try \"billing\"",
                self.durable
            ));
        }
        if self.max_ack_pending == 0 || self.batch == 0 {
            return bad("ImportOptions::max_ack_pending and batch must be at least 1".into());
        }
        if self.dedupe_window < 2 * self.max_ack_pending {
            return bad(format!(
                "dedupe_window({}) must be at least twice max_ack_pending({}) so that every \
                 message the server may re-deliver is still remembered; raise dedupe_window \
                 to {} or lower max_ack_pending",
                self.dedupe_window,
                self.max_ack_pending,
                2 * self.max_ack_pending
            ));
        }
        if self.ack_wait < Duration::from_millis(100) {
            return bad(
                "ImportOptions::ack_wait below 100 ms re-delivers nearly everything".into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_options_say_what_to_change() {
        let e = BridgeOptions::default().stream("A.B", ["x"]).validate();
        assert!(e.unwrap_err().to_string().contains("stream name"));
        let e = BridgeOptions::default()
            .stream("S", Vec::<String>::new())
            .validate();
        assert!(e.unwrap_err().to_string().contains("at least one subject"));
        let e = BridgeOptions::default().replicas(0).validate();
        assert!(e.unwrap_err().to_string().contains("use 3"));
        let e = BridgeOptions::default().threads(0).validate();
        assert!(e.unwrap_err().to_string().contains("threads(0)"));
        let e = ImportOptions::durable("b")
            .max_ack_pending(100)
            .dedupe_window(150)
            .validate();
        assert!(e
            .unwrap_err()
            .to_string()
            .contains("raise dedupe_window to 200"));
        let e = ImportOptions::durable("a b").validate();
        assert!(e.unwrap_err().to_string().contains("durable name"));
        let e = ExportOptions::new().queue_capacity(0).validate();
        assert!(e.unwrap_err().to_string().contains("queue_capacity(0)"));
        assert!(BridgeOptions::default().validate().is_ok());
        assert!(ImportOptions::durable("billing").validate().is_ok());
    }
}
