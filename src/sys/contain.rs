//! Containing panics from user code: a handler's `Drop`, an event's `Clone`
//! or `Drop`, an error's `Display`. The engine's threads catch them where
//! they run, count them, and go on.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `f`, catching a panic (counted in `stray`); the payload is dropped
/// without letting a second panic escape.
pub(crate) fn contain<R>(stray: &mut u64, f: impl FnOnce() -> R) -> Option<R> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => Some(r),
        Err(payload) => {
            *stray += 1;
            drop_payload(payload, stray);
            None
        }
    }
}

/// Drops a panic payload without letting a second panic escape: a panic in
/// the payload's own `Drop` (user code: `panic_any` takes any value) is
/// counted in `stray`. That panic's payload is dropped in turn, and so on,
/// each one counted.
pub(crate) fn drop_payload(payload: Box<dyn Any + Send>, stray: &mut u64) {
    let mut next = Some(payload);
    while let Some(payload) = next.take() {
        if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
            *stray += 1;
            next = Some(again);
        }
    }
}

/// Drops `value`, containing a panic in its `Drop` (counted in `stray`):
/// the engine's threads drop events, and an event's `Drop` is user code.
#[inline(always)]
pub(crate) fn drop_contained<V>(value: V, stray: &mut u64) {
    if std::mem::needs_drop::<V>() {
        contain(stray, move || drop(value));
    }
}
