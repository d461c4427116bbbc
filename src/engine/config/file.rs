//! The TOML form of [`Config`]: parsed into private serde structs, then
//! converted key by key so each error names its key and its line.
//!
//! Three passes, each owning one kind of error:
//!
//! 1. `toml::Table`: syntax ([`ConfigError::TomlSyntax`]);
//! 2. the serde structs below, with `deny_unknown_fields`: unknown keys and
//!    misplaced tables ([`ConfigError::UnknownKey`],
//!    [`ConfigError::WrongType`]); the table from pass 1 turns serde's bare
//!    field name into the key's full path;
//! 3. the conversion of each leaf, kept as a spanned `toml::Value` so its
//!    line is known: wrong types and unknown names
//!    ([`ConfigError::WrongType`], [`ConfigError::UnknownIdleStrategy`], …).
//!
//! Range and machine checks (power-of-two capacity, cores) are left to
//! [`Config::validate`], shared with configs built in code.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use toml::{Spanned, Table, Value};

use super::Config;
use crate::runtime::idle::IdleStrategy;
use crate::sys::error::ConfigError;
use crate::sys::pinning::Pinning;
use crate::sys::shown::{shown, Quote};
use crate::time::timer::TimerShutdown;
use crate::topic::options::{Backpressure, TopicOptions};

/// Keys of the top-level table, in the order of `pinbus.toml`.
const TOP_KEYS: &[&str] = &[
    "workers",
    "pinning",
    "producer_cores",
    "idle",
    "idle_tuning",
    "lane_capacity",
    "drain_batch",
    "producer_slots",
    "worker_stack_size",
    "timer_tick_us",
    "timer_shutdown",
    "topics",
];
/// Keys of `[idle_tuning]`.
const TUNING_KEYS: &[&str] = &["spins", "yields", "max_sleep_us"];
/// Keys of each `[topics."name"]`.
const TOPIC_KEYS: &[&str] = &["worker", "backpressure", "timestamps"];

/// A leaf value with its place in the text.
type Leaf = Option<Spanned<Value>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    workers: Leaf,
    pinning: Leaf,
    producer_cores: Leaf,
    idle: Leaf,
    idle_tuning: Option<RawIdleTuning>,
    lane_capacity: Leaf,
    drain_batch: Leaf,
    producer_slots: Leaf,
    worker_stack_size: Leaf,
    timer_tick_us: Leaf,
    timer_shutdown: Leaf,
    topics: Option<BTreeMap<String, RawTopic>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIdleTuning {
    spins: Leaf,
    yields: Leaf,
    max_sleep_us: Leaf,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTopic {
    worker: Leaf,
    backpressure: Leaf,
    timestamps: Leaf,
}

/// Parses `text` into a [`Config`] (not yet validated).
pub(super) fn parse(text: &str) -> Result<Config, ConfigError> {
    let table: Table = text.parse().map_err(|e: toml::de::Error| {
        let (line, column) = line_column(text, e.span().map_or(0, |s| s.start));
        ConfigError::TomlSyntax {
            line,
            column,
            message: e.message().trim().replace('\n', ": "),
        }
    })?;
    let raw: RawConfig = toml::from_str(text).map_err(|e| structure_error(text, &table, &e))?;
    Convert { text }.config(raw)
}

/// Turns a serde error on text that is valid TOML into an unknown key or a
/// misplaced table.
fn structure_error(text: &str, table: &Table, e: &toml::de::Error) -> ConfigError {
    let (line, column) = line_column(text, e.span().map_or(0, |s| s.start));
    let message = e.message();
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let key = rest.split('`').next().unwrap_or_default();
        let (key, expected) = locate_unknown(table, key);
        return ConfigError::UnknownKey {
            key,
            line,
            column,
            expected: one_of(expected),
        };
    }
    if let Some((key, value)) = misplaced_table(table) {
        return ConfigError::WrongType {
            key,
            line,
            column,
            found: describe(value),
            expected: "a table",
        };
    }
    // Not reached for the structs above (every leaf is a `Value`); kept so an
    // unforeseen serde error still reads as an error, not a panic.
    ConfigError::TomlSyntax {
        line,
        column,
        message: message.trim().replace('\n', ": "),
    }
}

