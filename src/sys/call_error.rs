//! [`CallError`]: why a service call got no reply.

use std::fmt;

/// Why a [`Service`](crate::Service) call got no reply. Where the query was
/// never handled, it comes back in the error ([`CallError::into_query`]).
///
/// # Examples
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use pinbus::{CallError, Engine};
/// let engine = Engine::builder().workers(1).build()?;
/// let echo = engine.service::<u32, u32>("echo")?;
/// match echo.call(7) {
///     Err(CallError::NoServer(query)) => assert_eq!(query, 7), // handed back
///     other => panic!("no member serves yet: {other:?}"),
/// }
/// # Ok(()) }
/// ```
#[non_exhaustive]
pub enum CallError<Q> {
    /// The service has no member (none serves it, or the last one left
    /// before handling the request); the query comes back.
    NoServer(Q),
    /// The handler failed: its error's text, or its panic message.
    Failed(String),
    /// No reply came within the timeout; a late reply is discarded.
    Timeout,
    /// The engine is shutting down or shut down.
    Closed,
    /// A blocking call from a handler on this engine's workers, which could
    /// wait for its own worker; the query comes back.
    WouldDeadlock(Q),
}

impl<Q> CallError<Q> {
    /// The query, if it was never handled (`NoServer`, `WouldDeadlock`).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let engine = pinbus::Engine::builder().workers(1).build()?;
    /// let echo = engine.service::<String, String>("echo")?;
    /// let back = echo.call("hi".to_owned()).unwrap_err().into_query();
    /// assert_eq!(back.as_deref(), Some("hi"));
    /// # Ok(()) }
    /// ```
    pub fn into_query(self) -> Option<Q> {
        match self {
            CallError::NoServer(q) | CallError::WouldDeadlock(q) => Some(q),
            _ => None,
        }
    }
}

impl<Q> fmt::Debug for CallError<Q> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::NoServer(_) => f.write_str("NoServer(..)"),
            CallError::Failed(message) => f.debug_tuple("Failed").field(message).finish(),
            CallError::Timeout => f.write_str("Timeout"),
            CallError::Closed => f.write_str("Closed"),
            CallError::WouldDeadlock(_) => f.write_str("WouldDeadlock(..)"),
        }
    }
}

impl<Q> fmt::Display for CallError<Q> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::NoServer(_) => f.write_str(
                "no member serves this service (the query is returned in the error); \
                 call Service::serve first, or retry once a member has joined",
            ),
            CallError::Failed(message) => write!(f, "the service's handler failed: {message}"),
            CallError::Timeout => f.write_str(
                "no reply came within the timeout (a late reply is discarded); the members \
                 are busy or slow: serve more members, or wait longer",
            ),
            CallError::Closed => {
                f.write_str("the engine is shut down, so the service cannot answer calls")
            }
            CallError::WouldDeadlock(_) => f.write_str(
                "a blocking call was made from a handler on this engine's worker, which could \
                 wait forever for itself (the query is returned in the error); use call_async \
                 from async code, or call from a thread of your own",
            ),
        }
    }
}

impl<Q> std::error::Error for CallError<Q> {}
