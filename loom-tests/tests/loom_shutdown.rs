//! loom model of the shutdown drain: a producer publishes while the engine
//! shuts down; every publish that returned `Ok` is handled, every refused
//! event comes back.
#![cfg(loom)]

mod common;

use common::{tiny_engine, Log};
use loom::thread;

#[test]
fn shutdown_drains_racing_publishes() {
    loom::model(|| {
        let engine = tiny_engine(1, 2);
        let topic = engine.topic::<u32>("drain").unwrap();
        let log = Log::default();
        let l = log.clone();
        topic.subscribe(move |ev| l.push(**ev)).unwrap();
        let t = topic.clone();
        let producer = thread::spawn(move || {
            let mut accepted = Vec::new();
            for i in 0..2 {
                match t.publish(i) {
                    Ok(()) => accepted.push(i),
                    Err(e) => {
                        assert!(e.is_closed());
                        assert_eq!(e.into_inner(), i);
                    }
                }
            }
            accepted
        });
        let report = engine.shutdown();
        let accepted = producer.join().unwrap();
        assert_eq!(log.take(), accepted, "accepted == handled, in order");
        assert_eq!(report.published, accepted.len() as u64);
    });
}

/// A handler that publishes while the engine drains: its events are handled
/// too (intake closes only for threads outside the engine).
#[test]
fn shutdown_lets_handlers_publish_while_draining() {
    loom::model(|| {
        let engine = tiny_engine(1, 2);
        let a = engine.topic::<u32>("a").unwrap();
        let b = engine.topic::<u32>("b").unwrap();
        let log = Log::default();
        let l = log.clone();
        b.subscribe(move |ev| l.push(**ev)).unwrap();
        let b2 = b.clone();
        a.subscribe(move |ev| b2.publish(**ev + 100).unwrap())
            .unwrap();
        a.publish(1).unwrap();
        let report = engine.shutdown();
        assert_eq!(log.take(), vec![101]);
        assert_eq!(report.handled, 2);
    });
}
