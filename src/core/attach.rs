//! Shares a ring slot's stamp can carry: an `Arc` share that travels in the
//! stamp word itself, so an event that needs one costs no other cache line.
//!
//! A lane's tracked events carry their receipt's share this way
//! ([`Producer::write_attached`](crate::core::ring::Producer::write_attached)):
//! the side queue, a second ring, would cost the round trip two more cache
//! line transfers, one of them serial on the consumer's side
//! (`docs/benchmarks.md`, "S8: where the round trip's time goes").
//!
//! # Invariants
//!
//! - (A1) A stamp whose [`ATTACHED`] bit is set holds, in its share field,
//!   the address of an `Arc<X>` from `Arc::into_raw` (shifted right by 3)
//!   with that pointer's provenance, and owns that strong reference. Only
//!   [`Stamp::store_attached`] sets the bit, and it consumes the share.
//! - (A2) The owned reference is taken back exactly once: by the consumer
//!   when it consumes the slot, or by the ring's `Drop` for a slot left
//!   unconsumed. The producer's next store to the slot (a lap later) comes
//!   after the consumer took it (the ring's `head` protocol).
//!
//! The stamp is an `AtomicPtr` on 64-bit targets, so a share's pointer keeps
//! its provenance through the word (Miri runs with strict provenance).
//! Plain stamps are addresses without provenance. On other targets the stamp
//! is an `AtomicU64` and no share ever fits ([`Attached::fits`] is false):
//! callers carry it some other way.
#![allow(unreachable_pub)] // `pub` for `internals` under cfg(loom); crate-private otherwise

use std::mem::ManuallyDrop;

use crate::loom::sync::atomic::Ordering;
use crate::loom::sync::Arc;

/// What the owner of a carried share does when the share is dropped.
pub trait Settle: Send + Sync {
    /// Whether rings for this type carry shares at all (false only for
    /// [`NoAttachment`]: its rings' loops skip the check).
    const CARRIED: bool = true;
    /// Runs once per share, when it is dropped, before its `Arc` reference
    /// goes.
    fn settle(&self);
}

/// The share type of rings that carry none.
#[derive(Debug)]
pub enum NoAttachment {}

impl Settle for NoAttachment {
    const CARRIED: bool = false;
    fn settle(&self) {
        match *self {}
    }
}

/// A share of an `Arc<X>` that settles when it is dropped (see [`Settle`]).
pub struct Attached<X: Settle> {
    arc: ManuallyDrop<Arc<X>>,
}

impl<X: Settle> Attached<X> {
    /// A share holding `arc`.
    #[inline]
    pub fn new(arc: Arc<X>) -> Attached<X> {
        Attached {
            arc: ManuallyDrop::new(arc),
        }
    }

    /// The shared value.
    #[inline]
    pub fn get(&self) -> &X {
        &self.arc
    }

    /// The `Arc` the share holds.
    #[inline]
    pub fn arc(&self) -> &Arc<X> {
        &self.arc
    }

    /// Whether this share fits in a stamp: a 64-bit target and an address
    /// below 2^57 (every x86-64 and AArch64 user address without a tag in
    /// its top byte).
    #[inline]
    pub fn fits(&self) -> bool {
        let addr = Arc::as_ptr(&self.arc).cast::<()>().addr() as u64;
        cfg!(target_pointer_width = "64") && addr & 7 == 0 && addr >> 3 <= SHARE_MAX
    }

    /// The `Arc` reference, without settling.
    #[inline]
    fn into_arc(self) -> Arc<X> {
        let mut this = ManuallyDrop::new(self);
        // SAFETY: `this` is never used or dropped again (`ManuallyDrop`), so
        // the `Arc` is moved out exactly once.
        unsafe { ManuallyDrop::take(&mut this.arc) }
    }
}

impl<X: Settle> Drop for Attached<X> {
    fn drop(&mut self) {
        self.arc.settle();
        // SAFETY: `drop` runs once, and `arc` is not used after this.
        unsafe { ManuallyDrop::drop(&mut self.arc) };
    }
}

impl<X: Settle> std::fmt::Debug for Attached<X> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attached").finish_non_exhaustive()
    }
}

/// Stamp bit 63 (tag bit 62): the stamp carries a share.
pub const ATTACHED: u64 = 1 << 63;

/// Tag bits below this shift are the caller's when a share is carried
/// ([`Producer::write_attached`](crate::core::ring::Producer::write_attached)).
pub const ATTACHED_TAG_BITS: u32 = 8;

/// Stamp bit where the share field starts (above the parity bit and the
/// caller's tag bits).
const SHARE_SHIFT: u32 = ATTACHED_TAG_BITS + 1;

/// The largest share field: the 54 bits between the caller's tag bits and
/// [`ATTACHED`] (an 8-aligned address below 2^57, shifted right by 3).
const SHARE_MAX: u64 = (1 << (63 - SHARE_SHIFT)) - 1;

