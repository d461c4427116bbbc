//! Bounded single-producer single-consumer ring: the storage of every lane.
//!
//! A lane (one topic's events for one worker, or for one consumer group) is a
//! set of these rings, one per producer slot (`producer.rs`), so a publish is a
//! plain store on a ring no other producer touches — no read-modify-write on
//! shared state. The design follows rtrb: positions that count up forever,
//! cached copies of the other side's index, and one index store per batch.
//!
//! # Invariant
//!
//! `head` and `tail` are positions in `0..usize::MAX`, wrapping; slot
//! `pos & mask` holds an initialised value exactly for `head <= pos < tail`
//! (wrapping arithmetic), and `tail - head <= capacity`.
//!
//! # Orderings
//!
//! - The producer writes slots, then publishes them with `tail.store(Release)`
//!   (one store per `push`/`push_iter`). It pairs with the `Acquire` load of
//!   `tail` in [`Consumer::ready`]: the slot writes happen-before the reads.
//! - The consumer reads, moves or drops slots, then frees them with
//!   `head.store(Release)` (one store per `release`/`pop_into`). It pairs with
//!   the `Acquire` load of `head` in [`Producer::free`]: the consumer is done
//!   with a slot before the producer writes it again.
//! - Each side loads its own index only from its local copy; the cached copy
//!   of the other side's index may be stale, which only under-reports
//!   free/ready slots ("possibly full → refresh → really full").
#![allow(unreachable_pub)] // `pub` for `internals` under cfg(loom); crate-private otherwise

use std::mem::MaybeUninit;

use crossbeam_utils::CachePadded;

use crate::loom::cell::UnsafeCell;
use crate::loom::sync::atomic::{AtomicUsize, Ordering};
use crate::loom::sync::Arc;

/// The shared part of a ring.
struct Ring<T> {
    /// Consumer-written: position of the next slot to read. Counts up forever,
    /// wrapping at `usize::MAX`; `tail - head` is in `0..=capacity`.
    head: CachePadded<AtomicUsize>,
    /// Producer-written: position of the next slot to write. Same encoding.
    tail: CachePadded<AtomicUsize>,
    /// `capacity` slots; `capacity` is a power of two.
    slots: Box<[UnsafeCell<MaybeUninit<T>>]>,
    /// `capacity - 1`.
    mask: usize,
}

// SAFETY: the ring moves `T`s from the producer thread to the consumer thread,
// so it needs `T: Send`. Slot access is exclusive by the invariant above (a
// slot belongs to the producer outside `head..tail` and to the consumer
// inside), so no `T` is ever shared between threads and `T: Sync` is not
// needed.
unsafe impl<T: Send> Send for Ring<T> {}
// SAFETY: as above; `&Ring` only gives access through `Producer`/`Consumer`,
// each of which is unique.
unsafe impl<T: Send> Sync for Ring<T> {}

impl<T> Ring<T> {
    #[inline(always)]
    fn slot(&self, pos: usize) -> &UnsafeCell<MaybeUninit<T>> {
        let index = pos & self.mask;
        debug_assert!(index < self.slots.len());
        &self.slots[index]
    }
}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        // Both handles are gone (this is the last `Arc`), so no other thread
        // touches the ring; Relaxed loads see the final values because the
        // `Arc` drop synchronizes with the handles' drops.
        let head = self.head.load(Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Relaxed);
        let mut pos = head;
        while pos != tail {
            self.slot(pos).with_mut(|p| {
                // SAFETY: `head <= pos < tail`, so the slot is initialised
                // (module invariant), and `&mut self` means nobody else can
                // access it; it is dropped exactly once because `pos` only
                // moves forward.
                unsafe { (*p).assume_init_drop() }
            });
            pos = pos.wrapping_add(1);
        }
    }
}

/// Creates a ring of `capacity` slots (a power of two, at least 1) and returns
/// its two ends.
///
/// All slots are allocated here; pushing and popping never allocate.
pub fn channel<T>(capacity: usize) -> (Producer<T>, Consumer<T>) {
    assert!(
        capacity.is_power_of_two(),
        "ring capacity must be a power of two (validated by the engine builder)"
    );
    let slots = (0..capacity)
        .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
        .collect();
    let ring = Arc::new(Ring {
        head: CachePadded::new(AtomicUsize::new(0)),
        tail: CachePadded::new(AtomicUsize::new(0)),
        slots,
        mask: capacity - 1,
    });
    (
        Producer {
            ring: ring.clone(),
            tail: 0,
            cached_head: 0,
        },
        Consumer {
            ring,
            head: 0,
            cached_tail: 0,
        },
    )
}

/// The writing end. Unique: exactly one `Producer` exists per ring.
pub struct Producer<T> {
    ring: Arc<Ring<T>>,
    /// Always in sync with `ring.tail` (only this handle writes it).
    tail: usize,
    /// A copy of `ring.head` for quick access; can be stale (never ahead).
    cached_head: usize,
}

