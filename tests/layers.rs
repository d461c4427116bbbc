//! Handler middleware (`pinbus::layer`): order, skip, fail, and the
//! built-in filter and rate limit. Logging and spans: tests/layer_logging.rs.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{eventually, Log, PATIENCE};
use pinbus::layer::{Disposition, Excess, Filter, Handle, Layer, Outcome, RateLimit};
use pinbus::{Engine, Event, RetryPolicy, SubscribeOptions};

/// Records when an event enters and leaves it, and what came back.
struct Trail {
    name: &'static str,
    log: Log<String>,
}

impl Layer<u32> for Trail {
    fn call<H: Handle<u32>>(&mut self, event: &Event<u32>, next: &mut H) -> Outcome {
        self.log.push(format!("{} in {}", self.name, **event));
        let out = next.handle(event);
        self.log.push(format!("{} out {:?}", self.name, out));
        out
    }
}

#[test]
fn layers_run_outermost_first_and_see_what_the_inner_ones_returned() {
    let engine = Engine::builder().workers(1).build().unwrap();
    let t = engine.topic::<u32>("layers.order").unwrap();
    let log = Log::new();
    let handler_log = log.clone();
    t.subscribe_with(
        move |ev: &Event<u32>| handler_log.push(format!("handler {}", **ev)),
        SubscribeOptions::new()
            .layer(Trail {
                name: "A",
                log: log.clone(),
            })
            .layer(Trail {
                name: "B",
                log: log.clone(),
            }),
    )
    .unwrap();
    t.publish_and_wait(7).unwrap();
    engine.shutdown();
    assert_eq!(
        log.snapshot(),
        [
            "A in 7",
            "B in 7",
            "handler 7",
            "B out Ok(Handled)",
            "A out Ok(Handled)"
        ]
    );
}

#[test]
fn a_filter_skips_and_counts_what_it_leaves_out() {
    let engine = Engine::builder().workers(1).build().unwrap();
    let t = engine.topic::<u32>("layers.filter").unwrap();
    let seen = Log::new();
    let s = seen.clone();
    let sub = t
        .subscribe_with(
            move |ev: &Event<u32>| s.push(**ev),
            SubscribeOptions::new().layer(Filter::new(|ev: &Event<u32>| (**ev).is_multiple_of(3))),
        )
        .unwrap();
    for i in 0..30 {
        t.publish(i).unwrap();
    }
    assert!(eventually(PATIENCE, || {
        let s = sub.stats();
        s.handled + s.skipped == 30
    }));
    engine.shutdown();
    assert_eq!(
        seen.snapshot(),
        (0..30).filter(|i| i % 3 == 0).collect::<Vec<_>>()
    );
    let stats = sub.stats();
    assert_eq!((stats.handled, stats.skipped, stats.failed), (10, 20, 0));
}

/// Fails events above a limit before they reach the handler.
struct Reject(u32);

impl Layer<u32> for Reject {
    fn call<H: Handle<u32>>(&mut self, event: &Event<u32>, next: &mut H) -> Outcome {
        if **event > self.0 {
            return Err(format!("{} is over {}", **event, self.0).into());
        }
        next.handle(event)
    }
}

#[test]
fn a_layer_failure_is_retried_then_dead_lettered_like_a_handler_failure() {
    let (engine, clock) = common::manual_engine(1);
    let t = engine.topic::<u32>("layers.reject").unwrap();
    let calls = Arc::new(Mutex::new(Vec::new()));
    let c = calls.clone();
    let sub = t
        .subscribe_with(
            move |ev: &Event<u32>| c.lock().unwrap().push(**ev),
            SubscribeOptions::new()
                .layer(Reject(10))
                .retry(RetryPolicy::fixed(Duration::from_millis(1)).max_attempts(2)),
        )
        .unwrap();
    t.publish(5).unwrap();
    t.publish(50).unwrap();
    assert!(eventually(PATIENCE, || sub.stats().retried == 1));
    clock.advance(Duration::from_millis(1));
    assert!(eventually(PATIENCE, || sub.stats().dead_lettered == 1));
    engine.shutdown();
    let stats = sub.stats();
    assert_eq!((stats.handled, stats.failed), (1, 2));
    assert_eq!(*calls.lock().unwrap(), [5], "the handler never saw 50");
    let dead = t.take_dead_letters();
    assert_eq!(dead.len(), 1);
    assert_eq!(*dead[0].event(), 50);
    assert_eq!(dead[0].error(), "50 is over 10");
}

