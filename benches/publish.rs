//! Micro view of the hot path (criterion). Each bench measures publish →
//! handler across threads with `iter_custom`: publish `iters` events, then
//! wait until the handler has seen them all; throughput is events per second
//! through the handler, not just into the ring.
//!
//! - `publish_1p1s/*`: one producer, one subscriber on one worker; the peer
//!   in the same run is crossbeam-channel (bounded, same capacity), consumer
//!   on the same core as pinbus's worker.
//! - `fanout_1x4`: one producer, four subscribers on one worker (one push per
//!   event serves all four).
//! - `publish_batch/*`: `publish_batch` in batches of 64 and 1024.
//! - `snapshot_churn/*`: 1P→1S while a background thread subscribes and
//!   unsubscribes on the same topic (every change bumps the snapshot version,
//!   so the publisher revalidates), against the same bench without churn.
//! - `publish_patterns/{0,10}`: 1P→1S with 0 and with 10 pattern
//!   subscriptions that do not match the topic (same publish path).
//! - `base`: the measurement loop alone (the wait on an atomic counter).
//!
//! Pinning: producer (the bench thread) on the first core, worker (or
//! consumer) on the last, when the machine has two or more.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use pinbus::{SubscribeOptions, Topic, TopicOptions};

mod support;

use support::{engine, pin_bench_thread, spawn_crossbeam_consumer, wait_for, Counter, CAPACITY};

/// A subscriber counting what it sees; returns the counter.
fn counting_subscriber(topic: &Topic<u64>, subscribers: usize) -> Arc<Counter> {
    let seen = Arc::new(Counter::default());
    for _ in 0..subscribers {
        let s = seen.clone();
        topic
            .subscribe(move |ev| {
                // A store, not an RMW: every subscriber runs on the same
                // worker thread, so the counter has a single writer.
                let _ = std::hint::black_box(**ev);
                s.store(s.load(Ordering::Relaxed) + 1, Ordering::Release);
            })
            .expect("subscribe");
    }
    seen
}

fn publish_1p1s(c: &mut Criterion) {
    pin_bench_thread();
    let mut group = c.benchmark_group("publish_1p1s");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(5));

    for (name, timestamps) in [("pinbus", true), ("pinbus_no_timestamps", false)] {
        let engine = engine();
        let topic = engine
            .topic_with::<u64>("bench", TopicOptions::default().timestamps(timestamps))
            .unwrap();
        let seen = counting_subscriber(&topic, 1);
        let mut sent = 0u64;
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for i in 0..iters {
                    topic.publish(i).unwrap();
                }
                sent += iters;
                wait_for(&seen, sent);
                start.elapsed()
            })
        });
        engine.shutdown();
    }

    // Peer: crossbeam-channel bounded, consumer pinned like pinbus's worker.
    let (tx, rx) = crossbeam_channel::bounded::<u64>(CAPACITY);
    let seen = Arc::new(Counter::default());
    let stop = Arc::new(AtomicBool::new(false));
    let consumer = spawn_crossbeam_consumer(rx, seen.clone(), stop.clone());
    let mut sent = 0u64;
    group.bench_function("crossbeam_channel", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for i in 0..iters {
                tx.send(i).unwrap();
            }
            sent += iters;
            wait_for(&seen, sent);
            start.elapsed()
        })
    });
    stop.store(true, Ordering::Relaxed);
    consumer.join().unwrap();
    group.finish();
}

fn fanout_1x4(c: &mut Criterion) {
    pin_bench_thread();
    let mut group = c.benchmark_group("fanout_1x4");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(5));
    let engine = engine();
    let topic = engine
        .topic_with::<u64>("fanout", TopicOptions::default().timestamps(false))
        .unwrap();
    let seen = counting_subscriber(&topic, 4);
    let mut sent = 0u64;
    group.bench_function("pinbus", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for i in 0..iters {
                topic.publish(i).unwrap();
            }
            sent += iters * 4;
            wait_for(&seen, sent);
            start.elapsed()
        })
    });
    engine.shutdown();
    group.finish();
}

