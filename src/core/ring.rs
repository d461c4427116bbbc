//! Bounded single-producer single-consumer ring: the storage of every lane.
//!
//! A lane (one topic's events for one worker, or for one consumer group) is a
//! set of these rings, one per producer slot ([`producer`](crate::core::producer)), so a publish is a
//! plain store on a ring no other producer touches — no read-modify-write on
//! shared state.
//!
//! Each slot carries a 64-bit *stamp* beside its value: the caller's 63-bit
//! tag and one bit of lap parity. A ring made with [`channel_carrying`] may
//! carry an `Arc` share in the stamp instead of the tag's upper bits
//! ([`attach`](crate::core::attach), invariants A1–A2): tags there are at
//! most [`MAX_PLAIN_TAG`], and the ring's `Drop` settles the shares of the
//! slots nobody consumed. The producer publishes a slot by storing its
//! stamp; the consumer finds ready slots by reading stamps, in the cache line
//! it reads anyway. No index is written per event that the other side polls
//! (a tail index read by a polling consumer turns every publish into a cache
//! miss on both cores). The consumer publishes its `head` once per batch; the
//! producer reads it only when its cached limit (`head` + capacity) says the
//! ring is full (rtrb's "possibly full → refresh → really full").
//!
//! # Invariants
//!
//! - Positions count up forever, wrapping at `usize::MAX`; slot `pos & mask`
//!   serves positions `pos`, `pos + capacity`, … The *lap* of a position is
//!   `pos >> shift`, and its parity is the stamp's bit 0 once it is written.
//!   (`2^64 / capacity` is even, so parity is continuous across the wrap.)
//! - `head <= tail <= head + capacity`, where `tail` is the producer's local
//!   count of writes. The value of slot `pos & mask` is initialised exactly
//!   for `head <= pos < tail`.
//! - When the consumer looks at position `pos` (lap L), every position before
//!   it has been consumed, so the slot last held lap L−1 (parity differs: not
//!   ready) or holds lap L (ready). It cannot hold lap L+1: the producer never
//!   runs more than `capacity` ahead of `head`.
//!
//! # Orderings
//!
//! - Producer: write the value, then `stamp.store(Release)`. Consumer:
//!   `stamp.load(Acquire)`, then read the value. The pair publishes the value.
//! - Consumer: move values out, then `head.store(Release)` once per batch.
//!   Producer: `head.load(Acquire)` when its cached limit shows the ring full,
//!   then overwrite. The consumer is done with a slot before it is reused.
//! - Initial stamps (parity of lap −1) are written before the ring is shared.
#![allow(unreachable_pub)] // `pub` for `internals` under cfg(loom); crate-private otherwise

use std::mem::MaybeUninit;

use crossbeam_utils::CachePadded;

use crate::core::attach::{Attached, Loaded, NoAttachment, Settle, Stamp, ATTACHED_TAG_BITS};
use crate::loom::cell::UnsafeCell;
use crate::loom::sync::atomic::{AtomicUsize, Ordering};
use crate::loom::sync::Arc;

/// The largest tag a slot can carry (63 bits) on a ring that carries no
/// shares.
pub const MAX_TAG: u64 = u64::MAX >> 1;

/// The largest tag a slot can carry on a ring that carries shares: tag bit
/// 62 says whether a share travels in the stamp ([`attach`]).
///
/// [`attach`]: crate::core::attach
pub const MAX_PLAIN_TAG: u64 = MAX_TAG >> 1;

/// The largest tag of an entry that carries a share
/// ([`Producer::write_attached`]).
pub const MAX_ATTACHED_TAG: u64 = (1 << ATTACHED_TAG_BITS) - 1;

/// The largest tag `put` accepts on a ring whose share type is `X`.
const fn max_tag<X: Settle>() -> u64 {
    if X::CARRIED {
        MAX_PLAIN_TAG
    } else {
        MAX_TAG
    }
}

/// How far ahead of its writes (in slots) a producer asks for cache lines
/// in writable state, on rings of at least [`PREFETCH_MIN_CAPACITY`] slots.
const PREFETCH_AHEAD: usize = 32;

/// Smaller rings get no prefetch: the line `PREFETCH_AHEAD` slots on could
/// still be the one the consumer reads.
const PREFETCH_MIN_CAPACITY: usize = 8 * PREFETCH_AHEAD;

/// Asks the CPU for the cache line at `at` in writable (exclusive) state,
/// without waiting for it. The line was last read by the consumer, on another
/// core: taking it over ahead of the write keeps that transfer off the
/// producer's critical path (`docs/benchmarks.md`, "Prefetching the
/// producer's next lines"). `at` may point anywhere, past the slots too: it
/// is never dereferenced.
#[inline(always)]
fn prefetch_for_write<T>(at: *const Slot<T>) {
    #[cfg(all(target_arch = "x86_64", not(any(loom, miri))))]
    // SAFETY: `prefetchw` is a hint: it changes no register, flag or memory
    // the program can observe and never faults, whatever the address; on
    // x86-64 CPUs without it, its encoding (0F 0D /1) is a no-op.
    unsafe {
        core::arch::asm!(
            "prefetchw [{0}]",
            in(reg) at,
            options(nostack, preserves_flags, readonly)
        );
    }
    #[cfg(not(all(target_arch = "x86_64", not(any(loom, miri)))))]
    let _ = at;
}