impl<T> Producer<T> {
    /// The number of slots.
    pub fn capacity(&self) -> usize {
        self.ring.mask + 1
    }

    /// Free slots, looking at the consumer's index again only if the cached
    /// copy shows fewer than `wanted`.
    ///
    /// The answer can only be too low: the consumer may free more slots at any
    /// time, but only this producer can fill them, so `n` free slots stay free
    /// until this producer writes.
    #[inline]
    pub fn free(&mut self, wanted: usize) -> usize {
        let capacity = self.capacity();
        let mut free = capacity - self.tail.wrapping_sub(self.cached_head);
        if free < wanted {
            // Possibly full: refresh. Acquire pairs with the Release store in
            // `Consumer::release`/`pop_into`: the consumer's last access to the
            // freed slots happens-before our writes to them.
            self.cached_head = self.ring.head.load(Ordering::Acquire);
            free = capacity - self.tail.wrapping_sub(self.cached_head);
        }
        debug_assert!(free <= capacity);
        free
    }

    /// Writes `value` into the next slot without publishing it, or hands it
    /// back if the cached view of the consumer's index shows no room (call
    /// [`free`] first: it refreshes that view). Call [`commit`] to publish.
    ///
    /// [`free`]: Producer::free
    /// [`commit`]: Producer::commit
    #[inline(always)]
    pub fn write(&mut self, value: T) -> Result<(), T> {
        if self.tail.wrapping_sub(self.cached_head) >= self.capacity() {
            return Err(value);
        }
        self.ring.slot(self.tail).with_mut(|p| {
            // SAFETY: `tail - cached_head < capacity` (checked above) and
            // `cached_head <= head`, so position `tail` is outside
            // `head..tail`: the consumer does not access this slot (module
            // invariant; the Release store that freed it is paired by the
            // Acquire in `free`). Only this unique producer writes at `tail`,
            // and the slot holds no value (consumed or never used), so
            // overwriting it leaks nothing.
            unsafe { (*p).write(value) };
        });
        self.tail = self.tail.wrapping_add(1);
        Ok(())
    }

    /// Publishes every slot written since the last commit.
    #[inline(always)]
    pub fn commit(&mut self) {
        // Release pairs with the Acquire load in `Consumer::ready`: the slot
        // writes above happen-before the consumer reads them.
        self.ring.tail.store(self.tail, Ordering::Release);
    }

    /// Pushes one value, or hands it back if the ring is full.
    ///
    /// # Errors
    ///
    /// `Err(value)` when no slot is free.
    #[inline]
    pub fn push(&mut self, value: T) -> Result<(), T> {
        if self.free(1) == 0 {
            return Err(value);
        }
        self.write(value)?;
        self.commit();
        Ok(())
    }

    /// A read-only view of the ring's occupancy, for other threads.
    pub fn probe(&self) -> Probe<T> {
        Probe {
            ring: self.ring.clone(),
        }
    }
}

impl<T> std::fmt::Debug for Producer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("capacity", &self.capacity())
            .field("tail", &self.tail)
            .finish_non_exhaustive()
    }
}

/// The reading end. Unique: exactly one `Consumer` exists per ring.
pub struct Consumer<T> {
    ring: Arc<Ring<T>>,
    /// Always in sync with `ring.head` (only this handle writes it).
    head: usize,
    /// A copy of `ring.tail` for quick access; can be stale (never ahead).
    cached_tail: usize,
}

impl<T> Consumer<T> {
    /// The number of slots.
    pub fn capacity(&self) -> usize {
        self.ring.mask + 1
    }

    /// The number of values ready to read, looking at the producer's index
    /// again only if the cached copy shows fewer than `wanted`.
    ///
    /// Can only be too low: the producer may add values at any time, and only
    /// this consumer removes them.
    #[inline]
    pub fn ready(&mut self, wanted: usize) -> usize {
        let mut ready = self.cached_tail.wrapping_sub(self.head);
        if ready < wanted {
            // Acquire pairs with the Release store in `Producer::commit`: the
            // producer's slot writes happen-before our reads.
            self.cached_tail = self.ring.tail.load(Ordering::Acquire);
            ready = self.cached_tail.wrapping_sub(self.head);
        }
        debug_assert!(ready <= self.capacity());
        ready
    }

