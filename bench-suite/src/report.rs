//! The results of a suite run: medians, the tables printed on stdout, and
//! the JSON written by `--json`.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::harness::{Latency, Throughput};
use crate::scenarios::{Plan, Scenario};

/// Everything a run measured, as written by `--json`.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The machine and placement.
    pub machine: Machine,
    /// The settings of the run.
    pub settings: Settings,
    /// One entry per scenario run.
    pub scenarios: Vec<ScenarioResult>,
    /// Wall time of the whole suite.
    pub elapsed_s: f64,
}

/// Where the suite ran.
#[derive(Debug, Serialize)]
pub struct Machine {
    /// Cores the process could use at start.
    pub cores: Vec<usize>,
    /// Core of producer 0 (none with one core).
    pub producer_core: Option<usize>,
    /// Core of the consumer / pinbus worker.
    pub consumer_core: Option<usize>,
    /// Share of CPU time other work used just before the suite started
    /// (Linux `/proc/stat`, over 300 ms), in percent.
    pub busy_at_start_pct: Option<f64>,
}

/// The settings of the run.
#[derive(Debug, Serialize)]
pub struct Settings {
    /// `--quick`.
    pub quick: bool,
    /// Runs per measurement (the median is reported).
    pub runs: usize,
    /// Capacity of every ring / channel / lane.
    pub capacity: usize,
    /// Batch size of the batch cases.
    pub batch: usize,
    /// Pause between sends in S2.
    pub pace_ns: u64,
    /// Event counts and topology.
    pub plan: Plan,
    /// The pinbus config file, if any.
    pub config: Option<String>,
    /// Peers measured.
    pub peers: Vec<&'static str>,
}

/// The results of one scenario.
#[derive(Debug, Serialize)]
pub struct ScenarioResult {
    /// `"S1"` ...
    pub id: &'static str,
    /// What it measures.
    pub title: String,
    /// Its cases (table columns).
    pub cases: Vec<CaseResult>,
    /// `Engine::metrics` of the scenario's last pinbus run, taken after its
    /// engine shut down (final counts).
    pub pinbus_metrics: Option<pinbus::Metrics>,
    /// Derived figures printed under the tables (S10: its same-run ratios).
    pub notes: Vec<String>,
}

/// One line summing up a pinbus engine's metrics snapshot.
pub fn metrics_line(m: &pinbus::Metrics) -> String {
    let published: u64 = m.topics.iter().map(|t| t.published).sum();
    let handled: u64 = m.subscriptions.iter().map(|s| s.handled).sum();
    let failed: u64 = m.subscriptions.iter().map(|s| s.failed).sum();
    let lag = m.subscriptions.iter().map(|s| s.lag).max().unwrap_or(0);
    let busy: Vec<String> = m
        .workers
        .iter()
        .map(|w| format!("{:.0}%", 100.0 * w.busy_share))
        .collect();
    format!(
        "pinbus engine metrics (last run): {published} published, {handled} handled, \
         {failed} failed, lag {lag} at shutdown, worker busy share [{}]",
        busy.join(", ")
    )
}

/// The results of one case for every peer.
#[derive(Debug, Serialize)]
pub struct CaseResult {
    /// Column label.
    pub label: String,
    /// One entry per peer.
    pub results: Vec<PeerResult>,
}

/// One peer's result in one case.
#[derive(Debug, Serialize)]
pub struct PeerResult {
    /// Peer name.
    pub peer: &'static str,
    /// What came out.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// What a measurement came to.
#[derive(Debug, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// Throughput: the median run and every run's rate.
    Throughput {
        /// The run with the median rate.
        median: Throughput,
        /// Rate of each run, events/s.
        runs: Vec<f64>,
    },
    /// Latency: per-percentile medians and every run.
    Latency {
        /// Median of each field over the runs.
        median: Latency,
        /// Each run.
        runs: Vec<Latency>,
    },
    /// The peer does not take part in this case.
    NotApplicable {
        /// Why.
        reason: String,
    },
    /// The measurement failed.
    Failed {
        /// The error.
        error: String,
    },
}

impl Outcome {
    /// Median of throughput runs.
    pub fn throughput(mut runs: Vec<Throughput>) -> Outcome {
        let rates = runs.iter().map(|t| t.rate).collect();
        runs.sort_by(|a, b| a.rate.total_cmp(&b.rate));
        let median = runs.swap_remove(runs.len() / 2);
        Outcome::Throughput {
            median,
            runs: rates,
        }
    }

