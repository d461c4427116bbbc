//! loom model of the receipt's waker handshake: a task awaiting a receipt
//! is always woken by the thread that completes it. A lost wake-up leaves
//! `block_on` parked forever, which loom reports as a deadlock.
#![cfg(loom)]

use loom::thread;
use pinbus::internals::receipt_with_shares;

/// Two lanes finishing on two threads while the task polls: the final
/// decrement races the poll's register-then-re-check from either thread.
#[test]
fn receipt_wakes_the_awaiting_task() {
    loom::model(|| {
        let (receipt, mut shares) = receipt_with_shares(2);
        let a = shares.pop().unwrap();
        let b = shares.pop().unwrap();
        let ta = thread::spawn(move || drop(a));
        let tb = thread::spawn(move || drop(b));
        loom::future::block_on(receipt.clone());
        assert!(receipt.is_complete());
        ta.join().unwrap();
        tb.join().unwrap();
    });
}

/// One lane, completed while the task may be between its two checks.
#[test]
fn receipt_completed_between_register_and_recheck() {
    loom::model(|| {
        let (receipt, mut shares) = receipt_with_shares(1);
        let a = shares.pop().unwrap();
        let ta = thread::spawn(move || drop(a));
        loom::future::block_on(receipt);
        ta.join().unwrap();
    });
}
