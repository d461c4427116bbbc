//! What travels: [`Event`](crate::Event) and its metadata, topic names and
//! subjects, trace context, receipts.

pub(crate) mod meta;
#[cfg(loom)]
pub(crate) mod model;
pub(crate) mod name;
pub(crate) mod receipt;
pub(crate) mod reply;
pub(crate) mod reuse;
pub(crate) mod spin;
pub(crate) mod subject;
pub(crate) mod trace;
