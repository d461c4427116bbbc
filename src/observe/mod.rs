//! What the engine reports about itself: metrics snapshots.

pub(crate) mod metrics;
