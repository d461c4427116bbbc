//! Delivery issue: retries through the timer wheel, dead letters, slow
//! handlers. Time is a `ManualClock` wherever a test depends on it, so the
//! tests are deterministic and take no real waiting.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{eventually, manual_engine, Log, PATIENCE};
use pinbus::{
    Engine, ManualClock, RetryPolicy, SubscribeError, SubscribeOptions, Subscription, TimerShutdown,
};

fn wait_for(what: &str, sub: &Subscription, cond: impl Fn(pinbus::SubscriptionStats) -> bool) {
    assert!(
        eventually(PATIENCE, || cond(sub.stats())),
        "{what}: stats {:?}",
        sub.stats()
    );
}

#[test]
fn first_two_attempts_fail_then_every_event_is_handled() {
    let (engine, clock) = manual_engine(2);
    let topic = engine.topic::<u32>("flaky").unwrap();
    // event -> attempts seen
    let attempts: Arc<Mutex<BTreeMap<u32, Vec<u32>>>> = Arc::default();
    let seen = attempts.clone();
    let sub = topic
        .subscribe_with(
            move |ev| {
                seen.lock()
                    .unwrap()
                    .entry(**ev)
                    .or_default()
                    .push(ev.attempt());
                if ev.attempt() <= 2 {
                    Err(format!("attempt {} of {} fails", ev.attempt(), **ev))
                } else {
                    Ok(())
                }
            },
            SubscribeOptions::new().name("flaky-billing").retry(
                RetryPolicy::exponential(Duration::from_millis(10), Duration::from_secs(1))
                    .max_attempts(5),
            ),
        )
        .unwrap();
    for i in 0..100 {
        topic.publish(i).unwrap();
    }
    wait_for("first attempts failed", &sub, |s| s.retried == 100);
    // Not due yet: nothing is delivered again before the delay.
    // Handled/failed counts are published at the end of each batch.
    wait_for("first failures counted", &sub, |s| s.failed == 100);
    clock.advance(Duration::from_millis(9));
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(
        sub.stats().handled,
        0,
        "nothing is retried before its delay"
    );
    assert_eq!(sub.stats().failed, 100);
    clock.advance(Duration::from_millis(1)); // 10 ms: the first retries
    wait_for("second attempts failed", &sub, |s| s.retried == 200);
    clock.advance(Duration::from_millis(20)); // + 20 ms (factor 2): third attempts
    wait_for("third attempts handled", &sub, |s| {
        s.handled == 100 && s.failed == 200
    });
    let stats = sub.stats();
    assert_eq!((stats.failed, stats.dead_lettered), (200, 0));
    let attempts = attempts.lock().unwrap();
    assert_eq!(attempts.len(), 100);
    for (event, seen) in attempts.iter() {
        assert_eq!(seen, &[1, 2, 3], "event {event}");
    }
    let report = engine.shutdown();
    assert_eq!((report.handled, report.failed), (100, 200));
    assert_eq!((report.dead_letters, report.retries_dropped), (0, 0));
}

#[test]
fn a_failing_subscriber_does_not_hold_up_a_fresh_one() {
    // Real clock: the failing subscription retries every millisecond, 20
    // attempts per event, while a fresh subscription on the same worker and
    // lane must get every new event, in order.
    let engine = Engine::builder().workers(1).build().unwrap();
    let topic = engine.topic::<u64>("busy").unwrap();
    let failures = Arc::new(AtomicU64::new(0));
    let f = failures.clone();
    let bad = topic
        .subscribe_with(
            move |_| {
                f.fetch_add(1, Ordering::Relaxed);
                Err::<(), _>("downstream is down")
            },
            SubscribeOptions::new()
                .retry(RetryPolicy::fixed(Duration::from_millis(1)).max_attempts(20)),
        )
        .unwrap();
    for i in 0..50 {
        topic.publish(i).unwrap();
    }
    // The bad subscriber is now failing repeatedly; a fresh one arrives.
    assert!(eventually(PATIENCE, || failures.load(Ordering::Relaxed) >= 100));
    let fresh = Log::new();
    let log = fresh.clone();
    topic.subscribe(move |ev| log.push(**ev)).unwrap();
    for i in 50..2_050 {
        topic.publish(i).unwrap();
    }
    assert!(eventually(PATIENCE, || fresh.len() == 2_000));
    assert_eq!(fresh.snapshot(), (50..2_050).collect::<Vec<_>>());
    wait_for("every event dead-lettered", &bad, |s| {
        s.dead_lettered == 2_050
    });
    assert_eq!(failures.load(Ordering::Relaxed), 2_050 * 20);
    assert_eq!(topic.dead_letter_count(), 2_050);
    let report = engine.shutdown();
    assert_eq!(report.dead_letters, 2_050);
}

