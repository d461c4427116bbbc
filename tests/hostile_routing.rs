//! The routing APIs used as a hostile user would: keyed groups whose key
//! function panics or re-enters the engine, services whose members panic,
//! fail, time out or race shutdown, pattern subscriptions churned while
//! matching topics appear, stream members dropped with events in hand, and
//! payloads whose `Clone` or `Drop` panic on these paths. Each test checks
//! the contract: no panic escapes, nothing hangs, nothing accepted is lost
//! (handled, or counted as discarded), errors say what happened.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use common::{engine, quiet_expected_panics, watchdog, within, Fragile, Log, EXPECTED, PATIENCE};
use pinbus::{
    CallError, Event, IdleStrategy, KeyedGroup, Receipt, RetryPolicy, Service, SubscribeOptions,
    Subscription, Topic,
};

const LIMIT: Duration = Duration::from_secs(60);

fn wait_all(receipts: &[Receipt], what: &str) {
    for (i, r) in receipts.iter().enumerate() {
        assert!(
            r.wait_timeout(PATIENCE),
            "{what}: receipt {i} never completed"
        );
    }
}

// ---------------------------------------------------------------------------
// Keyed groups: the key function
// ---------------------------------------------------------------------------

#[test]
fn a_key_function_that_always_panics_loses_nothing_and_keeps_order() {
    quiet_expected_panics();
    let _w = watchdog("key function always panics", LIMIT);
    let engine = engine(2, IdleStrategy::Park, 64);
    let t = engine.topic::<u64>("keyed.always_panics").unwrap();
    let g = t
        .group("g")
        .keyed(|_: &u64| -> u64 { panic!("{EXPECTED} key function") });
    let log = Log::new();
    for w in 0..2 {
        let l = log.clone();
        g.subscribe_with(move |ev| l.push(**ev), SubscribeOptions::new().worker(w))
            .unwrap();
    }
    let receipts: Vec<_> = (0..300).map(|i| t.publish_tracked(i).unwrap()).collect();
    wait_all(&receipts, "always-panicking key");
    let report = engine.shutdown();
    assert!(report.complete, "{report:?}");
    // Every event fell into one partition: one at a time, in publish order.
    assert_eq!(log.snapshot(), (0..300).collect::<Vec<u64>>());
    assert_eq!(report.handled, 300, "{report:?}");
    assert!(
        report.stray_panics >= 300,
        "each key panic is counted: {report:?}"
    );
}

#[test]
fn a_key_function_that_panics_sometimes_loses_nothing() {
    quiet_expected_panics();
    let _w = watchdog("key function panics sometimes", LIMIT);
    let engine = engine(2, IdleStrategy::Park, 64);
    let t = engine.topic::<u64>("keyed.sometimes_panics").unwrap();
    let calls = Arc::new(AtomicU64::new(0));
    let c = calls.clone();
    let g = t.group("g").keyed(move |v: &u64| {
        // Not even a function of the value: every third call panics.
        if c.fetch_add(1, Ordering::Relaxed).is_multiple_of(3) {
            panic!("{EXPECTED} flaky key function");
        }
        *v % 5
    });
    let log = Log::new();
    for w in 0..2 {
        let l = log.clone();
        g.subscribe_with(move |ev| l.push(**ev), SubscribeOptions::new().worker(w))
            .unwrap();
    }
    let receipts: Vec<_> = (0..300).map(|i| t.publish_tracked(i).unwrap()).collect();
    wait_all(&receipts, "flaky key");
    let report = engine.shutdown();
    assert!(report.complete, "{report:?}");
    let mut got = log.snapshot();
    got.sort_unstable();
    assert_eq!(got, (0..300).collect::<Vec<u64>>(), "exactly once");
    assert!(report.stray_panics >= 100, "{report:?}");
}

/// What a re-entrant key function or handler did, for the test to check.
#[derive(Default)]
struct Reentry {
    published: AtomicU64,
    subscribed: AtomicU64,
    unsubscribed: AtomicU64,
    would_deadlock: AtomicU64,
    other_call_results: Mutex<Vec<String>>,
}

type Msg = (u8, u64); // (kind of re-entry to try, value)

/// What re-entrant key functions and handlers reach.
struct Ctx {
    /// Whether the key function re-enters (else the handlers do).
    in_key: bool,
    topic: Mutex<Option<Topic<Msg>>>,
    group: Mutex<Option<KeyedGroup<Msg>>>,
    members: Mutex<Vec<Subscription>>,
    service: Mutex<Option<Service<u32, u32>>>,
    seen: Log<Msg>,
    r: Reentry,
}

/// A member's handler: re-enters unless the key function does.
fn member(ctx: &Arc<Ctx>) -> impl FnMut(&Event<Msg>) + Send + 'static {
    let ctx = ctx.clone();
    move |ev| {
        if !ctx.in_key {
            reenter(ev.0, &ctx);
        }
        ctx.seen.push(**ev);
    }
}

/// Tries re-entry `kind` from inside a key function or handler.
fn reenter(kind: u8, ctx: &Arc<Ctx>) {
    let r = &ctx.r;
    match kind {
        1 => {
            // Publish to the same topic: `publish` (Block) and `try_publish`.
            if let Some(t) = ctx.topic.lock().unwrap().as_ref() {
                t.publish((0, 1_000)).unwrap();
                if t.try_publish((0, 1_001)).is_ok() {
                    r.published.fetch_add(1, Ordering::SeqCst);
                }
                r.published.fetch_add(1, Ordering::SeqCst);
            }
        }
        2 => {
            // Add a member to the very group being claimed.
            let g = ctx.group.lock().unwrap();
            if let Some(g) = g.as_ref() {
                let sub = g.subscribe(member(ctx)).unwrap();
                ctx.members.lock().unwrap().push(sub);
                r.subscribed.fetch_add(1, Ordering::SeqCst);
            }
        }
        3 => {
            // Remove a member (maybe the one running).
            let sub = ctx.members.lock().unwrap().pop();
            if let Some(sub) = sub {
                sub.unsubscribe();
                r.unsubscribed.fetch_add(1, Ordering::SeqCst);
            }
        }
        4 => {
            // A blocking call on this engine: must be refused, not hang.
            if let Some(svc) = ctx.service.lock().unwrap().as_ref() {
                for result in [svc.call(21), svc.call_timeout(21, PATIENCE)] {
                    match result {
                        Err(CallError::WouldDeadlock(21)) => {
                            r.would_deadlock.fetch_add(1, Ordering::SeqCst);
                        }
                        other => r
                            .other_call_results
                            .lock()
                            .unwrap()
                            .push(format!("{other:?}")),
                    }
                }
            }
        }
        _ => {}
    }
}

