//! Membership in the redb store, with its memory: who left (and why) is kept, so that seeding
//! a list from its file never brings back someone who unsubscribed or was removed, and which
//! lists were seeded already, so a list file's `members` are read once, not at every start.

use super::{MEMBERS, member_key};
use crate::state::store::Fault;
use crate::state::store::{Departure, Member};
use redb::{ReadableTable, TableDefinition, WriteTransaction};

/// Addresses that left a list, by `list\naddress`: a JSON [`Departure`]. Kept until the
/// address is added again by a person (operator, confirmed join); a suppression list must
/// outlive any retention period, and it grows only with people who left.
pub(super) const DEPARTED: TableDefinition<&str, &str> = TableDefinition::new("departed");
/// Lists whose file members were seeded, with the Unix time of seeding.
pub(super) const SEEDED: TableDefinition<&str, u64> = TableDefinition::new("lists_seeded");

/// Adds every member not already there. `by_person` (an operator, a confirmed join) also
/// clears a departure; a seed (`by_person` false) skips departed addresses instead. Returns
/// how many were added.
pub(super) fn add(
    txn: &WriteTransaction,
    list: &str,
    members: &[Member],
    by_person: bool,
) -> Result<usize, Fault> {
    let mut table = txn.open_table(MEMBERS)?;
    let mut departed = txn.open_table(DEPARTED)?;
    let mut added = 0;
    for member in members {
        let key = member_key(list, &member.address);
        if by_person {
            departed.remove(key.as_str())?;
        } else if departed.get(key.as_str())?.is_some() {
            continue;
        }
        if table.get(key.as_str())?.is_none() {
            let json = serde_json::to_string(member)?;
            table.insert(key.as_str(), json.as_str())?;
            added += 1;
        }
    }
    Ok(added)
}

/// Removes a member and remembers the departure (also when they were not a member: a
/// one-click unsubscribe of an address that a file would seed later must still stick).
/// Returns whether they were a member.
pub(super) fn remove(
    txn: &WriteTransaction,
    list: &str,
    address: &str,
    why: Departure,
) -> Result<bool, Fault> {
    let key = member_key(list, address);
    let mut table = txn.open_table(MEMBERS)?;
    let removed = table.remove(key.as_str())?.is_some();
    let mut departed = txn.open_table(DEPARTED)?;
    let json = serde_json::to_string(&why)?;
    departed.insert(key.as_str(), json.as_str())?;
    Ok(removed)
}

/// Seeds `list` with `members` unless it was seeded before (`again` seeds anyway, for
/// `arclist member sync`); departed addresses are skipped either way. `None` when it had been
/// seeded and `again` is false; else how many were added.
pub(super) fn seed(
    txn: &WriteTransaction,
    list: &str,
    members: &[Member],
    again: bool,
    now: u64,
) -> Result<Option<usize>, Fault> {
    let key = list.to_ascii_lowercase();
    let mut seeded = txn.open_table(SEEDED)?;
    if !again && seeded.get(key.as_str())?.is_some() {
        return Ok(None);
    }
    seeded.insert(key.as_str(), now)?;
    drop(seeded);
    add(txn, list, members, false).map(Some)
}

/// Marks as seeded every list that already has members: a store written before lists were
/// marked was seeded at every start, so its lists count as seeded from now on (else a file
/// would bring back whoever left before the upgrade, a second time).
pub(super) fn mark_lists_with_members(txn: &WriteTransaction, now: u64) -> Result<(), Fault> {
    let lists: std::collections::BTreeSet<String> = {
        let table = txn.open_table(MEMBERS)?;
        let mut lists = std::collections::BTreeSet::new();
        for row in table.iter()? {
            let (k, _) = row?;
            if let Some((list, _)) = k.value().split_once('\n') {
                lists.insert(list.to_string());
            }
        }
        lists
    };
    let mut seeded = txn.open_table(SEEDED)?;
    for list in lists {
        seeded.insert(list.as_str(), now)?;
    }
    Ok(())
}

/// Why `address` left `list`, if it did and was not added again since.
pub(super) fn departure(
    txn: &redb::ReadTransaction,
    list: &str,
    address: &str,
) -> Result<Option<Departure>, Fault> {
    let table = txn.open_table(DEPARTED)?;
    let Some(json) = table.get(member_key(list, address).as_str())? else {
        return Ok(None);
    };
    serde_json::from_str(json.value())
        .map(Some)
        .map_err(|e| Fault::corrupt(format!("corrupt departure record: {e}")))
}
