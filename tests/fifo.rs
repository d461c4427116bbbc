//! Guarantee 2: events from one producer on one topic reach every (plain)
//! subscriber in publish order.

mod common;

use common::{engine, Log, STRATEGIES};
use pinbus::SubscribeOptions;

/// Checks that, per producer, the values a subscriber saw are strictly
/// increasing and complete.
fn assert_per_producer_order(seen: &[(u64, u64)], producers: u64, per_producer: u64) {
    let mut next = vec![0u64; producers as usize];
    for &(p, i) in seen {
        assert_eq!(
            i, next[p as usize],
            "producer {p}: expected {} got {i}",
            next[p as usize]
        );
        next[p as usize] += 1;
    }
    assert!(
        next.iter().all(|&n| n == per_producer),
        "incomplete: {next:?}"
    );
}

#[test]
fn per_producer_order_holds_for_every_subscriber() {
    for idle in STRATEGIES {
        let engine = engine(2, idle, 16);
        let topic = engine.topic::<(u64, u64)>("ordered").unwrap();
        let logs: Vec<Log<(u64, u64)>> = (0..3).map(|_| Log::new()).collect();
        for (i, log) in logs.iter().enumerate() {
            let log = log.clone();
            topic
                .subscribe_with(
                    move |ev| log.push(**ev),
                    SubscribeOptions::new().worker(i % 2),
                )
                .unwrap();
        }
        let producers: Vec<_> = (0..4u64)
            .map(|p| {
                let t = topic.clone();
                std::thread::spawn(move || {
                    for i in 0..5_000 {
                        t.publish((p, i)).unwrap();
                    }
                })
            })
            .collect();
        for p in producers {
            p.join().unwrap();
        }
        engine.shutdown();
        for log in &logs {
            assert_per_producer_order(&log.snapshot(), 4, 5_000);
        }
    }
}

#[test]
fn order_holds_across_batches_and_single_publishes() {
    let engine = engine(1, pinbus::IdleStrategy::Park, 8);
    let topic = engine.topic::<(u64, u64)>("mixed").unwrap();
    let log = Log::new();
    let l = log.clone();
    topic.subscribe(move |ev| l.push(**ev)).unwrap();
    let mut i = 0;
    while i < 3_000 {
        if i % 7 == 0 {
            topic.publish((0, i)).unwrap();
            i += 1;
        } else {
            let n = (i % 5) + 1;
            topic.publish_batch((i..i + n).map(|v| (0, v))).unwrap();
            i += n;
        }
    }
    engine.shutdown();
    assert_per_producer_order(&log.snapshot(), 1, i);
}

#[test]
fn a_shared_handle_keeps_each_threads_order() {
    // One `Topic` shared by reference between threads (it is Sync).
    let engine = engine(1, pinbus::IdleStrategy::Park, 32);
    let topic = engine.topic::<(u64, u64)>("shared-handle").unwrap();
    let log = Log::new();
    let l = log.clone();
    topic.subscribe(move |ev| l.push(**ev)).unwrap();
    std::thread::scope(|s| {
        for p in 0..3u64 {
            let topic = &topic;
            s.spawn(move || {
                for i in 0..4_000 {
                    topic.publish((p, i)).unwrap();
                }
            });
        }
    });
    engine.shutdown();
    assert_per_producer_order(&log.snapshot(), 3, 4_000);
}

#[test]
fn more_producer_threads_than_dedicated_slots_still_keep_order() {
    // 2 dedicated slots, 5 producer threads: 3 share the locked slot.
    let engine = pinbus::Engine::builder()
        .workers(1)
        .producer_slots(2)
        .lane_capacity(16)
        .build()
        .unwrap();
    let topic = engine.topic::<(u64, u64)>("crowded").unwrap();
    let log = Log::new();
    let l = log.clone();
    topic.subscribe(move |ev| l.push(**ev)).unwrap();
    std::thread::scope(|s| {
        for p in 0..5u64 {
            let topic = topic.clone();
            s.spawn(move || {
                for i in 0..3_000 {
                    topic.publish((p, i)).unwrap();
                }
            });
        }
    });
    engine.shutdown();
    assert_per_producer_order(&log.snapshot(), 5, 3_000);
}
