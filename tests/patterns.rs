//! Wildcard pattern subscriptions (`Engine::pattern`): NATS subject
//! semantics from the matcher the bridge uses (one shared table of edge
//! cases), existing and later topics, guarantee 5 for a topic created after
//! the subscription, type mismatches counted, one group across topics,
//! unsubscribe (guarantee 4), bad syntax, internal topics never matched,
//! retries and dead letters per matching topic (an `Err` or a panic, for a
//! pattern subscription and a pattern group member).

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::Duration;

use common::{eventually, Log, PATIENCE};
use pinbus::{
    Engine, IdleStrategy, RetryPolicy, SubscribeError, SubscribeOptions, Subscription,
    SubscriptionStats, TopicError,
};

// The table `event::subject` and `nats::subject` test against, too.
#[allow(dead_code)]
mod cases {
    include!("../src/event/subject_cases.rs");
}
use cases::{INVALID_PATTERNS, MATCH_CASES};

fn engine(workers: usize) -> Engine {
    Engine::builder()
        .workers(workers)
        .idle(IdleStrategy::Park)
        .lane_capacity(1024)
        .build()
        .unwrap()
}

/// Every case of the shared table, through the engine: a topic named by the
/// case's subject is delivered to the case's pattern exactly when the
/// matcher says so.
#[test]
fn matcher_edge_cases_hold_for_subscriptions() {
    for (i, &(filter, subject, expected)) in MATCH_CASES.iter().enumerate() {
        let engine = engine(1);
        let log = Log::new();
        let l = log.clone();
        let sub = engine
            .pattern::<u64>(filter)
            .unwrap()
            .subscribe(move |ev| l.push((ev.topic().to_owned(), **ev)))
            .unwrap();
        let topic = engine.topic::<u64>(subject).unwrap();
        topic.publish_and_wait(i as u64).unwrap();
        let want = if expected {
            vec![(subject.to_owned(), i as u64)]
        } else {
            vec![]
        };
        assert_eq!(
            log.snapshot(),
            want,
            "pattern {filter:?} vs topic {subject:?}"
        );
        sub.unsubscribe();
    }
}

#[test]
fn existing_and_later_topics_are_delivered_with_their_names() {
    let engine = engine(2);
    let before = engine.topic::<u32>("orders.created").unwrap();
    let other = engine.topic::<u32>("payments.created").unwrap();
    let log = Log::new();
    let l = log.clone();
    let sub = engine
        .pattern::<u32>("orders.>")
        .unwrap()
        .subscribe(move |ev| l.push((ev.topic().to_owned(), **ev)))
        .unwrap();
    let after = engine.topic::<u32>("orders.eu.shipped").unwrap();
    before.publish_and_wait(1).unwrap();
    after.publish_and_wait(2).unwrap();
    other.publish_and_wait(3).unwrap();
    before.publish_and_wait(4).unwrap();
    assert_eq!(
        log.snapshot(),
        [
            ("orders.created".to_owned(), 1),
            ("orders.eu.shipped".to_owned(), 2),
            ("orders.created".to_owned(), 4),
        ]
    );
    assert_eq!(sub.topic(), "orders.>");
    assert!(eventually(PATIENCE, || sub.stats().handled == 3));
    // Metrics list one part per matching topic.
    let parts = engine.metrics().subscriptions;
    let mut topics: Vec<_> = parts.iter().map(|s| s.topic.as_str()).collect();
    topics.sort();
    assert_eq!(topics, ["orders.created", "orders.eu.shipped"]);
}

#[test]
fn the_handler_runs_on_one_worker_for_all_topics() {
    let engine = engine(2);
    let threads = Arc::new(Mutex::new(Vec::<ThreadId>::new()));
    let t = threads.clone();
    engine
        .pattern::<u32>("t.*")
        .unwrap()
        .subscribe(move |_| t.lock().unwrap().push(std::thread::current().id()))
        .unwrap();
    for name in ["t.a", "t.b", "t.c", "t.d"] {
        engine
            .topic::<u32>(name)
            .unwrap()
            .publish_and_wait(0)
            .unwrap();
    }
    let threads = threads.lock().unwrap();
    assert_eq!(threads.len(), 4);
    assert!(threads.iter().all(|t| *t == threads[0]));
}

