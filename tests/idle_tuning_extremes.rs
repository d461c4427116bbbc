//! Extreme `IdleTuning` values are valid settings: every idle strategy still
//! delivers and shuts down with them (no arithmetic overflow in the idle
//! loop, checked in a debug build).

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{watchdog, STRATEGIES};
use pinbus::{Engine, IdleTuning};

const LIMIT: Duration = Duration::from_secs(60);

fn delivers_and_shuts_down_with(tuning: IdleTuning) {
    for idle in STRATEGIES {
        let engine = Engine::builder()
            .workers(2)
            .idle(idle)
            .idle_tuning(tuning)
            .lane_capacity(64)
            .build()
            .unwrap_or_else(|e| panic!("{tuning:?} is a valid tuning: {e}"));
        let topic = engine.topic::<u64>("ticks").unwrap();
        let seen = Arc::new(AtomicU64::new(0));
        let s = seen.clone();
        topic
            .subscribe(move |_| {
                s.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
        // Let the workers run through many empty passes before the first
        // event, and between events.
        std::thread::sleep(Duration::from_millis(20));
        topic.publish_and_wait(1).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        topic.publish_and_wait(2).unwrap();
        let report = engine.shutdown();
        assert!(report.complete, "{idle:?} {tuning:?}");
        assert_eq!(report.handled, 2, "{idle:?} {tuning:?}");
        assert_eq!(seen.load(Ordering::SeqCst), 2, "{idle:?} {tuning:?}");
    }
}

#[test]
fn one_spin_and_endless_yields() {
    let _w = watchdog("spins 1, yields u32::MAX", LIMIT);
    delivers_and_shuts_down_with(IdleTuning {
        spins: 1,
        yields: u32::MAX,
        max_sleep: Duration::from_millis(1),
    });
}

#[test]
fn endless_spins_and_endless_yields() {
    let _w = watchdog("spins u32::MAX, yields u32::MAX", LIMIT);
    delivers_and_shuts_down_with(IdleTuning {
        spins: u32::MAX,
        yields: u32::MAX,
        max_sleep: Duration::from_millis(1),
    });
}

#[test]
fn no_spins_no_yields() {
    let _w = watchdog("spins 0, yields 0", LIMIT);
    delivers_and_shuts_down_with(IdleTuning {
        spins: 0,
        yields: 0,
        max_sleep: Duration::from_millis(1),
    });
}

#[test]
fn no_spins_no_yields_and_a_long_max_sleep() {
    // Backoff may sleep up to max_sleep after long idle; shutdown still
    // returns (wake-up latency is the documented cost, not a hang).
    let _w = watchdog("spins 0, yields 0, max_sleep 50 ms", LIMIT);
    delivers_and_shuts_down_with(IdleTuning {
        spins: 0,
        yields: 0,
        max_sleep: Duration::from_millis(50),
    });
}
