//! The channel-shaped peers (crossbeam-channel, flume, rtrb, tokio
//! broadcast) behind one small interface, and every scenario written once
//! for all of them: consumers are threads that poll their receivers and feed
//! a [`Tally`].

use std::thread::{self, JoinHandle};

use crate::cores;
use crate::harness::{ChurnFn, Ctx, LatencyRig, Load, Res, Rig, SendFn, SendOne, Sub, Teardown};
use crate::payload::Payload;
use crate::probe::{histogram_slot, LatencyTally, Probe, Tally, SENTINEL};

/// What a non-blocking receive found.
#[derive(Debug)]
pub enum Recv<P> {
    /// An event.
    Item(P),
    /// Nothing right now.
    Empty,
    /// This many events were overwritten before they were read.
    Lagged(u64),
    /// Every sender is gone and nothing is left.
    Closed,
}

/// The sending half of a peer's channel.
pub trait Tx<P: Payload>: Send + 'static {
    /// Sends one event, waiting for room the peer's natural way.
    fn send(&mut self, v: P) -> Res<()>;

    /// Sends events `start..start + n` through the peer's batch API (only
    /// called for peers whose [`Channel::BATCH`] is true).
    fn send_batch(&mut self, start: u64, n: u64) -> Res<()> {
        for i in start..start + n {
            self.send(P::make(i))?;
        }
        Ok(())
    }
}

/// The receiving half of a peer's channel.
pub trait Rx<P: Payload>: Send + 'static {
    /// Takes one event without blocking.
    fn recv(&mut self) -> Recv<P>;
}

/// Senders and receivers of a peer's channels.
pub type Ends<C, P> = (Vec<<C as Channel>::Tx<P>>, Vec<<C as Channel>::Rx<P>>);

/// A peer shaped like a channel.
pub trait Channel {
    /// Whether [`Tx::send_batch`] is a real batch API.
    const BATCH: bool;
    /// Sending half.
    type Tx<P: Payload>: Tx<P>;
    /// Receiving half.
    type Rx<P: Payload>: Rx<P>;

    /// A bounded channel of `capacity`.
    fn pair<P: Payload>(capacity: usize) -> (Self::Tx<P>, Self::Rx<P>);

    /// A second sender into the same channel, if the peer is multi-producer.
    fn clone_tx<P: Payload>(tx: &Self::Tx<P>) -> Option<Self::Tx<P>>;

    /// Senders and `n` receivers such that sending once through every sender
    /// delivers each event to every receiver. Default: `n` channels.
    fn fanout<P: Payload>(capacity: usize, n: usize) -> Ends<Self, P> {
        (0..n).map(|_| Self::pair(capacity)).unzip()
    }

    /// A subscribe/unsubscribe cycle against `tx`'s channel, if the peer has one.
    fn churn<P: Payload>(_tx: &Self::Tx<P>) -> Option<ChurnFn> {
        None
    }
}

/// What a consumer does after a pass that found nothing.
#[derive(Clone, Copy, Debug)]
enum Idle {
    /// Spin (a consumer alone on its core).
    Spin,
    /// Yield the core (more threads than cores).
    Yield,
}

/// Polls `lanes` (receiver, index of its tally) until every tally finished.
fn drain<P: Payload, R: Rx<P>>(mut lanes: Vec<(R, usize)>, mut tallies: Vec<Tally>, idle: Idle) {
    loop {
        let mut got = false;
        let mut closed = 0;
        for (rx, t) in lanes.iter_mut() {
            for _ in 0..256 {
                match rx.recv() {
                    Recv::Item(v) => {
                        tallies[*t].add(v.sum());
                        got = true;
                    }
                    Recv::Lagged(n) => {
                        tallies[*t].lag(n);
                        got = true;
                    }
                    Recv::Empty => break,
                    Recv::Closed => {
                        closed += 1;
                        break;
                    }
                }
            }
        }
        if !got {
            if tallies.iter().all(Tally::finished) || closed >= lanes.len() {
                return;
            }
            match idle {
                Idle::Spin => std::hint::spin_loop(),
                Idle::Yield => thread::yield_now(),
            }
        }
    }
}

/// Starts a consumer thread on `core` draining `lanes`.
fn consumer<P: Payload, R: Rx<P>>(
    core: Option<usize>,
    lanes: Vec<(R, usize)>,
    tallies: Vec<Tally>,
    idle: Idle,
) -> Res<JoinHandle<()>> {
    thread::Builder::new()
        .name("consumer".into())
        .spawn(move || {
            cores::pin(core);
            drain(lanes, tallies, idle);
        })
        .map_err(|e| format!("cannot spawn a consumer thread: {e}"))
}

