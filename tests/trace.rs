//! Trace ids and parent spans: an event published from inside a handler
//! joins the handled event's trace with the handled event as its parent
//! span; `TraceContext::enter` does the same for any thread; delayed events
//! and retries keep the trace they were published under.

mod common;

use std::time::Duration;

use common::{eventually, Log, PATIENCE};
use pinbus::{Engine, RetryPolicy, SubscribeOptions, TraceContext, TraceId};

/// What a handler saw of one event: (payload, trace id, span id, parent span).
type Seen = (u32, TraceId, u64, Option<u64>);

fn record(log: &Log<Seen>) -> impl FnMut(&pinbus::Event<u32>) + Send + 'static {
    let log = log.clone();
    move |ev| log.push((**ev, ev.trace_id(), ev.span_id(), ev.parent_span_id()))
}

fn wait_len<T: Clone>(log: &Log<T>, n: usize) -> Vec<T> {
    assert!(
        eventually(PATIENCE, || log.len() >= n),
        "waited for {n} events, saw {}",
        log.len()
    );
    log.snapshot()
}

#[test]
fn a_handler_that_publishes_passes_its_trace_down_a_three_hop_chain() {
    for workers in [1, 2] {
        let engine = Engine::builder().workers(workers).build().unwrap();
        let a = engine.topic::<u32>("trace.a").unwrap();
        let b = engine.topic::<u32>("trace.b").unwrap();
        let c = engine.topic::<u32>("trace.c").unwrap();
        let (seen_a, seen_b, seen_c) = (Log::new(), Log::new(), Log::new());
        let (to_b, to_c) = (b.clone(), c.clone());
        let mut rec_a = record(&seen_a);
        a.subscribe(move |ev| {
            rec_a(ev);
            to_b.publish(**ev * 10).unwrap();
        })
        .unwrap();
        let mut rec_b = record(&seen_b);
        b.subscribe(move |ev| {
            rec_b(ev);
            // A batch from a handler inherits too.
            to_c.publish_batch([**ev * 10, **ev * 10 + 1]).unwrap();
        })
        .unwrap();
        c.subscribe(record(&seen_c)).unwrap();

        for i in 1..=50 {
            a.publish(i).unwrap();
        }
        let la = wait_len(&seen_a, 50);
        let lb = wait_len(&seen_b, 50);
        let lc = wait_len(&seen_c, 100);
        engine.shutdown();

        let mut roots = std::collections::HashSet::new();
        for (v, trace, span, parent) in &la {
            assert_eq!(*parent, None, "a root event has no parent span");
            assert!(roots.insert(*trace), "every root starts its own trace");
            let child = lb.iter().find(|x| x.0 == v * 10).unwrap();
            assert_eq!(child.1, *trace, "{workers} workers: b joins a's trace");
            assert_eq!(child.3, Some(*span), "b's parent span is a's span");
            for grandchild in lc.iter().filter(|x| x.0 / 100 == *v) {
                assert_eq!(grandchild.1, *trace, "c joins the same trace");
                assert_eq!(grandchild.3, Some(child.2), "c's parent is b's span");
            }
        }
        assert_eq!(roots.len(), 50);
    }
}

#[test]
fn an_entered_context_is_inherited_and_left_behind_when_the_guard_drops() {
    let engine = Engine::builder().workers(1).build().unwrap();
    let t = engine.topic::<u32>("trace.entered").unwrap();
    let seen = Log::new();
    t.subscribe(record(&seen)).unwrap();
    let ctx =
        TraceContext::from_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
            .unwrap();
    {
        let _guard = ctx.enter();
        t.publish(1).unwrap();
        t.publish_tracked(2).unwrap().wait().unwrap();
    }
    t.publish(3).unwrap();
    let log = wait_len(&seen, 3);
    engine.shutdown();
    for (v, trace, _, parent) in &log[..2] {
        assert_eq!(*trace, ctx.trace_id(), "event {v}");
        assert_eq!(*parent, Some(ctx.span_id()), "event {v}");
    }
    assert_ne!(log[2].1, ctx.trace_id(), "after the guard, a new trace");
    assert_eq!(log[2].3, None);
}

#[test]
fn a_consumer_group_member_passes_its_trace_on() {
    let engine = Engine::builder().workers(2).build().unwrap();
    let jobs = engine.topic::<u32>("trace.jobs").unwrap();
    let done = engine.topic::<u32>("trace.done").unwrap();
    let (seen_jobs, seen_done) = (Log::new(), Log::new());
    let group = jobs.group("workers");
    for _ in 0..2 {
        let (mut rec, out) = (record(&seen_jobs), done.clone());
        group
            .subscribe(move |ev| {
                rec(ev);
                out.publish(**ev).unwrap();
            })
            .unwrap();
    }
    done.subscribe(record(&seen_done)).unwrap();
    for i in 0..200 {
        jobs.publish(i).unwrap();
    }
    let lj = wait_len(&seen_jobs, 200);
    let ld = wait_len(&seen_done, 200);
    engine.shutdown();
    for (v, trace, span, _) in lj {
        let d = ld.iter().find(|x| x.0 == v).unwrap();
        assert_eq!((d.1, d.3), (trace, Some(span)), "job {v}");
    }
}

