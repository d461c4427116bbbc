//! Helpers for the engine-level models.
#![cfg(loom)]
#![allow(dead_code)]

use loom::sync::{Arc, Mutex};
use pinbus::{Engine, IdleStrategy, IdleTuning};

/// An engine small enough for loom: `workers` workers that park as soon as
/// they are idle (spinning would only multiply schedules), and rings of
/// `capacity` slots so wrap-around and full lanes are reached.
pub fn tiny_engine(workers: usize, capacity: usize) -> Engine {
    Engine::builder()
        .workers(workers)
        .lane_capacity(capacity)
        .idle(IdleStrategy::Park)
        .idle_tuning(IdleTuning {
            spins: 0,
            yields: 0,
            ..IdleTuning::default()
        })
        .drain_batch(2)
        .producer_slots(2)
        .build()
        .expect("valid model config")
}

/// A log a handler appends to.
#[derive(Clone, Default)]
pub struct Log(pub Arc<Mutex<Vec<u32>>>);

impl Log {
    pub fn push(&self, v: u32) {
        self.0.lock().unwrap().push(v);
    }
    pub fn take(&self) -> Vec<u32> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}
