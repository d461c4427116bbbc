//! loom model of a keyed group's partition: members that each queue an
//! event (under the group's claim lock, as a claim does) and then serve the
//! partition never handle two of its events at once, handle them in queue
//! order, and leave none behind (invariants K1 and K2 of `lane/keyed.rs`).
#![cfg(loom)]

use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::{Arc, Mutex};
use loom::thread;
use pinbus::internals::ModelPartitions;

/// Two members, one partition, an event each: whichever way the take,
/// release and re-check interleave, both events are handled, one at a time,
/// in the order they were queued.
#[test]
fn keyed_partition_two_members_no_overlap_no_stranding() {
    loom::model(|| {
        let parts = Arc::new(ModelPartitions::new(1));
        // The claim lock, and the next value to queue under it.
        let claim = Arc::new(Mutex::new(0u32));
        let busy = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(Vec::new()));
        let member = || {
            let (parts, claim, busy, log) =
                (parts.clone(), claim.clone(), busy.clone(), log.clone());
            thread::spawn(move || {
                {
                    let mut next = claim.lock().unwrap();
                    parts.push(*next);
                    *next += 1;
                }
                parts.serve(0, 8, |v| {
                    assert!(!busy.swap(true, Ordering::AcqRel), "two at once");
                    log.lock().unwrap().push(v);
                    busy.store(false, Ordering::Release);
                });
            })
        };
        let (a, b) = (member(), member());
        a.join().unwrap();
        b.join().unwrap();
        assert_eq!(*log.lock().unwrap(), vec![0, 1], "both, in queue order");
    });
}