struct Slot<T> {
    /// `tag << 1 | lap parity` of the last write, and the share it carries
    /// if any ([`attach`](crate::core::attach)); starts at parity 1 (lap −1).
    stamp: Stamp,
    value: UnsafeCell<MaybeUninit<T>>,
}

/// The shared part of a ring: values of type `T`, and shares of `Arc<X>`s
/// carried in stamps (none for [`NoAttachment`]).
struct Ring<T, X: Settle = NoAttachment> {
    /// Consumer-written: position of the next slot to read. Counts up forever,
    /// wrapping at `usize::MAX`; never more than `capacity` behind the
    /// producer's writes.
    head: CachePadded<AtomicUsize>,
    /// `capacity` slots; `capacity` is a power of two.
    slots: Box<[Slot<T>]>,
    /// `capacity - 1`.
    mask: usize,
    /// `log2(capacity)`: `pos >> shift` is the lap of `pos`.
    shift: u32,
    _shares: std::marker::PhantomData<Attached<X>>,
}

// SAFETY: the ring moves `T`s from the producer thread to the consumer thread,
// so it needs `T: Send`. A value is accessed by one side at a time (module
// invariants: the producer writes only outside `head..tail`, the consumer
// reads only inside), so no `T` is ever shared and `T: Sync` is not needed.
// Shares are `Arc<X>` references with `X: Send + Sync` (`Settle`), moved
// the same way.
unsafe impl<T: Send, X: Settle> Send for Ring<T, X> {}
// SAFETY: as above; `&Ring` only gives access through `Producer`/`Consumer`,
// each of which is unique.
unsafe impl<T: Send, X: Settle> Sync for Ring<T, X> {}

impl<T, X: Settle> Ring<T, X> {
    /// The slots with their index arithmetic, as a copy a caller can keep in
    /// registers across calls that may write memory.
    #[inline(always)]
    fn shape(&self) -> Shape<'_, T> {
        Shape {
            slots: &self.slots,
            mask: self.mask,
            shift: self.shift,
        }
    }

    #[inline(always)]
    fn slot(&self, pos: usize) -> &Slot<T> {
        self.shape().slot(pos)
    }

    #[inline(always)]
    fn stamp_if_ready(&self, pos: usize) -> Option<u64> {
        self.shape().stamp_if_ready(pos)
    }
}

/// A ring's slots and the constants that map a position onto them.
struct Shape<'a, T> {
    slots: &'a [Slot<T>],
    /// `slots.len() - 1`.
    mask: usize,
    /// `log2(slots.len())`.
    shift: u32,
}

impl<'a, T> Shape<'a, T> {
    #[inline(always)]
    fn slot(&self, pos: usize) -> &'a Slot<T> {
        let index = pos & self.mask;
        debug_assert!(index < self.slots.len());
        // SAFETY: `mask` is `slots.len() - 1` with `slots.len()` a power of
        // two (`channel`), so `pos & mask < slots.len()`.
        unsafe { self.slots.get_unchecked(index) }
    }

    /// Lap parity of position `pos`.
    #[inline(always)]
    fn parity(&self, pos: usize) -> u64 {
        ((pos >> self.shift) & 1) as u64
    }

    /// Whether the slot for `pos` holds the value written for `pos`: its
    /// stamp as loaded if so. `Acquire`: pairs with the producer's `Release`
    /// stamp store.
    #[inline(always)]
    fn loaded_if_ready(&self, pos: usize) -> Option<Loaded> {
        let stamp = self.slot(pos).stamp.load(Ordering::Acquire);
        (stamp.bits() & 1 == self.parity(pos)).then_some(stamp)
    }

    /// [`loaded_if_ready`](Shape::loaded_if_ready), as the stamp's bits
    /// shifted past the parity bit (the tag, with any share's field).
    #[inline(always)]
    fn stamp_if_ready(&self, pos: usize) -> Option<u64> {
        self.loaded_if_ready(pos).map(|s| s.bits() >> 1)
    }
}