    /// Runs `f` on the `i`-th ready value (0 = oldest) in place, or returns
    /// `None` if fewer than `i + 1` values were reported by [`ready`].
    ///
    /// [`ready`]: Consumer::ready
    #[inline(always)]
    pub fn with_mut<R>(&mut self, i: usize, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        if i >= self.cached_tail.wrapping_sub(self.head) {
            return None;
        }
        let pos = self.head.wrapping_add(i);
        Some(self.ring.slot(pos).with_mut(|p| {
            // SAFETY: `head <= pos < cached_tail <= tail`, so the slot is
            // initialised and published: the Acquire load that produced
            // `cached_tail` (in `ready`) pairs with the producer's Release in
            // `commit`. The producer does not touch positions in `head..tail`,
            // and this consumer is unique and borrowed mutably, so the
            // reference is exclusive for the duration of `f`.
            f(unsafe { (*p).assume_init_mut() })
        }))
    }

    /// Drops the `n` oldest ready values in place and frees their slots with a
    /// single index store. `n` is clamped to the number reported by `ready`.
    pub fn release(&mut self, n: usize) {
        let n = n.min(self.cached_tail.wrapping_sub(self.head));
        // If a value's `Drop` panics, still free what was dropped (and the
        // panicking one: its drop has started and must not run twice).
        struct Publish<'a, T> {
            consumer: &'a mut Consumer<T>,
            end: usize,
        }
        impl<T> Drop for Publish<'_, T> {
            fn drop(&mut self) {
                self.consumer.head = self.end;
                // Release pairs with the Acquire load in `Producer::free`.
                self.consumer.ring.head.store(self.end, Ordering::Release);
            }
        }
        let start = self.head;
        let mut guard = Publish {
            consumer: self,
            end: start,
        };
        for i in 0..n {
            let pos = start.wrapping_add(i);
            guard.end = pos.wrapping_add(1);
            guard.consumer.ring.slot(pos).with_mut(|p| {
                // SAFETY: `pos` is in `head..cached_tail` (clamped above), so
                // the slot is initialised and published (see `with_mut`); it is
                // dropped once, because `head` moves past it right after.
                unsafe { (*p).assume_init_drop() }
            });
        }
    }

    /// Moves up to `max` ready values into `out` (oldest first) and frees their
    /// slots with a single index store. Returns how many were moved.
    ///
    /// `out` only grows within its capacity if the caller reserved it.
    pub fn pop_into(&mut self, max: usize, out: &mut Vec<T>) -> usize {
        let n = self.ready(max).min(max);
        for i in 0..n {
            let pos = self.head.wrapping_add(i);
            let value = self.ring.slot(pos).with_mut(|p| {
                // SAFETY: `pos` is in `head..cached_tail` (n <= ready), so the
                // slot is initialised and published (see `with_mut`). Reading
                // moves the value out; `head` moves past the slot below, so it
                // is never read or dropped again.
                unsafe { (*p).assume_init_read() }
            });
            out.push(value);
        }
        if n > 0 {
            self.head = self.head.wrapping_add(n);
            // Release pairs with the Acquire load in `Producer::free`.
            self.ring.head.store(self.head, Ordering::Release);
        }
        n
    }

    /// Pops the oldest value, if any.
    #[cfg_attr(not(any(test, loom)), allow(dead_code))]
    pub fn pop(&mut self) -> Option<T> {
        if self.ready(1) == 0 {
            return None;
        }
        let value = self.ring.slot(self.head).with_mut(|p| {
            // SAFETY: `ready(1) >= 1`, so `head < cached_tail`: the slot is
            // initialised and published (see `with_mut`); `head` moves past it
            // below, so it is never read or dropped again.
            unsafe { (*p).assume_init_read() }
        });
        self.head = self.head.wrapping_add(1);
        // Release pairs with the Acquire load in `Producer::free`.
        self.ring.head.store(self.head, Ordering::Release);
        Some(value)
    }
}

impl<T> std::fmt::Debug for Consumer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("capacity", &self.capacity())
            .field("head", &self.head)
            .finish_non_exhaustive()
    }
}

/// A read-only view of a ring's indices, usable from any thread.
pub struct Probe<T> {
    ring: Arc<Ring<T>>,
}

impl<T> Probe<T> {
    /// Whether the ring held no value at the moment of the loads.
    ///
    /// Racy by nature: it may stop being empty at any time. It is exact when
    /// the caller knows no producer is active, and `Acquire` makes every push
    /// whose commit happened-before this call visible.
    pub fn is_empty(&self) -> bool {
        // Acquire on both: pairs with the Release stores of `commit` and
        // `release`, so a completed push or pop is seen.
        let tail = self.ring.tail.load(Ordering::Acquire);
        let head = self.ring.head.load(Ordering::Acquire);
        tail == head
    }
}

impl<T> Clone for Probe<T> {
    fn clone(&self) -> Self {
        Self {
            ring: self.ring.clone(),
        }
    }
}

