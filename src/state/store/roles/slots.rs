//! Connection slots per destination, for a store several nodes share: a receiver's limit on
//! connections from one sender holds for the whole cluster, not for each node. A slot is a
//! lease like a claim (`node`, `lease_until`): renewed while its node holds it, lapsing when
//! the node dies, so a crashed node never locks a destination for longer than a lease. The
//! embedded store has no such role: one process's own semaphore is the whole limit there
//! ([`crate::state::store::Store::take_destination_slots`] grants every ask).

use crate::state::store::StoreError;

/// Leased connection slots per destination domain.
pub(crate) trait Slots {
    /// Takes up to `want` slots of `destination` (a domain) numbered below `limit` that are
    /// free or whose lease lapsed by `now`, lowest first, for this node, for a lease; none
    /// when all `limit` are held. Several at once: a fan-out opens a destination's
    /// connections together, and one statement for them all costs the database one round
    /// trip instead of one each. Leases are renewed with this node's claims until
    /// [`Slots::free_slots`].
    async fn take_slots(
        &self,
        destination: &str,
        limit: u32,
        want: u32,
        now: u64,
    ) -> Result<Vec<u32>, StoreError>;
    /// Gives back this node's `slots` (destination, slot). Renewal stops even when the
    /// database cannot be told: the slots then lapse with their leases.
    async fn free_slots(&self, slots: &[(String, u32)]) -> Result<(), StoreError>;
}
