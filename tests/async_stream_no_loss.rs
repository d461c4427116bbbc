//! No loss, no duplication through streams (guarantees 1 and 2, issue 16):
//! 4 producer threads, 2 plain streams and a group of 2 streams, 10^6
//! events in all; exact counts, and per-producer order on each plain stream
//! and within each group member.

mod common;

use futures::StreamExt;
use pinbus::{Backpressure, IdleStrategy, TopicOptions};

const PRODUCERS: u64 = 4;
const PER_PRODUCER: u64 = 250_000;

/// Events: producer in the top bits, its sequence below.
fn encode(p: u64, i: u64) -> u64 {
    (p << 32) | i
}

#[test]
fn streams_lose_and_duplicate_nothing_under_four_producers() {
    let engine = common::engine(2, IdleStrategy::Backoff, 1024);
    let topic = engine
        .topic_with::<u64>(
            "stress.streams",
            TopicOptions::default().backpressure(Backpressure::Block),
        )
        .unwrap();
    let plain = [
        topic.subscribe_stream().unwrap(),
        topic.subscribe_stream().unwrap(),
    ];
    let group = topic.group("g");
    let members = [
        group.subscribe_stream().unwrap(),
        group.subscribe_stream().unwrap(),
    ];
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let total = PRODUCERS * PER_PRODUCER;
    // Each consumer task returns what it saw per producer: count, and the
    // sequence numbers checked in order as they arrive.
    let consume = |mut s: pinbus::EventStream<u64>, expect: Option<u64>| async move {
        let mut next = [0u64; PRODUCERS as usize];
        let mut seen = 0u64;
        while let Some(ev) = s.next().await {
            let (p, i) = ((*ev >> 32) as usize, *ev & 0xffff_ffff);
            assert!(i >= next[p], "producer {p}: {i} after {}", next[p]);
            if expect.is_some() {
                assert_eq!(i, next[p], "plain stream: gap or duplicate");
            }
            next[p] = i + 1;
            seen += 1;
            if expect == Some(seen) {
                break;
            }
        }
        (seen, s)
    };
    let plain_tasks: Vec<_> = plain
        .into_iter()
        .map(|s| rt.spawn(consume(s, Some(total))))
        .collect();
    let member_tasks: Vec<_> = members
        .into_iter()
        .map(|s| rt.spawn(consume(s, None)))
        .collect();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let t = topic.clone();
            std::thread::spawn(move || {
                for i in 0..PER_PRODUCER {
                    t.publish(encode(p, i)).unwrap();
                }
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    let mut keep = Vec::new();
    for t in plain_tasks {
        let (seen, s) = rt.block_on(t).unwrap();
        assert_eq!(seen, total);
        keep.push(s);
    }
    // Everything published is in the group's lane or its members' buffers:
    // shutdown drains it to them, then their streams end.
    let report = engine.shutdown();
    assert_eq!(report.published, total);
    let mut group_seen = 0;
    for t in member_tasks {
        group_seen += rt.block_on(t).unwrap().0;
    }
    assert_eq!(group_seen, total, "each event to exactly one member");
    drop(keep);
}
