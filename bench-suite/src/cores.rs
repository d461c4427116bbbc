//! Core placement: the cores this process may use, read once at start
//! before anything is pinned (a thread inherits its creator's affinity, so
//! asking after pinning would see one core), and helpers to pin threads.

use std::sync::OnceLock;

/// The cores available to the process at start, sorted.
static CORES: OnceLock<Vec<usize>> = OnceLock::new();

/// Reads the core list; call first thing in `main`, before any pinning.
pub fn init() {
    CORES.get_or_init(|| {
        let mut ids: Vec<usize> = core_affinity::get_core_ids()
            .unwrap_or_default()
            .into_iter()
            .map(|c| c.id)
            .collect();
        ids.sort_unstable();
        ids
    });
}

/// All cores read by [`init`] (empty if the platform does not say).
pub fn all() -> &'static [usize] {
    CORES.get().map_or(&[], Vec::as_slice)
}

/// The core of producer thread `p`: producers take the cores before the last
/// one (the consumer's), round-robin; `None` with fewer than two cores.
pub fn producer(p: usize) -> Option<usize> {
    let cores = all();
    (cores.len() >= 2).then(|| cores[p % (cores.len() - 1)])
}

/// The consumer core: the last one; `None` with fewer than two cores.
pub fn consumer() -> Option<usize> {
    let cores = all();
    (cores.len() >= 2).then(|| cores[cores.len() - 1])
}

/// The consumer cores of spread scenarios: every core but the first
/// (at least one entry when there are two or more cores).
pub fn consumers() -> Vec<usize> {
    let cores = all();
    if cores.len() >= 2 {
        cores[1..].to_vec()
    } else {
        Vec::new()
    }
}

/// Pins the calling thread to `core` (no-op for `None`).
pub fn pin(core: Option<usize>) {
    if let Some(id) = core {
        core_affinity::set_for_current(core_affinity::CoreId { id });
    }
}

/// A short description for the header: `"2 cores [0, 1]"`.
pub fn describe() -> String {
    format!("{} cores {:?}", all().len(), all())
}
