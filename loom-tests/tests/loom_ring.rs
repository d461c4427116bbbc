//! loom models of the lane ring (`src/ring.rs`): per-slot stamps with lap
//! parity, a head index published once per batch.
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use pinbus::internals::{channel, Producer};

/// Pushes `v`, yielding while the ring is full.
fn push_blocking(p: &mut Producer<Arc<u32>>, tag: u64, mut v: Arc<u32>) {
    loop {
        if p.free(1) > 0 {
            match p.write(tag, v) {
                Ok(()) => return,
                Err(back) => v = back,
            }
        }
        thread::yield_now();
    }
}

/// Capacity 2, three values: the third reuses slot 0 (lap 1, parity flips)
/// after the consumer's batch frees it, racing the consumer's stamp loads and
/// head store. Values and tags arrive once, in order.
#[test]
fn ring_wraps_around_with_batch_release() {
    loom::model(|| {
        let (mut p, mut c) = channel::<Arc<u32>>(2);
        let producer = thread::spawn(move || {
            for i in 0..3 {
                push_blocking(&mut p, u64::from(i) + 10, Arc::new(i));
            }
        });
        let mut next = 0;
        while next < 3 {
            let n = c.consume(2, |tag, v| {
                assert_eq!((tag, *v), (u64::from(next) + 10, next));
                next += 1;
            });
            if n == 0 {
                thread::yield_now();
            }
        }
        producer.join().unwrap();
    });
}

/// `Consumer::ready` as the worker uses it: count, then take exactly that
/// many. Capacity 2, four values: once a count fills the window the consumer
/// is behind and counts the next window by its last slot's stamp alone. Every
/// slot counted must hold its value (the far stamp's `Acquire` orders the
/// earlier slots' writes before the reads), across the lap change.
#[test]
fn ring_ready_far_probe_counts_only_published_slots() {
    loom::model(|| {
        let (mut p, mut c) = channel::<Arc<u32>>(2);
        let producer = thread::spawn(move || {
            for i in 0..4 {
                push_blocking(&mut p, u64::from(i), Arc::new(i));
            }
        });
        let mut next = 0;
        while next < 4 {
            let counted = c.ready(2);
            if counted == 0 {
                thread::yield_now();
                continue;
            }
            let taken = c.consume(counted, |tag, v| {
                assert_eq!((tag, *v), (u64::from(next), next));
                next += 1;
            });
            assert_eq!(taken, counted, "a counted slot was not ready");
        }
        producer.join().unwrap();
    });
}

/// Capacity 1: every write reuses the same slot, so each one races the
/// consumer's read of the previous value and its head store.
#[test]
fn ring_capacity_one_alternates_laps() {
    loom::model(|| {
        let (mut p, mut c) = channel::<Arc<u32>>(1);
        let producer = thread::spawn(move || {
            for i in 0..2 {
                push_blocking(&mut p, 0, Arc::new(i));
            }
        });
        let mut seen = Vec::new();
        while seen.len() < 2 {
            if c.consume(1, |_, v| seen.push(*v)) == 0 {
                thread::yield_now();
            }
        }
        assert_eq!(seen, vec![0, 1]);
        producer.join().unwrap();
    });
}

/// What is left when both ends drop is dropped by the ring (loom checks the
/// `Arc`s for leaks); the consumer may take zero, one or both values.
#[test]
fn ring_drops_leftovers() {
    loom::model(|| {
        let (mut p, mut c) = channel::<Arc<u32>>(2);
        let producer = thread::spawn(move || {
            let _ = p.push(Arc::new(0));
            let _ = p.push(Arc::new(1));
        });
        let mut seen = Vec::new();
        c.consume(1, |_, v| seen.push(*v));
        producer.join().unwrap();
        assert!(seen.is_empty() || seen == vec![0]);
    });
}