#[test]
fn last_attempt_gives_exactly_one_dead_letter_with_its_fields() {
    let (engine, clock) = manual_engine(1);
    let topic = engine.topic::<u32>("payments").unwrap();
    let letters = Log::new();
    let l = letters.clone();
    topic
        .dead_letters()
        .unwrap()
        .subscribe(move |dl| l.push((**dl).clone()))
        .unwrap();
    let sub = topic
        .subscribe_with(
            |ev| Err::<(), _>(format!("card declined for {}", **ev)),
            SubscribeOptions::new()
                .name("charge-card")
                .retry(RetryPolicy::fixed(Duration::from_millis(5)).max_attempts(3)),
        )
        .unwrap();
    let start = clock.now();
    for i in 0..50 {
        topic.publish(i).unwrap();
    }
    wait_for("first failures", &sub, |s| s.retried == 50);
    clock.advance(Duration::from_millis(5));
    wait_for("second failures", &sub, |s| s.retried == 100);
    clock.advance(Duration::from_millis(5));
    wait_for("dead-lettered", &sub, |s| s.dead_lettered == 50);
    assert!(eventually(PATIENCE, || letters.len() == 50));
    let letters = letters.snapshot();
    let mut by_event: HashMap<u32, usize> = HashMap::new();
    for dl in &letters {
        *by_event.entry(*dl.event()).or_default() += 1;
        assert_eq!(dl.attempts(), 3);
        assert_eq!(dl.error(), format!("card declined for {}", dl.event()));
        assert_eq!(dl.topic(), "payments");
        assert_eq!(dl.subscription(), "charge-card");
        assert!(dl.trace_id().is_valid());
        assert_eq!(dl.failed_at(), start + Duration::from_millis(10));
    }
    assert_eq!(by_event.len(), 50, "one letter per event");
    assert!(by_event.values().all(|&n| n == 1));
    let seqs: std::collections::HashSet<u64> = letters.iter().map(|d| d.seq()).collect();
    assert_eq!(seqs.len(), 50);
    // Nothing more: no further attempts after the last.
    wait_for("every attempt counted", &sub, |s| s.failed == 150);
    clock.advance(Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(sub.stats().failed, 150, "no attempt after the last");
    assert_eq!(topic.take_dead_letters().len(), 0, "published, not kept");
    engine.shutdown();
}

#[test]
fn dead_letters_without_a_subscriber_are_kept_and_counted() {
    let engine = Engine::builder().build().unwrap();
    let topic = engine.topic::<String>("mail").unwrap();
    topic
        .subscribe_with(
            |_| -> Result<(), &'static str> { panic!("template missing") },
            SubscribeOptions::new()
                .name("render")
                .retry(RetryPolicy::never()),
        )
        .unwrap();
    std::panic::set_hook(Box::new(|_| {}));
    for i in 0..3 {
        topic.publish_and_wait(format!("m{i}")).unwrap();
    }
    let _ = std::panic::take_hook();
    let kept = topic.take_dead_letters();
    assert_eq!(kept.len(), 3);
    assert_eq!(kept[0].event(), "m0");
    assert_eq!(kept[0].error(), "handler panicked: template missing");
    assert_eq!(topic.dead_letter_count(), 3);
    assert_eq!(topic.dead_letters_kept(), 0);
    let report = engine.shutdown();
    assert_eq!((report.dead_letters, report.panicked), (3, 3));
}

#[test]
fn group_members_retry_on_their_own_worker() {
    let (engine, clock) = manual_engine(2);
    let topic = engine.topic::<u32>("jobs").unwrap();
    let done = Log::new();
    let group = topic.group("runners");
    let mut subs = Vec::new();
    for _ in 0..2 {
        let d = done.clone();
        subs.push(
            group
                .subscribe_with(
                    move |ev| {
                        if ev.attempt() == 1 {
                            return Err("first try fails");
                        }
                        d.push(**ev);
                        Ok(())
                    },
                    SubscribeOptions::new()
                        .retry(RetryPolicy::fixed(Duration::from_millis(1)).max_attempts(2)),
                )
                .unwrap(),
        );
    }
    for i in 0..200 {
        topic.publish(i).unwrap();
    }
    assert!(eventually(PATIENCE, || subs
        .iter()
        .map(|s| s.stats().retried)
        .sum::<u64>()
        == 200));
    clock.advance(Duration::from_millis(1));
    assert!(eventually(PATIENCE, || done.len() == 200));
    let mut all = done.snapshot();
    all.sort_unstable();
    assert_eq!(all, (0..200).collect::<Vec<_>>(), "exactly once per group");
    engine.shutdown();
}

#[test]
fn shutdown_policies_decide_pending_retries() {
    for policy in [
        TimerShutdown::FireAllNow,
        TimerShutdown::FireDue,
        TimerShutdown::Drop,
    ] {
        let clock = ManualClock::new();
        let engine = Engine::builder()
            .clock(clock.clone())
            .timer_shutdown(policy)
            .build()
            .unwrap();
        let topic = engine.topic::<u32>("retry-at-exit").unwrap();
        let sub = topic
            .subscribe_with(
                |ev| {
                    if ev.attempt() < 2 {
                        Err("not yet")
                    } else {
                        Ok(())
                    }
                },
                SubscribeOptions::new()
                    .retry(RetryPolicy::fixed(Duration::from_secs(60)).max_attempts(2)),
            )
            .unwrap();
        for i in 0..10 {
            topic.publish(i).unwrap();
        }
        wait_for("retries pending", &sub, |s| s.retried == 10);
        let report = engine.shutdown();
        match policy {
            TimerShutdown::FireAllNow => {
                assert_eq!(
                    (report.handled, report.timers_fired),
                    (10, 10),
                    "{report:?}"
                );
                assert_eq!(report.retries_dropped, 0);
            }
            _ => {
                assert_eq!(report.handled, 0, "{policy:?}");
                assert_eq!((report.timers_dropped, report.retries_dropped), (10, 10));
            }
        }
        assert_eq!(report.failed, 10);
    }
}

#[test]
fn slow_handlers_are_counted() {
    let engine = Engine::builder().build().unwrap();
    let topic = engine.topic::<u64>("slowpoke").unwrap();
    let sub = topic
        .subscribe_with(
            |ev| {
                if **ev % 2 == 0 {
                    std::thread::sleep(Duration::from_millis(30));
                }
            },
            SubscribeOptions::new().slow_threshold(Duration::from_millis(10)),
        )
        .unwrap();
    for i in 0..6 {
        topic.publish_and_wait(i).unwrap();
    }
    // Handled counts are published at the end of the worker's batch.
    wait_for("all handled", &sub, |s| s.handled == 6);
    let stats = sub.stats();
    // Three calls sleep 30 ms; the others return at once (a loaded machine
    // could stretch one past 10 ms, never shorten a sleep).
    assert!(stats.slow >= 3, "{stats:?}");
    engine.shutdown();
}

#[test]
fn bad_retry_policies_are_refused_with_the_reason() {
    let engine = Engine::builder().build().unwrap();
    let topic = engine.topic::<u8>("policy").unwrap();
    let cases = [
        (RetryPolicy::never().max_attempts(0), "max_attempts"),
        (
            RetryPolicy::fixed(Duration::from_millis(1)).factor(0.5),
            "factor",
        ),
        (
            RetryPolicy::fixed(Duration::from_millis(1)).jitter(2.0),
            "jitter",
        ),
        (
            RetryPolicy::exponential(Duration::from_secs(5), Duration::from_secs(1)),
            "initial delay",
        ),
    ];
    for (policy, key) in cases {
        let err = topic
            .subscribe_with(|_| (), SubscribeOptions::new().retry(policy))
            .unwrap_err();
        assert!(
            matches!(err, SubscribeError::InvalidRetry { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains(key), "{err}");
    }
    // The dead-letter name taken by another type.
    engine.topic::<String>("typed.dead_letters").unwrap();
    let typed = engine.topic::<u8>("typed").unwrap();
    let err = typed
        .subscribe_with(|_| (), SubscribeOptions::new().retry(RetryPolicy::never()))
        .unwrap_err();
    assert!(
        matches!(err, SubscribeError::DeadLetterTopic { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("typed.dead_letters"), "{err}");
}
