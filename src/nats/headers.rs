//! The header names exports write and imports read.

/// The header that carries the W3C trace context.
pub(crate) const TRACEPARENT: &str = "traceparent";
/// The header that names the codec.
pub(crate) const CONTENT_TYPE: &str = "Content-Type";
/// The header of an error reply, with its text (the NATS services
/// convention, as `nats.micro` and async-nats's `service` write it).
pub(crate) const SERVICE_ERROR: &str = "Nats-Service-Error";
/// The header of an error reply, with its code (HTTP-like: 400, 500, ...).
pub(crate) const SERVICE_ERROR_CODE: &str = "Nats-Service-Error-Code";
