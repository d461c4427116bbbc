//! Hierarchical timing wheel: the single-threaded store of pending timers.
//!
//! Time is counted in integer ticks. [`Wheel::insert`] and [`Wheel::cancel`]
//! are O(1); [`Wheel::advance`] fires every entry due up to a tick, in due-tick
//! order, ties in insertion order. There is no synchronization inside: the
//! timer service ([`timer`](crate::time::timer)) keeps the wheel behind its lock.
//!
//! # Layout
//!
//! [`LEVELS`] levels of 64 slots. A slot of level `l` spans `64^l` ticks, so
//! the wheel covers `64^LEVELS = 2^36` ticks (about 795 days of 1 ms ticks);
//! entries further out wait in an *overflow* list, entries already due at
//! insert in an *expired* list. Entries live in a slab (`Vec` plus free list)
//! and each list is intrusive and doubly linked through slab indices, so
//! memory is proportional to the pending entries and no `unsafe` is needed.
//! One 64-bit occupancy bitmap per level finds the next occupied slot with a
//! `trailing_zeros`, so an empty stretch of any length is crossed in
//! O([`LEVELS`]) (the design of the Linux kernel's and tokio's timer wheels).
//!
//! # Invariants
//!
//! - `elapsed` is the first tick not yet processed: every entry due before it
//!   has fired, except those inserted after it passed them (the expired list).
//! - An entry due at `d >= elapsed` sits at level `level_for(elapsed, d)` — the
//!   highest 6-bit digit in which `d` and `elapsed` differ — in slot digit
//!   `l` of `d`; or in the overflow list when that level is `>= LEVELS`.
//!   Hence every occupied slot of level `l > 0` starts after `elapsed`, and
//!   every entry of level `l` is due before every entry of level `l + 1`.
//! - Consequently all pending entries with one due tick are in one list, in
//!   insertion order; moving a list down a level (a *cascade*) appends it
//!   whole, which keeps ties FIFO.
//!
//! Whenever `elapsed` moves, slots that start at or before it are cascaded
//! before anything else is looked at, which restores the invariants.

/// Levels of the wheel.
pub(crate) const LEVELS: usize = 6;
/// Bits of tick per level digit (64 slots per level).
const SLOT_BITS: u32 = 6;
/// Slots per level.
const SLOTS: usize = 1 << SLOT_BITS;
/// Ticks covered by the whole wheel: `64^LEVELS`.
const WHEEL_BITS: u32 = SLOT_BITS * LEVELS as u32;
/// The largest tick the wheel handles; later ticks are clamped to it (so
/// `elapsed` never overflows).
pub(crate) const MAX_TICK: u64 = u64::MAX - 1;
/// A null slab index.
const NIL: u32 = u32::MAX;
/// List id of the expired list (wheel slots are `level * SLOTS + slot`).
const EXPIRED: u16 = (LEVELS * SLOTS) as u16;
/// List id of the overflow list.
const OVERFLOW: u16 = EXPIRED + 1;
/// Number of lists.
const LISTS: usize = OVERFLOW as usize + 1;
/// List id of a vacant slab entry.
const VACANT: u16 = u16::MAX;

/// Identifies one inserted entry. Generation-checked: once the entry has
/// fired or been cancelled, the key matches nothing, even after its slab
/// index is reused (until the index's 32-bit generation wraps).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct WheelKey {
    /// Slab index, in `0 .. entries.len()`.
    index: u32,
    /// The entry's generation when it was inserted.
    gen: u32,
}

/// One slab entry: a pending timer, or a link in the free list.
struct Entry<T> {
    /// `Some` exactly while the entry is pending.
    value: Option<T>,
    due: u64,
    /// Bumped every time the entry is freed.
    gen: u32,
    prev: u32,
    /// Next in its list; next free entry while vacant.
    next: u32,
    /// The list it is in, or [`VACANT`].
    list: u16,
}

/// Head and tail of an intrusive list ([`NIL`] when empty).
#[derive(Clone, Copy)]
struct List {
    head: u32,
    tail: u32,
}

const EMPTY: List = List {
    head: NIL,
    tail: NIL,
};

