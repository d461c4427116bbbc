//! Keyed consumer groups: events with equal keys are handled one at a
//! time, in per-producer order, exactly once, while members join and leave.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::watchdog;
use pinbus::{Backpressure, Engine, Event, IdleStrategy, SubscribeError, TopicOptions};

const PRODUCERS: usize = 4;
const KEYS: usize = 100;
const PER_PRODUCER: u64 = 25_000;

/// (producer, key, sequence number of that producer).
type Msg = (usize, usize, u64);

struct Checks {
    in_flight: Vec<AtomicBool>,
    /// Last sequence number seen per (producer, key), + 1 (0 = none yet).
    last: Vec<AtomicU64>,
    handled: AtomicU64,
    overlaps: AtomicU64,
    out_of_order: AtomicU64,
}

impl Checks {
    fn new() -> Arc<Checks> {
        Arc::new(Checks {
            in_flight: (0..KEYS).map(|_| AtomicBool::new(false)).collect(),
            last: (0..PRODUCERS * KEYS).map(|_| AtomicU64::new(0)).collect(),
            handled: AtomicU64::new(0),
            overlaps: AtomicU64::new(0),
            out_of_order: AtomicU64::new(0),
        })
    }

    fn handler(self: &Arc<Self>) -> impl FnMut(&Event<Msg>) + Send + 'static {
        let c = self.clone();
        move |ev| {
            let (p, k, seq) = **ev;
            if c.in_flight[k].swap(true, Ordering::AcqRel) {
                c.overlaps.fetch_add(1, Ordering::Relaxed);
            }
            // Give a second member the chance to collide.
            for _ in 0..50 {
                std::hint::spin_loop();
            }
            let last = &c.last[p * KEYS + k];
            if last.load(Ordering::Relaxed) > seq {
                c.out_of_order.fetch_add(1, Ordering::Relaxed);
            }
            last.store(seq + 1, Ordering::Relaxed);
            c.handled.fetch_add(1, Ordering::Relaxed);
            c.in_flight[k].store(false, Ordering::Release);
        }
    }
}

