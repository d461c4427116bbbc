//! Guarantee 13: memory is bounded by what is live: a topic or group whose
//! last handle and subscription are gone is freed, and a worker's pass costs
//! what its live lanes cost.
//!
//! RSS is per process, so every test here holds `SERIAL`; the bounds are
//! generous (a leak of a lane per topic or group is ~130 KiB each, hundreds
//! of MiB over these loops) and the figures are printed.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use common::{eventually, mib, rss_bytes, watchdog, Log, PATIENCE};
use pinbus::{Engine, IdleStrategy};

const LIMIT: Duration = Duration::from_secs(120);
const ROUNDS: u64 = 2_000;
const WARM_UP: u64 = 200;
const MAX_GROWTH: u64 = 40 << 20;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Default lane capacity (8192): a leaked lane is plainly visible.
fn default_engine() -> Engine {
    Engine::builder()
        .workers(2)
        .idle(IdleStrategy::Park)
        .build()
        .unwrap()
}

#[test]
fn groups_whose_last_member_left_are_freed() {
    let _serial = serial();
    let _w = watchdog("2000 groups joined and left", LIMIT);
    let engine = default_engine();
    let topic = engine.topic::<u64>("jobs").unwrap();
    let handled = Arc::new(AtomicU64::new(0));
    let mut warm = 0;
    for i in 0..ROUNDS {
        if i == WARM_UP {
            warm = rss_bytes();
        }
        let h = handled.clone();
        let member = topic
            .group(&format!("group-{i}"))
            .subscribe(move |ev| {
                assert_eq!(**ev, i, "only this group's event reaches its member");
                h.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
        topic.publish_and_wait(i).unwrap();
        member.unsubscribe();
    }
    let end = rss_bytes();
    let growth = end.saturating_sub(warm);
    println!(
        "groups: RSS after warm-up {:.1} MiB, at the end {:.1} MiB: +{:.1} MiB over {} groups ({:.1} KiB each)",
        mib(warm),
        mib(end),
        mib(growth),
        ROUNDS - WARM_UP,
        growth as f64 / 1024.0 / (ROUNDS - WARM_UP) as f64
    );
    assert_eq!(handled.load(Ordering::SeqCst), ROUNDS);
    let report = engine.shutdown();
    assert_eq!((report.published, report.handled), (ROUNDS, ROUNDS));
    assert!(
        growth < MAX_GROWTH,
        "RSS grew {:.1} MiB over {} groups that all left",
        mib(growth),
        ROUNDS - WARM_UP
    );
}

#[test]
fn topics_whose_last_handle_and_subscription_are_gone_are_freed() {
    let _serial = serial();
    let _w = watchdog("2000 topics created and dropped", LIMIT);
    let engine = default_engine();
    let live = engine.topic::<u64>("live").unwrap();
    let live_seen = Log::new();
    let l = live_seen.clone();
    live.subscribe(move |ev| l.push(**ev)).unwrap();
    let handled = Arc::new(AtomicU64::new(0));
    let mut warm = 0;
    for i in 0..ROUNDS {
        if i == WARM_UP {
            warm = rss_bytes();
        }
        let topic = engine.topic::<u64>(&format!("temp.{i}")).unwrap();
        let h = handled.clone();
        let sub = topic
            .subscribe(move |_| {
                h.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
        topic.publish_and_wait(i).unwrap();
        sub.unsubscribe();
        drop(topic);
    }
    let end = rss_bytes();
    let growth = end.saturating_sub(warm);
    println!(
        "topics: RSS after warm-up {:.1} MiB, at the end {:.1} MiB: +{:.1} MiB over {} topics ({:.1} KiB each)",
        mib(warm),
        mib(end),
        mib(growth),
        ROUNDS - WARM_UP,
        growth as f64 / 1024.0 / (ROUNDS - WARM_UP) as f64
    );
    assert_eq!(handled.load(Ordering::SeqCst), ROUNDS);
    // Only live topics are listed.
    let listed = |e: &Engine| -> Vec<String> {
        e.metrics()
            .topics
            .into_iter()
            .map(|t| t.name)
            .filter(|n| n.starts_with("temp."))
            .collect()
    };
    assert!(
        eventually(PATIENCE, || listed(&engine).is_empty()),
        "{} freed topics still listed, e.g. {:?}",
        listed(&engine).len(),
        listed(&engine).first()
    );
    assert!(engine.metrics().topics.iter().any(|t| t.name == "live"));
    // The live topic still delivers.
    live.publish_and_wait(1).unwrap();
    live.publish_and_wait(2).unwrap();
    assert_eq!(live_seen.snapshot(), [1, 2]);
    let report = engine.shutdown();
    // The freed topics' events still count.
    assert_eq!(report.published, ROUNDS + 2, "{report:?}");
    assert_eq!(report.handled, ROUNDS + 2, "{report:?}");
    assert!(
        growth < MAX_GROWTH,
        "RSS grew {:.1} MiB over {} topics that were all dropped",
        mib(growth),
        ROUNDS - WARM_UP
    );
}

#[test]
fn a_topic_opened_again_after_it_was_freed_works_and_delivers() {
    let _serial = serial();
    let _w = watchdog("topic re-created after being freed", LIMIT);
    let engine = default_engine();
    let first = Log::new();
    {
        let x = engine.topic::<u64>("x").unwrap();
        let f = first.clone();
        let sub = x.subscribe(move |ev| f.push(**ev)).unwrap();
        x.publish_and_wait(1).unwrap();
        sub.unsubscribe();
    }
    let listed = |e: &Engine| e.metrics().topics.iter().any(|t| t.name == "x");
    assert!(
        eventually(PATIENCE, || !listed(&engine)),
        "x was not freed after its last handle and subscription went"
    );
    let x = engine.topic::<u64>("x").unwrap();
    let second = Log::new();
    let s = second.clone();
    x.subscribe(move |ev| s.push(**ev)).unwrap();
    x.publish_and_wait(2).unwrap();
    x.publish(3).unwrap();
    assert!(listed(&engine));
    let report = engine.shutdown();
    assert_eq!(first.snapshot(), [1]);
    assert_eq!(second.snapshot(), [2, 3]);
    assert_eq!((report.published, report.handled), (3, 3), "{report:?}");
}

#[test]
fn a_topic_with_a_live_subscription_is_kept_when_its_handles_are_dropped() {
    let _serial = serial();
    let _w = watchdog("topic kept by its subscription", LIMIT);
    let engine = default_engine();
    let seen = Log::new();
    {
        let y = engine.topic::<u64>("y").unwrap();
        let s = seen.clone();
        // The handle is dropped, the subscription stays (until shutdown).
        drop(y.subscribe(move |ev| s.push(**ev)).unwrap());
        y.publish_and_wait(1).unwrap();
    }
    assert!(engine.metrics().topics.iter().any(|t| t.name == "y"));
    let y = engine.topic::<u64>("y").unwrap();
    y.publish_and_wait(2).unwrap();
    drop(y);
    // Likewise a group member whose handles are gone.
    let group_seen = Log::new();
    {
        let z = engine.topic::<u64>("z").unwrap();
        let g = group_seen.clone();
        drop(z.group("g").subscribe(move |ev| g.push(**ev)).unwrap());
    }
    engine
        .topic::<u64>("z")
        .unwrap()
        .publish_and_wait(5)
        .unwrap();
    let report = engine.shutdown();
    assert_eq!(seen.snapshot(), [1, 2]);
    assert_eq!(group_seen.snapshot(), [5]);
    assert_eq!((report.published, report.handled), (3, 3), "{report:?}");
}
