//! Connection slots per destination in the shared database: one row a (destination, slot),
//! held by one node until its lease. Taking a slot is one statement: the lowest slot below the
//! limit that is free or lapsed is inserted, or taken over when its lease lapsed; two nodes
//! racing for the same slot are ordered by its key, and the loser is told none is free (it
//! asks again a moment later).

use super::{Conn, PgStore, int, pg};
use crate::state::store::roles::Slots;
use crate::state::store::{Fault, StoreError};

impl Slots for PgStore {
    async fn take_slot(
        &self,
        destination: &str,
        limit: u32,
        now: u64,
    ) -> Result<Option<u32>, StoreError> {
        let (node, until) = (self.node().to_string(), int(now + self.lease_secs()));
        let (dest, limit) = (destination.to_ascii_lowercase(), limit.max(1) as i32);
        let key = dest.clone();
        let slot = self
            .run(move |c| async move {
                let row = c
                    .query_opt(
                        "INSERT INTO destination_slots (destination, slot, node, lease_until)
                         SELECT $1, s, $3, $5 FROM generate_series(0, $2::int - 1) AS s
                         WHERE NOT EXISTS (SELECT 1 FROM destination_slots d
                             WHERE d.destination = $1 AND d.slot = s AND d.lease_until > $4)
                         ORDER BY s LIMIT 1
                         ON CONFLICT (destination, slot) DO UPDATE
                             SET node = EXCLUDED.node, lease_until = EXCLUDED.lease_until
                             WHERE destination_slots.lease_until <= $4
                         RETURNING slot",
                        &[&dest, &limit, &node, &int(now), &until],
                    )
                    .await
                    .map_err(pg)?;
                Ok(row.map(|r| r.get::<_, i32>(0)))
            })
            .await?;
        let slot = slot.map(|s| u32::try_from(s).unwrap_or(0));
        if let Some(slot) = slot {
            self.hold_slot(key, slot, true);
        }
        Ok(slot)
    }

    async fn free_slot(&self, destination: &str, slot: u32) -> Result<(), StoreError> {
        let dest = destination.to_ascii_lowercase();
        // Not renewed from now on, whatever the database answers: a slot that cannot be
        // freed lapses with its lease instead of being held for as long as this node lives.
        self.hold_slot(dest.clone(), slot, false);
        let node = self.node().to_string();
        self.run(move |c| async move {
            c.execute(
                "DELETE FROM destination_slots WHERE destination = $1 AND slot = $2 AND node = $3",
                &[&dest, &(slot as i32), &node],
            )
            .await
            .map_err(pg)
            .map(|_| ())
        })
        .await
    }
}

/// Extends the leases of `held` slots of `node` to `until`. A slot another node took over
/// meanwhile (this node was cut off for a whole lease) is left to it.
pub(super) async fn renew(
    c: &Conn,
    node: &str,
    held: &[(String, u32)],
    until: i64,
) -> Result<(), Fault> {
    if held.is_empty() {
        return Ok(());
    }
    let destinations: Vec<&str> = held.iter().map(|(d, _)| d.as_str()).collect();
    let slots: Vec<i32> = held.iter().map(|(_, s)| *s as i32).collect();
    c.execute(
        "UPDATE destination_slots SET lease_until = $2
         WHERE node = $1 AND (destination, slot) IN
             (SELECT * FROM unnest($3::text[], $4::int[]))",
        &[&node, &until, &destinations, &slots],
    )
    .await
    .map_err(pg)
    .map(|_| ())
}

/// Frees every slot `node` holds: a node that stops on purpose gives its slots back at once.
pub(super) async fn release_all(c: &Conn, node: &str) -> Result<(), Fault> {
    c.execute("DELETE FROM destination_slots WHERE node = $1", &[&node])
        .await
        .map_err(pg)
        .map(|_| ())
}

/// Removes slots whose lease lapsed before `now` (their nodes died or were cut off), so the
/// table holds only the slots of destinations being delivered to.
pub(super) async fn forget_lapsed(c: &Conn, now: u64) -> Result<u64, Fault> {
    c.execute(
        "DELETE FROM destination_slots WHERE lease_until <= $1",
        &[&int(now)],
    )
    .await
    .map_err(pg)
}
