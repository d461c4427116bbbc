//! The idle strategies' trade-off, measured: one-way latency of sparse events
//! (one every 50 µs, so the worker goes idle between them) against the CPU an
//! idle worker burns.
//!
//! ```sh
//! cargo run --release --example idle_strategies
//! ```
//!
//! For each strategy: a 1-worker engine (pinned to the last core, producer on
//! the first), 20,000 paced events with a send timestamp; the handler stores
//! `now - sent`. Then the engine idles for one second and the process's CPU
//! time over that second is read (`getrusage`): 100% means one core is busy.
//! Figures go into docs/tuning.md.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pinbus::{Engine, IdleStrategy, Pinning};

const EVENTS: usize = 20_000;
const GAP: Duration = Duration::from_micros(50);

fn cpu_time() -> Duration {
    // SAFETY: `getrusage` fills the zeroed struct we pass; no other effect.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn percentile(sorted: &[u64], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    Duration::from_nanos(sorted[i])
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut cores: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    cores.sort_unstable();
    let (first, last) = (cores.first().copied(), cores.last().copied());
    println!("one-way latency of events 50 µs apart, and CPU of an idle worker");
    println!(
        "machine: {} cores; producer on core {first:?}, worker on core {last:?}",
        cores.len()
    );
    println!();
    println!("| strategy | p50 | p99 | p99.9 | max | idle worker CPU |");
    println!("|---|---:|---:|---:|---:|---:|");
    for idle in [
        IdleStrategy::BusySpin,
        IdleStrategy::Yield,
        IdleStrategy::Backoff,
        IdleStrategy::Park,
    ] {
        let pinning = match (first, last) {
            (Some(f), Some(l)) if f != l => Pinning::Cores(vec![l]),
            _ => Pinning::None,
        };
        let engine = Engine::builder()
            .workers(1)
            .pinning(pinning)
            .idle(idle)
            .build()?;
        let topic = engine.topic::<u64>("latency")?;
        let base = Instant::now();
        let samples: Arc<Vec<AtomicU64>> =
            Arc::new((0..EVENTS).map(|_| AtomicU64::new(0)).collect());
        let seen = samples.clone();
        let count = Arc::new(AtomicU64::new(0));
        let c = count.clone();
        topic.subscribe(move |ev| {
            let now = base.elapsed().as_nanos() as u64;
            let i = c.fetch_add(1, Ordering::Relaxed) as usize;
            if let Some(slot) = seen.get(i) {
                slot.store(now.saturating_sub(**ev), Ordering::Relaxed);
            }
        })?;
        let producer = std::thread::spawn({
            let topic = topic.clone();
            move || {
                if let Some(core) = first {
                    core_affinity::set_for_current(core_affinity::CoreId { id: core });
                }
                let mut next = Instant::now();
                for _ in 0..EVENTS {
                    next += GAP;
                    while Instant::now() < next {
                        std::hint::spin_loop();
                    }
                    let _ = topic.publish(base.elapsed().as_nanos() as u64);
                }
            }
        });
        producer.join().map_err(|_| "producer panicked")?;
        while count.load(Ordering::Relaxed) < EVENTS as u64 {
            std::thread::sleep(Duration::from_millis(1));
        }
        // Idle CPU: the engine has nothing to do for one second.
        let (cpu0, wall0) = (cpu_time(), Instant::now());
        std::thread::sleep(Duration::from_secs(1));
        let idle_cpu = (cpu_time() - cpu0).as_secs_f64() / wall0.elapsed().as_secs_f64();
        engine.shutdown();
        let mut lat: Vec<u64> = samples.iter().map(|a| a.load(Ordering::Relaxed)).collect();
        lat.sort_unstable();
        println!(
            "| {idle:?} | {:?} | {:?} | {:?} | {:?} | {:.1}% |",
            percentile(&lat, 0.50),
            percentile(&lat, 0.99),
            percentile(&lat, 0.999),
            Duration::from_nanos(*lat.last().unwrap_or(&0)),
            idle_cpu * 100.0
        );
    }
    Ok(())
}
