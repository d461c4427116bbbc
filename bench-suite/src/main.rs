//! `pinbus-bench`: the macro benchmark of pinbus against its peers
//! (crossbeam-channel, flume, the `disruptor` crate, tokio broadcast and the
//! raw SPSC ring rtrb; tokio mpsc in the async scenario S9), every peer measured in the same process run with the
//! same payload, capacity and pinning.
//!
//! ```text
//! cargo run --release -p bench-suite -- --quick --json suite.json --plot plots/
//! ```

mod alloc;
mod cores;
mod harness;
mod payload;
mod peers;
mod plot;
mod probe;
mod report;
mod routing;
mod scenarios;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;

use harness::{Ctx, Res};
use peers::Peer;
use report::{CaseResult, Machine, Outcome, PeerResult, Report, ScenarioResult, Settings};
use scenarios::{Measured, Plan, Scenario};

#[global_allocator]
static GLOBAL: alloc::CountingMiMalloc = alloc::CountingMiMalloc;

/// The scenarios, for `--help`.
const SCENARIOS: &str = "\
Scenarios (each runs pinbus and every selected peer in this process):
  S1  Throughput, 1 producer -> 1 subscriber: u64 and 64-byte ([u64;8])
      payloads, single publish and batch publish (pinbus publish_batch,
      disruptor batch_publish, rtrb write_chunk; n/a for peers without a
      batch API). Also reports pinbus's allocations per publish (goal 0).
  S2  One-way latency under paced load: one event every --pace-ns carrying
      its send time (u64 ns since a shared Instant); the consumer records
      now - sent in an HDR histogram: p50 / p99 / p99.9 / max.
  S3  Fan-out, 1 producer -> --fanout subscribers that each see every event:
      delivered events/s per subscriber. pinbus: all subscribers on one topic
      on ONE worker (one push serves all); crossbeam/flume/rtrb: one channel
      per consumer (the producer sends to each); disruptor: N handlers on one
      ring; tokio: one broadcast channel with N receivers. Peer consumers are
      unpinned threads (more threads than cores).
  S4  --producers producers -> 1 subscriber: total events/s (rtrb: one ring
      per producer, the consumer polls them all).
  S5  --topics topics spread over all workers (pinbus: one worker per core
      but the first; peers: one consumer thread per such core polling its
      channels), --producers producers publishing round-robin over topics.
  S6  1P->1S publisher throughput while another thread subscribes and
      unsubscribes a second subscriber about every millisecond, against the
      same run without churn: drop %. (pinbus, tokio broadcast.)
  S7  Pipeline a -> b -> c, 3 hops: events/s through the last hop. pinbus:
      three topics, a's handler publishes each event to b, b's to c, c's
      counts. Column '1 consumer thread': pinbus workers(1) BusySpin pinned
      (or --config); crossbeam/flume/rtrb: one pinned thread polls the three
      channels, moving up to 256 events per channel per pass; disruptor: one
      ring, three dependent EventPollers (and_then) polled by one pinned
      thread. Column 'a thread per hop': pinbus workers(3) BusySpin unpinned,
      a topic per worker; channel peers: three unpinned spinning threads;
      disruptor: its handler chain (handle_events_with, and_then) on three
      managed threads, unpinned. (tokio broadcast: n/a, lossy.)
  S8  Request round trip, closed loop, client pinned like the producer,
      server like the consumer: p50 / p99 / p99.9 / max of send -> reply.
      pinbus: publish_and_wait to a subscriber doing trivial work, worker
      BusySpin (spinning column) or Park (parking column); disruptor: a
      request ring whose handler publishes into a reply ring the client
      busy-polls; rtrb: two rings, both ends busy-poll; crossbeam-channel:
      two bounded channels, blocking recv on both ends (parking column).
  S9  Async, every task on a tokio current-thread runtime of its own thread.
      Round trip (closed loop, p50 / p99 / p99.9 / max): a client task on the
      producer core; pinbus: publish_tracked(v)? then receipt.await, the
      subscriber a plain handler doing black_box on one worker on the
      consumer core, BusySpin or Park (a column each); tokio-mpsc: a bounded
      mpsc request carrying a oneshot sender to a server task on the
      consumer core that black_boxes the value and replies (measured again in
      each column). Round trips: --events / 100 (at least 1,000).
      Stream: a producer thread sends u64s, a task on the consumer core
      drains them into the tally. pinbus: publish on a Block topic,
      subscribe_stream() + StreamExt::next (its worker, BusySpin, shares the
      consumer core with the task); tokio-mpsc: bounded, blocking_send ->
      recv().await; tokio-broadcast: send -> recv().await, Lagged counted as
      lost (broadcast is lossy; pinbus and mpsc are lossless).
  S10 Routing (issue 17), pinbus against crossbeam-channel. Patterns: S1's
      u64 1P->1S on bench.orders.x with 0 and with 10 patterns other.N.>
      defined (a subscription each, none matching): both rates and 10/0
      (goal ~1; pinbus only, no peer has wildcards). Groups: 1 producer ->
      a group of 2 members on one BusySpin worker, plain or keyed by v % 100:
      rates and keyed/plain (goal >= 0.8); crossbeam-channel in the keyed
      column: the producer hashes the key to one of 2 channels, a consumer
      thread each. Request/reply: service.call(v), one member answering
      v + 1, worker BusySpin or Park (a column each), p50 / p99 / p99.9 /
      max, against S8's crossbeam-channel pair measured again in each
      column; calls: --events / 100 (at least 1,000).

