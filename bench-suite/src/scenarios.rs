//! The scenarios, the cases they measure, which peer takes part in which
//! case (and why not), and the dispatch of one run to the peer's code.

use clap::ValueEnum;
use serde::Serialize;

use crate::harness::{
    measure, measure_async_round_trip, measure_latency, measure_round_trip, Ctx, Latency, Load,
    Res, Throughput,
};
use crate::payload::{Line, Payload};
use crate::peers::channel::{self, Channel};
use crate::peers::mpmc::{Crossbeam, Flume};
use crate::peers::rtrb::Rtrb;
use crate::peers::tokio_broadcast::TokioBroadcast;
use crate::peers::{disruptor, pinbus, request, tokio_async, Peer};

/// A scenario of the suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ValueEnum, Serialize)]
#[value(rename_all = "UPPER")]
pub enum Scenario {
    /// Throughput 1 producer -> 1 subscriber, u64 and 64-byte payloads, single and batch publish.
    S1,
    /// One-way latency under paced load (one u64 timestamp every --pace-ns): p50/p99/p99.9/max.
    S2,
    /// Fan-out 1 producer -> --fanout subscribers that each see every event: per-subscriber rate.
    S3,
    /// --producers producers -> 1 subscriber: total rate.
    S4,
    /// --topics topics spread over all workers, producers publishing round-robin: total rate.
    S5,
    /// 1P->1S publisher throughput while a thread subscribes/unsubscribes at ~1k/s: drop %.
    S6,
    /// Pipeline a -> b -> c (3 hops): events/s through the last hop.
    S7,
    /// Request round trip (pinbus publish_and_wait): p50/p99/p99.9/max.
    S8,
    /// Async: round trip into a tokio task (receipt.await vs mpsc + oneshot)
    /// and stream consumption by a task (subscribe_stream vs mpsc, broadcast).
    S9,
    /// Routing (issue 17): publish with 0 vs 10 non-matching patterns,
    /// keyed vs plain consumer group, service request/reply round trip.
    S10,
}

impl Scenario {
    /// Every scenario in order.
    pub const ALL: [Scenario; 10] = [
        Scenario::S1,
        Scenario::S2,
        Scenario::S3,
        Scenario::S4,
        Scenario::S5,
        Scenario::S6,
        Scenario::S7,
        Scenario::S8,
        Scenario::S9,
        Scenario::S10,
    ];

    /// `"S1"` ...
    pub fn id(self) -> &'static str {
        match self {
            Scenario::S1 => "S1",
            Scenario::S2 => "S2",
            Scenario::S3 => "S3",
            Scenario::S4 => "S4",
            Scenario::S5 => "S5",
            Scenario::S6 => "S6",
            Scenario::S7 => "S7",
            Scenario::S8 => "S8",
            Scenario::S9 => "S9",
            Scenario::S10 => "S10",
        }
    }
}

/// The shape of the suite: counts and topology sizes.
#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    /// Measured events per case (S2: latency samples, S8: round trips,
    /// S9: stream events; its round trips are [`Plan::async_round_trips`];
    /// S10: events of its throughput cases, its calls are
    /// [`Plan::service_calls`]), by scenario.
    pub events: [u64; 10],
    /// Producers in S4 and S5.
    pub producers: u64,
    /// Topics in S5.
    pub topics: usize,
    /// Subscribers in S3.
    pub fanout: usize,
}

impl Plan {
    /// Measured events of `s`.
    pub fn events(&self, s: Scenario) -> u64 {
        self.events[s as usize]
    }

    /// Measured round trips of S9's round-trip case: a hundredth of its
    /// stream events, at least 1,000 (20,000 with `--quick`, as S8).
    pub fn async_round_trips(&self) -> u64 {
        self.hundredth(Scenario::S9)
    }

    /// Calls per column of S10's request/reply case: a hundredth of its
    /// events, at least 1,000.
    pub fn service_calls(&self) -> u64 {
        self.hundredth(Scenario::S10)
    }

