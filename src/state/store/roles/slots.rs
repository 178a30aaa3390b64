//! Connection slots per destination, for a store several nodes share: a receiver's limit on
//! connections from one sender holds for the whole cluster, not for each node. A slot is a
//! lease like a claim (`node`, `lease_until`): renewed while its node holds it, lapsing when
//! the node dies, so a crashed node never locks a destination for longer than a lease. The
//! embedded store has no such role: one process's own semaphore is the whole limit there
//! ([`crate::state::store::Store::take_destination_slot`] grants every ask).

use crate::state::store::StoreError;

/// Leased connection slots per destination domain.
pub(crate) trait Slots {
    /// Takes a slot of `destination` (a domain) numbered below `limit` that is free or whose
    /// lease lapsed by `now`, for this node, for a lease; `None` when all `limit` are held.
    /// The lease is renewed with this node's claims until [`Slots::free_slot`].
    async fn take_slot(
        &self,
        destination: &str,
        limit: u32,
        now: u64,
    ) -> Result<Option<u32>, StoreError>;
    /// Gives back this node's `slot` of `destination`. Renewal stops even when the database
    /// cannot be told: the slot then lapses with its lease.
    async fn free_slot(&self, destination: &str, slot: u32) -> Result<(), StoreError>;
}
