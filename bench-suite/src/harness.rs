//! Runs one measurement: spawns and pins the producer threads, drives the
//! warm-up and the measured phase, and turns what the consumers' probes
//! recorded into a [`Throughput`] or a [`Latency`].
//!
//! Throughput is events handled by the consumers per second, from the first
//! measured send (the earliest producer's) to the moment the last consumer
//! handled its last event (recorded by that consumer), not events pushed into
//! a ring.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::alloc;
use crate::cores;
use crate::payload::{expected_sum, Payload};
use crate::probe::{now_ns, HistogramSlot, Probe, SENTINEL};

/// The error type of the suite: a message for the user.
pub type Error = String;
/// Result with a message for the user.
pub type Res<T> = Result<T, Error>;

/// Distance between the index ranges of two producers, so every event of a
/// run has a distinct index.
pub const STRIDE: u64 = 1 << 36;

/// Settings shared by every measurement.
#[derive(Clone, Debug)]
pub struct Ctx {
    /// Ring / channel capacity of every peer (pinbus: lane capacity).
    pub capacity: usize,
    /// Events per batch in the batch cases.
    pub batch: usize,
    /// A pinbus configuration replacing the built-in engine settings.
    pub config: Option<pinbus::Config>,
    /// Pause between two sends in the latency scenario.
    pub pace_ns: u64,
    /// How long one run may take before it is reported as stuck.
    pub timeout: Duration,
}

/// Sends `count` events with indices `start..start + count`.
pub type SendFn = Box<dyn FnMut(u64, u64) -> Res<()> + Send>;
/// One subscribe/unsubscribe cycle of the churn scenario.
pub type ChurnFn = Box<dyn FnMut() -> Res<()> + Send>;
/// Stops what a rig started (engine shutdown, consumer joins).
pub type Teardown = Box<dyn FnOnce() -> Res<()>>;

/// How many events each producer sends.
#[derive(Clone, Copy, Debug)]
pub struct Load {
    /// Producer threads.
    pub producers: u64,
    /// Warm-up events per producer.
    pub warm: u64,
    /// Measured events per producer.
    pub measured: u64,
}

impl Load {
    /// The marks (end of warm-up, end of run) of a subscriber that sees
    /// `1/share` of all events.
    pub fn marks(&self, share: u64) -> (u64, u64) {
        let warm = self.warm * self.producers / share;
        (warm, warm + self.measured * self.producers / share)
    }
}

/// One subscriber's probe and marks.
#[derive(Debug)]
pub struct Sub {
    /// What the subscriber's tally publishes.
    pub probe: Arc<Probe>,
    /// Events by the end of warm-up.
    pub warm: u64,
    /// Events by the end of the run.
    pub total: u64,
}

/// A set-up topology, ready to run.
pub struct Rig {
    /// One entry per subscriber tally.
    pub subs: Vec<Sub>,
    /// One send function per producer thread.
    pub producers: Vec<SendFn>,
    /// Run on a background thread about every millisecond during the run.
    pub churn: Option<ChurnFn>,
    /// Called after every producer finished and consumers saw everything.
    pub teardown: Teardown,
    /// How many subscribers see each event (fan-out: all of them; spread
    /// over topics: 1); used for the checksum.
    pub copies: u64,
    /// Rate per subscriber (fan-out) rather than summed over subscribers.
    pub per_subscriber: bool,
}

impl std::fmt::Debug for Rig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rig")
            .field("subs", &self.subs)
            .field("producers", &self.producers.len())
            .finish_non_exhaustive()
    }
}

/// The result of one throughput run.
#[derive(Clone, Debug, Serialize)]
pub struct Throughput {
    /// Events per second (per subscriber for fan-out, else in total).
    pub rate: f64,
    /// Measured events handled (all subscribers).
    pub handled: u64,
    /// Seconds from first measured send to last event handled.
    pub secs: f64,
    /// Measured-phase events lost to lag (tokio broadcast).
    pub lagged: u64,
    /// Allocation calls in the whole process during the measured phase.
    pub allocations: u64,
    /// Allocation calls per measured publish.
    pub allocations_per_publish: f64,
    /// Subscribe/unsubscribe cycles per second of the churn thread, if any.
    pub churn_per_s: Option<f64>,
}

/// Waits until every probe reached `mark(sub)`, yielding between checks.
fn wait_subs(subs: &[Sub], mark: impl Fn(&Sub) -> u64, deadline: Instant) -> Res<()> {
    for s in subs {
        while s.probe.pos() < mark(s) {
            if Instant::now() > deadline {
                return Err(format!(
                    "stuck: a consumer saw {} of {} events",
                    s.probe.pos(),
                    mark(s)
                ));
            }
            thread::yield_now();
        }
    }
    Ok(())
}

