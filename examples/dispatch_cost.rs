//! Instructions per event of publish + dispatch, for one middleware setup at
//! a time: a deterministic cost measure (run under callgrind by
//! `scripts/dispatch-cost.sh`), free of the VM's timing noise.
//!
//! The worker is held in the first handler call while `N` events are
//! published, then released to drain them, so publish and dispatch each run
//! their steady-state path; the script subtracts a run of N from a run of
//! 2N to cancel start-up costs.
//!
//! Run: `cargo run --release --example dispatch_cost -- <case> <N>`; cases:
//! `core`, `filter`, `rate_limit`, `logging`, `spans_1in64`,
//! `latency_1in64`, `intercept_admit`, `intercept_rate_limit`,
//! `trace_forward` (the handler publishes each event on to a second topic).

use std::sync::mpsc;
use std::time::Duration;

use pinbus::layer::{Filter, Logging, RateLimit, Spans};
use pinbus::{intercept, Engine, Event, IdleStrategy, SubscribeOptions, Topic};

/// A handler that blocks on its first call until released.
fn gate() -> (mpsc::Sender<()>, impl FnMut(&Event<u64>) + Send + 'static) {
    let (tx, rx) = mpsc::channel::<()>();
    let mut first = true;
    (tx, move |ev: &Event<u64>| {
        std::hint::black_box(**ev);
        if first {
            first = false;
            let _ = rx.recv();
        }
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let case = args.next().unwrap_or_else(|| "core".into());
    let n: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let engine = Engine::builder()
        .workers(1)
        .idle(IdleStrategy::Park)
        .lane_capacity(1 << 18)
        .build()?;
    let topic = engine.topic::<u64>("cost")?;
    let (release, handler) = gate();
    let opts = SubscribeOptions::new();
    let mut publish: Box<dyn FnMut(u64)> = {
        let t = topic.clone();
        Box::new(move |v| drop(t.publish(v)))
    };
    match case.as_str() {
        "core" | "intercept_admit" | "intercept_rate_limit" => {
            topic.subscribe(handler)?;
        }
        "filter" => {
            topic.subscribe_with(
                handler,
                opts.layer(Filter::new(|ev: &Event<u64>| **ev != u64::MAX)),
            )?;
        }
        "rate_limit" => {
            let limit = RateLimit::per_second(u32::MAX).burst(u32::MAX);
            topic.subscribe_with(handler, opts.layer(limit))?;
        }
        "logging" => {
            topic.subscribe_with(handler, opts.layer(Logging))?;
        }
        "spans_1in64" => {
            topic.subscribe_with(handler, opts.layer(Spans::sampled(64)))?;
        }
        "latency_1in64" => {
            topic.subscribe_with(handler, opts.latency_sampling(64))?;
        }
        "trace_forward" => {
            let next: Topic<u64> = engine.topic("cost.next")?;
            next.subscribe(|ev: &Event<u64>| {
                std::hint::black_box(**ev);
            })?;
            let mut handler = handler;
            topic.subscribe(move |ev: &Event<u64>| {
                handler(ev);
                let _ = next.publish(**ev);
            })?;
        }
        other => return Err(format!("unknown case {other:?}").into()),
    }
    match case.as_str() {
        "intercept_admit" => {
            let t = topic.intercept(|v: &mut u64| -> Result<(), &'static str> {
                if *v == u64::MAX {
                    Err("never")
                } else {
                    Ok(())
                }
            });
            publish = Box::new(move |v| drop(t.publish(v)));
        }
        "intercept_rate_limit" => {
            let t = topic.intercept(intercept::RateLimit::per_second(u32::MAX).burst(u32::MAX));
            publish = Box::new(move |v| drop(t.publish(v)));
        }
        _ => {}
    }
    // The first event parks the worker in the handler.
    topic.publish(0)?;
    std::thread::sleep(Duration::from_millis(20));
    for i in 0..n {
        publish(std::hint::black_box(i));
    }
    release.send(())?;
    engine.shutdown();
    Ok(())
}
