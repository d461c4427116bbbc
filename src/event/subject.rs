//! Subjects: dot-separated names and the wildcard filters that match them,
//! with NATS subject semantics. The one matcher of the crate: pattern
//! subscriptions ([`Engine::pattern`](crate::Engine::pattern)) and the NATS
//! bridge's subject checks both call it, so they cannot disagree.
//!
//! A subject is dot-separated tokens (`orders.created`). In a filter, the
//! token `*` matches exactly one token and a final `>` matches one or more
//! (`orders.>` matches `orders.created` and `orders.eu.created`, not
//! `orders`). Wildcards are whole tokens only, and `>` only as the last one.

/// What is wrong with a subject or filter ([`check`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Problem {
    Empty,
    Whitespace,
    EmptyToken,
    /// A `*` or `>` inside a token (`or*ders`).
    PartialWildcard,
    /// A wildcard where none is allowed.
    Wildcard,
    /// A `>` before the last token.
    TailNotLast,
}

impl Problem {
    /// What is wrong, and what to change, for an error message.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Problem::Empty => "it is empty; give dot-separated tokens such as \"orders.created\"",
            Problem::Whitespace => "it contains whitespace or control characters; remove them",
            Problem::EmptyToken => "it has an empty token (a leading, trailing or doubled '.')",
            Problem::PartialWildcard => {
                "'*' and '>' are wildcards only as whole tokens (\"orders.*\")"
            }
            Problem::Wildcard => "it contains a wildcard ('*' or '>') where none is allowed",
            Problem::TailNotLast => "'>' must be the last token (\"orders.>\")",
        }
    }
}

/// Checks `subject` as a literal subject or, with `wildcards`, as a filter.
pub(crate) fn check(subject: &str, wildcards: bool) -> Result<(), Problem> {
    if subject.is_empty() {
        return Err(Problem::Empty);
    }
    if subject.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Problem::Whitespace);
    }
    let mut tokens = subject.split('.').peekable();
    while let Some(token) = tokens.next() {
        if token.is_empty() {
            return Err(Problem::EmptyToken);
        }
        let wild = token == "*" || token == ">";
        if !wild && token.contains(['*', '>']) {
            return Err(Problem::PartialWildcard);
        }
        if wild && !wildcards {
            return Err(Problem::Wildcard);
        }
        if token == ">" && tokens.peek().is_some() {
            return Err(Problem::TailNotLast);
        }
    }
    Ok(())
}

/// Whether every subject that `filter` matches is also matched by `pattern`
/// (both may hold wildcards; a literal subject is a filter matching itself).
/// Both are assumed valid ([`check`]).
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

/// Whether the literal `subject` is matched by the valid filter `filter`.
#[inline]
pub(crate) fn matches(filter: &str, subject: &str) -> bool {
    covers(filter, subject)
}

#[cfg(test)]
#[path = "subject_cases.rs"]
pub(crate) mod cases;

#[cfg(test)]
mod tests {
    use super::cases::{INVALID_PATTERNS, MATCH_CASES};
    use super::*;

    #[test]
    fn the_shared_table_holds() {
        for &(filter, subject, expected) in MATCH_CASES {
            assert_eq!(check(filter, true), Ok(()), "{filter}");
            assert_eq!(check(subject, false), Ok(()), "{subject}");
            assert_eq!(matches(filter, subject), expected, "{filter} vs {subject}");
        }
    }

    #[test]
    fn invalid_patterns_say_what_is_wrong() {
        for &(pattern, words) in INVALID_PATTERNS {
            let problem = check(pattern, true).expect_err(pattern);
            assert!(problem.reason().contains(words), "{pattern}: {problem:?}");
        }
    }

    #[test]
    fn covers_compares_filters() {
        assert!(covers("orders.>", "orders.*"));
        assert!(covers("orders.>", "orders.*.x.>"));
        assert!(!covers("orders.*", "orders.>"));
        assert!(covers("*.*", "orders.*"));
        assert!(!covers("orders.created", "orders.*"));
    }

    #[test]
    fn literals_refuse_wildcards() {
        assert_eq!(check("orders.>", false), Err(Problem::Wildcard));
        assert_eq!(check("orders.created", false), Ok(()));
    }
}
