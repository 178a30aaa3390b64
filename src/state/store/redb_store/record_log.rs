//! The log of recipient records written while a post goes out.
//!
//! A fan-out records the copies accepted so far every few milliseconds. Written into the
//! records table, each of those commits changed a few hundred records scattered over the
//! whole post (they sort by address, copies go out by destination), so it rewrote a few
//! hundred pages of the file: about a twentieth of a signed fan-out's CPU. Appended here
//! under the post's id and a sequence number, the same records fill a few pages at the end
//! of the log. Settling a post reads its log over its records; they are folded into the
//! records table when it is still waiting after that, once [`FOLD_AT`] wait (in the commit
//! that appends them), and when the file is opened or closed. A post that finished has its
//! records and its log removed together, the log never written into the records. Every
//! reader of a post's records reads its log over them, so nothing sees a record late.

use super::write_deliveries;
use crate::state::store::{Delivery, Fault, SpoolId};
use redb::{ReadableTable, TableDefinition, WriteTransaction};
use std::collections::HashMap;

/// Records by (post id, sequence number): appended in the order they were written, so a later
/// record of an address replaces an earlier one. An entry holds the records of one write, as
/// a JSON array under the sequence number of its last record (one entry per record, a JSON
/// object, as arclist wrote before, reads as well): a fan-out's write of a few hundred
/// accepted copies is one insert, not one each (those inserts were a fortieth of a signed
/// fan-out's CPU). A build from before cannot read the arrays: a file a crash left with a
/// log needs this arclist or newer to open (a clean stop folds the log away).
pub(super) const LOG: TableDefinition<(u64, u64), &str> = TableDefinition::new("delivery_log");

/// Records of one post in the log above which they are folded at once: what a reader of the
/// post's records reads besides them, and what a settling folds, stays bounded. A fan-out
/// of 10,000 (a page) then folds none: its settling reads the log and removes it.
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
    let Some(count) = u64::try_from(records.len()).ok().filter(|n| *n > 0) else {
        return Ok(());
    };
    let mut log = txn.open_table(LOG)?;
    let next = match log.range(range(id))?.next_back() {
        Some(last) => last?.0.value().1.saturating_add(1),
        None => 0,
    };
    // Keyed by its last record's number, so the next write follows on from the key alone.
    let last = next.saturating_add(count - 1);
    log.insert((id, last), serde_json::to_string(records)?.as_str())?;
    drop(log);
    if last.saturating_add(1) >= FOLD_AT {
        fold(txn, id)?;
    }
    Ok(())
}

/// Moves post `id`'s logged records into the records table within `txn`, the latest of
/// each address.
pub(super) fn fold(txn: &WriteTransaction, id: SpoolId) -> Result<(), Fault> {
    let mut log = txn.open_table(LOG)?;
    // The latest of each address, written in the records' key order: one write each, and
    // one after the other into the same pages rather than back and forth over the post.
    let mut latest = std::collections::BTreeMap::new();
    for row in log.extract_from_if(range(id), |_, _| true)? {
        let (k, v) = row?;
        for d in parse::<Delivery>(k.value(), v.value())? {
            latest.insert(d.address.to_ascii_lowercase(), d);
        }
    }
    drop(log);
    write_deliveries(txn, id, latest.into_values())
}

/// Folds every post's log within `txn`, when the file is opened and when the store closes:
/// an older arclist, which reads no log, then finds every record in the records table (after
/// a crash it does not: the log of a fan-out cut short is folded by the next start of this
/// one). Returns how many posts had records in the log.
pub(super) fn fold_all(txn: &WriteTransaction) -> Result<usize, Fault> {
    let mut ids = Vec::new();
    {
        let log = txn.open_table(LOG)?;
        let mut from = Some(0);
        while let Some(start) = from {
            let Some(row) = log.range((start, 0)..)?.next() else {
                break;
            };
            let id = row?.0.value().0;
            ids.push(id);
            from = id.checked_add(1);
        }
    }
    for id in &ids {
        fold(txn, *id)?;
    }
    Ok(ids.len())
}

/// Removes post `id`'s log (the post is pruned, or its records are removed).
pub(super) fn remove(txn: &WriteTransaction, id: SpoolId) -> Result<(), Fault> {
    txn.open_table(LOG)?.retain_in(range(id), |_, _| false)?;
    Ok(())
}

/// Post `id`'s logged records of addresses sorting after `after` (lowercased; `""`: all), the
/// latest of each, by lowercased address: what its records table says of those addresses is
/// older. A fan-out claims page after page in address order, so the next page's claim finds
/// the log holding the pages before it: their records are passed over by address alone.
pub(super) fn overlay(
    log: &impl ReadableTable<(u64, u64), &'static str>,
    id: SpoolId,
    after: &str,
) -> Result<HashMap<String, Delivery>, Fault> {
    let mut latest = HashMap::new();
    for row in log.range(range(id))? {
        let (k, v) = row?;
        let records = match after.is_empty() {
            true => parse(k.value(), v.value())?,
            false => parse_after(k.value(), v.value(), after)?,
        };
        for d in records {
            latest.insert(d.address.to_ascii_lowercase(), d);
        }
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
        for d in parse::<Delivery>(k.value(), v.value())? {
            latest.insert((k.value().0, d.address.to_ascii_lowercase()), d);
        }
    }
    Ok(latest)
}

