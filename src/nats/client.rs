//! Connecting: [`Bridge::connect`] and [`Bridge::with_client`], the
//! runtime, the client options and the typed errors of a failed connect.

use std::time::Duration;

use async_nats::jetstream;
use tokio::sync::{broadcast, watch};

use super::bridge::{block_on, Bridge};
use super::conn::{client_state, on_event, watch_client, ConnState};
use super::error::BridgeError;
use super::options::BridgeOptions;
use super::permission::guarded;
use super::stats::Counters;
use super::stream::ensure_stream;
use crate::loom::sync::Arc;
use crate::Engine;

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
