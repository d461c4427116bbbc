//! Room wake-ups: how a lane's consumer tells async producers waiting for
//! room (`Topic::publish_async` under `Backpressure::Block`) that it freed
//! some.
//!
//! A waiting producer counts itself in `waiters`, creates an
//! [`event_listener`] listener, then retries its publish; if the lane is
//! still full it awaits the listener. The consumer, after each batch it took
//! from the lane, looks at `waiters` and notifies only when someone waits:
//! the drain path pays a compiler fence and one relaxed load per batch, no
//! read-modify-write and no lock.
//!
//! Retiring the lane, a group member leaving, and a change of the topic's
//! state (shutdown) notify unconditionally, so a waiter also learns that
//! room will never come.
//!
//! # Orderings
//!
//! The handshake has the store-buffering shape parking has
//! ([`fence`](crate::sys::fence)): the producer increments `waiters` then
//! (after listening) runs `fence::heavy()` and loads the ring's head (its
//! retry); the consumer stores the head (Release, once per batch) then runs
//! `fence::light()` and loads `waiters`. One of the two sees the other's
//! store: either the retry finds room, or the consumer sees a waiter and
//! notifies the listener, which `event_listener` guarantees reaches a
//! listener created before the notification.

use event_listener::{Event, EventListener};

use crate::loom::sync::atomic::{AtomicUsize, Ordering};
use crate::sys::fence;

/// A lane's room notification (module docs).
#[derive(Default)]
pub(crate) struct RoomSignal {
    /// Producers between [`RoomSignal::listen`] and dropping their
    /// [`RoomSignal::leave`]; in `0 ..= number of waiting futures`.
    waiters: AtomicUsize,
    event: Event,
}

impl RoomSignal {
    /// After the consumer freed room (its head store is done).
    #[inline(always)]
    pub(crate) fn consumed(&self) {
        // Pairs with the `fence::heavy()` in `listen`.
        fence::light();
        if self.waiters.load(fence::AFTER_LIGHT) != 0 {
            self.notify_all();
        }
    }

    /// Wakes every waiter (room appeared, or never will).
    #[cold]
    #[inline(never)]
    pub(crate) fn notify_all(&self) {
        self.event.notify(usize::MAX);
    }

    /// Counts a waiter in and listens; the caller retries its publish after
    /// this returns, then awaits the listener if the lane is still full, and
    /// calls [`leave`](RoomSignal::leave) once it stops waiting.
    pub(crate) fn listen(&self) -> EventListener {
        // Relaxed: ordered before the retry's head load by the heavy fence.
        self.waiters.fetch_add(1, Ordering::Relaxed);
        let listener = self.event.listen();
        fence::heavy();
        listener
    }

    /// Counts a waiter out (it stopped waiting, done or dropped).
    pub(crate) fn leave(&self) {
        self.waiters.fetch_sub(1, Ordering::Relaxed);
    }
}