    /// Per-field median of latency runs.
    pub fn latency(runs: Vec<Latency>) -> Outcome {
        fn med<T: Copy + PartialOrd>(mut v: Vec<T>) -> T {
            v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
            v[v.len() / 2]
        }
        let median = Latency {
            p50: med(runs.iter().map(|l| l.p50).collect()),
            p99: med(runs.iter().map(|l| l.p99).collect()),
            p999: med(runs.iter().map(|l| l.p999).collect()),
            max: med(runs.iter().map(|l| l.max).collect()),
            mean: med(runs.iter().map(|l| l.mean).collect()),
            samples: med(runs.iter().map(|l| l.samples).collect()),
        };
        Outcome::Latency { median, runs }
    }

    /// The median rate, if a throughput.
    pub fn rate(&self) -> Option<f64> {
        match self {
            Outcome::Throughput { median, .. } => Some(median.rate),
            _ => None,
        }
    }
}

impl CaseResult {
    /// pinbus's outcome in this case.
    fn pinbus(&self) -> Option<&Outcome> {
        self.results
            .iter()
            .find(|r| r.peer == "pinbus")
            .map(|r| &r.outcome)
    }
}

/// `12.3 M/s`.
pub fn rate(r: f64) -> String {
    let m = r / 1e6;
    if m >= 100.0 {
        format!("{m:.0} M/s")
    } else if m >= 10.0 {
        format!("{m:.1} M/s")
    } else {
        format!("{m:.2} M/s")
    }
}

/// `1.35×`, `0.042×`.
pub fn ratio(r: f64) -> String {
    if r >= 0.1 {
        format!("{r:.2}×")
    } else {
        format!("{r:.3}×")
    }
}

/// `135 ns`, `3.2 µs`, `1.05 ms`.
pub fn nanos(ns: u64) -> String {
    let f = ns as f64;
    if ns < 1_000 {
        format!("{ns} ns")
    } else if ns < 1_000_000 {
        format!("{:.1} µs", f / 1e3)
    } else {
        format!("{:.2} ms", f / 1e6)
    }
}