impl<T, X: Settle> Drop for Ring<T, X> {
    fn drop(&mut self) {
        // Both handles are gone (this is the last `Arc`), so no other thread
        // touches the ring; the `Arc` drop synchronizes with the handles'.
        let head = self.head.load(Ordering::Relaxed);
        // Shares first, so that a value's panicking `Drop` cannot keep a
        // share from settling (a receipt would wait forever).
        let mut pos = head;
        while let Some(stamp) = self.shape().loaded_if_ready(pos) {
            if X::CARRIED && stamp.is_attached() {
                // SAFETY: the slot is ready and unconsumed (the consumer
                // stopped at `head`), so its share was not taken (A2); the
                // ring's share type is `X`; `pos` moves forward, so each is
                // taken once. Clearing the stamp is not needed: the second
                // loop below reads only the parity bit.
                drop(unsafe { stamp.take_share::<X>() });
            }
            pos = pos.wrapping_add(1);
        }
        let mut pos = head;
        while self.stamp_if_ready(pos).is_some() {
            self.slot(pos).value.with_mut(|p| {
                // SAFETY: the stamp for `pos` is ready, so the producer wrote
                // the value and the consumer has not taken it (it stopped at
                // `head`); `&mut self` excludes everyone else, and `pos` moves
                // forward, so each value is dropped once.
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
    channel_carrying(capacity)
}

/// [`channel`] for a ring whose entries may carry shares of `Arc<X>`s in
/// their stamps ([`Producer::write_attached`]).
pub fn channel_carrying<T, X: Settle>(capacity: usize) -> (Producer<T, X>, Consumer<T, X>) {
    assert!(
        capacity.is_power_of_two(),
        "ring capacity must be a power of two (validated by the engine builder)"
    );
    let slots = (0..capacity)
        .map(|_| Slot {
            // Parity 1 = lap −1: not ready for lap 0.
            stamp: Stamp::new(1),
            value: UnsafeCell::new(MaybeUninit::uninit()),
        })
        .collect();
    let ring = Arc::new(Ring {
        head: CachePadded::new(AtomicUsize::new(0)),
        slots,
        mask: capacity - 1,
        shift: capacity.trailing_zeros(),
        _shares: std::marker::PhantomData,
    });
    (
        Producer {
            ring: ring.clone(),
            tail: 0,
            limit: capacity,
            ahead: if capacity >= PREFETCH_MIN_CAPACITY {
                PREFETCH_AHEAD
            } else {
                0
            },
        },
        Consumer {
            ring,
            head: 0,
            behind: false,
        },
    )
}

/// The writing end. Unique: exactly one `Producer` exists per ring.
pub struct Producer<T, X: Settle = NoAttachment> {
    ring: Arc<Ring<T, X>>,
    /// Positions written so far (the next one to write).
    tail: usize,
    /// A copy of `ring.head` plus the capacity: the position this producer
    /// may write up to (exclusive) without looking at `head` again. Can be
    /// stale (never ahead of `head + capacity`).
    limit: usize,
    /// Distance of the slot whose line `put` prefetches; 0 on small rings
    /// (the slot being written: no effect).
    ahead: usize,
}

impl<T, X: Settle> Producer<T, X> {
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
        let mut free = self.limit.wrapping_sub(self.tail);
        if free < wanted {
            // Possibly full: refresh. Acquire pairs with the Release store in
            // `Consumer::consume`/`pop`: the consumer's last access to the
            // freed slots happens-before our writes to them.
            let head = self.ring.head.load(Ordering::Acquire);
            self.limit = head.wrapping_add(self.capacity());
            free = self.limit.wrapping_sub(self.tail);
        }
        debug_assert!(free <= self.capacity());
        free
    }

    /// Writes `value` with `tag` (at most [`MAX_TAG`], or [`MAX_PLAIN_TAG`]
    /// on a ring that carries shares) into the next slot and publishes it,
    /// or hands the value back if the cached view of the consumer's index
    /// shows no room (call [`free`] first to refresh it).
    ///
    /// [`free`]: Producer::free
    #[inline(always)]
    pub fn write(&mut self, tag: u64, value: T) -> Result<(), T> {
        if self.tail == self.limit {
            return Err(value);
        }
        // SAFETY: room checked just above.
        unsafe { self.put(tag, value) };
        Ok(())
    }

    /// Writes `value` with `tag` into the next slot and publishes it.
    ///
    /// # Safety
    ///
    /// `tail != limit`: the cached view of the consumer's index shows room.
    #[inline(always)]
    unsafe fn put(&mut self, tag: u64, value: T) {
        debug_assert!(tag <= max_tag::<X>());
        // SAFETY: the caller's contract.
        unsafe {
            self.put_with(value, |stamp, parity| {
                // Release: pairs with the Acquire in `Shape::loaded_if_ready`,
                // so the value written before is visible to the consumer that
                // sees the stamp.
                stamp.store(tag << 1 | parity, Ordering::Release);
            });
        }
    }

    /// Writes `value`, with `tag` (at most [`MAX_ATTACHED_TAG`]) and
    /// `share` carried in its stamp, into the next slot and publishes it.
    /// Hands both back if the cached view of the consumer's index shows no
    /// room (call [`free`] first to refresh it) or if `share` does not
    /// [fit](Attached::fits) in a stamp.
    ///
    /// [`free`]: Producer::free
    #[inline(always)]
    #[allow(clippy::type_complexity)]
    pub fn write_attached(
        &mut self,
        tag: u64,
        share: Attached<X>,
        value: T,
    ) -> Result<(), (T, Attached<X>)> {
        if self.tail == self.limit || !X::CARRIED || !share.fits() {
            return Err((value, share));
        }
        debug_assert!(tag <= MAX_ATTACHED_TAG);
        // SAFETY: room checked just above.
        unsafe {
            self.put_with(value, |stamp, parity| {
                // Release: as in `put`; it publishes the share with the value
                // (A1).
                stamp.store_attached(
                    (tag & MAX_ATTACHED_TAG) << 1 | parity,
                    share,
                    Ordering::Release,
                );
            });
        }
        Ok(())
    }

    /// Writes `value` into the next slot, then has `publish` store the
    /// slot's stamp (given the slot's lap parity), then counts the write.
    ///
    /// # Safety
    ///
    /// `tail != limit`: the cached view of the consumer's index shows room.
    #[inline(always)]
    unsafe fn put_with(&mut self, value: T, publish: impl FnOnce(&Stamp, u64)) {
        debug_assert!((1..=self.capacity()).contains(&self.limit.wrapping_sub(self.tail)));
        let pos = self.tail;
        let shape = self.ring.shape();
        let slot = shape.slot(pos);
        // Past the last slot this asks for lines after the array (harmless,
        // and only for the lap's last `ahead` writes): cheaper than wrapping.
        prefetch_for_write((slot as *const Slot<T>).wrapping_add(self.ahead));
        slot.value.with_mut(|p| {
            // SAFETY: `limit` is `head + capacity` for a `head` read earlier,
            // and `head` only grows, so `limit <= head + capacity` now; with
            // `tail != limit` (the caller's contract) and `tail <= limit`
            // (never more than `capacity` written ahead), `tail - head <
            // capacity` (wrapping arithmetic throughout), so `pos` is outside
            // `head..tail`: the consumer does not access this slot (module
            // invariants; the Release store that freed it is paired by the
            // Acquire in `free`). Only this unique producer writes, and the
            // slot holds no value (consumed or never used), so overwriting it
            // leaks nothing.
            unsafe { (*p).write(value) };
        });
        publish(&slot.stamp, shape.parity(pos));
        self.tail = pos.wrapping_add(1);
    }

    /// Writes values from `values` with tag 0, as many as fit and at most
    /// `max`, refreshing the view of free room once; returns how many. Stops
    /// early when `values` runs out; takes no value it cannot write.
    #[inline]
    pub fn write_from(&mut self, values: &mut impl Iterator<Item = T>, max: usize) -> usize {
        let room = self.free(max).min(max);
        let mut written = 0;
        while written < room {
            let Some(value) = values.next() else {
                break;
            };
            // SAFETY: `free` showed `room` free slots in the cached view, and
            // `written < room` of them are used.
            unsafe { self.put(0, value) };
            written += 1;
        }
        written
    }

    /// Pushes `value` with tag 0, refreshing the view of free room if needed.
    ///
    /// # Errors
    ///
    /// `Err(value)` when no slot is free.
    #[inline(always)]
    #[cfg_attr(not(any(test, loom)), allow(dead_code))]
    pub fn push(&mut self, value: T) -> Result<(), T> {
        self.push_tagged(0, value)
    }

    /// [`push`](Producer::push) with `tag` (at most [`MAX_TAG`]).
    #[inline(always)]
    pub fn push_tagged(&mut self, tag: u64, value: T) -> Result<(), T> {
        if self.tail == self.limit && self.free(1) == 0 {
            return Err(value);
        }
        // SAFETY: the cached index shows room: either it did at the first
        // comparison, or `free` refreshed it and found at least one slot.
        unsafe { self.put(tag, value) };
        Ok(())
    }

    /// A read-only view of the ring's occupancy, for other threads.
    pub fn probe(&self) -> Probe<T, X> {
        Probe {
            ring: self.ring.clone(),
        }
    }
}

impl<T, X: Settle> std::fmt::Debug for Producer<T, X> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("capacity", &self.capacity())
            .field("tail", &self.tail)
            .finish_non_exhaustive()
    }
}

/// The reading end. Unique: exactly one `Consumer` exists per ring.
pub struct Consumer<T, X: Settle = NoAttachment> {
    ring: Arc<Ring<T, X>>,
    /// Always in sync with `ring.head` (only this handle writes it).
    head: usize,
    /// The last [`ready`](Consumer::ready) found every slot it looked at
    /// ready: the consumer is behind, so the next one looks at the far end
    /// of its window first.
    behind: bool,
}

impl<T, X: Settle> Consumer<T, X> {
    /// The number of slots.
    pub fn capacity(&self) -> usize {
        self.ring.mask + 1
    }

