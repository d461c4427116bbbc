//! A handler's publishes that found a lane full wait in its worker's
//! backlog (guarantee 10).

use super::shared::TopicShared;
use crate::loom::sync::atomic::Ordering;
use crate::loom::sync::Arc;
use crate::runtime::drain::Backlog;

/// A worker slot's backlog for this topic, flushed by the worker loop.
pub(super) struct TopicBacklog<T> {
    pub(super) topic: Arc<TopicShared<T>>,
    pub(super) slot: usize,
}

impl<T: Clone + Send + 'static> Backlog for TopicBacklog<T> {
    fn flush(&mut self) -> bool {
        let topic = &self.topic;
        let empty = topic
            .slots
            .with_owned(self.slot, |view, _, _| {
                // Re-decided by the slot's next general publish.
                view.fast_off();
                let mut empty = true;
                let mut dropped = 0;
                for p in view.producers.iter_mut().flatten() {
                    let (d, e) = p.flush_backlog();
                    dropped += d;
                    empty &= e;
                }
                if dropped > 0 {
                    topic.discarded.fetch_add(dropped, Ordering::Relaxed);
                }
                if empty {
                    view.backlog_registered = false;
                }
                empty
            })
            // Not this worker's slot: cannot happen (registered by its owner).
            .unwrap_or(true);
        if topic.runtime.wakes_on_publish() {
            for w in &topic.runtime.workers {
                w.wake_if_sleeping();
            }
        }
        empty
    }
}
