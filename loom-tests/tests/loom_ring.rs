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

/// A share owner that counts its settlements (loom atomics).
#[derive(Default)]
struct Owner {
    settled: loom::sync::atomic::AtomicUsize,
}

impl pinbus::internals::Settle for Owner {
    fn settle(&self) {
        self.settled
            .fetch_add(1, loom::sync::atomic::Ordering::Relaxed);
    }
}

/// Shares carried in stamps (`core/attach.rs`, A1–A2): capacity 2, the
/// producer writes three entries, each carrying a share of one `Arc`, the
/// third reusing slot 0 after the consumer frees it; the consumer takes two
/// and then drops its end while the producer may still be writing. Every
/// share is taken back exactly once — by the consumer with its value, or by
/// the ring's `Drop` — and the values arrive with their tags: no share is
/// lost (a receipt would wait forever) or settled twice (a use after free).
#[test]
fn ring_shares_settle_once_whether_consumed_or_left_behind() {
    use loom::sync::atomic::Ordering;
    use pinbus::internals::{channel_carrying, Attached};
    loom::model(|| {
        let owner = Arc::new(Owner::default());
        let (mut p, mut c) = channel_carrying::<u32, Owner>(2);
        let shares = owner.clone();
        let producer = thread::spawn(move || {
            for i in 0..3u32 {
                let mut entry = (i, Attached::new(shares.clone()));
                loop {
                    if p.free(1) > 0 {
                        match p.write_attached(u64::from(i), entry.1, entry.0) {
                            Ok(()) => break,
                            Err(back) => entry = back,
                        }
                    }
                    thread::yield_now();
                }
            }
        });
        let mut next = 0u32;
        while next < 2 {
            let n = c.consume_attached(2 - next as usize, |tag, share, v, _| {
                assert_eq!((tag, v), (u64::from(next), next));
                assert!(share.is_some(), "entry {next} lost its share");
                next += 1;
                true
            });
            if n == 0 {
                thread::yield_now();
            }
        }
        drop(c);
        producer.join().unwrap();
        // Both ends are gone: the third share was settled by the ring's drop.
        assert_eq!(owner.settled.load(Ordering::Relaxed), 3);
        assert_eq!(Arc::strong_count(&owner), 1);
    });
}
