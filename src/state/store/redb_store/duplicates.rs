//! Message-IDs a list distributed lately, so the same post sent twice (a client that never saw
//! the first `250` and sent again, a member who posted twice, two routes to the list) goes to
//! the members once. Kept for the duplicate window, then pruned in time order.

use super::member_key;
use crate::state::store::Fault;
use redb::{ReadableTable, TableDefinition, WriteTransaction};

/// `list\nmessage-id` → `time\nspool id`.
pub(super) const SEEN: TableDefinition<&str, &str> = TableDefinition::new("seen_message_ids");
/// `time(20 digits)\nlist\nmessage-id` → `""`: the same entries in time order, for pruning.
pub(super) const SEEN_BY_TIME: TableDefinition<&str, &str> =
    TableDefinition::new("seen_message_ids_by_time");

/// The post of `list` distributed with `message_id` at or after `since`, if any.
pub(super) fn seen(
    txn: &redb::ReadTransaction,
    list: &str,
    message_id: &str,
    since: u64,
) -> Result<Option<u64>, Fault> {
    within(&txn.open_table(SEEN)?, list, message_id, since)
}

/// [`seen`], inside the write transaction that is about to queue a post.
pub(super) fn seen_in(
    txn: &WriteTransaction,
    list: &str,
    message_id: &str,
    since: u64,
) -> Result<Option<u64>, Fault> {
    within(&txn.open_table(SEEN)?, list, message_id, since)
}

fn within(
    table: &impl ReadableTable<&'static str, &'static str>,
    list: &str,
    message_id: &str,
    since: u64,
) -> Result<Option<u64>, Fault> {
    let Some(value) = table.get(member_key(list, message_id).as_str())? else {
        return Ok(None);
    };
    let (at, id) = value.value().split_once('\n').unwrap_or(("0", "0"));
    let (at, id) = (at.parse().unwrap_or(0u64), id.parse().unwrap_or(0u64));
    Ok((at >= since).then_some(id))
}

/// Records that `list` distributed post `id` with `message_id` at `now`.
pub(super) fn remember(
    txn: &WriteTransaction,
    list: &str,
    message_id: &str,
    id: u64,
    now: u64,
) -> Result<(), Fault> {
    let key = member_key(list, message_id);
    let mut table = txn.open_table(SEEN)?;
    table.insert(key.as_str(), format!("{now}\n{id}").as_str())?;
    let mut by_time = txn.open_table(SEEN_BY_TIME)?;
    by_time.insert(format!("{now:020}\n{key}").as_str(), "")?;
    Ok(())
}

/// Forgets, at most `batch` of them, the Message-IDs recorded before `before`; returns how
/// many, and whether more are left.
pub(super) fn forget(
    txn: &WriteTransaction,
    before: u64,
    batch: usize,
) -> Result<(usize, bool), Fault> {
    let mut by_time = txn.open_table(SEEN_BY_TIME)?;
    let mut seen = txn.open_table(SEEN)?;
    let mut old = Vec::new();
    for row in by_time.iter()? {
        let (k, _) = row?;
        let key = k.value().to_string();
        let at: u64 = key.get(..20).and_then(|t| t.parse().ok()).unwrap_or(0);
        if at >= before || old.len() >= batch {
            break;
        }
        old.push(key);
    }
    for key in &old {
        by_time.remove(key.as_str())?;
        let Some(entry) = key.get(21..) else { continue };
        // Only if it was not recorded again since (a later post with the same id).
        let stale = seen.get(entry)?.is_some_and(|v| {
            v.value()
                .split('\n')
                .next()
                .and_then(|t| t.parse::<u64>().ok())
                .unwrap_or(0)
                < before
        });
        if stale {
            seen.remove(entry)?;
        }
    }
    Ok((old.len(), old.len() >= batch))
}