/// A hierarchical timing wheel of values `T` keyed by due tick.
pub(crate) struct Wheel<T> {
    entries: Vec<Entry<T>>,
    /// Head of the free list of vacant entries.
    free: u32,
    /// Per-slot lists, then the expired and the overflow list.
    lists: Box<[List]>,
    /// Bit `s` of `occupied[l]` is set iff slot `s` of level `l` is non-empty.
    occupied: [u64; LEVELS],
    /// The first tick not yet processed (see the module invariants).
    elapsed: u64,
    len: usize,
    /// A lower bound of the due ticks in the expired list (exact until a
    /// cancel from it).
    expired_min: u64,
    /// A lower bound of the due ticks in the overflow list (same).
    overflow_min: u64,
    /// Reused buffer for sorting the expired list.
    scratch: Vec<(u64, u32)>,
}

impl<T> std::fmt::Debug for Wheel<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wheel")
            .field("len", &self.len)
            .field("elapsed", &self.elapsed)
            .finish_non_exhaustive()
    }
}

impl<T> Default for Wheel<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// The level for an entry due at `due >= elapsed`: the highest 6-bit digit in
/// which the two differ (0 when they differ only in the lowest digit).
#[inline]
fn level_for(elapsed: u64, due: u64) -> usize {
    debug_assert!(due >= elapsed);
    let masked = (elapsed ^ due) | (SLOTS as u64 - 1);
    let top = 63 - masked.leading_zeros();
    (top / SLOT_BITS) as usize
}

/// The slot of `due` at `level < LEVELS`.
#[inline]
fn slot_for(due: u64, level: usize) -> usize {
    debug_assert!(level < LEVELS);
    ((due >> (SLOT_BITS * level as u32)) & (SLOTS as u64 - 1)) as usize
}

/// The first tick of the `2^WHEEL_BITS` span holding `tick`.
#[inline]
fn span_start(tick: u64) -> u64 {
    tick & !((1u64 << WHEEL_BITS) - 1)
}

impl<T> Wheel<T> {
    /// An empty wheel at tick 0.
    pub(crate) fn new() -> Self {
        Wheel {
            entries: Vec::new(),
            free: NIL,
            lists: vec![EMPTY; LISTS].into_boxed_slice(),
            occupied: [0; LEVELS],
            elapsed: 0,
            len: 0,
            expired_min: 0,
            overflow_min: 0,
            scratch: Vec::new(),
        }
    }

    /// Pending entries.
    #[cfg(any(test, loom))]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether no entry is pending.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Inserts `value` due at `due_tick` (clamped to [`MAX_TICK`]). An entry
    /// due before the wheel's current tick fires on the next
    /// [`advance`](Self::advance). O(1).
    ///
    /// # Panics
    ///
    /// If `u32::MAX - 1` entries are already pending.
    pub(crate) fn insert(&mut self, due_tick: u64, value: T) -> WheelKey {
        let due = due_tick.min(MAX_TICK);
        let index = if self.free != NIL {
            let i = self.free;
            let e = &mut self.entries[i as usize];
            self.free = e.next;
            e.value = Some(value);
            e.due = due;
            i
        } else {
            assert!(
                self.entries.len() < NIL as usize,
                "timing wheel full: u32::MAX - 1 pending entries"
            );
            self.entries.push(Entry {
                value: Some(value),
                due,
                gen: 0,
                prev: NIL,
                next: NIL,
                list: VACANT,
            });
            (self.entries.len() - 1) as u32
        };
        self.place(index);
        self.len += 1;
        WheelKey {
            index,
            gen: self.entries[index as usize].gen,
        }
    }

    /// Removes the entry of `key` and returns its value; `None` if it already
    /// fired or was cancelled. O(1).
    pub(crate) fn cancel(&mut self, key: WheelKey) -> Option<T> {
        let e = self.entries.get(key.index as usize)?;
        if e.gen != key.gen || e.value.is_none() {
            return None;
        }
        self.unlink(key.index);
        self.len -= 1;
        Some(self.release(key.index))
    }

    /// A tick no later than the earliest pending due tick, or `None` if the
    /// wheel is empty. O([`LEVELS`]).
    ///
    /// Exact when the earliest entry is due within the current 64-tick block
    /// (or was inserted already due and not cancelled). Otherwise it is the
    /// first tick of the wheel slot holding the earliest entry: a caller that
    /// sleeps until `next_due` and then advances wakes early at most once per
    /// level, each time learning a closer bound.
    pub(crate) fn next_due(&self) -> Option<u64> {
        if self.lists[EXPIRED as usize].head != NIL {
            return Some(self.expired_min);
        }
        if let Some((_, _, start)) = self.earliest() {
            return Some(start.max(self.elapsed));
        }
        if self.lists[OVERFLOW as usize].head != NIL {
            return Some(self.overflow_min.max(self.elapsed));
        }
        None
    }

