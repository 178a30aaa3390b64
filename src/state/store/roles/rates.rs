//! Rate counters for quotas: how many times a key (a list, a sender, a client address, each
//! with its time window in the key) was counted, kept until the window is over.

use crate::state::store::StoreError;

/// A backend's rate counters (see [`crate::state::store::Store::count_rates`] for the
/// contract).
pub(crate) trait Rates {
    /// Adds one to each key's count and returns the counts after, in order; a key seen for the
    /// first time starts at one and is forgotten after its expiry (Unix seconds).
    async fn count_rates(&self, keys: &[(String, u64)]) -> Result<Vec<u64>, StoreError>;
    /// Forgets, at most `batch` at a time, the counters that expired before `now`.
    async fn forget_rates(&self, now: u64, batch: usize) -> Result<(usize, bool), StoreError>;
}
