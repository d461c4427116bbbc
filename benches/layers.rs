//! What middleware costs per event (criterion): 1 producer → 1 subscriber
//! on one worker, publish through handler, as in `publish_1p1s`, with one
//! feature on at a time. `core` is the plain subscription (no layers, no
//! options) every other case is compared with, in the same run.
//!
//! - `no_layers`: `subscribe_with(SubscribeOptions::new())` — must be `core`.
//! - `filter`, `rate_limit`, `logging`, `spans_1in64`: one handler layer
//!   (the filter passes everything; the bucket never runs dry; `logging` and
//!   `spans` with no `tracing` collector installed, the usual production
//!   case when a level is off).
//! - `latency_1in64`: sampled publish→handle latency in the metrics.
//! - `intercept_admit`, `intercept_rate_limit`: a publish interceptor (a
//!   closure that admits; the shared lock-free bucket).
//! - `trace_inherit_forward`: the handler publishes each event on to a
//!   second topic on the same worker (the child joins the handled event's
//!   trace, carried through the lane's side queue); two hops per event, so
//!   compare it with half of `core`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pinbus::layer::{Filter, RateLimit};
use pinbus::{intercept, Engine, Event, SubscribeOptions, Topic, TopicOptions};

mod support;

use support::{engine, pin_bench_thread, wait_for, Counter};

/// Runs `publish` → handler with `subscribe` choosing the subscription.
fn bench_case(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    subscribe: impl FnOnce(&Engine, &Topic<u64>, Arc<Counter>),
    publish: impl Fn(&Topic<u64>, u64),
) {
    let engine = engine();
    let topic = engine
        .topic_with::<u64>("bench", TopicOptions::default())
        .unwrap();
    let seen = Arc::new(Counter::default());
    subscribe(&engine, &topic, seen.clone());
    let mut sent = 0u64;
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for i in 0..iters {
                publish(&topic, i);
            }
            sent += iters;
            wait_for(&seen, sent);
            start.elapsed()
        })
    });
    engine.shutdown();
}

/// The handler every case ends in: count the event.
fn count(seen: Arc<Counter>) -> impl FnMut(&Event<u64>) + Send + 'static {
    move |ev| {
        let _ = std::hint::black_box(**ev);
        seen.store(
            seen.load(std::sync::atomic::Ordering::Relaxed) + 1,
            std::sync::atomic::Ordering::Release,
        );
    }
}

fn plain(t: &Topic<u64>, i: u64) {
    t.publish(i).unwrap();
}

fn layers(c: &mut Criterion) {
    pin_bench_thread();
    let mut group = c.benchmark_group("layers_1p1s");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(3));

    bench_case(
        &mut group,
        "core",
        |_, t, s| drop(t.subscribe(count(s)).unwrap()),
        plain,
    );
    bench_case(
        &mut group,
        "no_layers",
        |_, t, s| drop(t.subscribe_with(count(s), SubscribeOptions::new()).unwrap()),
        plain,
    );
    bench_case(
        &mut group,
        "filter",
        |_, t, s| {
            let opts =
                SubscribeOptions::new().layer(Filter::new(|ev: &Event<u64>| **ev != u64::MAX));
            drop(t.subscribe_with(count(s), opts).unwrap())
        },
        plain,
    );
    bench_case(
        &mut group,
        "rate_limit",
        |_, t, s| {
            let opts =
                SubscribeOptions::new().layer(RateLimit::per_second(u32::MAX).burst(u32::MAX));
            drop(t.subscribe_with(count(s), opts).unwrap())
        },
        plain,
    );
    bench_case(
        &mut group,
        "logging",
        |_, t, s| {
            let opts = SubscribeOptions::new().layer(pinbus::layer::Logging);
            drop(t.subscribe_with(count(s), opts).unwrap())
        },
        plain,
    );
    bench_case(
        &mut group,
        "spans_1in64",
        |_, t, s| {
            let opts = SubscribeOptions::new().layer(pinbus::layer::Spans::sampled(64));
            drop(t.subscribe_with(count(s), opts).unwrap())
        },
        plain,
    );
    bench_case(
        &mut group,
        "latency_1in64",
        |_, t, s| {
            let opts = SubscribeOptions::new().latency_sampling(64);
            drop(t.subscribe_with(count(s), opts).unwrap())
        },
        plain,
    );

    // Publish side: an interceptor handle made once, used for every publish.
    let admit = std::sync::OnceLock::new();
    bench_case(
        &mut group,
        "intercept_admit",
        |_, t, s| {
            drop(t.subscribe(count(s)).unwrap());
            let _ = admit.set(t.intercept(|v: &mut u64| -> Result<(), &'static str> {
                if *v == u64::MAX {
                    Err("never")
                } else {
                    Ok(())
                }
            }));
        },
        |_, i| admit.get().unwrap().publish(i).unwrap(),
    );
    let limited = std::sync::OnceLock::new();
    bench_case(
        &mut group,
        "intercept_rate_limit",
        |_, t, s| {
            drop(t.subscribe(count(s)).unwrap());
            let _ = limited
                .set(t.intercept(intercept::RateLimit::per_second(u32::MAX).burst(u32::MAX)));
        },
        |_, i| limited.get().unwrap().publish(i).unwrap(),
    );

    // Trace inheritance: a handler that forwards each event to a second
    // topic; the count is taken on the second topic.
    bench_case(
        &mut group,
        "trace_inherit_forward",
        |e, t, s| {
            let next = e.topic::<u64>("bench.next").unwrap();
            drop(next.subscribe(count(s)).unwrap());
            drop(
                t.subscribe(move |ev: &Event<u64>| next.publish(**ev).unwrap())
                    .unwrap(),
            );
        },
        plain,
    );
    group.finish();
}

criterion_group!(benches, layers);
criterion_main!(benches);
