//! A keyed consumer group against a plain one (criterion), same run, same
//! work per event: the bench thread (first core) publishes `iters` u64 to a
//! topic whose group has two members on one BusySpin worker (the last
//! core), each counting; time until every event is counted. The keyed group
//! keys by `v % 100`.
//!
//! - `group_throughput/plain_group`
//! - `group_throughput/keyed_group`

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pinbus::{Backpressure, Topic, TopicOptions};

mod support;

use support::{engine, pin_bench_thread, wait_for, Counter};

fn run(c: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>, keyed: bool) {
    let engine = engine();
    let topic: Topic<u64> = engine
        .topic_with(
            "bench.groups",
            TopicOptions::default().backpressure(Backpressure::Block),
        )
        .unwrap();
    let seen = Arc::new(Counter::default());
    for _ in 0..2 {
        let s = seen.clone();
        let count = move |ev: &pinbus::Event<u64>| {
            std::hint::black_box(**ev);
            s.fetch_add(1, Ordering::Release);
        };
        if keyed {
            topic
                .group("g")
                .keyed(|v: &u64| *v % 100)
                .subscribe(count)
                .unwrap();
        } else {
            topic.group("g").subscribe(count).unwrap();
        }
    }
    let name = if keyed { "keyed_group" } else { "plain_group" };
    c.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let base = seen.load(Ordering::Acquire);
            let start = Instant::now();
            for i in 0..iters {
                topic.publish(i).unwrap();
            }
            wait_for(&seen, base + iters);
            start.elapsed()
        })
    });
    engine.shutdown();
}

fn group_throughput(c: &mut Criterion) {
    pin_bench_thread();
    let mut group = c.benchmark_group("group_throughput");
    group.throughput(Throughput::Elements(1));
    run(&mut group, false);
    run(&mut group, true);
    group.finish();
}

criterion_group!(benches, group_throughput);
criterion_main!(benches);
