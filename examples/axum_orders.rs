//! An axum order service on pinbus: `POST /orders` publishes each order on a
//! `Block` topic with `publish_tracked_async` and awaits its receipt (a
//! subscriber, the ledger, sums the cents); `GET /metrics` serves the
//! engine's counters as Prometheus text; SIGTERM or Ctrl-C stops the server
//! gracefully, then the engine (`shutdown_timeout`), and prints the report.
//!
//! ```text
//! cargo run --example axum_orders --features metrics [-- --addr 127.0.0.1:3000]
//! curl -s -XPOST localhost:3000/orders -H 'content-type: application/json' \
//!      -d '{"id": 1, "cents": 250}'
//! curl -s localhost:3000/metrics
//! ```
//!
//! Replies to `POST /orders`: `200 OK` once the ledger has handled the order
//! (the receipt completed within [`HANDLE_WITHIN`]), `202 Accepted` if it
//! was published but not handled yet, `503` once shutdown has begun; a body
//! that is not an order gets axum's `400`/`415`/`422`.
//!
//! The service is [`serve`], a function that `tests/axum_orders.rs`
//! includes and runs in-process.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use pinbus::{
    Backpressure, Engine, IdleStrategy, PublishError, ShutdownReport, SubscribeOptions, Topic,
    TopicOptions,
};
use serde::{Deserialize, Serialize};

/// How long `POST /orders` awaits the receipt before answering `202`.
pub const HANDLE_WITHIN: Duration = Duration::from_secs(2);

/// How long shutdown waits for the handlers to finish.
pub const DRAIN_WITHIN: Duration = Duration::from_secs(5);

/// An order, as posted.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Order {
    /// The order's id.
    pub id: u64,
    /// Its amount in cents.
    pub cents: u64,
}

/// The reply to `POST /orders`.
#[derive(Debug, Deserialize, Serialize)]
pub struct OrderReply {
    /// The order's id.
    pub id: u64,
    /// `"handled"` (200) or `"accepted"` (202: published, not handled yet).
    pub status: String,
    /// The ledger's total once this order was handled (with `"handled"`).
    pub total_cents: Option<u64>,
}

/// What the handlers share.
struct App {
    engine: Arc<Engine>,
    orders: Topic<Order>,
    total_cents: Arc<AtomicU64>,
    prometheus: PrometheusHandle,
}

/// Runs the service on `listener` until `stop` resolves or the process gets
/// SIGTERM or Ctrl-C: stops taking connections, lets open requests finish,
/// then shuts the engine down (waiting at most [`DRAIN_WITHIN`]) and returns
/// its report. Prints `listening on <addr>` once serving.
///
/// `prometheus` renders the recorder that `metrics` reports to (the one
/// [`install_recorder`] installed).
pub async fn serve(
    listener: tokio::net::TcpListener,
    prometheus: PrometheusHandle,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<ShutdownReport, Box<dyn std::error::Error + Send + Sync>> {
    let engine = Arc::new(
        Engine::builder()
            .workers(1)
            .idle(IdleStrategy::Park)
            .lane_capacity(1024)
            .build()?,
    );
    let orders = engine.topic_with::<Order>(
        "orders.created",
        TopicOptions::default().backpressure(Backpressure::Block),
    )?;
    let total_cents = Arc::new(AtomicU64::new(0));
    let total = total_cents.clone();
    orders.subscribe_with(
        move |ev| {
            total.fetch_add(ev.cents, Ordering::Relaxed);
        },
        SubscribeOptions::new().name("ledger"),
    )?;

    let app = Arc::new(App {
        engine: engine.clone(),
        orders,
        total_cents,
        prometheus,
    });
    let router = Router::new()
        .route("/orders", post(create_order))
        .route("/metrics", get(metrics))
        .with_state(app);

    let addr = listener.local_addr()?;
    println!("listening on {addr}");
    axum::serve(listener, router)
        .with_graceful_shutdown(stopped(stop))
        .await?;

    // The server is stopped and every request has been answered: stop the
    // engine (off the runtime's threads: it blocks while handlers drain).
    let report = tokio::task::spawn_blocking(move || engine.shutdown_timeout(DRAIN_WITHIN)).await?;
    Ok(report)
}

/// Installs a Prometheus recorder as the `metrics` crate's global recorder
/// (once per process) and returns its handle.
pub fn install_recorder() -> Result<PrometheusHandle, Box<dyn std::error::Error + Send + Sync>> {
    Ok(PrometheusBuilder::new().install_recorder()?)
}

/// `POST /orders`: publish, await room and then the receipt, reply.
async fn create_order(State(app): State<Arc<App>>, Json(order): Json<Order>) -> Response {
    let id = order.id;
    // Awaits room under `Block` without blocking a runtime thread.
    let receipt = match app.orders.publish_tracked_async(order).await {
        Ok(receipt) => receipt,
        Err(PublishError::Closed(_)) => {
            return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
        }
        Err(e) => return (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response(),
    };
    // Woken by the worker that completes the event; no polling.
    match tokio::time::timeout(HANDLE_WITHIN, receipt).await {
        Ok(()) => {
            let reply = OrderReply {
                id,
                status: "handled".into(),
                total_cents: Some(app.total_cents.load(Ordering::Relaxed)),
            };
            (StatusCode::OK, Json(reply)).into_response()
        }
        // Published, and it will be handled; dropping the receipt only stops
        // tracking it.
        Err(_) => {
            let reply = OrderReply {
                id,
                status: "accepted".into(),
                total_cents: None,
            };
            (StatusCode::ACCEPTED, Json(reply)).into_response()
        }
    }
}

/// `GET /metrics`: the engine's counters, exported to the recorder, rendered.
async fn metrics(State(app): State<Arc<App>>) -> impl IntoResponse {
    app.engine.metrics().export();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.prometheus.render(),
    )
}

/// Resolves on `stop`, SIGTERM or Ctrl-C, whichever comes first.
async fn stopped(stop: impl Future<Output = ()>) {
    let ctrl_c = async {
        // If no handler can be installed, rely on the other ways to stop.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = stop => {}
        () = ctrl_c => {}
        () = term => {}
    }
}

/// `--addr HOST:PORT` (or `--addr=HOST:PORT`), default 127.0.0.1:3000.
fn parse_addr(mut args: impl Iterator<Item = String>) -> Result<SocketAddr, String> {
    let mut addr = "127.0.0.1:3000".to_owned();
    while let Some(arg) = args.next() {
        if let Some(value) = arg.strip_prefix("--addr=") {
            addr = value.to_owned();
        } else if arg == "--addr" {
            addr = args
                .next()
                .ok_or("--addr needs a value, e.g. 127.0.0.1:3000")?;
        } else {
            return Err(format!(
                "unknown argument {arg:?}; usage: axum_orders [--addr HOST:PORT]"
            ));
        }
    }
    addr.parse()
        .map_err(|e| format!("--addr {addr:?} is not HOST:PORT ({e}); try 127.0.0.1:3000"))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let addr = match parse_addr(std::env::args().skip(1)) {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("axum_orders: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let run = async {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let prometheus = install_recorder()?;
        serve(listener, prometheus, std::future::pending()).await
    };
    match run.await {
        Ok(report) => {
            println!(
                "shutdown: complete {} | published {} | handled {} | failed {} | drained in {:?}",
                report.complete, report.published, report.handled, report.failed, report.drain_time
            );
            if report.complete {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("axum_orders: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
