//! Guarantee 5: a subscriber added before `publish()` starts receives that
//! event — and one added after a publish returned does not.

mod common;

use std::sync::mpsc;

use common::{engine, Log, STRATEGIES};

#[test]
fn a_subscriber_sees_everything_published_after_it_subscribed() {
    for idle in STRATEGIES {
        let engine = engine(2, idle, 64);
        let topic = engine.topic::<u64>("late-joiners").unwrap();
        let mut logs = Vec::new();
        for round in 0..40u64 {
            let log = Log::new();
            let l = log.clone();
            topic.subscribe(move |ev| l.push(**ev)).unwrap();
            topic.publish(round).unwrap();
            logs.push((round, log));
        }
        engine.shutdown();
        for (joined, log) in logs {
            assert_eq!(
                log.snapshot(),
                (joined..40).collect::<Vec<_>>(),
                "{idle:?}: subscriber {joined} saw the wrong events"
            );
        }
    }
}

#[test]
fn a_late_subscriber_does_not_see_events_still_queued_before_it() {
    // Block the worker so earlier events are still in the lane when the new
    // subscriber joins the same lane.
    let engine = engine(1, pinbus::IdleStrategy::Park, 64);
    let topic = engine.topic::<u64>("queued").unwrap();
    let (tx, rx) = mpsc::channel::<()>();
    let mut first = true;
    topic
        .subscribe(move |_| {
            if first {
                let _ = rx.recv();
                first = false;
            }
        })
        .unwrap();
    for i in 0..10 {
        topic.publish(i).unwrap();
    }
    let late = Log::new();
    let l = late.clone();
    topic.subscribe(move |ev| l.push(**ev)).unwrap();
    for i in 10..20 {
        topic.publish(i).unwrap();
    }
    tx.send(()).unwrap();
    engine.shutdown();
    assert_eq!(late.snapshot(), (10..20).collect::<Vec<_>>());
}

#[test]
fn subscribing_from_another_thread_before_publish_is_seen() {
    let engine = engine(1, pinbus::IdleStrategy::Park, 64);
    let topic = engine.topic::<u64>("cross-thread").unwrap();
    let log = Log::new();
    let (ready_tx, ready_rx) = mpsc::channel();
    let t = topic.clone();
    let l = log.clone();
    std::thread::spawn(move || {
        t.subscribe(move |ev| l.push(**ev)).unwrap();
        ready_tx.send(()).unwrap();
    });
    ready_rx.recv().unwrap();
    topic.publish(7).unwrap();
    engine.shutdown();
    assert_eq!(log.snapshot(), vec![7]);
}
