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
///
/// # Examples
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let engine = pinbus::Engine::builder().workers(1).build()?;
/// let jobs = engine.topic::<u32>("jobs")?;
/// let quiet = jobs.subscribe(|_| ())?; // `()`: always a success
/// let checked = jobs.subscribe(|n| if **n > 0 { Ok(()) } else { Err(format!("bad job {}", **n)) })?;
/// jobs.publish_batch([0, 1])?;
/// engine.shutdown();
/// assert_eq!((quiet.stats().failed, checked.stats().failed), (0, 1));
/// # Ok(()) }
/// ```
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

mod sealed_reply {
    pub trait Sealed<R> {}
    impl<R> Sealed<R> for R {}
    impl<R, E: std::fmt::Display> Sealed<R> for Result<R, E> {}
}

/// What a [`Service`](crate::Service) handler may return: the reply `R`
/// itself, or `Result<R, E>` with `E: Display` (an `Err` answers the call
/// with [`CallError::Failed`](crate::CallError::Failed) and its text).
///
/// # Examples
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let engine = pinbus::Engine::builder().workers(1).build()?;
/// let halve = engine.service::<u32, u32>("halve")?;
/// halve.serve(|n| if **n % 2 == 0 { Ok(**n / 2) } else { Err(format!("{} is odd", **n)) })?;
/// assert_eq!(halve.call(8)?, 4);
/// assert!(halve.call(3).unwrap_err().to_string().contains("3 is odd"));
/// # Ok(()) }
/// ```
pub trait ReplyOutcome<R>: sealed_reply::Sealed<R> {
    /// The reply, or the error's text.
    fn into_reply(self) -> Result<R, String>;
}

impl<R> ReplyOutcome<R> for R {
    #[inline(always)]
    fn into_reply(self) -> Result<R, String> {
        Ok(self)
    }
}

impl<R, E: fmt::Display> ReplyOutcome<R> for Result<R, E> {
    #[inline(always)]
    fn into_reply(self) -> Result<R, String> {
        self.map_err(|e| e.to_string())
    }
}