/// The full path of the unknown key `key` and the keys valid beside it.
fn locate_unknown(table: &Table, key: &str) -> (String, &'static [&'static str]) {
    if table.contains_key(key) && !TOP_KEYS.contains(&key) {
        return (key.to_owned(), TOP_KEYS);
    }
    if let Some(Value::Table(t)) = table.get("idle_tuning") {
        if t.contains_key(key) && !TUNING_KEYS.contains(&key) {
            return (format!("idle_tuning.{key}"), TUNING_KEYS);
        }
    }
    if let Some(Value::Table(topics)) = table.get("topics") {
        for (name, topic) in topics {
            if let Value::Table(t) = topic {
                if t.contains_key(key) && !TOPIC_KEYS.contains(&key) {
                    return (format!("topics.{name:?}.{key}"), TOPIC_KEYS);
                }
            }
        }
    }
    (key.to_owned(), TOP_KEYS)
}

/// The first key that must hold a table but holds something else.
fn misplaced_table(table: &Table) -> Option<(String, &Value)> {
    match table.get("idle_tuning") {
        Some(Value::Table(_)) | None => {}
        Some(v) => return Some(("idle_tuning".to_owned(), v)),
    }
    match table.get("topics") {
        Some(Value::Table(topics)) => topics
            .iter()
            .find(|(_, v)| !v.is_table())
            .map(|(name, v)| (format!("topics.{name:?}"), v)),
        None => None,
        Some(v) => Some(("topics".to_owned(), v)),
    }
}

/// "one of `a`, `b` or `c`".
fn one_of(keys: &[&str]) -> String {
    let quoted: Vec<String> = keys.iter().map(|k| format!("`{k}`")).collect();
    match quoted.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("one of {} or {last}", rest.join(", ")),
        None => "no keys here".to_owned(),
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub(super) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// How a value reads in an error message.
fn describe(value: &Value) -> String {
    match value {
        Value::String(s) => format!("the string {}", shown(s, Quote::Debug)),
        Value::Integer(i) => format!("the integer {i}"),
        Value::Float(f) => format!("the number {f}"),
        Value::Boolean(b) => format!("the boolean {b}"),
        Value::Datetime(d) => format!("the date-time {d}"),
        Value::Array(_) => "an array".to_owned(),
        Value::Table(_) => "a table".to_owned(),
    }
}

/// Pass 3: leaf by leaf, with the text for line numbers.
struct Convert<'a> {
    text: &'a str,
}