/// A keyed group whose key function (`in_key`) or handlers (else) re-enter
/// the engine in each way of [`reenter`]; every case must return.
fn reentry_case(in_key: bool) {
    let what = if in_key { "key function" } else { "handler" };
    let engine = engine(2, IdleStrategy::Park, 8);
    let t = engine.topic::<Msg>("keyed.reentry").unwrap();
    let svc = engine.service::<u32, u32>("keyed.reentry.double").unwrap();
    svc.serve(|n| **n * 2).unwrap();
    let ctx = Arc::new(Ctx {
        in_key,
        topic: Mutex::new(Some(t.clone())),
        group: Mutex::new(None),
        members: Mutex::new(Vec::new()),
        service: Mutex::new(Some(svc.clone())),
        seen: Log::new(),
        r: Reentry::default(),
    });
    let g = if in_key {
        // The key function runs once per event as the group takes it;
        // events of kind > 0 re-enter (once each: re-published ones are
        // of kind 0).
        let ctx = ctx.clone();
        t.group("g").keyed(move |m: &Msg| {
            reenter(m.0, &ctx);
            m.1 % 4
        })
    } else {
        t.group("g").keyed(|m: &Msg| m.1 % 4)
    };
    // (The first member's key function is the group's: this one's is not used.)
    *ctx.group.lock().unwrap() = Some(t.group("g").keyed(|m: &Msg| m.1 % 4));
    for w in 0..2 {
        let sub = g
            .subscribe_with(member(&ctx), SubscribeOptions::new().worker(w))
            .unwrap();
        ctx.members.lock().unwrap().push(sub);
    }
    let tt = t.clone();
    let receipts = within(&format!("publishing to re-entrant {what}s"), move || {
        let mut receipts = Vec::new();
        for round in 0..3u64 {
            for kind in [1u8, 2, 4, 3, 0, 0] {
                receipts.push(
                    tt.publish_tracked((kind, round * 10 + u64::from(kind)))
                        .unwrap(),
                );
            }
        }
        receipts
    });
    wait_all(&receipts, what);
    // Let go of the handles the closures hold, so that shutdown frees all.
    *ctx.topic.lock().unwrap() = None;
    *ctx.group.lock().unwrap() = None;
    *ctx.service.lock().unwrap() = None;
    let report = within(&format!("shutdown after re-entrant {what}s"), move || {
        engine.shutdown()
    });
    assert!(report.complete, "{what}: {report:?}");
    let r = &ctx.r;
    let others = r.other_call_results.lock().unwrap().clone();
    assert!(others.is_empty(), "{what}: calls from a worker: {others:?}");
    assert_eq!(r.would_deadlock.load(Ordering::SeqCst), 6, "{what}");
    assert_eq!(r.subscribed.load(Ordering::SeqCst), 3, "{what}");
    assert_eq!(r.unsubscribed.load(Ordering::SeqCst), 3, "{what}");
    assert!(r.published.load(Ordering::SeqCst) >= 3, "{what}");
    // Every event exactly once: the 18 published and the 3 re-published.
    let mut seen: Vec<u64> = ctx.seen.snapshot().iter().map(|m| m.1).collect();
    seen.sort_unstable();
    let mut want: Vec<u64> = (0..3u64)
        .flat_map(|round| [1u64, 2, 4, 3, 0, 0].map(|k| round * 10 + k))
        .collect();
    want.extend(std::iter::repeat_n(1_000, 3));
    want.extend(std::iter::repeat_n(
        1_001,
        r.published.load(Ordering::SeqCst) as usize - 3,
    ));
    want.sort_unstable();
    assert_eq!(seen, want, "{what}: exactly once");
    // Nothing accepted was lost: handled or counted as discarded.
    assert_eq!(
        report.published,
        report.handled + report.failed + report.discarded,
        "{what}: {report:?}"
    );
}

#[test]
fn a_key_function_that_reenters_the_engine_never_deadlocks() {
    let _w = watchdog("re-entrant key function", LIMIT);
    reentry_case(true);
}

#[test]
fn a_keyed_handler_that_reenters_the_engine_never_deadlocks() {
    let _w = watchdog("re-entrant keyed handler", LIMIT);
    reentry_case(false);
}

#[test]
fn a_keyed_group_emptied_and_rejoined_uses_the_new_key_function_or_a_plain_member() {
    let _w = watchdog("keyed group rejoined", LIMIT);
    let engine = engine(1, IdleStrategy::Park, 64);
    let t = engine.topic::<u64>("keyed.rejoin").unwrap();
    let old_calls = Arc::new(AtomicU64::new(0));
    let c = old_calls.clone();
    let first = t
        .group("g")
        .keyed(move |v: &u64| {
            c.fetch_add(1, Ordering::SeqCst);
            *v
        })
        .subscribe(|_| ())
        .unwrap();
    t.publish_tracked(1).unwrap().wait().unwrap();
    let before = old_calls.load(Ordering::SeqCst);
    first.unsubscribe();
    // The name has no members: it may become plain...
    let plain = t.group("g").subscribe(|_| ());
    assert!(plain.is_ok(), "a memberless group name is free: {plain:?}");
    plain.unwrap().unsubscribe();
    // ...or keyed by another function, which is then the one used.
    let new_calls = Arc::new(AtomicU64::new(0));
    let c = new_calls.clone();
    let second = t
        .group("g")
        .keyed(move |v: &u64| {
            c.fetch_add(1, Ordering::SeqCst);
            *v
        })
        .subscribe(|_| ())
        .unwrap();
    t.publish_tracked(2).unwrap().wait().unwrap();
    assert_eq!(
        old_calls.load(Ordering::SeqCst),
        before,
        "the old key function ran"
    );
    assert!(new_calls.load(Ordering::SeqCst) >= 1);
    second.unsubscribe();
    assert!(engine.shutdown().complete);
}

// ---------------------------------------------------------------------------
// Keyed groups: churn
// ---------------------------------------------------------------------------

const CHURN_KEYS: usize = 8;
const CHURN_PRODUCERS: usize = 4;
const CHURN_PER_PRODUCER: u64 = 1_500;

/// (producer, key, sequence number of that producer).
type Keyed = (usize, usize, u64);

struct Checks {
    in_flight: Vec<AtomicBool>,
    /// Next expected minimum sequence per (producer, key).
    last: Vec<AtomicU64>,
    seen: Vec<AtomicUsize>,
    overlaps: AtomicU64,
    out_of_order: AtomicU64,
}

