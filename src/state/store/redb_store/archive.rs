//! The list archive in the embedded file. Every key starts with the list, so one list's posts
//! sort together; times are 20 digits so keys sort by time.

use super::RedbStore;
use crate::state::store::archive::{ArchivedPost, ArchivedRow, month_of};
use crate::state::store::roles::Archive;
use crate::state::store::{Fault, SpoolId, StoreError};
use redb::{ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

/// `list\nid` → the post's record, JSON.
pub(super) const POSTS: TableDefinition<&str, &str> = TableDefinition::new("archive_posts");
/// `list\nid` → the post's bytes.
pub(super) const RAW: TableDefinition<&str, &[u8]> = TableDefinition::new("archive_raw");
/// `list\ndate\nid` → `""`: posts by date.
const BY_DATE: TableDefinition<&str, &str> = TableDefinition::new("archive_by_date");
/// `list\nthread\ndate\nid` → `""`: each thread's posts by date.
const THREADS: TableDefinition<&str, &str> = TableDefinition::new("archive_threads");
/// `list\nsubject key` → the thread it started.
pub(super) const SUBJECTS: TableDefinition<&str, &str> = TableDefinition::new("archive_subjects");
/// `list\nword\ndate\nid` → `""`: the search index, newest last under each word.
pub(super) const WORDS: TableDefinition<&str, &str> = TableDefinition::new("archive_words");
/// `list\nid` → the post's words, one a line: what a removal takes out of [`WORDS`].
const POST_WORDS: TableDefinition<&str, &str> = TableDefinition::new("archive_post_words");
/// `list\nYYYY-MM` → posts in that month.
pub(super) const MONTHS: TableDefinition<&str, u64> = TableDefinition::new("archive_months");
/// `spool id\nlist` → `""`: posts marked to archive and not archived yet.
pub(super) const PENDING: TableDefinition<&str, &str> = TableDefinition::new("archive_pending");

/// The most postings of one word a search reads before it stops.
const SEARCH_SCAN: usize = 200_000;

/// Creates the archive's tables, so readers never meet a missing one.
pub(super) fn create_tables(txn: &WriteTransaction) -> Result<(), Fault> {
    txn.open_table(POSTS)?;
    txn.open_table(RAW)?;
    txn.open_table(BY_DATE)?;
    txn.open_table(THREADS)?;
    txn.open_table(SUBJECTS)?;
    txn.open_table(WORDS)?;
    txn.open_table(POST_WORDS)?;
    txn.open_table(MONTHS)?;
    txn.open_table(PENDING)?;
    Ok(())
}

fn key(list: &str, id: &str) -> String {
    format!("{list}\n{id}")
}

fn pending_key(list: &str, spool: SpoolId) -> String {
    format!("{spool:020}\n{list}")
}

/// The record in `json`, or a corrupt-record error naming it.
fn decode(json: &str, at: &str) -> Result<ArchivedPost, Fault> {
    serde_json::from_str(json)
        .map_err(|e| Fault::corrupt(format!("corrupt archive record {at:?}: {e}")))
}

/// Writes a new post and its indexes in `txn`; false when its id is there already.
fn insert(
    txn: &WriteTransaction,
    post: &ArchivedPost,
    raw: &[u8],
    words: &[String],
    subject_key: &str,
) -> Result<bool, Fault> {
    let (list, id) = (post.list.as_str(), post.id.as_str());
    if let Some(spool) = post.spool_id {
        txn.open_table(PENDING)?
            .remove(pending_key(list, spool).as_str())?;
    }
    let k = key(list, id);
    let mut posts = txn.open_table(POSTS)?;
    if posts.get(k.as_str())?.is_some() {
        return Ok(false);
    }
    posts.insert(k.as_str(), serde_json::to_string(post)?.as_str())?;
    txn.open_table(RAW)?.insert(k.as_str(), raw)?;
    let date = format!("{:020}", post.date);
    txn.open_table(BY_DATE)?
        .insert(format!("{list}\n{date}\n{id}").as_str(), "")?;
    txn.open_table(THREADS)?.insert(
        format!("{list}\n{}\n{date}\n{id}", post.thread).as_str(),
        "",
    )?;
    if !subject_key.is_empty() {
        let mut subjects = txn.open_table(SUBJECTS)?;
        let sk = key(list, subject_key);
        if subjects.get(sk.as_str())?.is_none() {
            subjects.insert(sk.as_str(), post.thread.as_str())?;
        }
    }
    let mut index = txn.open_table(WORDS)?;
    for word in words {
        index.insert(format!("{list}\n{word}\n{date}\n{id}").as_str(), "")?;
    }
    txn.open_table(POST_WORDS)?
        .insert(k.as_str(), words.join("\n").as_str())?;
    let mut months = txn.open_table(MONTHS)?;
    let mk = key(list, &month_of(post.date));
    let count = months.get(mk.as_str())?.map_or(0, |v| v.value());
    months.insert(mk.as_str(), count + 1)?;
    Ok(true)
}

/// Takes a post's bytes, words, subject and author out in `txn`, keeping its record as a
/// placeholder; false when there is none or it was removed already.
fn remove(txn: &WriteTransaction, list: &str, id: &str) -> Result<bool, Fault> {
    let k = key(list, id);
    let mut posts = txn.open_table(POSTS)?;
    let Some(json) = posts.get(k.as_str())?.map(|v| v.value().to_string()) else {
        return Ok(false);
    };
    let mut post = decode(&json, &k)?;
    if post.removed {
        return Ok(false);
    }
    let date = format!("{:020}", post.date);
    let words = txn
        .open_table(POST_WORDS)?
        .remove(k.as_str())?
        .map(|v| v.value().to_string())
        .unwrap_or_default();
    let mut index = txn.open_table(WORDS)?;
    for word in words.lines() {
        index.remove(format!("{list}\n{word}\n{date}\n{id}").as_str())?;
    }
    txn.open_table(RAW)?.remove(k.as_str())?;
    post.removed = true;
    post.subject.clear();
    post.author_name.clear();
    post.author_address.clear();
    posts.insert(k.as_str(), serde_json::to_string(&post)?.as_str())?;
    Ok(true)
}

impl RedbStore {
    /// The records of `ids` (`list\nid` keys), in that order, skipping any not there.
    fn archived_records(&self, keys: &[String]) -> Result<Vec<ArchivedPost>, StoreError> {
        let txn = self.db()?.begin_read().map_err(|e| self.err(e))?;
        let posts = txn.open_table(POSTS).map_err(|e| self.err(e))?;
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            if let Some(v) = posts.get(k.as_str()).map_err(|e| self.err(e))? {
                self.count_read();
                out.push(decode(v.value(), k).map_err(|e| self.err(e))?);
            }
        }
        Ok(out)
    }

    /// Keys `prefix...` of `table` from `start` (inclusive) up to the end of the prefix, at most
    /// `limit`, newest (last) first when `reverse`.
    fn archive_keys(
        &self,
        table: TableDefinition<&str, &str>,
        (prefix, start): (&str, &str),
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<String>, StoreError> {
        let txn = self.db()?.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(table).map_err(|e| self.err(e))?;
        // Every key under `prefix` sorts below `prefix` followed by the highest character.
        let end = format!("{prefix}\u{10ffff}");
        let range = table.range(start..end.as_str()).map_err(|e| self.err(e))?;
        let rows: Box<dyn Iterator<Item = _>> = if reverse {
            Box::new(range.rev())
        } else {
            Box::new(range)
        };
        let mut out = Vec::new();
        for row in rows.take(limit) {
            let (k, _) = row.map_err(|e| self.err(e))?;
            out.push(k.value().to_string());
        }
        Ok(out)
    }

    /// The post keys (`list\nid`) of index keys whose last field is the id.
    fn post_keys(list: &str, index_keys: &[String]) -> Vec<String> {
        index_keys
            .iter()
            .filter_map(|k| k.rsplit('\n').next())
            .map(|id| key(list, id))
            .collect()
    }

    fn search_blocking(
        &self,
        list: &str,
        words: &[String],
        limit: usize,
    ) -> Result<Vec<ArchivedPost>, StoreError> {
        let Some((first, rest)) = words.split_first() else {
            return Ok(Vec::new());
        };
        let txn = self.db()?.begin_read().map_err(|e| self.err(e))?;
        let index = txn.open_table(WORDS).map_err(|e| self.err(e))?;
        let prefix = format!("{list}\n{first}\n");
        let end = format!("{prefix}\u{10ffff}");
        let mut found = Vec::new();
        // The first word's postings from the newest; each must also be under every other word.
        for row in index
            .range(prefix.as_str()..end.as_str())
            .map_err(|e| self.err(e))?
            .rev()
            .take(SEARCH_SCAN)
        {
            let (k, _) = row.map_err(|e| self.err(e))?;
            let tail = &k.value()[prefix.len()..];
            let mut all = true;
            for word in rest {
                let other = format!("{list}\n{word}\n{tail}");
                if index
                    .get(other.as_str())
                    .map_err(|e| self.err(e))?
                    .is_none()
                {
                    all = false;
                    break;
                }
            }
            if all {
                found.push(tail.to_string());
                if found.len() >= limit {
                    break;
                }
            }
        }
        drop(index);
        drop(txn);
        let keys = Self::post_keys(list, &found);
        Ok(self
            .archived_records(&keys)?
            .into_iter()
            .filter(|p| !p.removed)
            .collect())
    }

    fn months_blocking(&self, list: &str) -> Result<Vec<(String, u64)>, StoreError> {
        let txn = self.db()?.begin_read().map_err(|e| self.err(e))?;
        let months = txn.open_table(MONTHS).map_err(|e| self.err(e))?;
        let prefix = format!("{list}\n");
        let end = format!("{prefix}\u{10ffff}");
        let mut out = Vec::new();
        for row in months
            .range(prefix.as_str()..end.as_str())
            .map_err(|e| self.err(e))?
            .rev()
        {
            let (k, v) = row.map_err(|e| self.err(e))?;
            out.push((k.value()[prefix.len()..].to_string(), v.value()));
        }
        Ok(out)
    }

    fn to_archive_blocking(&self, limit: usize) -> Result<Vec<(String, SpoolId)>, StoreError> {
        let txn = self.db()?.begin_read().map_err(|e| self.err(e))?;
        let pending = txn.open_table(PENDING).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in pending.iter().map_err(|e| self.err(e))?.take(limit) {
            let (k, _) = row.map_err(|e| self.err(e))?;
            let (spool, list) = k.value().split_once('\n').unwrap_or(("", ""));
            let spool = spool.parse().map_err(|_| {
                self.err(Fault::corrupt(format!(
                    "corrupt archive mark {:?}",
                    k.value()
                )))
            })?;
            out.push((list.to_string(), spool));
        }
        Ok(out)
    }
}

impl Archive for RedbStore {
    async fn put_archived(&self, rows: &[ArchivedRow]) -> Result<Vec<bool>, StoreError> {
        let rows = rows.to_vec();
        // Lost in a crash with its mark's clearing, it is archived again from the mark (an
        // import is run again).
        self.off_thread(move |s| {
            s.write_shared(false, move |txn| {
                rows.iter()
                    .map(|r| insert(txn, &r.post, &r.raw, &r.words, &r.subject_key))
                    .collect()
            })
        })
        .await
    }

    async fn archived(&self, list: &str, id: &str) -> Result<Option<ArchivedPost>, StoreError> {
        Ok(self.archived_records(&[key(list, id)])?.pop())
    }

    async fn archived_raw(&self, list: &str, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db()?.begin_read().map_err(|e| self.err(e))?;
        let raw = txn.open_table(RAW).map_err(|e| self.err(e))?;
        let k = key(list, id);
        let bytes = raw.get(k.as_str()).map_err(|e| self.err(e))?;
        Ok(bytes.map(|v| v.value().to_vec()))
    }

    async fn archived_between(
        &self,
        list: &str,
        from: u64,
        to: u64,
        after: Option<(u64, String)>,
        limit: usize,
    ) -> Result<Vec<ArchivedPost>, StoreError> {
        let prefix = format!("{list}\n");
        // Just past the page before's last key, or the month's first second.
        let start = match after {
            Some((date, id)) => format!("{prefix}{date:020}\n{id}\u{1}"),
            None => format!("{prefix}{from:020}"),
        };
        let end = format!("{prefix}{to:020}");
        let keys = self.archive_keys(BY_DATE, (&prefix, &start), limit, false)?;
        let keys: Vec<String> = keys.into_iter().filter(|k| *k < end).collect();
        self.archived_records(&Self::post_keys(list, &keys))
    }

    async fn archived_newest(
        &self,
        list: &str,
        limit: usize,
    ) -> Result<Vec<ArchivedPost>, StoreError> {
        let prefix = format!("{list}\n");
        let keys = self.archive_keys(BY_DATE, (&prefix, &prefix), limit, true)?;
        self.archived_records(&Self::post_keys(list, &keys))
    }

    async fn archived_thread(
        &self,
        list: &str,
        thread: &str,
        limit: usize,
    ) -> Result<Vec<ArchivedPost>, StoreError> {
        let prefix = format!("{list}\n{thread}\n");
        let keys = self.archive_keys(THREADS, (&prefix, &prefix), limit, false)?;
        self.archived_records(&Self::post_keys(list, &keys))
    }

    async fn archived_thread_by_subject(
        &self,
        list: &str,
        key_: &str,
    ) -> Result<Option<String>, StoreError> {
        let txn = self.db()?.begin_read().map_err(|e| self.err(e))?;
        let subjects = txn.open_table(SUBJECTS).map_err(|e| self.err(e))?;
        let k = key(list, key_);
        let thread = subjects.get(k.as_str()).map_err(|e| self.err(e))?;
        Ok(thread.map(|v| v.value().to_string()))
    }

    async fn archived_months(&self, list: &str) -> Result<Vec<(String, u64)>, StoreError> {
        self.months_blocking(list)
    }

    async fn archived_search(
        &self,
        list: &str,
        words: &[String],
        limit: usize,
    ) -> Result<Vec<ArchivedPost>, StoreError> {
        let (list, words) = (list.to_string(), words.to_vec());
        // A search may read many postings: off the runtime's threads.
        self.off_thread(move |s| s.search_blocking(&list, &words, limit))
            .await
    }

    async fn remove_archived(&self, list: &str, id: &str) -> Result<bool, StoreError> {
        let (list, id) = (list.to_string(), id.to_string());
        // An owner's takedown: on disk before they hear it is done.
        self.off_thread(move |s| s.write_shared(true, move |txn| remove(txn, &list, &id)))
            .await
    }

    async fn mark_to_archive(&self, list: &str, spool: SpoolId) -> Result<(), StoreError> {
        let k = pending_key(list, spool);
        // Lost in a crash, so is the queueing after it: the post is queued (and marked) again.
        self.off_thread(move |s| {
            s.write_shared(false, move |txn| {
                txn.open_table(PENDING)?.insert(k.as_str(), "")?;
                Ok(())
            })
        })
        .await
    }

    async fn to_archive(&self, limit: usize) -> Result<Vec<(String, SpoolId)>, StoreError> {
        self.to_archive_blocking(limit)
    }

    async fn archived_done(&self, list: &str, spool: SpoolId) -> Result<(), StoreError> {
        let k = pending_key(list, spool);
        self.off_thread(move |s| {
            s.write_shared(false, move |txn| {
                txn.open_table(PENDING)?.remove(k.as_str())?;
                Ok(())
            })
        })
        .await
    }
}
