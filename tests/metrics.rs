//! Metrics issue: `Engine::metrics` lists every topic and every live
//! subscription with its counters, and serializes.

mod common;

use std::sync::mpsc;

use common::{eventually, PATIENCE};
use pinbus::{
    Backpressure, Engine, IdleStrategy, Metrics, PublishError, SubscribeOptions,
    SubscriptionMetrics, TopicMetrics, TopicOptions,
};

fn engine(workers: usize) -> Engine {
    Engine::builder()
        .workers(workers)
        .idle(IdleStrategy::Park)
        .build()
        .unwrap()
}

fn topic<'m>(m: &'m Metrics, name: &str) -> &'m TopicMetrics {
    m.topics
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no topic {name} in {m:#?}"))
}

fn sub<'m>(m: &'m Metrics, name: &str) -> Option<&'m SubscriptionMetrics> {
    m.subscriptions.iter().find(|s| s.name == name)
}

/// Polls the snapshot until `cond` holds: subscription counts are published
/// at the end of each worker batch, so they may trail `publish_and_wait`.
fn wait_for(engine: &Engine, what: &str, cond: impl Fn(&Metrics) -> bool) -> Metrics {
    let mut last = engine.metrics();
    let held = eventually(PATIENCE, || {
        last = engine.metrics();
        cond(&last)
    });
    assert!(held, "{what}: metrics {last:#?}");
    last
}

fn named(name: &str) -> SubscribeOptions {
    SubscribeOptions::new().name(name)
}

#[test]
fn published_and_handled_counts_appear() {
    let engine = engine(2);
    let orders = engine.topic::<u32>("orders").unwrap();
    let audit = orders.subscribe_with(|_| (), named("audit")).unwrap();
    for i in 0..10 {
        orders.publish_and_wait(i).unwrap();
    }
    let m = wait_for(&engine, "10 handled", |m| {
        sub(m, "audit").is_some_and(|s| s.handled == 10)
    });
    assert_eq!(m.workers.len(), 2);
    let t = topic(&m, "orders");
    assert_eq!((t.published, t.full, t.discarded), (10, 0, 0));
    let s = sub(&m, "audit").unwrap();
    assert_eq!(s.topic, "orders");
    assert_eq!(s.group, None);
    assert_eq!(s.worker, audit.worker());
    assert_eq!(
        (s.failed, s.panicked, s.retried, s.dead_lettered),
        (0, 0, 0, 0)
    );
}

#[test]
fn failing_subscription_counts_failures() {
    let engine = engine(1);
    let orders = engine.topic::<u32>("orders").unwrap();
    orders
        .subscribe_with(
            |ev| {
                if **ev % 2 == 0 {
                    Err("even")
                } else {
                    Ok(())
                }
            },
            named("picky"),
        )
        .unwrap();
    for i in 0..6 {
        orders.publish_and_wait(i).unwrap();
    }
    let m = wait_for(&engine, "3 handled, 3 failed", |m| {
        sub(m, "picky").is_some_and(|s| (s.handled, s.failed) == (3, 3))
    });
    assert_eq!(sub(&m, "picky").unwrap().panicked, 0);
}

#[test]
fn group_member_is_listed_with_its_group() {
    let engine = engine(2);
    let jobs = engine.topic::<u32>("jobs").unwrap();
    let a = jobs
        .group("crunchers")
        .subscribe_with(|_| (), named("a"))
        .unwrap();
    let b = jobs
        .group("crunchers")
        .subscribe_with(|_| (), named("b"))
        .unwrap();
    jobs.subscribe_with(|_| (), named("plain")).unwrap();
    for i in 0..8 {
        jobs.publish_and_wait(i).unwrap();
    }
    let m = wait_for(&engine, "8 handled by the group", |m| {
        let handled = |n| sub(m, n).map_or(0, |s| s.handled);
        handled("a") + handled("b") == 8 && handled("plain") == 8
    });
    let (ma, mb) = (sub(&m, "a").unwrap(), sub(&m, "b").unwrap());
    assert_eq!(ma.group.as_deref(), Some("crunchers"));
    assert_eq!(mb.group.as_deref(), Some("crunchers"));
    assert_eq!((ma.worker, mb.worker), (a.worker(), b.worker()));
    assert_eq!(sub(&m, "plain").unwrap().group, None);
    // Subscription order within the topic.
    let names: Vec<&str> = m.subscriptions.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "plain"]);
}

