//! loom model of a pattern subscription racing the creation of a topic it
//! matches (guarantee 5 for patterns): in every interleaving the new topic's
//! snapshot ends with the pattern's part, and a pattern subscription that
//! returned before a publish started sees that publish.
#![cfg(loom)]

mod common;

use common::{tiny_engine, Log};
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::Arc;
use loom::thread;

/// One thread creates `orders.created` and publishes 1 while the main
/// thread subscribes `orders.*`; once both are done, 2 is published.
#[test]
fn pattern_attach_races_topic_creation() {
    // The longest schedules (registry lock handed back and forth, then the
    // whole shutdown and drop) take more than loom's default 1,000
    // branches; the state space is the same.
    let mut model = loom::model::Builder::new();
    model.max_branches = 10_000;
    model.check(|| {
        // Shared so the creating thread opens the topic itself, racing
        // the subscription for the registry's lock.
        let engine = Arc::new(tiny_engine(1, 2));
        let pattern = engine.pattern::<u32>("orders.*").unwrap();
        let subscribed = Arc::new(AtomicBool::new(false));
        let (e, s) = (engine.clone(), subscribed.clone());
        let creator = thread::spawn(move || {
            let topic = e.topic::<u32>("orders.created").unwrap();
            // Acquire: pairs with the Release store once subscribe returned.
            let after_subscribe = s.load(Ordering::Acquire);
            topic.publish(1).unwrap();
            (topic, after_subscribe)
        });
        let log = Log::default();
        let l = log.clone();
        let _sub = pattern.subscribe(move |ev| l.push(**ev)).unwrap();
        subscribed.store(true, Ordering::Release);
        let (topic, after_subscribe) = creator.join().unwrap();
        // Both done, whichever first: the topic's snapshot has the part.
        topic.publish(2).unwrap();
        engine.shutdown();
        let seen = log.take();
        if after_subscribe {
            assert_eq!(seen, vec![1, 2], "subscribed before the publish");
        } else {
            assert!(
                seen == vec![1, 2] || seen == vec![2],
                "the part is in the topic's snapshot: {seen:?}"
            );
        }
    });
}
