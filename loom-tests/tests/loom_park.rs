//! loom model of parking: a worker that parks as soon as it is idle is always
//! woken by a publish to its lane. A lost wake-up leaves every thread blocked,
//! which loom reports as a deadlock.
#![cfg(loom)]

mod common;

use common::tiny_engine;
use loom::thread;

/// Two rounds: after the first event is handled the worker goes idle and
/// parks again, so the second publish races announce / fence / re-check /
/// park a second time, from a different thread than the subscriber's.
#[test]
fn park_unpark_no_lost_wakeup() {
    loom::model(|| {
        let engine = tiny_engine(1, 2);
        let topic = engine.topic::<u32>("wake").unwrap();
        topic.subscribe(|_| {}).unwrap();
        let t = topic.clone();
        let producer = thread::spawn(move || {
            for i in 0..2 {
                // Blocks until the worker handled the event: only a wake-up
                // gets it there (shutdown, which would also wake it, comes
                // after).
                t.publish_tracked(i).unwrap().wait().unwrap();
            }
        });
        producer.join().unwrap();
        engine.shutdown();
    });
}