Throughput is events handled by the consumer(s) per second, from the first
measured send to the last event handled, after a warm-up. Producers are pinned
to the first core(s), consumers / pinbus workers to the last; capacity
--capacity everywhere; each figure is the median of --runs runs.";

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "pinbus-bench",
    version,
    about = "Macro benchmark: pinbus against crossbeam-channel, flume, disruptor, tokio broadcast and mpsc, and rtrb",
    after_long_help = SCENARIOS,
    after_help = "Run with --help for a description of every scenario."
)]
struct Cli {
    /// Small event counts and 1 run each: the whole suite in about a minute.
    #[arg(long)]
    quick: bool,

    /// Scenarios to run, comma-separated (default: all).
    #[arg(long, value_delimiter = ',', ignore_case = true)]
    scenario: Vec<Scenario>,

    /// Peers to run besides pinbus, comma-separated (default: all).
    #[arg(long, value_delimiter = ',', ignore_case = true)]
    peers: Vec<Peer>,

    /// Measured events per case, overriding every scenario's default
    /// (S2: latency samples, S8: round trips, S9: stream events, and a
    /// hundredth of them as S9's round trips).
    #[arg(long, value_name = "N")]
    events: Option<u64>,

    /// Runs per measurement; the median is reported (default 3, 1 with --quick).
    #[arg(long, value_name = "N")]
    runs: Option<usize>,

    /// Producers in S4 and S5.
    #[arg(long, default_value_t = 2, value_name = "N")]
    producers: u64,

    /// Topics in S5.
    #[arg(long, default_value_t = 8, value_name = "N")]
    topics: usize,

    /// Subscribers in S3.
    #[arg(long, default_value_t = 4, value_name = "N")]
    fanout: usize,

    /// Events per batch in the S1 batch cases.
    #[arg(long, default_value_t = 256, value_name = "N")]
    batch: usize,

    /// Capacity of every ring, channel and pinbus lane (a power of two).
    #[arg(long, default_value_t = 65_536, value_name = "N")]
    capacity: usize,

    /// Nanoseconds between two sends in S2.
    #[arg(long, default_value_t = 1_500, value_name = "NS")]
    pace_ns: u64,

    /// A pinbus TOML config: pinbus engines take workers, pinning, idle
    /// strategy and lane capacity from it instead of the built-in setup.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Write every result as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,

    /// Write SVG bar charts into DIR (created if missing).
    #[arg(long, value_name = "DIR")]
    plot: Option<PathBuf>,
}

/// Loads the pinbus configuration given with `--config`.
fn load_config(path: &std::path::Path) -> Res<pinbus::Config> {
    let config = pinbus::Config::from_toml_file(path)
        .map_err(|e| format!("--config {}: {e}", path.display()))?;
    // Build one engine now, so a config this machine cannot run fails here.
    let engine = pinbus::Engine::from_config(config.clone())
        .map_err(|e| format!("--config {}: {e}", path.display()))?;
    engine.shutdown();
    Ok(config)
}

/// Total and idle CPU time so far (Linux `/proc/stat`, all cores).
fn cpu_times() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let idle = fields.get(3)? + fields.get(4).unwrap_or(&0);
    Some((fields.iter().sum(), idle))
}

/// Percent of CPU time used (by anything) over the next 300 ms.
fn busy_now() -> Option<f64> {
    let (t0, i0) = cpu_times()?;
    std::thread::sleep(Duration::from_millis(300));
    let (t1, i1) = cpu_times()?;
    let total = t1.checked_sub(t0).filter(|t| *t > 0)?;
    Some(100.0 * (1.0 - (i1.saturating_sub(i0)) as f64 / total as f64))
}

