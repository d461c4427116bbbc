//! Local request/reply: `Engine::service`, `Service::{serve, call,
//! call_timeout, call_async}` and every `CallError`.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pinbus::{CallError, Engine, Event, Service, TopicError};

fn engine(workers: usize) -> Engine {
    Engine::builder().workers(workers).build().unwrap()
}

#[test]
fn call_returns_the_reply() {
    let engine = engine(1);
    let quotes: Service<u32, String> = engine.service("pricing.quote").unwrap();
    quotes
        .serve(|q: &Event<u32>| {
            assert_eq!(q.topic(), "pricing.quote");
            format!("price of {}", **q)
        })
        .unwrap();
    assert_eq!(quotes.call(7).unwrap(), "price of 7");
    // A second handle of the same name reaches the same member.
    let again = engine.service::<u32, String>("pricing.quote").unwrap();
    assert_eq!(again.call(8).unwrap(), "price of 8");
}

#[test]
fn handler_error_fails_the_call_with_its_message() {
    let engine = engine(1);
    let svc = engine.service::<u32, u32>("checked").unwrap();
    svc.serve(|q| {
        if **q == 0 {
            Err(format!("{} is not allowed", **q))
        } else {
            Ok(**q + 1)
        }
    })
    .unwrap();
    assert_eq!(svc.call(1).unwrap(), 2);
    match svc.call(0) {
        Err(CallError::Failed(message)) => assert!(message.contains("0 is not allowed")),
        other => panic!("expected Failed, got {other:?}"),
    }
}

#[test]
fn handler_panic_fails_the_call_and_the_member_stays() {
    let engine = engine(1);
    let svc = engine.service::<u32, u32>("fragile").unwrap();
    svc.serve(|q| {
        if **q == 13 {
            panic!("unlucky {}", **q);
        }
        **q
    })
    .unwrap();
    match svc.call(13) {
        Err(CallError::Failed(message)) => assert!(message.contains("unlucky 13"), "{message}"),
        other => panic!("expected Failed, got {other:?}"),
    }
    assert_eq!(svc.call(4).unwrap(), 4);
}

#[test]
fn no_server_hands_the_query_back_at_once() {
    let engine = engine(1);
    let svc = engine.service::<String, u32>("lonely").unwrap();
    match svc.call("hello".to_owned()) {
        Err(CallError::NoServer(q)) => assert_eq!(q, "hello"),
        other => panic!("expected NoServer, got {other:?}"),
    }
    // The last member leaving: no server again.
    let member = svc.serve(|s| s.len() as u32).unwrap();
    assert_eq!(svc.call("abc".to_owned()).unwrap(), 3);
    member.unsubscribe();
    assert!(matches!(svc.call("x".to_owned()), Err(CallError::NoServer(q)) if q == "x"));
}

#[test]
fn call_timeout_times_out_and_late_replies_are_discarded() {
    let engine = engine(1);
    let svc = engine.service::<u64, u64>("slow").unwrap();
    svc.serve(|ms| {
        std::thread::sleep(Duration::from_millis(**ms));
        **ms
    })
    .unwrap();
    assert!(matches!(
        svc.call_timeout(200, Duration::from_millis(5)),
        Err(CallError::Timeout)
    ));
    // The next call gets its own reply, not the late one.
    assert_eq!(svc.call_timeout(1, Duration::from_secs(10)).unwrap(), 1);
}

#[test]
fn calls_after_shutdown_are_closed() {
    let engine = engine(1);
    let svc = engine.service::<u32, u32>("closing").unwrap();
    svc.serve(|q| **q).unwrap();
    assert_eq!(svc.call(1).unwrap(), 1);
    engine.shutdown();
    assert!(matches!(svc.call(2), Err(CallError::Closed)));
    assert!(matches!(
        futures::executor::block_on(svc.call_async(3)),
        Err(CallError::Closed)
    ));
    assert!(matches!(
        engine.service::<u32, u32>("other"),
        Err(TopicError::Closed)
    ));
}

