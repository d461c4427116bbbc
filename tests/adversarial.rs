//! Hostile probes through the public API only: every engine and topic
//! method called re-entrantly from handlers, a panic in every user callback
//! the API takes, and churn of topics, groups, producer threads and engines.
//! Each probe checks that the engine still delivers afterwards and that
//! shutdown returns.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{
    engine, eventually, quiet_expected_panics, watchdog, DropCount, Log, EXPECTED, PATIENCE,
    STRATEGIES,
};
use pinbus::layer::{Filter, Handle, Layer, Outcome};
use pinbus::{
    Engine, Event, IdleStrategy, PublishError, Receipt, SubscribeOptions, Subscription, Topic,
    TopicError, TopicOptions, WaitError,
};

const LIMIT: Duration = Duration::from_secs(60);

/// A fresh topic on `engine` with one subscription: one event published
/// and waited for reaches it (the engine still delivers).
fn assert_delivers(engine: &Engine, what: &str) {
    static N: AtomicU64 = AtomicU64::new(0);
    let name = format!("probe.{}", N.fetch_add(1, Ordering::Relaxed));
    let topic = engine.topic::<u64>(&name).unwrap();
    let seen = Arc::new(AtomicU64::new(0));
    let s = seen.clone();
    let sub = topic
        .subscribe(move |_| {
            s.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    topic.publish_and_wait(1).unwrap();
    assert_eq!(seen.load(Ordering::SeqCst), 1, "{what}: no delivery");
    sub.unsubscribe();
}

/// Delivery on every worker of `engine`.
fn assert_every_worker_delivers(engine: &Engine, what: &str) {
    static N: AtomicU64 = AtomicU64::new(0);
    let name = format!("probe.all.{}", N.fetch_add(1, Ordering::Relaxed));
    let topic = engine.topic::<u64>(&name).unwrap();
    let seen = Arc::new(AtomicU64::new(0));
    let subs: Vec<Subscription> = (0..engine.workers())
        .map(|w| {
            let s = seen.clone();
            topic
                .subscribe_with(
                    move |_| {
                        s.fetch_add(1, Ordering::SeqCst);
                    },
                    SubscribeOptions::new().worker(w),
                )
                .unwrap()
        })
        .collect();
    topic.publish_and_wait(1).unwrap();
    assert_eq!(
        seen.load(Ordering::SeqCst),
        engine.workers() as u64,
        "{what}: a worker no longer delivers"
    );
    for s in subs {
        s.unsubscribe();
    }
}

// ---------------------------------------------------------------------------
// Re-entrant calls from handlers

type Step = Box<dyn FnOnce(&Engine) -> String + Send>;

/// An engine whose topic "ctl" runs, on each event, the step the test put in
/// the slot, and logs what the step returned.
struct Reentrant {
    engine: Arc<Engine>,
    ctl: Topic<u64>,
    slot: Arc<Mutex<Option<Step>>>,
    out: Log<String>,
    ctl_sub: Arc<Mutex<Option<Subscription>>>,
}

impl Reentrant {
    fn new(workers: usize, idle: IdleStrategy) -> Self {
        let engine = Arc::new(engine(workers, idle, 4));
        let ctl = engine
            .topic_with::<u64>("ctl", TopicOptions::default().worker(0))
            .unwrap();
        let slot: Arc<Mutex<Option<Step>>> = Arc::new(Mutex::new(None));
        let out = Log::new();
        let (e, s, o) = (Arc::downgrade(&engine), slot.clone(), out.clone());
        let sub = ctl
            .subscribe(move |_| {
                let step = s.lock().unwrap().take();
                if let (Some(step), Some(e)) = (step, e.upgrade()) {
                    o.push(step(&e));
                }
            })
            .unwrap();
        Reentrant {
            engine,
            ctl,
            slot,
            out,
            ctl_sub: Arc::new(Mutex::new(Some(sub))),
        }
    }

    /// Runs `step` inside the ctl handler and returns what it returned.
    fn run(&self, name: &str, step: impl FnOnce(&Engine) -> String + Send + 'static) -> String {
        let _w = watchdog(&format!("re-entrant step {name}"), LIMIT);
        let before = self.out.len();
        *self.slot.lock().unwrap() = Some(Box::new(step));
        self.ctl.publish_and_wait(0).unwrap();
        assert_eq!(self.out.len(), before + 1, "step {name} did not run");
        self.out.snapshot().pop().unwrap()
    }
}

#[test]
fn every_engine_and_topic_method_called_from_a_handler() {
    quiet_expected_panics();
    let _w = watchdog("re-entrant calls", LIMIT);
    for idle in STRATEGIES {
        // One worker: everything the handler touches is drained by the very
        // worker it runs on.
        let r = Reentrant::new(1, idle);
        let side = r.engine.topic::<u64>("side").unwrap();
        let side_seen = Log::new();
        let l = side_seen.clone();
        side.subscribe(move |ev| l.push(**ev)).unwrap();
        let kept: Arc<Mutex<Vec<Subscription>>> = Arc::default();
        let receipts: Arc<Mutex<Vec<Receipt>>> = Arc::default();

        assert_eq!(
            r.run("topic", |e| {
                let same = e.topic::<u64>("side").is_ok();
                let mismatch = matches!(
                    e.topic::<String>("side"),
                    Err(TopicError::TypeMismatch { .. })
                );
                format!("{same} {mismatch}")
            }),
            "true true"
        );
        assert_eq!(
            r.run("topic_with", |e| {
                let t = e.topic_with::<u64>("side.with", TopicOptions::default().worker(0));
                format!("{}", t.is_ok())
            }),
            "true"
        );
        assert_eq!(
            r.run("metrics", |e| {
                let m = e.metrics();
                format!("{}", m.topics.iter().any(|t| t.name == "side"))
            }),
            "true"
        );
        let k = kept.clone();
        assert_eq!(
            r.run("subscribe and group().subscribe", move |e| {
                let side = e.topic::<u64>("side").unwrap();
                let a = side.subscribe(|_| {}).unwrap();
                let b = side.group("g").subscribe(|_| {}).unwrap();
                k.lock().unwrap().extend([a, b]);
                "ok".into()
            }),
            "ok"
        );
        let rc = receipts.clone();
        assert_eq!(
            r.run("publish family", move |e| {
                let side = e.topic::<u64>("side").unwrap();
                let mut out = Vec::new();
                out.push(format!("{:?}", side.publish(1).map_err(|e| e.to_string())));
                // Under the lane limit here: nothing else is queued.
                out.push(format!("{:?}", side.try_publish(2).is_ok()));
                out.push(format!("{:?}", side.publish_batch([3, 4]).is_ok()));
                let receipt = side.publish_tracked(5).unwrap();
                // Its subscribers run on this very worker, busy right here.
                out.push(format!("{}", receipt.is_complete()));
                out.push(format!("{:?}", receipt.wait()));
                rc.lock().unwrap().push(receipt);
                match side.publish_and_wait(6) {
                    Err(PublishError::WouldDeadlock(v)) => out.push(format!("wd {v}")),
                    other => out.push(format!("{other:?}")),
                }
                let timer = side.publish_after(Duration::from_millis(1), 7).unwrap();
                drop(timer); // fires anyway
                let later = side.publish_after(Duration::from_secs(3600), 8).unwrap();
                out.push(format!("{:?}", later.cancel()));
                out.push(format!("{}", side.dead_letters().is_ok()));
                out.join(" ")
            }),
            format!(
                "Ok(()) true true false {:?} wd 6 Some(8) true",
                Err::<(), _>(WaitError::OnWorkerThread)
            )
        );
        let k = kept.clone();
        assert_eq!(
            r.run("unsubscribe others", move |_| {
                for s in k.lock().unwrap().drain(..) {
                    s.unsubscribe();
                }
                "ok".into()
            }),
            "ok"
        );
        for rc in receipts.lock().unwrap().iter() {
            assert!(
                rc.wait_timeout(PATIENCE),
                "{idle:?}: receipt never completed"
            );
        }
        assert!(eventually(PATIENCE, || side_seen.len() == 6));
        let mut seen = side_seen.snapshot();
        seen.sort_unstable();
        assert_eq!(seen, [1, 2, 3, 4, 5, 7], "{idle:?}");

        // Unsubscribing itself: the step runs, and ctl has no subscriber left.
        let me = r.ctl_sub.clone();
        assert_eq!(
            r.run("unsubscribe itself", move |_| {
                me.lock().unwrap().take().unwrap().unsubscribe();
                "ok".into()
            }),
            "ok"
        );
        r.ctl.publish_and_wait(1).unwrap();
        assert_delivers(&r.engine, &format!("{idle:?} after re-entrant calls"));
        let report = r.engine.shutdown();
        assert!(report.complete, "{idle:?}");
    }
}

#[test]
fn shutdown_from_a_handler_then_the_handler_keeps_publishing() {
    let _w = watchdog("shutdown from a handler, then publish", LIMIT);
    let r = Reentrant::new(2, IdleStrategy::Park);
    let side = r.engine.topic::<u64>("side").unwrap();
    let seen = Log::new();
    let l = seen.clone();
    side.subscribe(move |ev| l.push(**ev)).unwrap();
    let before = side.clone();
    let published = r.run("shutdown then publish", move |e| {
        let inner = e.shutdown();
        // The registry is closed, but a handler may keep publishing through
        // a handle it had while the engine drains.
        let reopened = e.topic::<u64>("side");
        let sent = before.publish(5);
        format!("{} {} {}", inner.complete, reopened.is_err(), sent.is_ok())
    });
    assert_eq!(published, "false true true");
    assert!(side.publish(1).unwrap_err().is_closed());
    let report = r.engine.shutdown();
    assert!(report.complete);
    assert_eq!(seen.snapshot(), [5]);
    assert!(r.ctl.publish(1).unwrap_err().is_closed());
}

#[test]
fn the_engine_dropped_in_a_handler_while_producers_publish() {
    let _w = watchdog("engine dropped in a handler under load", LIMIT);
    let drops = DropCount::new();
    let slot: Arc<Mutex<Option<Arc<Engine>>>> =
        Arc::new(Mutex::new(Some(Arc::new(engine(2, IdleStrategy::Park, 4)))));
    let (load, quit) = {
        let g = slot.lock().unwrap();
        let e = g.as_ref().unwrap();
        (
            e.topic::<u64>("load").unwrap(),
            e.topic::<u64>("quit").unwrap(),
        )
    };
    let handled = Arc::new(AtomicU64::new(0));
    let (h, token) = (handled.clone(), drops.token());
    load.subscribe(move |_| {
        let _keep = &token;
        h.fetch_add(1, Ordering::SeqCst);
    })
    .unwrap();
    let (s, token) = (slot.clone(), drops.token());
    quit.subscribe(move |_| {
        let _keep = &token;
        drop(s.lock().unwrap().take());
    })
    .unwrap();
    let accepted = Arc::new(AtomicU64::new(0));
    let producers: Vec<_> = (0..2)
        .map(|_| {
            let (t, a) = (load.clone(), accepted.clone());
            std::thread::spawn(move || {
                while t.publish(1).is_ok() {
                    a.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    assert!(eventually(PATIENCE, || handled.load(Ordering::SeqCst) > 100));
    quit.publish(0).unwrap();
    for p in producers {
        p.join().unwrap();
    }
    assert!(
        eventually(PATIENCE, || drops.get() == 2),
        "handlers dropped: {}",
        drops.get()
    );
    assert_eq!(
        handled.load(Ordering::SeqCst),
        accepted.load(Ordering::SeqCst)
    );
}

// ---------------------------------------------------------------------------
// A panic in every user callback

/// Panics when dropped while `armed` (and unwinding is not already under way).
struct Bomb(bool);
impl Drop for Bomb {
    fn drop(&mut self) {
        if self.0 && !std::thread::panicking() {
            panic!("{EXPECTED} bomb drop");
        }
    }
}

#[test]
fn a_handler_panic_payload_whose_drop_panics() {
    quiet_expected_panics();
    let _w = watchdog("panic payload whose Drop panics", LIMIT);
    for idle in STRATEGIES {
        let engine = engine(1, idle, 16);
        let topic = engine.topic::<u64>("payload").unwrap();
        let sub = topic
            .subscribe(|ev| {
                if **ev % 2 == 0 {
                    std::panic::panic_any(Bomb(true));
                }
            })
            .unwrap();
        for i in 0..10 {
            topic.publish(i).unwrap();
        }
        topic.publish_and_wait(11).unwrap();
        assert_delivers(&engine, &format!("{idle:?}"));
        let report = engine.shutdown();
        assert!(report.complete);
        assert_eq!(sub.stats().panicked, 5, "{idle:?}");
        assert_eq!(sub.stats().handled, 6, "{idle:?}");
    }
}

#[test]
fn handler_drops_that_panic_on_unsubscribe_and_at_shutdown() {
    quiet_expected_panics();
    let _w = watchdog("handler Drop panics", LIMIT);
    for idle in STRATEGIES {
        let engine = engine(2, idle, 16);
        let topic = engine.topic::<u64>("drop-bombs").unwrap();
        let mut subs = Vec::new();
        for w in 0..2 {
            let bomb = Bomb(true);
            subs.push(
                topic
                    .subscribe_with(
                        move |_| {
                            let _keep = &bomb;
                        },
                        SubscribeOptions::new().worker(w),
                    )
                    .unwrap(),
            );
            let bomb = Bomb(true);
            topic
                .group("g")
                .subscribe_with(
                    move |_| {
                        let _keep = &bomb;
                    },
                    SubscribeOptions::new().worker(w),
                )
                .unwrap();
        }
        topic.publish_and_wait(1).unwrap();
        for s in subs {
            s.unsubscribe();
        }
        assert_every_worker_delivers(&engine, &format!("{idle:?}"));
        let report = engine.shutdown();
        assert!(report.complete);
        // Two plain subscriptions and one group member handled event 1, and
        // the probe's two subscriptions their event.
        assert_eq!(report.handled, 3 + 2, "{idle:?}: {report:?}");
    }
}

/// An event whose `Drop` panics while `armed` and whose clones are armed.
#[derive(Clone)]
struct DropBombEvent(Arc<AtomicBool>);
impl Drop for DropBombEvent {
    fn drop(&mut self) {
        if self.0.load(Ordering::SeqCst) && !std::thread::panicking() {
            panic!("{EXPECTED} event drop");
        }
    }
}

#[test]
fn an_event_whose_drop_panics_after_it_was_handled() {
    quiet_expected_panics();
    let _w = watchdog("event Drop panics", LIMIT);
    for idle in STRATEGIES {
        for subscribers in [1u64, 2] {
            let engine = engine(2, idle, 16);
            let topic = engine.topic::<DropBombEvent>("drop-event").unwrap();
            let seen = Arc::new(AtomicU64::new(0));
            for w in 0..subscribers {
                let s = seen.clone();
                topic
                    .subscribe_with(
                        move |_| {
                            s.fetch_add(1, Ordering::SeqCst);
                        },
                        SubscribeOptions::new().worker(w as usize),
                    )
                    .unwrap();
            }
            let armed = Arc::new(AtomicBool::new(true));
            for _ in 0..5 {
                // Publish itself drops no event (the clone or the move goes
                // into a lane); the workers drop them after handling.
                topic.publish(DropBombEvent(armed.clone())).unwrap();
            }
            assert!(
                eventually(PATIENCE, || seen.load(Ordering::SeqCst) == 5 * subscribers),
                "{idle:?}: {} of {} handled",
                seen.load(Ordering::SeqCst),
                5 * subscribers
            );
            assert_every_worker_delivers(&engine, &format!("{idle:?} {subscribers}"));
            let report = engine.shutdown();
            armed.store(false, Ordering::SeqCst);
            assert!(report.complete);
            assert_eq!(report.handled, 5 * subscribers + 2, "{idle:?}: {report:?}");
        }
    }
}

/// An event whose `Clone` panics on the `panic_at`-th clone sharing
/// `clones` (1-based; 0: never).
struct CountedClone {
    v: u64,
    clones: Arc<AtomicU32>,
    panic_at: u32,
}
impl Clone for CountedClone {
    fn clone(&self) -> Self {
        let n = self.clones.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.panic_at {
            panic!("{EXPECTED} clone {n}");
        }
        CountedClone {
            v: self.v,
            clones: self.clones.clone(),
            panic_at: self.panic_at,
        }
    }
}

fn counted(v: u64, panic_at: u32) -> CountedClone {
    CountedClone {
        v,
        clones: Arc::new(AtomicU32::new(0)),
        panic_at,
    }
}

/// One publish call of the API, made with an event whose clone panics.
type PublishCall = Box<dyn Fn(&Topic<CountedClone>) + Send>;

#[test]
fn clone_panics_in_every_publish_call() {
    quiet_expected_panics();
    let _w = watchdog("Clone panics in each publish call", LIMIT);
    let engine = engine(3, IdleStrategy::Park, 16);
    let topic = engine.topic::<CountedClone>("fan").unwrap();
    let seen = Log::new();
    for w in 0..3 {
        let l = seen.clone();
        topic
            .subscribe_with(move |ev| l.push(ev.v), SubscribeOptions::new().worker(w))
            .unwrap();
    }
    let calls: Vec<(&str, PublishCall)> = vec![
        (
            "publish",
            Box::new(|t| {
                let _ = t.publish(counted(100, 2));
            }),
        ),
        (
            "try_publish",
            Box::new(|t| {
                let _ = t.try_publish(counted(101, 2));
            }),
        ),
        (
            "publish_batch",
            Box::new(|t| {
                let _ = t.publish_batch([counted(102, 2), counted(103, 1)]);
            }),
        ),
        (
            "publish_tracked",
            Box::new(|t| {
                let _ = t.publish_tracked(counted(104, 2));
            }),
        ),
        (
            "publish_and_wait",
            Box::new(|t| {
                let _ = t.publish_and_wait(counted(105, 2));
            }),
        ),
    ];
    for (name, call) in &calls {
        let t = topic.clone();
        let outcome = catch_unwind(AssertUnwindSafe(|| call(&t)));
        assert!(
            outcome.is_err(),
            "{name}: the clone's panic reaches the caller"
        );
        topic.publish_and_wait(counted(1, 0)).unwrap();
    }
    // A timer firing an event whose clone panics: the timer thread lives on.
    let timer = topic.publish_after(Duration::from_millis(1), counted(106, 2));
    assert!(timer.is_ok());
    let receipt = topic.publish_tracked(counted(2, 0)).unwrap();
    receipt.wait().unwrap();
    drop(
        topic
            .publish_after(Duration::from_millis(1), counted(3, 0))
            .unwrap(),
    );
    let l = seen.clone();
    assert!(
        eventually(PATIENCE, || l
            .snapshot()
            .iter()
            .filter(|&&v| v == 3)
            .count()
            == 3),
        "a delayed event after a panicking one never fired: {:?}",
        seen.snapshot()
    );
    assert_every_worker_delivers(&engine, "after clone panics");
    let report = engine.shutdown();
    assert!(report.complete);
    let mut got = seen.snapshot();
    got.sort_unstable();
    let ones = calls.len();
    let mut expected = vec![1; 3 * ones];
    expected.extend([2, 2, 2, 3, 3, 3]);
    assert_eq!(
        got, expected,
        "a failed fan-out reached some lanes (values >= 100)"
    );
}

/// A layer that panics on odd events.
struct PanickyLayer;
impl Layer<u64> for PanickyLayer {
    fn call<H: Handle<u64>>(&mut self, event: &Event<u64>, next: &mut H) -> Outcome {
        if **event % 2 == 1 {
            panic!("{EXPECTED} layer");
        }
        next.handle(event)
    }
}

#[test]
fn layer_closures_that_panic() {
    quiet_expected_panics();
    let _w = watchdog("panicking layers", LIMIT);
    for idle in STRATEGIES {
        for siblings in [0, 1] {
            let what = format!("{idle:?} siblings {siblings}");
            // Each on its own worker: alone there, or beside a sibling.
            let engine = engine(2, idle, 16);
            let topic = engine.topic::<u64>("layered").unwrap();
            let filtered = topic
                .subscribe_with(
                    |_| {},
                    SubscribeOptions::new()
                        .worker(0)
                        .layer(Filter::new(|ev: &Event<u64>| {
                            if (**ev).is_multiple_of(3) {
                                panic!("{EXPECTED} filter");
                            }
                            true
                        })),
                )
                .unwrap();
            let layered = topic
                .subscribe_with(
                    |_| {},
                    SubscribeOptions::new().worker(1).layer(PanickyLayer),
                )
                .unwrap();
            let sibling_seen = Arc::new(AtomicU64::new(0));
            for w in 0..2 * siblings {
                let s = sibling_seen.clone();
                topic
                    .subscribe_with(
                        move |_| {
                            s.fetch_add(1, Ordering::SeqCst);
                        },
                        SubscribeOptions::new().worker(w as usize),
                    )
                    .unwrap();
            }
            for i in 0..12 {
                topic.publish(i).unwrap();
            }
            topic.publish_and_wait(12).unwrap();
            assert_every_worker_delivers(&engine, &what);
            let report = engine.shutdown();
            assert!(report.complete, "{what}");
            let (f, l) = (filtered.stats(), layered.stats());
            assert_eq!((f.handled, f.failed), (8, 5), "{what}: {f:?}");
            assert_eq!((l.handled, l.failed), (7, 6), "{what}: {l:?}");
            assert_eq!(sibling_seen.load(Ordering::SeqCst), 2 * 13 * siblings);
        }
    }
}

#[test]
fn interceptors_and_batch_iterators_that_panic() {
    quiet_expected_panics();
    let _w = watchdog("panicking interceptor and batch iterator", LIMIT);
    for idle in STRATEGIES {
        let engine = engine(2, idle, 16);
        let topic = engine.topic::<u64>("guarded").unwrap();
        let seen = Log::new();
        let l = seen.clone();
        topic.subscribe(move |ev| l.push(**ev)).unwrap();
        let guarded = topic.intercept(|ev: &mut u64| -> Result<(), &'static str> {
            if *ev == 3 {
                panic!("{EXPECTED} interceptor");
            }
            *ev += 1000;
            Ok(())
        });
        guarded.publish(1).unwrap();
        let g = guarded.clone();
        assert!(catch_unwind(AssertUnwindSafe(|| g.publish(3))).is_err());
        let g = guarded.clone();
        assert!(catch_unwind(AssertUnwindSafe(|| g.publish_tracked(3))).is_err());
        guarded.publish(2).unwrap();
        guarded.publish_and_wait(4).unwrap();
        // A batch whose iterator panics half-way: what was accepted before
        // the panic is handled, nothing is lost or stuck.
        let t = topic.clone();
        let batch = catch_unwind(AssertUnwindSafe(|| {
            t.publish_batch((10..20).inspect(|&i| {
                if i == 15 {
                    panic!("{EXPECTED} batch iterator");
                }
            }))
        }));
        assert!(batch.is_err());
        topic.publish_and_wait(99).unwrap();
        assert_every_worker_delivers(&engine, &format!("{idle:?}"));
        let report = engine.shutdown();
        assert!(report.complete, "{idle:?}");
        let got = seen.snapshot();
        assert_eq!(&got[..3], [1001, 1002, 1004], "{idle:?}");
        assert_eq!(got.last(), Some(&99), "{idle:?}");
        let batch_part: Vec<u64> = got[3..got.len() - 1].to_vec();
        assert!(
            batch_part.is_empty() || batch_part == (10..15).collect::<Vec<_>>(),
            "{idle:?}: {batch_part:?}"
        );
        assert_eq!(
            report.published,
            got.len() as u64 + 1,
            "{idle:?}: {report:?}"
        );
        assert_eq!(
            report.handled,
            got.len() as u64 + engine.workers() as u64,
            "{idle:?}: {report:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// Churn

#[test]
fn topics_created_and_dropped_in_a_loop() {
    let _w = watchdog("topic churn", LIMIT);
    let engine = engine(2, IdleStrategy::Park, 64);
    let handled = Arc::new(AtomicU64::new(0));
    for i in 0..300u64 {
        // Even rounds: a topic of its own, left with no handle and no
        // subscription. Odd rounds: one of a few shared topics whose
        // subscriptions stay.
        let name = if i % 2 == 0 {
            format!("churn.own.{i}")
        } else {
            format!("churn.shared.{}", i % 7)
        };
        let topic = engine.topic::<u64>(&name).unwrap();
        let h = handled.clone();
        let sub = topic
            .subscribe(move |_| {
                h.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
        topic.publish(i).unwrap();
        topic.publish_and_wait(i).unwrap();
        if i % 2 == 0 {
            sub.unsubscribe();
        }
    }
    assert_every_worker_delivers(&engine, "after topic churn");
    let report = engine.shutdown();
    assert!(report.complete);
    assert_eq!(report.published, 600 + 1);
    assert_eq!(report.handled, handled.load(Ordering::SeqCst) + 2);
}

#[test]
fn groups_joined_and_left_in_a_loop() {
    let _w = watchdog("group churn", LIMIT);
    let engine = engine(2, IdleStrategy::Park, 64);
    let topic = engine.topic::<u64>("jobs").unwrap();
    let seen = Log::new();
    let l = seen.clone();
    topic
        .group("steady")
        .subscribe(move |ev| l.push(**ev))
        .unwrap();
    for i in 0..300u64 {
        let member = topic
            .group(&format!("g{}", i % 5))
            .subscribe(|_| {})
            .unwrap();
        let l = seen.clone();
        let steady_extra = topic
            .group("steady")
            .subscribe(move |ev| l.push(**ev))
            .unwrap();
        topic.publish(i).unwrap();
        member.unsubscribe();
        steady_extra.unsubscribe();
    }
    topic.publish_and_wait(300).unwrap();
    assert_every_worker_delivers(&engine, "after group churn");
    let report = engine.shutdown();
    assert!(report.complete);
    let mut got = seen.snapshot();
    got.sort_unstable();
    assert_eq!(
        got,
        (0..=300).collect::<Vec<_>>(),
        "the steady group saw every event once"
    );
}

#[test]
fn producer_threads_that_come_and_go() {
    let _w = watchdog("producer thread churn", LIMIT);
    let engine = engine(2, IdleStrategy::Park, 8);
    let topic = engine.topic::<u64>("many-producers").unwrap();
    let seen = Arc::new(AtomicU64::new(0));
    let s = seen.clone();
    topic
        .subscribe(move |_| {
            s.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    for round in 0..20 {
        let threads: Vec<_> = (0..10)
            .map(|_| {
                let t = topic.clone();
                std::thread::spawn(move || {
                    for i in 0..50 {
                        t.publish(round * 1000 + i).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    }
    topic.publish_and_wait(0).unwrap();
    assert_every_worker_delivers(&engine, "after producer churn");
    // Other producers' rings may still hold events: count after the drain.
    let report = engine.shutdown();
    assert!(report.complete);
    assert_eq!(seen.load(Ordering::SeqCst), 20 * 10 * 50 + 1);
    assert_eq!(report.published, 10_001 + 1);
    assert_eq!(report.handled, 10_001 + 2);
}

#[test]
fn engines_created_and_dropped() {
    let _w = watchdog("engine churn", LIMIT);
    let total = Arc::new(AtomicU64::new(0));
    for i in 0..50u64 {
        let idle = STRATEGIES[i as usize % STRATEGIES.len()];
        let engine = engine(2, idle, 8);
        let topic = engine.topic::<u64>("t").unwrap();
        let t = total.clone();
        topic
            .subscribe(move |_| {
                t.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
        topic.publish(i).unwrap();
        topic.publish_and_wait(i).unwrap();
        if i % 2 == 0 {
            drop(engine); // drop drains
        } else {
            assert_eq!(engine.shutdown().handled, 2);
        }
        assert!(topic.publish(0).unwrap_err().is_closed());
    }
    assert_eq!(total.load(Ordering::SeqCst), 100);
}
