//! Guarantee 4: after `unsubscribe()` returns the handler is not running and is
//! never called again; it is dropped on its worker.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::Duration;

use common::{engine, eventually, within, Log, PATIENCE, STRATEGIES};

/// Records the thread it is dropped on.
struct DropProbe(Arc<Mutex<Option<ThreadId>>>);
impl Drop for DropProbe {
    fn drop(&mut self) {
        *self.0.lock().unwrap() = Some(std::thread::current().id());
    }
}

#[test]
fn no_call_after_unsubscribe_returns_and_dropped_on_worker() {
    for idle in STRATEGIES {
        let engine = engine(1, idle, 64);
        let topic = engine.topic::<u64>("churn").unwrap();
        let running = Arc::new(AtomicBool::new(false));
        let calls = Arc::new(AtomicU64::new(0));
        let worker_thread = Arc::new(Mutex::new(None));
        let dropped_on = Arc::new(Mutex::new(None));
        let (r, c, w) = (running.clone(), calls.clone(), worker_thread.clone());
        let probe = DropProbe(dropped_on.clone());
        let sub = topic
            .subscribe(move |_| {
                let _keep = &probe;
                r.store(true, Ordering::SeqCst);
                *w.lock().unwrap() = Some(std::thread::current().id());
                std::thread::sleep(Duration::from_micros(200));
                c.fetch_add(1, Ordering::SeqCst);
                r.store(false, Ordering::SeqCst);
            })
            .unwrap();
        let t = topic.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let producer = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                let _ = t.try_publish(1);
            }
        });
        assert!(eventually(PATIENCE, || calls.load(Ordering::SeqCst) > 3));
        sub.unsubscribe();
        // Returned: not running, and never again.
        assert!(
            !running.load(Ordering::SeqCst),
            "{idle:?}: handler still running"
        );
        let after = calls.load(Ordering::SeqCst);
        assert_eq!(
            *dropped_on.lock().unwrap(),
            *worker_thread.lock().unwrap(),
            "{idle:?}: handler must be dropped on its worker"
        );
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(
            calls.load(Ordering::SeqCst),
            after,
            "{idle:?}: called after unsubscribe"
        );
        stop.store(true, Ordering::SeqCst);
        producer.join().unwrap();
        engine.shutdown();
    }
}

#[test]
fn others_keep_receiving_while_one_unsubscribes() {
    let engine = engine(2, pinbus::IdleStrategy::Park, 64);
    let topic = engine.topic::<u64>("stay").unwrap();
    let stay = Log::new();
    let l = stay.clone();
    topic.subscribe(move |ev| l.push(**ev)).unwrap();
    for round in 0..50 {
        let leaving = topic.subscribe(|_| {}).unwrap();
        topic.publish(round * 2).unwrap();
        leaving.unsubscribe();
        topic.publish(round * 2 + 1).unwrap();
    }
    engine.shutdown();
    assert_eq!(stay.snapshot(), (0..100).collect::<Vec<_>>());
}

#[test]
fn a_handler_can_unsubscribe_itself() {
    let engine = engine(1, pinbus::IdleStrategy::Park, 64);
    let topic = engine.topic::<u64>("self-removal").unwrap();
    let slot: Arc<Mutex<Option<pinbus::Subscription>>> = Arc::new(Mutex::new(None));
    let calls = Arc::new(AtomicU64::new(0));
    let (s, c) = (slot.clone(), calls.clone());
    let sub = topic
        .subscribe(move |_| {
            c.fetch_add(1, Ordering::SeqCst);
            if let Some(me) = s.lock().unwrap().take() {
                me.unsubscribe(); // from its own worker: must not deadlock
            }
        })
        .unwrap();
    *slot.lock().unwrap() = Some(sub);
    let t = topic.clone();
    within("self-unsubscribe", move || {
        for i in 0..100 {
            t.publish(i).unwrap();
        }
    });
    engine.shutdown();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "never called after it removed itself"
    );
}

#[test]
fn a_handler_can_unsubscribe_another_on_its_worker() {
    let engine = engine(1, pinbus::IdleStrategy::Park, 64);
    let topic = engine.topic::<u64>("remove-sibling").unwrap();
    let victim_calls = Arc::new(AtomicU64::new(0));
    let vc = victim_calls.clone();
    let victim = topic
        .subscribe(move |_| {
            vc.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    let slot = Arc::new(Mutex::new(Some(victim)));
    let seen_at_removal = Arc::new(AtomicU64::new(u64::MAX));
    let (s, vc2, seen) = (slot.clone(), victim_calls.clone(), seen_at_removal.clone());
    topic
        .subscribe(move |ev| {
            if **ev == 10 {
                if let Some(v) = s.lock().unwrap().take() {
                    v.unsubscribe();
                    seen.store(vc2.load(Ordering::SeqCst), Ordering::SeqCst);
                }
            }
        })
        .unwrap();
    for i in 0..50 {
        topic.publish(i).unwrap();
    }
    engine.shutdown();
    assert_eq!(
        victim_calls.load(Ordering::SeqCst),
        seen_at_removal.load(Ordering::SeqCst),
        "the sibling was called after unsubscribe returned"
    );
}

#[test]
fn unsubscribe_after_shutdown_returns() {
    let engine = engine(1, pinbus::IdleStrategy::Park, 8);
    let topic = engine.topic::<u64>("late").unwrap();
    let sub = topic.subscribe(|_| {}).unwrap();
    engine.shutdown();
    within("unsubscribe after shutdown", move || sub.unsubscribe());
}

#[test]
fn group_members_can_leave_while_events_flow() {
    let engine = engine(2, pinbus::IdleStrategy::Park, 16);
    let topic = engine.topic::<u64>("group-churn").unwrap();
    let stay = Log::new();
    let l = stay.clone();
    topic.group("g").subscribe(move |ev| l.push(**ev)).unwrap();
    let leaver_log = Log::new();
    for round in 0..20u64 {
        let ll = leaver_log.clone();
        let m = topic.group("g").subscribe(move |ev| ll.push(**ev)).unwrap();
        for i in 0..100 {
            topic.publish(round * 100 + i).unwrap();
        }
        m.unsubscribe();
    }
    engine.shutdown();
    let mut all: Vec<u64> = stay.snapshot();
    all.extend(leaver_log.snapshot());
    all.sort_unstable();
    assert_eq!(
        all,
        (0..2000).collect::<Vec<_>>(),
        "each event exactly once in the group"
    );
}
