//! Every row of the file, in one read transaction, for `arclist store copy`
//! ([`crate::state::store::copy`]).

use super::{
    ACTIVE, ALIASES, COUNTERS, DATA, DELIVERIES, DMARC_REPORTS, MEMBERS, META, QUEUE, QUEUE_DATA,
    QUEUE_SEVEN_BIT, RedbStore, SECRETS, archive, digests, duplicates, membership, rates,
    record_log,
};
use crate::state::store::copy::Row;
use crate::state::store::{Delivery, Fault, StoreError};
use redb::{ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::mpsc::Sender;

/// Hands a row to the copy; false once the copy stopped listening.
fn send(out: &Sender<Row>, row: Row) -> Result<(), Fault> {
    out.blocking_send(row)
        .map_err(|_| Fault::other("the copy stopped taking rows"))
}

/// Splits a key of two parts joined by a newline; `what` names the table in the error.
fn two<'a>(key: &'a str, what: &str) -> Result<(&'a str, &'a str), Fault> {
    key.split_once('\n')
        .ok_or_else(|| Fault::corrupt(format!("{what} key {key:?} has no newline")))
}

/// A decimal number out of a key or value.
fn number(text: &str, what: &str) -> Result<u64, Fault> {
    text.parse()
        .map_err(|_| Fault::corrupt(format!("{what}: {text:?} is not a number")))
}

/// Each entry of a text table, turned into a row by `row`.
fn each(
    txn: &ReadTransaction,
    table: TableDefinition<&str, &str>,
    out: &Sender<Row>,
    mut row: impl FnMut(&str, &str) -> Result<Row, Fault>,
) -> Result<(), Fault> {
    for entry in txn.open_table(table)?.iter()? {
        let (k, v) = entry?;
        send(out, row(k.value(), v.value())?)?;
    }
    Ok(())
}

impl RedbStore {
    /// Sends every row of the file to `out`, from one read transaction (a consistent
    /// snapshot). Blocks: run it on the blocking pool.
    pub(crate) fn export(&self, out: &Sender<Row>) -> Result<(), StoreError> {
        let txn = self.db()?.begin_read().map_err(|e| self.err(e))?;
        export_mail(&txn, out)
            .and_then(|()| export_people(&txn, out))
            .and_then(|()| export_records(&txn, out))
            .and_then(|()| export_archive(&txn, out))
            .map_err(|e| self.err(e))
    }
}

/// The spool, the queue, its heads and delivery records, and the next spool id.
fn export_mail(txn: &ReadTransaction, out: &Sender<Row>) -> Result<(), Fault> {
    let data = txn.open_table(DATA)?;
    for entry in txn.open_table(META)?.iter()? {
        let (id, meta) = entry?;
        let id = id.value();
        let data = data.get(id)?.map(|d| d.value().to_vec());
        send(
            out,
            Row::Spool {
                id,
                meta: meta.value().to_string(),
                data,
            },
        )?;
    }
    let (queue_data, seven) = (
        txn.open_table(QUEUE_DATA)?,
        txn.open_table(QUEUE_SEVEN_BIT)?,
    );
    for entry in txn.open_table(QUEUE)?.iter()? {
        let (id, entry) = entry?;
        let id = id.value();
        let row = Row::Queue {
            id,
            entry: entry.value().to_string(),
            data: queue_data.get(id)?.map(|d| d.value().to_vec()),
            seven_bit: seven.get(id)?.map(|d| d.value().to_vec()),
        };
        send(out, row)?;
    }
    for entry in txn.open_table(ACTIVE)?.iter()? {
        let (id, head) = entry?;
        send(
            out,
            Row::Active {
                id: id.value(),
                head: head.value().to_string(),
            },
        )?;
    }
    // A fan-out cut short leaves records in the log, newer than the table's. Every record
    // goes out in (post, address) order, a logged one without a row in the table in its
    // place too: the database keeps a post's records in pages of consecutive addresses.
    let mut logged: std::collections::BTreeMap<(u64, String), Delivery> =
        record_log::all(&txn.open_table(record_log::LOG)?)?
            .into_iter()
            .collect();
    each(txn, DELIVERIES, out, |k, v| {
        let (id, address) = two(k, "delivery record")?;
        let id = number(id, "delivery record key")?;
        let key = (id, address.to_string());
        while let Some(entry) = logged.first_entry()
            && *entry.key() < key
        {
            send_logged(out, entry.remove_entry())?;
        }
        // A record of a recipient not tried yet is kept short in the file; the export
        // speaks JSON whatever the store holds.
        let record = match logged.remove(&key) {
            Some(newer) => serde_json::to_string(&newer)?,
            None if !v.starts_with('{') => serde_json::to_string(&super::decode_record(k, v)?)?,
            None => v.to_string(),
        };
        let address = address.to_string();
        Ok(Row::Delivery {
            id,
            address,
            record,
        })
    })?;
    for logged in logged {
        send_logged(out, logged)?;
    }
    if let Some(next) = txn.open_table(COUNTERS)?.get("next_id")? {
        send(out, Row::NextId(next.value()))?;
    }
    Ok(())
}

