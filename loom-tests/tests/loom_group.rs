//! loom model of a consumer group's lane: members on two workers claim
//! batches under the group's claim lock and dispatch them in parallel.
#![cfg(loom)]

mod common;

use common::{tiny_engine, Log};

/// Two members on two workers, three events: each event is handled by
/// exactly one member.
#[test]
fn group_claim_by_two_members() {
    // The longest schedules (a producer waiting for room in the capacity-2
    // lane while both workers claim, then the whole shutdown and drop) take
    // more than loom's default 1,000 branches; the state space is the same.
    let mut model = loom::model::Builder::new();
    model.max_branches = 10_000;
    model.check(|| {
        let engine = tiny_engine(2, 2);
        let topic = engine.topic::<u32>("jobs").unwrap();
        let log = Log::default();
        for w in 0..2 {
            let l = log.clone();
            topic
                .group("g")
                .subscribe_with(
                    move |ev| l.push(**ev),
                    pinbus::SubscribeOptions::new().worker(w),
                )
                .unwrap();
        }
        for i in 0..3 {
            topic.publish(i).unwrap();
        }
        let report = engine.shutdown();
        let mut seen = log.take();
        seen.sort_unstable();
        assert_eq!(seen, vec![0, 1, 2], "exactly once per group");
        assert_eq!(report.handled, 3);
    });
}
