//! Shutdown: intake stops, every accepted event is handled, handlers may keep
//! publishing while the engine drains, workers are joined and handlers dropped
//! on them; repeated calls and `Drop` are safe.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use common::{engine, within, Log, STRATEGIES};

#[test]
fn events_accepted_during_a_racing_shutdown_are_all_handled() {
    for idle in STRATEGIES {
        for _ in 0..5 {
            let engine = Arc::new(engine(2, idle, 8));
            let topic = engine.topic::<u64>("race").unwrap();
            let handled = Arc::new(AtomicU64::new(0));
            let h = handled.clone();
            topic
                .subscribe(move |_| {
                    h.fetch_add(1, Ordering::SeqCst);
                })
                .unwrap();
            let accepted = Arc::new(AtomicU64::new(0));
            let producers: Vec<_> = (0..3)
                .map(|_| {
                    let (t, a) = (topic.clone(), accepted.clone());
                    std::thread::spawn(move || {
                        let mut closed = 0;
                        for i in 0..20_000u64 {
                            match t.publish(i) {
                                Ok(()) => {
                                    a.fetch_add(1, Ordering::SeqCst);
                                }
                                Err(e) => {
                                    assert!(e.is_closed());
                                    assert_eq!(e.into_inner(), i, "the event comes back");
                                    closed += 1;
                                }
                            }
                        }
                        closed
                    })
                })
                .collect();
            std::thread::sleep(std::time::Duration::from_millis(2));
            let report = engine.shutdown();
            let closed: u64 = producers.into_iter().map(|p| p.join().unwrap()).sum();
            let accepted = accepted.load(Ordering::SeqCst);
            assert_eq!(accepted + closed, 60_000);
            assert_eq!(
                handled.load(Ordering::SeqCst),
                accepted,
                "{idle:?}: accepted but not handled"
            );
            assert_eq!(report.published, accepted);
            assert_eq!(report.handled, accepted);
        }
    }
}

#[test]
fn handlers_keep_publishing_while_the_engine_drains() {
    // A three-stage pipeline: nothing published by a stage is lost when
    // shutdown starts right after the first publish.
    let engine = engine(2, pinbus::IdleStrategy::Park, 4);
    let a = engine.topic::<u64>("stage.a").unwrap();
    let b = engine.topic::<u64>("stage.b").unwrap();
    let c = engine.topic::<u64>("stage.c").unwrap();
    let out = Log::new();
    let b2 = b.clone();
    a.subscribe(move |ev| b2.publish(**ev * 10).unwrap())
        .unwrap();
    let c2 = c.clone();
    b.subscribe(move |ev| {
        for k in 0..3 {
            c2.publish(**ev + k).unwrap();
        }
    })
    .unwrap();
    let o = out.clone();
    c.subscribe(move |ev| o.push(**ev)).unwrap();
    for i in 0..100 {
        a.publish(i).unwrap();
    }
    let report = engine.shutdown();
    assert_eq!(out.len(), 300);
    assert_eq!(report.published, 100 + 100 + 300);
    assert_eq!(report.handled, 500);
}

#[test]
fn shutdown_is_idempotent_and_drop_shuts_down() {
    let engine = engine(2, pinbus::IdleStrategy::Park, 8);
    let topic = engine.topic::<u64>("twice").unwrap();
    topic.subscribe(|_| {}).unwrap();
    topic.publish(1).unwrap();
    let first = engine.shutdown();
    let second = engine.shutdown();
    assert_eq!(first, second);
    assert!(first.complete);
    assert_eq!(first.workers, 2);
    assert_eq!(first.topics, 1);

    // Dropping an engine drains it and drops the handlers.
    struct Flag(Arc<AtomicBool>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let dropped = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(AtomicU64::new(0));
    {
        let engine = engine_with_topic();
        let topic = engine.topic::<u64>("dropped").unwrap();
        let flag = Flag(dropped.clone());
        let s = seen.clone();
        topic
            .subscribe(move |_| {
                let _keep = &flag;
                s.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
        for i in 0..1_000 {
            topic.publish(i).unwrap();
        }
    }
    assert!(dropped.load(Ordering::SeqCst));
    assert_eq!(seen.load(Ordering::SeqCst), 1_000);
}

fn engine_with_topic() -> pinbus::Engine {
    engine(1, pinbus::IdleStrategy::Park, 16)
}

#[test]
fn shutdown_from_a_handler_closes_intake_and_completes_later() {
    let engine = Arc::new(engine(1, pinbus::IdleStrategy::Park, 16));
    let topic = engine.topic::<u64>("self-stop").unwrap();
    let inner: Arc<Mutex<Option<pinbus::ShutdownReport>>> = Arc::new(Mutex::new(None));
    let (e, i) = (engine.clone(), inner.clone());
    topic
        .subscribe(move |ev| {
            if **ev == 5 {
                *i.lock().unwrap() = Some(e.shutdown());
            }
        })
        .unwrap();
    for v in 0..10 {
        topic.publish(v).unwrap();
    }
    let eng = engine.clone();
    let outer = within("outer shutdown", move || eng.shutdown());
    let inner = inner
        .lock()
        .unwrap()
        .take()
        .expect("handler called shutdown");
    assert!(!inner.complete);
    assert!(outer.complete);
    assert_eq!(outer.handled, 10);
    assert!(topic.publish(11).unwrap_err().is_closed());
}
