//! pinbus: one engine per run, built from this (unpinned) thread so its
//! workers are pinned explicitly; topics with `Backpressure::Block`.
//!
//! Built-in engine: `workers(1)`, `Pinning::Cores([last core])`,
//! `IdleStrategy::BusySpin`, `lane_capacity(capacity)`; the spread
//! scenario (S5) takes one worker per core but the first. With `--config`
//! every engine comes from that configuration instead. S7's thread-per-hop
//! case takes `workers(3)`, unpinned, a topic per worker; S8 takes the
//! built-in engine with `IdleStrategy::BusySpin` or `IdleStrategy::Park`
//! (both ignore `--config`: the idle strategy is what S8 compares). S9
//! takes the same two engines for its round trip, and the built-in engine
//! (`--config` ignored) for its stream. S10's pattern case takes the
//! built-in engine (or `--config`); its group and service cases take the
//! built-in engine with `IdleStrategy::BusySpin` (groups: `--config`
//! ignored, both members must run on the one worker, see [`GroupTally`]) or
//! (service, parking column) `IdleStrategy::Park`.

use std::sync::{Arc, Mutex};

use pinbus::{
    Backpressure, Engine, Event, IdleStrategy, Metrics, Pinning, Subscription, Topic, TopicOptions,
};

use crate::cores;
use futures_util::StreamExt;

use crate::harness::{
    join_task, task_thread, AsyncCall, AsyncRoundTripRig, ChurnFn, Ctx, LatencyRig, Load, Res, Rig,
    RoundTripRig, SendFn, Sub, Teardown,
};
use crate::payload::Payload;
use crate::probe::{histogram_slot, GroupTally, LatencyTally, Probe, Tally};

/// Builds the engine of a run: one worker on the last core, or (`spread`)
/// one worker per core but the first; `--config` replaces both.
fn engine(ctx: &Ctx, spread: bool) -> Res<Arc<Engine>> {
    let built = match &ctx.config {
        Some(config) => Engine::from_config(config.clone()),
        None => {
            let (workers, pinning) = if spread {
                let cores = cores::consumers();
                match cores.len() {
                    0 => (1, Pinning::None),
                    n => (n, Pinning::Cores(cores)),
                }
            } else {
                (
                    1,
                    cores::consumer().map_or(Pinning::None, |c| Pinning::Cores(vec![c])),
                )
            };
            Engine::builder()
                .workers(workers)
                .pinning(pinning)
                .idle(IdleStrategy::BusySpin)
                .lane_capacity(ctx.capacity)
                .build()
        }
    };
    built
        .map(Arc::new)
        .map_err(|e| format!("pinbus engine: {e}"))
}

/// Builds an engine of `workers` workers with `idle`, one worker on the
/// last core when `workers` is 1, unpinned otherwise (S7 with a thread per
/// hop, S8); not from `--config`.
fn engine_with(ctx: &Ctx, workers: usize, idle: IdleStrategy) -> Res<Arc<Engine>> {
    let pinning = match (workers, cores::consumer()) {
        (1, Some(c)) => Pinning::Cores(vec![c]),
        _ => Pinning::None,
    };
    Engine::builder()
        .workers(workers)
        .pinning(pinning)
        .idle(idle)
        .lane_capacity(ctx.capacity)
        .build()
        .map(Arc::new)
        .map_err(|e| format!("pinbus engine: {e}"))
}

/// Opens `name` with `Backpressure::Block`.
fn topic<P: Payload>(engine: &Engine, name: &str) -> Res<Topic<P>> {
    topic_on(engine, name, None)
}

/// Opens `name` with `Backpressure::Block`, on `worker` if given.
fn topic_on<P: Payload>(engine: &Engine, name: &str, worker: Option<usize>) -> Res<Topic<P>> {
    let mut options = TopicOptions::default().backpressure(Backpressure::Block);
    if let Some(w) = worker {
        options = options.worker(w);
    }
    engine
        .topic_with::<P>(name, options)
        .map_err(|e| format!("pinbus topic: {e}"))
}

