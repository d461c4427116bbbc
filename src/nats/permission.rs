//! Permission errors the server sends, which fail a set-up step at once.

use std::future::Future;

use tokio::sync::broadcast;

use super::error::BridgeError;

/// The next "Permissions Violation" the server sends (about `subject`, if
/// given).
pub(crate) async fn permission_violation(
    errs: &mut broadcast::Receiver<String>,
    subject: Option<&str>,
) -> String {
    loop {
        match errs.recv().await {
            Ok(msg) => {
                let lower = msg.to_lowercase();
                let about = subject.is_none_or(|s| msg.contains(&format!("\"{s}\"")));
                if lower.contains("permissions violation") && about {
                    return msg;
                }
            }
            Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
        }
    }
}

/// Runs a set-up step; a permission error from the server meanwhile fails
/// it at once with [`BridgeError::Permission`] (instead of a timeout).
pub(crate) async fn guarded<T>(
    errors: &broadcast::Sender<String>,
    step: impl Future<Output = Result<T, BridgeError>>,
) -> Result<T, BridgeError> {
    let mut errs = errors.subscribe();
    tokio::select! {
        r = step => r,
        msg = permission_violation(&mut errs, None) => {
            let operation = if msg.to_lowercase().contains("subscription") {
                "subscribe to"
            } else {
                "publish to"
            };
            let subject = msg.split('"').nth(1).unwrap_or_default().to_owned();
            Err(BridgeError::Permission { operation, subject, reason: msg })
        }
    }
}
