//! Topics: the registry (same name + type = same topic) and the metadata
//! every event carries.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::engine;
use pinbus::{Event, TopicOptions, TraceId};

#[derive(Clone, Debug, PartialEq)]
struct Order {
    id: u64,
}

#[derive(Debug, Clone)]
struct Seen {
    seq: u64,
    topic: String,
    attempt: u32,
    trace: TraceId,
    published_at: Instant,
    handled_at: Instant,
    id: u64,
}

fn record(log: &Arc<Mutex<Vec<Seen>>>, ev: &Event<Order>) {
    log.lock().unwrap().push(Seen {
        seq: ev.seq(),
        topic: ev.topic().to_owned(),
        attempt: ev.attempt(),
        trace: ev.trace_id(),
        published_at: ev.published_at(),
        handled_at: Instant::now(),
        id: ev.id,
    });
}

#[test]
fn handles_to_the_same_name_share_one_topic() {
    let engine = engine(1, pinbus::IdleStrategy::Park, 16);
    let a = engine.topic::<Order>("orders.created").unwrap();
    let b = engine.topic::<Order>("orders.created").unwrap();
    assert_eq!(a.name(), "orders.created");
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    a.subscribe(move |ev| record(&l, ev)).unwrap();
    b.publish(Order { id: 1 }).unwrap();
    a.clone().publish(Order { id: 2 }).unwrap();
    engine.shutdown();
    let ids: Vec<u64> = log.lock().unwrap().iter().map(|s| s.id).collect();
    assert_eq!(ids, vec![1, 2]);
}

#[test]
fn events_carry_their_metadata() {
    let engine = engine(1, pinbus::IdleStrategy::Park, 16);
    let orders = engine.topic::<Order>("orders.meta").unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    orders.subscribe(move |ev| record(&l, ev)).unwrap();
    let l2 = log.clone();
    orders.subscribe(move |ev| record(&l2, ev)).unwrap();
    let start = Instant::now();
    for id in 0..10 {
        orders.publish(Order { id }).unwrap();
    }
    engine.shutdown();
    let seen = log.lock().unwrap().clone();
    assert_eq!(seen.len(), 20);
    for s in &seen {
        assert_eq!(s.topic, "orders.meta");
        assert_eq!(s.attempt, 1);
        // A single producer thread gets consecutive numbers from 0.
        assert_eq!(s.seq, s.id);
        assert!(s.trace.is_valid());
        assert!(s.published_at + Duration::from_micros(1) >= start);
        assert!(s.published_at <= s.handled_at);
        // Both subscriptions see the same trace id for the same event.
        let twin = seen
            .iter()
            .find(|o| o.id == s.id && o.handled_at != s.handled_at);
        if let Some(t) = twin {
            assert_eq!(t.trace, s.trace);
        }
    }
    let mut traces: Vec<_> = seen.iter().map(|s| s.trace).collect();
    traces.sort();
    traces.dedup();
    assert_eq!(traces.len(), 10, "one trace per root event");
    assert_eq!(format!("{}", seen[0].trace).len(), 32);
}

#[test]
fn seqs_are_unique_across_producer_threads() {
    let engine = engine(1, pinbus::IdleStrategy::Park, 64);
    let topic = engine.topic::<u64>("seqs").unwrap();
    let seqs = Arc::new(Mutex::new(Vec::new()));
    let s = seqs.clone();
    topic
        .subscribe(move |ev| s.lock().unwrap().push((**ev, ev.seq())))
        .unwrap();
    std::thread::scope(|sc| {
        for p in 0..4u64 {
            let t = topic.clone();
            sc.spawn(move || {
                for i in 0..3_000 {
                    t.publish(p).unwrap();
                    let _ = i;
                }
            });
        }
    });
    engine.shutdown();
    let seqs = seqs.lock().unwrap().clone();
    let mut all: Vec<u64> = seqs.iter().map(|&(_, s)| s).collect();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), 12_000, "seqs are unique within the topic");
    for p in 0..4u64 {
        let mine: Vec<u64> = seqs
            .iter()
            .filter(|&&(q, _)| q == p)
            .map(|&(_, s)| s)
            .collect();
        assert!(
            mine.windows(2).all(|w| w[0] < w[1]),
            "increasing per producer"
        );
    }
}