    /// A hundredth of the events of `s`, at least 1,000.
    fn hundredth(&self, s: Scenario) -> u64 {
        (self.events(s) / 100).max(1_000)
    }
}

/// One measured case of a scenario (a column of its table).
#[derive(Clone, Debug, PartialEq)]
pub enum Case {
    /// S1 with the 64-byte payload (`line`) or u64, batch or single.
    Throughput {
        /// 64-byte payload.
        line: bool,
        /// `publish_batch` / the peer's batch API.
        batch: bool,
    },
    /// S2.
    Latency,
    /// S3.
    Fanout,
    /// S4.
    ManyProducers,
    /// S5.
    ManyTopics,
    /// S6 without churn, or with.
    Churn(bool),
    /// S7: one consumer thread for the three hops, or (`per_hop`) a thread
    /// per hop.
    Pipeline {
        /// A consumer thread (pinbus: worker) per hop, unpinned.
        per_hop: bool,
    },
    /// S8: spinning waits (pinbus BusySpin worker, rtrb, disruptor), or
    /// (`park`) waits that sleep (pinbus Park worker, crossbeam-channel's
    /// blocking `recv`).
    RoundTrip {
        /// The parking column.
        park: bool,
    },
    /// S9: round trip from a tokio task, pinbus's worker BusySpin or
    /// (`park`) Park; tokio mpsc + oneshot in both columns.
    AsyncRoundTrip {
        /// pinbus's worker parks when idle.
        park: bool,
    },
    /// S9: a task drains a stream of u64 published by a producer thread.
    Stream,
    /// S10: 1P→1S u64 with this many non-matching patterns defined.
    Patterns(usize),
    /// S10: 1 producer → a group of two members, plain or keyed.
    Group {
        /// `group("g").keyed(|v| v % 100)`.
        keyed: bool,
    },
    /// S10: `service.call` round trip, the service's worker BusySpin or
    /// (`park`) Park; crossbeam-channel's blocking pair in both columns.
    ServiceCall {
        /// pinbus's worker parks when idle.
        park: bool,
    },
}

/// The cases of `s`.
pub fn cases(s: Scenario, plan: &Plan) -> Vec<(Case, String)> {
    match s {
        Scenario::S1 => [(false, false), (false, true), (true, false), (true, true)]
            .into_iter()
            .map(|(line, batch)| {
                let name = if line { Line::NAME } else { u64::NAME };
                let label = if batch {
                    format!("{name} batch")
                } else {
                    name.to_string()
                };
                (Case::Throughput { line, batch }, label)
            })
            .collect(),
        Scenario::S2 => vec![(Case::Latency, "u64 paced".into())],
        Scenario::S3 => vec![(Case::Fanout, format!("1→{} per subscriber", plan.fanout))],
        Scenario::S4 => vec![(Case::ManyProducers, format!("{}→1", plan.producers))],
        Scenario::S5 => vec![(
            Case::ManyTopics,
            format!("{} topics, {}P", plan.topics, plan.producers),
        )],
        Scenario::S6 => vec![
            (Case::Churn(false), "without churn".into()),
            (Case::Churn(true), "with churn".into()),
        ],
        Scenario::S7 => vec![
            (
                Case::Pipeline { per_hop: false },
                "3 hops, 1 consumer thread".into(),
            ),
            (
                Case::Pipeline { per_hop: true },
                "3 hops, a thread per hop".into(),
            ),
        ],
        Scenario::S8 => vec![
            (Case::RoundTrip { park: false }, "spinning".into()),
            (Case::RoundTrip { park: true }, "parking".into()),
        ],
        Scenario::S9 => vec![
            (
                Case::AsyncRoundTrip { park: false },
                "round trip, pinbus worker BusySpin".into(),
            ),
            (
                Case::AsyncRoundTrip { park: true },
                "round trip, pinbus worker Park".into(),
            ),
            (Case::Stream, "u64 stream into a task".into()),
        ],
        Scenario::S10 => crate::routing::cases(),
    }
}

