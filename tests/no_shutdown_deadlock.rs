//! Guarantee 11: no deadlock between shutdown and a handler, whatever the
//! handler calls on the engine (topic(), metrics(), subscribe, publish,
//! shutdown, dropping the engine).

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{engine, eventually, watchdog, DropCount, Log, PATIENCE, STRATEGIES};
use pinbus::{Engine, IdleStrategy};

const LIMIT: Duration = Duration::from_secs(60);

/// Sets its flag when dropped, also while unwinding.
struct SetOnDrop(Arc<AtomicBool>);
impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Two producers publish into a capacity-2 lane (`Backpressure::Block`, so
/// they block on it) until publish returns `Closed`, while the handler calls
/// `call` on the engine for every event; then the test shuts down.
fn shutdown_with_blocked_producers(what: &str, call: fn(&Engine)) {
    for idle in STRATEGIES {
        for round in 0..5 {
            let engine = Arc::new(engine(1, idle, 2));
            let topic = engine.topic::<u64>("load").unwrap();
            let handled = Arc::new(AtomicU64::new(0));
            let (e, h) = (engine.clone(), handled.clone());
            topic
                .subscribe(move |_| {
                    call(&e);
                    h.fetch_add(1, Ordering::SeqCst);
                })
                .unwrap();
            let accepted = Arc::new(AtomicU64::new(0));
            let producers: Vec<_> = (0..2)
                .map(|_| {
                    let (t, a) = (topic.clone(), accepted.clone());
                    std::thread::spawn(move || {
                        let mut i = 0u64;
                        loop {
                            match t.publish(i) {
                                Ok(()) => {
                                    a.fetch_add(1, Ordering::SeqCst);
                                }
                                Err(e) => {
                                    assert!(e.is_closed(), "{e:?}");
                                    return;
                                }
                            }
                            i += 1;
                        }
                    })
                })
                .collect();
            // The lane is full and both producers are (or soon are) blocked.
            assert!(eventually(PATIENCE, || handled.load(Ordering::SeqCst) > 20));
            let report = engine.shutdown();
            for p in producers {
                p.join().unwrap();
            }
            assert!(report.complete, "{what} {idle:?} round {round}");
            let accepted = accepted.load(Ordering::SeqCst);
            assert_eq!(report.published, accepted, "{what} {idle:?}");
            assert_eq!(report.handled, accepted, "{what} {idle:?}");
            assert_eq!(handled.load(Ordering::SeqCst), accepted, "{what} {idle:?}");
        }
    }
}

#[test]
fn shutdown_returns_while_a_handler_calls_engine_topic_and_producers_block() {
    let _w = watchdog("handler calls engine.topic during shutdown", LIMIT);
    shutdown_with_blocked_producers("topic()", |e| {
        // Err(Closed) once shutdown started: only the call matters.
        let _ = e.topic::<u64>("load");
        let _ = e.topic::<u64>("elsewhere");
    });
}

#[test]
fn shutdown_returns_while_a_handler_calls_engine_metrics_and_producers_block() {
    let _w = watchdog("handler calls engine.metrics during shutdown", LIMIT);
    shutdown_with_blocked_producers("metrics()", |e| {
        let m = e.metrics();
        assert!(!m.workers.is_empty());
    });
}

#[test]
fn the_engine_dropped_inside_its_own_handler_finishes_the_drain() {
    let _w = watchdog("engine dropped inside its own handler", LIMIT);
    for idle in [IdleStrategy::Park, IdleStrategy::Backoff] {
        let drops = DropCount::new();
        let slot: Arc<Mutex<Option<Arc<Engine>>>> =
            Arc::new(Mutex::new(Some(Arc::new(engine(2, idle, 16)))));
        let (work, quit) = {
            let guard = slot.lock().unwrap();
            let engine = guard.as_ref().unwrap();
            (
                engine.topic::<u64>("work").unwrap(),
                engine.topic::<u64>("quit").unwrap(),
            )
        };
        let handled = Log::new();
        let (h, token) = (handled.clone(), drops.token());
        work.subscribe(move |ev| {
            let _keep = &token;
            h.push(**ev);
        })
        .unwrap();
        let (s, token) = (slot.clone(), drops.token());
        quit.subscribe(move |_| {
            let _keep = &token;
            // The last Arc<Engine>: the engine is dropped on its own worker.
            let last = s.lock().unwrap().take();
            drop(last);
        })
        .unwrap();
        for i in 0..100 {
            work.publish(i).unwrap();
        }
        quit.publish(0).unwrap();
        // The drain finishes, the workers are joined and every handler is
        // dropped, without anyone calling shutdown from outside.
        assert!(
            eventually(PATIENCE, || drops.get() == 2),
            "{idle:?}: {} of 2 handlers dropped",
            drops.get()
        );
        assert!(slot.lock().unwrap().is_none(), "the quit handler ran");
        let mut seen = handled.snapshot();
        seen.sort_unstable();
        assert_eq!(seen, (0..100).collect::<Vec<_>>(), "{idle:?}");
        assert!(work.publish(1).unwrap_err().is_closed());
    }
}

#[test]
fn a_handler_calling_every_engine_method_does_not_block_the_outer_shutdown() {
    let _w = watchdog("handler calls engine methods, then outer shutdown", LIMIT);
    let engine = Arc::new(engine(2, IdleStrategy::Park, 16));
    let ctl = engine.topic::<u64>("ctl").unwrap();
    let side = engine.topic::<u64>("side").unwrap();
    let side_seen = Log::new();
    let ss = side_seen.clone();
    side.subscribe(move |ev| ss.push(**ev)).unwrap();
    let victim_calls = Arc::new(AtomicU64::new(0));
    let vc = victim_calls.clone();
    let victim = ctl
        .subscribe(move |_| {
            vc.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    let victim = Arc::new(Mutex::new(Some(victim)));
    let steps: Log<&'static str> = Log::new();
    let inner_reports = Arc::new(Mutex::new(Vec::new()));
    let (e, v, st, reports) = (
        engine.clone(),
        victim.clone(),
        steps.clone(),
        inner_reports.clone(),
    );
    let finished = Arc::new(AtomicBool::new(false));
    let f = finished.clone();
    ctl.subscribe(move |_| {
        let _done = SetOnDrop(f.clone());
        let side = e.topic::<u64>("side").unwrap();
        st.push("topic");
        let extra = side.subscribe(|_| {}).unwrap();
        st.push("subscribe");
        if let Some(v) = v.lock().unwrap().take() {
            v.unsubscribe();
        }
        st.push("unsubscribe other");
        side.publish(7).unwrap();
        st.push("publish other topic");
        let _ = extra; // stays subscribed until shutdown
        reports.lock().unwrap().push(e.shutdown());
        st.push("shutdown");
        reports
            .lock()
            .unwrap()
            .push(e.shutdown_timeout(Duration::from_millis(100)));
        st.push("shutdown_timeout");
    })
    .unwrap();
    ctl.publish(1).unwrap();
    // Returned or unwound: the handler call is over either way.
    assert!(eventually(PATIENCE, || finished.load(Ordering::SeqCst)));
    let report = engine.shutdown();
    assert!(report.complete, "{report:?}");
    assert_eq!(
        steps.snapshot(),
        [
            "topic",
            "subscribe",
            "unsubscribe other",
            "publish other topic",
            "shutdown",
            "shutdown_timeout"
        ],
        "every call from the handler returned"
    );
    for inner in inner_reports.lock().unwrap().iter() {
        assert!(!inner.complete, "a shutdown from a handler cannot complete");
    }
    assert_eq!(side_seen.snapshot(), [7]);
    assert!(victim_calls.load(Ordering::SeqCst) <= 1);
    assert!(ctl.publish(2).unwrap_err().is_closed());
}
