//! The bridge's JetStream stream: created if missing, extended by the
//! subjects it does not capture yet, never otherwise changed.

use std::fmt;

use async_nats::jetstream::{self, stream};

use super::error::BridgeError;
use super::options::BridgeOptions;
use super::subject;

pub(crate) fn stream_config(o: &BridgeOptions) -> stream::Config {
    stream::Config {
        name: o.stream.clone(),
        subjects: o.subjects.clone(),
        storage: if o.memory_storage {
            stream::StorageType::Memory
        } else {
            stream::StorageType::File
        },
        duplicate_window: o.duplicate_window,
        num_replicas: o.replicas,
        ..Default::default()
    }
}

/// Creates the stream, or adds the subjects it does not capture yet.
pub(crate) async fn ensure_stream(
    js: &jetstream::Context,
    config: stream::Config,
) -> Result<(), BridgeError> {
    let name = config.name.clone();
    let fail = |action: String| {
        move |e: &dyn fmt::Display| BridgeError::JetStream {
            action,
            reason: e.to_string(),
        }
    };
    let mut stream = js
        .get_or_create_stream(config.clone())
        .await
        .map_err(|e| fail(format!("create stream {name:?}"))(&e))?;
    let info = stream
        .info()
        .await
        .map_err(|e| fail(format!("read stream {name:?}"))(&e))?;
    let mut existing = info.config.clone();
    let missing: Vec<String> = config
        .subjects
        .iter()
        .filter(|s| !existing.subjects.iter().any(|e| subject::covers(e, s)))
        .cloned()
        .collect();
    if !missing.is_empty() {
        existing.subjects.extend(missing);
        js.update_stream(existing).await.map_err(|e| {
            fail(format!(
                "add subjects {:?} to stream {name:?}",
                config.subjects
            ))(&e)
        })?;
    }
    Ok(())
}
