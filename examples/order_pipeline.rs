//! An order pipeline on pinbus: orders are published, audited by a plain
//! subscriber, billed by a consumer group of two members that publish
//! payments, and payments feed a shipping stage. Then it measures the
//! pipeline's throughput and shuts down, printing what the engine counted.
//!
//! ```text
//! cargo run --release --example order_pipeline [orders]
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pinbus::{Engine, IdleStrategy, Pinning, SubscribeOptions};

#[derive(Clone, Debug)]
struct Order {
    id: u64,
    cents: u64,
}

#[derive(Clone, Debug)]
struct Payment {
    order: u64,
    cents: u64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let orders_to_send: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2_000_000);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let workers = cores.clamp(1, 2);
    println!("pinbus order pipeline: {cores} cores, {workers} workers, Pinning::Auto, IdleStrategy::Park");

    let engine = Engine::builder()
        .workers(workers)
        .pinning(Pinning::Auto)
        .idle(IdleStrategy::Park)
        .lane_capacity(16_384)
        .build()?;
    let orders = engine.topic::<Order>("orders.created")?;
    let payments = engine.topic::<Payment>("payments.completed")?;

    // Audit: a plain subscriber sees every order, in publish order.
    let audited = Arc::new(AtomicU64::new(0));
    let audit_count = audited.clone();
    let mut last_id = None;
    orders.subscribe_with(
        move |ev| -> Result<(), String> {
            if last_id.is_some_and(|last| ev.id <= last) {
                return Err(format!("order {} arrived after {last_id:?}", ev.id));
            }
            last_id = Some(ev.id);
            audit_count.fetch_add(1, Ordering::Relaxed);
            Ok(())
        },
        SubscribeOptions::new().name("audit"),
    )?;

    // Billing: a consumer group of two members; each order is billed once,
    // and billing publishes a payment from inside its handler.
    let billing = orders.group("billing");
    for member in 0..2 {
        let payments = payments.clone();
        billing.subscribe_with(
            move |ev| {
                payments.publish(Payment {
                    order: ev.id,
                    cents: ev.cents,
                })
            },
            SubscribeOptions::new().name(format!("billing-{member}")),
        )?;
    }

    // Shipping: sums what was paid.
    let paid = Arc::new(AtomicU64::new(0));
    let shipped = Arc::new(AtomicU64::new(0));
    let (p, s) = (paid.clone(), shipped.clone());
    payments.subscribe(move |ev| {
        p.fetch_add(ev.cents, Ordering::Relaxed);
        s.fetch_add(1, Ordering::Relaxed);
        let _ = ev.order;
    })?;

    // A synchronous publish: returns once audit and billing handled it.
    orders.publish_and_wait(Order { id: 0, cents: 100 })?;
    println!("order 0 handled by audit and billing before publish_and_wait returned");

    // Throughput: publish in batches from this thread, report progress.
    let start = Instant::now();
    let mut next_report = Instant::now() + Duration::from_millis(250);
    let mut expected_cents = 100;
    let mut id = 1;
    while id <= orders_to_send {
        let end = (id + 1024).min(orders_to_send + 1);
        orders.publish_batch((id..end).map(|i| Order {
            id: i,
            cents: 100 + i % 7,
        }))?;
        expected_cents += (id..end).map(|i| 100 + i % 7).sum::<u64>();
        id = end;
        if Instant::now() >= next_report {
            eprint!(
                "\r  published {:>10} orders, shipped {:>10}",
                id - 1,
                shipped.load(Ordering::Relaxed)
            );
            next_report += Duration::from_millis(250);
        }
    }
    let published_in = start.elapsed();
    let report = engine.shutdown();
    let elapsed = start.elapsed();
    eprintln!(
        "\r  published {:>10} orders, shipped {:>10}",
        orders_to_send,
        shipped.load(Ordering::Relaxed)
    );

    println!();
    println!("| stage | events | |");
    println!("|---|---:|---|");
    println!(
        "| orders published | {} | {:.1} M/s publish rate |",
        orders_to_send + 1,
        (orders_to_send as f64) / published_in.as_secs_f64() / 1e6
    );
    println!(
        "| audited | {} | in order |",
        audited.load(Ordering::Relaxed)
    );
    println!(
        "| shipped (billed once each) | {} | {:.1} M/s end to end |",
        shipped.load(Ordering::Relaxed),
        (orders_to_send as f64) / elapsed.as_secs_f64() / 1e6
    );
    println!(
        "| cents paid | {} | expected {} |",
        paid.load(Ordering::Relaxed),
        expected_cents
    );
    println!();
    println!(
        "shutdown report: published {}, handled {}, failed {}, discarded {}, drained in {:?}",
        report.published, report.handled, report.failed, report.discarded, report.drain_time
    );
    let ok = audited.load(Ordering::Relaxed) == orders_to_send + 1
        && shipped.load(Ordering::Relaxed) == orders_to_send + 1
        && paid.load(Ordering::Relaxed) == expected_cents
        && report.failed == 0;
    if !ok {
        return Err("the pipeline lost, duplicated or reordered events".into());
    }
    println!("every order audited in order, billed exactly once and shipped: ok");
    Ok(())
}
