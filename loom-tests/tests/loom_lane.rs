//! loom models of lanes through the real engine: producer slots, per-producer
//! rings, batch draining, parking.
#![cfg(loom)]

mod common;

use common::{tiny_engine, Log};
use loom::thread;

/// Two producers, capacity 2, two events each: both rings wrap or fill while
/// the worker drains them in batches. Every event arrives once, in
/// per-producer order. (Two producer threads + worker + main = loom's budget.)
#[test]
fn lane_wraps_with_two_producers() {
    loom::model(|| {
        let engine = tiny_engine(1, 2);
        let topic = engine.topic::<u32>("lane").unwrap();
        let log = Log::default();
        let l = log.clone();
        topic.subscribe(move |ev| l.push(**ev)).unwrap();
        let producers: Vec<_> = (0..2u32)
            .map(|p| {
                let t = topic.clone();
                thread::spawn(move || {
                    for i in 0..2 {
                        t.publish(p * 10 + i).unwrap();
                    }
                })
            })
            .collect();
        for p in producers {
            p.join().unwrap();
        }
        let report = engine.shutdown();
        let seen = log.take();
        assert_eq!(seen.len(), 4);
        for p in 0..2u32 {
            let mine: Vec<u32> = seen.iter().copied().filter(|v| v / 10 == p).collect();
            assert_eq!(mine, vec![p * 10, p * 10 + 1], "per-producer order");
        }
        assert_eq!(report.handled, 4);
    });
}