    /// Whether the next value is ready (it may become ready at any time; once
    /// ready it stays so until consumed).
    #[inline(always)]
    pub fn has_next(&self) -> bool {
        self.ring.stamp_if_ready(self.head).is_some()
    }

    /// How many values are ready, counting up to `max`. Every value counted
    /// is published to the caller: what it does next is ordered after each
    /// of those values' publication.
    ///
    /// The producer publishes slots in order, each with a `Release` stamp
    /// store, so a slot seen ready (`Acquire`) implies every slot before it
    /// is ready too. A consumer that is behind (the last call counted all it
    /// asked for) therefore looks at the last slot of the window first: one
    /// stamp load for the whole batch. Otherwise it counts up from `head`,
    /// one load per slot, and never touches a line far ahead of the
    /// producer (which would cost the producer a coherence miss there).
    #[inline]
    pub fn ready(&mut self, max: usize) -> usize {
        // Never look a lap ahead: that slot's stamp could carry the parity of
        // two laps back and pass for ready.
        let max = max.min(self.capacity());
        if self.behind
            && max > 1
            && self
                .ring
                .stamp_if_ready(self.head.wrapping_add(max - 1))
                .is_some()
        {
            return max;
        }
        let mut n = 0;
        while n < max
            && self
                .ring
                .stamp_if_ready(self.head.wrapping_add(n))
                .is_some()
        {
            n += 1;
        }
        self.behind = n == max;
        n
    }

