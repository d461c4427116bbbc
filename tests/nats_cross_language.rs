//! Any language can speak to pinbus through NATS: a Python `nats-py`
//! publisher sends JSON that a typed Rust import handles, and a Python
//! consumer reads what a Rust export sent.
//!
//! Python comes from `$PINBUS_NATS_PY`, or the venv that
//! `scripts/nats_py/venv.sh` makes under target/ (scripts/test-nats.sh and
//! scripts/test-all.sh run it first); without it the tests fail, saying
//! how to make it (tests/support/nats_py.rs).

#[path = "support/nats_py.rs"]
mod nats_py;
#[path = "support/nats_server.rs"]
mod nats_server;

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nats_py::{json_lines, python, script};
use nats_server::NatsServer;
use pinbus::nats::{Bridge, BridgeOptions, ImportOptions};
use pinbus::{Engine, IdleStrategy, TraceContext, TraceId};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Order {
    id: u64,
    cents: u64,
    note: String,
}

const N: u64 = 1_000;

fn engine() -> Engine {
    Engine::builder()
        .workers(1)
        .idle(IdleStrategy::Park)
        .build()
        .expect("valid engine config")
}

fn options() -> BridgeOptions {
    BridgeOptions::default().stream("ORDERS", ["orders.>"])
}

#[test]
fn a_python_publisher_feeds_a_typed_rust_import() {
    let py = python();
    let Some(server) = NatsServer::start() else {
        return;
    };
    let e = engine();
    let bridge = Bridge::connect(&server.url(), &e, options()).unwrap();
    let orders = e.topic::<Order>("orders.from_python").unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    orders
        .subscribe(move |ev| s.lock().unwrap().push(((**ev).clone(), ev.trace_id())))
        .unwrap();
    bridge
        .import::<Order, _>(
            "orders.py.*",
            &orders,
            ImportOptions::durable("rust-billing"),
        )
        .unwrap();

    let out = Command::new(&py)
        .arg(script("publish.py"))
        .args([&server.url(), "orders.py.created", &N.to_string()])
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "publish.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let deadline = Instant::now() + Duration::from_secs(30);
    while (seen.lock().unwrap().len() as u64) < N && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len() as u64, N, "{:?}", bridge.stats());
    for (i, (order, trace)) in seen.iter().enumerate() {
        let i = i as u64;
        assert_eq!(
            *order,
            Order {
                id: i,
                cents: i * 5,
                note: format!("from python {i}")
            }
        );
        // publish.py sets trace id i + 1.
        assert_eq!(*trace, TraceId::from_u128(u128::from(i) + 1));
    }
    assert_eq!(bridge.stats().import_terminated, 0);
}

#[test]
fn a_python_consumer_reads_what_a_rust_export_sent() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let e = engine();
    let bridge = Bridge::connect(&server.url(), &e, options()).unwrap();
    let orders = e.topic::<Order>("orders.rust.created").unwrap();
    let contexts = Arc::new(Mutex::new(Vec::new()));
    let c = contexts.clone();
    orders
        .subscribe(move |ev| c.lock().unwrap().push((ev.trace_context(), ev.seq())))
        .unwrap();
    bridge.export(&orders, "orders.rust.created").unwrap();
    for id in 0..N {
        orders
            .publish(Order {
                id,
                cents: id * 2,
                note: format!("from rust {id}"),
            })
            .unwrap();
    }
    bridge.flush(Duration::from_secs(30)).unwrap();

    let count = N.to_string();
    let lines = json_lines(
        "consume.py",
        &[
            &server.url(),
            "ORDERS",
            "orders.rust.>",
            "py-reader",
            &count,
            "30",
        ],
    );
    assert_eq!(lines.len() as u64, N);
    let contexts = contexts.lock().unwrap().clone();
    for (i, line) in lines.iter().enumerate() {
        let order: Order = serde_json::from_value(line["data"].clone()).expect("plain JSON order");
        assert_eq!(order.id, i as u64, "in order");
        assert_eq!(order.note, format!("from rust {i}"));
        assert_eq!(line["subject"], "orders.rust.created");
        let headers = &line["headers"];
        assert_eq!(headers["Content-Type"], "application/json");
        let (ctx, seq) = contexts[i];
        let want = format!("{:016x}-orders.rust.created-{seq}", bridge.instance_id());
        assert_eq!(headers["Nats-Msg-Id"], want.as_str());
        let tp = headers["traceparent"].as_str().expect("a traceparent");
        assert_eq!(TraceContext::from_traceparent(tp), Some(ctx));
    }
}