/// Joins the consumer threads.
fn join_all(joins: Vec<JoinHandle<()>>) -> Teardown {
    Box::new(move || {
        for j in joins {
            j.join()
                .map_err(|_| "a consumer thread panicked".to_string())?;
        }
        Ok(())
    })
}

/// A producer sending single events or batches of `batch` through `tx`.
fn sender<P: Payload, T: Tx<P>>(mut tx: T, batch: Option<usize>) -> SendFn {
    match batch {
        None => Box::new(move |start, n| {
            for i in start..start + n {
                tx.send(P::make(i))?;
            }
            Ok(())
        }),
        Some(b) => Box::new(move |start, n| {
            let mut i = start;
            while i < start + n {
                let k = (b as u64).min(start + n - i);
                tx.send_batch(i, k)?;
                i += k;
            }
            Ok(())
        }),
    }
}

/// S1 (and S6): 1 producer → 1 pinned, spinning consumer.
pub fn one_to_one<C: Channel, P: Payload>(
    ctx: &Ctx,
    load: Load,
    batch: bool,
    churn: bool,
) -> Res<Rig> {
    let (tx, rx) = C::pair::<P>(ctx.capacity);
    let probe = Probe::new();
    let (warm, total) = load.marks(1);
    let tally = Tally::new(probe.clone(), warm, total);
    let churn = if churn { C::churn(&tx) } else { None };
    let join = consumer(cores::consumer(), vec![(rx, 0)], vec![tally], Idle::Spin)?;
    Ok(Rig {
        subs: vec![Sub { probe, warm, total }],
        producers: vec![sender(tx, batch.then_some(ctx.batch))],
        churn,
        teardown: join_all(vec![join]),
        copies: 1,
        per_subscriber: false,
    })
}

/// S2: 1 producer → 1 pinned consumer recording latency.
pub fn latency<C: Channel>(ctx: &Ctx, warm: u64) -> Res<LatencyRig> {
    let (mut tx, mut rx) = C::pair::<u64>(ctx.capacity);
    let slot = histogram_slot();
    let mut tally = LatencyTally::new(warm, slot.clone());
    let core = cores::consumer();
    let join = thread::Builder::new()
        .name("consumer".into())
        .spawn(move || {
            cores::pin(core);
            loop {
                match rx.recv() {
                    Recv::Item(v) => {
                        tally.on(v);
                        if v == SENTINEL {
                            return;
                        }
                    }
                    Recv::Empty | Recv::Lagged(_) => std::hint::spin_loop(),
                    Recv::Closed => return,
                }
            }
        })
        .map_err(|e| format!("cannot spawn a consumer thread: {e}"))?;
    let send: SendOne = Box::new(move |v| tx.send(v));
    Ok(LatencyRig {
        send,
        slot,
        teardown: join_all(vec![join]),
    })
}

/// S3: 1 producer → `n` consumers, each seeing every event; consumers are
/// unpinned and yield when idle (more threads than cores).
pub fn fanout<C: Channel>(ctx: &Ctx, load: Load, n: usize) -> Res<Rig> {
    let (txs, rxs) = C::fanout::<u64>(ctx.capacity, n);
    let (warm, total) = load.marks(1);
    let mut subs = Vec::with_capacity(n);
    let mut joins = Vec::with_capacity(n);
    for rx in rxs {
        let probe = Probe::new();
        let tally = Tally::new(probe.clone(), warm, total);
        joins.push(consumer(None, vec![(rx, 0)], vec![tally], Idle::Yield)?);
        subs.push(Sub { probe, warm, total });
    }
    let mut txs = txs;
    let send: SendFn = Box::new(move |start, count| {
        for i in start..start + count {
            for tx in txs.iter_mut() {
                tx.send(i)?;
            }
        }
        Ok(())
    });
    Ok(split_rig(subs, send, joins, n as u64))
}

/// The rig of one producer, `send`, whose events reach the consumer
/// threads `joins` (probes `subs`) `copies` times each: every consumer sees
/// every event (`copies` > 1, rate per subscriber) or its share (1, the
/// rate in total).
fn split_rig(subs: Vec<Sub>, send: SendFn, joins: Vec<JoinHandle<()>>, copies: u64) -> Rig {
    Rig {
        subs,
        producers: vec![send],
        churn: None,
        teardown: join_all(joins),
        copies,
        per_subscriber: copies > 1,
    }
}

/// Senders for `producers` threads into one logical channel: clones of one
/// sender where the peer is multi-producer, else one channel per producer
/// (the consumer polls them all).
fn senders<C: Channel>(capacity: usize, producers: usize) -> Ends<C, u64> {
    let (tx, rx) = C::pair::<u64>(capacity);
    let clones: Option<Vec<_>> = (1..producers).map(|_| C::clone_tx(&tx)).collect();
    if let Some(mut txs) = clones {
        txs.insert(0, tx);
        (txs, vec![rx])
    } else {
        let mut txs = vec![tx];
        let mut rxs = vec![rx];
        for _ in 1..producers {
            let (t, r) = C::pair::<u64>(capacity);
            txs.push(t);
            rxs.push(r);
        }
        (txs, rxs)
    }
}

