//! User-given names as error messages show them: a long name is cut to
//! its first [`SHOWN_NAME_BYTES`] bytes and followed by its length, so a
//! 10 KB name does not flood a log.

use std::fmt;

/// The most bytes of a user-given name that an error message shows.
pub(crate) const SHOWN_NAME_BYTES: usize = 64;

/// How [`shown`] quotes a name.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Quote {
    /// As `{:?}` does: `"orders"`, with escapes.
    Debug,
    /// In single quotes: `'orders'`.
    Single,
    /// In backticks: `` `orders` `` (config keys).
    Backtick,
}

/// A user-given name as an error message shows it: whole and quoted when it
/// is at most [`SHOWN_NAME_BYTES`] long; otherwise its first bytes up to a
/// char boundary, `…` inside the quotes, and its full length after them:
/// `"aaaa…" (10240 bytes)`.
pub(crate) fn shown(name: &str, quote: Quote) -> Shown<'_> {
    Shown { name, quote }
}

/// The [`Display`](fmt::Display) of [`shown`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Shown<'a> {
    name: &'a str,
    quote: Quote,
}

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.name;
        let mut end = name.len().min(SHOWN_NAME_BYTES);
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        let (head, cut) = (&name[..end], end < name.len());
        let ellipsis = if cut { "…" } else { "" };
        match self.quote {
            Quote::Debug if cut => write!(f, "\"{}…\"", head.escape_debug())?,
            Quote::Debug => write!(f, "{head:?}")?,
            Quote::Single => write!(f, "'{head}{ellipsis}'")?,
            Quote::Backtick => write!(f, "`{head}{ellipsis}`")?,
        }
        if cut {
            write!(f, " ({} bytes)", name.len())?;
        }
        Ok(())
    }
}

/// A message from another parser with each `` `quoted` `` part passed
/// through [`shown`]: the TOML parser quotes keys whole ("duplicate key
/// `…`").
pub(crate) fn shown_quotes(message: &str) -> ShownQuotes<'_> {
    ShownQuotes(message)
}

/// The [`Display`](fmt::Display) of [`shown_quotes`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct ShownQuotes<'a>(&'a str);

impl fmt::Display for ShownQuotes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        // Text outside quotes is written as is, a quoted part through
        // `shown`; an unmatched backtick and what follows it as is.
        while let Some(open) = rest.find('`') {
            f.write_str(&rest[..open])?;
            let after = &rest[open + 1..];
            let Some(close) = after.find('`') else {
                f.write_str("`")?;
                rest = after;
                break;
            };
            write!(f, "{}", shown(&after[..close], Quote::Backtick))?;
            rest = &after[close + 1..];
        }
        f.write_str(rest)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_shown_whole() {
        assert_eq!(shown("orders", Quote::Debug).to_string(), "\"orders\"");
        assert_eq!(shown("orders", Quote::Single).to_string(), "'orders'");
        assert_eq!(shown("orders", Quote::Backtick).to_string(), "`orders`");
        let exact = "a".repeat(SHOWN_NAME_BYTES);
        assert_eq!(
            shown(&exact, Quote::Single).to_string(),
            format!("'{exact}'")
        );
    }

    #[test]
    fn long_names_are_cut_with_their_length() {
        let long = "a".repeat(10_240);
        let head = "a".repeat(SHOWN_NAME_BYTES);
        assert_eq!(
            shown(&long, Quote::Debug).to_string(),
            format!("\"{head}…\" (10240 bytes)")
        );
        assert_eq!(
            shown(&long, Quote::Single).to_string(),
            format!("'{head}…' (10240 bytes)")
        );
        assert_eq!(
            shown(&long, Quote::Backtick).to_string(),
            format!("`{head}…` (10240 bytes)")
        );
    }

    #[test]
    fn the_cut_falls_on_a_char_boundary() {
        // 'é' is 2 bytes: byte 64 falls inside the 33rd 'é' after one 'x'.
        let name = format!("x{}", "é".repeat(100));
        let s = shown(&name, Quote::Single).to_string();
        assert_eq!(s, format!("'x{}…' (201 bytes)", "é".repeat(31)));
        // Escapes survive the cut.
        let name = format!("\n{}", "b".repeat(100));
        let s = shown(&name, Quote::Debug).to_string();
        assert!(
            s.starts_with("\"\\nbbb") && s.ends_with("…\" (101 bytes)"),
            "{s}"
        );
    }

    #[test]
    fn quoted_parts_of_a_message_are_shortened() {
        let long = "k".repeat(100);
        let m = format!("duplicate key `{long}` near `x`, then `open");
        assert_eq!(
            shown_quotes(&m).to_string(),
            format!(
                "duplicate key `{}…` (100 bytes) near `x`, then `open",
                "k".repeat(64)
            )
        );
        assert_eq!(shown_quotes("expected `}`").to_string(), "expected `}`");
        assert_eq!(shown_quotes("no quotes").to_string(), "no quotes");
    }
}
