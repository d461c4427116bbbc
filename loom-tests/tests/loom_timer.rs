//! loom models of the timer service (`src/timer.rs`): a task leaves the wheel
//! exactly once — cancelled, fired or taken by shutdown — whatever the
//! interleaving of the threads doing so.
#![cfg(loom)]

use std::any::Any;
use std::time::{Duration, Instant};

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use pinbus::internals::{TimerService, TimerShutdown, TimerTask};
use pinbus::SystemClock;

/// Counts its firing; carries a loom `Arc` so a task that is neither fired
/// nor handed back (leaked) shows up in loom's checks.
struct Count {
    fired: Arc<AtomicUsize>,
    _payload: Arc<u32>,
}

impl TimerTask for Count {
    fn fire(self: Box<Self>) {
        self.fired.fetch_add(1, Ordering::Relaxed);
    }
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        self
    }
}

/// A service nothing drives (no `pinbus-timer` thread: the model's threads
/// are the only ones), so `fire_due` is the firing step under test.
fn service() -> Arc<TimerService> {
    Arc::new(TimerService::external(
        Box::new(SystemClock),
        Duration::from_millis(1),
    ))
}

fn task(fired: &Arc<AtomicUsize>) -> Box<dyn TimerTask> {
    Box::new(Count {
        fired: fired.clone(),
        _payload: Arc::new(7),
    })
}

/// Schedule-then-cancel on one thread against a firing step on another: the
/// step may run before the schedule, between schedule and cancel, or after
/// the cancel; in each case cancel got the task XOR it fired.
#[test]
fn timer_cancel_races_fire_due() {
    loom::model(|| {
        let svc = service();
        let fired = Arc::new(AtomicUsize::new(0));
        // Far enough past any due tick the schedule below can get.
        let later = Instant::now() + Duration::from_secs(3600);
        let firer = {
            let svc = svc.clone();
            thread::spawn(move || svc.fire_due(later))
        };
        let key = svc.schedule(svc.now(), task(&fired)).unwrap();
        let back = svc.cancel(key);
        let ran = firer.join().unwrap();
        let fired = fired.load(Ordering::Relaxed);
        assert_eq!(usize::from(back.is_some()) + fired, 1);
        assert_eq!(ran, fired);
        if let Some(task) = back {
            let count = task.into_any().downcast::<Count>().unwrap();
            assert_eq!(*count._payload, 7);
        }
        assert_eq!(svc.pending(), 0);
    });
}

/// Cancel against shutdown (`FireAllNow`, which fires every pending task):
/// the task is handed back XOR fired by shutdown, and the report counts it.
#[test]
fn timer_cancel_races_shutdown() {
    loom::model(|| {
        let svc = service();
        let fired = Arc::new(AtomicUsize::new(0));
        // Scheduled before the race: the question is only who takes it.
        let key = svc
            .schedule(svc.now() + Duration::from_secs(60), task(&fired))
            .unwrap();
        let stopper = {
            let svc = svc.clone();
            thread::spawn(move || svc.shutdown(TimerShutdown::FireAllNow))
        };
        let back = svc.cancel(key);
        let report = stopper.join().unwrap();
        let fired = fired.load(Ordering::Relaxed);
        assert_eq!(usize::from(back.is_some()) + fired, 1);
        assert_eq!((report.fired, report.dropped), (fired, 0));
        assert!(svc
            .schedule(svc.now(), task(&Arc::new(AtomicUsize::new(0))))
            .is_err());
    });
}