    /// Fires every entry due at or before `now_tick`, calling `fire` with its
    /// key and value, in due-tick order and, for equal due ticks, in insertion
    /// order. A `now_tick` before an earlier one counts as the earlier one
    /// (time does not move back); entries inserted already due fire first.
    ///
    /// O(fired + cascaded + [`LEVELS`] per distinct occupied slot crossed);
    /// crossing empty time costs O([`LEVELS`]) however long it is.
    pub(crate) fn advance(&mut self, now_tick: u64, mut fire: impl FnMut(WheelKey, T)) {
        let now = now_tick.min(MAX_TICK);
        self.fire_expired(&mut fire);
        if now < self.elapsed {
            return;
        }
        loop {
            match self.earliest() {
                Some((0, slot, start)) if start <= now => {
                    self.elapsed = start;
                    let list = self.take_list(slot as u16);
                    let mut i = list.head;
                    while i != NIL {
                        let next = self.entries[i as usize].next;
                        let gen = self.entries[i as usize].gen;
                        debug_assert_eq!(self.entries[i as usize].due, start);
                        self.len -= 1;
                        let value = self.release(i);
                        fire(WheelKey { index: i, gen }, value);
                        i = next;
                    }
                    self.elapsed = start + 1;
                }
                Some((level, slot, start)) if start <= now => {
                    self.elapsed = start;
                    self.cascade((level * SLOTS + slot) as u16);
                }
                Some(_) => break,
                None => {
                    let head = self.lists[OVERFLOW as usize].head;
                    let start = span_start(self.overflow_min);
                    if head == NIL || start > now {
                        break;
                    }
                    self.elapsed = self.elapsed.max(start);
                    self.cascade_overflow();
                }
            }
        }
        self.elapsed = now + 1;
        // Restore the invariants at the new `elapsed`: at most the slots that
        // start exactly there are out of place (everything before it fired).
        loop {
            match self.earliest() {
                Some((level, slot, start)) if level > 0 && start <= self.elapsed => {
                    self.cascade((level * SLOTS + slot) as u16);
                }
                Some(_) => break,
                None => {
                    let head = self.lists[OVERFLOW as usize].head;
                    if head == NIL || span_start(self.overflow_min) > self.elapsed {
                        break;
                    }
                    self.cascade_overflow();
                }
            }
        }
    }

    /// The earliest occupied wheel slot: `(level, slot, first tick)`. By the
    /// invariants the lowest occupied level holds it.
    fn earliest(&self) -> Option<(usize, usize, u64)> {
        for level in 0..LEVELS {
            let occupied = self.occupied[level];
            if occupied == 0 {
                continue;
            }
            let shift = SLOT_BITS * level as u32;
            let current = slot_for(self.elapsed, level) as u32;
            // Slots before the current one are empty (their entries fired or
            // were cascaded when `elapsed` passed them).
            debug_assert_eq!(occupied & !(u64::MAX << current), 0);
            let slot = occupied.trailing_zeros();
            let block = shift + SLOT_BITS;
            let base = self.elapsed & !((1u64 << block) - 1);
            return Some((level, slot as usize, base + (u64::from(slot) << shift)));
        }
        None
    }

    /// Fires the expired list, sorted by due tick (stable: ties FIFO).
    fn fire_expired(&mut self, fire: &mut impl FnMut(WheelKey, T)) {
        if self.lists[EXPIRED as usize].head == NIL {
            return;
        }
        let list = self.take_list(EXPIRED);
        let mut order = std::mem::take(&mut self.scratch);
        let mut i = list.head;
        while i != NIL {
            let e = &self.entries[i as usize];
            order.push((e.due, i));
            i = e.next;
        }
        order.sort_by_key(|&(due, _)| due);
        for &(_, i) in &order {
            let gen = self.entries[i as usize].gen;
            self.len -= 1;
            let value = self.release(i);
            fire(WheelKey { index: i, gen }, value);
        }
        order.clear();
        self.scratch = order;
    }

