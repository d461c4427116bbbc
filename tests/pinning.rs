//! Pinned workers run on the cores they were given.

use std::sync::{Arc, Mutex};

use pinbus::{Engine, Pinning};

fn cores_seen(pinning: Pinning, workers: usize) -> Vec<Vec<usize>> {
    let engine = Engine::builder()
        .workers(workers)
        .pinning(pinning)
        .build()
        .unwrap();
    let seen = Arc::new(Mutex::new(vec![Vec::new(); workers]));
    let topic = engine.topic::<u8>("where").unwrap();
    for w in 0..workers {
        let s = seen.clone();
        topic
            .subscribe_with(
                move |_| {
                    // The affinity mask of the worker thread.
                    let ids = core_affinity::get_core_ids()
                        .unwrap_or_default()
                        .into_iter()
                        .map(|c| c.id)
                        .collect();
                    s.lock().unwrap()[w] = ids;
                },
                pinbus::SubscribeOptions::new().worker(w),
            )
            .unwrap();
    }
    topic.publish_and_wait(0).unwrap();
    engine.shutdown();
    let v = seen.lock().unwrap().clone();
    v
}

fn online() -> Vec<usize> {
    let mut ids: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    ids.sort_unstable();
    ids
}

#[test]
fn cores_pins_each_worker_to_its_core() {
    let cores = online();
    let last = *cores.last().unwrap();
    assert_eq!(cores_seen(Pinning::Cores(vec![last]), 1), vec![vec![last]]);
    if cores.len() >= 2 {
        let pair = vec![cores[1], cores[0]];
        assert_eq!(
            cores_seen(Pinning::Cores(pair.clone()), 2),
            vec![vec![pair[0]], vec![pair[1]]]
        );
    }
}

#[test]
fn auto_uses_the_highest_cores() {
    let cores = online();
    let last = *cores.last().unwrap();
    assert_eq!(cores_seen(Pinning::Auto, 1), vec![vec![last]]);
    // More workers than cores: nothing pinned, the engine still runs.
    let n = cores.len() + 1;
    let seen = cores_seen(Pinning::Auto, n);
    assert!(seen.iter().all(|mask| mask.len() == cores.len()));
}
