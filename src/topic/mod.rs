//! Topics: the typed handle, its options, the publish family, subscribing,
//! consumer groups, wildcard pattern subscriptions, delayed events,
//! interceptors, and the registry that opens them by name.

pub(crate) mod backlog;
pub(crate) mod batch;
pub(crate) mod control;
pub(crate) mod delayed;
pub(crate) mod groups;
pub(crate) mod handle;
pub mod intercept;
pub(crate) mod keyed;
pub(crate) mod names;
pub(crate) mod open;
pub(crate) mod options;
pub(crate) mod pattern;
pub(crate) mod pattern_parts;
pub(crate) mod publish;
pub(crate) mod publish_async;
pub(crate) mod service;
pub(crate) mod shared;
pub(crate) mod stream;
pub(crate) mod stream_back;
pub(crate) mod subscribe;
pub(crate) mod targets;
pub(crate) mod view;