/// The stamp bits that are not the share field.
const NOT_SHARE: u64 = ATTACHED | ((1 << SHARE_SHIFT) - 1);

#[cfg(target_pointer_width = "64")]
mod cell {
    use std::ptr;

    use crate::loom::sync::atomic::{AtomicPtr, Ordering};

    /// A slot's stamp word.
    pub struct Stamp(AtomicPtr<()>);

    /// A stamp as loaded: its bits, and the provenance a carried share's
    /// pointer needs.
    #[derive(Clone, Copy)]
    pub struct Loaded(pub(super) *mut ());

    impl Stamp {
        pub fn new(bits: u64) -> Stamp {
            Stamp(AtomicPtr::new(ptr::without_provenance_mut(bits as usize)))
        }

        #[inline(always)]
        pub fn load(&self, order: Ordering) -> Loaded {
            Loaded(self.0.load(order))
        }

        #[inline(always)]
        pub fn store(&self, bits: u64, order: Ordering) {
            self.0
                .store(ptr::without_provenance_mut(bits as usize), order);
        }

        #[inline(always)]
        pub(super) fn store_ptr(&self, word: *mut (), order: Ordering) {
            self.0.store(word, order);
        }
    }

    impl Loaded {
        #[inline(always)]
        pub fn bits(self) -> u64 {
            self.0.addr() as u64
        }
    }
}

#[cfg(not(target_pointer_width = "64"))]
mod cell {
    use crate::loom::sync::atomic::{AtomicU64, Ordering};

    /// A slot's stamp word.
    pub struct Stamp(AtomicU64);

    /// A stamp as loaded.
    #[derive(Clone, Copy)]
    pub struct Loaded(u64);

    impl Stamp {
        pub fn new(bits: u64) -> Stamp {
            Stamp(AtomicU64::new(bits))
        }

        #[inline(always)]
        pub fn load(&self, order: Ordering) -> Loaded {
            Loaded(self.0.load(order))
        }

        #[inline(always)]
        pub fn store(&self, bits: u64, order: Ordering) {
            self.0.store(bits, order);
        }
    }

    impl Loaded {
        #[inline(always)]
        pub fn bits(self) -> u64 {
            self.0
        }
    }
}

pub use cell::{Loaded, Stamp};

impl Stamp {
    /// Stores `bits` (a stamp without [`ATTACHED`] or a share field) with
    /// `share` carried, transferring the share's reference to the stamp
    /// (A1).
    ///
    /// `share` must [fit](Attached::fits); the caller checked.
    #[inline(always)]
    pub fn store_attached<X: Settle>(&self, bits: u64, share: Attached<X>, order: Ordering) {
        debug_assert!(share.fits() && bits & !NOT_SHARE == 0 && bits & ATTACHED == 0);
        #[cfg(target_pointer_width = "64")]
        {
            let ptr = Arc::into_raw(share.into_arc()).cast_mut().cast::<()>();
            let word =
                ptr.map_addr(|a| (bits | ATTACHED | (a as u64 >> 3) << SHARE_SHIFT) as usize);
            self.store_ptr(word, order);
        }
        #[cfg(not(target_pointer_width = "64"))]
        {
            // Not reached: no share fits on these targets. Keep the share
            // settled rather than lost.
            drop(share);
            self.store(bits, order);
        }
    }
}

impl Loaded {
    /// The stamp's bits without the share field (and without [`ATTACHED`]).
    #[inline(always)]
    pub fn plain_bits(self) -> u64 {
        self.bits() & NOT_SHARE & !ATTACHED
    }

    /// Whether the stamp carries a share.
    #[inline(always)]
    pub fn is_attached(self) -> bool {
        self.bits() & ATTACHED != 0
    }

    /// Takes back the share the stamp carries.
    ///
    /// # Safety
    ///
    /// The stamp carries a share of an `Arc<X>` ([`is_attached`], and the
    /// ring's share type is `X`), which nobody took yet (A2): the caller
    /// takes it for the one consume or drop of the slot.
    ///
    /// [`is_attached`]: Loaded::is_attached
    #[inline(always)]
    pub unsafe fn take_share<X: Settle>(self) -> Attached<X> {
        debug_assert!(self.is_attached());
        #[cfg(target_pointer_width = "64")]
        {
            let ptr = self
                .0
                .map_addr(|w| ((w as u64 >> SHARE_SHIFT & SHARE_MAX) << 3) as usize);
            // SAFETY: by (A1) the share field is the address of an
            // `Arc::into_raw` pointer of `Arc<X>`, shifted right by 3 (it is
            // 8-aligned: the `Arc`'s counts are `usize`s), and `self.0`
            // kept that pointer's provenance through `map_addr`; by the
            // caller's contract (A2) its reference is taken back only here.
            Attached::new(unsafe { Arc::from_raw(ptr.cast_const().cast::<X>()) })
        }
        #[cfg(not(target_pointer_width = "64"))]
        {
            unreachable!("no share is carried on this target")
        }
    }
}
