//! Rate counters in the embedded store: one row a key with its count and expiry, and the same
//! keys in expiry order so the pruner forgets the expired ones without a scan of the rest.

use crate::state::store::Fault;
use redb::{ReadableTable, TableDefinition, WriteTransaction};

/// `key` → `count\nexpires`.
pub(super) const RATES: TableDefinition<&str, &str> = TableDefinition::new("rate_counters");
/// `expires(20 digits)\nkey` → `""`.
pub(super) const RATES_BY_EXPIRY: TableDefinition<&str, &str> =
    TableDefinition::new("rate_counters_by_expiry");

/// Adds one to each of `keys`, returning the counts after.
pub(super) fn count(txn: &WriteTransaction, keys: &[(String, u64)]) -> Result<Vec<u64>, Fault> {
    let mut table = txn.open_table(RATES)?;
    let mut by_expiry = txn.open_table(RATES_BY_EXPIRY)?;
    let mut counts = Vec::with_capacity(keys.len());
    for (key, expires) in keys {
        let before: Option<(u64, u64)> = table.get(key.as_str())?.map(|v| parse(v.value()));
        let (count, expires) = match before {
            Some((n, at)) => (n.saturating_add(1), at),
            None => {
                by_expiry.insert(format!("{expires:020}\n{key}").as_str(), "")?;
                (1, *expires)
            }
        };
        table.insert(key.as_str(), format!("{count}\n{expires}").as_str())?;
        counts.push(count);
    }
    Ok(counts)
}

/// Forgets, at most `batch` of them, the counters that expired before `now`; returns how
/// many, and whether more are left.
pub(super) fn forget(
    txn: &WriteTransaction,
    now: u64,
    batch: usize,
) -> Result<(usize, bool), Fault> {
    let mut by_expiry = txn.open_table(RATES_BY_EXPIRY)?;
    let mut table = txn.open_table(RATES)?;
    let mut old = Vec::new();
    let mut more = false;
    for row in by_expiry.iter()? {
        let (k, _) = row?;
        let entry = k.value().to_string();
        let at: u64 = entry.get(..20).and_then(|t| t.parse().ok()).unwrap_or(0);
        if at >= now {
            break;
        }
        if old.len() >= batch {
            more = true;
            break;
        }
        old.push(entry);
    }
    for entry in &old {
        by_expiry.remove(entry.as_str())?;
        if let Some(key) = entry.get(21..) {
            table.remove(key)?;
        }
    }
    Ok((old.len(), more))
}

/// `count\nexpires`; a value that does not parse counts as none yet, expiring now.
fn parse(value: &str) -> (u64, u64) {
    let (n, at) = value.split_once('\n').unwrap_or((value, "0"));
    (n.parse().unwrap_or(0), at.parse().unwrap_or(0))
}