/// Whether `peer` has a row in `s` at all: tokio mpsc is S9's async peer
/// only (the other scenarios measure threads, not tasks); S10 measures
/// pinbus's routing against crossbeam-channel only.
pub fn takes_part(peer: Peer, s: Scenario) -> bool {
    match s {
        Scenario::S9 => true,
        Scenario::S10 => matches!(peer, Peer::Pinbus | Peer::Crossbeam),
        _ => peer != Peer::TokioMpsc,
    }
}

/// Why `peer` does not take part in `case`, if it does not.
pub fn not_applicable(peer: Peer, case: &Case) -> Option<&'static str> {
    if let Some(s10) = crate::routing::not_applicable(peer, case) {
        return s10;
    }
    match (case, peer) {
        (Case::Throughput { batch: true, .. }, Peer::Crossbeam | Peer::Flume | Peer::Tokio) => {
            Some("no batch send API")
        }
        (Case::ManyTopics, Peer::Disruptor) => Some(
            "one busy-spinning handler thread per ring: one per topic oversubscribes the cores",
        ),
        (Case::Churn(_), Peer::Crossbeam | Peer::Flume | Peer::Rtrb | Peer::Disruptor) => {
            Some("no subscribe/unsubscribe on a live channel")
        }
        (Case::Pipeline { .. }, Peer::Tokio) => Some("lossy broadcast: a lagging hop drops events"),
        (Case::RoundTrip { .. }, Peer::Flume | Peer::Tokio) => {
            Some("S8 measures crossbeam-channel as the blocking channel")
        }
        (Case::RoundTrip { park: false }, Peer::Crossbeam) => {
            Some("blocking recv: in the parking column")
        }
        (Case::RoundTrip { park: true }, Peer::Disruptor | Peer::Rtrb) => {
            Some("busy-polling: in the spinning column")
        }
        (Case::AsyncRoundTrip { .. }, Peer::Tokio) => {
            Some("a broadcast has no reply path: S9 measures mpsc + oneshot")
        }
        (
            Case::AsyncRoundTrip { .. } | Case::Stream,
            Peer::Disruptor | Peer::Crossbeam | Peer::Flume | Peer::Rtrb,
        ) => Some("no async receive: S9 measures tokio's channels"),
        (_, Peer::TokioMpsc) if !matches!(case, Case::AsyncRoundTrip { .. } | Case::Stream) => {
            Some("S9 only")
        }
        _ => None,
    }
}

/// What one run produced.
#[derive(Clone, Debug)]
pub enum Measured {
    /// A rate.
    Throughput(Throughput),
    /// Percentiles.
    Latency(Latency),
}

/// The warm-up of a sender that sends `measured` events into `rings`
/// rings of `capacity`: a tenth of the run, and at least two laps of every
/// ring, so no page of a ring is first touched in the measured phase.
pub(crate) fn warm_up(measured: u64, capacity: usize, rings: u64) -> u64 {
    (measured / 10).max(2 * capacity as u64 * rings).max(1_000)
}

/// A load of `events` in total over `producers`, each sending into `rings`
/// rings (topics); per-producer counts rounded to a multiple of `unit`.
pub(crate) fn load(ctx: &Ctx, events: u64, producers: u64, rings: u64, unit: u64) -> Load {
    let round = |n: u64| (n / unit).max(1) * unit;
    let measured = round(events / producers);
    Load {
        producers,
        warm: round(warm_up(measured, ctx.capacity, rings)),
        measured,
    }
}