    /// Re-places every entry of wheel list `id` against the current `elapsed`.
    fn cascade(&mut self, id: u16) {
        let list = self.take_list(id);
        self.replace_all(list.head);
    }

    /// Re-places every overflow entry against the current `elapsed`.
    fn cascade_overflow(&mut self) {
        let list = self.take_list(OVERFLOW);
        self.replace_all(list.head);
    }

    /// Places the chain starting at `head`, in order.
    fn replace_all(&mut self, head: u32) {
        let mut i = head;
        while i != NIL {
            let next = self.entries[i as usize].next;
            self.place(i);
            i = next;
        }
    }

    /// Detaches list `id` whole, returning its old head and tail; the
    /// entries keep their `next` links.
    fn take_list(&mut self, id: u16) -> List {
        let list = std::mem::replace(&mut self.lists[id as usize], EMPTY);
        if (id as usize) < LEVELS * SLOTS {
            let (level, slot) = (id as usize / SLOTS, id as usize % SLOTS);
            self.occupied[level] &= !(1u64 << slot);
        }
        list
    }

    /// Appends entry `i` (pending, in no list) to the list its due tick
    /// belongs in.
    fn place(&mut self, i: u32) {
        let due = self.entries[i as usize].due;
        let id = if due < self.elapsed {
            if self.lists[EXPIRED as usize].head == NIL || due < self.expired_min {
                self.expired_min = due;
            }
            EXPIRED
        } else {
            let level = level_for(self.elapsed, due);
            if level >= LEVELS {
                if self.lists[OVERFLOW as usize].head == NIL || due < self.overflow_min {
                    self.overflow_min = due;
                }
                OVERFLOW
            } else {
                let slot = slot_for(due, level);
                self.occupied[level] |= 1u64 << slot;
                (level * SLOTS + slot) as u16
            }
        };
        let tail = self.lists[id as usize].tail;
        {
            let e = &mut self.entries[i as usize];
            e.list = id;
            e.prev = tail;
            e.next = NIL;
        }
        if tail == NIL {
            self.lists[id as usize].head = i;
        } else {
            self.entries[tail as usize].next = i;
        }
        self.lists[id as usize].tail = i;
    }

    /// Removes pending entry `i` from its list.
    fn unlink(&mut self, i: u32) {
        let (id, prev, next) = {
            let e = &self.entries[i as usize];
            (e.list, e.prev, e.next)
        };
        debug_assert!((id as usize) < LISTS);
        if prev == NIL {
            self.lists[id as usize].head = next;
        } else {
            self.entries[prev as usize].next = next;
        }
        if next == NIL {
            self.lists[id as usize].tail = prev;
        } else {
            self.entries[next as usize].prev = prev;
        }
        if (id as usize) < LEVELS * SLOTS && self.lists[id as usize].head == NIL {
            let (level, slot) = (id as usize / SLOTS, id as usize % SLOTS);
            self.occupied[level] &= !(1u64 << slot);
        }
    }

