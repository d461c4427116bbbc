//! Request/reply over NATS (core NATS, JSON): a local service answering
//! requests on a subject (`Bridge::serve`), a local `Service` standing for
//! a remote one (`Bridge::remote`), across engines and across languages (a
//! Python nats-py client calling a Rust service, Rust calling a service
//! Python answers), with the errors each side sees.

#[path = "support/nats_py.rs"]
mod nats_py;
#[path = "support/nats_server.rs"]
mod nats_server;

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use nats_py::{json_lines, python, script};
use nats_server::{engine, NatsServer};
use pinbus::nats::{Bridge, BridgeOptions, ServiceOptions};
use pinbus::{CallError, Engine, Service, TraceContext, TraceId};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Quote {
    sku: String,
    qty: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Price {
    sku: String,
    cents: u64,
}

fn quote(qty: u64) -> Quote {
    Quote {
        sku: format!("sku-{qty}"),
        qty,
    }
}

/// Asserts that the call found no server and handed `query` back.
fn assert_no_server<R: std::fmt::Debug>(result: Result<R, CallError<Quote>>, query: Quote) {
    match result {
        Err(CallError::NoServer(q)) => assert_eq!(q, query),
        other => panic!("expected NoServer, got {other:?}"),
    }
}

fn bridge(server: &NatsServer, engine: &Engine) -> Bridge {
    Bridge::connect(&server.url(), engine, BridgeOptions::default()).unwrap()
}

/// A pricing service with one member: 250 cents a unit, qty 0 refused.
/// Counts the calls it handles in `handled`.
fn pricing(engine: &Engine, handled: &Arc<AtomicU64>) -> Service<Quote, Price> {
    let service = engine.service::<Quote, Price>("pricing.quote").unwrap();
    let handled = handled.clone();
    service
        .serve(move |q| {
            handled.fetch_add(1, Ordering::Relaxed);
            if q.qty == 0 {
                return Err("qty must be at least 1".to_owned());
            }
            Ok(Price {
                sku: q.sku.clone(),
                cents: q.qty * 250,
            })
        })
        .unwrap();
    service
}

#[test]
fn a_python_client_calls_a_rust_service() {
    let server = NatsServer::start().unwrap();
    let e = engine();
    let b = bridge(&server, &e);
    let handled = Arc::new(AtomicU64::new(0));
    let service = pricing(&e, &handled);
    let link = b.serve(&service, "pricing.quote").unwrap();

    let n = 200;
    let replies = json_lines("call.py", &[&server.url(), "pricing.quote", &n.to_string()]);
    assert_eq!(replies.len(), n + 1, "one reply per request");
    // qty 0: the handler's error, as an error reply.
    let refused = &replies[0];
    assert_eq!(refused["data"], serde_json::Value::Null);
    assert_eq!(refused["headers"]["Nats-Service-Error-Code"], "500");
    let text = refused["headers"]["Nats-Service-Error"].as_str().unwrap();
    assert!(text.contains("qty must be at least 1"), "{text}");
    for (qty, reply) in replies.iter().enumerate().take(n).skip(1) {
        let price: Price = serde_json::from_value(reply["data"].clone()).expect("a JSON price");
        assert_eq!(
            price,
            Price {
                sku: format!("sku-{qty}"),
                cents: qty as u64 * 250
            }
        );
        assert_eq!(reply["headers"]["Content-Type"], "application/json");
    }
    // The body that is not JSON: refused before any member sees it.
    let bad = &replies[n];
    assert_eq!(bad["headers"]["Nats-Service-Error-Code"], "400");
    let text = bad["headers"]["Nats-Service-Error"].as_str().unwrap();
    assert!(text.contains("not a valid"), "{text}");
    assert_eq!(handled.load(Ordering::Relaxed), n as u64);
    assert_eq!(link.replied(), n as u64 - 1);
    assert_eq!(link.failed(), 2);
}

#[test]
fn rust_calls_a_service_answered_by_python() {
    let py = python();
    let server = NatsServer::start().unwrap();
    let mut child = Command::new(&py)
        .arg(script("serve.py"))
        .args([&server.url(), "pricing.py.quote"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python runs");
    let mut ready = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert_eq!(ready.trim(), "ready", "serve.py subscribed");

    let e = engine();
    let b = bridge(&server, &e);
    let service = e.service::<Quote, Price>("pricing.quote").unwrap();
    let link = b.remote(&service, "pricing.py.quote").unwrap();
    // 1,000 calls from 4 threads at once.
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let service = &service;
            s.spawn(move || {
                for i in 0..250 {
                    let qty = 1 + t * 250 + i;
                    let price = service.call(quote(qty)).unwrap();
                    assert_eq!(price.cents, qty * 250);
                    assert_eq!(price.sku, format!("sku-{qty}"));
                }
            });
        }
    });
    let price = futures::executor::block_on(service.call_async(quote(7))).unwrap();
    assert_eq!(price.cents, 7 * 250);
    // Python's error reply is the call's failure, with its text and code.
    match service.call(quote(0)) {
        Err(CallError::Failed(text)) => {
            assert!(text.contains("qty must be at least 1"), "{text}");
            assert!(text.contains("422"), "{text}");
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    assert_eq!(link.replied(), 1_001);
    assert_eq!(link.failed(), 1);

    // Python gone: NATS has no responder, the query comes back.
    let _ = child.kill();
    let _ = child.wait();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match service.call(quote(3)) {
            Err(CallError::NoServer(q)) => {
                assert_eq!(q, quote(3));
                break;
            }
            // The server may not have seen the connection close yet.
            Ok(_) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20))
            }
            other => panic!("expected NoServer, got {other:?}"),
        }
    }
}

