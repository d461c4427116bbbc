//! Delivery issue: delayed events (`publish_after`, `publish_at`) under a
//! `ManualClock`, cancellation, and the shutdown policies for pending timers.

mod common;

use std::time::{Duration, Instant};

use common::{eventually, Log, PATIENCE};
use pinbus::{Clock, Engine, ManualClock, PublishError, SystemClock, TimerShutdown};

fn manual(policy: TimerShutdown) -> (Engine, ManualClock) {
    let clock = ManualClock::new();
    let engine = Engine::builder()
        .workers(2)
        .clock(clock.clone())
        .timer_shutdown(policy)
        .build()
        .unwrap();
    (engine, clock)
}

#[test]
fn delays_fire_in_due_order_and_only_when_due() {
    let (engine, clock) = manual(TimerShutdown::FireAllNow);
    let topic = engine.topic::<(u64, u32)>("reminders").unwrap();
    let log = Log::new();
    let l = log.clone();
    topic.subscribe(move |ev| l.push(**ev)).unwrap();
    // Scheduled out of order; equal due times keep scheduling order.
    let delays_ms = [50u64, 10, 30, 10, 20, 50, 40, 10];
    for (i, &ms) in delays_ms.iter().enumerate() {
        topic
            .publish_after(Duration::from_millis(ms), (ms, i as u32))
            .unwrap();
    }
    topic
        .publish_at(clock.now() + Duration::from_millis(25), (25, 99))
        .unwrap();
    clock.advance(Duration::from_millis(9));
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(log.len(), 0, "nothing is due before 10 ms");
    clock.advance(Duration::from_millis(1));
    assert!(eventually(PATIENCE, || log.len() == 3));
    assert_eq!(log.snapshot(), [(10, 1), (10, 3), (10, 7)]);
    clock.advance(Duration::from_millis(40));
    assert!(eventually(PATIENCE, || log.len() == 9));
    assert_eq!(
        log.snapshot(),
        [
            (10, 1),
            (10, 3),
            (10, 7),
            (20, 4),
            (25, 99),
            (30, 2),
            (40, 6),
            (50, 0),
            (50, 5)
        ]
    );
    let report = engine.shutdown();
    assert_eq!((report.published, report.handled), (9, 9));
    assert_eq!((report.timers_fired, report.timers_dropped), (0, 0));
}

#[test]
fn cancel_gives_the_event_back_until_it_fires() {
    let (engine, clock) = manual(TimerShutdown::FireAllNow);
    let topic = engine.topic::<String>("cancellable").unwrap();
    let log = Log::new();
    let l = log.clone();
    topic.subscribe(move |ev| l.push((**ev).clone())).unwrap();
    let keep = topic
        .publish_after(Duration::from_secs(1), "keep".to_owned())
        .unwrap();
    let take_back = topic
        .publish_after(Duration::from_secs(1), "take back".to_owned())
        .unwrap();
    assert_eq!(take_back.cancel(), Some("take back".to_owned()));
    clock.advance(Duration::from_secs(1));
    assert!(eventually(PATIENCE, || log.len() == 1));
    assert_eq!(keep.cancel(), None, "already fired");
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(log.snapshot(), ["keep"]);
    assert_eq!(engine.shutdown().published, 1);
}

#[test]
fn a_past_due_time_fires_on_the_next_step() {
    let (engine, clock) = manual(TimerShutdown::FireAllNow);
    let topic = engine.topic::<u8>("late").unwrap();
    let log = Log::new();
    let l = log.clone();
    topic.subscribe(move |ev| l.push(**ev)).unwrap();
    let past = clock.now();
    clock.advance(Duration::from_secs(5));
    topic.publish_at(past, 1).unwrap();
    clock.advance(Duration::ZERO);
    assert!(eventually(PATIENCE, || log.len() == 1));
    engine.shutdown();
}

#[test]
fn each_shutdown_policy_accounts_for_every_pending_timer() {
    for policy in [
        TimerShutdown::FireAllNow,
        TimerShutdown::FireDue,
        TimerShutdown::Drop,
    ] {
        let (engine, clock) = manual(policy);
        let topic = engine.topic::<u32>("pending").unwrap();
        let log = Log::new();
        let l = log.clone();
        topic.subscribe(move |ev| l.push(**ev)).unwrap();
        // 3 due (at 1 ms, but the clock is not moved past them by a firing
        // step until shutdown), 4 far in the future.
        for i in 0..3 {
            topic.publish_after(Duration::from_millis(1), i).unwrap();
        }
        for i in 3..7 {
            topic.publish_after(Duration::from_secs(3600), i).unwrap();
        }
        clock.set(clock.now() + Duration::from_millis(1));
        assert!(eventually(PATIENCE, || log.len() == 3), "{policy:?}");
        // Now 1 more due-but-unfired cannot exist with a ManualClock (moves
        // fire at once), so FireDue fires nothing and drops the 4.
        let report = engine.shutdown();
        let (fired, dropped, handled) = match policy {
            TimerShutdown::FireAllNow => (4, 0, 7),
            TimerShutdown::FireDue | TimerShutdown::Drop => (0, 4, 3),
        };
        assert_eq!(
            (report.timers_fired, report.timers_dropped, report.handled),
            (fired, dropped, handled),
            "{policy:?}: {report:?}"
        );
        assert_eq!(log.len() as u64, handled);
        let closed = topic.publish_after(Duration::ZERO, 9);
        assert!(matches!(closed, Err(PublishError::Closed(9))), "{closed:?}");
    }
}

#[test]
fn system_clock_delays_fire_within_a_few_ticks() {
    let engine = Engine::builder().build().unwrap();
    let topic = engine.topic::<Instant>("wall").unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    topic
        .subscribe(move |ev| tx.send((**ev, Instant::now())).unwrap())
        .unwrap();
    let delay = Duration::from_millis(20);
    topic.publish_after(delay, SystemClock.now()).unwrap();
    let (sent, handled) = rx.recv_timeout(PATIENCE).unwrap();
    let waited = handled - sent;
    // Never early. (How late depends on this shared machine's scheduler:
    // the bound here is loose on purpose; benches report the real figure.)
    assert!(waited >= delay, "fired after {waited:?}");
    assert!(
        waited < delay + Duration::from_secs(2),
        "fired after {waited:?}"
    );
    engine.shutdown();
}