    /// Frees entry `i` (already out of its list) and returns its value.
    fn release(&mut self, i: u32) -> T {
        let e = &mut self.entries[i as usize];
        let value = e.value.take();
        e.gen = e.gen.wrapping_add(1);
        e.list = VACANT;
        e.prev = NIL;
        e.next = self.free;
        self.free = i;
        // Only pending entries are released (cancel checks; lists hold only
        // pending entries).
        match value {
            Some(v) => v,
            None => unreachable!("released a vacant wheel entry"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashMap};

    /// A tiny xorshift64* generator (no dependency).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn fired(w: &mut Wheel<u32>, now: u64) -> Vec<u32> {
        let mut out = Vec::new();
        w.advance(now, |_, v| out.push(v));
        out
    }

    #[test]
    fn fires_in_due_order_ties_fifo() {
        let mut w = Wheel::new();
        w.insert(70, 1);
        w.insert(5, 2);
        w.insert(70, 3);
        w.insert(5000, 4);
        w.insert(5, 5);
        w.insert(0, 6);
        assert_eq!(w.len(), 6);
        assert_eq!(fired(&mut w, 4), vec![6]);
        assert_eq!(fired(&mut w, 69), vec![2, 5]);
        assert_eq!(fired(&mut w, 70), vec![1, 3]);
        assert_eq!(fired(&mut w, 4999), Vec::<u32>::new());
        assert_eq!(fired(&mut w, 5000), vec![4]);
        assert!(w.is_empty());
    }

    #[test]
    fn past_due_fires_on_next_advance_in_due_order() {
        let mut w = Wheel::new();
        w.advance(100, |_, _: u32| {});
        w.insert(50, 1);
        w.insert(10, 2);
        w.insert(50, 3);
        w.insert(101, 4);
        // A `now` in the past still fires what is already due.
        assert_eq!(fired(&mut w, 3), vec![2, 1, 3]);
        assert_eq!(fired(&mut w, 101), vec![4]);
    }

    #[test]
    fn tie_across_cascade_stays_fifo() {
        // A waits on level 1 while B, inserted once `elapsed` reached the
        // block, would land on level 0 unless A was cascaded first.
        let mut w = Wheel::new();
        w.insert(64, 1);
        w.advance(63, |_, _| {});
        w.insert(64, 2);
        assert_eq!(fired(&mut w, 64), vec![1, 2]);
    }

    #[test]
    fn cancel_is_generation_checked() {
        let mut w = Wheel::new();
        let a = w.insert(10, 1);
        assert_eq!(w.cancel(a), Some(1));
        assert_eq!(w.cancel(a), None);
        // The slab index is reused; the old key must not match the new entry.
        let b = w.insert(10, 2);
        assert_eq!(w.cancel(a), None);
        let mut keys = Vec::new();
        w.advance(10, |k, v| keys.push((k, v)));
        assert_eq!(keys, vec![(b, 2)]);
        assert_eq!(w.cancel(b), None);
        assert!(w.is_empty());
    }

    #[test]
    fn empty_hour_is_instant() {
        let mut w = Wheel::<u32>::new();
        let t = std::time::Instant::now();
        for h in 1..=1000u64 {
            w.advance(h * 3_600_000, |_, _| {});
        }
        assert!(t.elapsed() < std::time::Duration::from_millis(100));
        // One far timer: crossing to it cascades once per level, no more.
        w.insert(2_000 * 3_600_000, 7);
        assert_eq!(w.next_due().map(|d| d <= 2_000 * 3_600_000), Some(true));
        assert_eq!(fired(&mut w, 2_000 * 3_600_000 - 1), Vec::<u32>::new());
        assert_eq!(fired(&mut w, 2_000 * 3_600_000), vec![7]);
    }

    #[test]
    fn overflow_beyond_the_wheel() {
        let mut w = Wheel::new();
        let span = 1u64 << WHEEL_BITS;
        w.insert(3 * span + 5, 1);
        let c = w.insert(2 * span, 2);
        w.insert(span + 1, 3);
        w.insert(3 * span + 5, 4);
        w.insert(u64::MAX, 5); // clamped to MAX_TICK
        assert_eq!(w.cancel(c), Some(2));
        assert!(w.next_due().unwrap() <= span + 1);
        assert_eq!(fired(&mut w, span), Vec::<u32>::new());
        assert_eq!(fired(&mut w, 3 * span + 4), vec![3]);
        assert_eq!(fired(&mut w, 3 * span + 5), vec![1, 4]);
        assert_eq!(fired(&mut w, u64::MAX), vec![5]);
        assert!(w.is_empty());
        // Past the end everything counts as expired and still fires.
        w.insert(7, 6);
        assert_eq!(fired(&mut w, 0), vec![6]);
    }

    #[test]
    fn next_due_is_exact_in_the_current_block() {
        let mut w = Wheel::new();
        assert_eq!(w.next_due(), None);
        w.insert(40, 1);
        assert_eq!(w.next_due(), Some(40));
        w.insert(1000, 2);
        assert_eq!(w.next_due(), Some(40));
        w.advance(40, |_, _| {});
        let bound = w.next_due().unwrap();
        assert!((41..=1000).contains(&bound));
        w.advance(bound, |_, _| {});
        assert_eq!(w.next_due(), Some(1000));
    }

    /// Random insert / cancel / advance sequences against a `BTreeMap` model.
    #[test]
    fn matches_reference_model() {
        for seed in 1..=40u64 {
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ seed.wrapping_mul(0xD1B5_4A32_D192_ED03));
            let mut w = Wheel::new();
            // (due, seq) -> id; id -> key.
            let mut model: BTreeMap<(u64, u64), u32> = BTreeMap::new();
            let mut keys: HashMap<u32, (WheelKey, u64, u64)> = HashMap::new();
            let mut dead: Vec<WheelKey> = Vec::new();
            let mut processed: Option<u64> = None; // last tick advanced to
            let mut now = 0u64;
            let mut seq = 0u64;
            for _ in 0..3_000 {
                match rng.below(10) {
                    0..=4 => {
                        let due = match rng.below(6) {
                            0 => now.saturating_sub(rng.below(100)),
                            1 => now + rng.below(64),
                            2 => now + rng.below(5_000),
                            3 => now + rng.below(1 << 20),
                            4 => now + rng.below(1 << 38),
                            _ => now + rng.below(200),
                        };
                        seq += 1;
                        let id = seq as u32;
                        let key = w.insert(due, id);
                        model.insert((due, seq), id);
                        keys.insert(id, (key, due, seq));
                    }
                    5 | 6 => {
                        if rng.below(4) == 0 && !dead.is_empty() {
                            let k = dead[rng.below(dead.len() as u64) as usize];
                            assert_eq!(w.cancel(k), None);
                        } else if !keys.is_empty() {
                            let ids: Vec<u32> = keys.keys().copied().collect();
                            let id = ids[rng.below(ids.len() as u64) as usize];
                            let (key, due, s) = keys.remove(&id).unwrap();
                            assert_eq!(w.cancel(key), Some(id));
                            model.remove(&(due, s));
                            dead.push(key);
                        }
                    }
                    _ => {
                        now += match rng.below(5) {
                            0 => 0,
                            1 => rng.below(4),
                            2 => rng.below(300),
                            3 => rng.below(100_000),
                            _ => rng.below(1 << 37),
                        };
                        // Sometimes advance to a stale tick: it counts as the
                        // last one.
                        let target = if rng.below(8) == 0 {
                            now.saturating_sub(1_000)
                        } else {
                            now
                        };
                        if let Some(bound) = w.next_due() {
                            let min = model.keys().next().unwrap().0;
                            assert!(bound <= min.max(processed.map_or(0, |p| p + 1)));
                        }
                        let effective = processed.map_or(target, |p| p.max(target));
                        let mut expect = Vec::new();
                        while let Some((&(due, s), &id)) = model.iter().next() {
                            if due > effective {
                                break;
                            }
                            model.remove(&(due, s));
                            expect.push(id);
                        }
                        let mut got = Vec::new();
                        w.advance(target, |k, id| {
                            let (key, _, _) = keys.remove(&id).unwrap();
                            assert_eq!(key, k);
                            dead.push(k);
                            got.push(id);
                        });
                        assert_eq!(got, expect, "seed {seed}");
                        processed = Some(effective);
                    }
                }
                assert_eq!(w.len(), model.len());
                if dead.len() > 1000 {
                    dead.drain(..500);
                }
            }
        }
    }

