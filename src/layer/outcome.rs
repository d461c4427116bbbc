//! What a handler may return.

use std::fmt;

mod sealed {
    pub trait Sealed {}
    impl Sealed for () {}
    impl<E: std::fmt::Display> Sealed for Result<(), E> {}
}

/// What a handler may return: `()` (always a success) or `Result<(), E>` with
/// `E: Display` (an `Err` counts as a failed delivery).
///
/// A panic in a handler is caught and counts as a failure as well; the worker
/// and every other subscription keep running.
pub trait HandlerOutcome: sealed::Sealed {
    /// `Ok(())`, or the error's text. (A `Box<str>` rather than a `String`:
    /// one pointer pair, returned in registers on every call.)
    fn into_outcome(self) -> Result<(), Box<str>>;
}

impl HandlerOutcome for () {
    #[inline(always)]
    fn into_outcome(self) -> Result<(), Box<str>> {
        Ok(())
    }
}

impl<E: fmt::Display> HandlerOutcome for Result<(), E> {
    #[inline(always)]
    fn into_outcome(self) -> Result<(), Box<str>> {
        self.map_err(|e| e.to_string().into_boxed_str())
    }
}
