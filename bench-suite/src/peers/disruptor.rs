//! The `disruptor` crate (4.x) in its natural setup: handlers on the ring,
//! `BusySpin`, the consumer thread pinned with `pin_at_core` (S3's four
//! handlers are unpinned: more threads than cores). Dropping the producer
//! handle drains and joins the handler threads.
//!
//! S7's pipeline is the crate's chain of dependent consumers on one ring
//! (`and_then`): each hop reads the event in place and releases it to the
//! next, no copy. Either three `EventPoller`s polled in turn by one pinned
//! thread (the thread count of pinbus's one worker), or three managed
//! handler threads (`handle_events_with … and_then() …`), unpinned.
//! S8's round trip is two rings: the client publishes into a request ring,
//! whose pinned handler publishes the reply into a reply ring that the client
//! busy-polls through an `EventPoller`.

use disruptor::{
    build_multi_producer, build_single_producer, BusySpin, Polling, Producer, Sequence,
};

use crate::cores;
use crate::harness::{Ctx, LatencyRig, Load, Res, Rig, RoundTripRig, SendFn, Sub};
use crate::payload::Payload;
use crate::probe::{histogram_slot, LatencyTally, Probe, Tally};

/// A producer publishing single events or batches of `batch` (`None`).
fn publisher<P: Payload, T: Producer<P> + Send + 'static>(
    mut producer: T,
    batch: Option<usize>,
) -> SendFn {
    match batch {
        None => Box::new(move |start, n| {
            for i in start..start + n {
                producer.publish(|e| *e = P::make(i));
            }
            Ok(())
        }),
        Some(b) => Box::new(move |start, n| {
            let mut i = start;
            while i < start + n {
                let k = (b as u64).min(start + n - i);
                producer.batch_publish(k as usize, |iter| {
                    for (j, e) in iter.enumerate() {
                        *e = P::make(i + j as u64);
                    }
                });
                i += k;
            }
            Ok(())
        }),
    }
}

/// A counting handler and its probe.
fn handler<P: Payload>(
    warm: u64,
    total: u64,
) -> (Sub, impl FnMut(&P, Sequence, bool) + Send + 'static) {
    let probe = Probe::new();
    let mut tally = Tally::new(probe.clone(), warm, total);
    (
        Sub { probe, warm, total },
        move |e: &P, _: Sequence, _: bool| tally.add(e.sum()),
    )
}

/// Nothing to do: dropping the producer in its thread joined the handlers.
fn nothing() -> crate::harness::Teardown {
    Box::new(|| Ok(()))
}

/// S1: 1 producer → 1 pinned handler.
pub fn one_to_one<P: Payload>(ctx: &Ctx, load: Load, batch: bool) -> Res<Rig> {
    let (warm, total) = load.marks(1);
    let (sub, h) = handler::<P>(warm, total);
    let builder = build_single_producer(ctx.capacity, P::default, BusySpin);
    let builder = match cores::consumer() {
        Some(c) => disruptor::ProcessorSettings::pin_at_core(builder, c),
        None => builder,
    };
    let producer = builder.handle_events_with(h).build();
    Ok(Rig {
        subs: vec![sub],
        producers: vec![publisher::<P, _>(producer, batch.then_some(ctx.batch))],
        churn: None,
        teardown: nothing(),
        copies: 1,
        per_subscriber: false,
    })
}

/// S2: 1 producer → 1 pinned handler recording latency.
pub fn latency(ctx: &Ctx, warm: u64) -> Res<LatencyRig> {
    let slot = histogram_slot();
    let mut tally = LatencyTally::new(warm, slot.clone());
    let builder = build_single_producer(ctx.capacity, || 0u64, BusySpin);
    let builder = match cores::consumer() {
        Some(c) => disruptor::ProcessorSettings::pin_at_core(builder, c),
        None => builder,
    };
    let mut producer = builder
        .handle_events_with(move |e: &u64, _: Sequence, _: bool| tally.on(*e))
        .build();
    Ok(LatencyRig {
        send: Box::new(move |v| {
            producer.publish(|e| *e = v);
            Ok(())
        }),
        slot,
        teardown: nothing(),
    })
}

/// S3: 1 producer → `n` unpinned handlers on one ring.
pub fn fanout(ctx: &Ctx, load: Load, n: usize) -> Res<Rig> {
    let (warm, total) = load.marks(1);
    let mut subs = Vec::with_capacity(n);
    let (sub, h) = handler::<u64>(warm, total);
    subs.push(sub);
    let one = build_single_producer(ctx.capacity, || 0u64, BusySpin).handle_events_with(h);
    let producer: SendFn = if n <= 1 {
        publisher::<u64, _>(one.build(), None)
    } else {
        let (sub, h) = handler::<u64>(warm, total);
        subs.push(sub);
        let mut many = one.handle_events_with(h);
        for _ in 2..n {
            let (sub, h) = handler::<u64>(warm, total);
            subs.push(sub);
            many = many.handle_events_with(h);
        }
        publisher::<u64, _>(many.build(), None)
    };
    Ok(Rig {
        subs,
        producers: vec![producer],
        churn: None,
        teardown: nothing(),
        copies: n as u64,
        per_subscriber: true,
    })
}

