//! Connection slots per destination in the shared database: one row a (destination, slot),
//! held by one node until its lease. Taking slots is one statement: the lowest slots below the
//! limit that are free or lapsed are inserted, or taken over when their leases lapsed; two
//! nodes racing for the same slot are ordered by its key, and the loser goes without it (it
//! asks again a moment later).

use super::{Conn, PgStore, int, pg};
use crate::state::store::roles::Slots;
use crate::state::store::{Fault, StoreError};

impl Slots for PgStore {
    async fn take_slots(
        &self,
        destination: &str,
        limit: u32,
        want: u32,
        now: u64,
    ) -> Result<Vec<u32>, StoreError> {
        if want == 0 {
            return Ok(Vec::new());
        }
        let (node, until) = (self.node().to_string(), int(now + self.lease_secs()));
        let dest = destination.to_ascii_lowercase();
        let (limit, want) = (limit.max(1) as i32, i64::from(want));
        let key = dest.clone();
        let slots = self
            .run(move |c| async move {
                let stmt = c
                    .prepare_cached(
                        "INSERT INTO destination_slots (destination, slot, node, lease_until)
                         SELECT $1, s, $3, $5 FROM generate_series(0, $2::int - 1) AS s
                         WHERE NOT EXISTS (SELECT 1 FROM destination_slots d
                             WHERE d.destination = $1 AND d.slot = s AND d.lease_until > $4)
                         ORDER BY s LIMIT $6
                         ON CONFLICT (destination, slot) DO UPDATE
                             SET node = EXCLUDED.node, lease_until = EXCLUDED.lease_until
                             WHERE destination_slots.lease_until <= $4
                         RETURNING slot",
                    )
                    .await
                    .map_err(pg)?;
                let rows = c
                    .query(&stmt, &[&dest, &limit, &node, &int(now), &until, &want])
                    .await
                    .map_err(pg)?;
                Ok(rows.iter().map(|r| r.get::<_, i32>(0)).collect::<Vec<_>>())
            })
            .await?;
        let mut slots: Vec<u32> = slots
            .into_iter()
            .map(|s| u32::try_from(s).unwrap_or(0))
            .collect();
        slots.sort_unstable();
        for slot in &slots {
            self.hold_slot(key.clone(), *slot, true);
        }
        Ok(slots)
    }

    async fn free_slots(&self, slots: &[(String, u32)]) -> Result<(), StoreError> {
        if slots.is_empty() {
            return Ok(());
        }
        let mut destinations = Vec::with_capacity(slots.len());
        let mut numbers = Vec::with_capacity(slots.len());
        for (destination, slot) in slots {
            let dest = destination.to_ascii_lowercase();
            // Not renewed from now on, whatever the database answers: a slot that cannot be
            // freed lapses with its lease instead of being held for as long as this node lives.
            self.hold_slot(dest.clone(), *slot, false);
            destinations.push(dest);
            numbers.push(*slot as i32);
        }
        let node = self.node().to_string();
        self.run(move |c| async move {
            c.execute(
                "DELETE FROM destination_slots WHERE node = $1 AND (destination, slot) IN
                     (SELECT * FROM unnest($2::text[], $3::int[]))",
                &[&node, &destinations, &numbers],
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
    // Rows a node is taking over at this moment are skipped (the next pass finds them held):
    // waiting for them, in another order than the taking node locks them, could deadlock.
    c.execute(
        "DELETE FROM destination_slots WHERE (destination, slot) IN
             (SELECT destination, slot FROM destination_slots WHERE lease_until <= $1
              FOR UPDATE SKIP LOCKED)",
        &[&int(now)],
    )
    .await
    .map_err(pg)
}