/// Guarantee 5: subscribed before a publish starts, on a topic created
/// after the subscription, from another thread racing to open it.
#[test]
fn subscribed_before_publish_sees_it_on_later_topics() {
    for round in 0..50u64 {
        let engine = Arc::new(engine(2));
        let seen = Arc::new(AtomicU64::new(0));
        let s = seen.clone();
        let _sub = engine
            .pattern::<u64>("race.*")
            .unwrap()
            .subscribe(move |_| {
                s.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
        let publishers: Vec<_> = (0..2)
            .map(|p| {
                let engine = engine.clone();
                std::thread::spawn(move || {
                    let topic = engine.topic::<u64>(&format!("race.{}", round % 3)).unwrap();
                    topic.publish_and_wait(p).unwrap();
                })
            })
            .collect();
        for p in publishers {
            p.join().unwrap();
        }
        assert_eq!(seen.load(Ordering::SeqCst), 2, "round {round}");
    }
}

#[test]
fn another_type_is_not_delivered_and_is_counted() {
    let engine = engine(1);
    let strings = engine.topic::<String>("orders.text").unwrap();
    let log = Log::new();
    let l = log.clone();
    engine
        .pattern::<u32>("orders.*")
        .unwrap()
        .subscribe(move |ev| l.push(**ev))
        .unwrap();
    assert_eq!(engine.metrics().pattern_type_mismatches, 1);
    let later = engine.topic::<String>("orders.later").unwrap();
    assert_eq!(engine.metrics().pattern_type_mismatches, 2);
    let numbers = engine.topic::<u32>("orders.numbers").unwrap();
    strings.publish_and_wait("a".into()).unwrap();
    later.publish_and_wait("b".into()).unwrap();
    numbers.publish_and_wait(7).unwrap();
    assert_eq!(log.snapshot(), [7]);
    assert_eq!(engine.metrics().pattern_type_mismatches, 2);
}

/// A pattern group spans topics: every event of every matching topic goes
/// to exactly one member.
#[test]
fn a_pattern_group_takes_each_event_once_across_members_and_topics() {
    let engine = engine(2);
    let early = engine.topic::<u64>("jobs.early").unwrap();
    let group = engine.pattern::<u64>("jobs.>").unwrap().group("audit");
    let logs: Vec<Log<(String, u64)>> = (0..3).map(|_| Log::new()).collect();
    let subs: Vec<_> = logs
        .iter()
        .map(|log| {
            let l = log.clone();
            group
                .subscribe(move |ev| l.push((ev.topic().to_owned(), **ev)))
                .unwrap()
        })
        .collect();
    let late = engine.topic::<u64>("jobs.late.x").unwrap();
    let plain = Log::new();
    let p = plain.clone();
    // A plain pattern subscription alongside still sees everything.
    engine
        .pattern::<u64>("jobs.*")
        .unwrap()
        .subscribe(move |ev| p.push(**ev))
        .unwrap();
    for i in 0..200 {
        early.publish(i).unwrap();
        late.publish(1000 + i).unwrap();
    }
    let total = || logs.iter().map(Log::len).sum::<usize>();
    assert!(eventually(PATIENCE, || total() == 400), "got {}", total());
    let mut all: Vec<(String, u64)> = logs.iter().flat_map(Log::snapshot).collect();
    all.sort();
    let mut want: Vec<(String, u64)> = (0..200)
        .map(|i| ("jobs.early".to_owned(), i))
        .chain((0..200).map(|i| ("jobs.late.x".to_owned(), 1000 + i)))
        .collect();
    want.sort();
    assert_eq!(all, want, "each event exactly once across the members");
    // "jobs.*" matches jobs.early only.
    assert!(eventually(PATIENCE, || plain.len() == 200));
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(plain.len(), 200);
    for s in subs {
        s.unsubscribe();
    }
    engine.shutdown();
}

#[test]
fn bad_syntax_is_a_topic_error_saying_what_is_wrong() {
    let engine = engine(1);
    for &(pattern, words) in INVALID_PATTERNS {
        match engine.pattern::<u32>(pattern) {
            Err(e @ TopicError::InvalidPattern { .. }) => {
                assert!(e.to_string().contains(words), "{pattern:?}: {e}");
            }
            other => panic!("{pattern:?}: {other:?}"),
        }
    }
    for (pattern, words) in [
        ("orders.>.x", "'>' must be the last token"),
        ("orders..x", "empty token"),
        ("", "empty"),
        ("or*ders", "whole tokens"),
    ] {
        let e = engine.pattern::<u32>(pattern).unwrap_err();
        assert!(matches!(e, TopicError::InvalidPattern { .. }));
        assert!(e.to_string().contains(words), "{pattern:?}: {e}");
    }
    assert!(engine.pattern::<u32>(">").is_ok());
    assert!(engine.pattern::<u32>("*.created").is_ok());
}

#[test]
fn a_bad_retry_policy_or_group_name_is_refused_with_a_reason() {
    let engine = engine(1);
    let e = engine
        .pattern::<u32>("a.*")
        .unwrap()
        .subscribe_with(
            |_| Err::<(), _>("no"),
            SubscribeOptions::new().retry(RetryPolicy::never().max_attempts(0)),
        )
        .unwrap_err();
    assert!(matches!(e, SubscribeError::InvalidRetry { .. }), "{e}");
    assert!(e.to_string().contains("max_attempts"), "{e}");
    let e = engine
        .pattern::<u32>("a.*")
        .unwrap()
        .group("")
        .subscribe(|_| ())
        .unwrap_err();
    assert!(matches!(e, SubscribeError::InvalidGroupName { .. }));
}

/// A retry policy, 1 ms between attempts.
fn quick_retries(attempts: u32) -> RetryPolicy {
    RetryPolicy::fixed(Duration::from_millis(1)).max_attempts(attempts)
}

/// Waits until `sub`'s counts satisfy `cond` (they are published once per
/// batch, after receipts may have completed).
fn wait_for_stats(sub: &Subscription, cond: impl Fn(SubscriptionStats) -> bool) {
    assert!(
        eventually(PATIENCE, || cond(sub.stats())),
        "stats {:?}",
        sub.stats()
    );
}

/// Retries for a pattern: a failed event of a matching topic comes back to
/// the pattern's handler with its attempt counted, on a topic that existed
/// before the subscription and on one created after it; the third attempt
/// succeeds and nothing is dead-lettered.
#[test]
fn retry_succeeds_on_the_third_attempt() {
    let engine = engine(2);
    let before = engine.topic::<u32>("flaky.before").unwrap();
    let log = Log::new();
    let l = log.clone();
    let sub = engine
        .pattern::<u32>("flaky.*")
        .unwrap()
        .subscribe_with(
            move |ev| {
                l.push((ev.topic().to_owned(), **ev, ev.attempt()));
                match ev.attempt() {
                    1 | 2 => Err(format!("attempt {} fails", ev.attempt())),
                    _ => Ok(()),
                }
            },
            SubscribeOptions::new().retry(quick_retries(5)),
        )
        .unwrap();
    let after = engine.topic::<u32>("flaky.after").unwrap();
    // A tracked event's receipt completes after its last attempt.
    let receipts = [
        before.publish_tracked(1).unwrap(),
        after.publish_tracked(2).unwrap(),
    ];
    for r in receipts {
        assert!(r.wait_timeout(PATIENCE), "retries did not finish");
    }
    let mut seen = log.snapshot();
    seen.sort();
    let want: Vec<_> = [("flaky.after", 2), ("flaky.before", 1)]
        .into_iter()
        .flat_map(|(topic, v)| (1..=3).map(move |a| (topic.to_owned(), v, a)))
        .collect();
    assert_eq!(seen, want);
    wait_for_stats(&sub, |s| s.handled == 2 && s.failed == 4);
    let stats = sub.stats();
    assert_eq!((stats.retried, stats.dead_lettered), (4, 0), "{stats:?}");
    for topic in [&before, &after] {
        assert_eq!(topic.dead_letter_count(), 0);
        assert!(topic.take_dead_letters().is_empty());
    }
}

/// Exhausted retries dead-letter on the event's own topic, where a plain
/// subscription to that topic dead-letters: to its dead-letter topic while
/// that has subscribers, else into its store; the letter says which topic,
/// which subscription, how many attempts and the last error, as a plain
/// subscription's letter beside it does.
#[test]
fn exhausted_retries_dead_letter_where_a_plain_subscription_would() {
    let engine = engine(2);
    let declined = |ev: &pinbus::Event<u32>| Err::<(), _>(format!("declined {}", **ev));
    let eu = engine.topic::<u32>("pay.eu").unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    eu.dead_letters()
        .unwrap()
        .subscribe(move |dl| tx.send(dl.get().clone()).unwrap())
        .unwrap();
    let sub = engine
        .pattern::<u32>("pay.*")
        .unwrap()
        .subscribe_with(
            declined,
            SubscribeOptions::new()
                .name("payments")
                .retry(quick_retries(3)),
        )
        .unwrap();
    // Created after the pattern; nobody subscribes to its dead letters.
    let us = engine.topic::<u32>("pay.us").unwrap();
    us.subscribe_with(
        declined,
        SubscribeOptions::new()
            .name("plain")
            .retry(quick_retries(3)),
    )
    .unwrap();
    for r in [
        eu.publish_tracked(1).unwrap(),
        us.publish_tracked(2).unwrap(),
    ] {
        assert!(r.wait_timeout(PATIENCE), "retries did not finish");
    }
    // pay.eu: published to its dead-letter topic's subscriber.
    let letter = rx.recv_timeout(PATIENCE).unwrap();
    assert_eq!(*letter.event(), 1);
    assert_eq!(
        (letter.topic(), letter.subscription(), letter.attempts()),
        ("pay.eu", "payments", 3)
    );
    assert_eq!(letter.error(), "declined 1");
    assert!(eu.take_dead_letters().is_empty());
    // pay.us: kept in its store, beside the plain subscription's letter.
    let mut kept = us.take_dead_letters();
    kept.sort_by(|a, b| a.subscription().cmp(b.subscription()));
    let fields: Vec<_> = kept
        .iter()
        .map(|d| {
            (
                *d.event(),
                d.topic(),
                d.subscription(),
                d.attempts(),
                d.error(),
            )
        })
        .collect();
    assert_eq!(
        fields,
        [
            (2, "pay.us", "payments", 3, "declined 2"),
            (2, "pay.us", "plain", 3, "declined 2"),
        ]
    );
    assert_eq!((eu.dead_letter_count(), us.dead_letter_count()), (1, 2));
    wait_for_stats(&sub, |s| s.failed == 6);
    let stats = sub.stats();
    assert_eq!((stats.retried, stats.dead_lettered), (4, 2), "{stats:?}");
}

/// A panic is a failed attempt like an `Err`: retried by the policy, then
/// dead-lettered with the panic's message; the worker survives it and goes
/// on with later events. Also for a pattern group member, whose retries
/// come back to the member that failed.
#[test]
fn a_panicking_handler_under_retry_is_retried_then_dead_lettered() {
    let engine = engine(2);
    let log = Log::new();
    let l = log.clone();
    let sub = engine
        .pattern::<u32>("risky.>")
        .unwrap()
        .subscribe_with(
            move |ev| {
                l.push((**ev, ev.attempt()));
                // 1 panics once, 2 every time, 3 never.
                if (**ev == 1 && ev.attempt() == 1) || **ev == 2 {
                    panic!("boom {}", **ev);
                }
            },
            SubscribeOptions::new().retry(quick_retries(2)),
        )
        .unwrap();
    let topic = engine.topic::<u32>("risky.eu.orders").unwrap();
    for v in 1..=3 {
        let r = topic.publish_tracked(v).unwrap();
        assert!(r.wait_timeout(PATIENCE), "event {v} not finished");
    }
    let mut seen = log.snapshot();
    seen.sort();
    assert_eq!(seen, [(1, 1), (1, 2), (2, 1), (2, 2), (3, 1)]);
    let dead = topic.take_dead_letters();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!((*dead[0].event(), dead[0].attempts()), (2, 2));
    assert_eq!(dead[0].error(), "handler panicked: boom 2");
    // An unnamed pattern subscription's letters carry its generated name.
    assert_eq!(dead[0].subscription(), sub.name());
    wait_for_stats(&sub, |s| s.handled == 2 && s.panicked == 3);
    let stats = sub.stats();
    assert_eq!(
        (stats.failed, stats.retried, stats.dead_lettered),
        (3, 2, 1)
    );

    // A pattern group: each member's failed events come back to it alone.
    let group = engine.pattern::<u32>("risky.>").unwrap().group("audit");
    let members: Vec<(Log<(u32, u32)>, Subscription)> = (0..2)
        .map(|_| {
            let log = Log::new();
            let l = log.clone();
            let sub = group
                .subscribe_with(
                    move |ev| {
                        l.push((**ev, ev.attempt()));
                        if ev.attempt() == 1 {
                            panic!("first attempt of {}", **ev);
                        }
                    },
                    SubscribeOptions::new().retry(quick_retries(2)),
                )
                .unwrap();
            (log, sub)
        })
        .collect();
    let receipts: Vec<_> = (10..30)
        .map(|v| topic.publish_tracked(v).unwrap())
        .collect();
    for r in receipts {
        assert!(r.wait_timeout(PATIENCE), "group retries did not finish");
    }
    let mut handled = Vec::new();
    for (log, sub) in &members {
        let mine = log.snapshot();
        for &(v, attempt) in &mine {
            if attempt == 2 {
                assert!(mine.contains(&(v, 1)), "retry of {v} on another member");
                handled.push(v);
            }
        }
        wait_for_stats(sub, |s| s.panicked == s.retried);
    }
    handled.sort();
    assert_eq!(handled, (10..30).collect::<Vec<_>>(), "each event once");
    assert!(topic.take_dead_letters().is_empty());
    engine.shutdown();
}

#[test]
fn dead_letter_topics_are_never_matched() {
    let engine = engine(1);
    let orders = engine.topic::<u32>("orders").unwrap();
    orders
        .subscribe_with(
            |_| Err::<(), _>("always fails"),
            SubscribeOptions::new().retry(RetryPolicy::never()),
        )
        .unwrap();
    let seen = Arc::new(AtomicU64::new(0));
    let s = seen.clone();
    // ">" matches every name, so also `orders.dead_letters` by syntax.
    engine
        .pattern::<pinbus::DeadLetter<u32>>(">")
        .unwrap()
        .subscribe(move |_| {
            s.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    let s = seen.clone();
    engine
        .pattern::<pinbus::DeadLetter<u32>>("*.dead_letters")
        .unwrap()
        .subscribe(move |_| {
            s.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    let dead = orders.dead_letters().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    dead.subscribe(move |d| tx.send(*d.event()).unwrap())
        .unwrap();
    orders.publish(5).unwrap();
    assert_eq!(rx.recv_timeout(PATIENCE).unwrap(), 5);
    engine.shutdown();
    assert_eq!(seen.load(Ordering::SeqCst), 0);
    // ">" matched `orders` itself, of another type; the dead-letter topic
    // (of the pattern's type) is not even counted.
    assert_eq!(engine.metrics().pattern_type_mismatches, 1);
}

/// Records the thread it is dropped on.
struct DropProbe(Arc<Mutex<Option<ThreadId>>>);
impl Drop for DropProbe {
    fn drop(&mut self) {
        *self.0.lock().unwrap() = Some(std::thread::current().id());
    }
}

/// Guarantee 4 for a pattern: when `unsubscribe` returns the handler is not
/// running, is never called again on any topic (also ones created later),
/// and was dropped on its worker.
#[test]
fn unsubscribe_removes_every_part() {
    let engine = engine(2);
    let a = engine.topic::<u64>("u.a").unwrap();
    let b = engine.topic::<u64>("u.b").unwrap();
    let running = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicU64::new(0));
    let worker = Arc::new(Mutex::new(None));
    let dropped_on = Arc::new(Mutex::new(None));
    let (r, c, w) = (running.clone(), calls.clone(), worker.clone());
    let probe = DropProbe(dropped_on.clone());
    let sub = engine
        .pattern::<u64>("u.*")
        .unwrap()
        .subscribe(move |_| {
            let _keep = &probe;
            r.store(true, Ordering::SeqCst);
            *w.lock().unwrap() = Some(std::thread::current().id());
            std::thread::sleep(Duration::from_micros(200));
            c.fetch_add(1, Ordering::SeqCst);
            r.store(false, Ordering::SeqCst);
        })
        .unwrap();
    let busy = std::thread::spawn(move || {
        for i in 0..200 {
            a.publish(i).unwrap();
            b.publish(i).unwrap();
        }
        (a, b)
    });
    assert!(eventually(PATIENCE, || calls.load(Ordering::SeqCst) > 5));
    sub.unsubscribe();
    assert!(
        !running.load(Ordering::SeqCst),
        "handler running after unsubscribe"
    );
    let at = calls.load(Ordering::SeqCst);
    let dropped = *dropped_on.lock().unwrap();
    assert!(dropped.is_some(), "handler not dropped by unsubscribe");
    assert_eq!(dropped, *worker.lock().unwrap(), "dropped off its worker");
    let (a, _b) = busy.join().unwrap();
    let c = engine.topic::<u64>("u.c").unwrap();
    a.publish_and_wait(1).unwrap();
    c.publish_and_wait(1).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(calls.load(Ordering::SeqCst), at, "called after unsubscribe");
    assert!(engine.metrics().subscriptions.is_empty());
}

/// A pattern that matched nothing still drops its handler on a worker.
#[test]
fn unsubscribe_with_no_part_drops_the_handler_on_a_worker() {
    let engine = engine(1);
    let dropped_on = Arc::new(Mutex::new(None));
    let probe = DropProbe(dropped_on.clone());
    let sub = engine
        .pattern::<u64>("nothing.*")
        .unwrap()
        .subscribe(move |_| {
            let _keep = &probe;
        })
        .unwrap();
    sub.unsubscribe();
    let dropped = dropped_on.lock().unwrap().expect("dropped by unsubscribe");
    assert_ne!(dropped, std::thread::current().id());
}

/// A pattern keeps its topics alive as any subscription does, and a topic
/// freed and created again is matched again.
#[test]
fn freed_and_recreated_topics_are_matched_again() {
    let engine = engine(1);
    let log = Log::new();
    let l = log.clone();
    let sub = engine
        .pattern::<u64>("f.*")
        .unwrap()
        .subscribe(move |ev| l.push(**ev))
        .unwrap();
    engine
        .topic::<u64>("f.x")
        .unwrap()
        .publish_and_wait(1)
        .unwrap();
    // Handle dropped: the pattern's part keeps the topic.
    engine
        .topic::<u64>("f.x")
        .unwrap()
        .publish_and_wait(2)
        .unwrap();
    sub.unsubscribe();
    assert_eq!(
        engine.metrics().topics.len(),
        0,
        "topic freed with its last part"
    );
    let log2 = Log::new();
    let l = log2.clone();
    engine
        .pattern::<u64>("f.*")
        .unwrap()
        .subscribe(move |ev| l.push(**ev))
        .unwrap();
    engine
        .topic::<u64>("f.x")
        .unwrap()
        .publish_and_wait(3)
        .unwrap();
    assert_eq!(log.snapshot(), [1, 2]);
    assert_eq!(log2.snapshot(), [3]);
}

/// Shutdown drops a pattern's handler on its worker, as for any handler.
#[test]
fn shutdown_drops_the_handler_on_its_worker() {
    let engine = engine(1);
    let dropped_on = Arc::new(Mutex::new(None));
    let worker = Arc::new(Mutex::new(None));
    let probe = DropProbe(dropped_on.clone());
    let w = worker.clone();
    let _sub = engine
        .pattern::<u64>("s.*")
        .unwrap()
        .subscribe(move |_| {
            let _keep = &probe;
            *w.lock().unwrap() = Some(std::thread::current().id());
        })
        .unwrap();
    engine
        .topic::<u64>("s.a")
        .unwrap()
        .publish_and_wait(1)
        .unwrap();
    engine.shutdown();
    let dropped = dropped_on.lock().unwrap().expect("dropped by shutdown");
    assert_eq!(Some(dropped), *worker.lock().unwrap());
    drop(engine);
}
