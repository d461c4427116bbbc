//! Helpers shared by the behaviour tests.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pinbus::{Engine, IdleStrategy, ManualClock};

/// Every idle strategy, so behaviour tests run against each.
pub const STRATEGIES: [IdleStrategy; 4] = [
    IdleStrategy::Park,
    IdleStrategy::Backoff,
    IdleStrategy::Yield,
    IdleStrategy::BusySpin,
];

pub fn engine(workers: usize, idle: IdleStrategy, capacity: usize) -> Engine {
    Engine::builder()
        .workers(workers)
        .idle(idle)
        .lane_capacity(capacity)
        .build()
        .expect("valid test config")
}

/// A shared, thread-safe log of what a handler saw.
#[derive(Clone, Default)]
pub struct Log<T>(pub Arc<Mutex<Vec<T>>>);

impl<T: Clone> Log<T> {
    pub fn new() -> Self {
        Log(Arc::new(Mutex::new(Vec::new())))
    }
    pub fn push(&self, v: T) {
        self.0.lock().unwrap().push(v);
    }
    pub fn snapshot(&self) -> Vec<T> {
        self.0.lock().unwrap().clone()
    }
    pub fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

/// An engine on virtual time (`Park` idle strategy), and its clock.
pub fn manual_engine(workers: usize) -> (Engine, ManualClock) {
    let clock = ManualClock::new();
    let engine = Engine::builder()
        .workers(workers)
        .idle(IdleStrategy::Park)
        .clock(clock.clone())
        .build()
        .unwrap();
    (engine, clock)
}

/// Polls `cond` until it holds or `timeout` passes; returns whether it held.
pub fn eventually(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    cond()
}

/// Generous bound for "this must not hang" checks on a loaded CI machine.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Runs `f` on a thread and fails the test if it has not finished within
/// `PATIENCE` (a deadlock shows as a failure, not a hung test run).
pub fn within<R: Send + 'static>(what: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(PATIENCE) {
        Ok(r) => r,
        Err(_) => panic!("{what} did not finish within {PATIENCE:?}: deadlock?"),
    }
}