    /// Moves up to `max` ready values out, oldest first, handing each with its
    /// tag to `f`, then frees their slots with a single index store. Returns
    /// how many were consumed.
    ///
    /// If `f` panics, the values already handed out (the panicking one
    /// included) count as consumed; the rest stay in the ring.
    #[inline]
    pub fn consume(&mut self, max: usize, mut f: impl FnMut(u64, T)) -> usize {
        self.consume_while(max, |tag, value| {
            f(tag, value);
            true
        })
    }

    /// [`consume`](Consumer::consume), stopping early after the value for
    /// which `f` returns `false` (that value counts as consumed).
    #[inline]
    pub fn consume_while(&mut self, max: usize, mut f: impl FnMut(u64, T) -> bool) -> usize {
        self.consume_counted(max, |tag, value, _| f(tag, value))
    }

    /// [`consume_while`](Consumer::consume_while), telling `f` whether the
    /// value is the `max`-th (the last one asked for). A share carried with
    /// a value is dropped (settled) right after `f` returns.
    #[inline]
    pub fn consume_counted(
        &mut self,
        max: usize,
        mut f: impl FnMut(u64, T, bool) -> bool,
    ) -> usize {
        self.consume_attached(max, |tag, _share, value, last| f(tag, value, last))
    }

    /// [`consume_counted`](Consumer::consume_counted), handing `f` the
    /// share each value carries too (`None` for entries written without
    /// one). An entry's tag comes without the share's bits.
    #[inline]
    pub fn consume_attached(
        &mut self,
        max: usize,
        mut f: impl FnMut(u64, Option<Attached<X>>, T, bool) -> bool,
    ) -> usize {
        struct Advance<'a, T, X: Settle> {
            consumer: &'a mut Consumer<T, X>,
            done: usize,
        }
        impl<T, X: Settle> Drop for Advance<'_, T, X> {
            #[inline(always)]
            fn drop(&mut self) {
                if self.done > 0 {
                    let c = &mut *self.consumer;
                    c.head = c.head.wrapping_add(self.done);
                    // Release pairs with the Acquire load in `Producer::free`.
                    c.ring.head.store(c.head, Ordering::Release);
                }
            }
        }
        let start = self.head;
        let mut advance = Advance {
            consumer: self,
            done: 0,
        };
        // The ring's shape in locals: `f` may write anywhere, so fields read
        // through the `Arc` would be loaded again after every call.
        let shape = advance.consumer.ring.shape();
        while advance.done < max {
            let pos = start.wrapping_add(advance.done);
            let Some(stamp) = shape.loaded_if_ready(pos) else {
                break;
            };
            let (tag, share) = if X::CARRIED && stamp.is_attached() {
                // SAFETY: the slot is ready and not yet consumed (it is at
                // or past `head`, which moves past it below), so its share
                // was not taken (A2); the ring's share type is `X`. It is
                // taken once: `done` counts the slot right after.
                let share = unsafe { stamp.take_share::<X>() };
                (stamp.plain_bits() >> 1, Some(share))
            } else {
                (stamp.bits() >> 1, None)
            };
            let slot = shape.slot(pos);
            let value = slot.value.with_mut(|p| {
                // SAFETY: the stamp for `pos` is ready (Acquire, pairing with
                // the producer's Release), so the value is initialised and
                // published, and the producer will not touch the slot until
                // `head` passes it. It is moved out once: `done` counts it
                // before `f` runs, and the guard moves `head` past it even if
                // `f` unwinds.
                unsafe { (*p).assume_init_read() }
            });
            advance.done += 1;
            if !f(tag, share, value, advance.done == max) {
                break;
            }
        }
        advance.done
    }

    /// Pops the oldest value and its tag, if any.
    #[cfg_attr(not(any(test, loom)), allow(dead_code))]
    pub fn pop(&mut self) -> Option<(u64, T)> {
        let mut out = None;
        self.consume(1, |tag, v| out = Some((tag, v)));
        out
    }
}

impl<T, X: Settle> std::fmt::Debug for Consumer<T, X> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("capacity", &self.capacity())
            .field("head", &self.head)
            .finish_non_exhaustive()
    }
}

/// A read-only view of a ring's occupancy, usable from any thread.
pub struct Probe<T, X: Settle = NoAttachment> {
    ring: Arc<Ring<T, X>>,
}

