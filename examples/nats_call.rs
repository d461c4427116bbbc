//! Request/reply over NATS, measured: one engine serves a `Service` on a
//! subject (`Bridge::serve`), a second engine calls it through a stand-in
//! (`Bridge::remote`); the same round trip with the bare async-nats client
//! (request + a subscriber that responds) is the baseline, in the same run.
//! Prints sequential round-trip p50/p99 and the rate with 64 calls in
//! flight, for both.
//!
//! ```text
//! nats-server &
//! cargo run --release --features nats --example nats_call -- \
//!     [--url nats://127.0.0.1:4222] [--count 20000] [--json]
//! ```

use std::time::Instant;

use futures::StreamExt;
use pinbus::nats::{Bridge, BridgeOptions};
use pinbus::{Engine, IdleStrategy};

#[path = "support/flags.rs"]
mod flags;

/// Sequential round trips (µs, sorted) and the rate with 64 in flight.
struct Figures {
    sorted_us: Vec<f64>,
    concurrent_per_s: f64,
}

impl Figures {
    fn at(&self, q: f64) -> f64 {
        let i = ((self.sorted_us.len() as f64 - 1.0) * q).round() as usize;
        self.sorted_us[i]
    }
}

fn measure<F, Fut>(count: usize, rt: &tokio::runtime::Runtime, call: F) -> Figures
where
    F: Fn(u64) -> Fut,
    Fut: std::future::Future<Output = u64>,
{
    rt.block_on(async {
        for i in 0..1_000 {
            assert_eq!(call(i).await, i * 2); // warm-up
        }
        let mut us = Vec::with_capacity(count);
        for i in 0..count as u64 {
            let start = Instant::now();
            assert_eq!(call(i).await, i * 2);
            us.push(start.elapsed().as_secs_f64() * 1e6);
        }
        us.sort_by(f64::total_cmp);
        let start = Instant::now();
        let calls = futures::stream::iter(0..count as u64)
            .map(&call)
            .buffer_unordered(64);
        let answered = calls.count().await;
        assert_eq!(answered, count);
        Figures {
            sorted_us: us,
            concurrent_per_s: count as f64 / start.elapsed().as_secs_f64(),
        }
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = flags::parse(20_000, |_, _| Ok(false))?;
    if a.binary {
        return Err("--codec: nats_call's requests and replies are JSON".into());
    }
    let count = usize::try_from(a.count)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let engine = || {
        Engine::builder()
            .workers(1)
            .idle(IdleStrategy::Park)
            .build()
    };
    let (serving, calling) = (engine()?, engine()?);
    let server_bridge = Bridge::connect(&a.url, &serving, BridgeOptions::default())?;
    let caller_bridge = Bridge::connect(&a.url, &calling, BridgeOptions::default())?;
    let double = serving.service::<u64, u64>("bench.double")?;
    double.serve(|n| **n * 2)?;
    server_bridge.serve(&double, "bench.double")?;
    let remote = calling.service::<u64, u64>("bench.double")?;
    caller_bridge.remote(&remote, "bench.double")?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    if !a.json {
        println!(
            "nats_call: {cores} cores, {} calls each way on {}",
            count, a.url
        );
    }
    let pinbus = measure(count, &rt, |i| {
        let remote = &remote;
        async move { remote.call_async(i).await.expect("a reply") }
    });

    // The baseline: the bare client, a responder task doing the same work.
    let client = rt.block_on(async_nats::connect(&a.url))?;
    let responder = rt.block_on(async_nats::connect(&a.url))?;
    let mut requests = rt.block_on(responder.subscribe("bench.raw"))?;
    rt.block_on(responder.flush())?;
    rt.spawn(async move {
        while let Some(m) = requests.next().await {
            let n: u64 = serde_json::from_slice(&m.payload).expect("JSON");
            let body = serde_json::to_vec(&(n * 2)).expect("JSON");
            if let Some(reply) = m.reply {
                let _ = responder.publish(reply, body.into()).await;
            }
        }
    });
    // The server may answer "no responders" for a moment after the
    // responder's subscribe and flush (seen here once in a few runs; cf.
    // nats-server#2876): wait until one request is answered before timing.
    rt.block_on(async {
        for _ in 0..200 {
            match client.request("bench.raw", "0".into()).await {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders => {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(()) // timed requests will fail and say why
    })?;
    let raw = measure(count, &rt, |i| {
        let client = &client;
        async move {
            let body = serde_json::to_vec(&i).expect("JSON");
            let m = client
                .request("bench.raw", body.into())
                .await
                .expect("a reply");
            serde_json::from_slice(&m.payload).expect("JSON")
        }
    });
    for (name, f) in [("pinbus_service", &pinbus), ("async_nats_raw", &raw)] {
        if a.json {
            println!(
                "{{\"path\":\"{name}\",\"calls\":{},\"p50_us\":{:.1},\"p99_us\":{:.1},\"in_flight_64_per_s\":{:.0}}}",
                count,
                f.at(0.5),
                f.at(0.99),
                f.concurrent_per_s
            );
        } else {
            println!(
                "{name:>16}: p50 {:>7.1} µs  p99 {:>7.1} µs  64 in flight: {:>8.0} calls/s",
                f.at(0.5),
                f.at(0.99),
                f.concurrent_per_s
            );
        }
    }
    drop((caller_bridge, server_bridge));
    Ok(())
}
