//! Where a `publish_and_wait` round trip's time goes: the same call, and the
//! cheaper calls it is built from, on one spinning worker.
//!
//! ```sh
//! cargo run --release --example round_trip_parts
//! ```
//!
//! The calling thread is pinned to the first core *before* it builds the
//! engine (the set-up of a service that pins its threads first); the worker
//! is pinned to the last core and busy-spins. Each line is the median, over
//! 20 rounds of 20,000 calls (after 5 rounds of warm-up), of one round's mean
//! time per call:
//!
//! - `publish_and_wait`: the call services make;
//! - `publish_tracked + spin`: the same without `wait`'s checks;
//! - `publish + spin on the handler's store`: an untracked publish, the
//!   caller spinning until the handler has stored the value it got: the
//!   floor of any round trip through the engine (one ring slot there, one
//!   cache line back).
//!
//! Figures go into docs/benchmarks.md ("S8: where the round trip's time
//! goes").

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use pinbus::{Engine, Event, IdleStrategy, Pinning};

const ROUNDS: usize = 25;
const WARM_UP_ROUNDS: usize = 5;
const CALLS: u32 = 20_000;

/// Median and lowest of the rounds' mean time per call, in nanoseconds.
fn measure(mut call: impl FnMut(u64)) -> (f64, f64) {
    let mut means = Vec::with_capacity(ROUNDS - WARM_UP_ROUNDS);
    let mut v = 1;
    for round in 0..ROUNDS {
        let start = Instant::now();
        for _ in 0..CALLS {
            call(v);
            v += 1;
        }
        if round >= WARM_UP_ROUNDS {
            means.push(start.elapsed().as_nanos() as f64 / f64::from(CALLS));
        }
    }
    means.sort_by(f64::total_cmp);
    (means[means.len() / 2], means[0])
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let (Some(first), Some(last)) = (cores.first().copied(), cores.last().copied()) else {
        return Err("no core list from the OS".into());
    };
    if first.id == last.id {
        return Err("needs two cores: one for the caller, one for the worker".into());
    }
    if !core_affinity::set_for_current(first) {
        return Err(format!("could not pin the caller to core {}", first.id).into());
    }
    let engine = Engine::builder()
        .workers(1)
        .pinning(Pinning::Cores(vec![last.id]))
        .idle(IdleStrategy::BusySpin)
        .build()?;
    let topic = engine.topic::<u64>("round_trip_parts")?;
    let seen = Arc::new(AtomicU64::new(0));
    let store = seen.clone();
    let _handle = topic.subscribe(move |ev: &Event<u64>| store.store(**ev, Ordering::Release))?;
    println!(
        "caller on core {}, worker on core {}, BusySpin; median (lowest) of {} rounds of {CALLS} calls",
        first.id,
        last.id,
        ROUNDS - WARM_UP_ROUNDS
    );
    let show = |name: &str, (median, lowest): (f64, f64)| {
        println!("{name:40} {median:7.0} ns ({lowest:.0})");
    };
    show(
        "publish_and_wait",
        measure(|v| topic.publish_and_wait(v).expect("publish_and_wait")),
    );
    show(
        "publish_tracked + spin",
        measure(|v| {
            let receipt = topic.publish_tracked(v).expect("publish_tracked");
            while !receipt.is_complete() {
                std::hint::spin_loop();
            }
        }),
    );
    show(
        "publish + spin on the handler's store",
        measure(|v| {
            topic.publish(v).expect("publish");
            while seen.load(Ordering::Acquire) != v {
                std::hint::spin_loop();
            }
        }),
    );
    let report = engine.shutdown();
    println!(
        "published {}, handled {}, failed {}",
        report.published, report.handled, report.failed
    );
    Ok(())
}
