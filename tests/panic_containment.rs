//! Guarantee 12: a panic anywhere in user code — handler, its `Drop`, the
//! event's `Clone`, an error's `Display` — is contained: the worker
//! survives, the event is counted, shutdown and unsubscribe return, and
//! fan-out is all-or-nothing (an event is in every lane or handed back).

mod common;

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{
    engine, eventually, quiet_expected_panics, watchdog, Fragile, Log, EXPECTED, PATIENCE,
    STRATEGIES,
};
use pinbus::{Engine, IdleStrategy, RetryPolicy, SubscribeOptions, Subscription, Topic};

const LIMIT: Duration = Duration::from_secs(60);

/// Captured by a handler: panics when the handler is dropped.
struct PanicOnDrop;
impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("{EXPECTED} handler drop");
    }
}

/// A counting subscription on `name` (on worker 0 of a one-worker engine:
/// the same worker as everything else) that proves the worker is alive.
fn probe(engine: &Engine, name: &str) -> (Topic<u64>, Arc<AtomicU64>) {
    let topic = engine.topic::<u64>(name).unwrap();
    let seen = Arc::new(AtomicU64::new(0));
    let s = seen.clone();
    topic
        .subscribe(move |_| {
            s.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    (topic, seen)
}

#[test]
fn unsubscribe_returns_when_the_handler_drop_panics_and_the_worker_lives_on() {
    quiet_expected_panics();
    let _w = watchdog("unsubscribe of a handler whose Drop panics", LIMIT);
    for idle in STRATEGIES {
        let engine = engine(1, idle, 16);
        let bomb = engine.topic::<u64>("drop-bomb").unwrap();
        let calls = Arc::new(AtomicU64::new(0));
        let c = calls.clone();
        let token = PanicOnDrop;
        let sub = bomb
            .subscribe(move |_| {
                let _keep = &token;
                c.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
        let (other, seen) = probe(&engine, "neighbour");
        bomb.publish_and_wait(1).unwrap();
        sub.unsubscribe();
        // The same worker still delivers another topic.
        other.publish_and_wait(2).unwrap();
        assert_eq!(seen.load(Ordering::SeqCst), 1, "{idle:?}");
        bomb.publish_and_wait(3).unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1, "{idle:?}");
        let report = engine.shutdown();
        assert!(report.complete, "{idle:?}");
        assert_eq!(report.handled, 2, "{idle:?}: {report:?}");
    }
}

#[test]
fn a_handler_whose_drop_panics_at_shutdown_still_counts_its_events() {
    quiet_expected_panics();
    let _w = watchdog("shutdown with a handler whose Drop panics", LIMIT);
    for idle in STRATEGIES {
        let engine = engine(1, idle, 16);
        let topic = engine.topic::<u64>("drop-bomb").unwrap();
        let token = PanicOnDrop;
        topic
            .subscribe(move |_| {
                let _keep = &token;
            })
            .unwrap();
        topic.publish_and_wait(1).unwrap();
        let report = engine.shutdown();
        assert!(report.complete, "{idle:?}");
        assert_eq!(
            (report.published, report.handled),
            (1, 1),
            "{idle:?}: {report:?}"
        );
    }
}

/// A retried subscription whose handler arms the event's `Clone` and fails,
/// so the copy made for the retry panics (publish itself cloned nothing
/// armed: it happened before).
fn failing_with_retry(
    subscribe: impl FnOnce(
        Box<dyn FnMut(&pinbus::Event<Fragile>) -> Result<(), String> + Send>,
        SubscribeOptions,
    ) -> Subscription,
) -> Subscription {
    subscribe(
        Box::new(|ev: &pinbus::Event<Fragile>| {
            ev.armed.store(true, Ordering::SeqCst);
            Err(format!("fail {}", ev.v))
        }),
        SubscribeOptions::new().retry(RetryPolicy::fixed(Duration::from_millis(1))),
    )
}

/// Publishes one `Fragile` to `topic`, waits until `sub` counted the
/// failure, checks the worker still delivers `other`, and shuts down.
///
/// The exact counts: each subscription's handler returned `Err` once (one
/// failure, no panic in the handler); the retry copy's `Clone` panicked in
/// the failure path, which is contained and counted once per subscription
/// in `ShutdownReport::stray_panics`, not as a second failure, and no retry
/// was scheduled (the copy was never made).
fn retry_copy_panics(engine: Engine, topic: &Topic<Fragile>, subs: &[Subscription], what: &str) {
    let armed = Arc::new(AtomicBool::new(false));
    topic
        .publish(Fragile {
            v: 1,
            armed: armed.clone(),
        })
        .unwrap();
    assert!(
        eventually(PATIENCE, || subs.iter().all(|s| s.stats().failed >= 1)),
        "{what}: failure not counted: {:?}",
        subs.iter().map(Subscription::stats).collect::<Vec<_>>()
    );
    assert!(armed.load(Ordering::SeqCst), "{what}: the handler ran");
    let (other, seen) = probe(&engine, "alive");
    other.publish_and_wait(1).unwrap();
    assert_eq!(seen.load(Ordering::SeqCst), 1, "{what}: worker dead");
    let report = engine.shutdown();
    assert!(report.complete, "{what}");
    for s in subs {
        let stats = s.stats();
        assert_eq!(
            (stats.handled, stats.failed, stats.panicked, stats.retried),
            (0, 1, 0, 0),
            "{what}: (handled, failed, panicked, retried): {stats:?}"
        );
    }
    let n = subs.len() as u64;
    // The `Fragile` event and the probe's; only the probe's was handled.
    assert_eq!(
        (report.published, report.handled),
        (2, 1),
        "{what}: {report:?}"
    );
    assert_eq!(
        (report.failed, report.panicked, report.stray_panics),
        (n, 0, n),
        "{what}: (failed, panicked, stray_panics): {report:?}"
    );
}

#[test]
fn a_panicking_clone_of_a_retry_copy_is_contained_for_a_lone_subscriber() {
    quiet_expected_panics();
    let _w = watchdog("retry copy clone panics (lone)", LIMIT);
    for idle in [IdleStrategy::Park, IdleStrategy::BusySpin] {
        let engine = engine(1, idle, 16);
        let topic = engine.topic::<Fragile>("fragile").unwrap();
        let sub = failing_with_retry(|h, o| topic.subscribe_with(h, o).unwrap());
        retry_copy_panics(engine, &topic, &[sub], "lone");
    }
}

#[test]
fn a_panicking_clone_of_a_retry_copy_is_contained_for_two_subscribers() {
    quiet_expected_panics();
    let _w = watchdog("retry copy clone panics (two subscribers)", LIMIT);
    for idle in [IdleStrategy::Park, IdleStrategy::BusySpin] {
        let engine = engine(1, idle, 16);
        let topic = engine.topic::<Fragile>("fragile").unwrap();
        // Both on worker 0: one lane, so publish moves the event.
        let a = failing_with_retry(|h, o| topic.subscribe_with(h, o).unwrap());
        let b = failing_with_retry(|h, o| topic.subscribe_with(h, o).unwrap());
        retry_copy_panics(engine, &topic, &[a, b], "two subscribers");
    }
}

#[test]
fn a_panicking_clone_of_a_retry_copy_is_contained_for_a_group_member() {
    quiet_expected_panics();
    let _w = watchdog("retry copy clone panics (group)", LIMIT);
    for idle in [IdleStrategy::Park, IdleStrategy::BusySpin] {
        let engine = engine(1, idle, 16);
        let topic = engine.topic::<Fragile>("fragile").unwrap();
        let group = topic.group("g");
        let m = failing_with_retry(|h, o| group.subscribe_with(h, o).unwrap());
        retry_copy_panics(engine, &topic, &[m], "group member");
    }
}

/// An event whose `Clone` panics on the `panic_at`-th clone of any value
/// sharing `clones` (1-based; 0: never).
struct CountedClone {
    v: u64,
    clones: Arc<AtomicU32>,
    panic_at: u32,
}

impl Clone for CountedClone {
    fn clone(&self) -> Self {
        let n = self.clones.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.panic_at {
            panic!("{EXPECTED} clone number {n} of {}", self.v);
        }
        CountedClone {
            v: self.v,
            clones: self.clones.clone(),
            panic_at: self.panic_at,
        }
    }
}

#[test]
fn fan_out_is_all_or_nothing_when_clone_panics() {
    quiet_expected_panics();
    let _w = watchdog("fan-out with a panicking clone", LIMIT);
    for idle in STRATEGIES {
        let engine = engine(3, idle, 16);
        let topic = engine.topic::<CountedClone>("fan").unwrap();
        // One subscription per worker: three lanes.
        let logs: Vec<Log<u64>> = (0..3).map(|_| Log::new()).collect();
        for (w, log) in logs.iter().enumerate() {
            let l = log.clone();
            topic
                .subscribe_with(move |ev| l.push(ev.v), SubscribeOptions::new().worker(w))
                .unwrap();
        }
        let clones = Arc::new(AtomicU32::new(0));
        let bad = CountedClone {
            v: 1,
            clones: clones.clone(),
            panic_at: 2,
        };
        let t = topic.clone();
        let outcome = catch_unwind(AssertUnwindSafe(move || t.publish(bad)));
        assert!(
            outcome.is_err(),
            "{idle:?}: the publish should panic on the publisher's thread ({} clones)",
            clones.load(Ordering::SeqCst)
        );
        // A well-behaved value afterwards reaches all three.
        topic
            .publish_and_wait(CountedClone {
                v: 2,
                clones: Arc::new(AtomicU32::new(0)),
                panic_at: 0,
            })
            .unwrap();
        let report = engine.shutdown();
        assert!(report.complete, "{idle:?}");
        for (w, log) in logs.iter().enumerate() {
            assert_eq!(
                log.snapshot(),
                [2],
                "{idle:?}: worker {w}'s subscription saw part of a failed fan-out"
            );
        }
        assert_eq!(
            (report.published, report.handled),
            (1, 3),
            "{idle:?}: {report:?}"
        );
    }
}

/// An error whose `Display` panics.
struct BadDisplay;
impl fmt::Display for BadDisplay {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        panic!("{EXPECTED} error display");
    }
}

#[test]
fn an_error_whose_display_panics_counts_as_a_failure() {
    quiet_expected_panics();
    let _w = watchdog("error Display panics", LIMIT);
    for idle in STRATEGIES {
        for siblings in [0, 1] {
            for retry in [false, true] {
                let what = format!("{idle:?}, {siblings} siblings, retry {retry}");
                let engine = engine(1, idle, 16);
                let topic = engine.topic::<u64>("bad-error").unwrap();
                let options = if retry {
                    SubscribeOptions::new().retry(RetryPolicy::never())
                } else {
                    SubscribeOptions::new()
                };
                let sub = topic
                    .subscribe_with(|_| -> Result<(), BadDisplay> { Err(BadDisplay) }, options)
                    .unwrap();
                let sibling_seen = Arc::new(AtomicU64::new(0));
                for _ in 0..siblings {
                    let s = sibling_seen.clone();
                    topic
                        .subscribe(move |_| {
                            s.fetch_add(1, Ordering::SeqCst);
                        })
                        .unwrap();
                }
                topic.publish_and_wait(1).unwrap();
                topic.publish_and_wait(2).unwrap();
                let (other, seen) = probe(&engine, "alive");
                other.publish_and_wait(1).unwrap();
                assert_eq!(seen.load(Ordering::SeqCst), 1, "{what}: worker dead");
                let report = engine.shutdown();
                assert!(report.complete, "{what}");
                let stats = sub.stats();
                assert_eq!(stats.handled, 0, "{what}: {stats:?}");
                assert!(stats.failed >= 2, "{what}: {stats:?}");
                assert_eq!(sibling_seen.load(Ordering::SeqCst), 2 * siblings, "{what}");
            }
        }
    }
}

/// A handler that panics with a payload whose own `Drop` panics: both
/// panics are contained and counted (the handler's as `panicked`, the
/// payload's as a stray panic), the worker lives on, and shutdown returns.
#[test]
fn a_panic_payload_whose_drop_panics_is_contained_and_counted() {
    quiet_expected_panics();
    let _w = watchdog("panic payload whose Drop panics", LIMIT);
    // `resume_unwind` skips the panic hook: only the payload's own (expected)
    // panic reaches it.
    let bomb = |_: &pinbus::Event<u64>| -> () { std::panic::resume_unwind(Box::new(PanicOnDrop)) };
    for idle in [IdleStrategy::Park, IdleStrategy::BusySpin] {
        for (what, subs) in [("lone", 1u64), ("two subscribers", 2), ("group member", 0)] {
            let engine = engine(1, idle, 16);
            let topic = engine.topic::<u64>("payload-bomb").unwrap();
            let mut held = Vec::new();
            for _ in 0..subs {
                held.push(topic.subscribe(bomb).unwrap());
            }
            if subs == 0 {
                held.push(topic.group("g").subscribe(bomb).unwrap());
            }
            let n = held.len() as u64;
            topic.publish(1).unwrap();
            assert!(
                eventually(PATIENCE, || held.iter().all(|s| s.stats().panicked == 1)),
                "{what}, {idle:?}: panic not counted"
            );
            let (other, seen) = probe(&engine, "alive");
            other.publish_and_wait(1).unwrap();
            assert_eq!(
                seen.load(Ordering::SeqCst),
                1,
                "{what}, {idle:?}: worker dead"
            );
            let report = engine.shutdown();
            assert!(report.complete, "{what}, {idle:?}");
            assert_eq!(
                (report.panicked, report.stray_panics),
                (n, n),
                "{what}, {idle:?}: (panicked, stray_panics): {report:?}"
            );
        }
    }
}

/// A service member that panics with a payload whose own `Drop` panics:
/// the caller gets a failed reply, the payload's panic is contained and
/// counted as a stray panic, and the member serves the next call.
#[test]
fn a_service_member_s_panic_payload_whose_drop_panics_is_counted() {
    quiet_expected_panics();
    let _w = watchdog("service panic payload whose Drop panics", LIMIT);
    for idle in [IdleStrategy::Park, IdleStrategy::BusySpin] {
        let engine = engine(1, idle, 16);
        let service = engine.service::<u64, u64>("payload-bomb").unwrap();
        let _member = service
            .serve(|q: &pinbus::Event<u64>| -> u64 {
                if **q == 0 {
                    std::panic::resume_unwind(Box::new(PanicOnDrop))
                }
                **q + 1
            })
            .unwrap();
        let failed = service.call(0);
        assert!(
            matches!(failed, Err(pinbus::CallError::Failed(_))),
            "{idle:?}: {failed:?}"
        );
        assert_eq!(service.call(41).unwrap(), 42, "{idle:?}: member dead");
        let report = engine.shutdown();
        assert!(report.complete, "{idle:?}");
        assert_eq!(report.stray_panics, 1, "{idle:?}: {report:?}");
    }
}
