//! The publish path for a batch.

use super::options::Backpressure;
use super::publish::fan_out;
use super::shared::TopicShared;
use super::view::{producer_for, View};
use crate::core::producer::{SlotInfo, SlotKind};
use crate::event::trace::{self, Lineage};
use crate::lane::producer::Outgoing;
use crate::loom::sync::atomic::AtomicUsize;
use crate::loom::sync::Arc;
use crate::runtime::idle::Snooze;
use crate::runtime::workers::EXITING;
use crate::sys::error::PublishError;

/// An iterator that turns a panic of the one it wraps into its end, keeping
/// the payload (see [`TopicShared::send_batch`]).
pub(super) struct Contained<I> {
    pub(super) inner: I,
    pub(super) panic: Option<Box<dyn std::any::Any + Send>>,
}

impl<I: Iterator> Iterator for Contained<I> {
    type Item = I::Item;

    #[inline(always)]
    fn next(&mut self) -> Option<I::Item> {
        if self.panic.is_some() {
            return None;
        }
        let inner = &mut self.inner;
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.next())) {
            Ok(next) => next,
            Err(payload) => {
                self.panic = Some(payload);
                None
            }
        }
    }
}

/// Events a batch published, added to the slot's count when it drops (also
/// on unwind).
pub(super) struct Counted<'a, 'b>(&'a SlotInfo<'b>, u64);

impl Drop for Counted<'_, '_> {
    fn drop(&mut self) {
        self.0.count_published(self.1);
    }
}

impl<T: Clone + Send + 'static> TopicShared<T> {
    /// The publish path for a batch: one room check per lane for each run
    /// that fits, one clock read for the whole batch.
    pub(super) fn send_batch(
        this: &Arc<Self>,
        hint: &AtomicUsize,
        events: impl IntoIterator<Item = T>,
    ) -> Result<(), PublishError<Vec<T>>> {
        // The caller's iterator runs inside the ring writes: a panic in it
        // ends the batch cleanly (what came before is published and counted)
        // and is resumed once the publish is complete.
        let mut iter = Contained {
            inner: events.into_iter(),
            panic: None,
        };
        let fail = this.options.backpressure == Backpressure::Fail;
        let published = this.stamp();
        let lineage = trace::lineage();
        let result = Self::with_view(this, hint, |view, access, info| {
            // Counted even if a `Clone` unwinds out of a fan-out.
            let mut count = Counted(&info, 0);
            let count = &mut count.1;
            let mut snooze = Snooze::new(this.runtime.idle);
            let result = loop {
                if access.version() != view.version {
                    this.revalidate(view, access);
                }
                let View {
                    version,
                    targets,
                    producers,
                    copies,
                    backlog_registered,
                    seq: seqs,
                    ..
                } = &mut *view;
                let Some(targets) = targets.as_deref() else {
                    break Err(PublishError::Closed(iter.by_ref().collect()));
                };
                if !targets.accepts(info.kind) {
                    break Err(PublishError::Closed(iter.by_ref().collect()));
                }
                let lanes = &targets.lanes;
                let Some((last, rest)) = lanes.split_last() else {
                    *count += iter.by_ref().count() as u64;
                    break Ok(());
                };
                let version = *version;
                let (kind, index) = (info.kind, info.index);
                // A run that fits every lane (a retired lane takes anything:
                // nobody drains it, and what reaches it is discarded).
                let room = lanes
                    .iter()
                    .map(|t| match t.lane.is_retired() {
                        true => usize::MAX,
                        false => producer_for(producers, &t.lane).room(),
                    })
                    .min()
                    .unwrap_or(0);
                if room == 0 {
                    if fail {
                        this.count_full();
                        break Err(PublishError::Full(iter.by_ref().collect()));
                    }
                    if kind == SlotKind::Worker {
                        // A handler never waits: the rest goes to backlogs.
                        for value in iter.by_ref() {
                            let seq = seqs.next(&this.seq_blocks);
                            fan_out(
                                lanes,
                                value,
                                copies,
                                #[inline(always)]
                                |t, value| {
                                    let ev = Outgoing {
                                        value,
                                        seq,
                                        version,
                                        published,
                                        tracker: None,
                                        lineage,
                                    };
                                    Self::push(
                                        this,
                                        t,
                                        producers,
                                        ev,
                                        kind,
                                        index,
                                        backlog_registered,
                                    );
                                },
                            );
                            *count += 1;
                        }
                        break Ok(());
                    }
                    if this.runtime.state() == EXITING {
                        // The workers are gone: no room will ever appear.
                        break Err(PublishError::Closed(iter.by_ref().collect()));
                    }
                    for t in lanes {
                        this.wake(t);
                    }
                    snooze.snooze();
                    continue;
                }
                let mut pushed = 0;
                // One lane and nothing to attach: plain entries while they
                // continue the lane's sequence within this seq block.
                if rest.is_empty() && published == 0 && lineage == Lineage::Root {
                    let p = producer_for(producers, &last.lane);
                    if p.continues(seqs.next, version) {
                        let block = usize::try_from(seqs.end - seqs.next).unwrap_or(room);
                        let n = p.push_plain_from(&mut iter, room.min(block));
                        seqs.next += n as u64;
                        pushed = n;
                        *count += n as u64;
                    }
                }
                while pushed < room {
                    let Some(value) = iter.next() else {
                        break;
                    };
                    let seq = seqs.next(&this.seq_blocks);
                    fan_out(
                        lanes,
                        value,
                        copies,
                        #[inline(always)]
                        |t, value| {
                            let ev = Outgoing {
                                value,
                                seq,
                                version,
                                published,
                                tracker: None,
                                lineage,
                            };
                            Self::write(this, t, producers, ev, kind, index, backlog_registered);
                        },
                    );
                    pushed += 1;
                    *count += 1;
                }
                for t in lanes {
                    this.wake(t);
                }
                if pushed < room {
                    break Ok(());
                }
                snooze = Snooze::new(this.runtime.idle);
            };
            result
        });
        if let Some(payload) = iter.panic.take() {
            std::panic::resume_unwind(payload);
        }
        result
    }
}
