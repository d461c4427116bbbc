//! Soak: 10^8 events from 4 producer threads, with subscription, group and
//! topic churn on the side; RSS sampled every tenth of the run and printed.
//! RSS at the end must be within 10% (at least 4 MiB) of RSS after the first
//! tenth (warm-up), and the counts that are exact must be exact.
//!
//! ```sh
//! cargo test --release --test soak -- --ignored --nocapture
//! PINBUS_SOAK_EVENTS=10000000 cargo test --release --test soak -- --ignored --nocapture
//! ```

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{mib, rss_bytes, watchdog};
use pinbus::{Engine, IdleStrategy, SubscribeOptions};

const PRODUCERS: u64 = 4;
const SEQ_BITS: u32 = 48;

fn events() -> u64 {
    std::env::var("PINBUS_SOAK_EVENTS")
        .ok()
        .map(|s| s.replace('_', ""))
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000_000)
}

#[test]
#[ignore = "long: run with --release -- --ignored --nocapture"]
fn soak_with_churn_keeps_memory_flat_and_counts_exact() {
    let total = events() / PRODUCERS * PRODUCERS;
    assert!(total >= 10 * PRODUCERS, "PINBUS_SOAK_EVENTS too small");
    // Generous: 10 µs an event is far slower than any build.
    let limit = Duration::from_secs(300.max(total / 100_000));
    let _w = watchdog("soak", limit);
    let engine = Arc::new(
        Engine::builder()
            .workers(2)
            .idle(IdleStrategy::Park)
            .build()
            .unwrap(),
    );
    let topic = engine.topic::<u64>("soak").unwrap();

    // Lives the whole time: sees every event, in per-producer order.
    let counted = Arc::new(AtomicU64::new(0));
    let out_of_order = Arc::new(AtomicU64::new(0));
    let (c, o) = (counted.clone(), out_of_order.clone());
    // One more: the flush event at the end comes from the test thread.
    let mut next = [0u64; PRODUCERS as usize + 1];
    topic
        .subscribe_with(
            move |ev| {
                let v = **ev;
                let (p, seq) = ((v >> SEQ_BITS) as usize, v & ((1 << SEQ_BITS) - 1));
                if next[p] != seq {
                    o.fetch_add(1, Ordering::Relaxed);
                }
                next[p] = seq + 1;
                c.fetch_add(1, Ordering::Relaxed);
            },
            SubscribeOptions::new().worker(0),
        )
        .unwrap();
    // A group with two members that stay: each event to exactly one.
    let grouped = Arc::new(AtomicU64::new(0));
    for w in 0..2 {
        let g = grouped.clone();
        topic
            .group("steady")
            .subscribe_with(
                move |_| {
                    g.fetch_add(1, Ordering::Relaxed);
                },
                SubscribeOptions::new().worker(w),
            )
            .unwrap();
    }

    let progress = Arc::new(AtomicU64::new(0));
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let (t, progress) = (topic.clone(), progress.clone());
            std::thread::spawn(move || {
                let per = total / PRODUCERS;
                let mut seq = 0;
                while seq < per {
                    let end = (seq + 4096).min(per);
                    for s in seq..end {
                        t.publish((p << SEQ_BITS) | s).unwrap();
                    }
                    progress.fetch_add(end - seq, Ordering::Relaxed);
                    seq = end;
                }
            })
        })
        .collect();

    // Churn on the side: topics, groups and subscriptions come and go.
    let stop = Arc::new(AtomicBool::new(false));
    let churn = {
        let (engine, topic, stop) = (engine.clone(), topic.clone(), stop.clone());
        let grouped = grouped.clone();
        std::thread::spawn(move || {
            let mut rounds = 0u64;
            let mut published = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let side = engine.topic::<u64>(&format!("churn.{rounds}")).unwrap();
                let sub = side.subscribe(|_| {}).unwrap();
                side.publish_and_wait(rounds).unwrap();
                published += 1;
                sub.unsubscribe();
                drop(side);
                let member = topic
                    .group(&format!("temp.{rounds}"))
                    .subscribe(|_| {})
                    .unwrap();
                let extra = topic.subscribe(|_| {}).unwrap();
                // A third member of the steady group: its events count too.
                let g = grouped.clone();
                let steady_extra = topic
                    .group("steady")
                    .subscribe(move |_| {
                        g.fetch_add(1, Ordering::Relaxed);
                    })
                    .unwrap();
                std::thread::sleep(Duration::from_millis(1));
                member.unsubscribe();
                extra.unsubscribe();
                steady_extra.unsubscribe();
                rounds += 1;
            }
            (rounds, published)
        })
    };

    // Samples RSS at every tenth of the run (this loop only watches).
    let start = Instant::now();
    let step = total / 10;
    let mut samples = Vec::new();
    let mut next_sample = step;
    while samples.len() < 10 {
        let done = progress.load(Ordering::Relaxed);
        if done >= next_sample {
            let rss = rss_bytes();
            println!(
                "soak: {done:>12} events, {:7.1} MiB RSS, {:6.1} s",
                mib(rss),
                start.elapsed().as_secs_f64()
            );
            samples.push(rss);
            next_sample += step;
        } else {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    for p in producers {
        p.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let (rounds, churn_published) = churn.join().unwrap();
    topic.publish_and_wait(PRODUCERS << SEQ_BITS).unwrap(); // the flush event
    let report = engine.shutdown();
    let end_rss = rss_bytes();
    let warm = samples[0];
    println!(
        "soak: {total} events in {:.1} s ({:.1} M/s), {rounds} churn rounds; RSS after warm-up {:.1} MiB, at the end {:.1} MiB ({:+.1}%)",
        start.elapsed().as_secs_f64(),
        total as f64 / start.elapsed().as_secs_f64() / 1e6,
        mib(warm),
        mib(end_rss),
        (end_rss as f64 / warm as f64 - 1.0) * 100.0
    );
    assert!(report.complete, "{report:?}");
    assert_eq!(
        out_of_order.load(Ordering::Relaxed),
        0,
        "per-producer order"
    );
    // + 1: the flush event.
    assert_eq!(counted.load(Ordering::Relaxed), total + 1);
    assert_eq!(
        grouped.load(Ordering::Relaxed),
        total + 1,
        "the steady group"
    );
    assert_eq!(report.published, total + 1 + churn_published, "{report:?}");
    // 10%, with a 4 MiB floor so that allocator noise on a short run
    // (PINBUS_SOAK_EVENTS, a few MiB of RSS) cannot fail it; a leak of a
    // lane per churn round is ~130 KiB a round, thousands of rounds.
    let allowed = (warm as f64 * 1.10).max((warm + (4 << 20)) as f64);
    assert!(
        end_rss as f64 <= allowed,
        "RSS grew from {:.1} MiB after warm-up to {:.1} MiB",
        mib(warm),
        mib(end_rss)
    );
}
