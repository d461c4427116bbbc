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

/// Guard of [`watchdog`]: dropping it disarms the watchdog.
pub struct Watchdog {
    _disarm: std::sync::mpsc::Sender<()>,
}

/// Arms a watchdog for a test: if the returned guard is not dropped within
/// `limit`, it prints "watchdog: <name> still running after <limit>: hang"
/// to stderr and aborts the process, so a hang fails CI instead of blocking
/// it. `PINBUS_WATCHDOG_SECS` lowers every limit (for probing known hangs).
pub fn watchdog(name: &str, limit: Duration) -> Watchdog {
    let limit = match std::env::var("PINBUS_WATCHDOG_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
    {
        Some(secs) => limit.min(Duration::from_secs_f64(secs)),
        None => limit,
    };
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let name = name.to_owned();
    std::thread::Builder::new()
        .name(format!("watchdog {name}"))
        .spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
                // Straight to the file descriptor: the test harness captures
                // `eprintln!`, and its capture is lost when we abort.
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "watchdog: {name} still running after {limit:?}: hang"
                );
                std::process::abort();
            }
        })
        .expect("spawn the watchdog thread");
    Watchdog { _disarm: tx }
}

/// Marker for expected panics: a panic message containing it is not printed
/// by the hook [`quiet_expected_panics`] installs.
pub const EXPECTED: &str = "[expected panic]";

/// Installs (once per process, never removed: tests run in parallel) a panic
/// hook that prints every panic except those whose message contains
/// [`EXPECTED`].
pub fn quiet_expected_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !info.to_string().contains(EXPECTED) {
                previous(info);
            }
        }));
    });
}

/// Counts how many values holding it were dropped (handlers capture one to
/// show they were dropped).
#[derive(Clone, Default)]
pub struct DropCount(pub Arc<std::sync::atomic::AtomicUsize>);

impl DropCount {
    pub fn new() -> Self {
        Self::default()
    }
    /// A value that bumps the count when dropped.
    pub fn token(&self) -> DropToken {
        DropToken(self.0.clone())
    }
    pub fn get(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// See [`DropCount::token`].
pub struct DropToken(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for DropToken {
    fn drop(&mut self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Resident set size of this process in bytes (Linux `/proc/self/statm`).
pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("read /proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("resident pages in /proc/self/statm");
    pages * 4096
}

/// Bytes as MiB, for printing.
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// An event whose `Clone` panics (an [`EXPECTED`] panic) once `armed` is
/// set: for the paths that copy events (fan-out, retries).
#[derive(Debug)]
pub struct Fragile {
    pub v: u64,
    pub armed: Arc<std::sync::atomic::AtomicBool>,
}

impl Clone for Fragile {
    fn clone(&self) -> Self {
        if self.armed.load(std::sync::atomic::Ordering::SeqCst) {
            panic!("{EXPECTED} clone of {}", self.v);
        }
        Fragile {
            v: self.v,
            armed: self.armed.clone(),
        }
    }
}
