//! Receipts: `publish_tracked` completes when every subscription live at
//! publish time has handled the event; `publish_and_wait` waits for that.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use common::{engine, Log};
use pinbus::SubscribeOptions;

#[test]
fn a_receipt_completes_after_every_lane_handled_the_event() {
    let engine = engine(2, pinbus::IdleStrategy::Park, 16);
    let topic = engine.topic::<u64>("tracked").unwrap();
    let (tx, rx) = mpsc::channel::<()>();
    let slow_done = Arc::new(AtomicU64::new(0));
    let sd = slow_done.clone();
    topic
        .subscribe_with(
            move |_| {
                let _ = rx.recv();
                sd.fetch_add(1, Ordering::SeqCst);
            },
            SubscribeOptions::new().worker(0),
        )
        .unwrap();
    let fast = Log::new();
    let f = fast.clone();
    topic
        .subscribe_with(move |ev| f.push(**ev), SubscribeOptions::new().worker(1))
        .unwrap();
    topic.group("g").subscribe(|_| {}).unwrap();

    let receipt = topic.publish_tracked(42).unwrap();
    assert!(
        !receipt.wait_timeout(Duration::from_millis(50)),
        "slow lane still busy"
    );
    assert!(!receipt.is_complete());
    tx.send(()).unwrap();
    assert!(receipt.wait_timeout(Duration::from_secs(30)));
    assert!(receipt.is_complete());
    receipt.wait().unwrap();
    // Completion implies the handlers' effects are visible.
    assert_eq!(slow_done.load(Ordering::SeqCst), 1);
    assert_eq!(fast.snapshot(), vec![42]);
    let clone = receipt.clone();
    assert!(clone.is_complete());
    drop(tx);
    engine.shutdown();
}

#[test]
fn without_subscribers_a_receipt_is_complete_at_once() {
    let engine = engine(1, pinbus::IdleStrategy::Park, 16);
    let topic = engine.topic::<u64>("nobody").unwrap();
    let receipt = topic.publish_tracked(1).unwrap();
    assert!(receipt.is_complete());
    topic.publish_and_wait(2).unwrap();
    engine.shutdown();
}

#[test]
fn publish_and_wait_sees_the_handlers_effects() {
    let engine = engine(2, pinbus::IdleStrategy::Park, 16);
    let topic = engine.topic::<u64>("sync").unwrap();
    let total = Arc::new(AtomicU64::new(0));
    for w in 0..2 {
        let t = total.clone();
        topic
            .subscribe_with(
                move |ev| {
                    t.fetch_add(**ev, Ordering::Relaxed);
                },
                SubscribeOptions::new().worker(w),
            )
            .unwrap();
    }
    for i in 1..=100u64 {
        topic.publish_and_wait(i).unwrap();
        assert_eq!(total.load(Ordering::Relaxed), i * (i + 1)); // 2 subscribers
    }
    engine.shutdown();
}

