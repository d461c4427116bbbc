//! Guarantee 1: every accepted event is handled exactly once by each
//! subscription live at publish time, and by exactly one member of each group;
//! shutdown drains.

mod common;

use std::collections::HashMap;

use common::{engine, Log, STRATEGIES};

#[test]
fn every_subscription_sees_every_event_once() {
    for idle in STRATEGIES {
        let engine = engine(2, idle, 64);
        let topic = engine.topic::<u64>("numbers").unwrap();
        let logs: Vec<Log<u64>> = (0..3).map(|_| Log::new()).collect();
        for (i, log) in logs.iter().enumerate() {
            let log = log.clone();
            // Spread subscriptions over both workers.
            topic
                .subscribe_with(
                    move |ev| log.push(**ev),
                    pinbus::SubscribeOptions::new().worker(i % 2),
                )
                .unwrap();
        }
        for i in 0..10_000 {
            topic.publish(i).unwrap();
        }
        let report = engine.shutdown();
        for log in &logs {
            assert_eq!(log.snapshot(), (0..10_000).collect::<Vec<_>>(), "{idle:?}");
        }
        assert_eq!(report.published, 10_000);
        assert_eq!(report.handled, 30_000);
        assert_eq!(report.failed + report.discarded, 0);
    }
}

#[test]
fn each_group_gets_each_event_exactly_once() {
    for idle in STRATEGIES {
        let engine = engine(2, idle, 32);
        let topic = engine.topic::<u64>("jobs").unwrap();
        let a = Log::new();
        let b = Log::new();
        let other = Log::new();
        for log in [&a, &b] {
            let log = log.clone();
            topic
                .group("workers")
                .subscribe(move |ev| log.push(**ev))
                .unwrap();
        }
        let o = other.clone();
        topic
            .group("audit")
            .subscribe(move |ev| o.push(**ev))
            .unwrap();
        let producers: Vec<_> = (0..3u64)
            .map(|p| {
                let t = topic.clone();
                std::thread::spawn(move || {
                    for i in 0..5_000u64 {
                        t.publish(p * 1_000_000 + i).unwrap();
                    }
                })
            })
            .collect();
        for p in producers {
            p.join().unwrap();
        }
        engine.shutdown();
        let mut seen: HashMap<u64, u32> = HashMap::new();
        for v in a.snapshot().into_iter().chain(b.snapshot()) {
            *seen.entry(v).or_default() += 1;
        }
        assert_eq!(seen.len(), 15_000, "{idle:?}");
        assert!(
            seen.values().all(|&n| n == 1),
            "{idle:?}: a group member saw a duplicate"
        );
        let mut audit = other.snapshot();
        audit.sort_unstable();
        audit.dedup();
        assert_eq!(audit.len(), 15_000, "{idle:?}");
    }
}

#[test]
fn shutdown_drains_everything_accepted() {
    let engine = engine(1, pinbus::IdleStrategy::Park, 1024);
    let topic = engine.topic::<u64>("slow").unwrap();
    let log = Log::new();
    let l = log.clone();
    topic
        .subscribe(move |ev| {
            if **ev % 100 == 0 {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            l.push(**ev)
        })
        .unwrap();
    for i in 0..1000 {
        topic.publish(i).unwrap();
    }
    // Shut down immediately: most events are still queued.
    let report = engine.shutdown();
    assert_eq!(log.len(), 1000);
    assert_eq!((report.published, report.handled), (1000, 1000));
    assert!(topic.publish(1).unwrap_err().is_closed());
}

#[test]
fn publishing_without_subscribers_is_accepted_and_counted() {
    let engine = engine(1, pinbus::IdleStrategy::Park, 8);
    let topic = engine.topic::<u64>("void").unwrap();
    for i in 0..100 {
        topic.publish(i).unwrap();
    }
    let report = engine.shutdown();
    assert_eq!((report.published, report.handled), (100, 0));
}

#[test]
fn many_topics_over_many_workers() {
    let engine = engine(3, pinbus::IdleStrategy::Park, 16);
    let logs: Vec<(pinbus::Topic<u32>, Log<u32>)> = (0..8)
        .map(|i| {
            let t = engine.topic::<u32>(&format!("t.{i}")).unwrap();
            let log = Log::new();
            let l = log.clone();
            t.subscribe(move |ev| l.push(**ev)).unwrap();
            (t, log)
        })
        .collect();
    for round in 0..500 {
        for (t, _) in &logs {
            t.publish(round).unwrap();
        }
    }
    engine.shutdown();
    for (_, log) in &logs {
        assert_eq!(log.snapshot(), (0..500).collect::<Vec<_>>());
    }
}