fn publish_batch(c: &mut Criterion) {
    pin_bench_thread();
    let mut group = c.benchmark_group("publish_batch");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(5));
    let engine = engine();
    let topic = engine
        .topic_with::<u64>("batch", TopicOptions::default().timestamps(false))
        .unwrap();
    let seen = counting_subscriber(&topic, 1);
    let mut sent = 0u64;
    for batch in [64u64, 1024] {
        group.bench_with_input(BenchmarkId::new("pinbus", batch), &batch, |b, &batch| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                let mut left = iters;
                while left > 0 {
                    let n = left.min(batch);
                    topic.publish_batch(0..n).unwrap();
                    left -= n;
                }
                sent += iters;
                wait_for(&seen, sent);
                start.elapsed()
            })
        });
    }
    engine.shutdown();
    group.finish();
}

fn snapshot_churn(c: &mut Criterion) {
    pin_bench_thread();
    let mut group = c.benchmark_group("snapshot_churn");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(5));
    for churn in [false, true] {
        let engine = Arc::new(engine());
        let topic = engine
            .topic_with::<u64>("churn", TopicOptions::default().timestamps(false))
            .unwrap();
        let seen = counting_subscriber(&topic, 1);
        let stop = Arc::new(AtomicBool::new(false));
        let changes = Arc::new(AtomicU64::new(0));
        let churner = churn.then(|| {
            let (topic, stop, changes) = (topic.clone(), stop.clone(), changes.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let sub = topic
                        .subscribe_with(|_| {}, SubscribeOptions::new())
                        .expect("subscribe");
                    sub.unsubscribe();
                    changes.fetch_add(2, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_micros(500));
                }
            })
        });
        let mut sent = 0u64;
        let name = if churn { "with_churn" } else { "without_churn" };
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for i in 0..iters {
                    topic.publish(i).unwrap();
                }
                sent += iters;
                wait_for(&seen, sent);
                start.elapsed()
            })
        });
        stop.store(true, Ordering::Relaxed);
        if let Some(c) = churner {
            c.join().unwrap();
        }
        engine.shutdown();
    }
    group.finish();
}

/// 1P→1S with 0 and with 10 pattern subscriptions defined that do not match
/// the topic: patterns join topics' snapshots only where they match, so both
/// take the same publish path (the 0 case is `publish_1p1s` itself).
fn publish_patterns(c: &mut Criterion) {
    pin_bench_thread();
    let mut group = c.benchmark_group("publish_patterns");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(5));
    for patterns in [0usize, 10] {
        let engine = engine();
        let _subs: Vec<_> = (0..patterns)
            .map(|i| {
                let p = engine.pattern::<u64>(&format!("other{i}.>")).unwrap();
                p.subscribe(|_| ()).unwrap()
            })
            .collect();
        let topic = engine
            .topic_with::<u64>("bench", TopicOptions::default().timestamps(false))
            .unwrap();
        let seen = counting_subscriber(&topic, 1);
        let mut sent = 0u64;
        group.bench_function(BenchmarkId::from_parameter(patterns), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for i in 0..iters {
                    topic.publish(i).unwrap();
                }
                sent += iters;
                wait_for(&seen, sent);
                start.elapsed()
            })
        });
        engine.shutdown();
    }
    group.finish();
}

fn base(c: &mut Criterion) {
    let mut group = c.benchmark_group("base");
    group.throughput(Throughput::Elements(1));
    let counter = AtomicU64::new(0);
    group.bench_function("count_and_wait", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            let target = counter.load(Ordering::Relaxed) + iters;
            for _ in 0..iters {
                counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Release);
            }
            wait_for(&counter, target);
            start.elapsed()
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    publish_1p1s,
    fanout_1x4,
    publish_batch,
    snapshot_churn,
    publish_patterns,
    base
);
criterion_main!(benches);
