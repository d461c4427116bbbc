//! Core placement: which core each worker is pinned to, through
//! `core_affinity`.

use crate::sys::error::ConfigError;

/// Where worker threads run.
///
/// # Examples
///
/// ```
/// use pinbus::Pinning;
/// let none = Pinning::None;                 // the OS schedules workers freely
/// let auto = Pinning::Auto;                 // the highest-numbered cores, one each
/// let exact = Pinning::Cores(vec![2, 3]);   // worker 0 on core 2, worker 1 on core 3
/// # let _ = (none, auto, exact);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Pinning {
    /// No pinning (the default): workers run wherever the OS schedules
    /// them within the CPU affinity they inherit from the thread that builds
    /// the engine (so build the engine before pinning that thread).
    #[default]
    None,
    /// Pin worker `i` to the `i`-th of the highest-numbered `workers` cores
    /// that are not reserved for producers (`Config::producer_cores`), leaving
    /// the lowest cores to producer threads. With more workers than such
    /// cores, nothing is pinned.
    Auto,
    /// Pin worker `i` to core `cores[i]`: one distinct core per worker.
    Cores(Vec<usize>),
}

/// The cores this machine has online (Linux: `/sys/devices/system/cpu/online`),
/// falling back to the cores the calling thread may use. Read once per
/// process: every engine's validation and placement see the same list.
pub(crate) fn available_cores() -> Vec<usize> {
    if cfg!(loom) {
        return (0..crate::loom::core_count()).collect();
    }
    static ONLINE: std::sync::OnceLock<Vec<usize>> = std::sync::OnceLock::new();
    ONLINE.get_or_init(read_available_cores).clone()
}

fn read_available_cores() -> Vec<usize> {
    if let Ok(text) = std::fs::read_to_string("/sys/devices/system/cpu/online") {
        if let Some(cores) = parse_cpu_list(text.trim()) {
            if !cores.is_empty() {
                return cores;
            }
        }
    }
    let mut ids: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    if ids.is_empty() {
        ids = (0..crate::loom::core_count()).collect();
    }
    ids.sort_unstable();
    ids
}

/// Parses a kernel CPU list such as `0-3,8,10-11`.
fn parse_cpu_list(text: &str) -> Option<Vec<usize>> {
    let mut out = Vec::new();
    for part in text.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.parse().ok()?, b.parse().ok()?);
                if a > b {
                    return None;
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse().ok()?),
        }
    }
    Some(out)
}

/// Resolves `pinning` for `workers` workers into one optional core per
/// worker, checking `producer_cores` (cores reserved for producer threads):
/// each must exist, appear once, and not be a worker's core.
pub(crate) fn resolve(
    pinning: &Pinning,
    workers: usize,
    producer_cores: &[usize],
) -> Result<Vec<Option<usize>>, ConfigError> {
    let available = available_cores();
    for (i, &core) in producer_cores.iter().enumerate() {
        if !available.contains(&core) {
            return Err(ConfigError::UnknownProducerCore { core, available });
        }
        if producer_cores[..i].contains(&core) {
            return Err(ConfigError::DuplicateProducerCore { core });
        }
    }
    match pinning {
        Pinning::None => Ok(vec![None; workers]),
        Pinning::Auto => {
            let free: Vec<usize> = available
                .iter()
                .copied()
                .filter(|c| !producer_cores.contains(c))
                .collect();
            if workers > free.len() {
                return Ok(vec![None; workers]);
            }
            Ok(free[free.len() - workers..]
                .iter()
                .map(|&c| Some(c))
                .collect())
        }
        Pinning::Cores(cores) => {
            if cores.len() != workers {
                return Err(ConfigError::CoreCountMismatch {
                    cores: cores.len(),
                    workers,
                });
            }
            for (i, &core) in cores.iter().enumerate() {
                if !available.contains(&core) {
                    return Err(ConfigError::UnknownCore { core, available });
                }
                if cores[..i].contains(&core) {
                    return Err(ConfigError::DuplicateCore { core });
                }
                if producer_cores.contains(&core) {
                    return Err(ConfigError::ProducerCoreOverlap { core, worker: i });
                }
            }
            Ok(cores.iter().map(|&c| Some(c)).collect())
        }
    }
}

/// Pins the calling thread to `core`; false if the OS refused.
pub(crate) fn pin_current(core: usize) -> bool {
    if cfg!(loom) {
        return true;
    }
    #[cfg(feature = "fault-injection")]
    if fault::refuses(core) {
        return false;
    }
    core_affinity::set_for_current(core_affinity::CoreId { id: core })
}

/// Test-only fault injection (feature `fault-injection`): makes the OS
/// "refuse" to pin to a core, so the `ConfigError::PinFailed` path can be
/// tested on machines where pinning always succeeds.
#[cfg(feature = "fault-injection")]
#[doc(hidden)]
pub mod fault {
    use std::sync::Mutex;

    static REFUSED: Mutex<Vec<usize>> = Mutex::new(Vec::new());

    /// Pinning to `core` fails from now on.
    pub fn refuse_pinning_to(core: usize) {
        REFUSED.lock().unwrap_or_else(|e| e.into_inner()).push(core);
    }

    static TIMER_REFUSED: Mutex<bool> = Mutex::new(false);

    /// Starting the timer thread fails (`refused = true`) or works again.
    pub fn refuse_timer_thread(refused: bool) {
        *TIMER_REFUSED.lock().unwrap_or_else(|e| e.into_inner()) = refused;
    }

    pub(crate) fn refuses_timer_thread() -> bool {
        *TIMER_REFUSED.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn refuses(core: usize) -> bool {
        REFUSED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&core)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_parse() {
        assert_eq!(
            parse_cpu_list("0-3,8,10-11"),
            Some(vec![0, 1, 2, 3, 8, 10, 11])
        );
        assert_eq!(parse_cpu_list("0"), Some(vec![0]));
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list("x"), None);
    }

    #[test]
    fn auto_takes_the_highest_cores_or_none() {
        let n = available_cores().len();
        let one = resolve(&Pinning::Auto, 1, &[]).unwrap();
        assert_eq!(one, vec![available_cores().last().copied()]);
        assert_eq!(
            resolve(&Pinning::Auto, n + 1, &[]).unwrap(),
            vec![None; n + 1]
        );
    }

    #[test]
    fn auto_avoids_producer_cores() {
        let cores = available_cores();
        let last = *cores.last().unwrap();
        let got = resolve(&Pinning::Auto, 1, &[last]).unwrap();
        if cores.len() >= 2 {
            assert_eq!(got, vec![Some(cores[cores.len() - 2])]);
        } else {
            assert_eq!(got, vec![None], "no free core: nothing is pinned");
        }
        // Every free core taken by a worker, none left over: unpinned.
        let n = cores.len();
        assert_eq!(resolve(&Pinning::Auto, n, &[last]).unwrap(), vec![None; n]);
    }

    #[test]
    fn producer_cores_are_checked() {
        let first = available_cores()[0];
        assert!(matches!(
            resolve(&Pinning::None, 1, &[9999]),
            Err(ConfigError::UnknownProducerCore { core: 9999, .. })
        ));
        assert!(matches!(
            resolve(&Pinning::None, 1, &[first, first]),
            Err(ConfigError::DuplicateProducerCore { core }) if core == first
        ));
        assert!(matches!(
            resolve(&Pinning::Cores(vec![first]), 1, &[first]),
            Err(ConfigError::ProducerCoreOverlap { core, worker: 0 }) if core == first
        ));
    }
}
