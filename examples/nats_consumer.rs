//! Consumer side of a pinbus service bridged over NATS JetStream: imports a
//! subject filter through a durable consumer into a local topic, handles
//! each order in a subscriber, and prints the import rate. Run it again with
//! the same `--durable` and it resumes where it stopped.
//!
//! ```text
//! cargo run --release --features nats --example nats_consumer -- \
//!     [--url nats://127.0.0.1:4222] [--filter orders.>] [--durable billing] \
//!     [--count 100000] [--codec json|binary] [--json]
//! ```
//!
//! `--count 0` runs until interrupted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pinbus::nats::{Binary, Bridge, BridgeOptions, ImportOptions};
use pinbus::{Engine, IdleStrategy};

#[path = "support/flags.rs"]
mod flags;

use flags::Order;

/// `--filter` and `--durable`, besides the common flags.
struct Own {
    filter: String,
    durable: String,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut own = Own {
        filter: "orders.>".into(),
        durable: "billing".into(),
    };
    let a = flags::parse(100_000, |flag, value| {
        match flag {
            "--filter" => own.filter = value()?,
            "--durable" => own.durable = value()?,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if !a.json {
        println!(
            "nats_consumer: {cores} cores, durable {:?} on {} at {} ({} codec)",
            own.durable,
            own.filter,
            a.url,
            if a.binary { "binary" } else { "JSON" }
        );
    }
    let engine = Engine::builder()
        .workers(1)
        .idle(IdleStrategy::Park)
        .lane_capacity(16_384)
        .build()?;
    // No `.stream(..)`: the import reads the stream that captures the
    // filter, or the bridge's own (`PINBUS`), extended to it.
    let bridge = Bridge::connect(
        &a.url,
        &engine,
        BridgeOptions::default().name("pinbus-nats-consumer"),
    )?;
    let orders = engine.topic::<Order>("orders.incoming")?;
    let handled = Arc::new(AtomicU64::new(0));
    let revenue = Arc::new(AtomicU64::new(0));
    let (h, r) = (handled.clone(), revenue.clone());
    orders.subscribe(move |ev| {
        r.fetch_add(ev.cents, Ordering::Relaxed);
        h.fetch_add(1, Ordering::Relaxed);
    })?;

    let started = Instant::now();
    let options = ImportOptions::durable(own.durable.as_str());
    // `import::<Order, _>`: the event type is the topic's; the `_` is the
    // codec, taken from the options (JSON unless `.codec(..)`).
    let import = if a.binary {
        bridge.import::<Order, _>(&own.filter, &orders, options.codec(Binary))?
    } else {
        bridge.import::<Order, _>(&own.filter, &orders, options)?
    };
    let mut last = 0;
    loop {
        std::thread::sleep(Duration::from_millis(if a.json { 5 } else { 1000 }));
        let n = handled.load(Ordering::Relaxed);
        if !a.json && n != last {
            println!(
                "  {n} orders handled ({} cents)",
                revenue.load(Ordering::Relaxed)
            );
            last = n;
        }
        if a.count > 0 && n >= a.count {
            break;
        }
    }
    let elapsed = started.elapsed();
    for bad in import.take_rejected() {
        eprintln!(
            "rejected {} #{}: {} ({} bytes)",
            bad.subject, bad.stream_sequence, bad.reason, bad.payload_len
        );
    }
    let stats = bridge.close();
    let rate = handled.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64();
    if a.json {
        println!(
            "{{\"side\":\"import\",\"events\":{},\"seconds\":{:.3},\"events_per_s\":{rate:.0},\
             \"codec\":\"{}\",\"acked\":{},\"duplicates_skipped\":{}}}",
            handled.load(Ordering::Relaxed),
            elapsed.as_secs_f64(),
            if a.binary { "binary" } else { "json" },
            stats.imported,
            stats.duplicates_skipped
        );
    } else {
        println!();
        println!("| events handled | seconds | events/s | acked | duplicates skipped |");
        println!("|---:|---:|---:|---:|---:|");
        println!(
            "| {} | {:.2} | {rate:.0} | {} | {} |",
            handled.load(Ordering::Relaxed),
            elapsed.as_secs_f64(),
            stats.imported,
            stats.duplicates_skipped
        );
    }
    engine.shutdown();
    Ok(())
}
