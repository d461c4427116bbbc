//! The bottom of the tree: what the operating system and the process give
//! every layer — fences, core pinning, panic containment, the engine's typed
//! errors.

pub(crate) mod call_error;
pub(crate) mod contain;
pub(crate) mod context;
pub(crate) mod epoch;
pub(crate) mod error;
pub(crate) mod fence;
pub(crate) mod mix;
pub(crate) mod pinning;
pub(crate) mod shown;
