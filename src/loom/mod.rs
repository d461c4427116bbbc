//! The sync shim: every atomic, cell, `Arc`, lock, thread and spin hint in the
//! crate comes from here, so that `RUSTFLAGS="--cfg loom"` swaps the whole
//! crate onto loom's checked types and the models in `loom-tests/` exercise the
//! real code, not a copy (tokio's `src/loom/` layout).
//!
//! `std` re-exports the standard library with loom's API shape
//! (`UnsafeCell::with`/`with_mut`); `mocked` re-exports loom plus fixed
//! stubs for what loom lacks (core ids, pinning).

#[cfg(not(loom))]
mod std;
#[cfg(not(loom))]
pub(crate) use self::std::*;

#[cfg(loom)]
mod mocked;
#[cfg(loom)]
pub(crate) use self::mocked::*;
