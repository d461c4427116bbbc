//! Streams (`subscribe_stream`, issue 16): lossless, ordered, owned events;
//! a full buffer holds the lane like a slow handler; receipts complete when
//! the stream yields; dropping the stream unsubscribes (guarantee 4) and
//! never hangs; shutdown never hangs on a stream nobody polls.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{engine, STRATEGIES};
use futures::StreamExt;
use pinbus::{Backpressure, IdleStrategy, PublishError, TopicOptions, STREAM_BUFFER};

#[test]
fn a_stream_yields_every_event_in_order_under_each_idle_strategy() {
    for idle in STRATEGIES {
        let engine = engine(2, idle, 64);
        let topic = engine.topic::<u64>("s.order").unwrap();
        let mut s = topic.subscribe_stream().unwrap();
        let t = topic.clone();
        let producer = std::thread::spawn(move || {
            for i in 0..5_000 {
                t.publish(i).unwrap();
            }
        });
        futures::executor::block_on(async {
            for i in 0..5_000 {
                let ev = s.next().await.expect("stream open");
                assert_eq!(*ev, i, "{idle:?}");
                assert_eq!(ev.topic(), "s.order");
            }
        });
        producer.join().unwrap();
        engine.shutdown();
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_stream_works_on_a_current_thread_runtime() {
    let engine = engine(1, IdleStrategy::Park, 64);
    let topic = engine.topic::<u32>("s.tokio").unwrap();
    let mut s = topic.subscribe_stream().unwrap();
    // Producer and consumer on one thread: far more events than the lane
    // and the stream's buffer hold, so each side must wake the other.
    let produce = async {
        for i in 0..10_000 {
            topic.publish_async(i).await.unwrap();
        }
    };
    let consume = async {
        for i in 0..10_000 {
            assert_eq!(*s.next().await.unwrap(), i);
        }
    };
    tokio::join!(produce, consume);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_of_streams_shares_the_events_exactly_once() {
    let engine = engine(2, IdleStrategy::Park, 64);
    let topic = engine.topic::<u64>("s.group").unwrap();
    let group = topic.group("g");
    let members = [
        group.subscribe_stream().unwrap(),
        group.subscribe_stream().unwrap(),
    ];
    const N: u64 = 10_000;
    let total = Arc::new(AtomicU64::new(0));
    let sum = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for mut m in members {
        let (total, sum) = (total.clone(), sum.clone());
        tasks.push(tokio::spawn(async move {
            while total.load(Ordering::SeqCst) < N {
                match tokio::time::timeout(Duration::from_millis(50), m.next()).await {
                    Ok(Some(ev)) => {
                        sum.fetch_add(*ev, Ordering::SeqCst);
                        total.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(None) => break,
                    Err(_) => {} // cancelled `next()`: must lose nothing
                }
            }
        }));
    }
    for i in 0..N {
        topic.publish_async(i).await.unwrap();
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(total.load(Ordering::SeqCst), N);
    assert_eq!(sum.load(Ordering::SeqCst), N * (N - 1) / 2);
}

#[test]
fn a_receipt_completes_when_the_stream_yields_the_event() {
    let engine = engine(1, IdleStrategy::Park, 64);
    let topic = engine.topic::<u32>("s.receipt").unwrap();
    let mut s = topic.subscribe_stream().unwrap();
    let r = topic.publish_tracked(1).unwrap();
    // Buffered by the worker, not yet yielded: not complete.
    std::thread::sleep(Duration::from_millis(50));
    assert!(!r.is_complete());
    let ev = futures::executor::block_on(s.next()).unwrap();
    assert!(r.is_complete());
    assert_eq!(*ev, 1);
}

#[test]
fn an_unpolled_stream_holds_its_lane_and_fail_producers_get_the_event_back() {
    let engine = engine(1, IdleStrategy::Park, 16);
    let topic = engine
        .topic_with::<u64>(
            "s.full",
            TopicOptions::default().backpressure(Backpressure::Fail),
        )
        .unwrap();
    let mut s = topic.subscribe_stream().unwrap();
    let mut accepted = 0u64;
    let mut refused = 0;
    // Far more than the stream buffer plus the lane can hold.
    for i in 0..10_000u64 {
        match topic.publish(accepted) {
            Ok(()) => accepted += 1,
            Err(PublishError::Full(back)) => {
                assert_eq!(back, accepted, "the event comes back");
                refused += 1;
                let _ = i;
                std::thread::sleep(Duration::from_micros(20));
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(refused > 0);
    assert!(accepted <= (STREAM_BUFFER.min(16) + 16 + 16 + 2) as u64);
    // Every accepted event comes out, in order, nothing else.
    futures::executor::block_on(async {
        for i in 0..accepted {
            assert_eq!(*s.next().await.unwrap(), i);
        }
    });
    drop(s);
    engine.shutdown();
}

#[test]
fn dropping_a_stream_with_a_full_buffer_unsubscribes_without_hanging() {
    let engine = engine(1, IdleStrategy::Park, 16);
    let topic = engine.topic::<u64>("s.drop").unwrap();
    let s = topic.subscribe_stream().unwrap();
    let other = Arc::new(AtomicU64::new(0));
    let o = other.clone();
    // Another subscription on the same worker: waits behind the stream.
    topic
        .subscribe(move |_| {
            o.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    let t = topic.clone();
    let producer = std::thread::spawn(move || {
        for i in 0..2_000 {
            t.publish(i).unwrap(); // Block: waits while the stream is full
        }
    });
    std::thread::sleep(Duration::from_millis(100));
    let receipts_before = other.load(Ordering::SeqCst);
    assert!(
        receipts_before < 2_000,
        "the unpolled stream holds the lane"
    );
    drop(s); // must release the waiting worker
    producer.join().unwrap();
    let r = topic.publish_tracked(2_000).unwrap();
    r.wait().unwrap();
    assert_eq!(other.load(Ordering::SeqCst), 2_001);
    engine.shutdown();
}

#[test]
fn shutdown_never_hangs_on_an_unpolled_stream_and_the_stream_gets_everything() {
    let engine = engine(1, IdleStrategy::Park, 16);
    let topic = engine.topic::<u64>("s.shutdown").unwrap();
    let mut s = topic.subscribe_stream().unwrap();
    let t = topic.clone();
    let producer = std::thread::spawn(move || {
        let mut n = 0;
        while t.publish(n).is_ok() {
            n += 1;
        }
        n
    });
    std::thread::sleep(Duration::from_millis(100));
    let report = engine.shutdown_timeout(Duration::from_secs(20));
    assert!(report.complete, "{report:?}");
    let accepted = producer.join().unwrap();
    futures::executor::block_on(async {
        for i in 0..accepted {
            assert_eq!(*s.next().await.expect("drained to the stream"), i);
        }
        assert!(s.next().await.is_none(), "ends after shutdown");
    });
}

#[test]
fn a_stream_yields_the_events_after_unsubscribe_then_ends() {
    let engine = engine(1, IdleStrategy::Park, 64);
    let topic = engine.topic::<u32>("s.end").unwrap();
    let mut s = topic.subscribe_stream().unwrap();
    topic.publish(1).unwrap();
    engine.shutdown();
    futures::executor::block_on(async {
        assert_eq!(*s.next().await.unwrap(), 1);
        assert!(s.next().await.is_none());
    });
}

#[test]
fn a_pattern_stream_yields_from_every_matching_topic_and_its_group_splits_them() {
    let engine = engine(2, IdleStrategy::Park, 1024);
    let pattern = engine.pattern::<u64>("stream.p.*").unwrap();
    let mut all = pattern.subscribe_stream().unwrap();
    let group = pattern.group("split");
    let (mut m1, mut m2) = (
        group.subscribe_stream().unwrap(),
        group.subscribe_stream().unwrap(),
    );
    let early = engine.topic::<u64>("stream.p.early").unwrap();
    // A topic of another type is not delivered; one that does not match
    // neither.
    let other = engine.topic::<u32>("stream.p.other").unwrap();
    let outside = engine.topic::<u64>("stream.q.x").unwrap();
    for i in 0..100 {
        early.publish(i).unwrap();
        other.publish(i as u32).unwrap();
        outside.publish(i).unwrap();
    }
    // Created after the streams subscribed: matched too.
    let late = engine.topic::<u64>("stream.p.late").unwrap();
    for i in 100..200 {
        late.publish(i).unwrap();
    }
    futures::executor::block_on(async {
        let mut seen = Vec::new();
        for _ in 0..200 {
            let ev = all.next().await.unwrap();
            seen.push((ev.topic().to_owned(), *ev));
        }
        let early_seen: Vec<u64> = seen
            .iter()
            .filter(|(t, _)| t == "stream.p.early")
            .map(|&(_, v)| v)
            .collect();
        let late_seen: Vec<u64> = seen
            .iter()
            .filter(|(t, _)| t == "stream.p.late")
            .map(|&(_, v)| v)
            .collect();
        assert_eq!(
            early_seen,
            (0..100).collect::<Vec<_>>(),
            "in order per topic"
        );
        assert_eq!(late_seen, (100..200).collect::<Vec<_>>());
        // The group's two streams share the 200 events, each exactly once.
        let mut split: Vec<u64> = futures::stream::select(&mut m1, &mut m2)
            .take(200)
            .map(|ev| *ev)
            .collect()
            .await;
        split.sort_unstable();
        assert_eq!(split, (0..200).collect::<Vec<_>>());
    });
    // The u32 topic matched three pattern subscriptions (the stream and
    // the two members), none of them delivered.
    assert_eq!(engine.metrics().pattern_type_mismatches, 3);
    drop((all, m1, m2));
    let report = engine.shutdown();
    assert!(report.complete);
}

/// Guarantee 1 for groups: a stream member dropped while it holds events
/// it took from the group and never yielded hands them back, so the other
/// member gets every event exactly once.
#[test]
fn a_dropped_group_stream_hands_its_unyielded_events_back_to_the_group() {
    // Events lost for the group would leave `busy` waiting forever.
    let _dog = common::watchdog("hand back", Duration::from_secs(120));
    let engine = engine(2, IdleStrategy::Park, 1024);
    let topic = engine.topic::<u64>("stream.hand_back").unwrap();
    let group = topic.group("pair");
    // The first member, never polled, is alone while the first events
    // arrive: it takes them all, fills its buffer and waits for room with
    // one more in hand.
    let idle = group.subscribe_stream().unwrap();
    const FIRST: u64 = 300;
    for i in 0..FIRST {
        topic.publish(i).unwrap();
    }
    let mut busy = group.subscribe_stream().unwrap();
    const N: u64 = 3_000;
    let t = topic.clone();
    let producer = std::thread::spawn(move || {
        for i in FIRST..N {
            t.publish(i).unwrap();
        }
    });
    let mut got = Vec::new();
    futures::executor::block_on(async {
        while got.len() < 200 {
            got.push(*busy.next().await.unwrap());
        }
        drop(idle);
        while (got.len() as u64) < N {
            got.push(*busy.next().await.unwrap());
        }
    });
    producer.join().unwrap();
    got.sort_unstable();
    assert_eq!(got, (0..N).collect::<Vec<_>>(), "every event exactly once");
    drop(busy);
    assert!(engine.shutdown().complete);
}

/// The same for a pattern group: the stream member took events from the
/// group of each matching topic; dropped, it hands each back to its own
/// topic's group, and the other member gets every event exactly once.
#[test]
fn a_dropped_pattern_group_stream_hands_events_back_to_each_topics_group() {
    let _dog = common::watchdog("pattern hand back", Duration::from_secs(120));
    let engine = engine(2, IdleStrategy::Park, 1024);
    let group = engine.pattern::<u64>("jobs.*").unwrap().group("pair");
    let (a, b) = (
        engine.topic::<u64>("jobs.a").unwrap(),
        engine.topic::<u64>("jobs.b").unwrap(),
    );
    let idle = group.subscribe_stream().unwrap();
    const FIRST: u64 = 300;
    let publish = move |a: &pinbus::Topic<u64>, b: &pinbus::Topic<u64>, i: u64| {
        if i.is_multiple_of(2) { a } else { b }.publish(i).unwrap()
    };
    for i in 0..FIRST {
        publish(&a, &b, i);
    }
    let mut busy = group.subscribe_stream().unwrap();
    const N: u64 = 3_000;
    let (ta, tb) = (a.clone(), b.clone());
    let producer = std::thread::spawn(move || {
        for i in FIRST..N {
            publish(&ta, &tb, i);
        }
    });
    let mut got = Vec::new();
    futures::executor::block_on(async {
        while got.len() < 200 {
            let ev = busy.next().await.unwrap();
            assert_eq!(
                ev.topic(),
                if ev.is_multiple_of(2) {
                    "jobs.a"
                } else {
                    "jobs.b"
                }
            );
            got.push(*ev);
        }
        drop(idle);
        while (got.len() as u64) < N {
            got.push(*busy.next().await.unwrap());
        }
    });
    producer.join().unwrap();
    got.sort_unstable();
    assert_eq!(got, (0..N).collect::<Vec<_>>(), "every event exactly once");
    drop(busy);
    assert!(engine.shutdown().complete);
}
