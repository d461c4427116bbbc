//! NATS subjects: validation and wildcard matching.
//!
//! A subject is dot-separated tokens (`orders.created`). In a filter or a
//! stream's subject list, the token `*` matches exactly one token and a final
//! `>` matches one or more (`orders.>` matches `orders.created` and
//! `orders.eu.created`, not `orders`). pinbus topic names follow the same
//! token rules without wildcards, so a topic name is always a valid subject.

use super::error::BridgeError;

/// Checks `subject` as a publish subject (no wildcards) or, with
/// `wildcards`, as a filter.
pub(crate) fn validate(subject: &str, wildcards: bool) -> Result<(), BridgeError> {
    let bad = |reason| {
        Err(BridgeError::InvalidSubject {
            subject: subject.to_owned(),
            reason,
        })
    };
    if subject.is_empty() {
        return bad("it is empty; give dot-separated tokens such as \"orders.created\"");
    }
    if subject.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("it contains whitespace or control characters; remove them");
    }
    let tokens: Vec<&str> = subject.split('.').collect();
    for (i, token) in tokens.iter().enumerate() {
        if token.is_empty() {
            return bad("it has an empty token (a leading, trailing or doubled '.')");
        }
        let wild = *token == "*" || *token == ">";
        if !wild && (token.contains('*') || token.contains('>')) {
            return bad("'*' and '>' are wildcards only as whole tokens (\"orders.*\")");
        }
        if wild && !wildcards {
            return bad(
                "an export publishes to one concrete subject; wildcards ('*', '>') \
                 belong in import filters and stream subjects",
            );
        }
        if *token == ">" && i + 1 != tokens.len() {
            return bad("'>' must be the last token (\"orders.>\")");
        }
    }
    Ok(())
}

/// Whether every subject that `filter` matches is also matched by `pattern`
/// (both may hold wildcards; a literal subject is a filter matching itself).
pub(crate) fn covers(pattern: &str, filter: &str) -> bool {
    let mut p = pattern.split('.');
    let mut f = filter.split('.');
    loop {
        match (p.next(), f.next()) {
            (None, None) => return true,
            (Some(">"), Some(_)) => return true,
            (Some(_), Some(">")) => return false,
            (Some("*"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            _ => return false,
        }
    }
}

/// Whether the literal `subject` is matched by `filter`.
#[cfg(test)]
fn matches(filter: &str, subject: &str) -> bool {
    covers(filter, subject)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_semantics() {
        assert!(matches("orders.>", "orders.created"));
        assert!(matches("orders.>", "orders.eu.created"));
        assert!(!matches("orders.>", "orders"));
        assert!(matches("orders.*", "orders.created"));
        assert!(!matches("orders.*", "orders.eu.created"));
        assert!(matches("*.created", "orders.created"));
        assert!(!matches("orders.created", "orders.updated"));
        assert!(covers("orders.>", "orders.*"));
        assert!(covers("orders.>", "orders.*.x.>"));
        assert!(!covers("orders.*", "orders.>"));
        assert!(covers("*.*", "orders.*"));
        assert!(!covers("orders.created", "orders.*"));
        assert!(covers(">", "a.b.c"));
    }

    #[test]
    fn validation_says_what_is_wrong() {
        assert!(validate("orders.created", false).is_ok());
        assert!(validate("orders.>", true).is_ok());
        let msg = |s, w| validate(s, w).unwrap_err().to_string();
        assert!(msg("orders.>", false).contains("wildcards"));
        assert!(msg("orders..x", true).contains("empty token"));
        assert!(msg("a.>.b", true).contains("last token"));
        assert!(msg("ord*rs", true).contains("whole tokens"));
        assert!(msg("a b", true).contains("whitespace"));
        assert!(msg("", true).contains("empty"));
    }
}