#[test]
fn two_rust_servers_share_calls_from_a_third_engine() {
    let server = NatsServer::start().unwrap();
    let (e1, e2, caller) = (engine(), engine(), engine());
    let (b1, b2, b3) = (
        bridge(&server, &e1),
        bridge(&server, &e2),
        bridge(&server, &caller),
    );
    let (h1, h2) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let s1 = pricing(&e1, &h1);
    let s2 = pricing(&e2, &h2);
    b1.serve(&s1, "pricing.quote").unwrap();
    b2.serve(&s2, "pricing.quote").unwrap();
    let remote = caller.service::<Quote, Price>("pricing.quote").unwrap();
    b3.remote(&remote, "pricing.quote").unwrap();
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let remote = &remote;
            s.spawn(move || {
                for i in 0..250 {
                    let qty = 1 + t * 250 + i;
                    assert_eq!(remote.call(quote(qty)).unwrap().cents, qty * 250);
                }
            });
        }
    });
    let (n1, n2) = (h1.load(Ordering::Relaxed), h2.load(Ordering::Relaxed));
    assert_eq!(n1 + n2, 1_000, "each call answered once");
    assert!(n1 > 0 && n2 > 0, "both servers answered some: {n1} / {n2}");
    // The handler's failure crosses as the caller's Failed.
    match remote.call(quote(0)) {
        Err(CallError::Failed(text)) => assert!(text.contains("qty must be at least 1"), "{text}"),
        other => panic!("expected Failed, got {other:?}"),
    }
}

#[test]
fn a_call_over_nats_keeps_the_callers_trace() {
    let server = NatsServer::start().unwrap();
    let (serving, caller) = (engine(), engine());
    let (bs, bc) = (bridge(&server, &serving), bridge(&server, &caller));
    let traces = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = traces.clone();
    let echo = serving.service::<u64, u64>("echo").unwrap();
    echo.serve(move |q| {
        seen.lock().unwrap().push(q.trace_id());
        **q
    })
    .unwrap();
    bs.serve(&echo, "echo").unwrap();
    let remote = caller.service::<u64, u64>("echo").unwrap();
    bc.remote(&remote, "echo").unwrap();
    let ctx = TraceContext::new(TraceId::from_u128(0xfeed), 7);
    {
        let _in_trace = ctx.enter();
        assert_eq!(remote.call(5).unwrap(), 5);
    }
    let block = futures::executor::block_on(async {
        let _in_trace = ctx.enter();
        remote.call_async(6).await
    });
    assert_eq!(block.unwrap(), 6);
    let traces = traces.lock().unwrap().clone();
    assert_eq!(
        traces,
        vec![TraceId::from_u128(0xfeed); 2],
        "the caller's trace"
    );
}