/// Checks the flags that clap cannot.
fn validate(cli: &Cli) -> Res<()> {
    if !cli.capacity.is_power_of_two() || cli.capacity < 2 {
        return Err(format!(
            "--capacity {} is not a power of two of at least 2; try {}",
            cli.capacity,
            cli.capacity.max(2).next_power_of_two()
        ));
    }
    if cli.capacity > 1 << 24 {
        return Err(format!("--capacity {} is above 16777216", cli.capacity));
    }
    if cli.batch == 0 || cli.batch > cli.capacity {
        return Err(format!(
            "--batch {} must be between 1 and --capacity ({})",
            cli.batch, cli.capacity
        ));
    }
    for (name, v, max) in [
        ("--producers", cli.producers as usize, 64),
        ("--topics", cli.topics, 256),
        ("--fanout", cli.fanout, 64),
    ] {
        if v == 0 || v > max {
            return Err(format!("{name} {v} must be between 1 and {max}"));
        }
    }
    if let Some(r) = cli.runs {
        if r == 0 || r > 99 {
            return Err(format!("--runs {r} must be between 1 and 99"));
        }
    }
    if let Some(e) = cli.events {
        let least = 1_000 * cli.producers.max(cli.topics as u64);
        if e < least || e > 1 << 34 {
            return Err(format!(
                "--events {e} must be between {least} and {}",
                1u64 << 34
            ));
        }
    }
    if cli.pace_ns > 1_000_000_000 {
        return Err(format!("--pace-ns {} is above one second", cli.pace_ns));
    }
    Ok(())
}

/// The stderr progress line.
struct Progress {
    /// Measurements planned.
    total: usize,
    /// Measurements finished.
    done: usize,
    /// Whether stderr is a terminal (then the line is redrawn in place).
    tty: bool,
}

impl Progress {
    /// Shows the measurement about to run.
    fn show(&mut self, what: &str) {
        let line = format!("[{}/{}] {what} …", self.done + 1, self.total);
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[2K{line}");
        } else {
            let _ = writeln!(err, "{line}");
        }
        let _ = err.flush();
    }

    /// Clears the line before a table is printed.
    fn finish(&mut self) {
        if self.tty {
            eprint!("\r\x1b[2K");
        }
    }
}

