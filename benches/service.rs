//! Request/reply (criterion), against a crossbeam-channel request/response
//! pair in the same group and run: the bench thread (first core) calls, one
//! call at a time; the server (pinbus: a service member on a BusySpin worker;
//! crossbeam: a thread that `recv`s, does the same `black_box` doubling and
//! `send`s the reply) runs on the last core. Time per round trip.
//!
//! - `request_reply/pinbus_call`: `service.call(v)`.
//! - `request_reply/pinbus_call_async`: `service.call_async(v).await` on a
//!   current-thread tokio runtime.
//! - `request_reply/crossbeam_pair`: bounded(1024) request channel, bounded
//!   reply channel.

use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

mod support;

use support::{cores, engine, pin_bench_thread};

fn request_reply(c: &mut Criterion) {
    pin_bench_thread();
    let mut group = c.benchmark_group("request_reply");
    group.throughput(Throughput::Elements(1));

    let engine = engine();
    let doubler = engine.service::<u64, u64>("bench.double").unwrap();
    doubler
        .serve(|q: &pinbus::Event<u64>| std::hint::black_box(**q) * 2)
        .unwrap();
    group.bench_function("pinbus_call", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for i in 0..iters {
                assert_eq!(doubler.call(i).unwrap(), i * 2);
            }
            start.elapsed()
        })
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime");
    group.bench_function("pinbus_call_async", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for i in 0..iters {
                    assert_eq!(doubler.call_async(i).await.unwrap(), i * 2);
                }
                start.elapsed()
            })
        })
    });
    engine.shutdown();

    let (tx, rx) = crossbeam_channel::bounded::<u64>(1024);
    let (reply_tx, reply_rx) = crossbeam_channel::bounded::<u64>(1024);
    let server = std::thread::spawn(move || {
        if let (_, Some(last)) = cores() {
            core_affinity::set_for_current(core_affinity::CoreId { id: last });
        }
        while let Ok(v) = rx.recv() {
            if reply_tx.send(std::hint::black_box(v) * 2).is_err() {
                break;
            }
        }
    });
    group.bench_function("crossbeam_pair", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for i in 0..iters {
                tx.send(i).unwrap();
                assert_eq!(reply_rx.recv().unwrap(), i * 2);
            }
            start.elapsed()
        })
    });
    drop(tx);
    server.join().unwrap();
    group.finish();
}

criterion_group!(benches, request_reply);
criterion_main!(benches);