/// Subscribes a counting handler feeding a new probe.
fn subscribe<P: Payload>(topic: &Topic<P>, warm: u64, total: u64) -> Res<(Sub, Subscription)> {
    let probe = Probe::new();
    let mut tally = Tally::new(probe.clone(), warm, total);
    let sub = topic
        .subscribe(move |ev: &Event<P>| tally.add(Payload::sum(&**ev)))
        .map_err(|e| format!("pinbus subscribe: {e}"))?;
    Ok((Sub { probe, warm, total }, sub))
}

/// The metrics of the last pinbus engine shut down.
static LAST_METRICS: Mutex<Option<Metrics>> = Mutex::new(None);

/// Takes the metrics of the last pinbus run, if one ran since the last call.
pub fn take_metrics() -> Option<Metrics> {
    LAST_METRICS.lock().ok()?.take()
}

/// Shuts the engine down (draining) once the run is over, and keeps its
/// final metrics for the report.
fn shutdown(engine: Arc<Engine>, subs: Vec<Subscription>) -> Teardown {
    Box::new(move || {
        drop(subs);
        engine.shutdown();
        if let Ok(mut last) = LAST_METRICS.lock() {
            *last = Some(engine.metrics());
        }
        Ok(())
    })
}

/// A producer publishing single events or batches of `batch`.
fn publisher<P: Payload>(topic: Topic<P>, batch: Option<usize>) -> SendFn {
    match batch {
        None => Box::new(move |start, n| {
            for i in start..start + n {
                topic
                    .publish(P::make(i))
                    .map_err(|e| format!("pinbus publish: {e}"))?;
            }
            Ok(())
        }),
        Some(b) => Box::new(move |start, n| {
            let mut i = start;
            while i < start + n {
                let k = (b as u64).min(start + n - i);
                topic
                    .publish_batch((i..i + k).map(P::make))
                    .map_err(|e| format!("pinbus publish_batch: {e}"))?;
                i += k;
            }
            Ok(())
        }),
    }
}

/// S1 (and S6 with `churn`): 1 producer → 1 subscriber on one worker.
pub fn one_to_one<P: Payload>(ctx: &Ctx, load: Load, batch: bool, churn: bool) -> Res<Rig> {
    let engine = engine(ctx, false)?;
    let topic = topic::<P>(&engine, "bench.s1")?;
    let (warm, total) = load.marks(1);
    let (sub, handle) = subscribe(&topic, warm, total)?;
    let churn = churn.then(|| -> ChurnFn {
        let topic = topic.clone();
        Box::new(move || {
            let s = topic
                .subscribe(|ev: &Event<P>| {
                    std::hint::black_box(Payload::sum(&**ev));
                })
                .map_err(|e| format!("pinbus subscribe: {e}"))?;
            s.unsubscribe();
            Ok(())
        })
    });
    Ok(Rig {
        subs: vec![sub],
        producers: vec![publisher(topic, batch.then_some(ctx.batch))],
        churn,
        teardown: shutdown(engine, vec![handle]),
        copies: 1,
        per_subscriber: false,
    })
}

/// S2: 1 producer → 1 subscriber recording latency.
pub fn latency(ctx: &Ctx, warm: u64) -> Res<LatencyRig> {
    let engine = engine(ctx, false)?;
    let topic = topic::<u64>(&engine, "bench.s2")?;
    let slot = histogram_slot();
    let mut tally = LatencyTally::new(warm, slot.clone());
    let handle = topic
        .subscribe(move |ev: &Event<u64>| tally.on(**ev))
        .map_err(|e| format!("pinbus subscribe: {e}"))?;
    Ok(LatencyRig {
        send: Box::new(move |v| topic.publish(v).map_err(|e| format!("pinbus publish: {e}"))),
        slot,
        teardown: shutdown(engine, vec![handle]),
    })
}