impl<T> std::fmt::Debug for Probe<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Probe").finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize as StdAtomicUsize, Ordering as StdOrdering};

    /// Counts live instances, to catch leaks and double drops.
    struct Tracked<'a>(u64, &'a StdAtomicUsize);
    impl<'a> Tracked<'a> {
        fn new(v: u64, live: &'a StdAtomicUsize) -> Self {
            live.fetch_add(1, StdOrdering::Relaxed);
            Tracked(v, live)
        }
    }
    impl Drop for Tracked<'_> {
        fn drop(&mut self) {
            self.1.fetch_sub(1, StdOrdering::Relaxed);
        }
    }

    #[test]
    fn push_pop_in_order_across_wrap_around() {
        let (mut p, mut c) = channel::<u64>(4);
        for round in 0..10u64 {
            for i in 0..3 {
                p.push(round * 10 + i).unwrap();
            }
            for i in 0..3 {
                assert_eq!(c.pop(), Some(round * 10 + i));
            }
        }
        assert_eq!(c.pop(), None);
    }

    #[test]
    fn full_ring_hands_the_value_back() {
        let (mut p, mut c) = channel::<u64>(2);
        p.push(1).unwrap();
        p.push(2).unwrap();
        assert_eq!(p.push(3), Err(3));
        assert_eq!(c.pop(), Some(1));
        p.push(3).unwrap();
        assert_eq!(c.pop(), Some(2));
        assert_eq!(c.pop(), Some(3));
    }

    #[test]
    fn writes_are_published_by_one_commit() {
        let (mut p, mut c) = channel::<u64>(4);
        assert_eq!(p.free(10), 4);
        for v in 0..4 {
            p.write(v).unwrap();
        }
        assert_eq!(p.write(4), Err(4));
        assert_eq!(c.ready(4), 0, "nothing is visible before the commit");
        p.commit();
        assert_eq!(c.ready(4), 4);
        let mut out = Vec::new();
        assert_eq!(c.pop_into(3, &mut out), 3);
        assert_eq!(out, vec![0, 1, 2]);
        assert_eq!(p.free(usize::MAX), 3);
    }

    #[test]
    fn with_mut_and_release_drop_in_place() {
        let live = StdAtomicUsize::new(0);
        {
            let (mut p, mut c) = channel(4);
            for i in 0..4 {
                assert!(p.push(Tracked::new(i, &live)).is_ok());
            }
            assert_eq!(c.ready(2), 4);
            assert_eq!(c.with_mut(1, |t| t.0), Some(1));
            assert_eq!(c.with_mut(4, |t| t.0), None);
            c.release(2);
            assert_eq!(live.load(StdOrdering::Relaxed), 2);
            assert_eq!(c.pop().map(|t| t.0), Some(2));
            assert_eq!(live.load(StdOrdering::Relaxed), 1);
        }
        // The ring's Drop drops what is left.
        assert_eq!(live.load(StdOrdering::Relaxed), 0);
    }

    #[test]
    fn release_is_clamped_to_ready() {
        let (mut p, mut c) = channel::<u64>(4);
        p.push(7).unwrap();
        assert_eq!(c.ready(1), 1);
        c.release(10);
        assert_eq!(c.ready(1), 0);
        assert_eq!(p.free(4), 4);
    }

    #[test]
    fn probe_sees_committed_pushes() {
        let (mut p, mut c) = channel::<u64>(2);
        let probe = p.probe();
        assert!(probe.is_empty());
        p.push(1).unwrap();
        assert!(!probe.is_empty());
        c.pop();
        assert!(probe.is_empty());
    }

    #[test]
    fn spsc_threads_deliver_everything_in_order() {
        // Small enough for Miri, large enough to wrap many times.
        let n: u64 = if cfg!(miri) { 500 } else { 200_000 };
        let (mut p, mut c) = channel::<u64>(8);
        let consumer = std::thread::spawn(move || {
            let mut expected = 0;
            while expected < n {
                let ready = c.ready(8);
                for i in 0..ready {
                    assert_eq!(c.with_mut(i, |v| *v), Some(expected));
                    expected += 1;
                }
                c.release(ready);
            }
        });
        let mut next = 0;
        while next < n {
            let room = p.free(8);
            for _ in 0..room.min((n - next) as usize) {
                p.write(next).unwrap();
                next += 1;
            }
            p.commit();
        }
        consumer.join().unwrap();
    }

    #[test]
    fn a_panicking_drop_still_frees_its_slot() {
        struct Bomb(bool);
        impl Drop for Bomb {
            fn drop(&mut self) {
                if self.0 {
                    panic!("boom");
                }
            }
        }
        let (mut p, mut c) = channel(4);
        assert!(p.push(Bomb(false)).is_ok());
        assert!(p.push(Bomb(true)).is_ok());
        assert!(p.push(Bomb(false)).is_ok());
        c.ready(3);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| c.release(3)));
        assert!(r.is_err());
        // The first two slots are free; the third value is still there.
        assert_eq!(c.ready(1), 1);
        assert_eq!(p.free(4), 3);
        c.release(1);
    }
}
