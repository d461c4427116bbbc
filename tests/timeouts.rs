//! Reliability additions: `Topic::publish_timeout` and
//! `Engine::shutdown_timeout`.
//!
//! Each producer thread has its own ring per lane, so every test fills a
//! lane and then calls `publish_timeout` from the same thread.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::Duration;

use common::{engine, watchdog, Log, PATIENCE};
use pinbus::{IdleStrategy, PublishError, SubscribeOptions, Topic};

const LIMIT: Duration = Duration::from_secs(60);

/// A gate a handler blocks on until the test opens it.
#[derive(Clone, Default)]
struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    fn wait(&self) {
        let (open, cv) = &*self.0;
        let mut open = open.lock().unwrap();
        while !*open {
            open = cv.wait(open).unwrap();
        }
    }
    fn open(&self) {
        let (open, cv) = &*self.0;
        *open.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cv.notify_all();
    }
    /// Opens the gate when dropped: declared after the engine, it lets a
    /// failing test unwind (and drop the engine) instead of hanging.
    fn open_on_drop(&self) -> OpenOnDrop {
        OpenOnDrop(self.clone())
    }
}

struct OpenOnDrop(Gate);
impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.open();
    }
}

/// A handler that, on its first event, says so on `started` and blocks on
/// `gate`; it logs every event.
fn blocking_handler(
    gate: &Gate,
    log: &Log<u64>,
) -> (
    impl FnMut(&pinbus::Event<u64>) + Send + 'static,
    mpsc::Receiver<()>,
) {
    let (tx, started) = mpsc::channel();
    let (g, l) = (gate.clone(), log.clone());
    let mut first = true;
    let handler = move |ev: &pinbus::Event<u64>| {
        if first {
            first = false;
            let _ = tx.send(());
            g.wait();
        }
        l.push(**ev);
    };
    (handler, started)
}

/// After the handler blocked on event 0, fills this thread's ring with
/// `try_publish` from 1 up; returns the events accepted (0 included).
fn fill(topic: &Topic<u64>, started: &mpsc::Receiver<()>) -> Vec<u64> {
    topic.publish(0).unwrap();
    started.recv_timeout(PATIENCE).expect("the handler started");
    let mut accepted = vec![0];
    for v in 1.. {
        match topic.try_publish(v) {
            Ok(()) => accepted.push(v),
            Err(e) => {
                assert!(e.is_full(), "{e:?}");
                assert_eq!(e.into_inner(), v);
                break;
            }
        }
        assert!(v < 1_000, "a capacity-2 lane never filled");
    }
    accepted
}

#[test]
fn publish_timeout_hands_the_event_back_when_the_lane_stays_full() {
    let _w = watchdog("publish_timeout on a full lane", LIMIT);
    for idle in [IdleStrategy::Park, IdleStrategy::BusySpin] {
        let engine = engine(1, idle, 2);
        let topic = engine.topic::<u64>("jammed").unwrap();
        let (gate, log) = (Gate::default(), Log::new());
        let _open = gate.open_on_drop();
        let (handler, started) = blocking_handler(&gate, &log);
        topic.subscribe(handler).unwrap();
        let mut accepted = fill(&topic, &started);
        match topic.publish_timeout(500, Duration::from_millis(50)) {
            Err(PublishError::Timeout(v)) => assert_eq!(v, 500, "the event comes back"),
            other => panic!("{idle:?}: expected Timeout, got {other:?}"),
        }
        let e = topic
            .publish_timeout(501, Duration::from_millis(1))
            .unwrap_err();
        assert!(e.is_timeout() && !e.is_full() && !e.is_closed(), "{e:?}");
        assert_eq!(e.into_inner(), 501);
        gate.open();
        // Room appears: a generous timeout succeeds.
        topic.publish_timeout(502, Duration::from_secs(30)).unwrap();
        accepted.push(502);
        let report = engine.shutdown();
        assert_eq!(
            log.snapshot(),
            accepted,
            "{idle:?}: timed-out events were delivered"
        );
        assert_eq!(report.published, accepted.len() as u64, "{idle:?}");
        assert!(topic
            .publish_timeout(503, Duration::from_millis(1))
            .unwrap_err()
            .is_closed());
    }
}

#[test]
fn publish_timeout_succeeds_when_room_appears_in_time() {
    let _w = watchdog("publish_timeout waiting for room", LIMIT);
    for idle in [
        IdleStrategy::Park,
        IdleStrategy::Backoff,
        IdleStrategy::BusySpin,
    ] {
        let engine = engine(1, idle, 2);
        let topic = engine.topic::<u64>("jammed").unwrap();
        let (gate, log) = (Gate::default(), Log::new());
        let _open = gate.open_on_drop();
        let (handler, started) = blocking_handler(&gate, &log);
        topic.subscribe(handler).unwrap();
        let (t, (filled_tx, filled)) = (topic.clone(), mpsc::channel());
        let producer = std::thread::spawn(move || {
            let mut accepted = fill(&t, &started);
            filled_tx.send(()).unwrap();
            // Blocks until the gate opens (or the handler is already free).
            t.publish_timeout(777, Duration::from_secs(30)).unwrap();
            accepted.push(777);
            accepted
        });
        filled.recv_timeout(PATIENCE).expect("the lane filled");
        // Not a synchronisation: gives publish_timeout time to start waiting.
        std::thread::sleep(Duration::from_millis(20));
        gate.open();
        let accepted = producer.join().unwrap();
        let report = engine.shutdown();
        assert_eq!(log.snapshot(), accepted, "{idle:?}");
        assert_eq!(report.handled, accepted.len() as u64, "{idle:?}");
    }
}

