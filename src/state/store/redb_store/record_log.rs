//! The log of recipient records written while a post goes out.
//!
//! A fan-out records the copies accepted so far every few milliseconds. Written into the
//! records table, each of those commits changed a few hundred records scattered over the
//! whole post (they sort by address, copies go out by destination), so it rewrote a few
//! hundred pages of the file: about a twentieth of a signed fan-out's CPU. Appended here
//! under the post's id and a sequence number, the same records fill a few pages at the end
//! of the log. They are folded into the records table when the post is settled (its round
//! recorded), or once [`FOLD_AT`] wait, in the commit that appends them; every reader of a
//! post's records reads its log over them, so nothing sees a record late.

use super::write_deliveries;
use crate::state::store::{Delivery, Fault, SpoolId};
use redb::{ReadableTable, TableDefinition, WriteTransaction};
use std::collections::HashMap;

/// Records by (post id, sequence number): appended in the order they were written, so a later
/// record of an address replaces an earlier one.
pub(super) const LOG: TableDefinition<(u64, u64), &str> = TableDefinition::new("delivery_log");

/// Records of one post in the log above which they are folded at once: what a reader of the
/// post's records reads besides them, and what a settling folds, stays bounded.
const FOLD_AT: u64 = 16_384;

/// Every sequence number of post `id`.
fn range(id: SpoolId) -> std::ops::RangeInclusive<(u64, u64)> {
    (id, 0)..=(id, u64::MAX)
}

/// Appends `records` of post `id` to the log within `txn`, and folds the post's log when it
/// has [`FOLD_AT`] records or more.
pub(super) fn append(
    txn: &WriteTransaction,
    id: SpoolId,
    records: &[Delivery],
) -> Result<(), Fault> {
    let mut log = txn.open_table(LOG)?;
    let mut next = match log.range(range(id))?.next_back() {
        Some(last) => last?.0.value().1.saturating_add(1),
        None => 0,
    };
    for d in records {
        let json = serde_json::to_string(d)?;
        log.insert((id, next), json.as_str())?;
        next = next.saturating_add(1);
    }
    drop(log);
    if next >= FOLD_AT {
        fold(txn, id)?;
    }
    Ok(())
}

/// Moves post `id`'s logged records into the records table within `txn`, in the order they
/// were written.
pub(super) fn fold(txn: &WriteTransaction, id: SpoolId) -> Result<(), Fault> {
    let mut log = txn.open_table(LOG)?;
    let mut records = Vec::new();
    for row in log.extract_from_if(range(id), |_, _| true)? {
        let (k, v) = row?;
        records.push(parse(k.value(), v.value())?);
    }
    drop(log);
    write_deliveries(txn, id, records)
}

/// Removes post `id`'s log (the post is pruned).
pub(super) fn remove(txn: &WriteTransaction, id: SpoolId) -> Result<(), Fault> {
    txn.open_table(LOG)?.retain_in(range(id), |_, _| false)?;
    Ok(())
}

/// Post `id`'s logged records, the latest of each address, by lowercased address: what its
/// records table says of those addresses is older.
pub(super) fn overlay(
    log: &impl ReadableTable<(u64, u64), &'static str>,
    id: SpoolId,
) -> Result<HashMap<String, Delivery>, Fault> {
    let mut latest = HashMap::new();
    for row in log.range(range(id))? {
        let (k, v) = row?;
        let d = parse(k.value(), v.value())?;
        latest.insert(d.address.to_ascii_lowercase(), d);
    }
    Ok(latest)
}

/// Every post's logged records, the latest of each address, by post id and lowercased address
/// (for a copy of the whole store).
pub(super) fn all(
    log: &impl ReadableTable<(u64, u64), &'static str>,
) -> Result<HashMap<(u64, String), Delivery>, Fault> {
    let mut latest = HashMap::new();
    for row in log.iter()? {
        let (k, v) = row?;
        let d = parse(k.value(), v.value())?;
        latest.insert((k.value().0, d.address.to_ascii_lowercase()), d);
    }
    Ok(latest)
}

fn parse(key: (u64, u64), json: &str) -> Result<Delivery, Fault> {
    serde_json::from_str(json).map_err(|e| {
        Fault::corrupt(format!(
            "corrupt delivery log entry {} of post {}: {e}",
            key.1, key.0
        ))
    })
}