/// S4: `load.producers` producers → 1 pinned, spinning consumer.
pub fn many_to_one<C: Channel>(ctx: &Ctx, load: Load) -> Res<Rig> {
    let (txs, rxs) = senders::<C>(ctx.capacity, load.producers as usize);
    let probe = Probe::new();
    let (warm, total) = load.marks(1);
    let tally = Tally::new(probe.clone(), warm, total);
    let lanes = rxs.into_iter().map(|r| (r, 0)).collect();
    let join = consumer(cores::consumer(), lanes, vec![tally], Idle::Spin)?;
    Ok(Rig {
        subs: vec![Sub { probe, warm, total }],
        producers: txs.into_iter().map(|t| sender(t, None)).collect(),
        churn: None,
        teardown: join_all(vec![join]),
        copies: 1,
        per_subscriber: false,
    })
}

/// S5: `topics` channels, one consumer thread per consumer core (topic `t`
/// on consumer `t % consumers`), producers sending round-robin over topics.
pub fn many_topics<C: Channel>(ctx: &Ctx, load: Load, topics: usize) -> Res<Rig> {
    let producers = load.producers as usize;
    let consumer_cores = cores::consumers();
    let consumers = consumer_cores.len().max(1);
    let (warm, total) = load.marks(topics as u64);
    // per_producer[p][t]: producer p's sender for topic t.
    let mut per_producer: Vec<Vec<C::Tx<u64>>> = (0..producers).map(|_| Vec::new()).collect();
    let mut lanes: Vec<Vec<(C::Rx<u64>, usize)>> = (0..consumers).map(|_| Vec::new()).collect();
    let mut tallies: Vec<Vec<Tally>> = (0..consumers).map(|_| Vec::new()).collect();
    let mut subs = Vec::with_capacity(topics);
    for t in 0..topics {
        let w = t % consumers;
        let (txs, rxs) = senders::<C>(ctx.capacity, producers);
        for (p, tx) in txs.into_iter().enumerate() {
            per_producer[p].push(tx);
        }
        let probe = Probe::new();
        let idx = tallies[w].len();
        tallies[w].push(Tally::new(probe.clone(), warm, total));
        lanes[w].extend(rxs.into_iter().map(|r| (r, idx)));
        subs.push(Sub { probe, warm, total });
    }
    let idle = if consumer_cores.is_empty() {
        Idle::Yield
    } else {
        Idle::Spin
    };
    let mut joins = Vec::with_capacity(consumers);
    for (w, (l, t)) in lanes.into_iter().zip(tallies).enumerate() {
        joins.push(consumer(consumer_cores.get(w).copied(), l, t, idle)?);
    }
    let producers = per_producer
        .into_iter()
        .map(|mut txs| -> SendFn {
            let mut next = 0;
            Box::new(move |start, n| {
                for i in start..start + n {
                    txs[next].send(i)?;
                    next = (next + 1) % txs.len();
                }
                Ok(())
            })
        })
        .collect();
    Ok(Rig {
        subs,
        producers,
        churn: None,
        teardown: join_all(joins),
        copies: 1,
        per_subscriber: false,
    })
}

/// Moves up to `limit` events from `rx` into `tx`; whether any moved.
/// `Ok(None)` once `rx` is closed and empty.
#[inline]
fn forward<P: Payload>(
    rx: &mut impl Rx<P>,
    tx: &mut impl Tx<P>,
    limit: usize,
) -> Res<Option<bool>> {
    let mut got = false;
    for _ in 0..limit {
        match rx.recv() {
            Recv::Item(v) => {
                tx.send(v)?;
                got = true;
            }
            Recv::Empty | Recv::Lagged(_) => break,
            Recv::Closed => return Ok(if got { Some(true) } else { None }),
        }
    }
    Ok(Some(got))
}

/// Counts up to `limit` events of `rx` into `tally`; whether any arrived.
#[inline]
fn count<P: Payload>(rx: &mut impl Rx<P>, tally: &mut Tally, limit: usize) -> bool {
    let mut got = false;
    for _ in 0..limit {
        match rx.recv() {
            Recv::Item(v) => {
                tally.add(v.sum());
                got = true;
            }
            _ => break,
        }
    }
    got
}

/// Spawns a thread named `name` on `core` running `body`.
fn spawn(
    name: &str,
    core: Option<usize>,
    body: impl FnOnce() + Send + 'static,
) -> Res<JoinHandle<()>> {
    thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            cores::pin(core);
            body();
        })
        .map_err(|e| format!("cannot spawn a consumer thread: {e}"))
}

