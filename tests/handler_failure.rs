//! Guarantee 6: a panicking or failing handler never kills its worker or
//! stalls other subscriptions.

mod common;

use common::{engine, Log, STRATEGIES};

#[test]
fn panics_under_load_do_not_stop_the_worker_or_neighbours() {
    // Silence the default panic message for the thousands of expected panics.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|info| {
        if !info.to_string().contains("boom") {
            eprintln!("{info}");
        }
    }));
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
    std::panic::set_hook(default_hook);
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
