//! Cost of the timing wheel (`src/wheel.rs`, included by path as rtrb does for
//! its benches: the wheel is crate-private and needs nothing else).
//!
//! - `wheel/schedule_fire_10k`: insert 10,000 timers at due ticks spread over
//!   10 s of 1 ms ticks (so most cascade through two or three levels), then
//!   advance through them 1 ms at a time, firing each. Per element: one
//!   insert plus its share of cascades and one fire.
//! - `wheel/schedule_cancel_10k`: insert 10,000 timers, then cancel each.
//!   Per element: one insert and one cancel.
//! - `wheel/advance_empty_hour`: advance an empty wheel through one hour of
//!   1 ms ticks (O(levels), not O(ticks)); one element per call.
//! - `base`: the same loop filling a `Vec` of the 10,000 values, no wheel.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

// Unused wheel methods; its unit tests, which `--all-targets` checks
// compile in test mode without the harness.
#[allow(dead_code, unused_imports)]
#[path = "../src/time/wheel.rs"]
mod wheel;

use wheel::Wheel;

const N: u64 = 10_000;
/// Due ticks are spread over this many ticks (10 s of 1 ms ticks).
const SPREAD: u64 = 10_000;

/// Due tick of timer `i`: a fixed pseudo-random spread (multiplicative hash).
fn due(i: u64) -> u64 {
    i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % SPREAD
}

fn wheel(c: &mut Criterion) {
    let mut g = c.benchmark_group("wheel");
    g.throughput(Throughput::Elements(N));
    g.bench_function("schedule_fire_10k", |b| {
        let mut w: Wheel<u64> = Wheel::new();
        let mut base = 0u64;
        b.iter(|| {
            for i in 0..N {
                w.insert(base + due(i), i);
            }
            let mut sum = 0u64;
            for t in base..base + SPREAD {
                w.advance(t, |_, v| sum = sum.wrapping_add(v));
            }
            base += SPREAD;
            black_box(sum)
        });
    });
    g.bench_function("schedule_cancel_10k", |b| {
        let mut w: Wheel<u64> = Wheel::new();
        let mut keys = Vec::with_capacity(N as usize);
        b.iter(|| {
            keys.extend((0..N).map(|i| w.insert(due(i) + 1, i)));
            let mut sum = 0u64;
            for k in keys.drain(..) {
                sum = sum.wrapping_add(w.cancel(k).unwrap_or(0));
            }
            black_box(sum)
        });
    });
    g.throughput(Throughput::Elements(1));
    g.bench_function("advance_empty_hour", |b| {
        let mut w: Wheel<u64> = Wheel::new();
        let mut now = 0u64;
        b.iter(|| {
            now += 3_600_000;
            w.advance(black_box(now), |_, _| {});
        });
    });
    g.finish();
}

fn base(c: &mut Criterion) {
    let mut g = c.benchmark_group("base");
    g.throughput(Throughput::Elements(N));
    g.bench_function("fill_vec_10k", |b| {
        let mut v = Vec::with_capacity(N as usize);
        b.iter(|| {
            v.extend((0..N).map(|i| (due(i), i)));
            let sum = v.iter().fold(0u64, |s, &(_, x)| s.wrapping_add(x));
            v.clear();
            black_box(sum)
        });
    });
    g.finish();
}

criterion_group!(benches, wheel, base);
criterion_main!(benches);
