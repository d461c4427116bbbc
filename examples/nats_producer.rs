//! Producer side of a pinbus service bridged over NATS JetStream: publishes
//! orders on a local topic that is exported to a NATS subject, waits until
//! JetStream has acknowledged every one, and prints the export rate.
//!
//! ```text
//! nats-server -js -sd /tmp/js &                 # or a cluster, see docs/nats.md
//! cargo run --release --features nats --example nats_producer -- \
//!     [--url nats://127.0.0.1:4222] [--count 100000] [--subject orders.created] \
//!     [--codec json|binary] [--in-flight 1024] [--json]
//! ```
//!
//! Run `nats_consumer` in another process (or on another machine) to
//! receive them.

use std::time::{Duration, Instant};

use pinbus::nats::{Binary, Bridge, BridgeOptions, ExportOptions};
use pinbus::{Engine, IdleStrategy};

#[path = "support/flags.rs"]
mod flags;

use flags::Order;

/// `--subject` and `--in-flight`, besides the common flags.
struct Own {
    subject: String,
    in_flight: usize,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut own = Own {
        subject: "orders.created".into(),
        in_flight: 1024,
    };
    let a = flags::parse(100_000, |flag, value| {
        match flag {
            "--subject" => own.subject = value()?,
            "--in-flight" => own.in_flight = flags::number(flag, value()?)?,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if !a.json {
        println!(
            "nats_producer: {cores} cores, {} events to {} on {} ({} codec, {} acks in flight)",
            a.count,
            own.subject,
            a.url,
            if a.binary { "binary" } else { "JSON" },
            own.in_flight
        );
    }
    let engine = Engine::builder()
        .workers(1)
        .idle(IdleStrategy::Park)
        .lane_capacity(16_384)
        .build()?;
    // No `.stream(..)`: the bridge keeps the subject in its stream (`PINBUS`),
    // unless a stream on the server already captures it.
    let bridge = Bridge::connect(
        &a.url,
        &engine,
        BridgeOptions::default().name("pinbus-nats-producer"),
    )?;
    let orders = engine.topic::<Order>("orders.created")?;
    let options = ExportOptions::new().max_in_flight(own.in_flight);
    if a.binary {
        bridge.export_with(&orders, &own.subject, options.codec(Binary))?;
    } else {
        bridge.export_with(&orders, &own.subject, options)?;
    }

    let started = Instant::now();
    let mut next_report = Instant::now() + Duration::from_secs(1);
    for id in 0..a.count {
        orders.publish(Order {
            id,
            cents: 100 + id % 9_000,
            customer: format!("customer-{}", id % 1_000),
        })?;
        if !a.json && Instant::now() >= next_report {
            let s = bridge.stats();
            println!("  {id} published, {} acknowledged by JetStream", s.exported);
            next_report += Duration::from_secs(1);
        }
    }
    // One call waits until every event published above is stored by
    // JetStream (or dead-lettered): still in the lane, queued, awaiting its
    // ack or in the export's retry policy.
    bridge.drain(&engine, Duration::from_secs(120))?;
    let elapsed = started.elapsed();
    let stats = bridge.close();
    let rate = stats.exported as f64 / elapsed.as_secs_f64();
    if a.json {
        println!(
            "{{\"side\":\"export\",\"events\":{},\"seconds\":{:.3},\"events_per_s\":{rate:.0},\
             \"codec\":\"{}\",\"in_flight\":{},\"dead_lettered\":{},\"retries\":{}}}",
            stats.exported,
            elapsed.as_secs_f64(),
            if a.binary { "binary" } else { "json" },
            own.in_flight,
            stats.export_dead_lettered,
            stats.export_retries
        );
    } else {
        println!();
        println!("| events acked | seconds | events/s | dead-lettered | re-sent |");
        println!("|---:|---:|---:|---:|---:|");
        println!(
            "| {} | {:.2} | {rate:.0} | {} | {} |",
            stats.exported,
            elapsed.as_secs_f64(),
            stats.export_dead_lettered,
            stats.export_retries
        );
    }
    engine.shutdown();
    Ok(())
}