/// S3: 1 producer → `n` subscribers of one topic on one worker (one push
/// per event serves all of them).
pub fn fanout(ctx: &Ctx, load: Load, n: usize) -> Res<Rig> {
    let engine = engine(ctx, false)?;
    let topic = topic::<u64>(&engine, "bench.s3")?;
    let (warm, total) = load.marks(1);
    let (subs, handles): (Vec<_>, Vec<_>) = (0..n)
        .map(|_| subscribe(&topic, warm, total))
        .collect::<Res<Vec<_>>>()?
        .into_iter()
        .unzip();
    Ok(Rig {
        subs,
        producers: vec![publisher(topic, None)],
        churn: None,
        teardown: shutdown(engine, handles),
        copies: n as u64,
        per_subscriber: true,
    })
}

/// S4: `load.producers` producers → 1 subscriber.
pub fn many_to_one(ctx: &Ctx, load: Load) -> Res<Rig> {
    let engine = engine(ctx, false)?;
    let topic = topic::<u64>(&engine, "bench.s4")?;
    let (warm, total) = load.marks(1);
    let (sub, handle) = subscribe(&topic, warm, total)?;
    Ok(Rig {
        subs: vec![sub],
        producers: (0..load.producers)
            .map(|_| publisher(topic.clone(), None))
            .collect(),
        churn: None,
        teardown: shutdown(engine, vec![handle]),
        copies: 1,
        per_subscriber: false,
    })
}

/// S5: `topics` topics spread over the workers (the engine's own
/// placement), producers publishing round-robin over them.
pub fn many_topics(ctx: &Ctx, load: Load, topics: usize) -> Res<Rig> {
    let engine = engine(ctx, true)?;
    let (warm, total) = load.marks(topics as u64);
    let mut all = Vec::with_capacity(topics);
    let mut subs = Vec::with_capacity(topics);
    let mut handles = Vec::with_capacity(topics);
    for t in 0..topics {
        let topic = topic::<u64>(&engine, &format!("bench.s5.{t}"))?;
        let (sub, handle) = subscribe(&topic, warm, total)?;
        subs.push(sub);
        handles.push(handle);
        all.push(topic);
    }
    let producers = (0..load.producers)
        .map(|_| -> SendFn {
            let topics = all.clone();
            let mut next = 0;
            Box::new(move |start, n| {
                for i in start..start + n {
                    topics[next]
                        .publish(i)
                        .map_err(|e| format!("pinbus publish: {e}"))?;
                    next = (next + 1) % topics.len();
                }
                Ok(())
            })
        })
        .collect();
    Ok(Rig {
        subs,
        producers,
        churn: None,
        teardown: shutdown(engine, handles),
        copies: 1,
        per_subscriber: false,
    })
}

/// S7: topics a → b → c; `a`'s handler publishes each event to `b`, `b`'s to
/// `c`, `c`'s handler counts. One worker on the consumer core (the built-in
/// engine, or `--config`), or (`per_hop`) three unpinned workers with a
/// topic each.
pub fn pipeline(ctx: &Ctx, load: Load, per_hop: bool) -> Res<Rig> {
    let engine = if per_hop {
        engine_with(ctx, 3, IdleStrategy::BusySpin)?
    } else {
        engine(ctx, false)?
    };
    let on = |w: usize| per_hop.then_some(w);
    let a = topic_on::<u64>(&engine, "bench.s7.a", on(0))?;
    let b = topic_on::<u64>(&engine, "bench.s7.b", on(1))?;
    let c = topic_on::<u64>(&engine, "bench.s7.c", on(2))?;
    let (warm, total) = load.marks(1);
    let (sub, last) = subscribe(&c, warm, total)?;
    let forward = |from: &Topic<u64>, to: Topic<u64>| {
        // A failed forward loses the event: the checksum at `c` reports it.
        from.subscribe(move |ev: &Event<u64>| {
            let _ = to.publish(**ev);
        })
        .map_err(|e| format!("pinbus subscribe: {e}"))
    };
    let second = forward(&b, c)?;
    let first = forward(&a, b)?;
    Ok(Rig {
        subs: vec![sub],
        producers: vec![publisher(a, None)],
        churn: None,
        teardown: shutdown(engine, vec![first, second, last]),
        copies: 1,
        per_subscriber: false,
    })
}

