//! The engine: building it from settings or a TOML file, its topic
//! registry, and shutdown.

pub(crate) mod builder;
pub(crate) mod config;
pub(crate) mod instance;
pub(crate) mod shutdown;
