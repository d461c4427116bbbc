//! Micro view of pinbus from async code (criterion), each against tokio's
//! own channels in the same group and the same run. Every runtime is a
//! tokio current-thread runtime; the bench thread is pinned to the first
//! core, pinbus's worker (BusySpin) and every peer's server or consumer
//! thread to the last.
//!
//! - `async_round_trip/*`, one request at a time from the bench thread's
//!   runtime: `pinbus_receipt_await` = `publish_tracked(v)?` then
//!   `receipt.await`, the subscriber a plain handler doing `black_box`;
//!   `tokio_mpsc_oneshot` = a bounded mpsc request carrying a oneshot sender
//!   to a server task that does the same `black_box` and replies. Time per
//!   round trip.
//! - `async_stream/*`, events per second into a consumer task: the bench
//!   thread's runtime sends `iters` u64 (`pinbus_publish_async` =
//!   `topic.publish_async(v).await` on a `Block` topic, the task drains
//!   `subscribe_stream()` with `StreamExt::next`; `tokio_mpsc` = bounded
//!   `send(v).await`, the task `recv().await`s), then waits until the task
//!   has counted them all. pinbus's worker and the task share the last core
//!   (the worker parks, so it does not spin while the task could run).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use futures::StreamExt;
use pinbus::{Backpressure, TopicOptions};
use tokio::runtime::Runtime;
use tokio::sync::{mpsc, oneshot};

mod support;

use support::{cores, engine, pin_bench_thread, wait_for, Counter, CAPACITY};

/// A current-thread runtime (no I/O or time driver).
fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime")
}

/// [`engine`] with a parking worker.
fn parking_engine() -> pinbus::Engine {
    let pinning = cores()
        .1
        .map_or(pinbus::Pinning::None, |c| pinbus::Pinning::Cores(vec![c]));
    pinbus::Engine::builder()
        .workers(1)
        .pinning(pinning)
        .idle(pinbus::IdleStrategy::Park)
        .lane_capacity(CAPACITY)
        .build()
        .expect("bench engine")
}

/// A thread on the last core running `task` on its own current-thread
/// runtime until it ends.
fn task_on_last_core<F>(task: F) -> JoinHandle<()>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    std::thread::spawn(move || {
        if let (_, Some(last)) = cores() {
            core_affinity::set_for_current(core_affinity::CoreId { id: last });
        }
        runtime().block_on(task);
    })
}

fn async_round_trip(c: &mut Criterion) {
    pin_bench_thread();
    let rt = runtime();
    let mut group = c.benchmark_group("async_round_trip");
    group.throughput(Throughput::Elements(1));

    let engine = engine();
    let topic = engine.topic::<u64>("bench.async.call").unwrap();
    topic
        .subscribe(|ev| {
            let _ = std::hint::black_box(**ev);
        })
        .unwrap();
    group.bench_function("pinbus_receipt_await", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for i in 0..iters {
                    topic.publish_tracked(i).unwrap().await;
                }
                start.elapsed()
            })
        })
    });
    engine.shutdown();

    let (tx, mut rx) = mpsc::channel::<(u64, oneshot::Sender<u64>)>(CAPACITY);
    let server = task_on_last_core(async move {
        while let Some((v, reply)) = rx.recv().await {
            let _ = reply.send(std::hint::black_box(v));
        }
    });
    group.bench_function("tokio_mpsc_oneshot", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for i in 0..iters {
                    let (reply, answer) = oneshot::channel();
                    tx.send((i, reply)).await.unwrap();
                    assert_eq!(answer.await.unwrap(), i);
                }
                start.elapsed()
            })
        })
    });
    drop(tx);
    server.join().unwrap();
    group.finish();
}

fn async_stream(c: &mut Criterion) {
    pin_bench_thread();
    let rt = runtime();
    let mut group = c.benchmark_group("async_stream");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(5));

    // The worker shares the last core with the consumer task: it parks when
    // idle or waiting for room in the stream, so it never spins while the
    // task could run (as pinbus-bench's S9 stream).
    let engine = parking_engine();
    let topic = engine
        .topic_with::<u64>(
            "bench.async.stream",
            TopicOptions::default().backpressure(Backpressure::Block),
        )
        .unwrap();
    let seen = Arc::new(Counter::default());
    let mut events = topic.subscribe_stream().unwrap();
    let s = seen.clone();
    // Ends when the engine shuts down (the stream then ends).
    let consumer = task_on_last_core(async move {
        while let Some(ev) = events.next().await {
            let _ = std::hint::black_box(*ev);
            s.store(s.load(Ordering::Relaxed) + 1, Ordering::Release);
        }
    });
    let mut sent = 0u64;
    group.bench_function("pinbus_publish_async", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for i in 0..iters {
                    topic.publish_async(i).await.unwrap();
                }
                sent += iters;
                wait_for(&seen, sent);
                start.elapsed()
            })
        })
    });
    engine.shutdown();
    consumer.join().unwrap();

    let (tx, mut rx) = mpsc::channel::<u64>(CAPACITY);
    let seen = Arc::new(Counter::default());
    let s = seen.clone();
    let consumer = task_on_last_core(async move {
        while let Some(v) = rx.recv().await {
            let _ = std::hint::black_box(v);
            s.store(s.load(Ordering::Relaxed) + 1, Ordering::Release);
        }
    });
    let mut sent = 0u64;
    group.bench_function("tokio_mpsc", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for i in 0..iters {
                    tx.send(i).await.unwrap();
                }
                sent += iters;
                wait_for(&seen, sent);
                start.elapsed()
            })
        })
    });
    drop(tx);
    consumer.join().unwrap();
    group.finish();
}

criterion_group!(benches, async_round_trip, async_stream);
criterion_main!(benches);