/// A spin barrier with a deadline (std's `Barrier` cannot time out, and a
/// producer that failed must not leave the others waiting forever).
fn meet(count: &AtomicUsize, n: usize, deadline: Instant) -> Res<()> {
    count.fetch_add(1, Ordering::AcqRel);
    while count.load(Ordering::Acquire) < n {
        if Instant::now() > deadline {
            return Err("stuck: another producer did not finish its warm-up".into());
        }
        thread::yield_now();
    }
    Ok(())
}

/// Runs `rig` under `load` and measures it.
pub fn measure<P: Payload>(ctx: &Ctx, rig: Rig, load: Load) -> Res<Throughput> {
    let Rig {
        subs,
        producers,
        churn,
        teardown,
        copies,
        per_subscriber,
    } = rig;
    let deadline = Instant::now() + ctx.timeout;
    let n = producers.len();
    let subs = Arc::new(subs);
    let met = Arc::new(AtomicUsize::new(0));
    let starts: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
    let allocs = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);

    let stop = Arc::new(AtomicBool::new(false));
    let churner = churn.map(|mut op| {
        let stop = stop.clone();
        thread::spawn(move || -> Res<(u64, f64)> {
            let begin = Instant::now();
            let mut ops = 0u64;
            while !stop.load(Ordering::Relaxed) {
                op()?;
                ops += 1;
                thread::sleep(Duration::from_millis(1));
            }
            Ok((ops, begin.elapsed().as_secs_f64()))
        })
    });

    let mut joins = Vec::with_capacity(n);
    for (p, mut send) in producers.into_iter().enumerate() {
        let (subs, met, starts, allocs) =
            (subs.clone(), met.clone(), starts.clone(), allocs.clone());
        let spawned =
            thread::Builder::new()
                .name(format!("producer-{p}"))
                .spawn(move || -> Res<()> {
                    cores::pin(cores::producer(p));
                    let first = p as u64 * STRIDE;
                    send(first, load.warm)?;
                    wait_subs(&subs, |s| s.warm, deadline)?;
                    meet(&met, n, deadline)?;
                    if p == 0 {
                        allocs[0].store(alloc::allocations(), Ordering::Relaxed);
                    }
                    starts[p].store(now_ns(), Ordering::Relaxed);
                    send(first + load.warm, load.measured)?;
                    if p == 0 {
                        wait_subs(&subs, |s| s.total, deadline)?;
                        allocs[1].store(alloc::allocations(), Ordering::Relaxed);
                    }
                    drop(send);
                    Ok(())
                });
        match spawned {
            Ok(j) => joins.push(j),
            Err(e) => {
                stop.store(true, Ordering::Relaxed);
                return Err(format!("cannot spawn a producer thread: {e}"));
            }
        }
    }
    // Keep the most telling error: a producer's own failure rather than
    // another producer's "stuck" waiting for it.
    let mut result: Res<()> = Ok(());
    for j in joins {
        let r = j
            .join()
            .unwrap_or_else(|_| Err("a producer thread panicked".into()));
        if let Err(e) = r {
            if result
                .as_ref()
                .err()
                .is_none_or(|old| old.starts_with("stuck"))
            {
                result = Err(e);
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let churned = match churner {
        Some(j) => Some(
            j.join()
                .unwrap_or_else(|_| Err("the churn thread panicked".into()))?,
        ),
        None => None,
    };
    if let Err(e) = result {
        if !e.starts_with("stuck") {
            // The senders are gone, so consumers stop: free their cores.
            let _ = teardown();
        }
        return Err(e);
    }
    teardown()?;

    let start = starts
        .iter()
        .map(|s| s.load(Ordering::Relaxed))
        .min()
        .unwrap_or(0);
    let end = subs.iter().map(|s| s.probe.done_ns()).max().unwrap_or(0);
    let secs = (end.saturating_sub(start)).max(1) as f64 / 1e9;
    let lagged_all: u64 = subs.iter().map(|s| s.probe.lagged()).sum();
    let lagged: u64 = subs.iter().map(|s| s.probe.lagged_measured()).sum();
    let handled: u64 = subs.iter().map(|s| s.total - s.warm).sum::<u64>();
    let handled = handled.saturating_sub(lagged);
    if lagged_all == 0 {
        let one: u64 = (0..n as u64).fold(0u64, |a, p| {
            a.wrapping_add(expected_sum::<P>(p * STRIDE, load.warm + load.measured))
        });
        let want = one.wrapping_mul(copies);
        let got = subs.iter().fold(0u64, |a, s| a.wrapping_add(s.probe.sum()));
        if got != want {
            return Err(format!(
                "checksum mismatch: consumers summed {got}, expected {want} (lost or torn events)"
            ));
        }
    }
    let divisor = if per_subscriber {
        subs.len() as f64
    } else {
        1.0
    };
    let published = load.measured * n as u64;
    let allocations = allocs[1]
        .load(Ordering::Relaxed)
        .saturating_sub(allocs[0].load(Ordering::Relaxed));
    Ok(Throughput {
        rate: handled as f64 / divisor / secs,
        handled,
        secs,
        lagged,
        allocations,
        allocations_per_publish: allocations as f64 / published.max(1) as f64,
        churn_per_s: churned.map(|(ops, s)| ops as f64 / s.max(1e-9)),
    })
}

/// Sends one timestamp payload.
pub type SendOne = Box<dyn FnMut(u64) -> Res<()> + Send>;

/// A latency topology: one producer, one consumer with a `LatencyTally`.
pub struct LatencyRig {
    /// Sends one `u64` payload.
    pub send: SendOne,
    /// Filled by the consumer when the sentinel arrives.
    pub slot: HistogramSlot,
    /// Called once the histogram arrived.
    pub teardown: Teardown,
}

impl std::fmt::Debug for LatencyRig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LatencyRig").finish_non_exhaustive()
    }
}

