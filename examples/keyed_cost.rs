//! Instructions per event of a consumer group's dispatch, plain or keyed: a
//! deterministic cost measure (run under callgrind by
//! `scripts/keyed-cost.sh`), free of the VM's timing noise.
//!
//! Two members on one worker, as in `benches/keyed.rs` (the keyed group
//! keys by `v % 100`). The worker is held in the first handler call while
//! `N` events are published, then released to drain them; the script
//! subtracts a run of N from a run of 2N to cancel start-up costs.
//!
//! Run: `cargo run --release --example keyed_cost -- <plain|keyed> <N>`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pinbus::{Backpressure, Engine, Event, IdleStrategy, TopicOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let case = args.next().unwrap_or_else(|| "keyed".into());
    let n: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let engine = Engine::builder()
        .workers(1)
        .idle(IdleStrategy::Park)
        .lane_capacity(1 << 18)
        .build()?;
    let topic = engine.topic_with::<u64>(
        "cost",
        TopicOptions::default().backpressure(Backpressure::Block),
    )?;
    let gate = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(AtomicU64::new(0));
    for _ in 0..2 {
        let (gate, seen) = (gate.clone(), seen.clone());
        let handler = move |ev: &Event<u64>| {
            std::hint::black_box(**ev);
            // The first event holds the worker until every event is queued.
            while !gate.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(1));
            }
            seen.fetch_add(1, Ordering::Relaxed);
        };
        match case.as_str() {
            "plain" => drop(topic.group("g").subscribe(handler)?),
            "keyed" => drop(
                topic
                    .group("g")
                    .keyed(|v: &u64| *v % 100)
                    .subscribe(handler)?,
            ),
            other => return Err(format!("unknown case {other:?}").into()),
        }
    }
    topic.publish(0)?;
    std::thread::sleep(Duration::from_millis(20));
    for i in 1..=n {
        topic.publish(std::hint::black_box(i))?;
    }
    gate.store(true, Ordering::Release);
    while seen.load(Ordering::Relaxed) < n + 1 {
        std::thread::sleep(Duration::from_millis(1));
    }
    engine.shutdown();
    Ok(())
}
