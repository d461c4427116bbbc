//! What the criterion benches (and `examples/paired_1p1s.rs`) share: core
//! placement, the bench engine, the consumer-side counter with its wait, and
//! crossbeam-channel's consumer for the 1P→1S comparison.

#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_utils::CachePadded;
use pinbus::{Engine, IdleStrategy, Pinning};

pub const CAPACITY: usize = 65_536;

/// The first and last core this process may use, read once before anything
/// is pinned: a thread inherits its creator's affinity, so asking again after
/// the bench thread pinned itself would see only that one core.
pub fn cores() -> (Option<usize>, Option<usize>) {
    static CORES: std::sync::OnceLock<(Option<usize>, Option<usize>)> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| {
        let mut ids: Vec<usize> = core_affinity::get_core_ids()
            .unwrap_or_default()
            .into_iter()
            .map(|c| c.id)
            .collect();
        ids.sort_unstable();
        match ids.as_slice() {
            [first, .., last] => (Some(*first), Some(*last)),
            _ => (None, None),
        }
    })
}

pub fn pin_bench_thread() {
    if let (Some(first), _) = cores() {
        core_affinity::set_for_current(core_affinity::CoreId { id: first });
    }
}

pub fn engine() -> Engine {
    let (_, last) = cores();
    let pinning = last.map_or(Pinning::None, |c| Pinning::Cores(vec![c]));
    Engine::builder()
        .workers(1)
        .pinning(pinning)
        .idle(IdleStrategy::BusySpin)
        .lane_capacity(CAPACITY)
        .build()
        .expect("bench engine")
}

/// The consumer's count of events seen, on its own cache line: written per
/// event by the consumer, so it must not share a line with anything the
/// producer touches (a false-sharing artifact would tax every bench).
pub type Counter = CachePadded<AtomicU64>;

/// Waits (spinning) until `counter` reaches `target`.
pub fn wait_for(counter: &AtomicU64, target: u64) {
    while counter.load(Ordering::Acquire) < target {
        std::hint::spin_loop();
    }
}

/// crossbeam-channel's side of the 1P→1S comparison: a consumer pinned like
/// pinbus's worker (last core), draining with `try_recv` and counting into
/// `seen` until `stop` is set.
pub fn spawn_crossbeam_consumer(
    rx: crossbeam_channel::Receiver<u64>,
    seen: Arc<Counter>,
    stop: Arc<AtomicBool>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        if let (_, Some(last)) = cores() {
            core_affinity::set_for_current(core_affinity::CoreId { id: last });
        }
        while !stop.load(Ordering::Relaxed) {
            while let Ok(v) = rx.try_recv() {
                let _ = std::hint::black_box(v);
                seen.store(seen.load(Ordering::Relaxed) + 1, Ordering::Release);
            }
            std::hint::spin_loop();
        }
    })
}