#[test]
fn remote_errors_no_responder_no_member_timeout_stop() {
    let server = NatsServer::start().unwrap();
    let (serving, caller) = (engine(), engine());
    let (bs, bc) = (bridge(&server, &serving), bridge(&server, &caller));

    // Nobody subscribed to the subject: the query comes back at once.
    let nobody = caller.service::<Quote, Price>("nobody").unwrap();
    bc.remote(&nobody, "pricing.nobody").unwrap();
    assert_no_server(nobody.call(quote(1)), quote(1));

    // Served subject, but the local service has no member: 503 -> NoServer.
    let empty = serving.service::<Quote, Price>("empty").unwrap();
    bs.serve(&empty, "pricing.empty").unwrap();
    let empty_remote = caller.service::<Quote, Price>("empty").unwrap();
    bc.remote(&empty_remote, "pricing.empty").unwrap();
    assert_no_server(empty_remote.call(quote(2)), quote(2));

    // A slow member: the link's timeout answers Timeout.
    let slow = serving.service::<Quote, Price>("slow").unwrap();
    slow.serve(|q| {
        std::thread::sleep(Duration::from_millis(q.qty));
        Price {
            sku: q.sku.clone(),
            cents: 0,
        }
    })
    .unwrap();
    bs.serve(&slow, "pricing.slow").unwrap();
    let slow_remote = caller.service::<Quote, Price>("slow").unwrap();
    let options = ServiceOptions::new().timeout(Duration::from_millis(100));
    bc.remote_with(&slow_remote, "pricing.slow", options)
        .unwrap();
    assert!(matches!(
        slow_remote.call(quote(1_000)),
        Err(CallError::Timeout)
    ));
    // Given time (the member first finishes the 1 s call), it answers.
    let patient = caller.service::<Quote, Price>("patient").unwrap();
    bc.remote(&patient, "pricing.slow").unwrap();
    assert_eq!(patient.call(quote(1)).unwrap().cents, 0);

    // A stopped link leaves its service: no member any more.
    let stopped = caller.service::<Quote, Price>("stopped").unwrap();
    bc.remote(&stopped, "pricing.slow").unwrap().stop();
    assert!(matches!(
        stopped.call(quote(1)),
        Err(CallError::NoServer(_))
    ));

    // Bad subjects and options are typed errors that say what to change.
    let err = bc.remote(&stopped, "pricing.*").unwrap_err().to_string();
    assert!(err.contains("one concrete subject"), "{err}");
    let err = bc
        .serve_with(&slow, "pricing.x", ServiceOptions::new().max_in_flight(0))
        .unwrap_err()
        .to_string();
    assert!(err.contains("max_in_flight(0)"), "{err}");
    // Serving and standing for the same service on one subject would loop.
    let err = bs.remote(&slow, "pricing.slow").unwrap_err().to_string();
    assert!(err.contains("go round"), "{err}");
}

#[test]
fn calls_beyond_max_in_flight_fail_at_once_and_closing_fails_calls_in_flight() {
    let server = NatsServer::start().unwrap();
    let (serving, caller) = (engine(), engine());
    let (bs, bc) = (bridge(&server, &serving), bridge(&server, &caller));
    let (entered, has_entered) = std::sync::mpsc::channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let released = std::sync::Mutex::new(released);
    let slow = serving.service::<Quote, Price>("gated").unwrap();
    slow.serve(move |q| {
        entered.send(()).unwrap();
        released.lock().unwrap().recv().unwrap();
        Price {
            sku: q.sku.clone(),
            cents: 1,
        }
    })
    .unwrap();
    bs.serve(&slow, "pricing.gated").unwrap();
    let remote = caller.service::<Quote, Price>("gated").unwrap();
    bc.remote_with(
        &remote,
        "pricing.gated",
        ServiceOptions::new().max_in_flight(1),
    )
    .unwrap();
    let mut first = Box::pin(remote.call_async(quote(1)));
    // Poll once so the first call goes out; once the serving member has it,
    // it holds the link's one place.
    let waker = futures::task::noop_waker();
    let mut cx = std::task::Context::from_waker(&waker);
    assert!(first.as_mut().poll(&mut cx).is_pending());
    has_entered.recv().unwrap();
    match remote.call(quote(2)) {
        Err(CallError::Failed(text)) => assert!(text.contains("max_in_flight"), "{text}"),
        other => panic!("expected Failed, got {other:?}"),
    }
    release.send(()).unwrap();
    assert_eq!(futures::executor::block_on(first).unwrap().cents, 1);
    drop(bc);
    // The bridge closed: its stand-in left the service.
    assert!(matches!(remote.call(quote(3)), Err(CallError::NoServer(_))));
}

#[test]
fn a_served_subject_answers_again_after_the_server_restarts() {
    let mut server = NatsServer::start().unwrap();
    let (serving, caller) = (engine(), engine());
    let (bs, bc) = (bridge(&server, &serving), bridge(&server, &caller));
    let handled = Arc::new(AtomicU64::new(0));
    let service = pricing(&serving, &handled);
    bs.serve(&service, "pricing.quote").unwrap();
    let remote = caller.service::<Quote, Price>("pricing.quote").unwrap();
    let options = ServiceOptions::new().timeout(Duration::from_millis(500));
    bc.remote_with(&remote, "pricing.quote", options).unwrap();
    assert_eq!(remote.call(quote(2)).unwrap().cents, 500);

    server.kill9();
    // While the server is down every call ends, with a reason; none hangs.
    for qty in 1..=3 {
        match remote.call(quote(qty)) {
            Err(CallError::Failed(_) | CallError::Timeout | CallError::NoServer(_)) => {}
            other => panic!("expected a failed call while NATS is down, got {other:?}"),
        }
    }
    server.restart();
    // Both clients reconnect and the serving side subscribes again.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        match remote.call(quote(4)) {
            Ok(price) => {
                assert_eq!(price.cents, 1_000);
                break;
            }
            Err(_) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50))
            }
            Err(e) => panic!("no answer 20 s after the restart: {e}"),
        }
    }
}