/// S8: the client's `publish_and_wait(v)` on a topic whose one subscriber
/// does trivial work (`black_box` of the value), on one worker pinned to the
/// consumer core with `idle`.
pub fn round_trip(ctx: &Ctx, idle: IdleStrategy) -> Res<RoundTripRig> {
    let engine = engine_with(ctx, 1, idle)?;
    let topic = topic::<u64>(&engine, "bench.s8")?;
    let handle = topic
        .subscribe(|ev: &Event<u64>| {
            std::hint::black_box(**ev);
        })
        .map_err(|e| format!("pinbus subscribe: {e}"))?;
    Ok(RoundTripRig {
        call: Box::new(move |v| {
            topic
                .publish_and_wait(v)
                .map_err(|e| format!("pinbus publish_and_wait: {e}"))
        }),
        teardown: shutdown(engine, vec![handle]),
    })
}

/// S9's async client: `publish_tracked(v)?` then `receipt.await` (the
/// worker that completes the event wakes the task).
#[derive(Debug)]
pub struct AsyncClient {
    topic: Topic<u64>,
}

impl AsyncCall for AsyncClient {
    async fn call(&mut self, v: u64) -> Res<()> {
        let receipt = self
            .topic
            .publish_tracked(v)
            .map_err(|e| format!("pinbus publish_tracked: {e}"))?;
        receipt.await;
        Ok(())
    }
}

/// S9 round trip: a task awaits the receipt of each tracked publish to a
/// topic whose one subscriber does trivial work (`black_box` of the value),
/// on one worker pinned to the consumer core with `idle` (as S8).
pub fn async_round_trip(ctx: &Ctx, idle: IdleStrategy) -> Res<AsyncRoundTripRig<AsyncClient>> {
    let engine = engine_with(ctx, 1, idle)?;
    let topic = topic::<u64>(&engine, "bench.s9.call")?;
    let handle = topic
        .subscribe(|ev: &Event<u64>| {
            std::hint::black_box(**ev);
        })
        .map_err(|e| format!("pinbus subscribe: {e}"))?;
    // A handle kept until after shutdown, so the final metrics list the
    // topic (the client's handle is gone by then).
    let keep = topic.clone();
    let stop = shutdown(engine, vec![handle]);
    Ok(AsyncRoundTripRig {
        client: AsyncClient { topic },
        teardown: Box::new(move || {
            stop()?;
            drop(keep);
            Ok(())
        }),
    })
}

/// S9 stream: the producer `publish`es on a `Block` topic; a task on the
/// consumer core drains `subscribe_stream()` with `StreamExt::next` and
/// feeds the tally. The stream's worker (built-in engine: one worker on the
/// consumer core, `idle`) shares that core with the task.
pub fn stream(ctx: &Ctx, load: Load, idle: IdleStrategy) -> Res<Rig> {
    let engine = engine_with(ctx, 1, idle)?;
    let topic = topic::<u64>(&engine, "bench.s9.stream")?;
    let (warm, total) = load.marks(1);
    let probe = Probe::new();
    let mut tally = Tally::new(probe.clone(), warm, total);
    let mut events = topic
        .subscribe_stream()
        .map_err(|e| format!("pinbus subscribe_stream: {e}"))?;
    let join = task_thread("consumer", cores::consumer(), async move {
        while let Some(ev) = events.next().await {
            tally.add(Payload::sum(&*ev));
            if tally.finished() {
                return Ok(());
            }
        }
        Err("pinbus: the stream ended before the last event".into())
    })?;
    let stop = shutdown(engine, Vec::new());
    // Kept until after shutdown, so the final metrics list the topic.
    let keep = topic.clone();
    Ok(Rig {
        subs: vec![Sub { probe, warm, total }],
        producers: vec![publisher(topic, None)],
        churn: None,
        teardown: Box::new(move || {
            join_task(join)?;
            stop()?;
            drop(keep);
            Ok(())
        }),
        copies: 1,
        per_subscriber: false,
    })
}

