//! The lock-free mechanisms, and all of the crate's `unsafe`: the SPSC
//! ring, the snapshot cell, producer slots. They know nothing of topics or
//! handlers.

pub(crate) mod attach;
pub(crate) mod producer;
pub(crate) mod ring;
pub(crate) mod snapshot;
pub(crate) mod token;
