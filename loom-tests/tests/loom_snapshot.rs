//! loom models of the subscriber snapshot (`src/snapshot.rs`): lock-free
//! readers with hazard pointers against a copy-on-write writer.
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use pinbus::internals::SnapshotCell;

/// A snapshot whose payload is a loom `Arc`, so a use-after-free of the old
/// snapshot or a leak shows up in loom's checks.
struct Snap {
    lanes: Vec<Arc<u32>>,
}

/// A reader loading while a writer swaps twice: the reader gets a live
/// snapshot at least as new as the version it reports, and every replaced
/// snapshot is freed exactly once.
#[test]
fn snapshot_swap_races_reader() {
    loom::model(|| {
        let cell = Arc::new(SnapshotCell::new(Snap { lanes: vec![] }, 1));
        let reader = {
            let cell = cell.clone();
            thread::spawn(move || {
                // SAFETY: reader index 0 is used by this thread only.
                let (v, snap) = unsafe { cell.load(0) };
                // Version v means at least v lanes (one added per update).
                assert!(snap.lanes.len() as u64 >= v);
                let sum: u32 = snap.lanes.iter().map(|a| **a).sum();
                assert_eq!(sum as usize, snap.lanes.len());
            })
        };
        for _ in 0..2 {
            cell.update(|old, _| {
                let mut lanes = old.lanes.clone();
                lanes.push(Arc::new(1));
                Snap { lanes }
            });
        }
        reader.join().unwrap();
        assert_eq!(cell.version(), 2);
    });
}

/// Two readers with their own hazard slots against one update.
#[test]
fn snapshot_two_readers_one_writer() {
    loom::model(|| {
        let cell = Arc::new(SnapshotCell::new(
            Snap {
                lanes: vec![Arc::new(1)],
            },
            2,
        ));
        let readers: Vec<_> = (0..2)
            .map(|r| {
                let cell = cell.clone();
                thread::spawn(move || {
                    // SAFETY: reader index `r` belongs to this thread.
                    let (_, snap) = unsafe { cell.load(r) };
                    assert!(!snap.lanes.is_empty());
                })
            })
            .collect();
        cell.update(|_, _| Snap {
            lanes: vec![Arc::new(1), Arc::new(1)],
        });
        for r in readers {
            r.join().unwrap();
        }
    });
}
