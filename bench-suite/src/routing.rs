//! S10, routing (issue 17): what pinbus's routing features cost, each
//! against what a crossbeam-channel user would write by hand where there is
//! such a thing.
//!
//! - patterns: S1's 1P→1S u64 on `bench.orders.x` with no pattern, and with
//!   10 patterns `other.N.>` defined (a subscription each), none matching:
//!   the two rates and their ratio (goal ~1: a pattern that does not match
//!   costs the publish nothing). pinbus only: no peer has wildcard
//!   subscriptions.
//! - groups: 1 producer → a group of two members, plain or keyed by
//!   `v % 100`, same work per event (the suite's count + checksum); the
//!   keyed/plain ratio (goal >= 0.8). Peer of the keyed column:
//!   crossbeam-channel, the producer hashing the key to one of two channels,
//!   each drained by its own consumer thread.
//! - request/reply: `service.call(v)` (one member answering `v + 1`), worker
//!   BusySpin or Park, against crossbeam-channel's request/response pair
//!   (S8's, blocking `recv`) measured again beside each.

use crate::harness::{measure, measure_round_trip, Ctx, Res};
use crate::peers::channel;
use crate::peers::mpmc::Crossbeam;
use crate::peers::{pinbus, request, Peer};
use crate::report::{ratio, Outcome, ScenarioResult};
use crate::scenarios::{idle, load, round_trip_warm, Case, Measured, Plan, Scenario};

/// The patterns defined in the patterns case with patterns.
pub const PATTERNS: usize = 10;

/// S10's cases, in table order.
pub fn cases() -> Vec<(Case, String)> {
    vec![
        (Case::Patterns(0), "u64, 0 patterns".into()),
        (
            Case::Patterns(PATTERNS),
            format!("u64, {PATTERNS} patterns (none match)"),
        ),
        (Case::Group { keyed: false }, "plain group of 2".into()),
        (
            Case::Group { keyed: true },
            "keyed group of 2 (v % 100)".into(),
        ),
        (
            Case::ServiceCall { park: false },
            "call, pinbus worker BusySpin".into(),
        ),
        (
            Case::ServiceCall { park: true },
            "call, pinbus worker Park".into(),
        ),
    ]
}

/// `Some(reason)` if `case` is S10's and `peer` sits it out, `Some(None)`
/// if it takes part, `None` for another scenario's case.
pub fn not_applicable(peer: Peer, case: &Case) -> Option<Option<&'static str>> {
    let reason = match (case, peer) {
        (Case::Patterns(_), Peer::Pinbus) => None,
        (Case::Patterns(_), _) => Some("no wildcard subscriptions: no peer has them"),
        (Case::Group { keyed: false }, Peer::Crossbeam) => {
            Some("measured in the keyed column only: a channel per key hash")
        }
        (Case::Group { .. } | Case::ServiceCall { .. }, Peer::Pinbus | Peer::Crossbeam) => None,
        (Case::Group { .. } | Case::ServiceCall { .. }, _) => Some("S10: crossbeam-channel only"),
        _ => return None,
    };
    Some(reason)
}

/// Runs one of S10's cases once for `peer`.
pub fn run(ctx: &Ctx, plan: &Plan, case: &Case, peer: Peer) -> Res<Measured> {
    let events = plan.events(Scenario::S10);
    match (case, peer) {
        (Case::Patterns(n), Peer::Pinbus) => {
            let load = load(ctx, events, 1, 1, 1);
            measure::<u64>(ctx, pinbus::patterns(ctx, load, *n)?, load).map(Measured::Throughput)
        }
        (Case::Group { keyed }, Peer::Pinbus | Peer::Crossbeam) => {
            let load = load(ctx, events, 1, 2, 1);
            let rig = match peer {
                Peer::Pinbus => pinbus::group(ctx, load, *keyed)?,
                _ if *keyed => channel::keyed::<Crossbeam>(ctx, load, 2)?,
                _ => return Err("not applicable".into()),
            };
            measure::<u64>(ctx, rig, load).map(Measured::Throughput)
        }
        (Case::ServiceCall { park }, Peer::Pinbus | Peer::Crossbeam) => {
            let count = plan.service_calls();
            let rig = match peer {
                Peer::Pinbus => pinbus::service_call(ctx, idle(*park))?,
                _ => request::crossbeam(ctx)?,
            };
            measure_round_trip(ctx, rig, round_trip_warm(count), count).map(Measured::Latency)
        }
        _ => Err("not applicable".into()),
    }
}

/// pinbus's median rate in the case labelled `label`.
fn pinbus_rate(s: &ScenarioResult, case: &Case) -> Option<f64> {
    let label = cases().into_iter().find(|(c, _)| c == case)?.1;
    let c = s.cases.iter().find(|c| c.label == label)?;
    c.results
        .iter()
        .find(|r| r.peer == "pinbus")?
        .outcome
        .rate()
}

/// The notes under S10's tables: the two pinbus ratios the issue asks for,
/// and where S8's figures stand (`s8`: S8's result, if it ran too).
pub fn notes(s: &ScenarioResult, s8: Option<&ScenarioResult>) -> Vec<String> {
    let mut notes = Vec::new();
    let pair = |a: &Case, b: &Case| Some(pinbus_rate(s, b)? / pinbus_rate(s, a)?);
    if let Some(r) = pair(&Case::Patterns(0), &Case::Patterns(PATTERNS)) {
        notes.push(format!(
            "pinbus {PATTERNS} patterns / 0 patterns: {} (goal ~1: patterns that do not match \
             the topic are not on its publish path); no peer has wildcard subscriptions",
            ratio(r)
        ));
    }
    if let Some(r) = pair(&Case::Group { keyed: false }, &Case::Group { keyed: true }) {
        notes.push(format!(
            "pinbus keyed group / plain group: {} (goal >= 0.8); both groups' members on one \
             BusySpin worker; crossbeam-channel: the producer hashes the key to one of 2 \
             channels, a consumer thread each (unpinned and yielding with fewer than 2 spare cores)",
            ratio(r)
        ));
    }
    let s8_line = s8.and_then(|s8| {
        let c = s8.cases.iter().find(|c| c.label == "spinning")?;
        match &c.results.iter().find(|r| r.peer == "pinbus")?.outcome {
            Outcome::Latency { median, .. } => Some(format!(
                "p50 {} · p99 {} in this run",
                crate::report::nanos(median.p50),
                crate::report::nanos(median.p99)
            )),
            _ => None,
        }
    });
    notes.push(format!(
        "call: a reply value back (`Service::call`); S8's pinbus publish_and_wait (spinning \
         column) is the same round trip without a reply value: {}",
        s8_line.unwrap_or_else(|| "run `--scenario S8,S10` to have it beside".into())
    ));
    notes
}
