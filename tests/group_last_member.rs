//! Guarantee 1, "unless that subscription is removed first", for groups:
//! when a group's last member leaves, the events queued for the group are
//! discarded (counted in the shutdown report's `discarded`, like a removed
//! subscription's), and their receipts complete.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use common::{engine, watchdog, PATIENCE};
use pinbus::IdleStrategy;

const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn receipts_complete_when_the_last_member_leaves_a_group_with_queued_events() {
    let _w = watchdog("last group member leaves with events queued", LIMIT);
    for idle in [IdleStrategy::Park, IdleStrategy::BusySpin] {
        let engine = engine(2, idle, 64);
        let topic = engine.topic::<u64>("slow").unwrap();
        let handled = Arc::new(AtomicU64::new(0));
        let (started_tx, started) = mpsc::channel();
        let h = handled.clone();
        let member = topic
            .group("g")
            .subscribe(move |_| {
                let _ = started_tx.send(());
                std::thread::sleep(Duration::from_millis(100)); // the point: slow
                h.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
        let receipts: Vec<_> = (0..10).map(|i| topic.publish_tracked(i).unwrap()).collect();
        started.recv_timeout(PATIENCE).expect("the member started");
        member.unsubscribe();
        let by_member = handled.load(Ordering::SeqCst);
        for (i, r) in receipts.iter().enumerate() {
            assert!(
                r.wait_timeout(Duration::from_secs(10)),
                "{idle:?}: receipt {i} never completed after the last member left"
            );
        }
        // No member, no lane: a later publish_and_wait returns.
        topic.publish_and_wait(99).unwrap();
        let report = engine.shutdown();
        assert!(report.complete);
        assert_eq!(handled.load(Ordering::SeqCst), by_member, "{idle:?}");
        assert!(by_member >= 1, "{idle:?}");
        assert_eq!(report.published, 11, "{idle:?}: {report:?}");
        assert_eq!(report.handled, by_member, "{idle:?}: {report:?}");
        assert_eq!(
            report.discarded,
            10 - by_member,
            "{idle:?}: the events nobody handled are counted as discarded: {report:?}"
        );
    }
}

#[test]
fn a_group_that_loses_one_of_two_members_keeps_every_event() {
    // The discarding is for the *last* member only: while one member
    // remains, every event is handled exactly once.
    let _w = watchdog("one of two group members leaves", LIMIT);
    let engine = engine(2, IdleStrategy::Park, 64);
    let topic = engine.topic::<u64>("slow").unwrap();
    let handled = Arc::new(AtomicU64::new(0));
    let h = handled.clone();
    let leaving = topic
        .group("g")
        .subscribe_with(
            move |_| {
                std::thread::sleep(Duration::from_millis(20));
                h.fetch_add(1, Ordering::SeqCst);
            },
            pinbus::SubscribeOptions::new().worker(0),
        )
        .unwrap();
    let h = handled.clone();
    topic
        .group("g")
        .subscribe_with(
            move |_| {
                h.fetch_add(1, Ordering::SeqCst);
            },
            pinbus::SubscribeOptions::new().worker(1),
        )
        .unwrap();
    let receipts: Vec<_> = (0..10).map(|i| topic.publish_tracked(i).unwrap()).collect();
    leaving.unsubscribe();
    for r in &receipts {
        assert!(r.wait_timeout(Duration::from_secs(10)));
    }
    let report = engine.shutdown();
    assert_eq!(handled.load(Ordering::SeqCst), 10);
    assert_eq!((report.handled, report.discarded), (10, 0), "{report:?}");
}
