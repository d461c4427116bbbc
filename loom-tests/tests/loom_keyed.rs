//! loom model of a keyed group's partitions: members that each claim events
//! (under the group's claim lock, as a claim does), handle their pass and
//! release it never handle two events of a partition at once, handle them
//! in claim order, and leave none behind unflagged (invariants K1, K2 and
//! K3 of `lane/keyed.rs`).
#![cfg(loom)]

use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::{Arc, Mutex};
use loom::thread;
use pinbus::internals::{ModelMember, ModelPartitions};

/// What the members share: the partitions, the claim lock with the next
/// value to claim under it, the "a handler runs" flag and the log.
#[derive(Clone)]
struct Group {
    parts: Arc<ModelPartitions>,
    claim: Arc<Mutex<u32>>,
    busy: Arc<AtomicBool>,
    log: Arc<Mutex<Vec<u32>>>,
}

impl Group {
    fn new() -> Self {
        Group {
            parts: Arc::new(ModelPartitions::new(1)),
            claim: Arc::new(Mutex::new(0)),
            busy: Arc::new(AtomicBool::new(false)),
            log: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Starts a pass of at most `max` events that claims `new` fresh values.
    fn claim(&self, m: &mut ModelMember, max: usize, new: u32) {
        let mut next = self.claim.lock().unwrap();
        let first = *next;
        *next += new;
        self.parts.claim(m, max, first..first + new);
    }

    /// Handles the pass, checking that no other handler runs meanwhile.
    fn handle(&self, m: &mut ModelMember) {
        self.parts.handle(m, |v| {
            assert!(!self.busy.swap(true, Ordering::AcqRel), "two at once");
            self.log.lock().unwrap().push(v);
            self.busy.store(false, Ordering::Release);
        });
    }

    /// After every member is done: anything left must be flagged (K3); a
    /// last member takes it, and the log must hold `0..total` in order.
    fn finish(&self, total: u32) {
        let mut last = ModelMember::default();
        while self.log.lock().unwrap().len() < total as usize {
            assert!(self.parts.has_orphans(), "events left behind unflagged");
            self.claim(&mut last, 1, 0);
            self.handle(&mut last);
        }
        assert!(!self.parts.has_orphans());
        let log = self.log.lock().unwrap();
        assert_eq!(*log, (0..total).collect::<Vec<_>>(), "in claim order");
    }
}

/// Two members, one partition, an event each: whichever way the claims,
/// handling and releases interleave, a claim behind a holder is queued, and
/// both events are handled, one at a time, in claim order.
#[test]
fn keyed_two_members_no_overlap_in_order() {
    loom::model(|| {
        let group = Group::new();
        let member = || {
            let group = group.clone();
            thread::spawn(move || {
                let mut m = ModelMember::default();
                group.claim(&mut m, 8, 1);
                group.handle(&mut m);
            })
        };
        let (a, b) = (member(), member());
        a.join().unwrap();
        b.join().unwrap();
        group.finish(2);
    });
}

/// Passes of one event (max 1) that claim one event each: a pass takes a
/// queue of two in part, so the rest stays queued behind its holder.
#[test]
fn keyed_partial_takes_keep_order() {
    loom::model(|| {
        let group = Group::new();
        let member = || {
            let group = group.clone();
            thread::spawn(move || {
                let mut m = ModelMember::default();
                for _ in 0..2 {
                    group.claim(&mut m, 1, 1);
                    group.handle(&mut m);
                }
            })
        };
        let (a, b) = (member(), member());
        a.join().unwrap();
        b.join().unwrap();
        group.finish(4);
    });
}

/// A member whose worker lost its members gives its pass back: the events
/// go back before anything claimed later, for the other member.
#[test]
fn keyed_given_back_events_keep_order() {
    loom::model(|| {
        let group = Group::new();
        let leaver = {
            let group = group.clone();
            thread::spawn(move || {
                let mut m = ModelMember::default();
                group.claim(&mut m, 8, 1);
                group.parts.give_back(&mut m);
            })
        };
        let stayer = {
            let group = group.clone();
            thread::spawn(move || {
                let mut m = ModelMember::default();
                group.claim(&mut m, 8, 1);
                group.handle(&mut m);
            })
        };
        leaver.join().unwrap();
        stayer.join().unwrap();
        group.finish(2);
    });
}
