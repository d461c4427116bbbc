//! Options of the bridge: its connection, stream and threads.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::error::BridgeError;

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
    ///
    /// # Examples
    ///
    /// ```
    /// use pinbus::nats::{Bridge, BridgeError, BridgeOptions};
    /// let engine = pinbus::Engine::builder().workers(1).build().unwrap();
    /// // Checked before connecting: no server needed for this error.
    /// let bad = Bridge::connect("nats://127.0.0.1:4222", &engine, BridgeOptions::default().duplicate_window(std::time::Duration::ZERO));
    /// assert!(matches!(bad, Err(BridgeError::InvalidOption { .. }))) // must be above zero;
    /// ```
    pub fn duplicate_window(mut self, window: Duration) -> Self {
        self.duplicate_window = window;
        self
    }

    /// Creates the stream in memory instead of on disk (faster, lost when
    /// the server stops). Off by default. The same as
    /// [`storage`](BridgeOptions::storage)`(Storage::Memory)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use pinbus::nats::BridgeOptions;
    /// let options = BridgeOptions::default().memory_storage(true); // as .storage(Storage::Memory)
    /// # let _ = options;
    /// ```
    pub fn memory_storage(mut self, on: bool) -> Self {
        self.storage = Some(if on { Storage::Memory } else { Storage::File });
        self
    }

    /// Where the stream keeps its messages (default [`Storage::File`]).
    /// JetStream cannot change the storage of an existing stream: if the
    /// stream exists with the other kind, connecting fails with
    /// [`BridgeError::InvalidOption`](super::BridgeError::InvalidOption).
    ///
    /// # Examples
    ///
    /// ```
    /// use pinbus::nats::{BridgeOptions, Storage};
    /// let options = BridgeOptions::default().stream("CACHE", ["cache.>"]).storage(Storage::Memory);
    /// # let _ = options;
    /// ```
    pub fn storage(mut self, storage: Storage) -> Self {
        self.storage = Some(storage);
        self
    }

    /// Messages older than `age` are removed from the stream. Applied when
    /// the bridge creates the stream and, if set, to an existing stream
    /// (the limits not set here are left as they are).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use pinbus::nats::BridgeOptions;
    /// let options = BridgeOptions::default().max_age(Duration::from_secs(7 * 24 * 3600)); // a week
    /// # let _ = options;
    /// ```
    pub fn max_age(mut self, age: Duration) -> Self {
        self.limits.max_age = Some(age);
        self
    }

    /// The stream holds at most `bytes` bytes of messages (then
    /// [`discard`](BridgeOptions::discard) applies).
    ///
    /// # Examples
    ///
    /// ```
    /// use pinbus::nats::BridgeOptions;
    /// let options = BridgeOptions::default().max_bytes(10 << 30); // 10 GiB
    /// # let _ = options;
    /// ```
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.limits.max_bytes = Some(i64::try_from(bytes).unwrap_or(i64::MAX));
        self
    }

    /// The stream holds at most `n` messages (then
    /// [`discard`](BridgeOptions::discard) applies).
    ///
    /// # Examples
    ///
    /// ```
    /// use pinbus::nats::BridgeOptions;
    /// let options = BridgeOptions::default().max_messages(1_000_000);
    /// # let _ = options;
    /// ```
    pub fn max_messages(mut self, n: u64) -> Self {
        self.limits.max_messages = Some(i64::try_from(n).unwrap_or(i64::MAX));
        self
    }

    /// The stream holds at most `n` messages per subject.
    ///
    /// # Examples
    ///
    /// ```
    /// use pinbus::nats::BridgeOptions;
    /// let options = BridgeOptions::default().max_messages_per_subject(1); // only the latest per subject
    /// # let _ = options;
    /// ```
    pub fn max_messages_per_subject(mut self, n: u64) -> Self {
        self.limits.max_messages_per_subject = Some(i64::try_from(n).unwrap_or(i64::MAX));
        self
    }

    /// What the stream does at a limit: drop the oldest messages
    /// ([`DiscardPolicy::Old`], JetStream's default) or refuse new ones.
    ///
    /// # Examples
    ///
    /// ```
    /// use pinbus::nats::{BridgeOptions, DiscardPolicy};
    /// let options = BridgeOptions::default().max_messages(1_000).discard(DiscardPolicy::New);
    /// # let _ = options;
    /// ```
    pub fn discard(mut self, policy: DiscardPolicy) -> Self {
        self.limits.discard = Some(policy);
        self
    }

    /// Authenticates with a user name and password (the server's
    /// `authorization { users = [...] }` or an account's users). The same as
    /// `nats://user:pass@host` in the URL.
    ///
    /// # Examples
    ///
    /// ```
    /// use pinbus::nats::{Bridge, BridgeError, BridgeOptions};
    /// let engine = pinbus::Engine::builder().workers(1).build().unwrap();
    /// // Checked before connecting: no server needed for this error.
    /// let bad = Bridge::connect("nats://127.0.0.1:4222", &engine, BridgeOptions::default().user_and_password("billing", "s3cret").token("t0ken"));
    /// assert!(matches!(bad, Err(BridgeError::InvalidOption { .. }))) // one way to authenticate;
    /// ```
    pub fn user_and_password(mut self, user: impl Into<String>, pass: impl Into<String>) -> Self {
        self.auth.user_and_password = Some((user.into(), pass.into()));
        self
    }

    /// Authenticates with a token (the server's `authorization { token }`).
    ///
    /// # Examples
    ///
    /// ```
    /// use pinbus::nats::BridgeOptions;
    /// let options = BridgeOptions::default().token("s3cret-token");
    /// # let _ = options;
    /// ```
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.auth.token = Some(token.into());
        self
    }

    /// Authenticates with an NKey: `seed` is the user's seed (`SU...`); the
    /// server lists the matching public key (`U...`).
    ///
    /// # Examples
    ///
    /// ```
    /// use pinbus::nats::BridgeOptions;
    /// let seed = std::env::var("NATS_NKEY_SEED").unwrap_or_default(); // "SU..."
    /// let options = BridgeOptions::default().nkey(seed);
    /// # let _ = options;
    /// ```
    pub fn nkey(mut self, seed: impl Into<String>) -> Self {
        self.auth.nkey = Some(seed.into());
        self
    }

    /// Authenticates with a credentials file (`.creds`: the user's JWT and
    /// NKey seed, as `nsc` writes it), for servers in operator mode. The file
    /// is read when the bridge connects.
    ///
    /// # Examples
    ///
    /// ```
    /// use pinbus::nats::{Bridge, BridgeError, BridgeOptions};
    /// let engine = pinbus::Engine::builder().workers(1).build().unwrap();
    /// // Checked before connecting: no server needed for this error.
    /// let bad = Bridge::connect("nats://127.0.0.1:4222", &engine, BridgeOptions::default().credentials_file("/no/such/user.creds"));
    /// assert!(matches!(bad, Err(BridgeError::InvalidOption { .. }))) // no such file;
    /// ```
    pub fn credentials_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.auth.credentials_file = Some(path.into());
        self
    }

    /// Trusts the CA certificates in the PEM file `ca_path` (besides the
    /// system's) for the server's certificate: needed when the cluster's
    /// certificates come from a private CA. A later call replaces the file.
    ///
    /// # Examples
    ///
    /// ```
    /// use pinbus::nats::{Bridge, BridgeError, BridgeOptions};
    /// let engine = pinbus::Engine::builder().workers(1).build().unwrap();
    /// // Checked before connecting: no server needed for this error.
    /// let bad = Bridge::connect("nats://127.0.0.1:4222", &engine, BridgeOptions::default().add_root_certificates("/no/such/ca.pem"));
    /// assert!(matches!(bad, Err(BridgeError::InvalidOption { .. }))) // no such file;
    /// ```
    pub fn add_root_certificates(mut self, ca_path: impl Into<PathBuf>) -> Self {
        self.tls.root_certificates = Some(ca_path.into());
        self
    }

    /// Presents the client certificate `cert_path` with its private key
    /// `key_path` (both PEM), for servers that verify clients (`tls {
    /// verify: true }`).
    ///
    /// # Examples
    ///
    /// ```
    /// use pinbus::nats::{Bridge, BridgeError, BridgeOptions};
    /// let engine = pinbus::Engine::builder().workers(1).build().unwrap();
    /// // Checked before connecting: no server needed for this error.
    /// let bad = Bridge::connect("nats://127.0.0.1:4222", &engine, BridgeOptions::default().add_client_certificate("/no/such/cert.pem", "/no/such/key.pem"));
    /// assert!(matches!(bad, Err(BridgeError::InvalidOption { .. })));
    /// ```
    pub fn add_client_certificate(
        mut self,
        cert_path: impl Into<PathBuf>,
        key_path: impl Into<PathBuf>,
    ) -> Self {
        self.tls.client_certificate = Some((cert_path.into(), key_path.into()));
        self
    }

    /// Refuses to talk to a server without TLS, even on a `nats://` URL.
    ///
    /// # Examples
    ///
    /// ```
    /// use pinbus::nats::BridgeOptions;
    /// let options = BridgeOptions::default().require_tls(true).add_root_certificates("ca.pem");
    /// # let _ = options;
    /// ```
    pub fn require_tls(mut self, on: bool) -> Self {
        self.tls.require_tls = on;
        self
    }

    /// Copies of the stream kept on a NATS cluster's servers when the bridge
    /// creates it (1 to 5; 3 survives the loss of one server). Default 1.
    ///
    /// # Examples
    ///
    /// ```
    /// use pinbus::nats::{Bridge, BridgeError, BridgeOptions};
    /// let engine = pinbus::Engine::builder().workers(1).build().unwrap();
    /// // Checked before connecting: no server needed for this error.
    /// let bad = Bridge::connect("nats://127.0.0.1:4222", &engine, BridgeOptions::default().replicas(0));
    /// assert!(matches!(bad, Err(BridgeError::InvalidOption { .. }))) // 1 to 5;
    /// ```
    pub fn replicas(mut self, replicas: usize) -> Self {
        self.replicas = replicas;
        self
    }

    /// Bound on each JetStream API call and on each publish ack; a publish
    /// whose ack takes longer is sent again (same id).
    ///
    /// # Examples
    ///
    /// ```
    /// use pinbus::nats::{Bridge, BridgeError, BridgeOptions};
    /// let engine = pinbus::Engine::builder().workers(1).build().unwrap();
    /// // Checked before connecting: no server needed for this error.
    /// let bad = Bridge::connect("nats://127.0.0.1:4222", &engine, BridgeOptions::default().request_timeout(std::time::Duration::ZERO));
    /// assert!(matches!(bad, Err(BridgeError::InvalidOption { .. })));
    /// ```
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Bound on the first connection.
    ///
    /// # Examples
    ///
    /// ```
    /// use pinbus::nats::{Bridge, BridgeError, BridgeOptions};
    /// let engine = pinbus::Engine::builder().workers(1).build().unwrap();
    /// // Checked before connecting: no server needed for this error.
    /// let bad = Bridge::connect("nats://127.0.0.1:4222", &engine, BridgeOptions::default().connect_timeout(std::time::Duration::ZERO));
    /// assert!(matches!(bad, Err(BridgeError::InvalidOption { .. })));
    /// ```
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Longest wait between two reconnect attempts (they start at 50 ms and
    /// double). The client reconnects for ever.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use pinbus::nats::BridgeOptions;
    /// let options = BridgeOptions::default().max_reconnect_delay(Duration::from_secs(5));
    /// # let _ = options;
    /// ```
    pub fn max_reconnect_delay(mut self, delay: Duration) -> Self {
        self.max_reconnect_delay = delay;
        self
    }

    /// Threads of the bridge's tokio runtime (NATS I/O, publish acks,
    /// pulls). Each import also has one thread of its own that publishes
    /// into the local topic.
    ///
    /// # Examples
    ///
    /// ```
    /// use pinbus::nats::{Bridge, BridgeError, BridgeOptions};
    /// let engine = pinbus::Engine::builder().workers(1).build().unwrap();
    /// // Checked before connecting: no server needed for this error.
    /// let bad = Bridge::connect("nats://127.0.0.1:4222", &engine, BridgeOptions::default().threads(0));
    /// assert!(matches!(bad, Err(BridgeError::InvalidOption { .. }))) // at least one;
    /// ```
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }

    /// The connection name shown by the NATS server (`nats server report
    /// connections`).
    ///
    /// # Examples
    ///
    /// ```
    /// use pinbus::nats::BridgeOptions;
    /// let options = BridgeOptions::default().name("checkout-eu-1");
    /// # let _ = options;
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The instance id that starts every `Nats-Msg-Id` this bridge writes
    /// (`<instance>-<topic>-<seq>`). By default the engine's
    /// [`Engine::instance_id`](crate::Engine::instance_id) (random per
    /// engine); set it only if you know no two running bridges share it.
    ///
    /// # Examples
    ///
    /// ```
    /// use pinbus::nats::BridgeOptions;
    /// let options = BridgeOptions::default().instance_id(0x5eed); // only if no other bridge uses it
    /// # let _ = options;
    /// ```
    pub fn instance_id(mut self, id: u64) -> Self {
        self.instance_id = Some(id);
        self
    }

    /// How long [`Bridge::close`](super::Bridge::close) waits for queued
    /// exports to be acknowledged and imports to finish.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use pinbus::nats::BridgeOptions;
    /// let options = BridgeOptions::default().close_timeout(Duration::from_secs(30));
    /// # let _ = options;
    /// ```
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
        assert!(BridgeOptions::default().validate().is_ok());
    }
}
