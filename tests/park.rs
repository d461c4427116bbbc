//! Guarantee 7: a parked worker is always woken by a publish to one of its
//! lanes (no lost wake-up). A lost wake-up shows as a hang, caught by a
//! watchdog.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use common::within;
use pinbus::{Engine, IdleStrategy, IdleTuning};

/// Workers that park as soon as they find nothing to do.
fn eager_parker(workers: usize) -> Engine {
    Engine::builder()
        .workers(workers)
        .idle(IdleStrategy::Park)
        .idle_tuning(IdleTuning {
            spins: 0,
            yields: 0,
            ..IdleTuning::default()
        })
        .lane_capacity(64)
        .build()
        .unwrap()
}

#[test]
fn every_publish_to_a_parked_worker_is_handled() {
    let engine = eager_parker(1);
    let topic = engine.topic::<u64>("wake").unwrap();
    let seen = Arc::new(AtomicU64::new(0));
    let s = seen.clone();
    topic
        .subscribe(move |_| {
            s.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    let t = topic.clone();
    within("2000 wake-ups", move || {
        for i in 0..2_000 {
            // Each round waits for the handler, so the worker parks between.
            t.publish_and_wait(i).unwrap();
        }
    });
    assert_eq!(seen.load(Ordering::SeqCst), 2_000);
    engine.shutdown();
}

#[test]
fn wake_ups_with_many_producers_and_workers() {
    let engine = Arc::new(eager_parker(2));
    let topics: Vec<_> = (0..2)
        .map(|i| {
            engine
                .topic_with::<u64>(
                    &format!("wake.{i}"),
                    pinbus::TopicOptions::default().worker(i),
                )
                .unwrap()
        })
        .collect();
    let seen = Arc::new(AtomicU64::new(0));
    for t in &topics {
        let s = seen.clone();
        t.subscribe(move |_| {
            s.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    }
    let producers: Vec<_> = (0..3)
        .map(|p| {
            let topics = topics.clone();
            std::thread::spawn(move || {
                for i in 0..3_000u64 {
                    topics[(i + p) as usize % 2].publish(i).unwrap();
                    if i % 64 == 0 {
                        // Give the workers time to fall asleep again.
                        std::thread::sleep(std::time::Duration::from_micros(50));
                    }
                }
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    let s = seen.clone();
    within("all events handled by parking workers", move || {
        while s.load(Ordering::SeqCst) < 9_000 {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    });
    let report = engine.shutdown();
    assert_eq!(report.handled, 9_000);
}

#[test]
fn a_subscription_change_wakes_a_parked_worker() {
    let engine = eager_parker(1);
    let topic = engine.topic::<u64>("wake-on-subscribe").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20)); // worker parks
    let t = topic.clone();
    within("subscribe + publish_and_wait", move || {
        let sub = t.subscribe(|_| {}).unwrap();
        t.publish_and_wait(1).unwrap();
        sub.unsubscribe(); // needs the parked worker to run the removal
    });
    engine.shutdown();
}
