//! loom model of a snapshot swap racing publish: a subscription is removed
//! while a producer publishes; the removed handler is never called after
//! `unsubscribe` returns, and the subscription that stays loses nothing.
#![cfg(loom)]

mod common;

use common::{tiny_engine, Log};
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::Arc;
use loom::thread;

#[test]
fn snapshot_swap_racing_publish() {
    loom::model(|| {
        let engine = tiny_engine(1, 2);
        let topic = engine.topic::<u32>("swap").unwrap();
        let stays = Log::default();
        let s = stays.clone();
        topic.subscribe(move |ev| s.push(**ev)).unwrap();
        let returned = Arc::new(AtomicBool::new(false));
        let r = returned.clone();
        let leaving = topic
            .subscribe(move |_| {
                // Acquire: pairs with the Release store after unsubscribe.
                assert!(
                    !r.load(Ordering::Acquire),
                    "called after unsubscribe returned"
                );
            })
            .unwrap();
        let t = topic.clone();
        let producer = thread::spawn(move || {
            for i in 0..2 {
                t.publish(i).unwrap();
            }
        });
        leaving.unsubscribe();
        returned.store(true, Ordering::Release);
        producer.join().unwrap();
        engine.shutdown();
        assert_eq!(
            stays.take(),
            vec![0, 1],
            "no loss for the subscription that stays"
        );
    });
}