#[test]
fn unsubscribed_subscription_disappears() {
    let engine = engine(1);
    let ticks = engine.topic::<u64>("ticks").unwrap();
    let gone = ticks.subscribe_with(|_| (), named("gone")).unwrap();
    let member = ticks
        .group("g")
        .subscribe_with(|_| (), named("member"))
        .unwrap();
    ticks.subscribe_with(|_| (), named("stays")).unwrap();
    ticks.publish_and_wait(1).unwrap();
    let m = engine.metrics();
    assert!(sub(&m, "gone").is_some() && sub(&m, "member").is_some());

    gone.unsubscribe();
    member.unsubscribe();
    let m = engine.metrics();
    let names: Vec<&str> = m.subscriptions.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["stays"]);
    // The topic itself stays, with its counts.
    assert_eq!(topic(&m, "ticks").published, 1);
}

#[test]
fn full_counts_try_publish_refusals() {
    let engine = Engine::builder()
        .workers(1)
        .idle(IdleStrategy::Park)
        .lane_capacity(2)
        .build()
        .unwrap();
    let events = engine.topic::<u32>("events").unwrap();
    let (release, gate) = mpsc::channel::<()>();
    let (started_tx, started) = mpsc::channel::<()>();
    events
        .subscribe_with(
            move |_| {
                let _ = started_tx.send(());
                // Blocks the worker until the test releases it.
                let _ = gate.recv();
            },
            named("blocked"),
        )
        .unwrap();
    events.publish(0).unwrap();
    started.recv_timeout(PATIENCE).unwrap();
    // The worker is stuck in the handler: the lane fills, then refuses.
    let mut accepted = 0;
    let mut refused = 0;
    for i in 1..=20 {
        match events.try_publish(i) {
            Ok(()) => accepted += 1,
            Err(PublishError::Full(v)) => {
                assert_eq!(v, i);
                refused += 1;
            }
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert!(accepted <= 2, "lane capacity 2 took {accepted}");
    assert_eq!(refused, 20 - accepted);
    let m = engine.metrics();
    let t = topic(&m, "events");
    assert_eq!((t.full, t.published), (refused, 1 + accepted));

    drop(release);
    let m = wait_for(&engine, "all accepted events handled", |m| {
        sub(m, "blocked").is_some_and(|s| s.handled == 1 + accepted)
    });
    assert_eq!(topic(&m, "events").full, refused);
}

#[test]
fn fail_backpressure_publish_counts_as_full() {
    let engine = Engine::builder()
        .workers(1)
        .idle(IdleStrategy::Park)
        .lane_capacity(2)
        .build()
        .unwrap();
    let options = TopicOptions::default().backpressure(Backpressure::Fail);
    let events = engine.topic_with::<u32>("events", options).unwrap();
    let (release, gate) = mpsc::channel::<()>();
    let (started_tx, started) = mpsc::channel::<()>();
    events
        .subscribe(move |_| {
            let _ = started_tx.send(());
            let _ = gate.recv();
        })
        .unwrap();
    events.publish(0).unwrap();
    started.recv_timeout(PATIENCE).unwrap();
    let refused = (1..=10)
        .filter(|&i| matches!(events.publish(i), Err(PublishError::Full(_))))
        .count() as u64;
    let batch_refused = matches!(events.publish_batch([1, 2, 3]), Err(PublishError::Full(_)));
    assert!(refused >= 8 && batch_refused);
    assert_eq!(topic(&engine.metrics(), "events").full, refused + 1);
    drop(release);
}

#[test]
fn metrics_serialize_to_json() {
    let engine = engine(1);
    let orders = engine.topic::<u32>("orders").unwrap();
    orders
        .group("billing")
        .subscribe_with(|_| (), named("bill"))
        .unwrap();
    orders.publish_and_wait(1).unwrap();
    let m = wait_for(&engine, "1 handled", |m| {
        sub(m, "bill").is_some_and(|s| s.handled == 1)
    });
    let json = serde_json::to_string(&m).unwrap();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["workers"][0]["index"], 0);
    assert!(value["workers"][0]["busy_share"].is_f64());
    assert_eq!(value["topics"][0]["name"], "orders");
    assert_eq!(value["topics"][0]["published"], 1);
    assert_eq!(value["subscriptions"][0]["name"], "bill");
    assert_eq!(value["subscriptions"][0]["group"], "billing");
    assert_eq!(value["subscriptions"][0]["handled"], 1);
}

#[test]
fn snapshot_after_shutdown_keeps_final_counts() {
    let engine = engine(1);
    let orders = engine.topic::<u32>("orders").unwrap();
    orders.subscribe_with(|_| (), named("audit")).unwrap();
    for i in 0..5 {
        orders.publish(i).unwrap();
    }
    let report = engine.shutdown();
    let m = engine.metrics();
    assert_eq!(topic(&m, "orders").published, report.published);
    assert_eq!(sub(&m, "audit").unwrap().handled, report.handled);
}

#[test]
fn lag_shows_events_waiting_behind_a_blocked_handler() {
    let engine = engine(1);
    let jobs = engine.topic::<u32>("lagging").unwrap();
    let (release, gate) = mpsc::channel::<()>();
    let (entered, started) = mpsc::channel::<()>();
    let gate = std::sync::Mutex::new(gate);
    jobs.subscribe_with(
        move |_| {
            let _ = entered.send(());
            let _ = gate.lock().unwrap().recv();
        },
        named("slowpoke"),
    )
    .unwrap();
    jobs.publish(0).unwrap();
    started.recv().unwrap();
    // The handler holds event 0 (its slot is freed when its batch ends);
    // these 25 wait behind it.
    for i in 1..=25 {
        jobs.publish(i).unwrap();
    }
    let m = engine.metrics();
    assert_eq!(sub(&m, "slowpoke").unwrap().lag, 26, "{m:#?}");
    for _ in 0..=25 {
        release.send(()).unwrap();
    }
    wait_for(&engine, "drained", |m| {
        sub(m, "slowpoke").is_some_and(|s| s.handled == 26 && s.lag == 0)
    });
    engine.shutdown();
}

#[test]
fn sampled_latency_percentiles_are_reported() {
    let engine = engine(1);
    let ticks = engine
        .topic_with::<u32>("timed", TopicOptions::default().timestamps(true))
        .unwrap();
    ticks
        .subscribe_with(
            |_| std::thread::sleep(std::time::Duration::from_micros(200)),
            named("timed-sub").latency_sampling(2),
        )
        .unwrap();
    ticks.subscribe_with(|_| (), named("untimed")).unwrap();
    for i in 0..40 {
        ticks.publish(i).unwrap();
    }
    let m = wait_for(&engine, "40 handled", |m| {
        sub(m, "timed-sub").is_some_and(|s| s.handled == 40)
    });
    engine.shutdown();
    let lat = sub(&m, "timed-sub").unwrap().latency.clone().unwrap();
    assert_eq!(lat.samples, 20);
    assert!(lat.p50_ns <= lat.p90_ns && lat.p90_ns <= lat.p99_ns && lat.p99_ns <= lat.max_ns);
    // Events queue behind a 200 us handler: the later ones waited longer.
    assert!(lat.max_ns >= 1_000_000, "{lat:?}");
    assert!(sub(&m, "untimed").unwrap().latency.is_none());
}

#[test]
fn worker_busy_share_grows_with_work_and_stays_a_fraction() {
    let engine = engine(2);
    let work = engine
        .topic_with::<u32>("busy", TopicOptions::default().worker(1))
        .unwrap();
    work.subscribe(|_| std::thread::sleep(std::time::Duration::from_millis(2)))
        .unwrap();
    for i in 0..20 {
        work.publish(i).unwrap();
    }
    let m = wait_for(&engine, "busy time", |m| m.workers[1].busy_ns >= 30_000_000);
    for w in &m.workers {
        assert!((0.0..=1.0).contains(&w.busy_share), "{w:?}");
        assert!(w.busy_ns <= w.uptime_ns);
    }
    assert!(
        m.workers[0].busy_ns < m.workers[1].busy_ns,
        "{:?}",
        m.workers
    );
    engine.shutdown();
}

#[test]
fn skipped_and_rejected_are_counted() {
    use pinbus::layer::Filter;
    let engine = engine(1);
    let t = engine.topic::<u32>("screened").unwrap();
    t.subscribe_with(
        |_| (),
        named("odd-only").layer(Filter::new(|ev: &pinbus::Event<u32>| **ev % 2 == 1)),
    )
    .unwrap();
    let guarded = t.intercept(|v: &mut u32| if *v < 100 { Ok(()) } else { Err("too big") });
    for i in 0..10 {
        guarded.publish(i).unwrap();
    }
    assert!(guarded.publish(500).is_err());
    let m = wait_for(&engine, "10 seen", |m| {
        sub(m, "odd-only").is_some_and(|s| s.handled + s.skipped == 10)
    });
    engine.shutdown();
    let s = sub(&m, "odd-only").unwrap();
    assert_eq!((s.handled, s.skipped), (5, 5));
    let t = topic(&m, "screened");
    assert_eq!((t.published, t.rejected), (10, 1));
}