/// The record stored under `key` in the records table as `json` (or in its short form for a
/// recipient not tried yet), unless `logged` (the post's
/// [`overlay`], by lowercased address) has a newer one; `prefix` is the post's key prefix.
pub(super) fn newest(
    logged: &HashMap<String, Delivery>,
    (prefix, key): (&str, &str),
    json: &str,
) -> Result<Delivery, Fault> {
    match key
        .get(prefix.len()..)
        .and_then(|address| logged.get(address))
    {
        Some(newer) => Ok(newer.clone()),
        None => super::decode_record(key, json),
    }
}

/// The items of the entry under `key`, read as `T` (a record, or only its raw JSON): a
/// write's array of records, or (written by an older arclist) one record.
fn parse<'a, T: serde::Deserialize<'a>>(key: (u64, u64), json: &'a str) -> Result<Vec<T>, Fault> {
    let read = match json.trim_start().starts_with('[') {
        true => serde_json::from_str(json),
        false => serde_json::from_str(json).map(|one| vec![one]),
    };
    read.map_err(|e| corrupt(key, e))
}

/// The records of the entry under `key` whose lowercased address sorts after `after`: the
/// others (the pages a fan-out claimed before) have only their address read, not decoded
/// whole.
fn parse_after(key: (u64, u64), json: &str, after: &str) -> Result<Vec<Delivery>, Fault> {
    /// The first field of a record, read without the rest.
    #[derive(serde::Deserialize)]
    struct Address<'a> {
        #[serde(borrow)]
        address: std::borrow::Cow<'a, str>,
    }
    let each: Vec<&serde_json::value::RawValue> = parse(key, json)?;
    let mut out = Vec::new();
    for raw in each {
        let peek: Address<'_> = serde_json::from_str(raw.get()).map_err(|e| corrupt(key, e))?;
        if peek.address.to_ascii_lowercase().as_str() > after {
            out.push(serde_json::from_str(raw.get()).map_err(|e| corrupt(key, e))?);
        }
    }
    Ok(out)
}

