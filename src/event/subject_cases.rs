// The matcher's edge cases, shared by the unit tests of `event::subject` and
// `nats::subject` and by `tests/patterns.rs` (which `include!`s this file):
// one table, so the NATS bridge and pattern subscriptions can never disagree.

/// `(filter, subject, matches)`: whether the literal `subject` is matched by
/// the wildcard `filter`, with NATS semantics (`*` one token, a final `>`
/// one or more).
pub(crate) const MATCH_CASES: &[(&str, &str, bool)] = &[
    ("orders.>", "orders.created", true),
    ("orders.>", "orders.eu.created", true),
    ("orders.>", "orders", false),
    ("orders.>", "ordersx.created", false),
    ("orders.*", "orders.created", true),
    ("orders.*", "orders.eu.created", false),
    ("orders.*", "orders", false),
    ("*.created", "orders.created", true),
    ("*.created", "orders.eu.created", false),
    ("*", "orders", true),
    ("*", "orders.created", false),
    (">", "orders", true),
    (">", "a.b.c", true),
    ("*.*", "a.b", true),
    ("*.*", "a", false),
    ("a.*.c", "a.b.c", true),
    ("a.*.c", "a.b.d", false),
    ("a.*.>", "a.b.c.d", true),
    ("a.*.>", "a.b", false),
    ("orders.created", "orders.created", true),
    ("orders.created", "orders.updated", false),
    ("orders.created", "orders.created.eu", false),
    ("Orders.*", "orders.created", false),
];

/// `(pattern, words the refusal must contain)`: wildcard filters that are
/// refused, and what the message says is wrong.
pub(crate) const INVALID_PATTERNS: &[(&str, &str)] = &[
    ("", "empty"),
    ("orders..x", "empty token"),
    (".orders", "empty token"),
    ("orders.", "empty token"),
    ("orders.>.x", "last token"),
    (">.x", "last token"),
    ("or*ders", "whole tokens"),
    ("orders.>x", "whole tokens"),
    ("orders created", "whitespace"),
];
