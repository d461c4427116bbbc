//! loom models of the lane ring (`src/ring.rs`).
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use pinbus::internals::channel;

/// Pushes `v`, yielding while the ring is full.
fn push_blocking(p: &mut pinbus::internals::Producer<Arc<u32>>, mut v: Arc<u32>) {
    loop {
        match p.push(v) {
            Ok(()) => return,
            Err(back) => {
                v = back;
                thread::yield_now();
            }
        }
    }
}

/// Capacity 2, three pushes: the third reuses slot 0 after the consumer's
/// batch release (wrap-around), racing the consumer's reads and head store.
#[test]
fn ring_wraps_around_with_batch_release() {
    loom::model(|| {
        let (mut p, mut c) = channel::<Arc<u32>>(2);
        let producer = thread::spawn(move || {
            for i in 0..3 {
                push_blocking(&mut p, Arc::new(i));
            }
        });
        let mut next = 0;
        while next < 3 {
            let n = c.ready(2);
            if n == 0 {
                thread::yield_now();
                continue;
            }
            for i in 0..n {
                assert_eq!(c.with_mut(i, |v| **v), Some(next));
                next += 1;
            }
            c.release(n);
        }
        producer.join().unwrap();
    });
}

/// Batched writes published by one commit, consumed by `pop_into`; what is
/// left when both ends drop is dropped by the ring (loom checks the `Arc`s
/// for leaks).
#[test]
fn ring_commit_and_pop_into_and_drop_leftovers() {
    loom::model(|| {
        let (mut p, mut c) = channel::<Arc<u32>>(2);
        let producer = thread::spawn(move || {
            let mut written: u32 = 0;
            while written < 2 {
                if p.free(2) >= (2 - written) as usize {
                    for i in written..2 {
                        p.write(Arc::new(i)).unwrap();
                    }
                    p.commit();
                    written = 2;
                } else {
                    thread::yield_now();
                }
            }
            // One more, which the consumer may or may not take.
            let _ = p.push(Arc::new(2));
        });
        let mut out = Vec::new();
        while out.len() < 2 {
            if c.pop_into(1, &mut out) == 0 {
                thread::yield_now();
            }
        }
        assert_eq!(*out[0], 0);
        assert_eq!(*out[1], 1);
        producer.join().unwrap();
        // `c` drops here with possibly one value left in the ring.
    });
}