impl Convert<'_> {
    fn config(&self, raw: RawConfig) -> Result<Config, ConfigError> {
        let mut c = Config::default();
        if let Some(v) = raw.workers {
            c.workers = self.count(&v, "workers")?;
        }
        if let Some(v) = raw.pinning {
            c.pinning = self.pinning(&v)?;
        }
        if let Some(v) = raw.producer_cores {
            c.producer_cores = self.cores(&v, "producer_cores")?;
        }
        if let Some(v) = raw.idle {
            c.idle = self.idle(&v)?;
        }
        if let Some(t) = raw.idle_tuning {
            if let Some(v) = t.spins {
                c.idle_tuning.spins = self.u32(&v, "idle_tuning.spins")?;
            }
            if let Some(v) = t.yields {
                c.idle_tuning.yields = self.u32(&v, "idle_tuning.yields")?;
            }
            if let Some(v) = t.max_sleep_us {
                let us = self.int(&v, "idle_tuning.max_sleep_us", NON_NEGATIVE)?;
                c.idle_tuning.max_sleep = Duration::from_micros(us);
            }
        }
        if let Some(v) = raw.lane_capacity {
            c.lane_capacity = self.count(&v, "lane_capacity")?;
        }
        if let Some(v) = raw.drain_batch {
            c.drain_batch = self.count(&v, "drain_batch")?;
        }
        if let Some(v) = raw.producer_slots {
            c.producer_slots = self.count(&v, "producer_slots")?;
        }
        if let Some(v) = raw.worker_stack_size {
            c.worker_stack_size = Some(self.count(&v, "worker_stack_size")?);
        }
        if let Some(v) = raw.timer_tick_us {
            // Any whole number of µs is a Duration; the range (1 µs to 1 s)
            // is checked by `Config::validate`, as for builder-made configs.
            let us = self.int(&v, "timer_tick_us", MICROSECONDS)?;
            c.timer_tick = Duration::from_micros(us);
        }
        if let Some(v) = raw.timer_shutdown {
            c.timer_shutdown = self.timer_shutdown(&v)?;
        }
        for (name, t) in raw.topics.unwrap_or_default() {
            let key = |field: &str| format!("topics.{name:?}.{field}");
            let mut options = TopicOptions::default();
            if let Some(v) = t.worker {
                options = options.worker(self.count(&v, &key("worker"))?);
            }
            if let Some(v) = t.backpressure {
                options = options.backpressure(self.backpressure(&v, &name)?);
            }
            if let Some(v) = t.timestamps {
                match v.get_ref() {
                    Value::Boolean(on) => options = options.timestamps(*on),
                    other => {
                        return Err(self.wrong(&v, &key("timestamps"), other, "true or false"))
                    }
                }
            }
            c.topics.insert(name, options);
        }
        Ok(c)
    }

    fn at(&self, v: &Spanned<Value>) -> (usize, usize) {
        line_column(self.text, v.span().start)
    }

    fn wrong(
        &self,
        v: &Spanned<Value>,
        key: &str,
        found: &Value,
        expected: &'static str,
    ) -> ConfigError {
        let (line, column) = self.at(v);
        ConfigError::WrongType {
            key: key.to_owned(),
            line,
            column,
            found: describe(found),
            expected,
        }
    }

    /// A non-negative integer that fits `u64`.
    fn int(
        &self,
        v: &Spanned<Value>,
        key: &str,
        expected: &'static str,
    ) -> Result<u64, ConfigError> {
        match v.get_ref() {
            Value::Integer(i) => {
                u64::try_from(*i).map_err(|_| self.wrong(v, key, v.get_ref(), expected))
            }
            other => Err(self.wrong(v, key, other, expected)),
        }
    }

    /// A count or size (`usize`).
    fn count(&self, v: &Spanned<Value>, key: &str) -> Result<usize, ConfigError> {
        let n = self.int(v, key, NON_NEGATIVE)?;
        usize::try_from(n).map_err(|_| self.wrong(v, key, v.get_ref(), NON_NEGATIVE))
    }

    fn u32(&self, v: &Spanned<Value>, key: &str) -> Result<u32, ConfigError> {
        const EXPECTED: &str = "a whole number from 0 to 4294967295";
        let n = self.int(v, key, EXPECTED)?;
        u32::try_from(n).map_err(|_| self.wrong(v, key, v.get_ref(), EXPECTED))
    }

    fn cores(&self, v: &Spanned<Value>, key: &str) -> Result<Vec<usize>, ConfigError> {
        const EXPECTED: &str = "a list of core ids such as [0, 1]";
        let Value::Array(items) = v.get_ref() else {
            return Err(self.wrong(v, key, v.get_ref(), EXPECTED));
        };
        let mut cores = Vec::with_capacity(items.len());
        for item in items {
            let core = match item {
                Value::Integer(i) => usize::try_from(*i).ok(),
                _ => None,
            };
            let Some(core) = core else {
                let (line, column) = self.at(v);
                return Err(ConfigError::WrongType {
                    key: key.to_owned(),
                    line,
                    column,
                    found: format!("an array holding {}", describe(item)),
                    expected: EXPECTED,
                });
            };
            cores.push(core);
        }
        Ok(cores)
    }

    fn pinning(&self, v: &Spanned<Value>) -> Result<Pinning, ConfigError> {
        match v.get_ref() {
            Value::String(s) if s == "none" => Ok(Pinning::None),
            Value::String(s) if s == "auto" => Ok(Pinning::Auto),
            Value::String(s) => {
                let (line, column) = self.at(v);
                Err(ConfigError::UnknownPinning {
                    name: s.clone(),
                    line,
                    column,
                })
            }
            Value::Array(_) => Ok(Pinning::Cores(self.cores(v, "pinning")?)),
            other => Err(self.wrong(
                v,
                "pinning",
                other,
                "\"none\", \"auto\" or a list of core ids such as [2, 3]",
            )),
        }
    }

    fn idle(&self, v: &Spanned<Value>) -> Result<IdleStrategy, ConfigError> {
        let Value::String(s) = v.get_ref() else {
            return Err(self.wrong(
                v,
                "idle",
                v.get_ref(),
                "one of \"busy-spin\", \"yield\", \"backoff\" or \"park\"",
            ));
        };
        match s.as_str() {
            "busy-spin" => Ok(IdleStrategy::BusySpin),
            "yield" => Ok(IdleStrategy::Yield),
            "backoff" => Ok(IdleStrategy::Backoff),
            "park" => Ok(IdleStrategy::Park),
            _ => {
                let (line, column) = self.at(v);
                Err(ConfigError::UnknownIdleStrategy {
                    name: s.clone(),
                    line,
                    column,
                })
            }
        }
    }

    fn timer_shutdown(&self, v: &Spanned<Value>) -> Result<TimerShutdown, ConfigError> {
        let Value::String(s) = v.get_ref() else {
            return Err(self.wrong(
                v,
                "timer_shutdown",
                v.get_ref(),
                "one of \"fire-all-now\", \"fire-due\" or \"drop\"",
            ));
        };
        match s.as_str() {
            "fire-all-now" => Ok(TimerShutdown::FireAllNow),
            "fire-due" => Ok(TimerShutdown::FireDue),
            "drop" => Ok(TimerShutdown::Drop),
            _ => {
                let (line, column) = self.at(v);
                Err(ConfigError::UnknownTimerShutdown {
                    name: s.clone(),
                    line,
                    column,
                })
            }
        }
    }

    fn backpressure(&self, v: &Spanned<Value>, topic: &str) -> Result<Backpressure, ConfigError> {
        let Value::String(s) = v.get_ref() else {
            let key = format!("topics.{topic:?}.backpressure");
            return Err(self.wrong(v, &key, v.get_ref(), "\"block\" or \"fail\""));
        };
        match s.as_str() {
            "block" => Ok(Backpressure::Block),
            "fail" => Ok(Backpressure::Fail),
            _ => {
                let (line, column) = self.at(v);
                Err(ConfigError::UnknownBackpressure {
                    topic: topic.to_owned(),
                    name: s.clone(),
                    line,
                    column,
                })
            }
        }
    }
}