/// S10 patterns: S1's 1P→1S (u64, single publish) on `bench.orders.x`,
/// with `patterns` patterns `other.N.>` defined first, each with a
/// subscription, none of them matching the topic.
pub fn patterns(ctx: &Ctx, load: Load, patterns: usize) -> Res<Rig> {
    let engine = engine(ctx, false)?;
    let mut handles = (0..patterns)
        .map(|n| {
            engine
                .pattern::<u64>(&format!("other.{n}.>"))
                .map_err(|e| format!("pinbus pattern: {e}"))?
                .subscribe(|ev: &Event<u64>| {
                    std::hint::black_box(**ev);
                })
                .map_err(|e| format!("pinbus pattern subscribe: {e}"))
        })
        .collect::<Res<Vec<_>>>()?;
    let topic = topic::<u64>(&engine, "bench.orders.x")?;
    let (warm, total) = load.marks(1);
    let (sub, handle) = subscribe(&topic, warm, total)?;
    handles.push(handle);
    Ok(Rig {
        subs: vec![sub],
        producers: vec![publisher(topic, None)],
        churn: None,
        teardown: shutdown(engine, handles),
        copies: 1,
        per_subscriber: false,
    })
}

/// S10 groups: 1 producer → a group `g` of two members, plain
/// (`topic.group("g")`) or keyed by `v % 100`, on one BusySpin worker on the
/// consumer core; both members count into one [`GroupTally`].
pub fn group(ctx: &Ctx, load: Load, keyed: bool) -> Res<Rig> {
    let engine = engine_with(ctx, 1, IdleStrategy::BusySpin)?;
    let topic = topic::<u64>(&engine, "bench.s10.group")?;
    let (warm, total) = load.marks(1);
    let probe = Probe::new();
    let tally = GroupTally::new(probe.clone(), warm, total);
    let handles = (0..2)
        .map(|_| {
            let tally = tally.clone();
            let count = move |ev: &Event<u64>| tally.add(Payload::sum(&**ev));
            let group = topic.group("g");
            if keyed {
                group.keyed(|v: &u64| *v % 100).subscribe(count)
            } else {
                group.subscribe(count)
            }
            .map_err(|e| format!("pinbus group subscribe: {e}"))
        })
        .collect::<Res<Vec<_>>>()?;
    Ok(Rig {
        subs: vec![Sub { probe, warm, total }],
        producers: vec![publisher(topic, None)],
        churn: None,
        teardown: shutdown(engine, handles),
        copies: 1,
        per_subscriber: false,
    })
}

/// S10 request/reply: `service.call(v)` to `bench.svc`, whose one member
/// answers `v + 1`, on one worker pinned to the consumer core with `idle`.
pub fn service_call(ctx: &Ctx, idle: IdleStrategy) -> Res<RoundTripRig> {
    let engine = engine_with(ctx, 1, idle)?;
    let service = engine
        .service::<u64, u64>("bench.svc")
        .map_err(|e| format!("pinbus service: {e}"))?;
    let member = service
        .serve(|q: &Event<u64>| **q + 1)
        .map_err(|e| format!("pinbus serve: {e}"))?;
    Ok(RoundTripRig {
        call: Box::new(move |v| match service.call(v) {
            Ok(r) if r == v + 1 => Ok(()),
            Ok(r) => Err(format!("pinbus call: {r} is no reply to {v}")),
            Err(e) => Err(format!("pinbus call: {e}")),
        }),
        teardown: shutdown(engine, vec![member]),
    })
}