#[test]
fn equal_keys_one_at_a_time_in_order_exactly_once_under_membership_churn() {
    let _dog = watchdog("keyed churn", Duration::from_secs(120));
    let engine = Engine::builder()
        .workers(2)
        .idle(IdleStrategy::Park)
        .lane_capacity(4096)
        .build()
        .unwrap();
    let topic = engine
        .topic_with::<Msg>(
            "keyed.orders",
            TopicOptions::default().backpressure(Backpressure::Block),
        )
        .unwrap();
    let group = topic.group("billing").keyed(|m: &Msg| m.1);
    let checks = Checks::new();
    // One member stays throughout (exactly once needs one); two more come
    // and go while the producers run.
    let _steady = group.subscribe(checks.handler()).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let churn = {
        let (group, checks, done) = (
            topic.group("billing").keyed(|m: &Msg| m.1),
            checks.clone(),
            done.clone(),
        );
        std::thread::spawn(move || {
            let mut rounds = 0;
            while !done.load(Ordering::Acquire) {
                let a = group.subscribe(checks.handler()).unwrap();
                let b = group.subscribe(checks.handler()).unwrap();
                std::thread::sleep(Duration::from_millis(2));
                a.unsubscribe();
                std::thread::sleep(Duration::from_millis(1));
                b.unsubscribe();
                rounds += 1;
            }
            rounds
        })
    };
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let t = topic.clone();
            std::thread::spawn(move || {
                for seq in 0..PER_PRODUCER {
                    let key = ((seq as usize).wrapping_mul(7) + p) % KEYS;
                    t.publish((p, key, seq)).unwrap();
                }
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    let total = PRODUCERS as u64 * PER_PRODUCER;
    while checks.handled.load(Ordering::Relaxed) < total {
        std::thread::sleep(Duration::from_millis(5));
    }
    done.store(true, Ordering::Release);
    let rounds = churn.join().unwrap();
    let report = engine.shutdown();
    assert!(rounds > 0, "members joined and left during the run");
    assert_eq!(
        checks.overlaps.load(Ordering::Relaxed),
        0,
        "a key in two handlers at once"
    );
    assert_eq!(
        checks.out_of_order.load(Ordering::Relaxed),
        0,
        "order per key and producer"
    );
    assert_eq!(
        checks.handled.load(Ordering::Relaxed),
        total,
        "exactly once"
    );
    assert_eq!((report.published, report.handled), (total, total));
}

#[test]
fn a_keyed_group_spreads_keys_over_its_members() {
    let engine = Engine::builder()
        .workers(2)
        .idle(IdleStrategy::Park)
        .build()
        .unwrap();
    let topic = engine.topic::<u32>("keyed.spread").unwrap();
    let group = topic.group("g").keyed(|v: &u32| *v % 32);
    let counts: Vec<Arc<AtomicU64>> = (0..2).map(|_| Arc::new(AtomicU64::new(0))).collect();
    let subs: Vec<_> = counts
        .iter()
        .map(|c| {
            let c = c.clone();
            group
                .subscribe(move |_| {
                    c.fetch_add(1, Ordering::Relaxed);
                    // Slow enough that the other member takes partitions too.
                    std::thread::sleep(Duration::from_micros(20));
                })
                .unwrap()
        })
        .collect();
    for i in 0..4_000 {
        topic.publish(i).unwrap();
    }
    engine.shutdown();
    let (a, b) = (
        counts[0].load(Ordering::Relaxed),
        counts[1].load(Ordering::Relaxed),
    );
    assert_eq!(a + b, 4_000);
    assert!(a > 0 && b > 0, "both members handled some keys: {a} / {b}");
    drop(subs);
}

#[test]
fn keyed_and_plain_members_do_not_mix_and_retries_are_refused() {
    let engine = Engine::builder().workers(1).build().unwrap();
    let topic = engine.topic::<u32>("keyed.mix").unwrap();
    let _plain = topic.group("plain").subscribe(|_| ()).unwrap();
    let err = topic
        .group("plain")
        .keyed(|v: &u32| *v)
        .subscribe(|_| ())
        .unwrap_err();
    assert!(matches!(err, SubscribeError::KeyedGroup { .. }), "{err}");
    assert!(err.to_string().contains("plain members"), "{err}");
    let _keyed = topic
        .group("keyed")
        .keyed(|v: &u32| *v)
        .subscribe(|_| ())
        .unwrap();
    let err = topic.group("keyed").subscribe(|_| ()).unwrap_err();
    assert!(err.to_string().contains("is keyed"), "{err}");
    let err = topic
        .group("keyed2")
        .keyed(|v: &u32| *v)
        .subscribe_with(
            |_| (),
            pinbus::SubscribeOptions::new()
                .retry(pinbus::RetryPolicy::fixed(Duration::from_millis(1))),
        )
        .unwrap_err();
    assert!(err.to_string().contains("retry"), "{err}");
    engine.shutdown();
}

#[test]
fn end_of_batch_and_exactly_once_when_the_last_keyed_member_leaves() {
    let engine = Engine::builder().workers(1).build().unwrap();
    let topic = engine.topic::<u32>("keyed.last").unwrap();
    let group = topic.group("g").keyed(|v: &u32| *v % 4);
    let seen = Arc::new(AtomicU64::new(0));
    let flagged = Arc::new(AtomicU64::new(0));
    let (s, f) = (seen.clone(), flagged.clone());
    let member = group
        .subscribe(move |ev| {
            s.fetch_add(1, Ordering::Relaxed);
            if ev.end_of_batch() {
                f.fetch_add(1, Ordering::Relaxed);
            }
        })
        .unwrap();
    for i in 0..1_000 {
        topic.publish(i).unwrap();
    }
    while seen.load(Ordering::Relaxed) < 1_000 {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(flagged.load(Ordering::Relaxed) > 0, "batches end");
    member.unsubscribe();
    // A new member of the same name starts a new keyed group.
    let again = topic
        .group("g")
        .keyed(|v: &u32| *v)
        .subscribe(|_| ())
        .unwrap();
    topic.publish(1).unwrap();
    drop(again);
    engine.shutdown();
}
