//! Guarantee 3: a full lane never loses data: `Block` waits, `Fail` hands the
//! event back (all-or-nothing across lanes).

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::{engine, within, Log};
use pinbus::{Backpressure, PublishError, SubscribeOptions, TopicOptions};

/// A subscription that blocks until the returned sender is dropped or sent to.
fn gate_subscriber(topic: &pinbus::Topic<u64>, log: &Log<u64>, worker: usize) -> mpsc::Sender<()> {
    let (tx, rx) = mpsc::channel::<()>();
    let l = log.clone();
    let mut open = false;
    topic
        .subscribe_with(
            move |ev| {
                if !open {
                    let _ = rx.recv();
                    open = true;
                }
                l.push(**ev);
            },
            SubscribeOptions::new().worker(worker),
        )
        .unwrap();
    tx
}

#[test]
fn fail_hands_the_event_back_and_loses_nothing() {
    let engine = engine(1, pinbus::IdleStrategy::Park, 4);
    let topic = engine
        .topic_with::<u64>(
            "fail",
            TopicOptions::default().backpressure(Backpressure::Fail),
        )
        .unwrap();
    let log = Log::new();
    let gate = gate_subscriber(&topic, &log, 0);
    // The worker takes event 0 and blocks in the handler (the ring slot is
    // freed only after the batch); keep publishing until the ring is full.
    let mut accepted = Vec::new();
    let mut refused = None;
    for i in 0..100u64 {
        match topic.publish(i) {
            Ok(()) => accepted.push(i),
            Err(PublishError::Full(back)) => {
                refused = Some(back);
                break;
            }
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(
        refused,
        Some(accepted.len() as u64),
        "the refused event comes back intact"
    );
    assert!(accepted.len() >= 4, "capacity 4 fits at least 4 events");
    // try_publish refuses too, whatever the topic's backpressure.
    assert!(topic.try_publish(999).unwrap_err().is_full());
    drop(gate);
    engine.shutdown();
    assert_eq!(log.snapshot(), accepted);
}

#[test]
fn block_waits_for_room_and_delivers_everything() {
    let engine = engine(1, pinbus::IdleStrategy::Park, 2);
    let topic = engine.topic::<u64>("block").unwrap();
    let log = Log::new();
    let gate = gate_subscriber(&topic, &log, 0);
    let t = topic.clone();
    let producer = std::thread::spawn(move || {
        for i in 0..1_000 {
            t.publish(i).unwrap();
        }
    });
    std::thread::sleep(Duration::from_millis(50));
    assert!(
        !producer.is_finished(),
        "the producer must be waiting for room"
    );
    // Capacity is per producer ring: another thread still has room of its own.
    topic.try_publish(5_000).unwrap();
    gate.send(()).unwrap();
    within("blocked producer", move || producer.join().unwrap());
    engine.shutdown();
    let mut seen = log.snapshot();
    let pos = seen
        .iter()
        .position(|&v| v == 5_000)
        .expect("other thread's event");
    seen.remove(pos);
    assert_eq!(seen, (0..1_000).collect::<Vec<_>>());
}

#[test]
fn try_publish_is_all_or_nothing_across_lanes() {
    // Two workers, one subscriber each: two lanes. Block one of them.
    let engine = engine(2, pinbus::IdleStrategy::Park, 2);
    let topic = engine.topic::<u64>("two-lanes").unwrap();
    let blocked = Log::new();
    let free = Log::new();
    let gate = gate_subscriber(&topic, &blocked, 0);
    let f = free.clone();
    topic
        .subscribe_with(move |ev| f.push(**ev), SubscribeOptions::new().worker(1))
        .unwrap();
    let mut accepted = Vec::new();
    for i in 0..100u64 {
        match topic.try_publish(i) {
            Ok(()) => accepted.push(i),
            Err(e) => {
                assert!(e.is_full());
                assert_eq!(e.into_inner(), i);
            }
        }
    }
    drop(gate);
    engine.shutdown();
    // Both lanes got exactly the accepted events: a refused event reached
    // neither lane.
    assert_eq!(blocked.snapshot(), accepted);
    assert_eq!(free.snapshot(), accepted);
    assert!(accepted.len() < 100);
}

#[test]
fn publish_batch_under_fail_returns_what_did_not_fit() {
    let engine = engine(1, pinbus::IdleStrategy::Park, 8);
    let topic = engine
        .topic_with::<u64>(
            "batch-fail",
            TopicOptions::default().backpressure(Backpressure::Fail),
        )
        .unwrap();
    let log = Log::new();
    let gate = gate_subscriber(&topic, &log, 0);
    let err = topic.publish_batch(0..20u64).unwrap_err();
    let rest = match err {
        PublishError::Full(rest) => rest,
        other => panic!("expected Full, got {other}"),
    };
    assert!(!rest.is_empty() && rest.len() <= 12, "{} left", rest.len());
    let first_refused = 20 - rest.len() as u64;
    assert_eq!(rest, (first_refused..20).collect::<Vec<_>>());
    drop(gate);
    engine.shutdown();
    assert_eq!(log.snapshot(), (0..first_refused).collect::<Vec<_>>());
}

#[test]
fn publish_batch_larger_than_the_lane_blocks_and_completes() {
    let engine = engine(1, pinbus::IdleStrategy::Park, 4);
    let topic = engine.topic::<u64>("big-batch").unwrap();
    let log = Log::new();
    let l = log.clone();
    topic.subscribe(move |ev| l.push(**ev)).unwrap();
    let t = topic.clone();
    within("batch of 10k into capacity 4", move || {
        t.publish_batch(0..10_000u64).unwrap()
    });
    engine.shutdown();
    assert_eq!(log.snapshot(), (0..10_000).collect::<Vec<_>>());
}
