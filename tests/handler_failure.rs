//! Guarantee 6: a panicking or failing handler never kills its worker or
//! stalls other subscriptions.

mod common;

use common::{engine, Log, STRATEGIES};

/// Silences the panic messages of the thousands of expected panics (their
/// text contains "boom"); call the returned closure to put the previous hook
/// back.
fn silence_booms() -> impl FnOnce() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|info| {
        if !info.to_string().contains("boom") {
            eprintln!("{info}");
        }
    }));
    move || std::panic::set_hook(previous)
}

#[test]
fn panics_under_load_do_not_stop_the_worker_or_neighbours() {
    let restore_hook = silence_booms();
    for idle in STRATEGIES {
        let engine = engine(1, idle, 128);
        let topic = engine.topic::<u64>("explosive").unwrap();
        let before = Log::new();
        let after = Log::new();
        let b = before.clone();
        topic.subscribe(move |ev| b.push(**ev)).unwrap();
        let bomb = topic
            .subscribe(|ev| {
                if **ev % 3 == 0 {
                    panic!("boom {}", **ev);
                }
            })
            .unwrap();
        let a = after.clone();
        topic.subscribe(move |ev| a.push(**ev)).unwrap();
        for i in 0..9_000 {
            topic.publish(i).unwrap();
        }
        let report = engine.shutdown();
        let all: Vec<u64> = (0..9_000).collect();
        assert_eq!(before.snapshot(), all, "{idle:?}");
        assert_eq!(after.snapshot(), all, "{idle:?}");
        assert_eq!(report.panicked, 3_000, "{idle:?}");
        assert_eq!(report.failed, 3_000, "{idle:?}");
        assert_eq!(bomb.stats().panicked, 3_000);
        assert_eq!(bomb.stats().handled, 6_000);
    }
    restore_hook();
}

#[test]
fn errors_are_counted_and_delivery_continues() {
    let engine = engine(1, pinbus::IdleStrategy::Park, 64);
    let topic = engine.topic::<u64>("fallible").unwrap();
    let ok = Log::new();
    let o = ok.clone();
    let sub = topic
        .subscribe(move |ev| -> Result<(), String> {
            if **ev % 2 == 0 {
                Err(format!("even {}", **ev))
            } else {
                o.push(**ev);
                Ok(())
            }
        })
        .unwrap();
    for i in 0..100 {
        topic.publish(i).unwrap();
    }
    let report = engine.shutdown();
    assert_eq!(ok.len(), 50);
    let stats = sub.stats();
    assert_eq!((stats.handled, stats.failed, stats.panicked), (50, 50, 0));
    assert_eq!((report.handled, report.failed), (50, 50));
}

#[test]
fn a_panicking_group_member_does_not_lose_the_others_events() {
    std::panic::set_hook(Box::new(|_| {}));
    let engine = engine(2, pinbus::IdleStrategy::Park, 64);
    let topic = engine.topic::<u64>("group-bomb").unwrap();
    let good = Log::new();
    let g = good.clone();
    topic
        .group("g")
        .subscribe(|_| -> () { panic!("member down") })
        .unwrap();
    topic.group("g").subscribe(move |ev| g.push(**ev)).unwrap();
    for i in 0..1_000 {
        topic.publish(i).unwrap();
    }
    let report = engine.shutdown();
    let _ = std::panic::take_hook();
    // Every event went to exactly one member: good ones plus panics add up.
    assert_eq!(good.len() as u64 + report.panicked, 1_000);
}

/// Handles `ev` by its value: multiples of 5 fail with `Err`, of 7 panic, the
/// rest are logged. A `Filter` in front skips multiples of 11.
fn mixed_outcomes(
    topic: &pinbus::Topic<u64>,
    log: &Log<u64>,
    worker: usize,
) -> pinbus::Subscription {
    use pinbus::layer::Filter;
    use pinbus::{Event, SubscribeOptions};
    let l = log.clone();
    topic
        .subscribe_with(
            move |ev: &Event<u64>| -> Result<(), String> {
                match **ev {
                    v if v.is_multiple_of(5) => Err(format!("{v} is a multiple of 5")),
                    v if v.is_multiple_of(7) => panic!("boom {v}"),
                    v => {
                        l.push(v);
                        Ok(())
                    }
                }
            },
            SubscribeOptions::new()
                .worker(worker)
                .layer(Filter::new(|ev: &Event<u64>| !(**ev).is_multiple_of(11))),
        )
        .unwrap()
}

#[test]
fn a_lone_subscription_counts_like_one_among_several() {
    // Alone on its worker, a subscription drains whole batches in its own
    // loop; beside another, it is called per event. Both must agree on every
    // count and on the order of what was handled.
    let restore_hook = silence_booms();
    const N: u64 = 20_000;
    for idle in STRATEGIES {
        let engine = engine(2, idle, 64);
        let topic = engine.topic::<u64>("mixed").unwrap();
        let (alone_log, shared_log) = (Log::new(), Log::new());
        let alone = mixed_outcomes(&topic, &alone_log, 0);
        let shared = mixed_outcomes(&topic, &shared_log, 1);
        topic
            .subscribe_with(|_| {}, pinbus::SubscribeOptions::new().worker(1))
            .unwrap();
        for i in 0..N {
            topic.publish(i).unwrap();
        }
        let report = engine.shutdown();
        let expected: Vec<u64> = (0..N)
            .filter(|v| !v.is_multiple_of(11) && !v.is_multiple_of(5) && !v.is_multiple_of(7))
            .collect();
        assert_eq!(alone_log.snapshot(), expected, "{idle:?}");
        assert_eq!(shared_log.snapshot(), expected, "{idle:?}");
        let skipped = (0..N).filter(|v| v.is_multiple_of(11)).count() as u64;
        let failed = (0..N)
            .filter(|v| !v.is_multiple_of(11) && v.is_multiple_of(5))
            .count() as u64;
        let panicked = (0..N)
            .filter(|v| !v.is_multiple_of(11) && !v.is_multiple_of(5) && v.is_multiple_of(7))
            .count() as u64;
        for stats in [alone.stats(), shared.stats()] {
            assert_eq!(stats.handled, expected.len() as u64, "{idle:?}");
            assert_eq!(stats.skipped, skipped, "{idle:?}");
            assert_eq!(stats.failed, failed + panicked, "{idle:?}");
            assert_eq!(stats.panicked, panicked, "{idle:?}");
        }
        assert_eq!(report.panicked, 2 * panicked, "{idle:?}");
    }
    restore_hook();
}
