//! Topic names: interned for the process's life, and checked.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// A topic name interned for the life of the process, so events can carry a
/// thin `&'static` pointer to it instead of a reference-counted string.
///
/// Interning happens once per distinct name (at topic creation); the table
/// only grows with the number of distinct names a process ever uses.
#[derive(Debug)]
pub(crate) struct TopicName(&'static str);

impl TopicName {
    pub(crate) fn intern(name: &str) -> &'static TopicName {
        // Not part of any lock-free protocol: taken only when a topic is
        // created, so a std mutex (also under loom) is fine.
        static TABLE: OnceLock<Mutex<HashMap<&'static str, &'static TopicName>>> = OnceLock::new();
        let mut table = TABLE
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(found) = table.get(name) {
            return found;
        }
        let text: &'static str = Box::leak(name.into());
        let leaked: &'static TopicName = Box::leak(Box::new(TopicName(text)));
        table.insert(text, leaked);
        leaked
    }

    pub(crate) fn as_str(&self) -> &'static str {
        self.0
    }
}

/// Why a topic name is refused, if it is. (A dead-letter topic's name, the
/// topic's own plus `.dead_letters`, may be longer: see
/// `Hub::open_dead_letters`.)
pub(crate) fn invalid_topic_name(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("it is empty; give the topic a name such as \"orders.created\"")
    } else {
        invalid_name_part(name)
    }
}

/// Why a non-empty topic or group name is refused, if it is: the rules of
/// NATS subject tokens, which both become in bridges.
pub(crate) fn invalid_name_part(name: &str) -> Option<&'static str> {
    if name.len() > 255 {
        Some("it is longer than 255 bytes")
    } else if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("it contains whitespace or control characters")
    } else if name.contains(['*', '>']) {
        Some("'*' and '>' are reserved for subscription wildcards")
    } else if name.split('.').any(str::is_empty) {
        Some("it has an empty dot-separated part (a leading, trailing or doubled '.')")
    } else {
        None
    }
}