#[test]
fn a_timed_out_publish_is_in_no_lane() {
    let _w = watchdog("publish_timeout all-or-nothing", LIMIT);
    for idle in [IdleStrategy::Park, IdleStrategy::BusySpin] {
        let engine = engine(3, idle, 2);
        let topic = engine.topic::<u64>("fan").unwrap();
        let gate = Gate::default();
        let _open = gate.open_on_drop();
        let logs: Vec<Log<u64>> = (0..3).map(|_| Log::new()).collect();
        let (handler, started) = blocking_handler(&gate, &logs[0]);
        topic
            .subscribe_with(handler, SubscribeOptions::new().worker(0))
            .unwrap();
        for (w, log) in logs.iter().enumerate().skip(1) {
            let l = log.clone();
            topic
                .subscribe_with(move |ev| l.push(**ev), SubscribeOptions::new().worker(w))
                .unwrap();
        }
        // Worker 0's lane fills; workers 1 and 2 keep draining theirs.
        let mut accepted = fill(&topic, &started);
        let e = topic
            .publish_timeout(999, Duration::from_millis(50))
            .unwrap_err();
        assert!(e.is_timeout(), "{idle:?}: {e:?}");
        assert_eq!(e.into_inner(), 999);
        gate.open();
        topic.publish_and_wait(1_000).unwrap();
        accepted.push(1_000);
        let report = engine.shutdown();
        for (w, log) in logs.iter().enumerate() {
            assert_eq!(
                log.snapshot(),
                accepted,
                "{idle:?}: subscription on worker {w} (999 timed out and must be in no lane)"
            );
        }
        assert_eq!(report.published, accepted.len() as u64, "{idle:?}");
        assert_eq!(report.handled, 3 * accepted.len() as u64, "{idle:?}");
    }
}

#[test]
fn shutdown_timeout_returns_incomplete_while_a_handler_is_stuck() {
    let _w = watchdog("shutdown_timeout with a stuck handler", LIMIT);
    for idle in [IdleStrategy::Park, IdleStrategy::BusySpin] {
        let engine = engine(2, idle, 16);
        let topic = engine.topic::<u64>("stuck").unwrap();
        let (gate, log) = (Gate::default(), Log::new());
        let _open = gate.open_on_drop();
        let (handler, started) = blocking_handler(&gate, &log);
        topic.subscribe(handler).unwrap();
        let other = engine.topic::<u64>("fine").unwrap();
        let fine = Arc::new(AtomicU64::new(0));
        let f = fine.clone();
        other
            .subscribe(move |_| {
                f.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
        topic.publish(0).unwrap();
        started.recv_timeout(PATIENCE).expect("the handler started");
        topic.publish(1).unwrap();
        topic.publish(2).unwrap();
        other.publish(1).unwrap();
        // Returns (the watchdog bounds how long), incomplete.
        let first = engine.shutdown_timeout(Duration::from_millis(200));
        assert!(!first.complete, "{idle:?}: {first:?}");
        assert!(
            topic.publish(3).unwrap_err().is_closed(),
            "intake is closed"
        );
        gate.open();
        let last = engine.shutdown();
        assert!(last.complete, "{idle:?}: {last:?}");
        assert_eq!(log.snapshot(), [0, 1, 2], "{idle:?}");
        assert_eq!(fine.load(Ordering::SeqCst), 1);
        assert_eq!((last.published, last.handled), (4, 4), "{idle:?}: {last:?}");
        // Idempotent once complete.
        assert_eq!(engine.shutdown(), last);
        assert_eq!(engine.shutdown_timeout(Duration::from_millis(1)), last);
    }
}

#[test]
fn shutdown_timeout_with_time_to_spare_completes() {
    let _w = watchdog("shutdown_timeout, quick drain", LIMIT);
    let engine = engine(2, IdleStrategy::Park, 16);
    let topic = engine.topic::<u64>("quick").unwrap();
    let log = Log::new();
    let l = log.clone();
    topic.subscribe(move |ev| l.push(**ev)).unwrap();
    for i in 0..100 {
        topic.publish(i).unwrap();
    }
    let report = engine.shutdown_timeout(Duration::from_secs(30));
    assert!(report.complete, "{report:?}");
    assert_eq!((report.published, report.handled), (100, 100));
    assert_eq!(log.snapshot(), (0..100).collect::<Vec<_>>());
}