/// Latency percentiles (one-way, or round trip in S8), in nanoseconds.
#[derive(Clone, Debug, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest.
    pub max: u64,
    /// Mean.
    pub mean: f64,
    /// Samples.
    pub samples: u64,
}

impl Latency {
    /// The percentiles of `hist`.
    fn of(hist: &hdrhistogram::Histogram<u64>) -> Latency {
        Latency {
            p50: hist.value_at_quantile(0.5),
            p99: hist.value_at_quantile(0.99),
            p999: hist.value_at_quantile(0.999),
            max: hist.max(),
            mean: hist.mean(),
            samples: hist.len(),
        }
    }
}

/// Sends `warm + count` timestamps paced `ctx.pace_ns` apart, then the
/// sentinel, and reads the consumer's histogram.
pub fn measure_latency(ctx: &Ctx, rig: LatencyRig, warm: u64, count: u64) -> Res<Latency> {
    let LatencyRig {
        mut send,
        slot,
        teardown,
    } = rig;
    let deadline = Instant::now() + ctx.timeout;
    let pace = ctx.pace_ns;
    let wait_slot = slot.clone();
    let producer = thread::Builder::new()
        .name("producer-latency".into())
        .spawn(move || -> Res<()> {
            cores::pin(cores::producer(0));
            let mut next = now_ns();
            for _ in 0..warm + count {
                next += pace;
                while now_ns() < next {
                    std::hint::spin_loop();
                }
                send(now_ns())?;
            }
            send(SENTINEL)?;
            loop {
                if wait_slot.lock().map(|s| s.is_some()).unwrap_or(true) {
                    break;
                }
                if Instant::now() > deadline {
                    return Err("stuck: the latency consumer never saw the last event".into());
                }
                thread::yield_now();
            }
            drop(send);
            Ok(())
        })
        .map_err(|e| format!("cannot spawn the producer thread: {e}"))?;
    producer
        .join()
        .unwrap_or_else(|_| Err("the producer thread panicked".into()))?;
    teardown()?;
    let hist = slot
        .lock()
        .map_err(|_| "a latency consumer panicked".to_string())?
        .take()
        .ok_or("no histogram came back")?;
    Ok(Latency::of(&hist))
}

/// One request/response round trip: sends a `u64` request and returns
/// once the reply (or, for pinbus, the completion) arrived.
pub type CallFn = Box<dyn FnMut(u64) -> Res<()> + Send>;

/// A round-trip topology: a client call and the server behind it.
pub struct RoundTripRig {
    /// One round trip.
    pub call: CallFn,
    /// Stops the server once the client is done (after `call` is dropped).
    pub teardown: Teardown,
}

impl std::fmt::Debug for RoundTripRig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoundTripRig").finish_non_exhaustive()
    }
}

