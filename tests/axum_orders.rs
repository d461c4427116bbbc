//! The axum order service of `examples/axum_orders.rs`, end to end: its
//! `serve` runs in-process on 127.0.0.1:0 and is driven over real TCP with
//! hand-written HTTP/1.1 requests. 20 orders each get `200` once handled,
//! `/metrics` shows pinbus's counters in Prometheus text with those counts,
//! and a graceful stop ends with a complete shutdown report.

// The example's `main` (and what only it uses) is dead code here.
#[allow(dead_code)]
#[path = "../examples/axum_orders.rs"]
mod service;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use service::{Order, OrderReply};

/// One request on a fresh connection (`Connection: close`): the status code
/// and the body.
fn request(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("a complete response");
    let raw = String::from_utf8(raw).expect("UTF-8 response");
    let (head, body) = raw.split_once("\r\n\r\n").expect("headers end");
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    let chunked = head
        .lines()
        .any(|l| l.eq_ignore_ascii_case("transfer-encoding: chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    (status, body)
}

/// Decodes a chunked body.
fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n").expect("chunk size line");
        let size = usize::from_str_radix(size.trim(), 16).expect("hex chunk size");
        if size == 0 {
            return out;
        }
        out.push_str(&after[..size]);
        rest = &after[size + 2..];
    }
}

/// The value of the first sample of `metric` whose labels include every
/// one of `labels` (`name="value"`), if any.
fn sample(text: &str, metric: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(&format!("{metric}{{")) || l.starts_with(&format!("{metric} ")))
        .find(|l| labels.iter().all(|want| l.contains(want)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn the_order_service_handles_orders_serves_metrics_and_shuts_down_gracefully() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let prometheus = service::install_recorder().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = rt.spawn(service::serve(listener, prometheus, async {
        let _ = stopped.await;
    }));

    // 20 orders from 4 clients at once; each reply says it was handled.
    let cents = |id: u64| 100 + id * 7;
    let clients: Vec<_> = (0..4u64)
        .map(|c| {
            std::thread::spawn(move || {
                (0..5u64)
                    .map(|k| {
                        let order = Order {
                            id: c * 5 + k,
                            cents: cents(c * 5 + k),
                        };
                        let body = serde_json::to_string(&order).unwrap();
                        let (status, reply) = request(addr, "POST", "/orders", &body);
                        assert_eq!(status, 200, "order {}: {reply}", order.id);
                        let reply: OrderReply = serde_json::from_str(&reply).unwrap();
                        assert_eq!((reply.id, reply.status.as_str()), (order.id, "handled"));
                        let total = reply.total_cents.expect("a handled order has a total");
                        assert!(total >= order.cents, "the ledger counted it");
                        total
                    })
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    let totals: Vec<u64> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    assert_eq!(totals.len(), 20);
    let sum: u64 = (0..20).map(cents).sum();
    assert_eq!(
        totals.iter().max(),
        Some(&sum),
        "the last one handled saw every order"
    );

    // Not an order: refused by axum's extractor, nothing published.
    let (status, _) = request(addr, "POST", "/orders", "{\"id\": \"seven\"}");
    assert!((400..500).contains(&status), "bad order: {status}");

    // Prometheus text with pinbus's counters. A subscription's counts can
    // lag by one batch (`Metrics`, "Lag"), so look again briefly.
    let topic = "topic=\"orders.created\"";
    let ledger = "subscription=\"ledger\"";
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let (status, text) = request(addr, "GET", "/metrics", "");
        assert_eq!(status, 200);
        let handled = sample(&text, "pinbus_subscription_handled_total", &[topic, ledger]);
        if handled == Some(20.0) || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        sample(&text, "pinbus_topic_published_total", &[topic]),
        Some(20.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "pinbus_subscription_handled_total", &[topic, ledger]),
        Some(20.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "pinbus_subscription_failed_total", &[topic, ledger]),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "pinbus_topic_full_total", &[topic]),
        Some(0.0)
    );
    assert!(
        text.contains("# TYPE pinbus_topic_published_total counter"),
        "{text}"
    );

    // Graceful stop: the server stops, then the engine drains.
    stop.send(()).unwrap();
    let report = rt
        .block_on(async { tokio::time::timeout(Duration::from_secs(30), server).await })
        .expect("the service stopped in time")
        .unwrap()
        .unwrap();
    assert!(report.complete, "{report:?}");
    assert_eq!(
        (report.published, report.handled, report.failed),
        (20, 20, 0)
    );
    assert!(
        TcpStream::connect(addr).is_err(),
        "the listener is closed after shutdown"
    );
}