/// Prints `text` as a markdown table with right-aligned value columns.
fn table(header: &[String], rows: &[Vec<String>]) -> String {
    let cols = header.len();
    let mut width = vec![0; cols];
    for row in std::iter::once(header).chain(rows.iter().map(Vec::as_slice)) {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, row: &[String]| {
        out.push('|');
        for (i, (cell, w)) in row.iter().zip(&width).enumerate() {
            let pad = w - cell.chars().count();
            if i == 0 {
                let _ = write!(out, " {cell}{} |", " ".repeat(pad));
            } else {
                let _ = write!(out, " {}{cell} |", " ".repeat(pad));
            }
        }
        out.push('\n');
    };
    line(&mut out, header);
    out.push('|');
    for (i, w) in width.iter().enumerate() {
        let dashes = "-".repeat(*w);
        if i == 0 {
            let _ = write!(out, " {dashes} |");
        } else {
            let _ = write!(out, " {}: |", &dashes[1..]);
        }
    }
    out.push('\n');
    for row in rows {
        line(&mut out, row);
    }
    out
}

/// Whether `case` measured latency (else it is a throughput column).
fn is_latency(case: &CaseResult) -> bool {
    case.results
        .iter()
        .any(|r| matches!(r.outcome, Outcome::Latency { .. }))
}

/// Renders one scenario's tables and notes: a latency table for its latency
/// cases and a throughput table for the others (S9 has both).
pub fn render(s: &ScenarioResult, peers: &[&'static str]) -> String {
    let mut out = format!("\n### {} — {}\n\n", s.id, s.title);
    let mut notes: Vec<String> = Vec::new();
    let mut note = |n: String| {
        if !notes.contains(&n) {
            notes.push(n);
        }
    };
    let (lat_cases, tp_cases): (Vec<&CaseResult>, Vec<&CaseResult>) =
        s.cases.iter().partition(|c| is_latency(c));
    if !lat_cases.is_empty() {
        let header: Vec<String> = ["peer", "p50", "p99", "p99.9", "max", "p50 peer/pinbus"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let many = lat_cases.len() > 1;
        let mut rows = Vec::new();
        for case in &lat_cases {
            let base = match case.pinbus() {
                Some(Outcome::Latency { median, .. }) => Some(median.p50),
                _ => None,
            };
            for r in &case.results {
                let name = if many {
                    format!("{} · {}", r.peer, case.label)
                } else {
                    r.peer.to_string()
                };
                if many && matches!(r.outcome, Outcome::NotApplicable { .. }) {
                    // The peer has its row in the other column.
                    continue;
                }
                let row = match &r.outcome {
                    Outcome::Latency { median: l, .. } => vec![
                        name,
                        nanos(l.p50),
                        nanos(l.p99),
                        nanos(l.p999),
                        nanos(l.max),
                        match (base, r.peer) {
                            (_, "pinbus") => "1.00×".into(),
                            (Some(b), _) if b > 0 => ratio(l.p50 as f64 / b as f64),
                            _ => "-".into(),
                        },
                    ],
                    other => {
                        let cell = short(other, &mut note, r.peer);
                        vec![name, cell, "".into(), "".into(), "".into(), "".into()]
                    }
                };
                rows.push(row);
            }
        }
        out += &table(&header, &rows);
        out += "\n(p50 peer/pinbus > 1: pinbus has the lower median latency)\n";
    }
    if !tp_cases.is_empty() {
        if !lat_cases.is_empty() {
            out.push('\n');
        }
        let churn = s.id == "S6";
        let mut header = vec!["peer".to_string()];
        header.extend(tp_cases.iter().map(|c| c.label.clone()));
        if churn {
            header.push("drop with churn".into());
            header.push("churn cycles/s".into());
        }
        let mut rows = Vec::new();
        for peer in peers {
            let mut row = vec![peer.to_string()];
            let mut rates = Vec::new();
            let mut churn_rate = None;
            for case in &tp_cases {
                let Some(r) = case.results.iter().find(|r| r.peer == *peer) else {
                    row.push("".into());
                    continue;
                };
                let cell = match &r.outcome {
                    Outcome::Throughput { median, .. } => {
                        rates.push(median.rate);
                        if let Some(c) = median.churn_per_s {
                            churn_rate = Some(c);
                        }
                        let mut cell = rate(median.rate);
                        let base = case.pinbus().and_then(Outcome::rate);
                        if let (Some(b), false) = (base, *peer == "pinbus") {
                            let _ = write!(cell, " ({})", ratio(b / median.rate));
                        }
                        if median.lagged > 0 {
                            let lost = median.lagged as f64
                                / (median.lagged + median.handled) as f64
                                * 100.0;
                            if lost >= 1.0 {
                                let _ = write!(cell, " lost {lost:.0}%");
                            } else {
                                let _ = write!(cell, " lost {lost:.2}%");
                            }
                            note(format!(
                                "{peer}: 'lost N%' = events overwritten before they were read (RecvError::Lagged); the rate counts delivered events only"
                            ));
                        }
                        cell
                    }
                    other => short(other, &mut note, peer),
                };
                row.push(cell);
            }
            if churn {
                row.push(match rates.as_slice() {
                    [without, with] => format!("{:.1}%", (1.0 - with / without) * 100.0),
                    _ => "".into(),
                });
                row.push(churn_rate.map_or("".into(), |c| format!("{c:.0}")));
            }
            if !lat_cases.is_empty() && all_na(&row) {
                // Not in any of these columns: its reason is in the notes
                // (S9: the latency columns' peers are not all stream peers).
                continue;
            }
            rows.push(row);
        }
        out += &table(&header, &rows);
        out += "\n(N×) = pinbus / peer in the same column: above 1, pinbus is faster.\n";
    }
    if s.id == "S9" {
        note(
            "stream: pinbus (EventStream) and tokio-mpsc are lossless (a full buffer makes the \
             producer wait); tokio-broadcast is lossy (a lagging receiver loses the oldest events, \
             counted 'lost', and its send never waits), so its rate is not a like-for-like figure"
                .into(),
        );
        note(
            "round trip: tokio-mpsc's server task parks its runtime thread when idle in both \
             columns; it is measured again in each, so each ratio is to a run beside it"
                .into(),
        );
    }
    for n in notes {
        out += &format!("- {n}\n");
    }
    out
}

/// Whether a table row has only `n/a` cells (and is dropped when the
/// scenario mixes tables: S9's latency-only peers).
fn all_na(row: &[String]) -> bool {
    row.len() > 1 && row[1..].iter().all(|c| c == "n/a")
}

/// A cell for a non-measurement, noting the reason.
fn short(o: &Outcome, note: &mut impl FnMut(String), peer: &str) -> String {
    match o {
        Outcome::NotApplicable { reason } => {
            note(format!("{peer}: n/a ({reason})"));
            "n/a".into()
        }
        Outcome::Failed { error } => {
            note(format!("{peer}: failed: {error}"));
            "failed".into()
        }
        _ => "".into(),
    }
}

/// The line on pinbus's allocations during S1's measured phase.
pub fn allocations(s: &ScenarioResult) -> Option<String> {
    let mut parts = Vec::new();
    for case in &s.cases {
        if let Some(Outcome::Throughput { median, .. }) = case.pinbus() {
            let published = median.handled;
            parts.push(format!(
                "{}: {:.6}/publish ({} in {})",
                case.label, median.allocations_per_publish, median.allocations, published
            ));
        }
    }
    (!parts.is_empty()).then(|| {
        format!(
            "pinbus allocations during the measured phase (goal 0): {}",
            parts.join(" · ")
        )
    })
}

/// Title of a scenario for the tables.
pub fn title(s: Scenario, plan: &Plan) -> String {
    match s {
        Scenario::S1 => "throughput, 1 producer → 1 subscriber (events handled/s)".into(),
        Scenario::S2 => "one-way latency under paced load (u64 send timestamp)".into(),
        Scenario::S3 => format!(
            "fan-out, 1 producer → {} subscribers (delivered events/s per subscriber)",
            plan.fanout
        ),
        Scenario::S4 => format!(
            "{} producers → 1 subscriber (events handled/s)",
            plan.producers
        ),
        Scenario::S5 => format!(
            "{} topics over all workers, {} producer(s) round-robin (events handled/s, all topics)",
            plan.topics, plan.producers
        ),
        Scenario::S6 => {
            "1P→1S publisher throughput while another thread subscribes/unsubscribes (~1k/s)".into()
        }
        Scenario::S7 => "pipeline a → b → c, 3 hops (events/s through the last hop); \
             pinbus: workers(1) BusySpin pinned | workers(3) BusySpin unpinned, a topic each"
            .into(),
        Scenario::S8 => "request round trip, closed loop (send → reply); \
             pinbus: publish_and_wait, workers(1) pinned, BusySpin (spinning) | Park (parking)"
            .into(),
        Scenario::S9 => "async, tasks on tokio current-thread runtimes: round trip from a task \
             (pinbus: publish_tracked + receipt.await; tokio: mpsc request + oneshot reply) \
             and a u64 stream into a task (events handled/s)"
            .into(),
        Scenario::S10 => "routing (issue 17): publish with 0 | 10 non-matching patterns, \
             plain | keyed group of 2 (events handled/s), service.call round trip"
            .into(),
    }
}

/// Writes the report as JSON to `path`.
pub fn write_json(report: &Report, path: &Path) -> Result<(), String> {
    let text = serde_json::to_string_pretty(report).map_err(|e| format!("JSON: {e}"))?;
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(rate(123.4e6), "123 M/s");
        assert_eq!(rate(12.34e6), "12.3 M/s");
        assert_eq!(nanos(135), "135 ns");
        assert_eq!(nanos(3_200), "3.2 µs");
        assert_eq!(ratio(1.349), "1.35×");
        assert_eq!(ratio(0.0421), "0.042×");
    }

    #[test]
    fn a_scenario_with_both_kinds_renders_both_tables() {
        let lat = Latency {
            p50: 1_000,
            p99: 2_000,
            p999: 3_000,
            max: 4_000,
            mean: 1_100.0,
            samples: 10,
        };
        let tp = Throughput {
            rate: 1e6,
            handled: 10,
            secs: 1e-5,
            lagged: 0,
            allocations: 0,
            allocations_per_publish: 0.0,
            churn_per_s: None,
        };
        let s = ScenarioResult {
            id: "S9",
            title: "t".into(),
            cases: vec![
                CaseResult {
                    label: "round trip".into(),
                    results: vec![
                        PeerResult {
                            peer: "pinbus",
                            outcome: Outcome::latency(vec![lat.clone()]),
                        },
                        PeerResult {
                            peer: "rtrb",
                            outcome: Outcome::NotApplicable { reason: "r".into() },
                        },
                    ],
                },
                CaseResult {
                    label: "stream".into(),
                    results: vec![
                        PeerResult {
                            peer: "pinbus",
                            outcome: Outcome::throughput(vec![tp]),
                        },
                        PeerResult {
                            peer: "rtrb",
                            outcome: Outcome::NotApplicable { reason: "r".into() },
                        },
                    ],
                },
            ],
            pinbus_metrics: None,
            notes: Vec::new(),
        };
        let out = render(&s, &["pinbus", "rtrb"]);
        assert!(out.contains("| p50 "), "{out}");
        assert!(out.contains("1.0 µs"), "{out}");
        assert!(out.contains("1.00 M/s"), "{out}");
        // n/a in every throughput column of a mixed scenario: no row there
        // (its single-column latency table keeps it), a note.
        assert_eq!(out.matches("| rtrb ").count(), 1, "{out}");
        assert!(out.contains("rtrb: n/a (r)"), "{out}");
    }

    #[test]
    fn tables_align() {
        let t = table(
            &["peer".into(), "x".into()],
            &[vec!["pinbus".into(), "1.0 M/s".into()]],
        );
        let widths: Vec<usize> = t.lines().map(|l| l.chars().count()).collect();
        assert!(widths.windows(2).all(|w| w[0] == w[1]), "{t}");
    }
}
