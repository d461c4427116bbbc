//! Reuse of one-shot cells (receipts' trackers, reply slots): a thread keeps
//! a few `Arc`s and takes one that nobody else holds any more.
//!
//! A cell is free when [`Arc::get_mut`] succeeds: the last other holder
//! (a lane, a member) is gone, and the acquire inside that check orders
//! its accesses before the reuse. The first cell made fills the pool with
//! spares at once: a holder drops its `Arc` just after it settles the cell,
//! so the cell a thread just used can still be held when it needs the next
//! one; a spare is then free, and nothing is allocated after warm-up.

use crate::loom::sync::Arc;

/// Cells a thread keeps per kind (a thread waiting for one call or publish
/// at a time needs one; a few cover short pipelines).
pub(crate) const KEEP: usize = 4;

/// Takes a free cell of `pool` and sets it up with `reuse(cell, with)`; if
/// none is free, makes one with `fresh(with)` and, while the pool has
/// room, keeps it and fills the pool with `spare()`s.
pub(crate) fn take<T, A>(
    pool: &mut Vec<Arc<T>>,
    with: A,
    reuse: impl FnOnce(&mut T, A),
    fresh: impl FnOnce(A) -> T,
    spare: impl Fn() -> T,
) -> Arc<T> {
    for cell in pool.iter_mut() {
        // Acquire (inside `get_mut`): every former holder's last access
        // happens before this reuse.
        if let Some(free) = Arc::get_mut(cell) {
            reuse(free, with);
            return cell.clone();
        }
    }
    let made = Arc::new(fresh(with));
    if pool.len() < KEEP {
        pool.push(made.clone());
        while pool.len() < KEEP {
            pool.push(Arc::new(spare()));
        }
    }
    made
}
