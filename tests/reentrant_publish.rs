//! Guarantee 10: a handler that publishes — to any topic, including one
//! drained by its own worker, even when that lane is full — never deadlocks.
//!
//! What happens instead (documented on `Backpressure`): under `Block`, a
//! handler's event that does not fit goes to its worker's backlog and is
//! pushed as room appears, in order; under `Fail`, the handler gets
//! `PublishError::Full` back.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use common::{engine, within, Log, STRATEGIES};
use pinbus::{Backpressure, SubscribeOptions, TopicOptions};

#[test]
fn a_handler_floods_its_own_full_lane() {
    for idle in STRATEGIES {
        let engine = engine(1, idle, 2);
        let trigger = engine.topic::<u64>("trigger").unwrap();
        let flood = engine.topic::<u64>("flood").unwrap();
        let seen = Log::new();
        let s = seen.clone();
        flood.subscribe(move |ev| s.push(**ev)).unwrap();
        let f = flood.clone();
        trigger
            .subscribe(move |_| {
                // 1000 events into a capacity-2 lane drained by this very worker.
                for i in 0..1_000 {
                    f.publish(i).unwrap();
                }
            })
            .unwrap();
        let t = trigger.clone();
        within("handler flooding its own lane", move || {
            t.publish_and_wait(0).unwrap()
        });
        engine.shutdown();
        assert_eq!(seen.snapshot(), (0..1_000).collect::<Vec<_>>(), "{idle:?}");
    }
}

#[test]
fn two_workers_publishing_to_each_other_with_full_lanes() {
    let engine = engine(2, pinbus::IdleStrategy::Park, 2);
    let ping = engine
        .topic_with::<u64>("ping", TopicOptions::default().worker(0))
        .unwrap();
    let pong = engine
        .topic_with::<u64>("pong", TopicOptions::default().worker(1))
        .unwrap();
    let count = Arc::new(AtomicU64::new(0));
    // Each event bounces until its counter runs out; every handler fans out
    // several events so both lanes stay full.
    let (c1, pong1) = (count.clone(), pong.clone());
    ping.subscribe(move |ev| {
        c1.fetch_add(1, Ordering::SeqCst);
        if **ev > 0 {
            for _ in 0..3 {
                pong1.publish(**ev - 1).unwrap();
            }
        }
    })
    .unwrap();
    let (c2, ping2) = (count.clone(), ping.clone());
    pong.subscribe(move |ev| {
        c2.fetch_add(1, Ordering::SeqCst);
        if **ev > 0 {
            ping2.publish(**ev - 1).unwrap();
        }
    })
    .unwrap();
    let p = ping.clone();
    within("ping-pong with full lanes", move || {
        for _ in 0..20 {
            p.publish(8).unwrap();
        }
    });
    // Events still bounce: shutdown lets handlers publish until quiet.
    let report = within("shutdown of a busy ping-pong", move || engine.shutdown());
    // Per start event: depth 8 ping/pong chain with x3 fan-out at each ping.
    // Level k (k = 8..0) has 3^{number of pings above it} events.
    fn total(depth: u64, at_ping: bool) -> u64 {
        1 + if depth == 0 {
            0
        } else if at_ping {
            3 * total(depth - 1, false)
        } else {
            total(depth - 1, true)
        }
    }
    let expected = 20 * total(8, true);
    assert_eq!(count.load(Ordering::SeqCst), expected);
    assert_eq!(report.handled, expected);
}

#[test]
fn under_fail_a_handler_gets_full_back_instead_of_blocking() {
    let engine = engine(1, pinbus::IdleStrategy::Park, 2);
    let out = engine
        .topic_with::<u64>(
            "out",
            TopicOptions::default().backpressure(Backpressure::Fail),
        )
        .unwrap();
    out.subscribe(|_| {}).unwrap();
    let trigger = engine.topic::<u64>("go").unwrap();
    let refused = Arc::new(AtomicU64::new(0));
    let accepted = Arc::new(AtomicU64::new(0));
    let (r, a, o) = (refused.clone(), accepted.clone(), out.clone());
    trigger
        .subscribe(move |_| {
            for i in 0..100 {
                match o.publish(i) {
                    Ok(()) => a.fetch_add(1, Ordering::SeqCst),
                    Err(e) => {
                        assert!(e.is_full());
                        r.fetch_add(1, Ordering::SeqCst)
                    }
                };
            }
        })
        .unwrap();
    let t = trigger.clone();
    within("Fail from a handler", move || {
        t.publish_and_wait(0).unwrap()
    });
    let report = engine.shutdown();
    // The worker cannot drain `out` while it runs the handler: the ring
    // (capacity 2) takes 2, the rest comes back.
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
    assert_eq!(refused.load(Ordering::SeqCst), 98);
    assert_eq!(report.handled, 1 + 2);
}

#[test]
fn a_handler_publishes_batches_and_keeps_order_through_the_backlog() {
    let engine = engine(2, pinbus::IdleStrategy::Park, 4);
    let src = engine.topic::<u64>("src").unwrap();
    let dst = engine.topic::<u64>("dst").unwrap();
    let seen = Log::new();
    let s = seen.clone();
    dst.subscribe_with(move |ev| s.push(**ev), SubscribeOptions::new().worker(0))
        .unwrap();
    let d = dst.clone();
    src.subscribe_with(
        move |ev| {
            let base = **ev * 100;
            d.publish_batch(base..base + 50).unwrap();
            for i in base + 50..base + 100 {
                d.publish(i).unwrap();
            }
        },
        SubscribeOptions::new().worker(0),
    )
    .unwrap();
    for i in 0..20 {
        src.publish(i).unwrap();
    }
    within("shutdown", move || engine.shutdown());
    assert_eq!(seen.snapshot(), (0..2_000).collect::<Vec<_>>());
}
