//! Publish interceptors (`pinbus::intercept`): admission with the event
//! handed back, enrichment, chain order, and the shared token bucket.

mod common;

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use common::{eventually, Log, PATIENCE};
use pinbus::intercept::RateLimit;
use pinbus::{Engine, Event, PublishError};

#[derive(Clone, Debug, PartialEq)]
struct Msg {
    user: &'static str,
    tags: Vec<&'static str>,
}

#[test]
fn an_admission_check_refuses_with_the_event_and_enriches_the_rest() {
    let engine = Engine::builder().workers(1).build().unwrap();
    let topic = engine.topic::<Msg>("intercept.auth").unwrap();
    let seen = Log::new();
    let s = seen.clone();
    topic
        .subscribe(move |ev: &Event<Msg>| s.push((**ev).clone()))
        .unwrap();
    let guarded = topic.intercept(|m: &mut Msg| {
        if m.user == "mallory" {
            return Err(format!("user {} may not publish", m.user));
        }
        m.tags.push("checked");
        Ok(())
    });

    guarded
        .publish(Msg {
            user: "alice",
            tags: vec![],
        })
        .unwrap();
    let refused = guarded.publish(Msg {
        user: "mallory",
        tags: vec!["x"],
    });
    match refused {
        Err(PublishError::Rejected { event, reason }) => {
            assert_eq!(event.tags, ["x"], "the event comes back untouched");
            assert_eq!(&*reason, "user mallory may not publish");
        }
        other => panic!("{other:?}"),
    }
    let err = guarded
        .try_publish(Msg {
            user: "mallory",
            tags: vec![],
        })
        .unwrap_err();
    assert!(err.is_rejected());
    assert!(err.to_string().contains("user mallory may not publish"));
    guarded
        .publish_tracked(Msg {
            user: "bob",
            tags: vec![],
        })
        .unwrap()
        .wait()
        .unwrap();
    assert!(eventually(PATIENCE, || seen.len() == 2));
    engine.shutdown();
    assert_eq!(topic.rejected_count(), 2);
    let seen = seen.snapshot();
    assert_eq!(seen[0].tags, ["checked"]);
    assert_eq!(seen[1].user, "bob");
}

#[test]
fn chained_interceptors_run_in_order_and_a_refusal_stops_the_chain() {
    let engine = Engine::builder().workers(1).build().unwrap();
    let topic = engine.topic::<Vec<u32>>("intercept.chain").unwrap();
    let log = Log::new();
    let (a, b) = (log.clone(), log.clone());
    let handle = topic
        .intercept(move |v: &mut Vec<u32>| -> Result<(), &'static str> {
            a.push("first");
            v.push(1);
            if v[0] == 0 {
                Err("zero first")
            } else {
                Ok(())
            }
        })
        .intercept(move |v: &mut Vec<u32>| -> Result<(), &'static str> {
            b.push("second");
            v.push(2);
            Ok(())
        });
    let seen = Log::new();
    let s = seen.clone();
    topic
        .subscribe(move |ev: &Event<Vec<u32>>| s.push((**ev).clone()))
        .unwrap();
    handle.publish(vec![9]).unwrap();
    let err = handle.publish(vec![0]).unwrap_err();
    assert_eq!(
        err.into_inner(),
        [0, 1],
        "refused after the first changed it"
    );
    assert!(eventually(PATIENCE, || seen.len() == 1));
    engine.shutdown();
    assert_eq!(seen.snapshot(), [vec![9, 1, 2]]);
    assert_eq!(log.snapshot(), ["first", "second", "first"]);
}

#[test]
fn the_shared_bucket_admits_one_burst_across_racing_publishers() {
    let engine = Engine::builder().workers(1).build().unwrap();
    let topic = engine.topic::<u32>("intercept.bucket").unwrap();
    topic.subscribe(|_: &Event<u32>| {}).unwrap();
    let limited = topic.intercept(RateLimit::per_second(1).burst(25));
    let start = Instant::now();
    let gate = Arc::new(Barrier::new(4));
    let joins: Vec<_> = (0..4)
        .map(|_| {
            let (limited, gate) = (limited.clone(), gate.clone());
            thread::spawn(move || {
                gate.wait();
                (0..100).filter(|&i| limited.publish(i).is_ok()).count() as u64
            })
        })
        .collect();
    let admitted: u64 = joins.into_iter().map(|j| j.join().unwrap()).sum();
    let extra = start.elapsed().as_secs();
    engine.shutdown();
    assert!(
        admitted >= 25 && admitted <= 25 + extra,
        "{admitted} admitted in {extra} s"
    );
    assert_eq!(topic.rejected_count(), 400 - admitted);
}

#[test]
fn a_waiting_bucket_throttles_instead_of_refusing() {
    let engine = Engine::builder().workers(1).build().unwrap();
    let topic = engine.topic::<u32>("intercept.throttle").unwrap();
    topic.subscribe(|_: &Event<u32>| {}).unwrap();
    let throttled = topic.intercept(RateLimit::per_second(200).burst(1).wait());
    let start = Instant::now();
    for i in 0..21 {
        throttled.publish(i).unwrap();
    }
    let took = start.elapsed();
    engine.shutdown();
    assert!(took >= Duration::from_millis(99), "21 events in {took:?}");
    assert_eq!(topic.rejected_count(), 0);
}

#[test]
fn a_batch_publishes_what_is_admitted_and_returns_what_is_not() {
    let engine = Engine::builder().workers(1).build().unwrap();
    let topic = engine.topic::<u32>("intercept.batch").unwrap();
    let seen = Log::new();
    let s = seen.clone();
    topic
        .subscribe(move |ev: &Event<u32>| s.push(**ev))
        .unwrap();
    let odd_only = topic.intercept(|v: &mut u32| {
        if *v % 2 == 1 {
            Ok(())
        } else {
            Err(format!("{v} is even"))
        }
    });
    let refused = odd_only.publish_batch(0..6).unwrap();
    assert_eq!(
        refused
            .iter()
            .map(|(v, r)| (*v, r.to_string()))
            .collect::<Vec<_>>(),
        [
            (0, "0 is even".to_string()),
            (2, "2 is even".into()),
            (4, "4 is even".into())
        ]
    );
    assert!(eventually(PATIENCE, || seen.len() == 3));
    engine.shutdown();
    assert_eq!(seen.snapshot(), [1, 3, 5]);
}
