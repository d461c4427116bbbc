//! What becomes of failed deliveries: retry policies and dead letters.

pub(crate) mod dead_letter;
pub(crate) mod retry;