/// Sends a record found only in the log of post `id`.
fn send_logged(
    out: &Sender<Row>,
    ((id, address), d): ((u64, String), Delivery),
) -> Result<(), Fault> {
    let record = serde_json::to_string(&d)?;
    send(
        out,
        Row::Delivery {
            id,
            address,
            record,
        },
    )
}

/// Members, departures, seeded lists, aliases, and the digests' posts and issues.
fn export_people(txn: &ReadTransaction, out: &Sender<Row>) -> Result<(), Fault> {
    each(txn, MEMBERS, out, |k, v| {
        let (list, address) = two(k, "member")?;
        let (list, address, record) = (list.to_string(), address.to_string(), v.to_string());
        Ok(Row::Member {
            list,
            address,
            record,
        })
    })?;
    each(txn, membership::DEPARTED, out, |k, v| {
        let (list, address) = two(k, "departure")?;
        let (list, address, record) = (list.to_string(), address.to_string(), v.to_string());
        Ok(Row::Departure {
            list,
            address,
            record,
        })
    })?;
    for entry in txn.open_table(membership::SEEDED)?.iter()? {
        let (list, at) = entry?;
        send(
            out,
            Row::Seeded {
                list: list.value().to_string(),
                at: at.value(),
            },
        )?;
    }
    each(txn, ALIASES, out, |k, v| {
        Ok(Row::Alias {
            alias: k.to_string(),
            targets: v.to_string(),
        })
    })?;
    for entry in txn.open_table(digests::PENDING)?.iter()? {
        let (k, v) = entry?;
        let (list, id) = two(k.value(), "digest post")?;
        let row = Row::DigestPending {
            list: list.to_string(),
            id: number(id, "digest post key")?,
            message: v.value().to_vec(),
        };
        send(out, row)?;
    }
    each(txn, digests::ISSUES, out, |k, v| {
        Ok(Row::DigestIssue {
            list: k.to_string(),
            record: v.to_string(),
        })
    })
}

/// Secrets, distributed Message-IDs, DMARC reports and rate counters.
fn export_records(txn: &ReadTransaction, out: &Sender<Row>) -> Result<(), Fault> {
    for entry in txn.open_table(SECRETS)?.iter()? {
        let (name, value) = entry?;
        let row = Row::Secret {
            name: name.value().to_string(),
            value: value.value().to_vec(),
        };
        send(out, row)?;
    }
    each(txn, duplicates::SEEN, out, |k, v| {
        let (list, message_id) = two(k, "message-id")?;
        let (at, post) = two(v, "message-id")?;
        Ok(Row::Seen {
            list: list.to_string(),
            message_id: message_id.to_string(),
            post: number(post, "message-id's post")?,
            at: number(at, "message-id's time")?,
        })
    })?;
    each(txn, DMARC_REPORTS, out, |_, v| {
        Ok(Row::DmarcReport {
            record: v.to_string(),
        })
    })?;
    each(txn, rates::RATES, out, |k, v| {
        let (count, expires) = two(v, "rate counter")?;
        Ok(Row::Rate {
            key: k.to_string(),
            count: number(count, "rate counter")?,
            expires: number(expires, "rate counter's expiry")?,
        })
    })
}

/// The archive: posts with their bytes, search words, subjects, months, marks.
fn export_archive(txn: &ReadTransaction, out: &Sender<Row>) -> Result<(), Fault> {
    let raw = txn.open_table(archive::RAW)?;
    for entry in txn.open_table(archive::POSTS)?.iter()? {
        let (k, v) = entry?;
        let (list, _) = two(k.value(), "archived post")?;
        let row = Row::ArchivePost {
            list: list.to_string(),
            record: v.value().to_string(),
            raw: raw.get(k.value())?.map(|r| r.value().to_vec()),
        };
        send(out, row)?;
    }
    each(txn, archive::WORDS, out, |k, _| {
        let mut parts = k.splitn(4, '\n');
        let (Some(list), Some(word), Some(date), Some(id)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Fault::corrupt(format!("archive word key {k:?}")));
        };
        Ok(Row::ArchiveWord {
            list: list.to_string(),
            word: word.to_string(),
            date: number(date, "archive word's date")?,
            id: id.to_string(),
        })
    })?;
    each(txn, archive::SUBJECTS, out, |k, v| {
        let (list, subject) = two(k, "archive subject")?;
        let (list, subject, thread) = (list.to_string(), subject.to_string(), v.to_string());
        Ok(Row::ArchiveSubject {
            list,
            subject,
            thread,
        })
    })?;
    for entry in txn.open_table(archive::MONTHS)?.iter()? {
        let (k, v) = entry?;
        let (list, month) = two(k.value(), "archive month")?;
        let row = Row::ArchiveMonth {
            list: list.to_string(),
            month: month.to_string(),
            posts: v.value(),
        };
        send(out, row)?;
    }
    each(txn, archive::PENDING, out, |k, _| {
        let (spool, list) = two(k, "post to archive")?;
        Ok(Row::ArchivePending {
            spool: number(spool, "post to archive")?,
            list: list.to_string(),
        })
    })
}
