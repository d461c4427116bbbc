//! Hooks for the loom models of `loom-tests/` (only under `--cfg loom`).

use crate::event::receipt::{self, Receipt};

/// A receipt expecting `lanes` lane shares, and the shares: dropping one
/// counts that lane done (as a worker does after its handlers ran).
pub fn receipt_with_shares(lanes: usize) -> (Receipt, Vec<Box<dyn Send>>) {
    let r = receipt::tracked(0, false, lanes);
    let shares = (0..lanes)
        .map(|_| Box::new(r.share()) as Box<dyn Send>)
        .collect();
    (r, shares)
}