    /// A million pending timers: insert, cancel half, fire the rest in order.
    #[test]
    fn million_timers() {
        const N: u64 = 1_000_000;
        let mut w = Wheel::new();
        let mut rng = Rng(0x1234_5678_9ABC_DEF1);
        let keys: Vec<WheelKey> = (0..N)
            .map(|i| w.insert(rng.below(10 * N), i as u32))
            .collect();
        assert_eq!(w.len(), N as usize);
        for k in keys.iter().step_by(2) {
            assert!(w.cancel(*k).is_some());
        }
        assert_eq!(w.len(), (N / 2) as usize);
        // Re-derive the due ticks: same sequence.
        let mut rng = Rng(0x1234_5678_9ABC_DEF1);
        let dues: Vec<u64> = (0..N).map(|_| rng.below(10 * N)).collect();
        let mut count = 0u64;
        let mut last = (0u64, 0u32);
        let mut step = 0;
        while !w.is_empty() {
            step += 7_919;
            w.advance(step, |_, id| {
                assert_eq!(id % 2, 1, "a cancelled timer fired");
                let cur = (dues[id as usize], id);
                assert!(cur > last, "out of order: {cur:?} after {last:?}");
                assert!(cur.0 <= step);
                last = cur;
                count += 1;
            });
        }
        assert_eq!(count, N / 2);
    }
}
