//! NATS subjects: validation and wildcard matching, as bridge errors.
//!
//! The rules and the matcher are [`event::subject`](crate::event::subject)'s,
//! shared with pattern subscriptions so the two never disagree: a subject is
//! dot-separated tokens (`orders.created`); in a filter or a stream's subject
//! list, `*` matches exactly one token and a final `>` one or more. pinbus
//! topic names follow the same token rules without wildcards, so a topic
//! name is always a valid subject.

use super::error::BridgeError;
use crate::event::subject::{self, Problem};

/// Checks `subject` as a publish subject (no wildcards) or, with
/// `wildcards`, as a filter.
pub(crate) fn validate(subject: &str, wildcards: bool) -> Result<(), BridgeError> {
    subject::check(subject, wildcards).map_err(|problem| BridgeError::InvalidSubject {
        subject: subject.to_owned(),
        reason: match problem {
            Problem::Wildcard => {
                "an export publishes to one concrete subject; wildcards ('*', '>') \
                 belong in import filters and stream subjects"
            }
            other => other.reason(),
        },
    })
}

/// A service link's subject: one concrete subject, like an export's.
pub(crate) fn validate_service(subject: &str) -> Result<(), BridgeError> {
    subject::check(subject, false).map_err(|problem| BridgeError::InvalidSubject {
        subject: subject.to_owned(),
        reason: match problem {
            Problem::Wildcard => {
                "a service is called and answered on one concrete subject; wildcards ('*', \
                 '>') belong in import filters and stream subjects"
            }
            other => other.reason(),
        },
    })
}

/// Whether every subject that `filter` matches is also matched by `pattern`
/// (both may hold wildcards; a literal subject is a filter matching itself).
pub(crate) fn covers(pattern: &str, filter: &str) -> bool {
    subject::covers(pattern, filter)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::subject::cases::{INVALID_PATTERNS, MATCH_CASES};

    #[test]
    fn wildcard_semantics() {
        // The table pattern subscriptions are tested against, too.
        for &(filter, subject, expected) in MATCH_CASES {
            assert!(validate(filter, true).is_ok(), "{filter}");
            assert!(validate(subject, false).is_ok(), "{subject}");
            assert_eq!(covers(filter, subject), expected, "{filter} vs {subject}");
        }
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
        for &(pattern, words) in INVALID_PATTERNS {
            assert!(msg(pattern, true).contains(words), "{pattern}");
        }
        assert!(msg("orders.>", false).contains("wildcards"));
        assert!(msg("orders..x", true).contains("empty token"));
        assert!(msg("a.>.b", true).contains("last token"));
        assert!(msg("ord*rs", true).contains("whole tokens"));
        assert!(msg("a b", true).contains("whitespace"));
        assert!(msg("", true).contains("empty"));
    }
}
