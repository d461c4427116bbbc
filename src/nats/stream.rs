//! The bridge's JetStream stream: created if missing, extended by the
//! subjects it does not capture yet, its limits set from `BridgeOptions`;
//! and which stream captures a subject.

use std::fmt;

use async_nats::jetstream::{self, stream};

use super::error::BridgeError;
use super::options::{BridgeOptions, DiscardPolicy, Storage, StreamLimits};
use super::subject;

/// Attempts at adding a subject when other bridges update the stream at the
/// same time (each update replaces the whole subject list).
const EXTEND_ATTEMPTS: usize = 8;

fn storage_type(s: Storage) -> stream::StorageType {
    match s {
        Storage::File => stream::StorageType::File,
        Storage::Memory => stream::StorageType::Memory,
    }
}

fn discard(d: DiscardPolicy) -> stream::DiscardPolicy {
    match d {
        DiscardPolicy::Old => stream::DiscardPolicy::Old,
        DiscardPolicy::New => stream::DiscardPolicy::New,
    }
}

pub(crate) fn stream_config(o: &BridgeOptions) -> stream::Config {
    let mut config = stream::Config {
        name: o.stream.clone(),
        subjects: o.subjects.clone(),
        storage: storage_type(o.storage.unwrap_or(Storage::File)),
        duplicate_window: o.duplicate_window,
        num_replicas: o.replicas,
        ..Default::default()
    };
    apply_limits(&mut config, &o.limits);
    config
}

/// Writes the limits that are set into `config`; whether anything changed.
fn apply_limits(config: &mut stream::Config, l: &StreamLimits) -> bool {
    let before = (
        config.max_age,
        config.max_bytes,
        config.max_messages,
        config.max_messages_per_subject,
        config.discard,
    );
    if let Some(age) = l.max_age {
        config.max_age = age;
    }
    if let Some(b) = l.max_bytes {
        config.max_bytes = b;
    }
    if let Some(n) = l.max_messages {
        config.max_messages = n;
    }
    if let Some(n) = l.max_messages_per_subject {
        config.max_messages_per_subject = n;
    }
    if let Some(d) = l.discard {
        config.discard = discard(d);
    }
    before
        != (
            config.max_age,
            config.max_bytes,
            config.max_messages,
            config.max_messages_per_subject,
            config.discard,
        )
}

fn fail(action: String) -> impl FnOnce(&dyn fmt::Display) -> BridgeError {
    move |e: &dyn fmt::Display| BridgeError::JetStream {
        action,
        reason: e.to_string(),
    }
}

/// Creates the stream, or adds the subjects it does not capture yet and
/// applies the limits set in `options`.
pub(crate) async fn ensure_stream(
    js: &jetstream::Context,
    options: &BridgeOptions,
) -> Result<(), BridgeError> {
    let config = stream_config(options);
    let name = config.name.clone();
    let mut stream = js
        .get_or_create_stream(config.clone())
        .await
        .map_err(|e| fail(format!("create stream {name:?}"))(&e))?;
    let info = stream
        .info()
        .await
        .map_err(|e| fail(format!("read stream {name:?}"))(&e))?;
    let mut existing = info.config.clone();
    if let Some(wanted) = options.storage {
        if existing.storage != storage_type(wanted) {
            return Err(BridgeError::InvalidOption {
                problem: format!(
                    "stream {name:?} exists with {:?} storage, and JetStream cannot change a \
                     stream's storage; drop BridgeOptions::storage / memory_storage, use another \
                     stream name, or re-create the stream (nats stream rm {name})",
                    existing.storage
                ),
            });
        }
    }
    let missing: Vec<String> = config
        .subjects
        .iter()
        .filter(|s| !existing.subjects.iter().any(|e| subject::covers(e, s)))
        .cloned()
        .collect();
    let changed = apply_limits(&mut existing, &options.limits);
    if !missing.is_empty() || changed {
        add_subjects(&mut existing.subjects, &missing);
        js.update_stream(existing).await.map_err(|e| {
            fail(format!(
                "add subjects {:?} to stream {name:?} or set its limits",
                config.subjects
            ))(&e)
        })?;
    }
    Ok(())
}

/// Adds each of `new` to `subjects`, dropping the subjects it covers (a
/// stream may not list overlapping subjects).
fn add_subjects(subjects: &mut Vec<String>, new: &[String]) {
    for n in new {
        if subjects.iter().any(|e| subject::covers(e, n)) {
            continue;
        }
        subjects.retain(|e| !subject::covers(n, e));
        subjects.push(n.clone());
    }
}

/// Adds `subject` (a subject or a filter) to the stream `name`, creating
/// the stream from `options` if it is missing. Re-reads and retries when
/// another bridge updated the stream at the same time.
pub(crate) async fn extend(
    js: &jetstream::Context,
    options: &BridgeOptions,
    subject: &str,
) -> Result<(), BridgeError> {
    let name = options.stream.clone();
    for _ in 0..EXTEND_ATTEMPTS {
        let mut stream = match js.get_stream(&name).await {
            Ok(s) => s,
            Err(_) => {
                let mut config = stream_config(options);
                add_subjects(&mut config.subjects, &[subject.to_owned()]);
                js.get_or_create_stream(config)
                    .await
                    .map_err(|e| fail(format!("create stream {name:?} for {subject:?}"))(&e))?
            }
        };
        let info = stream
            .info()
            .await
            .map_err(|e| fail(format!("read stream {name:?}"))(&e))?;
        if info
            .config
            .subjects
            .iter()
            .any(|e| subject::covers(e, subject))
        {
            return Ok(());
        }
        let mut config = info.config.clone();
        add_subjects(&mut config.subjects, &[subject.to_owned()]);
        js.update_stream(config)
            .await
            .map_err(|e| fail(format!("add subject {subject:?} to stream {name:?}"))(&e))?;
    }
    Err(BridgeError::JetStream {
        action: format!("add subject {subject:?} to stream {name:?}"),
        reason: format!(
            "other processes kept changing the stream's subjects ({EXTEND_ATTEMPTS} attempts)"
        ),
    })
}

/// The stream whose subjects overlap `filter`, with its subjects, if any.
pub(crate) async fn find(
    js: &jetstream::Context,
    filter: &str,
) -> Result<Option<(String, Vec<String>)>, BridgeError> {
    let name = match js.stream_by_subject(filter).await {
        Ok(name) => name,
        Err(e)
            if matches!(
                e.kind(),
                jetstream::context::GetStreamByNameErrorKind::NotFound
            ) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(fail(format!("look up the stream that captures {filter:?}"))(&e)),
    };
    let mut stream = js
        .get_stream(&name)
        .await
        .map_err(|e| fail(format!("open stream {name:?}"))(&e))?;
    let info = stream
        .info()
        .await
        .map_err(|e| fail(format!("read stream {name:?}"))(&e))?;
    Ok(Some((name, info.config.subjects.clone())))
}