impl<T, X: Settle> Probe<T, X> {
    /// Whether the ring held no value at the moment of the loads.
    ///
    /// Racy by nature: it may stop being empty at any time. It is exact when
    /// the caller knows no producer is active: `Acquire` on `head` and on the
    /// stamp makes every completed write and consume visible.
    pub fn is_empty(&self) -> bool {
        let head = self.ring.head.load(Ordering::Acquire);
        self.ring.stamp_if_ready(head).is_none()
    }

    /// About how many values the ring holds (racy, for metrics). The
    /// producer fills slots in order, so the ready slots form one run from
    /// `head`: a binary search over the slots' stamps finds its end in
    /// `log2(capacity)` loads.
    pub fn len(&self) -> usize {
        let head = self.ring.head.load(Ordering::Acquire);
        // Invariant: the first `lo` slots from `head` are ready; those past
        // `hi` are not.
        let (mut lo, mut hi) = (0usize, self.ring.mask + 1);
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if self
                .ring
                .stamp_if_ready(head.wrapping_add(mid - 1))
                .is_some()
            {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        lo
    }
}

impl<T, X: Settle> Clone for Probe<T, X> {
    fn clone(&self) -> Self {
        Self {
            ring: self.ring.clone(),
        }
    }
}

impl<T, X: Settle> std::fmt::Debug for Probe<T, X> {
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
        for capacity in [1, 2, 4] {
            let (mut p, mut c) = channel::<u64>(capacity);
            for round in 0..10u64 {
                for i in 0..capacity as u64 {
                    p.push(round * 10 + i).unwrap();
                }
                for i in 0..capacity as u64 {
                    assert_eq!(c.pop(), Some((0, round * 10 + i)), "capacity {capacity}");
                }
                assert_eq!(c.pop(), None);
            }
        }
    }

    /// `ready` counts exactly the published values, whether it counts up or
    /// (behind) looks at the far end of its window first, across laps, and
    /// for windows larger than the ring.
    #[test]
    fn ready_counts_what_is_published_behind_or_not() {
        for capacity in [1, 2, 4, 8] {
            let (mut p, mut c) = channel::<u64>(capacity);
            let mut next = 0u64;
            let mut expect = 0u64;
            for round in 0..6 * capacity {
                // Publish a varying amount (never more than there is room for).
                let room = p.free(capacity);
                let publish = (round * 5 + 1) % (capacity + 1);
                for _ in 0..publish.min(room) {
                    p.push(next).unwrap();
                    next += 1;
                }
                let published = (next - expect) as usize;
                for max in [1, capacity, 2 * capacity + 3] {
                    assert_eq!(c.ready(max), published.min(max).min(capacity));
                }
                // Consume some, not always all, so `behind` stays set at times.
                let take = c.ready(capacity).min(round % 3 + 1);
                let mut got = Vec::new();
                assert_eq!(c.consume(take, |_, v| got.push(v)), take);
                let want: Vec<u64> = (expect..expect + take as u64).collect();
                assert_eq!(got, want, "capacity {capacity} round {round}");
                expect += take as u64;
            }
        }
    }

    #[test]
    fn full_ring_hands_the_value_back() {
        let (mut p, mut c) = channel::<u64>(2);
        p.push(1).unwrap();
        p.push(2).unwrap();
        assert_eq!(p.push(3), Err(3));
        assert_eq!(c.pop(), Some((0, 1)));
        p.push(3).unwrap();
        assert_eq!(c.pop(), Some((0, 2)));
        assert_eq!(c.pop(), Some((0, 3)));
    }

    #[test]
    fn tags_travel_with_values() {
        let (mut p, mut c) = channel::<u64>(4);
        assert_eq!(p.free(10), 4);
        for v in 0..4 {
            p.write(v * 100 + 7, v).unwrap();
        }
        assert_eq!(p.write(MAX_TAG, 4), Err(4));
        let mut out = Vec::new();
        assert_eq!(c.consume(3, |tag, v| out.push((tag, v))), 3);
        assert_eq!(out, vec![(7, 0), (107, 1), (207, 2)]);
        assert_eq!(p.free(usize::MAX), 3);
        p.write(MAX_TAG, 9).unwrap();
        assert_eq!(c.pop(), Some((307, 3)));
        assert_eq!(c.pop(), Some((MAX_TAG, 9)));
    }

    #[test]
    fn write_from_takes_only_what_fits() {
        let (mut p, mut c) = channel::<u64>(4);
        let mut values = 0..10;
        assert_eq!(p.write_from(&mut values, 3), 3);
        assert_eq!(p.write_from(&mut values, 3), 1, "one slot left");
        assert_eq!(values.next(), Some(4), "no value taken that did not fit");
        assert_eq!(c.consume(2, |tag, v| assert_eq!((tag, v), (0, v))), 2);
        let mut rest = 5..6;
        assert_eq!(
            p.write_from(&mut rest, 3),
            1,
            "stops when the values run out"
        );
        let mut out = Vec::new();
        assert_eq!(c.consume(10, |_, v| out.push(v)), 3);
        assert_eq!(out, vec![2, 3, 5]);
    }

