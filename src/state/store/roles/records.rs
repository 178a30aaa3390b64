//! What is kept beside the mail: distributed Message-IDs, receivers' DMARC reports, the token
//! secret, and the pruning of finished work.

use crate::auth::dmarc_report::AggregateReport;
use crate::state::store::{Pruned, Retention, SpoolId, StoreError};

/// A backend's records (see [`crate::state::store::Store::distributed`] and its neighbours for the
/// contract).
pub(crate) trait Records {
    /// The post of `list` distributed with `message_id` at or after `since`.
    async fn distributed(
        &self,
        list: &str,
        message_id: &str,
        since: u64,
    ) -> Result<Option<SpoolId>, StoreError>;
    /// Forgets, at most `batch` at a time, the Message-IDs recorded before `before`.
    async fn forget_distributed(
        &self,
        before: u64,
        batch: usize,
    ) -> Result<(usize, bool), StoreError>;
    /// Keeps a receiver's DMARC aggregate report; false when kept already.
    async fn put_dmarc_report(&self, report: &AggregateReport) -> Result<bool, StoreError>;
    /// The DMARC aggregate reports whose period began at or after `since`.
    async fn dmarc_reports(&self, since: u64) -> Result<Vec<AggregateReport>, StoreError>;
    /// Forgets, at most `batch` at a time, the reports whose period began before `before`.
    async fn forget_dmarc_reports(
        &self,
        before: u64,
        batch: usize,
    ) -> Result<(usize, bool), StoreError>;
    /// Removes, in one bounded batch, what finished longer ago than `keep` says.
    async fn prune(&self, now: u64, keep: Retention, batch: usize) -> Result<Pruned, StoreError>;
    /// The secret confirmation tokens are made with; created on first use.
    async fn token_secret(&self) -> Result<Vec<u8>, StoreError>;
}