/// Runs `warm + count` round trips back to back (closed loop: the next
/// request leaves when the reply to the last one arrived) from a client
/// thread pinned like producer 0, and records each one's latency, send to
/// reply, in the same HDR histogram the one-way scenario uses (the client
/// owns a [`LatencyTally`](crate::probe::LatencyTally) and feeds it the
/// request's send time when the reply arrives).
pub fn measure_round_trip(ctx: &Ctx, rig: RoundTripRig, warm: u64, count: u64) -> Res<Latency> {
    use crate::probe::{histogram_slot, LatencyTally};
    let RoundTripRig { mut call, teardown } = rig;
    let deadline = Instant::now() + ctx.timeout;
    let slot = histogram_slot();
    let mut tally = LatencyTally::new(warm, slot.clone());
    let client = thread::Builder::new()
        .name("client".into())
        .spawn(move || -> Res<()> {
            cores::pin(cores::producer(0));
            for i in 0..warm + count {
                let sent = now_ns();
                call(i)?;
                tally.on(sent);
                if i % 1024 == 0 && Instant::now() > deadline {
                    return Err(format!(
                        "stuck: {i} of {} round trips in time",
                        warm + count
                    ));
                }
            }
            tally.on(SENTINEL);
            drop(call);
            Ok(())
        })
        .map_err(|e| format!("cannot spawn the client thread: {e}"))?;
    let r = client
        .join()
        .unwrap_or_else(|_| Err("the client thread panicked".into()));
    if let Err(e) = r {
        if !e.starts_with("stuck") {
            let _ = teardown();
        }
        return Err(e);
    }
    teardown()?;
    let hist = slot
        .lock()
        .map_err(|_| "the client panicked".to_string())?
        .take()
        .ok_or("no histogram came back")?;
    Ok(Latency::of(&hist))
}

/// One request/response round trip made from a tokio task (S9): sends `v`
/// and resolves once the reply (pinbus: the receipt's completion) arrived.
pub trait AsyncCall: Send + 'static {
    /// One round trip.
    fn call(&mut self, v: u64) -> impl Future<Output = Res<()>> + Send + '_;
}

/// An async round-trip topology: the client (moved into the client task)
/// and the server behind it.
pub struct AsyncRoundTripRig<C> {
    /// The client side, awaited by the client task.
    pub client: C,
    /// Stops the server once the client task is done (after `client` is
    /// dropped).
    pub teardown: Teardown,
}

impl<C> std::fmt::Debug for AsyncRoundTripRig<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncRoundTripRig").finish_non_exhaustive()
    }
}

/// Spawns a thread pinned to `core` that builds a tokio current-thread
/// runtime (no I/O or time driver: an idle runtime parks on a condition
/// variable), spawns `task` on it as a task, and runs the runtime until the
/// task is done. S9 runs every task, pinbus's and the peers', this way.
pub fn task_thread<F>(name: &str, core: Option<usize>, task: F) -> Res<thread::JoinHandle<Res<()>>>
where
    F: Future<Output = Res<()>> + Send + 'static,
{
    thread::Builder::new()
        .name(name.into())
        .spawn(move || -> Res<()> {
            cores::pin(core);
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .map_err(|e| format!("tokio runtime: {e}"))?;
            rt.block_on(async move {
                tokio::spawn(task)
                    .await
                    .unwrap_or_else(|_| Err("a task panicked".into()))
            })
        })
        .map_err(|e| format!("cannot spawn a task thread: {e}"))
}

/// Joins a [`task_thread`].
pub fn join_task(join: thread::JoinHandle<Res<()>>) -> Res<()> {
    join.join()
        .unwrap_or_else(|_| Err("a task thread panicked".into()))
}

/// S9's round trip: `warm + count` calls back to back (closed loop) from a
/// tokio task on a current-thread runtime whose thread is pinned like
/// producer 0; each call's latency, from before the request to after the
/// reply, goes into the same HDR histogram as S2's and S8's.
pub fn measure_async_round_trip<C: AsyncCall>(
    ctx: &Ctx,
    rig: AsyncRoundTripRig<C>,
    warm: u64,
    count: u64,
) -> Res<Latency> {
    use crate::probe::{histogram_slot, LatencyTally};
    let AsyncRoundTripRig {
        mut client,
        teardown,
    } = rig;
    let deadline = Instant::now() + ctx.timeout;
    let slot = histogram_slot();
    let mut tally = LatencyTally::new(warm, slot.clone());
    let task = async move {
        for i in 0..warm + count {
            let sent = now_ns();
            client.call(i).await?;
            tally.on(sent);
            if i % 1024 == 0 && Instant::now() > deadline {
                return Err(format!(
                    "stuck: {i} of {} round trips in time",
                    warm + count
                ));
            }
        }
        tally.on(SENTINEL);
        drop(client);
        Ok(())
    };
    let r = join_task(task_thread("client", cores::producer(0), task)?);
    if let Err(e) = r {
        if !e.starts_with("stuck") {
            let _ = teardown();
        }
        return Err(e);
    }
    teardown()?;
    let hist = slot
        .lock()
        .map_err(|_| "the client panicked".to_string())?
        .take()
        .ok_or("no histogram came back")?;
    Ok(Latency::of(&hist))
}