    #[test]
    fn dropping_the_ring_drops_what_is_left() {
        let live = StdAtomicUsize::new(0);
        {
            let (mut p, mut c) = channel(4);
            for i in 0..4 {
                assert!(p.push(Tracked::new(i, &live)).is_ok());
            }
            assert_eq!(c.consume(1, |_, t| drop(t)), 1);
            assert_eq!(live.load(StdOrdering::Relaxed), 3);
            // Wrap around once so leftovers straddle the end of the array.
            assert!(p.push(Tracked::new(4, &live)).is_ok());
            assert_eq!(c.consume(2, |_, t| drop(t)), 2);
            assert_eq!(live.load(StdOrdering::Relaxed), 2);
        }
        assert_eq!(live.load(StdOrdering::Relaxed), 0);
    }

    /// A share owner that counts its settlements.
    #[derive(Default)]
    struct Owner {
        settled: StdAtomicUsize,
    }
    impl Settle for Owner {
        fn settle(&self) {
            self.settled.fetch_add(1, StdOrdering::Relaxed);
        }
    }
    fn settled(owner: &Arc<Owner>) -> usize {
        owner.settled.load(StdOrdering::Relaxed)
    }

    #[test]
    fn shares_travel_in_stamps_beside_plain_tags_and_settle_once() {
        let owner = Arc::new(Owner::default());
        let share = || Attached::new(owner.clone());
        assert!(share().fits(), "a heap address fits on this target");
        assert_eq!(settled(&owner), 1, "a dropped share settles");
        let (mut p, mut c) = channel_carrying::<u64, Owner>(4);
        for round in 0..5u64 {
            // Plain tags up to the largest a carrying ring takes, shares with
            // every attached tag bit set and clear.
            p.write(MAX_PLAIN_TAG, round).unwrap();
            p.write_attached(MAX_ATTACHED_TAG, share(), round + 100)
                .ok()
                .unwrap();
            p.write_attached(0, share(), round + 200).ok().unwrap();
            p.write(5, round + 300).unwrap();
            assert!(p.write_attached(1, share(), 0).is_err(), "full");
            let before = settled(&owner);
            assert_eq!(before, 2 + round as usize * 3, "the refused share settled");
            let mut got = Vec::new();
            let n = c.consume_attached(usize::MAX, |tag, share, v, _| {
                got.push((tag, share.is_some(), v));
                drop(share);
                true
            });
            assert_eq!(n, 4);
            assert_eq!(
                got,
                [
                    (MAX_PLAIN_TAG, false, round),
                    (MAX_ATTACHED_TAG, true, round + 100),
                    (0, true, round + 200),
                    (5, false, round + 300)
                ]
            );
            assert_eq!(settled(&owner), before + 2);
            p.free(4);
        }
        drop((p, c));
        assert_eq!(
            Arc::strong_count(&owner),
            1,
            "every share's reference is gone"
        );
    }

    #[test]
    fn a_dropped_ring_settles_the_shares_it_still_carries() {
        let owner = Arc::new(Owner::default());
        let live = StdAtomicUsize::new(0);
        {
            let (mut p, mut c) = channel_carrying::<Tracked<'_>, Owner>(4);
            for i in 0..3 {
                let share = Attached::new(owner.clone());
                p.write_attached(1, share, Tracked::new(i, &live))
                    .ok()
                    .unwrap();
            }
            // One consumed by a consumer that ignores shares (it settles).
            assert_eq!(c.consume(1, |tag, t| drop((tag, t))), 1);
            assert_eq!(settled(&owner), 1);
            // Wrap around so leftovers straddle the end of the array.
            p.free(2);
            for i in 3..5 {
                let share = Attached::new(owner.clone());
                p.write_attached(0, share, Tracked::new(i, &live))
                    .ok()
                    .unwrap();
            }
            assert_eq!(live.load(StdOrdering::Relaxed), 4);
        }
        assert_eq!(live.load(StdOrdering::Relaxed), 0);
        assert_eq!(settled(&owner), 5);
        assert_eq!(Arc::strong_count(&owner), 1);
    }

