//! Thread tokens: the process-unique id the publish hot path recognises
//! its own producer slot by, the flag that tells reclaimers whether a thread
//! is alive, and the thread's sticky slot choices (see the producer slots'
//! `# Orderings` in [`ProducerSlots`](crate::core::producer::ProducerSlots)).
#![allow(unreachable_pub)] // `pub` for `internals` under cfg(loom); crate-private otherwise

use std::cell::RefCell;

use crate::loom::sync::atomic::{AtomicBool, Ordering};
use crate::loom::sync::Arc;
use crate::loom::thread_local;

/// Per-thread state: the token that identifies the thread, the flag that tells
/// reclaimers whether it is still alive, and its sticky slot choices.
struct ThreadState {
    token: u64,
    alive: Arc<AtomicBool>,
    /// Where this thread publishes to each topic it has published to.
    choices: RefCell<Choices>,
}

/// A thread's sticky slot choices, by topic uid. The entries of dropped
/// topics are pruned whenever the map has doubled since the last pruning,
/// so it holds about twice the live topics the thread publishes to, at most.
#[derive(Default)]
struct Choices {
    by_topic: std::collections::HashMap<u64, Choice>,
    /// Prune when the map reaches this size.
    prune_at: usize,
}

struct Choice {
    slot: usize,
    /// The topic's liveness flag (`ProducerSlots::live`).
    live: Arc<AtomicBool>,
}

impl Choices {
    fn get(&self, topic: u64) -> Option<usize> {
        self.by_topic.get(&topic).map(|c| c.slot)
    }

    fn insert(&mut self, topic: u64, slot: usize, live: Arc<AtomicBool>) {
        if self.by_topic.len() >= self.prune_at {
            // Relaxed: a stale `true` only keeps an entry one round longer.
            self.by_topic.retain(|_, c| c.live.load(Ordering::Relaxed));
            self.prune_at = (2 * self.by_topic.len()).max(64);
        }
        self.by_topic.insert(topic, Choice { slot, live });
    }
}

impl ThreadState {
    fn new() -> Self {
        let token = crate::loom::unique_id();
        // Ignore a failure: only loom's thread-locals can be gone here.
        let _ = TOKEN.try_with(|t| t.set(token));
        ThreadState {
            token,
            alive: Arc::new(AtomicBool::new(true)),
            choices: RefCell::new(Choices::default()),
        }
    }
}

impl Drop for ThreadState {
    fn drop(&mut self) {
        // First forget the token: a destructor that runs after this one and
        // publishes must not use slots a reclaimer may take once `alive` is
        // clear (it finds `THREAD` gone and gets token 0).
        let _ = TOKEN.try_with(|t| t.set(0));
        // Release: pairs with the Acquire load in `ProducerSlots::claim`, so a
        // reclaimer sees everything this thread wrote to its slots' views.
        self.alive.store(false, Ordering::Release);
    }
}

thread_local! {
    static THREAD: ThreadState = ThreadState::new();
}

// The publish hot path's copy of the token: const-initialised and without a
// destructor, so reading it is one load, with no lazy-initialisation state to
// check. 0 until `THREAD` is initialised and again once it is torn down.
#[cfg(not(loom))]
std::thread_local! {
    static TOKEN: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}
// loom's `thread_local!` has no `const` form.
#[cfg(loom)]
thread_local! {
    static TOKEN: std::cell::Cell<u64> = std::cell::Cell::new(0);
}

/// This thread's token: process-unique, never reused, non-zero.
///
/// Returns 0 while the thread is being torn down (its thread-locals are gone);
/// no slot is ever owned by token 0, so such a thread takes the shared slot.
#[inline(always)]
pub fn thread_token() -> u64 {
    match TOKEN.try_with(std::cell::Cell::get).unwrap_or(0) {
        0 => first_token(),
        token => token,
    }
}

/// `thread_token` before this thread's state exists (creates it) or after it
/// was torn down (0).
#[cold]
#[inline(never)]
fn first_token() -> u64 {
    THREAD.try_with(|t| t.token).unwrap_or(0)
}

/// The slot this thread chose for topic `topic`, if it chose one.
pub(crate) fn remembered(topic: u64) -> Option<usize> {
    THREAD
        .try_with(|t| t.choices.borrow().get(topic))
        .ok()
        .flatten()
}

/// Remembers this thread's slot `slot` for topic `topic`, whose liveness
/// flag is `live`. Ignored while the thread is being torn down.
pub(crate) fn remember(topic: u64, slot: usize, live: Arc<AtomicBool>) {
    let _ = THREAD.try_with(|t| t.choices.borrow_mut().insert(topic, slot, live));
}

/// This thread's liveness flag, for a slot it claims (`None` while the
/// thread is being torn down).
pub(crate) fn alive() -> Option<Arc<AtomicBool>> {
    THREAD.try_with(|t| t.alive.clone()).ok()
}
