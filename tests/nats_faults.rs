//! Exactly once by dedupe: the NATS server is killed with `kill -9` in the
//! middle of a stream and restarted on the same store and port, three
//! times; every event must reach engine B's subscriber exactly once (0 lost,
//! 0 duplicates), though JetStream re-delivers acknowledged messages after
//! each restart and the exporter re-sends what it could not confirm.

#[path = "support/nats_server.rs"]
mod nats_server;

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nats_server::{engine, NatsServer};
use pinbus::nats::{Bridge, BridgeOptions, ImportOptions};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Payment {
    id: u32,
    cents: u64,
}

const N: u32 = 20_000;
const KILLS: u32 = 3;
/// How long the server stays down each time (an outage, not a wait).
const OUTAGE: Duration = Duration::from_millis(300);

fn options() -> BridgeOptions {
    BridgeOptions::default()
        .stream("PAYMENTS", ["payments.>"])
        .request_timeout(Duration::from_secs(1))
        .max_reconnect_delay(Duration::from_millis(200))
}

fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The durable consumer's (pending, ack pending) counts, asked of the server.
fn consumer_backlog(url: &str) -> Option<(u64, usize)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    rt.block_on(async {
        let client = async_nats::connect(url).await.ok()?;
        let js = async_nats::jetstream::new(client);
        let mut consumer: async_nats::jetstream::consumer::PullConsumer = js
            .get_stream("PAYMENTS")
            .await
            .ok()?
            .get_consumer("ledger")
            .await
            .ok()?;
        let info = consumer.info().await.ok()?;
        Some((info.num_pending, info.num_ack_pending))
    })
}

#[test]
fn three_kill_9_restarts_mid_stream_lose_and_duplicate_nothing() {
    let Some(mut server) = NatsServer::start() else {
        return;
    };
    let url = server.url();

    let a = engine();
    let bridge_a = Bridge::connect(&url, &a, options()).unwrap();
    let out = a.topic::<Payment>("payments.made").unwrap();
    bridge_a.export(&out, "payments.made").unwrap();

    let b = engine();
    let bridge_b = Bridge::connect(&url, &b, options()).unwrap();
    let incoming = b.topic::<Payment>("payments.made").unwrap();
    let counts: Arc<Vec<AtomicU32>> = Arc::new((0..N).map(|_| AtomicU32::new(0)).collect());
    let handled = Arc::new(AtomicU64::new(0));
    let (c, h) = (counts.clone(), handled.clone());
    incoming
        .subscribe(move |ev| {
            c[ev.id as usize].fetch_add(1, Ordering::Relaxed);
            h.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap();
    bridge_b
        .import::<Payment, _>(
            "payments.>",
            &incoming,
            ImportOptions::durable("ledger").ack_wait(Duration::from_secs(5)),
        )
        .unwrap();

    let producer = std::thread::spawn(move || {
        for id in 0..N {
            out.publish(Payment {
                id,
                cents: u64::from(id) * 7,
            })
            .unwrap();
        }
    });

    for kill in 1..=KILLS {
        let mark = u64::from(N) * u64::from(kill) / u64::from(KILLS + 1);
        wait_for(
            "B to get past the next kill mark",
            Duration::from_secs(60),
            || handled.load(Ordering::Relaxed) >= mark,
        );
        let before = handled.load(Ordering::Relaxed);
        server.kill9();
        std::thread::sleep(OUTAGE);
        server.restart();
        eprintln!("kill -9 #{kill} at {before} events handled by B; restarted");
    }
    producer.join().unwrap();

    wait_for("every event at B", Duration::from_secs(60), || {
        counts.iter().all(|c| c.load(Ordering::Relaxed) > 0)
    });
    bridge_a.flush(Duration::from_secs(30)).unwrap();
    // Nothing left to deliver or re-deliver: the consumer is drained and
    // every delivery acked, so no later duplicate can come.
    wait_for(
        "the durable consumer to drain",
        Duration::from_secs(60),
        || consumer_backlog(&url) == Some((0, 0)),
    );

    let (sa, sb) = (bridge_a.stats(), bridge_b.stats());
    eprintln!("exporter: {sa:?}");
    eprintln!("importer: {sb:?}");
    let lost: Vec<u32> = (0..N)
        .filter(|&i| counts[i as usize].load(Ordering::Relaxed) == 0)
        .collect();
    let doubled: Vec<(u32, u32)> = (0..N)
        .map(|i| (i, counts[i as usize].load(Ordering::Relaxed)))
        .filter(|&(_, n)| n > 1)
        .collect();
    assert!(
        lost.is_empty(),
        "lost {} events, first {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    assert!(
        doubled.is_empty(),
        "{} events handled twice or more, first {:?}",
        doubled.len(),
        &doubled[..doubled.len().min(10)]
    );
    assert_eq!(handled.load(Ordering::Relaxed), u64::from(N));
    assert_eq!(
        sa.export_dead_lettered, 0,
        "outages are shorter than the retry policy"
    );
    assert_eq!((sa.exported, sa.export_failed), (u64::from(N), 0));
    // B cannot get past a kill mark without reconnecting; A may publish
    // everything between two kills and reconnect fewer times.
    assert!(
        sb.reconnects >= u64::from(KILLS) && sa.reconnects >= 1,
        "{sa:?} {sb:?}"
    );
}