    #[test]
    fn a_value_whose_drop_panics_does_not_keep_shares_from_settling() {
        struct Bomb;
        impl Drop for Bomb {
            fn drop(&mut self) {
                panic!("value drop");
            }
        }
        let owner = Arc::new(Owner::default());
        let (mut p, c) = channel_carrying::<Bomb, Owner>(4);
        for _ in 0..3 {
            p.write_attached(0, Attached::new(owner.clone()), Bomb)
                .ok()
                .unwrap();
        }
        drop(c);
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(p)));
        assert!(unwound.is_err());
        assert_eq!(settled(&owner), 3, "every share settled before the values");
    }

    #[test]
    fn probe_and_has_next_see_published_writes() {
        let (mut p, mut c) = channel::<u64>(2);
        let probe = p.probe();
        assert!(probe.is_empty() && !c.has_next());
        p.push(1).unwrap();
        assert!(!probe.is_empty() && c.has_next());
        c.pop();
        assert!(probe.is_empty() && !c.has_next());
    }

    #[test]
    fn probe_len_counts_ready_values_across_laps() {
        let (mut p, mut c) = channel::<u64>(8);
        let probe = p.probe();
        assert_eq!(probe.len(), 0);
        for round in 0..3u64 {
            for i in 0..8 {
                p.push(round * 8 + i).unwrap();
                assert_eq!(probe.len(), i as usize + 1);
            }
            for left in (0..8).rev() {
                c.pop();
                assert_eq!(probe.len(), left);
            }
        }
        // A partial lap that straddles the end of the array.
        for i in 0..5 {
            p.push(i).unwrap();
        }
        c.pop();
        c.pop();
        assert_eq!(probe.len(), 3);
    }

    #[test]
    fn consume_moves_values_out_and_survives_a_panic() {
        let live = StdAtomicUsize::new(0);
        let (mut p, mut c) = channel(4);
        for i in 0..4 {
            assert!(p.push(Tracked::new(i, &live)).is_ok());
        }
        let mut seen = Vec::new();
        assert_eq!(c.consume(2, |_, t| seen.push(t.0)), 2);
        assert_eq!(seen, vec![0, 1]);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            c.consume(2, |_, t| {
                if t.0 == 2 {
                    panic!("handler failed on 2");
                }
            })
        }));
        assert!(r.is_err());
        // 2 was consumed (and dropped while unwinding); 3 is still there.
        assert_eq!(live.load(StdOrdering::Relaxed), 1);
        assert_eq!(c.consume(4, |_, t| seen.push(t.0)), 1);
        assert_eq!(seen, vec![0, 1, 3]);
        assert_eq!(p.free(4), 4);
    }

    #[test]
    fn consume_while_stops_after_the_refused_value() {
        let live = StdAtomicUsize::new(0);
        let (mut p, mut c) = channel(4);
        for i in 0..4 {
            assert!(p.push(Tracked::new(i, &live)).is_ok());
        }
        let mut seen = Vec::new();
        // The value `f` refuses is taken (and dropped by `f`), not put back.
        let taken = c.consume_while(4, |_, t| {
            seen.push(t.0);
            t.0 != 1
        });
        assert_eq!((taken, seen.clone()), (2, vec![0, 1]));
        assert_eq!(live.load(StdOrdering::Relaxed), 2);
        assert_eq!(c.ready(4), 2);
        let rest = c.consume_while(4, |_, t| {
            seen.push(t.0);
            true
        });
        assert_eq!(rest, 2);
        assert_eq!(seen, vec![0, 1, 2, 3]);
        assert_eq!(p.free(4), 4);
    }

    #[test]
    fn spsc_threads_deliver_everything_in_order() {
        // Small enough for Miri, large enough to wrap many times.
        let n: u64 = if cfg!(miri) { 500 } else { 200_000 };
        let (mut p, mut c) = channel::<u64>(8);
        let consumer = std::thread::spawn(move || {
            let mut expected = 0;
            while expected < n {
                c.consume(8, |tag, v| {
                    assert_eq!((tag, v), (v % 1000, expected));
                    expected += 1;
                });
            }
        });
        let mut next = 0;
        while next < n {
            let room = p.free(8);
            for _ in 0..room.min((n - next) as usize) {
                p.write(next % 1000, next).unwrap();
                next += 1;
            }
        }
        consumer.join().unwrap();
    }
}

#[cfg(all(test, not(loom), not(miri)))]
mod speed {
    //! Raw ring throughput by element size, to compare with the engine's:
    //! `cargo test --release --lib ring::speed -- --ignored --nocapture`.

    #[derive(Clone, Copy)]
    #[allow(dead_code)]
    struct Words<const N: usize>([u64; N]);

    fn sized<const N: usize>() {
        for _ in 0..2 {
            let n = 30_000_000u64;
            let (mut p, mut c) = super::channel::<Words<N>>(65536);
            let consumer = std::thread::spawn(move || {
                core_affinity::set_for_current(core_affinity::CoreId { id: 1 });
                let mut seen = 0u64;
                let mut sum = 0u64;
                while seen < n {
                    seen += c.consume(256, |_, v| sum = sum.wrapping_add(v.0[0])) as u64;
                }
                sum
            });
            core_affinity::set_for_current(core_affinity::CoreId { id: 0 });
            let t = std::time::Instant::now();
            let mut i = 0;
            while i < n {
                if p.push(Words([i; N])).is_ok() {
                    i += 1;
                }
            }
            std::hint::black_box(consumer.join().unwrap());
            println!(
                "raw ring, {:>2}-byte values + 8-byte stamp: {:.1} M/s",
                N * 8,
                n as f64 / t.elapsed().as_secs_f64() / 1e6
            );
        }
    }

    #[test]
    #[ignore = "timing, not a correctness test"]
    fn raw_ring_throughput_by_size() {
        sized::<1>();
        sized::<2>();
        sized::<8>();
    }
}