/// S4: `load.producers` producers (multi-producer ring) → 1 pinned handler.
pub fn many_to_one(ctx: &Ctx, load: Load) -> Res<Rig> {
    let (warm, total) = load.marks(1);
    let (sub, h) = handler::<u64>(warm, total);
    let builder = build_multi_producer(ctx.capacity, || 0u64, BusySpin);
    let builder = match cores::consumer() {
        Some(c) => disruptor::ProcessorSettings::pin_at_core(builder, c),
        None => builder,
    };
    let first = builder.handle_events_with(h).build();
    let mut producers = Vec::with_capacity(load.producers as usize);
    for _ in 1..load.producers {
        producers.push(publisher::<u64, _>(first.clone(), None));
    }
    producers.insert(0, publisher::<u64, _>(first, None));
    Ok(Rig {
        subs: vec![sub],
        producers,
        churn: None,
        teardown: nothing(),
        copies: 1,
        per_subscriber: false,
    })
}

/// S7: a ring with three dependent consumers: hop 1 and hop 2 read each
/// event (`black_box`) and release it to the next, hop 3 counts it.
pub fn pipeline(ctx: &Ctx, load: Load, per_hop: bool) -> Res<Rig> {
    let (warm, total) = load.marks(1);
    let (sub, mut h3) = handler::<u64>(warm, total);
    let read = |e: &u64, _: Sequence, _: bool| {
        std::hint::black_box(*e);
    };
    let builder = build_single_producer(ctx.capacity, || 0u64, BusySpin);
    let (producer, teardown) = if per_hop {
        let producer = builder
            .handle_events_with(read)
            .and_then()
            .handle_events_with(read)
            .and_then()
            .handle_events_with(h3)
            .build();
        (publisher::<u64, _>(producer, None), nothing())
    } else {
        let (mut p1, builder) = builder.new_event_poller();
        let (mut p2, builder) = builder.and_then().new_event_poller();
        let (mut p3, builder) = builder.and_then().new_event_poller();
        let producer = builder.build();
        let core = cores::consumer();
        let probe = sub.probe.clone();
        let join = std::thread::Builder::new()
            .name("pipeline".into())
            .spawn(move || {
                cores::pin(core);
                // Up to 256 events per hop per pass, as the channel peers.
                while probe.pos() < total {
                    let mut got = false;
                    if let Ok(mut events) = p1.take(256) {
                        for e in &mut events {
                            std::hint::black_box(*e);
                        }
                        got = true;
                    }
                    if let Ok(mut events) = p2.take(256) {
                        for e in &mut events {
                            std::hint::black_box(*e);
                        }
                        got = true;
                    }
                    match p3.take(256) {
                        Ok(mut events) => {
                            for e in &mut events {
                                h3(e, 0, false);
                            }
                            got = true;
                        }
                        Err(Polling::Shutdown) => return,
                        Err(Polling::NoEvents) => {}
                    }
                    if !got {
                        std::hint::spin_loop();
                    }
                }
            })
            .map_err(|e| format!("cannot spawn a consumer thread: {e}"))?;
        let teardown: crate::harness::Teardown = Box::new(move || {
            join.join()
                .map_err(|_| "the pipeline thread panicked".to_string())
        });
        (publisher::<u64, _>(producer, None), teardown)
    };
    Ok(Rig {
        subs: vec![sub],
        producers: vec![producer],
        churn: None,
        teardown,
        copies: 1,
        per_subscriber: false,
    })
}

/// S8: a request ring whose pinned BusySpin handler does the trivial work
/// (`black_box`) and publishes the value into a reply ring; the client
/// publishes a request, then busy-polls the reply ring's `EventPoller`.
pub fn round_trip(ctx: &Ctx) -> Res<RoundTripRig> {
    let reply = build_single_producer(ctx.capacity, || 0u64, BusySpin);
    let (mut replies, reply) = reply.new_event_poller();
    let mut reply = reply.build();
    let request = build_single_producer(ctx.capacity, || 0u64, BusySpin);
    let request = match cores::consumer() {
        Some(c) => disruptor::ProcessorSettings::pin_at_core(request, c),
        None => request,
    };
    let mut requests = request
        .handle_events_with(move |e: &u64, _: Sequence, _: bool| {
            let v = std::hint::black_box(*e);
            reply.publish(|r| *r = v);
        })
        .build();
    Ok(RoundTripRig {
        call: Box::new(move |v| {
            requests.publish(|e| *e = v);
            loop {
                match replies.take(1) {
                    Ok(mut got) => {
                        if (&mut got).next() != Some(&v) {
                            return Err("disruptor: reply out of order".into());
                        }
                        return Ok(());
                    }
                    Err(Polling::NoEvents) => std::hint::spin_loop(),
                    Err(Polling::Shutdown) => return Err("disruptor: reply ring shut down".into()),
                }
            }
        }),
        // Dropping `call` drops the request producer, which joins its
        // handler (and so drops the reply producer).
        teardown: nothing(),
    })
}
