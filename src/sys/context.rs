//! The calling thread's context: which engine's worker it is, if any
//! (tokio's `runtime/context.rs` keeps its "which runtime am I on" the same
//! way).

use std::cell::Cell;

use crate::loom::thread_local;

thread_local! {
    /// `(engine id, worker index)` on worker threads.
    // loom's `thread_local!` has no `const` form; the shim must accept both.
    #[allow(clippy::missing_const_for_thread_local)]
    static CURRENT: Cell<Option<(u64, usize)>> = Cell::new(None);
}

/// Marks the calling thread as worker `index` of engine `engine`.
pub(crate) fn enter_worker(engine: u64, index: usize) {
    let _ = CURRENT.try_with(|c| c.set(Some((engine, index))));
}

/// The calling worker thread is done.
pub(crate) fn leave_worker() {
    let _ = CURRENT.try_with(|c| c.set(None));
}

/// Whether the calling thread is one of engine `engine`'s workers.
pub(crate) fn on_worker_of(engine: u64) -> bool {
    current_worker(engine).is_some()
}

/// The calling thread's worker index, if it is one of engine `engine`'s.
pub(crate) fn current_worker(engine: u64) -> Option<usize> {
    CURRENT
        .try_with(|c| c.get())
        .ok()
        .flatten()
        .and_then(|(e, w)| (e == engine).then_some(w))
}