/// S7: channels a → b → c of `ctx.capacity` each. One pinned thread
/// polls the three hops in turn, moving up to 256 events per channel per pass
/// (at most half the capacity, so a forward never finds `b` or `c` full) and
/// counting at `c`; or (`per_hop`) three unpinned spinning threads, one per hop.
pub fn pipeline<C: Channel>(ctx: &Ctx, load: Load, per_hop: bool) -> Res<Rig> {
    let (tx_a, mut rx_a) = C::pair::<u64>(ctx.capacity);
    let (mut tx_b, mut rx_b) = C::pair::<u64>(ctx.capacity);
    let (mut tx_c, mut rx_c) = C::pair::<u64>(ctx.capacity);
    let probe = Probe::new();
    let (warm, total) = load.marks(1);
    let mut tally = Tally::new(probe.clone(), warm, total);
    let limit = 256.min(ctx.capacity / 2);
    let joins = if per_hop {
        // Each forwarder ends when its input closes (the sender upstream is
        // dropped), and drops its own sender, closing the next hop.
        let hop = |mut rx: C::Rx<u64>, mut tx: C::Tx<u64>| {
            move || loop {
                match forward(&mut rx, &mut tx, limit) {
                    Ok(Some(true)) => {}
                    Ok(Some(false)) => std::hint::spin_loop(),
                    Ok(None) | Err(_) => return,
                }
            }
        };
        vec![
            spawn("hop-a", None, hop(rx_a, tx_b))?,
            spawn("hop-b", None, hop(rx_b, tx_c))?,
            spawn("hop-c", None, move || {
                while !tally.finished() {
                    if !count(&mut rx_c, &mut tally, limit) {
                        std::hint::spin_loop();
                    }
                }
            })?,
        ]
    } else {
        vec![spawn("pipeline", cores::consumer(), move || {
            while !tally.finished() {
                let a = forward(&mut rx_a, &mut tx_b, limit);
                let b = forward(&mut rx_b, &mut tx_c, limit);
                let c = count(&mut rx_c, &mut tally, limit);
                if a.is_err() || b.is_err() {
                    return;
                }
                if !(c || matches!(a, Ok(Some(true))) || matches!(b, Ok(Some(true)))) {
                    std::hint::spin_loop();
                }
            }
        })?]
    };
    Ok(Rig {
        subs: vec![Sub { probe, warm, total }],
        producers: vec![sender(tx_a, None)],
        churn: None,
        teardown: join_all(joins),
        copies: 1,
        per_subscriber: false,
    })
}

/// The channel, of `n`, that a hand-keyed producer sends `v` to: the key
/// `v % 100` (S10's keyed group's), mixed by a multiply hash (splitmix64's
/// finisher, as cheap as pinbus's own key hash), modulo `n`.
#[inline]
pub fn route(v: u64, n: usize) -> usize {
    let mut h = (v % 100).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    ((h ^ (h >> 31)) % n as u64) as usize
}

/// S10's keyed group by hand: the producer sends each event to one of `n`
/// channels by [`route`] (what keeps per-key order with channels), each
/// drained by a consumer thread of its own: pinned and spinning where every
/// one has a consumer core, else unpinned and yielding (as S3). Each
/// consumer's marks are its share of the producer's indices.
pub fn keyed<C: Channel>(ctx: &Ctx, load: Load, n: usize) -> Res<Rig> {
    debug_assert_eq!(load.producers, 1, "one producer: its indices start at 0");
    let (mut txs, rxs): (Vec<_>, Vec<_>) = (0..n).map(|_| C::pair::<u64>(ctx.capacity)).unzip();
    let mut marks = vec![(0u64, 0u64); n];
    for i in 0..load.warm + load.measured {
        let m = &mut marks[route(i, n)];
        m.0 += u64::from(i < load.warm);
        m.1 += 1;
    }
    let spare = cores::consumers();
    let idle = if spare.len() >= n {
        Idle::Spin
    } else {
        Idle::Yield
    };
    let mut subs = Vec::with_capacity(n);
    let mut joins = Vec::with_capacity(n);
    for (c, (rx, (warm, total))) in rxs.into_iter().zip(marks).enumerate() {
        let probe = Probe::new();
        let tally = Tally::new(probe.clone(), warm, total);
        let core = matches!(idle, Idle::Spin).then(|| spare[c]);
        joins.push(consumer(core, vec![(rx, 0)], vec![tally], idle)?);
        subs.push(Sub { probe, warm, total });
    }
    let send: SendFn = Box::new(move |start, count| {
        for i in start..start + count {
            txs[route(i, n)].send(i)?;
        }
        Ok(())
    });
    Ok(split_rig(subs, send, joins, 1))
}