/// Reads the cores before anything is pinned, then runs the suite.
fn main() -> ExitCode {
    cores::init();
    let _ = probe::now_ns();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pinbus-bench: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the suite.
fn run(cli: Cli) -> Res<()> {
    validate(&cli)?;
    let begin = Instant::now();
    let config = cli.config.as_deref().map(load_config).transpose()?;
    let runs = cli.runs.unwrap_or(if cli.quick { 1 } else { 3 });
    let scenarios: Vec<Scenario> = if cli.scenario.is_empty() {
        Scenario::ALL.to_vec()
    } else {
        let mut s = cli.scenario.clone();
        s.sort();
        s.dedup();
        s
    };
    let peers: Vec<Peer> = Peer::ALL
        .into_iter()
        .filter(|p| *p == Peer::Pinbus || cli.peers.is_empty() || cli.peers.contains(p))
        .collect();
    // Measured events per scenario: S1 S2 S3 S4 S5 S6 S7 S8 S9 S10 (S2:
    // samples, S8: round trips, S9: stream events; its round trips are a
    // hundredth of them; S10: throughput events, a hundredth as calls).
    let mut events = if cli.quick {
        [
            10_000_000, 100_000, 2_000_000, 8_000_000, 8_000_000, 10_000_000, 2_000_000, 20_000,
            2_000_000, 10_000_000,
        ]
    } else {
        [
            40_000_000, 400_000, 8_000_000, 30_000_000, 30_000_000, 40_000_000, 10_000_000,
            100_000, 10_000_000, 20_000_000,
        ]
    };
    if let Some(e) = cli.events {
        events = [e; 10];
    }
    let plan = Plan {
        events,
        producers: cli.producers,
        topics: cli.topics,
        fanout: cli.fanout,
    };
    let ctx = Ctx {
        capacity: cli.capacity,
        batch: cli.batch,
        config,
        pace_ns: cli.pace_ns,
        timeout: Duration::from_secs(120),
    };
    if let Some(path) = &cli.json {
        // Fail on an unwritable path before measuring for minutes.
        std::fs::write(path, "{}").map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }

    println!("# pinbus-bench");
    println!();
    println!(
        "machine: {}; producer on core {}, consumer / pinbus worker on core {}",
        cores::describe(),
        cores::producer(0).map_or("(unpinned)".into(), |c| c.to_string()),
        cores::consumer().map_or("(unpinned)".into(), |c| c.to_string()),
    );
    let busy = busy_now();
    if let Some(b) = busy {
        println!("CPU busy just before start: {b:.0}% (busy-spinning threads need idle cores; other work skews results)");
        if b > 10.0 {
            eprintln!("pinbus-bench: warning: the cores are {b:.0}% busy with other work: expect noisy results");
        }
    }
    println!(
        "pinbus engine: {}",
        match &cli.config {
            Some(p) => format!("from {}", p.display()),
            None => format!(
                "workers 1, Pinning::Cores([last]), BusySpin, lane_capacity {}; topics Backpressure::Block",
                cli.capacity
            ),
        }
    );
    println!(
        "capacity {} · batch {} · median of {runs} run(s){} · allocator: mimalloc (counting)",
        cli.capacity,
        cli.batch,
        if cli.quick { " · --quick" } else { "" }
    );

    let jobs: usize = scenarios
        .iter()
        .map(|s| {
            scenarios::cases(*s, &plan)
                .iter()
                .map(|(case, _)| {
                    peers
                        .iter()
                        .filter(|p| scenarios::takes_part(**p, *s))
                        .filter(|p| scenarios::not_applicable(**p, case).is_none())
                        .count()
                })
                .sum::<usize>()
        })
        .sum();
    let mut progress = Progress {
        total: jobs,
        done: 0,
        tty: std::io::stderr().is_terminal(),
    };
    let peer_names: Vec<&'static str> = peers.iter().map(|p| p.name()).collect();
    let mut results = Vec::new();
    for s in &scenarios {
        let mut cases = Vec::new();
        let in_s: Vec<Peer> = peers
            .iter()
            .copied()
            .filter(|p| scenarios::takes_part(*p, *s))
            .collect();
        for (case, label) in scenarios::cases(*s, &plan) {
            let mut per_peer = Vec::new();
            for peer in &in_s {
                let outcome = if let Some(reason) = scenarios::not_applicable(*peer, &case) {
                    Outcome::NotApplicable {
                        reason: reason.into(),
                    }
                } else {
                    let mut tp = Vec::new();
                    let mut lat = Vec::new();
                    let mut failed = None;
                    for r in 0..runs {
                        progress.show(&format!(
                            "{} {label} {} run {}/{runs}",
                            s.id(),
                            peer.name(),
                            r + 1
                        ));
                        match scenarios::run(&ctx, &plan, &case, *peer) {
                            Ok(Measured::Throughput(t)) => tp.push(t),
                            Ok(Measured::Latency(l)) => lat.push(l),
                            Err(e) => {
                                failed = Some(e);
                                break;
                            }
                        }
                    }
                    progress.done += 1;
                    match failed {
                        Some(error) if error.starts_with("stuck") => {
                            // Threads of a stuck run may still spin: stop here.
                            progress.finish();
                            return Err(format!("{} {label} {}: {error}", s.id(), peer.name()));
                        }
                        Some(error) => Outcome::Failed { error },
                        None if !tp.is_empty() => Outcome::throughput(tp),
                        None => Outcome::latency(lat),
                    }
                };
                per_peer.push(PeerResult {
                    peer: peer.name(),
                    outcome,
                });
            }
            cases.push(CaseResult {
                label,
                results: per_peer,
            });
        }
        let mut result = ScenarioResult {
            id: s.id(),
            title: report::title(*s, &plan),
            cases,
            pinbus_metrics: peers::pinbus::take_metrics(),
            notes: Vec::new(),
        };
        if *s == Scenario::S10 {
            let s8 = results.iter().find(|r: &&ScenarioResult| r.id == "S8");
            result.notes = routing::notes(&result, s8);
        }
        progress.finish();
        let names: Vec<&'static str> = in_s.iter().map(|p| p.name()).collect();
        print!("{}", report::render(&result, &names));
        if let Some(m) = &result.pinbus_metrics {
            println!("- {}", report::metrics_line(m));
        }
        for n in &result.notes {
            println!("- {n}");
        }
        if *s == Scenario::S1 {
            if let Some(line) = report::allocations(&result) {
                println!("- {line}");
            }
        }
        let _ = std::io::stdout().flush();
        results.push(result);
    }
    progress.finish();

    let report = Report {
        machine: Machine {
            cores: cores::all().to_vec(),
            producer_core: cores::producer(0),
            consumer_core: cores::consumer(),
            busy_at_start_pct: busy,
        },
        settings: Settings {
            quick: cli.quick,
            runs,
            capacity: cli.capacity,
            batch: cli.batch,
            pace_ns: cli.pace_ns,
            plan,
            config: cli.config.as_ref().map(|p| p.display().to_string()),
            peers: peer_names,
        },
        scenarios: results,
        elapsed_s: begin.elapsed().as_secs_f64(),
    };
    println!();
    println!("suite finished in {:.1} s", report.elapsed_s);
    if let Some(path) = &cli.json {
        report::write_json(&report, path)?;
        println!("JSON: {}", path.display());
    }
    if let Some(dir) = &cli.plot {
        for f in plot::write(&report, dir)? {
            println!("chart: {}", f.display());
        }
    }
    Ok(())
}
