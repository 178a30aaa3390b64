//! Working beside others: the wake-up signals every backend has, and the leases only a store
//! shared by several nodes needs (a single node's answers are written once, on
//! [`crate::state::store::Store`]).

use crate::state::store::{Delivery, SpoolId, StoreError};
use std::future::Future;
use std::time::Duration;

/// Signals and left work, which every backend has.
pub(crate) trait Cluster {
    /// Wakes the delivery worker.
    fn nudge(&self);
    /// Resolves when something was queued since the last call.
    fn queued_signal(&self) -> impl Future<Output = ()> + Send;
    /// The unfinished spooled messages nobody works on, now this process's.
    async fn take_unfinished(&self) -> Result<Vec<SpoolId>, StoreError>;
}

/// Claims with leases, for a store several nodes share.
pub(crate) trait Leases {
    /// Claims at most `limit` (and at most the configured batch) of the recipients of post
    /// `id` due at `now` whose address sorts after `after`, in address order, for a lease.
    async fn claim_due(
        &self,
        id: SpoolId,
        now: u64,
        after: &str,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError>;
    /// Hands back this node's claims on `addresses` of post `id` still waiting.
    async fn release_claims(&self, id: SpoolId, addresses: &[String]) -> Result<(), StoreError>;
    /// How often to look for work other nodes left or queued.
    fn poll_every(&self) -> Duration;
    /// Whether this node is the one to do `job` for `period`.
    async fn once(&self, job: &str, period: u64) -> Result<bool, StoreError>;
}
