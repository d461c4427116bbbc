//! loom models of lane retirement racing a publish: the last subscription
//! of a worker's lane (or a group's last member) leaves while a producer
//! publishes a tracked event. The lane is retired, and its drain removed
//! once no publish can reach it; whichever way the race goes, the receipt
//! completes, and the event is handled, or discarded from the retired lane,
//! or (published after the retirement) in no lane — never twice.
#![cfg(loom)]

mod common;

use common::tiny_engine;
use loom::sync::atomic::{AtomicU64, Ordering};
use loom::sync::Arc;
use loom::thread;

#[test]
fn retire_worker_lane_racing_tracked_publish() {
    loom::model(|| {
        // One worker, one subscription: unsubscribing retires the lane.
        let engine = tiny_engine(1, 2);
        let topic = engine.topic::<u32>("retire").unwrap();
        let calls = Arc::new(AtomicU64::new(0));
        let c = calls.clone();
        let leaving = topic
            .subscribe(move |_| {
                c.fetch_add(1, Ordering::Relaxed);
            })
            .unwrap();
        let t = topic.clone();
        let producer = thread::spawn(move || t.publish_tracked(7).unwrap());
        leaving.unsubscribe();
        let receipt = producer.join().unwrap();
        receipt.wait().unwrap();
        let report = engine.shutdown();
        assert_eq!(report.published, 1);
        assert!(
            report.handled + report.discarded <= 1,
            "handled or discarded, at most once: {report:?}"
        );
        assert_eq!(report.handled, calls.load(Ordering::Relaxed), "{report:?}");
    });
}

#[test]
fn retire_group_lane_racing_tracked_publish() {
    loom::model(|| {
        // A group's only member leaves: the group and its lane go.
        let engine = tiny_engine(1, 2);
        let topic = engine.topic::<u32>("retire.group").unwrap();
        let calls = Arc::new(AtomicU64::new(0));
        let c = calls.clone();
        let leaving = topic
            .group("g")
            .subscribe(move |_| {
                c.fetch_add(1, Ordering::Relaxed);
            })
            .unwrap();
        let t = topic.clone();
        let producer = thread::spawn(move || t.publish_tracked(7).unwrap());
        leaving.unsubscribe();
        let receipt = producer.join().unwrap();
        receipt.wait().unwrap();
        let report = engine.shutdown();
        assert_eq!(report.published, 1);
        assert!(
            report.handled + report.discarded <= 1,
            "handled or discarded, at most once: {report:?}"
        );
        assert_eq!(report.handled, calls.load(Ordering::Relaxed), "{report:?}");
    });
}