#[test]
fn without_timestamps_published_at_is_the_dequeue_time() {
    let engine = engine(1, pinbus::IdleStrategy::Park, 16);
    let t = engine
        .topic_with::<Order>("orders.fast", TopicOptions::default().timestamps(false))
        .unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    t.subscribe(move |ev| record(&l, ev)).unwrap();
    let before = Instant::now();
    t.publish(Order { id: 1 }).unwrap();
    engine.shutdown();
    let s = log.lock().unwrap()[0].clone();
    assert!(s.published_at + Duration::from_micros(1) >= before);
    assert!(s.published_at <= s.handled_at);
}

/// Without publisher timestamps an event's time is its batch's dispatch
/// clock: never before the event was published (also for the events of a
/// long burst, batch after batch), never after the handler asks, the same
/// each time it asks.
#[test]
fn without_timestamps_published_at_bounds_every_events_publish_time() {
    let engine = engine(1, pinbus::IdleStrategy::BusySpin, 1024);
    let t = engine.topic::<u64>("orders.burst").unwrap();
    const N: usize = 400;
    // When the producer was about to publish event `i`.
    let about_to: Arc<Vec<Mutex<Option<Instant>>>> =
        Arc::new((0..N).map(|_| Mutex::new(None)).collect());
    let checked = Arc::new(Mutex::new(Vec::new()));
    let (a, c) = (about_to.clone(), checked.clone());
    t.subscribe(move |ev: &Event<u64>| {
        let at = ev.published_at();
        assert_eq!(ev.published_at(), at, "stable within a call");
        let now = Instant::now();
        let before = a[**ev as usize]
            .lock()
            .unwrap()
            .expect("stamped before publish");
        c.lock().unwrap().push((before <= at, at <= now));
        // Keep the worker busy, so the burst spans many batches while the
        // producer goes on publishing.
        while now.elapsed() < Duration::from_micros(20) {
            std::hint::spin_loop();
        }
    })
    .unwrap();
    for i in 0..N {
        *about_to[i].lock().unwrap() = Some(Instant::now());
        t.publish(i as u64).unwrap();
        let pause = Instant::now();
        while pause.elapsed() < Duration::from_micros(5) {
            std::hint::spin_loop();
        }
    }
    engine.shutdown();
    let checked = checked.lock().unwrap();
    assert_eq!(checked.len(), N);
    let late = checked
        .iter()
        .filter(|(after_publish, _)| !after_publish)
        .count();
    let early = checked
        .iter()
        .filter(|(_, before_call)| !before_call)
        .count();
    eprintln!("late {late} early {early}");
    assert_eq!(
        (late, early),
        (0, 0),
        "events stamped before publish / after the call"
    );
}

/// An event the engine keeps past its handler call keeps its time: a retry
/// has the first attempt's, a stream item the time it had on the worker
/// (not a fresh reading wherever it is looked at later).
#[test]
fn without_timestamps_kept_events_keep_their_time() {
    use futures::StreamExt;
    use pinbus::{RetryPolicy, SubscribeOptions};
    let engine = engine(1, pinbus::IdleStrategy::Park, 16);
    let t = engine.topic::<u64>("orders.kept").unwrap();
    let times = Arc::new(Mutex::new(Vec::new()));
    let seen = times.clone();
    t.subscribe_with(
        move |ev: &Event<u64>| {
            seen.lock().unwrap().push((ev.attempt(), ev.published_at()));
            if ev.attempt() < 3 {
                Err("again")
            } else {
                Ok(())
            }
        },
        SubscribeOptions::new().retry(RetryPolicy::fixed(Duration::from_millis(2)).max_attempts(3)),
    )
    .unwrap();
    let mut stream = t.subscribe_stream().unwrap();
    let before = Instant::now();
    // Tracked: the receipt completes after the stream yielded the event
    // and the subscription's last attempt.
    let receipt = t.publish_tracked(7).unwrap();
    let item = futures::executor::block_on(stream.next()).unwrap();
    let first = item.published_at();
    let pause = Instant::now();
    while pause.elapsed() < Duration::from_micros(200) {
        std::hint::spin_loop();
    }
    assert_eq!(item.published_at(), first, "a stream item's time is fixed");
    assert!(before <= first && first <= pause);
    receipt.wait().unwrap();
    let times = times.lock().unwrap().clone();
    assert_eq!(times.iter().map(|&(a, _)| a).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(times.iter().all(|&(_, at)| at == times[0].1), "{times:?}");
    assert!(before <= times[0].1);
    drop(stream);
    engine.shutdown();
}

#[test]
fn engine_and_handles_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<pinbus::Engine>();
    check::<pinbus::Topic<Order>>();
    check::<pinbus::Subscription>();
    check::<pinbus::Receipt>();
    check::<pinbus::Group<Order>>();
    check::<pinbus::PublishError<Order>>();
}