#[test]
fn keyed_order_and_one_at_a_time_hold_while_members_join_and_leave_themselves() {
    let _w = watchdog("keyed churn", LIMIT);
    let engine = engine(2, IdleStrategy::Park, 64);
    let t = engine.topic::<Keyed>("keyed.churn").unwrap();
    let g = t.group("g").keyed(|m: &Keyed| m.1);
    let total = CHURN_PRODUCERS * CHURN_PER_PRODUCER as usize;
    let checks = Arc::new(Checks {
        in_flight: (0..CHURN_KEYS).map(|_| AtomicBool::new(false)).collect(),
        last: (0..CHURN_PRODUCERS * CHURN_KEYS)
            .map(|_| AtomicU64::new(0))
            .collect(),
        seen: (0..total).map(|_| AtomicUsize::new(0)).collect(),
        overlaps: AtomicU64::new(0),
        out_of_order: AtomicU64::new(0),
    });
    let handler = |checks: Arc<Checks>| {
        move |ev: &Event<Keyed>| {
            let (p, k, seq) = **ev;
            if checks.in_flight[k].swap(true, Ordering::AcqRel) {
                checks.overlaps.fetch_add(1, Ordering::Relaxed);
            }
            for _ in 0..20 {
                std::hint::spin_loop();
            }
            let last = &checks.last[p * CHURN_KEYS + k];
            if last.load(Ordering::Relaxed) > seq {
                checks.out_of_order.fetch_add(1, Ordering::Relaxed);
            }
            last.store(seq + 1, Ordering::Relaxed);
            checks.seen[p * CHURN_PER_PRODUCER as usize + seq as usize]
                .fetch_add(1, Ordering::Relaxed);
            checks.in_flight[k].store(false, Ordering::Release);
        }
    };
    // Two members that stay, one per worker.
    for w in 0..2 {
        g.subscribe_with(handler(checks.clone()), SubscribeOptions::new().worker(w))
            .unwrap();
    }
    let producers: Vec<_> = (0..CHURN_PRODUCERS)
        .map(|p| {
            let t = t.clone();
            std::thread::spawn(move || {
                for seq in 0..CHURN_PER_PRODUCER {
                    t.publish((p, (seq as usize * 7 + p) % CHURN_KEYS, seq))
                        .unwrap();
                }
            })
        })
        .collect();
    // Meanwhile members come and go: some removed from outside, some
    // remove themselves from inside their handler after a few events.
    let mut joined = 0;
    while producers.iter().any(|p| !p.is_finished()) && joined < 200 {
        joined += 1;
        let c = checks.clone();
        let inner = handler(checks.clone());
        let me: Arc<Mutex<Option<Subscription>>> = Arc::new(Mutex::new(None));
        let me2 = me.clone();
        let mut n = 0;
        let sub = g
            .subscribe_with(
                move |ev: &Event<Keyed>| {
                    inner(ev);
                    n += 1;
                    if n == 3 {
                        if let Some(s) = me2.lock().unwrap().take() {
                            s.unsubscribe(); // from its own worker
                        }
                    }
                    let _ = &c;
                },
                SubscribeOptions::new().worker(joined % 2),
            )
            .unwrap();
        if joined % 2 == 0 {
            *me.lock().unwrap() = Some(sub);
        } else {
            sub.unsubscribe();
        }
    }
    for p in producers {
        p.join().unwrap();
    }
    let report = within("shutdown after keyed churn", move || engine.shutdown());
    assert!(report.complete, "{report:?}");
    assert_eq!(
        checks.overlaps.load(Ordering::Relaxed),
        0,
        "two in flight per key"
    );
    assert_eq!(
        checks.out_of_order.load(Ordering::Relaxed),
        0,
        "order per key"
    );
    let wrong: Vec<_> = (0..total)
        .filter(|&i| checks.seen[i].load(Ordering::Relaxed) != 1)
        .collect();
    assert!(
        wrong.is_empty(),
        "not exactly once: {} events, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
    assert_eq!(report.discarded, 0, "{report:?}");
}

// ---------------------------------------------------------------------------
// Services
// ---------------------------------------------------------------------------

/// A panic payload whose own `Drop` panics.
struct BadPayload;

impl Drop for BadPayload {
    fn drop(&mut self) {
        panic!("{EXPECTED} panic payload's drop");
    }
}

#[test]
fn a_member_that_panics_or_fails_in_every_way_answers_failed_and_stays() {
    quiet_expected_panics();
    let _w = watchdog("service member failures", LIMIT);
    let engine = engine(1, IdleStrategy::Park, 64);
    let svc = engine.service::<u32, u32>("svc.hostile").unwrap();
    svc.serve(|q| -> Result<u32, String> {
        match **q {
            0 => Err("zero is refused".to_owned()),
            1 => panic!("{EXPECTED} member panics"),
            2 => std::panic::panic_any(42u64), // not a string
            3 => std::panic::panic_any(BadPayload),
            n => Ok(n * 10),
        }
    })
    .unwrap();
    let results = within("calls to a hostile member", move || {
        (0..5).map(|q| svc.call(q)).collect::<Vec<_>>()
    });
    match &results[0] {
        Err(CallError::Failed(m)) => assert!(m.contains("zero is refused"), "{m}"),
        other => panic!("{other:?}"),
    }
    match &results[1] {
        Err(CallError::Failed(m)) => assert!(m.contains("member panics"), "{m}"),
        other => panic!("{other:?}"),
    }
    for r in &results[2..4] {
        match r {
            Err(CallError::Failed(m)) => assert!(m.contains("panicked"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
    assert!(matches!(results[4], Ok(40)), "{:?}", results[4]);
    let report = engine.shutdown();
    assert!(report.complete, "{report:?}");
    assert_eq!((report.handled, report.failed), (1, 4), "{report:?}");
}

/// A reply whose `Drop` panics, and counts its drops.
struct BombReply(Arc<AtomicU64>);

impl Drop for BombReply {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
        panic!("{EXPECTED} reply's drop");
    }
}

#[test]
fn a_reply_after_the_caller_timed_out_is_discarded_even_if_its_drop_panics() {
    quiet_expected_panics();
    let _w = watchdog("late reply", LIMIT);
    let engine = engine(1, IdleStrategy::Park, 64);
    let svc = engine.service::<u32, BombReply>("svc.late").unwrap();
    let drops = Arc::new(AtomicU64::new(0));
    let (started_tx, started) = mpsc::channel();
    let (go_tx, go) = mpsc::channel::<()>();
    let go = Mutex::new(go);
    let d = drops.clone();
    svc.serve(move |q| {
        if **q == 0 {
            started_tx.send(()).unwrap();
            go.lock().unwrap().recv().unwrap();
        }
        BombReply(d.clone())
    })
    .unwrap();
    let caller = {
        let svc = svc.clone();
        std::thread::spawn(move || svc.call_timeout(0, Duration::from_millis(20)))
    };
    started.recv_timeout(PATIENCE).expect("the member started");
    // The member is blocked until the caller has given up: a timeout.
    let timed_out = caller.join().unwrap();
    assert!(
        matches!(timed_out, Err(CallError::Timeout)),
        "{:?}",
        timed_out.err()
    );
    go_tx.send(()).unwrap();
    // The member answers late; the answer is dropped (and panics) on its
    // worker, which survives: the next call is answered.
    let next = within("a call after a late reply", {
        let svc = svc.clone();
        move || svc.call(1).map(std::mem::forget)
    });
    assert!(next.is_ok(), "{:?}", next.err());
    let report = engine.shutdown();
    assert!(report.complete, "{report:?}");
    assert_eq!(
        drops.load(Ordering::SeqCst),
        1,
        "the late reply was dropped once"
    );
}

#[test]
fn calls_queued_when_the_last_member_leaves_get_no_server_with_their_query() {
    let _w = watchdog("last service member leaves", LIMIT);
    let engine = engine(1, IdleStrategy::Park, 64);
    let svc = engine.service::<String, usize>("svc.leaving").unwrap();
    let (started_tx, started) = mpsc::channel();
    let (go_tx, go) = mpsc::channel::<()>();
    let go = Mutex::new(go);
    let member = svc
        .serve(move |q: &Event<String>| {
            if q.as_str() == "first" {
                started_tx.send(()).unwrap();
                go.lock().unwrap().recv().unwrap();
            }
            q.len()
        })
        .unwrap();
    let first = {
        let svc = svc.clone();
        std::thread::spawn(move || svc.call("first".to_owned()))
    };
    started.recv_timeout(PATIENCE).expect("the member started");
    // Queued behind the first: the member will never get to them.
    let (queued_tx, queued) = mpsc::channel();
    let queued_callers: Vec<_> = (0..3)
        .map(|i| {
            let svc = svc.clone();
            let queued_tx = queued_tx.clone();
            std::thread::spawn(move || {
                queued_tx.send(()).unwrap();
                svc.call(format!("queued {i}"))
            })
        })
        .collect();
    for _ in 0..3 {
        queued.recv_timeout(PATIENCE).unwrap();
    }
    let leaving = std::thread::spawn(move || member.unsubscribe());
    go_tx.send(()).unwrap();
    leaving.join().unwrap();
    assert!(matches!(first.join().unwrap(), Ok(5)));
    for (i, c) in queued_callers.into_iter().enumerate() {
        match c.join().unwrap() {
            // Taken before the member left...
            Ok(n) => assert_eq!(n, 8),
            // ...or handed back.
            Err(CallError::NoServer(q)) => assert_eq!(q, format!("queued {i}")),
            Err(e) => panic!("queued call {i}: {e:?}"),
        }
    }
    assert!(engine.shutdown().complete);
}

#[test]
fn callers_racing_shutdown_all_return_answered_or_closed() {
    let _w = watchdog("calls racing shutdown", LIMIT);
    let engine = engine(2, IdleStrategy::Park, 16);
    let svc = engine.service::<u64, u64>("svc.race").unwrap();
    for w in 0..2 {
        let _ = w;
        svc.serve(|n| **n + 1).unwrap();
    }
    let answered = Arc::new(AtomicU64::new(0));
    let (first_tx, first) = mpsc::channel();
    let callers: Vec<_> = (0..4)
        .map(|c| {
            let svc = svc.clone();
            let answered = answered.clone();
            let first_tx = first_tx.clone();
            std::thread::spawn(move || {
                let mut n = 0u64;
                loop {
                    let r = if c % 2 == 0 {
                        svc.call(n)
                    } else {
                        futures::executor::block_on(svc.call_async(n))
                    };
                    match r {
                        Ok(reply) => {
                            assert_eq!(reply, n + 1);
                            answered.fetch_add(1, Ordering::SeqCst);
                            if n == 0 {
                                first_tx.send(()).unwrap();
                            }
                        }
                        Err(e) => return e,
                    }
                    n += 1;
                }
            })
        })
        .collect();
    // The service handle goes away while calls are in flight (callers hold
    // clones), then the engine shuts down under them.
    drop(svc);
    for _ in 0..4 {
        first
            .recv_timeout(PATIENCE)
            .expect("every caller got a reply");
    }
    let report = within("shutdown under calls", move || engine.shutdown());
    assert!(report.complete, "{report:?}");
    for c in callers {
        let e = within("a caller after shutdown", move || c.join().unwrap());
        assert!(matches!(e, CallError::Closed), "{e:?}: {e}");
    }
    assert!(answered.load(Ordering::SeqCst) >= 4);
}

#[test]
fn dropping_the_engine_under_a_waiting_caller_closes_the_call() {
    let _w = watchdog("engine dropped under a caller", LIMIT);
    let engine = engine(1, IdleStrategy::Park, 16);
    let svc = engine.service::<u8, u8>("svc.dropped").unwrap();
    // No member ever answers on time: the member waits for the drop.
    let (started_tx, started) = mpsc::channel();
    let (go_tx, go) = mpsc::channel::<()>();
    let go = Mutex::new(go);
    svc.serve(move |q| {
        if **q == 0 {
            started_tx.send(()).unwrap();
            let _ = go.lock().unwrap().recv();
        }
        **q
    })
    .unwrap();
    let caller = {
        let svc = svc.clone();
        std::thread::spawn(move || (svc.call(0), svc.call(1)))
    };
    started.recv_timeout(PATIENCE).unwrap();
    let dropper = std::thread::spawn(move || drop(engine));
    drop(go_tx); // the member returns once the engine is being dropped
    within("engine drop", move || dropper.join().unwrap());
    let (a, b) = within("the caller", move || caller.join().unwrap());
    assert!(matches!(a, Ok(0)), "{a:?}");
    assert!(matches!(b, Ok(1) | Err(CallError::Closed)), "{b:?}");
    assert!(matches!(svc.call(2), Err(CallError::Closed)));
}

// ---------------------------------------------------------------------------
// Patterns
// ---------------------------------------------------------------------------

#[test]
fn pattern_subscriptions_churned_while_matching_topics_are_created() {
    let _w = watchdog("pattern churn", LIMIT);
    let engine = Arc::new(engine(2, IdleStrategy::Park, 64));
    const TOPICS: u64 = 60;
    // Live before any topic exists: sees every event once (guarantee 5).
    let steady = Log::new();
    let s = steady.clone();
    engine
        .pattern::<u64>("churn.*")
        .unwrap()
        .subscribe(move |ev| s.push(**ev))
        .unwrap();
    let steady_group = Log::new();
    let group = engine.pattern::<u64>("churn.>").unwrap().group("g");
    for _ in 0..2 {
        let s = steady_group.clone();
        group.subscribe(move |ev| s.push(**ev)).unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let churners: Vec<_> = (0..2)
        .map(|c| {
            let engine = engine.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut duplicates = 0;
                let mut rounds = 0;
                while !stop.load(Ordering::SeqCst) || rounds < 3 {
                    rounds += 1;
                    let seen = Arc::new(Mutex::new(HashSet::new()));
                    let dup = Arc::new(AtomicU64::new(0));
                    let (s, d) = (seen.clone(), dup.clone());
                    let p = engine
                        .pattern::<u64>(if c == 0 { "churn.*" } else { "*.*" })
                        .unwrap();
                    let sub = if rounds % 2 == 0 {
                        p.subscribe(move |ev| {
                            if !s.lock().unwrap().insert(**ev) {
                                d.fetch_add(1, Ordering::SeqCst);
                            }
                        })
                    } else {
                        p.group("churning").subscribe(move |ev| {
                            if !s.lock().unwrap().insert(**ev) {
                                d.fetch_add(1, Ordering::SeqCst);
                            }
                        })
                    }
                    .unwrap();
                    sub.unsubscribe();
                    duplicates += dup.load(Ordering::SeqCst);
                }
                duplicates
            })
        })
        .collect();
    let mut receipts = Vec::new();
    let mut topics = Vec::new();
    for i in 0..TOPICS {
        let t = engine.topic::<u64>(&format!("churn.t{i}")).unwrap();
        receipts.push(t.publish_tracked(i).unwrap());
        // Every other topic is dropped at once (freed once its events are
        // handled and no pattern part holds it).
        if i % 2 == 0 {
            topics.push(t);
        }
    }
    wait_all(&receipts, "pattern churn");
    stop.store(true, Ordering::SeqCst);
    for c in churners {
        assert_eq!(
            c.join().unwrap(),
            0,
            "a churning subscription saw an event twice"
        );
    }
    drop(topics);
    let engine = Arc::into_inner(engine).expect("the last engine handle");
    let report = within("shutdown after pattern churn", move || engine.shutdown());
    assert!(report.complete, "{report:?}");
    let mut got = steady.snapshot();
    got.sort_unstable();
    assert_eq!(got, (0..TOPICS).collect::<Vec<_>>());
    let mut got = steady_group.snapshot();
    got.sort_unstable();
    assert_eq!(got, (0..TOPICS).collect::<Vec<_>>());
}

#[test]
fn a_retry_copy_whose_clone_panics_is_counted_and_the_receipt_completes() {
    quiet_expected_panics();
    let _w = watchdog("pattern retry with a panicking clone", LIMIT);
    let engine = engine(1, IdleStrategy::Park, 64);
    let policy = RetryPolicy::fixed(Duration::from_millis(1)).max_attempts(3);
    let attempts = Arc::new(AtomicU64::new(0));
    let a = attempts.clone();
    let sub = engine
        .pattern::<Fragile>("fragile.*")
        .unwrap()
        .subscribe_with(
            move |_: &Event<Fragile>| {
                a.fetch_add(1, Ordering::SeqCst);
                Err::<(), _>("always fails")
            },
            SubscribeOptions::new().retry(policy),
        )
        .unwrap();
    let t = engine.topic::<Fragile>("fragile.a").unwrap();
    let armed = Arc::new(AtomicBool::new(true));
    // One lane: the publish moves the event, no clone until the retry.
    let r = t
        .publish_tracked(Fragile {
            v: 1,
            armed: armed.clone(),
        })
        .unwrap();
    assert!(r.wait_timeout(PATIENCE), "the receipt never completed");
    armed.store(false, Ordering::SeqCst);
    // A healthy event still goes through every attempt and is dead-lettered.
    let r = t
        .publish_tracked(Fragile {
            v: 2,
            armed: armed.clone(),
        })
        .unwrap();
    assert!(r.wait_timeout(PATIENCE));
    let dead = t.take_dead_letters();
    assert_eq!(dead.iter().map(|d| d.event().v).collect::<Vec<_>>(), [2]);
    sub.unsubscribe();
    let report = engine.shutdown();
    assert!(report.complete, "{report:?}");
    assert_eq!(attempts.load(Ordering::SeqCst), 1 + 3);
    assert!(
        report.stray_panics >= 1,
        "the clone's panic is counted: {report:?}"
    );
}

#[test]
fn a_fan_out_clone_that_panics_is_all_or_nothing_for_keyed_and_pattern_groups() {
    quiet_expected_panics();
    let _w = watchdog("fan-out clone panics", LIMIT);
    let engine = engine(2, IdleStrategy::Park, 64);
    let t = engine.topic::<Fragile>("fanout.a").unwrap();
    let keyed = Log::new();
    let k = keyed.clone();
    t.group("k")
        .keyed(|f: &Fragile| f.v % 3)
        .subscribe_with(move |ev| k.push(ev.v), SubscribeOptions::new().worker(0))
        .unwrap();
    let pattern = Log::new();
    let p = pattern.clone();
    engine
        .pattern::<Fragile>("fanout.*")
        .unwrap()
        .group("pg")
        .subscribe_with(move |ev| p.push(ev.v), SubscribeOptions::new().worker(1))
        .unwrap();
    let armed = Arc::new(AtomicBool::new(false));
    for v in 0..20 {
        armed.store(v % 4 == 1, Ordering::SeqCst);
        let ev = Fragile {
            v,
            armed: armed.clone(),
        };
        // The publisher's own `Clone` panics on the publisher's thread
        // (as in tests/panic_containment.rs), and the event is in no lane.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| t.publish(ev)));
        match result {
            Ok(r) => assert!(v % 4 != 1 && r.is_ok(), "event {v}: {r:?}"),
            Err(_) => assert_eq!(v % 4, 1, "event {v}"),
        }
    }
    armed.store(false, Ordering::SeqCst);
    let report = engine.shutdown();
    assert!(report.complete, "{report:?}");
    let want: Vec<u64> = (0..20).filter(|v| v % 4 != 1).collect();
    let mut got = keyed.snapshot();
    got.sort_unstable();
    assert_eq!(got, want, "keyed group: all-or-nothing");
    let mut got = pattern.snapshot();
    got.sort_unstable();
    assert_eq!(got, want, "pattern group: all-or-nothing");
}

/// An event whose `Drop` panics when armed.
struct Bomb {
    key: u64,
    armed: bool,
}

impl Drop for Bomb {
    fn drop(&mut self) {
        if self.armed {
            panic!("{EXPECTED} drop of {}", self.key);
        }
    }
}

impl Clone for Bomb {
    fn clone(&self) -> Self {
        Bomb {
            key: self.key,
            armed: self.armed,
        }
    }
}

#[test]
fn events_whose_drop_panics_queued_in_a_keyed_group_at_shutdown_are_contained() {
    quiet_expected_panics();
    let _w = watchdog("keyed drop panics", LIMIT);
    let engine = engine(2, IdleStrategy::Park, 64);
    let t = engine.topic::<Bomb>("bombs").unwrap();
    let g = t.group("g").keyed(|b: &Bomb| b.key % 4);
    let (started_tx, started) = mpsc::channel();
    let (go_tx, go) = mpsc::channel::<()>();
    let go = Mutex::new(go);
    let handled = Arc::new(AtomicU64::new(0));
    let h = handled.clone();
    // Member A blocks in its first pass, holding its partition: member B,
    // which joins after, queues the events of that partition behind it.
    let a = g
        .subscribe_with(
            move |_| {
                if started_tx.send(()).is_ok() {
                    let _ = go.lock().unwrap().recv();
                }
                h.fetch_add(1, Ordering::SeqCst);
            },
            SubscribeOptions::new().worker(0),
        )
        .unwrap();
    t.publish(Bomb {
        key: 0,
        armed: true,
    })
    .unwrap();
    started.recv_timeout(PATIENCE).unwrap();
    let h = handled.clone();
    g.subscribe_with(
        move |_| {
            h.fetch_add(1, Ordering::SeqCst);
        },
        SubscribeOptions::new().worker(1),
    )
    .unwrap();
    for i in 0..40 {
        t.publish(Bomb {
            key: i,
            armed: true,
        })
        .unwrap();
    }
    // A leaves while blocked (its handler finishes first), then shutdown.
    let leaving = std::thread::spawn(move || a.unsubscribe());
    drop(go_tx);
    within("the blocked member leaving", move || {
        leaving.join().unwrap()
    });
    let report = within("shutdown with bombs queued", move || engine.shutdown());
    assert!(report.complete, "{report:?}");
    assert_eq!(report.published, 41);
    assert_eq!(
        report.handled + report.discarded,
        41,
        "each event handled or discarded: {report:?}"
    );
    assert_eq!(handled.load(Ordering::SeqCst), report.handled);
    assert!(report.stray_panics >= 41, "every drop panicked: {report:?}");
}

// ---------------------------------------------------------------------------
// Streams handing events back
// ---------------------------------------------------------------------------

/// Polls `stream` once (a waker that wakes `woken`).
fn poll_once<T>(
    stream: &mut pinbus::EventStream<T>,
    woken: &mpsc::Sender<()>,
) -> std::task::Poll<Option<Event<T>>> {
    use futures::Stream;
    struct W(Mutex<mpsc::Sender<()>>);
    impl futures::task::ArcWake for W {
        fn wake_by_ref(this: &Arc<Self>) {
            let _ = this.0.lock().unwrap().send(());
        }
    }
    let waker = futures::task::waker(Arc::new(W(Mutex::new(woken.clone()))));
    let mut cx = std::task::Context::from_waker(&waker);
    std::pin::Pin::new(stream).poll_next(&mut cx)
}

#[test]
fn a_dropped_pattern_group_stream_hands_back_to_the_other_member_exactly_once() {
    let _w = watchdog("pattern group stream hand-back", LIMIT);
    let engine = engine(2, IdleStrategy::Park, 64);
    let a = engine.topic::<u64>("back.a").unwrap();
    let b = engine.topic::<u64>("back.b").unwrap();
    let group = engine.pattern::<u64>("back.*").unwrap().group("g");
    let mut stream = group.subscribe_stream().unwrap();
    let (woken_tx, woken) = mpsc::channel();
    assert!(poll_once(&mut stream, &woken_tx).is_pending());
    let mut receipts = Vec::new();
    for i in 0..40u64 {
        let t = if i % 2 == 0 { &a } else { &b };
        receipts.push(t.publish_tracked(i).unwrap());
    }
    // The stream's member has taken at least one event into its buffer.
    woken.recv_timeout(PATIENCE).unwrap();
    let log = Log::new();
    let l = log.clone();
    group.subscribe(move |ev| l.push(**ev)).unwrap();
    drop(stream); // yielded nothing: all of it goes to the other member
    wait_all(&receipts, "hand-back");
    let report = engine.shutdown();
    assert!(report.complete, "{report:?}");
    let mut got = log.snapshot();
    got.sort_unstable();
    assert_eq!(got, (0..40).collect::<Vec<_>>(), "exactly once: {report:?}");
}

/// A group's stream member dropped by a handler on another worker (while
/// the member's own handler, on its worker, waits for room in the stream's
/// full buffer) or on its own worker (between two of its handler's calls):
/// what the stream buffered, and what its handler still takes after the
/// drop, goes back to the group. The other member gets every event exactly
/// once and nothing is discarded.
#[test]
fn a_group_stream_dropped_from_a_handler_on_any_worker_hands_back_everything() {
    let _w = watchdog("group stream dropped from a handler", LIMIT);
    // On its own worker, the drop cannot come while the stream's handler
    // waits for room (the worker is in that wait): fewer events than the
    // buffer holds.
    for (same_worker, n) in [(false, 600u64), (true, 40)] {
        for idle in [IdleStrategy::Park, IdleStrategy::BusySpin] {
            for round in 0..10 {
                let what = format!("same worker: {same_worker}, {idle:?}, round {round}");
                let engine = engine(2, idle, 64);
                let jobs = engine.topic::<u64>("jobs").unwrap();
                let group = jobs.group("g");
                let stream = group.subscribe_stream().unwrap();
                let w = stream.subscription().worker();
                let ctl_on = SubscribeOptions::new().worker(if same_worker { w } else { 1 - w });
                let held = Arc::new(Mutex::new(Some(stream)));
                let h = held.clone();
                let ctl = engine.topic::<()>("ctl").unwrap();
                ctl.subscribe_with(move |_| drop(h.lock().unwrap().take()), ctl_on)
                    .unwrap();
                let log = Log::new();
                let l = log.clone();
                let other = SubscribeOptions::new().worker(1 - w);
                group
                    .subscribe_with(move |ev: &Event<u64>| l.push(**ev), other)
                    .unwrap();
                // Nobody polls the stream: its buffer fills (and, with 600
                // events, its handler waits for room) before the drop.
                let receipts: Vec<_> = (0..n).map(|i| jobs.publish_tracked(i).unwrap()).collect();
                ctl.publish(()).unwrap();
                wait_all(&receipts, &what);
                let report = engine.shutdown();
                assert!(report.complete, "{what}: {report:?}");
                let mut got = log.snapshot();
                got.sort_unstable();
                assert_eq!(
                    (got.len() as u64, report.discarded),
                    (n, 0),
                    "{what}: every event to the other member: {report:?}"
                );
                assert_eq!(got, (0..n).collect::<Vec<_>>(), "{what}: exactly once");
                assert!(
                    held.lock().unwrap().is_none(),
                    "{what}: the handler dropped the stream"
                );
            }
        }
    }
}

/// The last member of a pattern group, a stream, dropped with events in
/// its buffer: they are discarded and counted, whether or not their topic
/// is still open.
fn last_stream_member_dropped(pattern: bool, keep_topic: bool) -> pinbus::ShutdownReport {
    let engine = engine(1, IdleStrategy::Park, 64);
    let (t, mut stream) = if pattern {
        let group = engine.pattern::<u64>("freed.*").unwrap().group("g");
        let stream = group.subscribe_stream().unwrap();
        (engine.topic::<u64>("freed.a").unwrap(), stream)
    } else {
        let t = engine.topic::<u64>("freed.a").unwrap();
        let stream = t.group("g").subscribe_stream().unwrap();
        (t, stream)
    };
    let (woken_tx, woken) = mpsc::channel();
    assert!(poll_once(&mut stream, &woken_tx).is_pending());
    let receipts: Vec<_> = (0..5).map(|i| t.publish_tracked(i).unwrap()).collect();
    woken.recv_timeout(PATIENCE).unwrap();
    let kept = keep_topic.then_some(t);
    // Without `kept`, only the stream's part keeps the topic now.
    drop(stream);
    wait_all(&receipts, "discarded events' receipts");
    let report = engine.shutdown();
    drop(kept);
    report
}

#[test]
fn a_last_pattern_group_stream_member_dropped_counts_what_it_held_as_discarded() {
    let _w = watchdog("pattern group stream on a freed topic", LIMIT);
    // A plain group's stream: what it held is counted as discarded.
    let plain = last_stream_member_dropped(false, true);
    assert!(plain.complete, "{plain:?}");
    assert_eq!(plain.published, 5, "{plain:?}");
    // (How many the stream had buffered when dropped varies; all five
    // are discarded, from its buffer or from the lane.)
    assert_eq!(plain.discarded, 5, "{plain:?}");
    let want = (plain.published, plain.discarded);
    for keep_topic in [true, false] {
        let r = last_stream_member_dropped(true, keep_topic);
        assert!(r.complete, "{r:?}");
        assert_eq!(
            (r.published, r.discarded),
            want,
            "a pattern group's stream (topic kept: {keep_topic}) counts as a plain group's: {r:?}"
        );
    }
}

#[test]
fn a_key_function_that_removes_the_last_member_of_its_group_returns() {
    let _w = watchdog("key function removes the last member", LIMIT);
    let engine = engine(1, IdleStrategy::Park, 64);
    let t = engine.topic::<u64>("keyed.last_leaves").unwrap();
    let only: Arc<Mutex<Option<Subscription>>> = Arc::new(Mutex::new(None));
    let o = only.clone();
    // The first key call waits until all ten are published, so that every
    // one was published while the member was there.
    let (go_tx, go) = mpsc::channel::<()>();
    let go = Mutex::new(Some(go));
    let calls = Arc::new(Mutex::new(Vec::new()));
    let c = calls.clone();
    let g = t.group("g").keyed(move |v: &u64| {
        c.lock().unwrap().push(*v);
        if let Some(go) = go.lock().unwrap().take() {
            let _ = go.recv();
        }
        if *v == 3 {
            let sub = o.lock().unwrap().take();
            if let Some(sub) = sub {
                sub.unsubscribe();
            }
        }
        *v
    });
    let log = Log::new();
    let l = log.clone();
    *only.lock().unwrap() = Some(g.subscribe(move |ev| l.push(**ev)).unwrap());
    let receipts: Vec<_> = (0..10).map(|i| t.publish_tracked(i).unwrap()).collect();
    go_tx.send(()).unwrap();
    wait_all(&receipts, "the last member left from its key function");
    let report = within("shutdown", move || engine.shutdown());
    assert!(report.complete, "{report:?}");
    assert_eq!(report.published, 10);
    assert_eq!(
        report.handled + report.discarded,
        10,
        "handled before the member left, or discarded: {report:?}"
    );
    assert_eq!(log.len() as u64, report.handled);
    // Once per event, also for the events handed back when the member left.
    let mut calls = calls.lock().unwrap().clone();
    calls.sort_unstable();
    assert_eq!(calls, (0..10).collect::<Vec<u64>>(), "key function calls");
}

#[test]
fn a_key_function_that_shuts_down_or_drops_the_engine_returns_and_drains() {
    let _w = watchdog("key function shuts the engine down", LIMIT);
    for drop_it in [false, true] {
        let engine = Arc::new(Mutex::new(Some(engine(2, IdleStrategy::Park, 64))));
        let t = {
            let e = engine.lock().unwrap();
            e.as_ref().unwrap().topic::<u64>("keyed.shutdown").unwrap()
        };
        let inner = Arc::new(Mutex::new(None));
        let (e, r) = (engine.clone(), inner.clone());
        let g = t.group("g").keyed(move |v: &u64| {
            if *v == 5 {
                if drop_it {
                    // The last engine handle, dropped on a worker.
                    let last = e.lock().unwrap().take();
                    drop(last);
                } else if let Some(engine) = e.lock().unwrap().as_ref() {
                    *r.lock().unwrap() = Some(engine.shutdown());
                }
            }
            *v
        });
        let log = Log::new();
        for w in 0..2 {
            let l = log.clone();
            g.subscribe_with(move |ev| l.push(**ev), SubscribeOptions::new().worker(w))
                .unwrap();
        }
        let mut receipts = Vec::new();
        for i in 0..20 {
            match t.publish_tracked(i) {
                Ok(r) => receipts.push(r),
                Err(e) => assert!(i > 5, "{i}: {e}"), // closed once shut down
            }
        }
        wait_all(&receipts, "events accepted before the shutdown");
        let mut got = log.snapshot();
        got.sort_unstable();
        assert_eq!(
            got,
            (0..receipts.len() as u64).collect::<Vec<_>>(),
            "drop {drop_it}: every accepted event is handled"
        );
        if !drop_it {
            let from_key = inner.lock().unwrap().take().expect("shutdown returned");
            assert!(!from_key.complete, "from a worker it cannot wait");
            let engine = engine.lock().unwrap().take().unwrap();
            let report = within("shutdown after one from a key function", move || {
                engine.shutdown()
            });
            assert!(report.complete, "{report:?}");
        }
        drop(t);
    }
}

#[test]
fn a_pattern_handler_that_creates_matching_topics_subscribes_and_leaves_returns() {
    let _w = watchdog("re-entrant pattern handler", LIMIT);
    let engine = Arc::new(engine(2, IdleStrategy::Park, 8));
    let log = Log::new();
    let me: Arc<Mutex<Option<Subscription>>> = Arc::new(Mutex::new(None));
    let later: Arc<Mutex<Vec<Subscription>>> = Arc::new(Mutex::new(Vec::new()));
    // Weak: the handler is dropped on its worker some time after it
    // unsubscribes itself, and shutdown below wants the only engine.
    let e = Arc::downgrade(&engine);
    let (l, m, lt) = (log.clone(), me.clone(), later.clone());
    let (done_tx, done) = mpsc::channel();
    let done_tx = Mutex::new(done_tx);
    let sub = engine
        .pattern::<u64>("grow.>")
        .unwrap()
        .subscribe(move |ev: &Event<u64>| {
            l.push(**ev);
            let v = **ev;
            let Some(e) = e.upgrade() else { return };
            if v < 5 {
                // A topic created (and published to) from the handler: it
                // matches this very pattern, whose handler is running now.
                let t = e.topic::<u64>(&format!("grow.t{}", v + 1)).unwrap();
                t.publish(v + 1).unwrap();
                // Another pattern over the same topics, from a worker.
                let l2 = Log::new();
                lt.lock().unwrap().push(
                    e.pattern::<u64>("grow.*")
                        .unwrap()
                        .subscribe(move |ev| l2.push(**ev))
                        .unwrap(),
                );
            } else if let Some(me) = m.lock().unwrap().take() {
                me.unsubscribe(); // the whole pattern, from its own handler
                done_tx.lock().unwrap().send(()).unwrap();
            }
        })
        .unwrap();
    *me.lock().unwrap() = Some(sub);
    let t0 = engine.topic::<u64>("grow.t0").unwrap();
    let r = t0.publish_tracked(0).unwrap();
    assert!(r.wait_timeout(PATIENCE));
    done.recv_timeout(PATIENCE)
        .expect("the chain of topics reached 5");
    let report = within("shutdown after a re-entrant pattern", move || {
        engine.shutdown()
    });
    assert!(report.complete, "{report:?}");
    assert_eq!(log.snapshot(), [0, 1, 2, 3, 4, 5]);
    assert_eq!(later.lock().unwrap().len(), 5);
}

#[test]
fn a_service_member_that_adds_members_or_leaves_from_its_handler_still_answers() {
    let _w = watchdog("re-entrant service member", LIMIT);
    let engine = engine(2, IdleStrategy::Park, 16);
    let svc = engine.service::<u32, u32>("svc.reentrant").unwrap();
    let me: Arc<Mutex<Option<Subscription>>> = Arc::new(Mutex::new(None));
    let (s, m) = (Mutex::new(svc.clone()), me.clone());
    let first = svc
        .serve(move |q: &Event<u32>| {
            if **q == 1 {
                // A second member, added from the first one's handler...
                s.lock().unwrap().serve(|q| **q + 100).unwrap();
                // ...and the first leaves, from its own handler.
                if let Some(me) = m.lock().unwrap().take() {
                    me.unsubscribe();
                }
            }
            **q + 1
        })
        .unwrap();
    *me.lock().unwrap() = Some(first);
    let results = within("calls around a member leaving", {
        let svc = svc.clone();
        move || (0..4).map(|q| svc.call(q)).collect::<Vec<_>>()
    });
    assert!(matches!(results[0], Ok(1)), "{:?}", results[0]);
    assert!(
        matches!(results[1], Ok(2)),
        "answered by the leaving member: {:?}",
        results[1]
    );
    for (q, r) in results.iter().enumerate().skip(2) {
        assert!(
            matches!(r, Ok(n) if *n == q as u32 + 100),
            "call {q}, answered by the new member: {r:?}"
        );
    }
    drop(svc);
    assert!(engine.shutdown().complete);
}

#[test]
fn a_pattern_group_member_that_leaves_with_a_retry_pending_completes_the_receipt() {
    let _w = watchdog("pattern retry, member leaves", LIMIT);
    let (engine, clock) = common::manual_engine(2);
    let group = engine.pattern::<u64>("retry.*").unwrap().group("g");
    let policy = RetryPolicy::fixed(Duration::from_millis(5)).max_attempts(3);
    let (failed_tx, failed) = mpsc::channel();
    let failed_tx = Mutex::new(failed_tx);
    let leaving = group
        .subscribe_with(
            move |ev: &Event<u64>| {
                let _ = failed_tx.lock().unwrap().send(ev.attempt());
                Err::<(), _>("fails")
            },
            SubscribeOptions::new().worker(0).retry(policy),
        )
        .unwrap();
    let t = engine.topic::<u64>("retry.a").unwrap();
    let r = t.publish_tracked(1).unwrap();
    assert_eq!(failed.recv_timeout(PATIENCE).unwrap(), 1, "first attempt");
    // A member that stays joins; the one with the retry pending leaves.
    let stayed = Log::new();
    let s = stayed.clone();
    group
        .subscribe_with(
            move |ev: &Event<u64>| s.push(**ev),
            SubscribeOptions::new().worker(1).retry(policy),
        )
        .unwrap();
    leaving.unsubscribe();
    clock.advance(Duration::from_millis(5));
    assert!(
        r.wait_timeout(PATIENCE),
        "the receipt of an event whose retry was dropped"
    );
    drop(t);
    let report = within("shutdown", move || engine.shutdown());
    assert!(report.complete, "{report:?}");
    assert!(
        stayed.snapshot().is_empty(),
        "a retry belongs to its member"
    );
    assert_eq!(
        report.retries_dropped + report.dead_letters,
        1,
        "the dropped retry is counted: {report:?}"
    );
}
