//! Lanes: a topic's rings toward one worker or one consumer group, with the
//! side data an event carries beside its ring slot.

pub(crate) mod consumer;
pub(crate) mod keyed;
pub(crate) mod producer;
pub(crate) mod rings;
pub(crate) mod room;
pub(crate) mod tag;