#[test]
fn a_failing_handler_still_completes_the_receipt() {
    std::panic::set_hook(Box::new(|_| {}));
    let engine = engine(1, pinbus::IdleStrategy::Park, 16);
    let topic = engine.topic::<u64>("fails").unwrap();
    topic
        .subscribe(|_| -> Result<(), &'static str> { Err("nope") })
        .unwrap();
    topic.subscribe(|_| -> () { panic!("boom") }).unwrap();
    let r = topic.publish_tracked(1).unwrap();
    assert!(r.wait_timeout(Duration::from_secs(30)));
    let report = engine.shutdown();
    let _ = std::panic::take_hook();
    assert_eq!((report.failed, report.panicked), (2, 1));
}

#[test]
fn with_a_retry_policy_the_receipt_waits_for_the_last_attempt_or_the_dead_letter() {
    use pinbus::RetryPolicy;
    let (engine, clock) = common::manual_engine(1);
    let topic = engine.topic::<u32>("tracked.retry").unwrap();
    // Event 1 succeeds on its second attempt; event 2 never does.
    let sub = topic
        .subscribe_with(
            |ev: &pinbus::Event<u32>| {
                if **ev == 2 || ev.attempt() == 1 {
                    Err("not yet")
                } else {
                    Ok(())
                }
            },
            SubscribeOptions::new()
                .retry(RetryPolicy::fixed(Duration::from_millis(10)).max_attempts(2)),
        )
        .unwrap();
    let first = topic.publish_tracked(1).unwrap();
    let second = topic.publish_tracked(2).unwrap();
    assert!(common::eventually(common::PATIENCE, || sub.stats().retried == 2));
    // Both first attempts failed and wait in the wheel: not complete.
    assert!(!first.is_complete() && !second.is_complete());
    clock.advance(Duration::from_millis(10));
    assert!(first.wait_timeout(common::PATIENCE), "retry succeeded");
    assert!(second.wait_timeout(common::PATIENCE), "dead-lettered");
    assert!(common::eventually(common::PATIENCE, || sub
        .stats()
        .dead_lettered
        == 1));
    engine.shutdown();
    assert_eq!(topic.take_dead_letters().len(), 1);
}

#[test]
fn a_retry_dropped_at_shutdown_releases_its_receipt() {
    use pinbus::{Engine, IdleStrategy, ManualClock, RetryPolicy, TimerShutdown};
    let clock = ManualClock::new();
    let engine = Engine::builder()
        .workers(1)
        .idle(IdleStrategy::Park)
        .clock(clock)
        .timer_shutdown(TimerShutdown::Drop)
        .build()
        .unwrap();
    let topic = engine.topic::<u32>("tracked.drop").unwrap();
    let sub = topic
        .subscribe_with(
            |_: &pinbus::Event<u32>| Err::<(), _>("always"),
            SubscribeOptions::new().retry(RetryPolicy::fixed(Duration::from_secs(60))),
        )
        .unwrap();
    let r = topic.publish_tracked(1).unwrap();
    assert!(common::eventually(common::PATIENCE, || sub.stats().retried == 1));
    assert!(!r.is_complete());
    let report = engine.shutdown();
    assert_eq!(report.retries_dropped, 1);
    assert!(r.is_complete(), "nothing holds the receipt after shutdown");
}

/// A timestamped event's receipt share travels in the lane's side queue
/// (the stamp's spare bits hold the publish time), which holds fewer entries
/// than a large lane: more tracked events than it holds wait for room
/// (`Block`) or come back (`Fail`, `try_publish`), none is lost, and every
/// receipt completes once the handler runs again.
#[test]
fn more_tracked_events_than_the_side_queue_holds_wait_or_come_back() {
    tracked_burst(true);
}

/// Without publish times a receipt share rides in the event's slot stamp:
/// the side queue's room does not bound tracked events, the lane's does.
#[test]
fn untimestamped_tracked_events_are_bounded_by_the_lane_only() {
    tracked_burst(false);
}

/// 2,000 tracked events into a 4,096-slot lane whose handler is held in
/// its first call; with `timestamps`, more than the side queue holds.
fn tracked_burst(timestamps: bool) {
    for backpressure in [pinbus::Backpressure::Fail, pinbus::Backpressure::Block] {
        let engine = engine(1, pinbus::IdleStrategy::Park, 4096);
        let topic = engine
            .topic_with::<u64>(
                "tracked.many",
                pinbus::TopicOptions::default()
                    .backpressure(backpressure)
                    .timestamps(timestamps),
            )
            .unwrap();
        let (release, gate) = mpsc::channel::<()>();
        let handled = Arc::new(AtomicU64::new(0));
        let h = handled.clone();
        let mut first = true;
        topic
            .subscribe(move |_| {
                if std::mem::take(&mut first) {
                    let _ = gate.recv();
                }
                h.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
        const N: u64 = 2_000;
        let t = topic.clone();
        let publisher = std::thread::spawn(move || {
            let mut receipts = Vec::new();
            let mut refused = 0;
            for i in 0..N {
                match t.publish_tracked(i) {
                    Ok(r) => receipts.push(r),
                    Err(pinbus::PublishError::Full(v)) => {
                        assert_eq!(v, i, "the refused event comes back");
                        refused += 1;
                    }
                    Err(e) => panic!("unexpected {e:?}"),
                }
            }
            (receipts, refused)
        });
        if backpressure == pinbus::Backpressure::Fail {
            let (receipts, refused) = publisher.join().unwrap();
            if timestamps {
                assert!(refused > 0, "the side queue filled before the lane did");
                assert!(receipts.len() < 4096, "fewer than the lane holds");
            } else {
                assert_eq!((receipts.len() as u64, refused), (N, 0), "all fit the lane");
            }
            release.send(()).unwrap();
            for r in &receipts {
                assert!(r.wait_timeout(Duration::from_secs(10)));
            }
            assert_eq!(handled.load(Ordering::SeqCst), receipts.len() as u64);
        } else {
            // The publisher waits for room; releasing the handler lets it on.
            std::thread::sleep(Duration::from_millis(50));
            release.send(()).unwrap();
            let (receipts, refused) = publisher.join().unwrap();
            assert_eq!((receipts.len() as u64, refused), (N, 0));
            for r in &receipts {
                assert!(r.wait_timeout(Duration::from_secs(10)));
            }
            assert_eq!(handled.load(Ordering::SeqCst), N);
        }
        engine.shutdown();
    }
}