#[test]
fn a_delayed_event_and_a_retry_keep_the_trace() {
    let (engine, clock) = common::manual_engine(1);
    let t = engine.topic::<u32>("trace.later").unwrap();
    let seen: Log<(u32, u32, TraceId, Option<u64>)> = Log::new();
    let log = seen.clone();
    let sub = t
        .subscribe_with(
            move |ev| {
                log.push((**ev, ev.attempt(), ev.trace_id(), ev.parent_span_id()));
                if ev.attempt() == 1 {
                    Err("first attempt fails")
                } else {
                    Ok(())
                }
            },
            SubscribeOptions::new().retry(RetryPolicy::fixed(Duration::from_millis(5))),
        )
        .unwrap();
    let ctx = TraceContext::new(TraceId::from_u128(0xfeed_beef), 77);
    {
        let _guard = ctx.enter();
        t.publish_after(Duration::from_millis(10), 5).unwrap();
    }
    // Not yet due; then due, first attempt fails; then the retry.
    clock.advance(Duration::from_millis(10));
    assert!(eventually(PATIENCE, || sub.stats().retried == 1));
    clock.advance(Duration::from_millis(5));
    let got = wait_len(&seen, 2);
    engine.shutdown();
    assert_eq!(got.len(), 2);
    for (v, attempt, trace, parent) in got {
        assert_eq!(v, 5);
        assert_eq!(trace, ctx.trace_id(), "attempt {attempt}");
        assert_eq!(parent, Some(77), "attempt {attempt}");
    }
}

#[test]
fn publishing_outside_any_handler_starts_new_traces() {
    let engine = Engine::builder().workers(1).build().unwrap();
    let t = engine.topic::<u32>("trace.roots").unwrap();
    let seen = Log::new();
    t.subscribe(record(&seen)).unwrap();
    assert_eq!(TraceContext::current(), None);
    let inside: Log<Option<TraceContext>> = Log::new();
    let (probe, log) = (engine.topic::<u32>("trace.probe").unwrap(), inside.clone());
    probe
        .subscribe(move |ev| {
            // Inside a handler the handled event is the current context.
            log.push(TraceContext::current());
            assert_eq!(TraceContext::current(), Some(ev.trace_context()));
        })
        .unwrap();
    probe.publish_and_wait(0).unwrap();
    for i in 0..20 {
        t.publish(i).unwrap();
    }
    let log = wait_len(&seen, 20);
    engine.shutdown();
    assert!(inside.snapshot()[0].is_some());
    let traces: std::collections::HashSet<_> = log.iter().map(|x| x.1).collect();
    assert_eq!(traces.len(), 20);
    assert!(log.iter().all(|x| x.3.is_none()));
}

/// Forwarded events that step one sequence number at a time travel as one
/// tag bit; gaps, several producers and explicit contexts in between must
/// not shift any event's trace or parent.
#[test]
fn forwarded_lineages_survive_gaps_producers_and_explicit_contexts() {
    const PER_PRODUCER: u32 = 2_000;
    for workers in [1, 2] {
        let engine = Engine::builder().workers(workers).build().unwrap();
        let a = engine.topic::<u32>("lineage.a").unwrap();
        let b = engine.topic::<u32>("lineage.b").unwrap();
        let c = engine.topic::<u32>("lineage.c").unwrap();
        let (seen_a, seen_b, seen_c) = (Log::new(), Log::new(), Log::new());
        let explicit = TraceContext::new(TraceId::from_u128(0xfeed), 0xbeef);
        let (to_b, to_c) = (b.clone(), c.clone());
        let mut rec_a = record(&seen_a);
        a.subscribe(move |ev| {
            rec_a(ev);
            let v = **ev;
            if v % 7 == 3 {
                return; // a gap in the forwarded sequence
            }
            if v % 5 == 0 {
                // Between two forwarded events, one under another context.
                let _guard = explicit.enter();
                to_b.publish(v | 1 << 31).unwrap();
            }
            to_b.publish(v).unwrap();
        })
        .unwrap();
        let mut rec_b = record(&seen_b);
        b.subscribe(move |ev| {
            rec_b(ev);
            to_c.publish(**ev).unwrap();
        })
        .unwrap();
        c.subscribe(record(&seen_c)).unwrap();

        let producers: Vec<_> = (0..2u32)
            .map(|p| {
                let a = a.clone();
                std::thread::spawn(move || {
                    for i in 0..PER_PRODUCER {
                        a.publish(p * PER_PRODUCER + i).unwrap();
                    }
                })
            })
            .collect();
        for p in producers {
            p.join().unwrap();
        }
        let total = 2 * PER_PRODUCER as usize;
        let forwarded = (0..2 * PER_PRODUCER).filter(|v| v % 7 != 3).count();
        let guarded = (0..2 * PER_PRODUCER)
            .filter(|v| v % 7 != 3 && v % 5 == 0)
            .count();
        let la = wait_len(&seen_a, total);
        let lb = wait_len(&seen_b, forwarded + guarded);
        let lc = wait_len(&seen_c, forwarded + guarded);
        engine.shutdown();

        let by_value = |log: &[Seen]| -> std::collections::HashMap<u32, Seen> {
            log.iter().map(|s| (s.0, *s)).collect()
        };
        let (ma, mb, mc) = (by_value(&la), by_value(&lb), by_value(&lc));
        assert_eq!((ma.len(), mb.len(), mc.len()), (total, lb.len(), lc.len()));
        for (v, (_, trace_b, span_b, parent_b)) in &mb {
            let (_, trace_c, _, parent_c) = mc[v];
            assert_eq!(
                parent_c,
                Some(*span_b),
                "{workers} workers: c's parent is b"
            );
            assert_eq!(trace_c, *trace_b, "c joins b's trace");
            if v & 1 << 31 != 0 {
                assert_eq!(*trace_b, explicit.trace_id(), "the guard's trace");
                assert_eq!(*parent_b, Some(explicit.span_id()));
            } else {
                let (_, trace_a, span_a, _) = ma[v];
                assert_eq!(*trace_b, trace_a, "b joins a's trace");
                assert_eq!(*parent_b, Some(span_a), "b's parent is a");
            }
        }
    }
}
