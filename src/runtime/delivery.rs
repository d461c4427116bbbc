//! The [`Event`] a handler sees, built on the worker's stack from a value
//! taken out of a lane and what the lane's cursor knows about it.

use crate::event::meta::{Event, Meta};
use crate::event::name::TopicName;
use crate::lane::tag::Delivered;

/// The event handlers see, built from a drained value.
#[inline(always)]
pub(crate) fn event<T>(value: T, d: Delivered, topic: &'static TopicName, salt: u64) -> Event<T> {
    Event::tracked(
        value,
        topic,
        Meta {
            seq: d.seq,
            // 0 without a publisher's timestamp: the batch's dispatch
            // clock, read if asked for (`Meta::published_nanos`).
            published: d.published,
            lineage: d.lineage,
            attempt: 1,
            end_of_batch: d.end_of_batch,
            version: d.version,
            salt,
        },
        d.tracker,
    )
}