fn corrupt(key: (u64, u64), e: serde_json::Error) -> Fault {
    Fault::corrupt(format!(
        "corrupt delivery log entry {} of post {}: {e}",
        key.1, key.0
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::store::DeliveryState;
    use redb::{ReadableDatabase, ReadableTableMetadata};

    fn record(address: &str, state: DeliveryState) -> Delivery {
        Delivery {
            state,
            ..Delivery::pending(address)
        }
    }

    #[test]
    fn records_of_recipients_not_tried_yet_are_stored_short_and_read_as_before() {
        use super::super::{
            DELIVERIES, decode_record, delivery_key, write_deliveries, write_pending,
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let db = redb::Database::create(dir.path().join("t.redb")).expect("db");
        let txn = db.begin_write().expect("write");
        write_pending(&txn, 4, &["Ann@X.example".to_string()]).expect("pending");
        let tried = record("bob@x.example", DeliveryState::Deferred);
        let fresh = Delivery::pending("Cy@x.example");
        write_deliveries(&txn, 4, [&tried, &fresh]).expect("records");
        txn.commit().expect("commit");
        let read = db.begin_read().expect("read");
        let table = read.open_table(DELIVERIES).expect("records");
        let stored = |address: &str| {
            let key = delivery_key(4, address);
            let value = table.get(key.as_str()).expect("get").expect("a record");
            (key, value.value().to_string())
        };
        // Fresh ones keep their address as given, in a few bytes; a tried one stays JSON.
        let (key, ann) = stored("ann@x.example");
        assert_eq!(ann, "p:Ann@X.example");
        assert_eq!(
            decode_record(&key, &ann).expect("decoded"),
            Delivery::pending("Ann@X.example")
        );
        assert_eq!(stored("cy@x.example").1, "p:Cy@x.example");
        let (key, bob) = stored("bob@x.example");
        assert!(bob.starts_with('{'), "{bob}");
        assert_eq!(decode_record(&key, &bob).expect("decoded"), tried);
        // A fresh record as an older arclist wrote it (JSON) reads as before.
        let old = serde_json::to_string(&Delivery::pending("Dee@x.example")).expect("json");
        assert_eq!(
            decode_record("k", &old).expect("decoded"),
            Delivery::pending("Dee@x.example")
        );
        let bad = decode_record("00000000000000000004\nzed@x.example", "nonsense");
        assert!(format!("{:?}", bad.expect_err("corrupt")).contains("zed@x.example"));
    }

    #[test]
    fn the_latest_record_of_an_address_wins_and_every_log_folds_into_the_records() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = redb::Database::create(dir.path().join("t.redb")).expect("db");
        let txn = db.begin_write().expect("write");
        let deferred = record("A@x.example", DeliveryState::Deferred);
        let delivered = record("a@x.example", DeliveryState::Delivered);
        append(
            &txn,
            1,
            &[deferred, record("b@x.example", DeliveryState::Bounced)],
        )
        .expect("append");
        append(&txn, 1, std::slice::from_ref(&delivered)).expect("append");
        append(&txn, 3, &[record("c@y.example", DeliveryState::Delivered)]).expect("append");
        let seen = overlay(&txn.open_table(LOG).expect("log"), 1, "").expect("overlay");
        assert_eq!(seen.len(), 2);
        assert_eq!(seen["a@x.example"].state, DeliveryState::Delivered);
        // The next page's claim: only addresses after the last one of the page before.
        let after = overlay(&txn.open_table(LOG).expect("log"), 1, "a@x.example").expect("after");
        assert_eq!(after.keys().collect::<Vec<_>>(), ["b@x.example"]);
        assert_eq!(fold_all(&txn).expect("fold"), 2, "posts 1 and 3");
        assert!(txn.open_table(LOG).expect("log").is_empty().expect("empty"));
        txn.commit().expect("commit");
        let read = db.begin_read().expect("read");
        let table = read.open_table(super::super::DELIVERIES).expect("records");
        let state = |id, address: &str| {
            let json = table.get(super::super::delivery_key(id, address).as_str());
            let json = json.expect("get").expect("a record").value().to_string();
            serde_json::from_str::<Delivery>(&json).expect("json").state
        };
        assert_eq!(state(1, "a@x.example"), DeliveryState::Delivered);
        assert_eq!(state(1, "b@x.example"), DeliveryState::Bounced);
        assert_eq!(state(3, "c@y.example"), DeliveryState::Delivered);
    }

    #[test]
    fn a_post_whose_log_fills_is_folded_as_it_is_appended_to() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = redb::Database::create(dir.path().join("t.redb")).expect("db");
        let txn = db.begin_write().expect("write");
        let many: Vec<Delivery> = (0..FOLD_AT - 1)
            .map(|n| record(&format!("m{n}@x.example"), DeliveryState::Delivered))
            .collect();
        append(&txn, 7, &many).expect("append");
        assert_eq!(
            txn.open_table(LOG).expect("log").len().expect("len"),
            1,
            "one write, one entry"
        );
        let logged = overlay(&txn.open_table(LOG).expect("log"), 7, "").expect("overlay");
        assert_eq!(logged.len() as u64, FOLD_AT - 1);
        append(&txn, 7, &many[..1]).expect("append");
        assert!(
            txn.open_table(LOG).expect("log").is_empty().expect("empty"),
            "folded at {FOLD_AT}"
        );
        let records = txn.open_table(super::super::DELIVERIES).expect("records");
        assert_eq!(records.len().expect("len"), FOLD_AT - 1);
        // Appending after a fold starts the post's sequence again.
        drop(records);
        append(&txn, 7, &many[..2]).expect("append");
        let log = txn.open_table(LOG).expect("log");
        let keys: Vec<(u64, u64)> = log
            .iter()
            .expect("iter")
            .map(|r| r.expect("row").0.value())
            .collect();
        assert_eq!(keys, [(7, 1)], "keyed by the number of its last record");
    }

    #[test]
    fn entries_of_one_record_as_an_older_arclist_wrote_them_are_read_with_the_new() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = redb::Database::create(dir.path().join("t.redb")).expect("db");
        let txn = db.begin_write().expect("write");
        {
            let mut log = txn.open_table(LOG).expect("log");
            for (n, address) in ["a@x.example", "b@x.example"].iter().enumerate() {
                let json = serde_json::to_string(&record(address, DeliveryState::Deferred));
                log.insert((5, n as u64), json.expect("json").as_str())
                    .expect("insert");
            }
        }
        append(&txn, 5, &[record("b@x.example", DeliveryState::Delivered)]).expect("append");
        let keys: Vec<(u64, u64)> = (txn.open_table(LOG).expect("log").iter().expect("iter"))
            .map(|r| r.expect("row").0.value())
            .collect();
        assert_eq!(keys, [(5, 0), (5, 1), (5, 2)], "the numbering goes on");
        let logged = overlay(&txn.open_table(LOG).expect("log"), 5, "").expect("overlay");
        assert_eq!(logged["a@x.example"].state, DeliveryState::Deferred);
        assert_eq!(
            logged["b@x.example"].state,
            DeliveryState::Delivered,
            "the newer"
        );
        let after = overlay(&txn.open_table(LOG).expect("log"), 5, "a@x.example").expect("after");
        assert_eq!(after.keys().collect::<Vec<_>>(), ["b@x.example"]);
        assert_eq!(after["b@x.example"].state, DeliveryState::Delivered);
        let every = all(&txn.open_table(LOG).expect("log")).expect("all");
        assert_eq!(every.len(), 2);
    }
}
