//! 1 producer → 1 subscriber, measured in *paired rounds*: each round runs
//! every contender once, back to back, and the figure reported is the median
//! over rounds of each contender's ratio to `core` in the same round. On a
//! shared VM whose speed changes from one second to the next, a ratio of
//! neighbours in time is stable where a ratio of separate criterion runs is
//! not (see docs/benchmarks.md).
//!
//! Contenders (each round builds a fresh engine or channel; producer on the
//! first core, consumer on the last, busy-spinning; `core` and `no_layers`
//! take turns to go first):
//! - `core`: `topic.subscribe(handler)`;
//! - `no_layers`: `topic.subscribe_with(handler, SubscribeOptions::new())`
//!   (issue 5: must run within 5% of `core`);
//! - `crossbeam`: crossbeam-channel bounded, same capacity, the consumer
//!   draining with `try_recv` (issue 2 compares `core` with it).
//!
//! Run: `cargo run --release --example paired_1p1s -- [rounds] [events]`
//! (defaults 15 rounds of 2,000,000 events).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use pinbus::{Event, SubscribeOptions};

// The criterion benches' engine, placement, counter and crossbeam consumer.
#[path = "../benches/support/mod.rs"]
mod support;

use support::{cores, engine, pin_bench_thread, spawn_crossbeam_consumer, wait_for, Counter};

/// M events/s from the first of `events` sends to the last one counted,
/// after one warm-up event (producer slot, lane, the consumer's first batch).
fn timed(events: u64, seen: &Counter, mut send: impl FnMut(u64)) -> f64 {
    send(0);
    wait_for(seen, 1);
    let start = Instant::now();
    for i in 0..events {
        send(i);
    }
    wait_for(seen, events + 1);
    events as f64 / start.elapsed().as_secs_f64() / 1e6
}

/// One pinbus round, through `subscribe` or `subscribe_with(.., new())`.
fn pinbus_round(events: u64, with_options: bool) -> f64 {
    let engine = engine();
    let topic = engine.topic::<u64>("paired").expect("topic");
    let seen = Arc::new(Counter::default());
    let s = seen.clone();
    let handler = move |ev: &Event<u64>| {
        std::hint::black_box(**ev);
        s.store(s.load(Ordering::Relaxed) + 1, Ordering::Release);
    };
    if with_options {
        topic
            .subscribe_with(handler, SubscribeOptions::new())
            .expect("subscribe");
    } else {
        topic.subscribe(handler).expect("subscribe");
    }
    let rate = timed(
        events,
        &seen,
        #[inline(always)]
        |i| topic.publish(i).expect("publish"),
    );
    engine.shutdown();
    rate
}

/// One crossbeam-channel round, measured the same way.
fn crossbeam_round(events: u64) -> f64 {
    let (tx, rx) = crossbeam_channel::bounded::<u64>(support::CAPACITY);
    let seen = Arc::new(Counter::default());
    let stop = Arc::new(AtomicBool::new(false));
    let consumer = spawn_crossbeam_consumer(rx, seen.clone(), stop.clone());
    let rate = timed(
        events,
        &seen,
        #[inline(always)]
        |i| tx.send(i).expect("send"),
    );
    stop.store(true, Ordering::Relaxed);
    consumer.join().expect("consumer thread");
    rate
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(15)
        .max(1);
    let events: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(2_000_000)
        .max(1);
    pin_bench_thread();
    let (producer_core, consumer_core) = cores();
    println!(
        "paired 1P->1S: {rounds} rounds x {events} events, producer core {producer_core:?}, \
         consumer core {consumer_core:?}"
    );
    let (mut core, mut no_layers, mut crossbeam) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=rounds {
        // Alternate who goes first, so neither pinbus case always runs
        // right after crossbeam.
        let (c, n) = if round % 2 == 1 {
            let c = pinbus_round(events, false);
            (c, pinbus_round(events, true))
        } else {
            let n = pinbus_round(events, true);
            (pinbus_round(events, false), n)
        };
        let x = crossbeam_round(events);
        println!(
            "round {round:>2}: core {c:6.1}  no_layers {n:6.1}  crossbeam {x:6.1} M/s   \
             no_layers/core {:.3}  core/crossbeam {:.2}",
            n / c,
            c / x
        );
        core.push(c);
        no_layers.push(n);
        crossbeam.push(x);
    }
    let ratio = |a: &[f64], b: &[f64]| median(a.iter().zip(b).map(|(x, y)| x / y).collect());
    println!(
        "medians: core {:.1}  no_layers {:.1}  crossbeam {:.1} M/s",
        median(core.clone()),
        median(no_layers.clone()),
        median(crossbeam.clone())
    );
    println!(
        "median of per-round ratios: no_layers/core {:.3}  core/crossbeam {:.2}",
        ratio(&no_layers, &core),
        ratio(&core, &crossbeam)
    );
}
