//! Command-line flags the NATS examples share (`--url`, `--count`,
//! `--codec`, `--json`), parsed with each example's own flags, and the
//! `Order` event the producer and consumer exchange.
#![allow(dead_code)] // each example uses part of it

use serde::{Deserialize, Serialize};

/// The event both NATS examples share (in any language: it is plain JSON).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Order {
    pub id: u64,
    pub cents: u64,
    pub customer: String,
}

/// The flags every NATS example takes.
pub struct Common {
    pub url: String,
    pub count: u64,
    /// `--codec binary` (default JSON).
    pub binary: bool,
    /// `--json`: one JSON line of results instead of prose.
    pub json: bool,
}

/// The value that follows a flag.
pub type Value<'a> = &'a mut dyn FnMut() -> Result<String, String>;

/// Parses the process's arguments: the common flags (with `count` as the
/// default count), and every other flag through `own(flag, value)`, which
/// returns `Ok(false)` for a flag it does not know.
pub fn parse(
    count: u64,
    mut own: impl FnMut(&str, Value<'_>) -> Result<bool, String>,
) -> Result<Common, String> {
    let mut a = Common {
        url: "nats://127.0.0.1:4222".into(),
        count,
        binary: false,
        json: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => a.url = value()?,
            "--count" => a.count = number(&flag, value()?)?,
            "--codec" => a.binary = value()? == "binary",
            "--json" => a.json = true,
            other => {
                if !own(other, &mut value)? {
                    return Err(format!("unknown argument {other}; see the example's docs"));
                }
            }
        }
    }
    Ok(a)
}

/// `text` as a number, or an error naming `flag`.
pub fn number<N: std::str::FromStr>(flag: &str, text: String) -> Result<N, String>
where
    N::Err: std::fmt::Display,
{
    text.parse().map_err(|e| format!("{flag}: {e}"))
}
