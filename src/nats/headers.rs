//! The header names exports write and imports read.

/// The header that carries the W3C trace context.
pub(crate) const TRACEPARENT: &str = "traceparent";
/// The header that names the codec.
pub(crate) const CONTENT_TYPE: &str = "Content-Type";
