//! Guarantee 14: trace ids are globally unique (random per engine and
//! process, as W3C asks), so two engines or two processes never share one.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{engine, eventually, watchdog, Log, PATIENCE};
use pinbus::{Engine, IdleStrategy, TraceId};

const LIMIT: Duration = Duration::from_secs(60);
const EVENTS: u64 = 100;

/// Publishes `EVENTS` root events (from this thread, outside any handler)
/// to `name` and returns their (trace id, span id) in order.
fn root_ids(engine: &Engine, name: &str) -> Vec<(TraceId, u64)> {
    let topic = engine.topic::<u64>(name).unwrap();
    let ids = Log::new();
    let l = ids.clone();
    let sub = topic
        .subscribe(move |ev| l.push((ev.trace_id(), ev.span_id())))
        .unwrap();
    for i in 0..EVENTS {
        topic.publish_and_wait(i).unwrap();
    }
    sub.unsubscribe();
    ids.snapshot()
}

#[test]
fn two_engines_with_a_topic_of_the_same_name_never_share_a_trace_id() {
    let _w = watchdog("trace ids of two engines", LIMIT);
    let a = engine(1, IdleStrategy::Park, 64);
    let b = engine(1, IdleStrategy::Park, 64);
    let ids_a = root_ids(&a, "orders");
    let ids_b = root_ids(&b, "orders");
    assert!(ids_a[0].0.is_valid() && ids_b[0].0.is_valid());
    assert_ne!(ids_a[0].0, ids_b[0].0, "first root events share a trace id");
    assert_ne!(ids_a[0].1, ids_b[0].1, "first root events share a span id");
    let traces: HashSet<TraceId> = ids_a.iter().chain(&ids_b).map(|p| p.0).collect();
    assert_eq!(traces.len() as u64, 2 * EVENTS, "a trace id was shared");
    let spans: HashSet<u64> = ids_a.iter().chain(&ids_b).map(|p| p.1).collect();
    assert_eq!(spans.len() as u64, 2 * EVENTS, "a span id was shared");
    a.shutdown();
    b.shutdown();
}

#[test]
fn engines_built_one_after_another_never_share_a_trace_id() {
    let _w = watchdog("trace ids of engines in sequence", LIMIT);
    let mut firsts = HashSet::new();
    for _ in 0..20 {
        let e = engine(1, IdleStrategy::Park, 64);
        let topic = e.topic::<u64>("orders").unwrap();
        let ids = Log::new();
        let l = ids.clone();
        topic.subscribe(move |ev| l.push(ev.trace_id())).unwrap();
        topic.publish_and_wait(0).unwrap();
        drop(e);
        assert!(
            firsts.insert(ids.snapshot()[0]),
            "a first trace id repeated"
        );
    }
}

#[test]
fn a_topic_dropped_and_created_again_starts_new_traces() {
    let _w = watchdog("trace ids of a re-created topic", LIMIT);
    let engine = engine(1, IdleStrategy::Park, 64);
    // `root_ids` drops every handle and unsubscribes: the topic may be freed.
    let old = root_ids(&engine, "recycled");
    let listed = |e: &Engine| e.metrics().topics.iter().any(|t| t.name == "recycled");
    assert!(
        eventually(PATIENCE, || !listed(&engine)),
        "the topic was not freed (guarantee 13), so it cannot be re-created"
    );
    let new = root_ids(&engine, "recycled");
    assert_ne!(
        old[0].0, new[0].0,
        "the re-created topic's first event has the old first trace id"
    );
    let traces: HashSet<TraceId> = old.iter().chain(&new).map(|p| p.0).collect();
    assert_eq!(traces.len() as u64, 2 * EVENTS, "a trace id was reused");
    let spans: HashSet<u64> = old.iter().chain(&new).map(|p| p.1).collect();
    assert_eq!(spans.len() as u64, 2 * EVENTS, "a span id was reused");
    engine.shutdown();
}