#[test]
fn pending_calls_are_answered_or_closed_across_shutdown() {
    let engine = Arc::new(engine(1));
    let svc = engine.service::<u32, u32>("draining").unwrap();
    svc.serve(|q| {
        std::thread::sleep(Duration::from_millis(2));
        **q
    })
    .unwrap();
    let callers: Vec<_> = (0..4)
        .map(|i| {
            let svc = svc.clone();
            std::thread::spawn(move || {
                for j in 0..20 {
                    match svc.call(i * 100 + j) {
                        Ok(r) => assert_eq!(r, i * 100 + j),
                        Err(CallError::Closed) => return,
                        Err(e) => panic!("unexpected {e:?}"),
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(10));
    engine.shutdown();
    for c in callers {
        c.join().unwrap();
    }
}

#[test]
fn two_servers_share_calls_from_four_threads_exactly_once() {
    let engine = engine(2);
    let svc = engine.service::<u64, (usize, u64)>("shared").unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let counts = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
    for member in 0..2 {
        let (seen, counts) = (seen.clone(), counts.clone());
        svc.serve(move |q| {
            seen.lock().unwrap().push(**q);
            counts[member].fetch_add(1, Ordering::Relaxed);
            (member, **q * 2)
        })
        .unwrap();
    }
    let callers: Vec<_> = (0..4u64)
        .map(|t| {
            let svc = svc.clone();
            std::thread::spawn(move || {
                for i in 0..250 {
                    let q = t * 1_000 + i;
                    let (_, r) = svc.call(q).unwrap();
                    assert_eq!(r, q * 2);
                }
            })
        })
        .collect();
    for c in callers {
        c.join().unwrap();
    }
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1_000);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 1_000);
    let (a, b) = (
        counts[0].load(Ordering::Relaxed),
        counts[1].load(Ordering::Relaxed),
    );
    assert_eq!(a + b, 1_000);
    assert!(a > 0 && b > 0, "both members used: {a} and {b}");
}

#[test]
fn call_async_under_futures_executor() {
    let engine = engine(1);
    let svc = engine.service::<u32, u32>("async.futures").unwrap();
    svc.serve(|q| **q + 1).unwrap();
    futures::executor::block_on(async {
        for i in 0..100 {
            assert_eq!(svc.call_async(i).await.unwrap(), i + 1);
        }
        assert!(matches!(
            engine
                .service::<u8, u8>("async.none")
                .unwrap()
                .call_async(5)
                .await,
            Err(CallError::NoServer(5))
        ));
    });
}

#[test]
fn call_async_under_tokio() {
    let engine = engine(2);
    let svc = engine.service::<u32, u32>("async.tokio").unwrap();
    svc.serve(|q| **q * 3).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    rt.block_on(async {
        let tasks: Vec<_> = (0..8u32)
            .map(|t| {
                let svc = svc.clone();
                tokio::spawn(async move {
                    for i in 0..50 {
                        let q = t * 100 + i;
                        assert_eq!(svc.call_async(q).await.unwrap(), q * 3);
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
}

#[test]
fn blocking_call_from_a_handler_would_deadlock() {
    let engine = engine(1);
    let svc = engine.service::<u32, u32>("inner").unwrap();
    svc.serve(|q| **q).unwrap();
    let outer = engine.topic::<u32>("outer").unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let inner = svc.clone();
    outer
        .subscribe(move |ev| {
            let _ =
                tx.send(matches!(inner.call(**ev), Err(CallError::WouldDeadlock(q)) if q == **ev));
        })
        .unwrap();
    outer.publish(5).unwrap();
    assert!(rx.recv_timeout(Duration::from_secs(10)).unwrap());
}

#[test]
fn patterns_never_receive_service_requests() {
    let engine = engine(1);
    let everything = engine.pattern::<u32>(">").unwrap();
    let got = Arc::new(AtomicUsize::new(0));
    let g = got.clone();
    everything
        .subscribe(move |_| {
            g.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap();
    let svc = engine.service::<u32, u32>("pricing.quote").unwrap();
    svc.serve(|q| **q).unwrap();
    for i in 0..10 {
        assert_eq!(svc.call(i).unwrap(), i);
    }
    let plain = engine.topic::<u32>("pricing.other").unwrap();
    plain.publish_and_wait(1).unwrap();
    engine.shutdown();
    assert_eq!(
        got.load(Ordering::Relaxed),
        1,
        "only the plain topic's event"
    );
    assert_eq!(engine.metrics().pattern_type_mismatches, 0);
}

#[test]
fn names_are_checked_and_reserved() {
    let engine = engine(1);
    assert!(matches!(
        engine.service::<u32, u32>("bad name"),
        Err(TopicError::InvalidName { .. })
    ));
    assert!(matches!(
        engine.service::<u32, u32>("a.>"),
        Err(TopicError::InvalidName { .. })
    ));
    assert!(matches!(
        engine.topic::<u32>("$service.pricing"),
        Err(TopicError::InvalidName { .. })
    ));
    engine.service::<u32, u32>("typed").unwrap();
    assert!(matches!(
        engine.service::<u32, String>("typed"),
        Err(TopicError::TypeMismatch { .. })
    ));
}