/// Runs `case` once for `peer`.
pub fn run(ctx: &Ctx, plan: &Plan, case: &Case, peer: Peer) -> Res<Measured> {
    match case {
        Case::Throughput { line: false, batch } => s1::<u64>(ctx, plan, peer, *batch),
        Case::Throughput { line: true, batch } => s1::<Line>(ctx, plan, peer, *batch),
        Case::Latency => {
            let count = plan.events(Scenario::S2);
            let warm = warm_up(count, ctx.capacity, 1);
            let rig = match peer {
                Peer::Pinbus => pinbus::latency(ctx, warm)?,
                Peer::Disruptor => disruptor::latency(ctx, warm)?,
                Peer::Crossbeam => channel::latency::<Crossbeam>(ctx, warm)?,
                Peer::Flume => channel::latency::<Flume>(ctx, warm)?,
                Peer::Tokio => channel::latency::<TokioBroadcast>(ctx, warm)?,
                Peer::Rtrb => channel::latency::<Rtrb>(ctx, warm)?,
                Peer::TokioMpsc => return Err("not applicable".into()),
            };
            measure_latency(ctx, rig, warm, count).map(Measured::Latency)
        }
        Case::Fanout => {
            let load = load(ctx, plan.events(Scenario::S3), 1, 1, 1);
            let n = plan.fanout;
            let rig = match peer {
                Peer::Pinbus => pinbus::fanout(ctx, load, n)?,
                Peer::Disruptor => disruptor::fanout(ctx, load, n)?,
                Peer::Crossbeam => channel::fanout::<Crossbeam>(ctx, load, n)?,
                Peer::Flume => channel::fanout::<Flume>(ctx, load, n)?,
                Peer::Tokio => channel::fanout::<TokioBroadcast>(ctx, load, n)?,
                Peer::Rtrb => channel::fanout::<Rtrb>(ctx, load, n)?,
                Peer::TokioMpsc => return Err("not applicable".into()),
            };
            measure::<u64>(ctx, rig, load).map(Measured::Throughput)
        }
        Case::ManyProducers => {
            let load = load(ctx, plan.events(Scenario::S4), plan.producers, 1, 1);
            let rig = match peer {
                Peer::Pinbus => pinbus::many_to_one(ctx, load)?,
                Peer::Disruptor => disruptor::many_to_one(ctx, load)?,
                Peer::Crossbeam => channel::many_to_one::<Crossbeam>(ctx, load)?,
                Peer::Flume => channel::many_to_one::<Flume>(ctx, load)?,
                Peer::Tokio => channel::many_to_one::<TokioBroadcast>(ctx, load)?,
                Peer::Rtrb => channel::many_to_one::<Rtrb>(ctx, load)?,
                Peer::TokioMpsc => return Err("not applicable".into()),
            };
            measure::<u64>(ctx, rig, load).map(Measured::Throughput)
        }
        Case::ManyTopics => {
            let topics = plan.topics;
            let load = load(
                ctx,
                plan.events(Scenario::S5),
                plan.producers,
                topics as u64,
                topics as u64,
            );
            let rig = match peer {
                Peer::Pinbus => pinbus::many_topics(ctx, load, topics)?,
                Peer::Crossbeam => channel::many_topics::<Crossbeam>(ctx, load, topics)?,
                Peer::Flume => channel::many_topics::<Flume>(ctx, load, topics)?,
                Peer::Tokio => channel::many_topics::<TokioBroadcast>(ctx, load, topics)?,
                Peer::Rtrb => channel::many_topics::<Rtrb>(ctx, load, topics)?,
                Peer::Disruptor | Peer::TokioMpsc => return Err("not applicable".into()),
            };
            measure::<u64>(ctx, rig, load).map(Measured::Throughput)
        }
        Case::Churn(churn) => {
            let load = load(ctx, plan.events(Scenario::S6), 1, 1, 1);
            let rig = match peer {
                Peer::Pinbus => pinbus::one_to_one::<u64>(ctx, load, false, *churn)?,
                Peer::Tokio => {
                    channel::one_to_one::<TokioBroadcast, u64>(ctx, load, false, *churn)?
                }
                _ => return Err("not applicable".into()),
            };
            measure::<u64>(ctx, rig, load).map(Measured::Throughput)
        }
        Case::Pipeline { per_hop } => {
            // Three rings per run: warm every one of them.
            let load = load(ctx, plan.events(Scenario::S7), 1, 3, 1);
            let per_hop = *per_hop;
            let rig = match peer {
                Peer::Pinbus => pinbus::pipeline(ctx, load, per_hop)?,
                Peer::Disruptor => disruptor::pipeline(ctx, load, per_hop)?,
                Peer::Crossbeam => channel::pipeline::<Crossbeam>(ctx, load, per_hop)?,
                Peer::Flume => channel::pipeline::<Flume>(ctx, load, per_hop)?,
                Peer::Rtrb => channel::pipeline::<Rtrb>(ctx, load, per_hop)?,
                Peer::Tokio | Peer::TokioMpsc => return Err("not applicable".into()),
            };
            measure::<u64>(ctx, rig, load).map(Measured::Throughput)
        }
        Case::RoundTrip { park } => {
            let count = plan.events(Scenario::S8);
            let warm = round_trip_warm(count);
            let rig = match (peer, park) {
                (Peer::Pinbus, false) => pinbus::round_trip(ctx, ::pinbus::IdleStrategy::BusySpin)?,
                (Peer::Pinbus, true) => pinbus::round_trip(ctx, ::pinbus::IdleStrategy::Park)?,
                (Peer::Disruptor, false) => disruptor::round_trip(ctx)?,
                (Peer::Rtrb, false) => request::rtrb(ctx)?,
                (Peer::Crossbeam, true) => request::crossbeam(ctx)?,
                _ => return Err("not applicable".into()),
            };
            measure_round_trip(ctx, rig, warm, count).map(Measured::Latency)
        }
        Case::AsyncRoundTrip { park } => {
            let count = plan.async_round_trips();
            let (warm, idle) = (round_trip_warm(count), idle(*park));
            match peer {
                Peer::Pinbus => {
                    measure_async_round_trip(ctx, pinbus::async_round_trip(ctx, idle)?, warm, count)
                }
                Peer::TokioMpsc => {
                    measure_async_round_trip(ctx, tokio_async::mpsc_round_trip(ctx)?, warm, count)
                }
                _ => return Err("not applicable".into()),
            }
            .map(Measured::Latency)
        }
        Case::Stream => {
            let load = load(ctx, plan.events(Scenario::S9), 1, 1, 1);
            let rig = match peer {
                Peer::Pinbus => pinbus::stream(ctx, load, STREAM_IDLE)?,
                Peer::TokioMpsc => tokio_async::mpsc_stream(ctx, load)?,
                Peer::Tokio => tokio_async::broadcast_stream(ctx, load)?,
                _ => return Err("not applicable".into()),
            };
            measure::<u64>(ctx, rig, load).map(Measured::Throughput)
        }
        Case::Patterns(_) | Case::Group { .. } | Case::ServiceCall { .. } => {
            crate::routing::run(ctx, plan, case, peer)
        }
    }
}