/// What a count or size must be.
const NON_NEGATIVE: &str = "a whole number of 0 or more";
/// What `timer_tick_us` must be.
const MICROSECONDS: &str =
    "a whole number of microseconds from 1 to 1000000 (1 µs to 1 s; the default is 1000)";

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_from_one_in_characters() {
        let text = "a = 1\nbé = 2\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 6), (2, 1));
        // After "bé " (4 bytes, 3 characters).
        assert_eq!(line_column(text, 10), (2, 4));
        assert_eq!(line_column(text, 999), (3, 1));
    }

    #[test]
    fn one_of_reads_as_a_phrase() {
        assert_eq!(one_of(&["a"]), "`a`");
        assert_eq!(one_of(&["a", "b", "c"]), "one of `a`, `b` or `c`");
    }

    #[test]
    fn every_key_is_listed() {
        // The key lists in error messages match what the serde structs accept.
        let mut text = String::new();
        for k in TOP_KEYS {
            let v = match *k {
                "idle_tuning" | "topics" => continue,
                "pinning" => "\"none\"",
                "idle" => "\"park\"",
                "timer_shutdown" => "\"drop\"",
                "producer_cores" => "[]",
                _ => "1",
            };
            text.push_str(&format!("{k} = {v}\n"));
        }
        text.push_str("[idle_tuning]\n");
        for k in TUNING_KEYS {
            text.push_str(&format!("{k} = 1\n"));
        }
        text.push_str("[topics.t]\nworker = 0\nbackpressure = \"fail\"\ntimestamps = true\n");
        assert_eq!(TOPIC_KEYS.len(), 3);
        parse(&text).unwrap();
    }

    #[test]
    fn missing_keys_keep_their_defaults() {
        assert_eq!(parse("").unwrap(), Config::default());
        let c = parse("[idle_tuning]\nyields = 3\n").unwrap();
        assert_eq!(c.idle_tuning.yields, 3);
        assert_eq!(c.idle_tuning.spins, Config::default().idle_tuning.spins);
    }

    #[test]
    fn unknown_keys_get_their_full_path() {
        let e = parse("[topics.\"a.b\"]\nworkr = 1\n").unwrap_err();
        assert!(
            matches!(&e, ConfigError::UnknownKey { key, line: 2, column: 1, .. }
                if key == "topics.\"a.b\".workr"),
            "{e:?}"
        );
        let e = parse("[idle_tuning]\nspinz = 1\n").unwrap_err();
        assert!(e.to_string().contains("`idle_tuning.spinz`"), "{e}");
        assert!(
            e.to_string()
                .contains("`spins`, `yields` or `max_sleep_us`"),
            "{e}"
        );
    }

    #[test]
    fn misplaced_tables_are_wrong_types() {
        for (text, key) in [
            ("idle_tuning = 3\n", "idle_tuning"),
            ("topics = 3\n", "topics"),
            ("topics.t = 3\n", "topics.\"t\""),
        ] {
            let e = parse(text).unwrap_err();
            assert!(
                matches!(&e, ConfigError::WrongType { key: k, expected: "a table", .. } if k == key),
                "{text}: {e:?}"
            );
        }
    }

    #[test]
    fn out_of_range_numbers_are_wrong_types() {
        let e = parse("[idle_tuning]\nspins = 5000000000\n").unwrap_err();
        assert!(
            matches!(&e, ConfigError::WrongType { key, .. } if key == "idle_tuning.spins"),
            "{e:?}"
        );
        let e = parse("producer_cores = [0, -1]\n").unwrap_err();
        assert!(e.to_string().contains("the integer -1"), "{e}");
    }
}