#[test]
fn rate_limit_skip_lets_a_burst_through_and_skips_the_rest() {
    let engine = Engine::builder().workers(1).build().unwrap();
    let t = engine.topic::<u32>("layers.rate.skip").unwrap();
    let sub = t
        .subscribe_with(
            |_: &Event<u32>| {},
            SubscribeOptions::new()
                .layer(RateLimit::per_second(1).burst(3).on_excess(Excess::Skip)),
        )
        .unwrap();
    let start = Instant::now();
    for i in 0..10 {
        t.publish(i).unwrap();
    }
    assert!(eventually(PATIENCE, || {
        let s = sub.stats();
        s.handled + s.skipped == 10
    }));
    // One token per second after the burst of 3.
    let extra = start.elapsed().as_secs();
    engine.shutdown();
    let s = sub.stats();
    assert!(
        s.handled >= 3 && s.handled <= 3 + extra,
        "{s:?} after {extra} s"
    );
    assert_eq!(s.handled + s.skipped, 10);
}

#[test]
fn rate_limit_fail_feeds_the_failure_path() {
    let engine = Engine::builder().workers(1).build().unwrap();
    let t = engine.topic::<u32>("layers.rate.fail").unwrap();
    let sub = t
        .subscribe_with(
            |_: &Event<u32>| {},
            SubscribeOptions::new()
                .layer(RateLimit::per_second(1).burst(2).on_excess(Excess::Fail)),
        )
        .unwrap();
    let start = Instant::now();
    for i in 0..6 {
        t.publish(i).unwrap();
    }
    assert!(eventually(PATIENCE, || {
        let s = sub.stats();
        s.handled + s.failed == 6
    }));
    let extra = start.elapsed().as_secs();
    engine.shutdown();
    let s = sub.stats();
    assert!(s.handled >= 2 && s.handled <= 2 + extra, "{s:?}");
    assert_eq!(s.skipped, 0);
}

#[test]
fn rate_limit_wait_spaces_events_out() {
    let engine = Engine::builder().workers(1).build().unwrap();
    let t = engine.topic::<u32>("layers.rate.wait").unwrap();
    let times = Log::new();
    let log = times.clone();
    let sub = t
        .subscribe_with(
            move |_: &Event<u32>| log.push(Instant::now()),
            SubscribeOptions::new().layer(RateLimit::per_second(200).burst(1)),
        )
        .unwrap();
    for i in 0..21 {
        t.publish(i).unwrap();
    }
    assert!(eventually(PATIENCE, || sub.stats().handled == 21));
    engine.shutdown();
    let times = times.snapshot();
    // 20 gaps of at least 5 ms (200/s), give or take a clock tick.
    let span = times[20] - times[0];
    assert!(span >= Duration::from_millis(99), "21 events in {span:?}");
    assert_eq!(sub.stats().skipped, 0);
}

#[test]
fn layers_work_for_consumer_group_members() {
    let engine = Engine::builder().workers(2).build().unwrap();
    let t = engine.topic::<u32>("layers.group").unwrap();
    let g = t.group("evens");
    let subs: Vec<_> = (0..2)
        .map(|_| {
            g.subscribe_with(
                |ev: &Event<u32>| assert_eq!(**ev % 2, 0),
                SubscribeOptions::new()
                    .layer(Filter::new(|ev: &Event<u32>| (**ev).is_multiple_of(2))),
            )
            .unwrap()
        })
        .collect();
    for i in 0..100 {
        t.publish(i).unwrap();
    }
    let total =
        |f: fn(pinbus::SubscriptionStats) -> u64| subs.iter().map(|s| f(s.stats())).sum::<u64>();
    assert!(eventually(PATIENCE, || total(|s| s.handled + s.skipped) == 100));
    engine.shutdown();
    assert_eq!((total(|s| s.handled), total(|s| s.skipped)), (50, 50));
    assert_eq!(total(|s| s.failed), 0);
}

#[test]
fn a_layer_may_report_skipped_after_running_the_handler() {
    // A layer owns the verdict: it can turn a handled event into a skip.
    struct Veto;
    impl Layer<u32> for Veto {
        fn call<H: Handle<u32>>(&mut self, event: &Event<u32>, next: &mut H) -> Outcome {
            next.handle(event).map(|_| Disposition::Skipped)
        }
    }
    let engine = Engine::builder().workers(1).build().unwrap();
    let t = engine.topic::<u32>("layers.veto").unwrap();
    let sub = t
        .subscribe_with(|_: &Event<u32>| {}, SubscribeOptions::new().layer(Veto))
        .unwrap();
    t.publish_and_wait(1).unwrap();
    engine.shutdown();
    assert_eq!((sub.stats().handled, sub.stats().skipped), (0, 1));
}