/// The warm-up of a closed-loop run of `count` round trips: a tenth, at
/// least 1,000.
pub(crate) fn round_trip_warm(count: u64) -> u64 {
    (count / 10).max(1_000)
}

/// pinbus's worker idle strategy of a round-trip column: Park in the
/// parking column (`park`), else BusySpin.
pub(crate) fn idle(park: bool) -> ::pinbus::IdleStrategy {
    if park {
        ::pinbus::IdleStrategy::Park
    } else {
        ::pinbus::IdleStrategy::BusySpin
    }
}

/// The idle strategy of pinbus's worker in S9's stream case: it shares the
/// consumer core with the task, so it must not spin while the task could
/// run (`Park`: it sleeps when idle or waiting for room in the stream).
pub const STREAM_IDLE: ::pinbus::IdleStrategy = ::pinbus::IdleStrategy::Park;

/// S1 for payload `P`.
fn s1<P: Payload>(ctx: &Ctx, plan: &Plan, peer: Peer, batch: bool) -> Res<Measured> {
    let unit = if batch { ctx.batch as u64 } else { 1 };
    let load = load(ctx, plan.events(Scenario::S1), 1, 1, unit);
    let rig = match peer {
        Peer::Pinbus => pinbus::one_to_one::<P>(ctx, load, batch, false)?,
        Peer::Disruptor => disruptor::one_to_one::<P>(ctx, load, batch)?,
        Peer::Crossbeam => channel::one_to_one::<Crossbeam, P>(ctx, load, batch, false)?,
        Peer::Flume => channel::one_to_one::<Flume, P>(ctx, load, batch, false)?,
        Peer::Tokio => channel::one_to_one::<TokioBroadcast, P>(ctx, load, batch, false)?,
        Peer::Rtrb => {
            debug_assert!(<Rtrb as Channel>::BATCH || !batch);
            channel::one_to_one::<Rtrb, P>(ctx, load, batch, false)?
        }
        Peer::TokioMpsc => return Err("not applicable".into()),
    };
    measure::<P>(ctx, rig, load).map(Measured::Throughput)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Ctx {
        Ctx {
            capacity: 1024,
            batch: 64,
            config: None,
            pace_ns: 1_000,
            timeout: std::time::Duration::from_secs(60),
        }
    }

    #[test]
    fn warm_up_laps_every_ring_twice() {
        assert_eq!(warm_up(10, 1024, 1), 2048);
        assert_eq!(warm_up(10, 1024, 8), 16_384);
        assert_eq!(warm_up(1_000_000, 16, 1), 100_000);
    }

    #[test]
    fn loads_round_to_the_unit() {
        let l = load(&ctx(), 1_000_003, 2, 8, 8);
        assert_eq!(l.measured % 8, 0);
        assert_eq!(l.warm % 8, 0);
        let (warm, total) = l.marks(8);
        assert_eq!(total - warm, l.measured * 2 / 8);
    }

    #[test]
    fn every_peer_runs_s1_single() {
        let plan = Plan {
            events: [20_000; 10],
            producers: 2,
            topics: 4,
            fanout: 2,
        };
        let case = Case::Throughput {
            line: false,
            batch: false,
        };
        for peer in Peer::ALL
            .into_iter()
            .filter(|p| takes_part(*p, Scenario::S1))
        {
            match run(&ctx(), &plan, &case, peer) {
                // tokio broadcast drops what a starved receiver has not read
                // (possible on a loaded 2-core box), so every measured event
                // must be handled or counted lost; lossless peers lose none.
                Ok(Measured::Throughput(t)) => {
                    assert_eq!(t.handled + t.lagged, 20_000, "{peer:?}: {t:?}");
                    if peer != Peer::Tokio {
                        assert_eq!(t.lagged, 0, "{peer:?}");
                        assert!(t.rate > 0.0, "{peer:?}");
                    }
                }
                other => panic!("{peer:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn every_applicable_case_runs_once() {
        let plan = Plan {
            events: [
                8_000, 2_000, 8_000, 8_000, 8_000, 8_000, 8_000, 2_000, 200_000, 100_000,
            ],
            producers: 2,
            topics: 4,
            fanout: 2,
        };
        for s in Scenario::ALL {
            for (case, label) in cases(s, &plan) {
                for peer in Peer::ALL.into_iter().filter(|p| takes_part(*p, s)) {
                    if not_applicable(peer, &case).is_none() {
                        if let Err(e) = run(&ctx(), &plan, &case, peer) {
                            panic!("{label} {peer:?}: {e}");
                        }
                    }
                }
            }
        }
    }
}
