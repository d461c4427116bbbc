//! `Event::end_of_batch`: true on the last event of each batch a worker
//! takes from a lane (at most `drain_batch` events from one producer's ring,
//! or from a consumer group's rings together), so a handler can flush once
//! per batch.

mod common;

use std::sync::mpsc;

use common::Log;
use pinbus::{Engine, Event, IdleStrategy};

const BATCH: usize = 64;

fn engine(workers: usize) -> Engine {
    Engine::builder()
        .workers(workers)
        .idle(IdleStrategy::Park)
        .drain_batch(BATCH)
        .lane_capacity(4096)
        .build()
        .unwrap()
}

/// (payload, end_of_batch) of every event a handler saw, in order.
fn recorder(log: &Log<(u32, bool)>) -> impl FnMut(&Event<u32>) + Send + 'static {
    let log = log.clone();
    move |ev| log.push((**ev, ev.end_of_batch()))
}

/// The positions of the flagged events of `seen`.
fn flags(seen: &[(u32, bool)]) -> Vec<usize> {
    seen.iter()
        .enumerate()
        .filter(|(_, (_, end))| *end)
        .map(|(i, _)| i)
        .collect()
}

#[test]
fn a_queued_burst_is_flagged_every_drain_batch_and_at_its_end() {
    // Alone on its worker (the solo loop) and beside a second subscription
    // (the general loop): the same batches.
    for subscriptions in [1, 2] {
        let engine = engine(1);
        let topic = engine.topic::<u32>("eob.burst").unwrap();
        let logs: Vec<Log<(u32, bool)>> = (0..subscriptions).map(|_| Log::new()).collect();
        for log in &logs {
            topic.subscribe(recorder(log)).unwrap();
        }
        // Another topic's handler holds the one worker while the burst
        // queues.
        let (entered_tx, entered) = mpsc::channel::<()>();
        let (hold_tx, hold_rx) = mpsc::channel::<()>();
        let gate_topic = engine.topic::<u32>("eob.gate").unwrap();
        gate_topic
            .subscribe(move |_| {
                let _ = entered_tx.send(());
                let _ = hold_rx.recv();
            })
            .unwrap();
        gate_topic.publish(0).unwrap();
        // The worker is inside that handler before the burst starts.
        entered.recv().unwrap();
        const N: u32 = 1_000;
        topic.publish_batch(0..N).unwrap();
        hold_tx.send(()).unwrap();
        engine.shutdown();
        for log in &logs {
            let seen = log.snapshot();
            assert_eq!(seen.len(), N as usize);
            assert!(seen.iter().map(|s| s.0).eq(0..N), "in order");
            // Everything was queued before the worker got to it: batches
            // of exactly BATCH, and the rest.
            let expected: Vec<usize> = (BATCH - 1..N as usize)
                .step_by(BATCH)
                .chain(std::iter::once(N as usize - 1))
                .collect();
            assert_eq!(flags(&seen), expected, "{subscriptions} subscription(s)");
        }
    }
}

#[test]
fn every_event_handled_while_idle_ends_its_own_batch() {
    let engine = engine(1);
    let topic = engine.topic::<u32>("eob.single").unwrap();
    let log = Log::new();
    topic.subscribe(recorder(&log)).unwrap();
    for i in 0..20 {
        // One at a time: each is a batch of one.
        topic.publish_and_wait(i).unwrap();
    }
    engine.shutdown();
    let seen = log.snapshot();
    assert_eq!(seen.len(), 20);
    assert!(seen.iter().all(|(_, end)| *end), "{seen:?}");
}

#[test]
fn a_group_member_sees_the_end_of_each_claimed_batch() {
    let engine = engine(2);
    let topic = engine.topic::<u32>("eob.group").unwrap();
    let (a, b) = (Log::new(), Log::new());
    let group = topic.group("flushers");
    group.subscribe(recorder(&a)).unwrap();
    group.subscribe(recorder(&b)).unwrap();
    // Several producers: a claim takes from several rings at once.
    let producers: Vec<_> = (0..3u32)
        .map(|p| {
            let t = topic.clone();
            std::thread::spawn(move || {
                for i in 0..2_000 {
                    t.publish(p * 10_000 + i).unwrap();
                }
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    engine.shutdown();
    let (sa, sb) = (a.snapshot(), b.snapshot());
    assert_eq!(sa.len() + sb.len(), 6_000);
    for seen in [&sa, &sb] {
        if seen.is_empty() {
            continue;
        }
        assert!(seen.last().unwrap().1, "a member's last event ends a batch");
        let f = flags(seen);
        let mut start = 0;
        for end in f {
            assert!(end + 1 - start <= BATCH, "a batch of at most drain_batch");
            start = end + 1;
        }
    }
}
