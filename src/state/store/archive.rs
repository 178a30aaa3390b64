//! The list archive: each distributed post's list copy as members got it, kept by list and a
//! stable archive id, with what the pages, feeds and search need beside it (Message-ID, date,
//! subject, author, thread). Both backends implement [`super::roles::Archive`]; what they mean
//! alike (threading a new post, the words of a search) is written here, once.
//!
//! An archive id is made from the list and the post's Message-ID ([`archive_id`]), so it is
//! known before the copy is signed (its `Archived-At` field names it), it is the same on every
//! node, and an import of a post already archived finds it instead of adding it twice.

use super::roles::Archive;
use super::{SpoolId, Store, StoreError};
use serde::{Deserialize, Serialize};

/// One archived post's record (its bytes are kept beside it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchivedPost {
    /// The list's posting address, lower-cased.
    pub list: String,
    /// Its archive id ([`archive_id`]): 16 lower-case hex digits.
    pub id: String,
    /// Its Message-ID, with the angle brackets.
    pub message_id: String,
    /// Unix time of its Date field (of its arrival when that is missing or absurd).
    pub date: u64,
    /// Its subject, decoded; empty once removed.
    pub subject: String,
    /// Its author's display name, decoded; empty once removed.
    pub author_name: String,
    /// Its author's address; empty once removed.
    pub author_address: String,
    /// The archived post it answers, when that one is archived.
    pub parent: Option<String>,
    /// The archive id of its thread's first post (its own id when it starts one).
    pub thread: String,
    /// Size of its bytes.
    pub size: usize,
    /// Removed by an owner: a placeholder in its thread, nothing of it kept but this record.
    #[serde(default)]
    pub removed: bool,
    /// The spooled post it was archived from, for posts archived as the list distributed them.
    #[serde(default)]
    pub spool_id: Option<SpoolId>,
}

impl ArchivedPost {
    /// Its month, `YYYY-MM` (UTC).
    pub fn month(&self) -> String {
        month_of(self.date)
    }
}

/// A post to archive: its record (its `parent` and `thread` are found by
/// [`Store::archive_post`]), what it answers, its bytes and its words.
#[derive(Debug, Clone)]
pub struct NewArchivedPost {
    /// The record; `parent` and `thread` are filled in when archived.
    pub post: ArchivedPost,
    /// The Message-IDs it answers (In-Reply-To first, then References from the newest).
    pub answers: Vec<String>,
    /// Its bytes, as members got them.
    pub raw: Vec<u8>,
    /// The text searched: subject, author and body ([`words`] makes the index from it).
    pub text: String,
}

/// The stable archive id of the post of `list` with `message_id`: the first 64 bits of
/// SHA-256 over both, in hex.
pub fn archive_id(list: &str, message_id: &str) -> String {
    let key = format!(
        "{}\n{}",
        list.to_ascii_lowercase(),
        message_id.trim().to_ascii_lowercase()
    );
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, key.as_bytes());
    digest.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `id` has the shape of an archive id (what a URL may name).
pub fn is_archive_id(id: &str) -> bool {
    id.len() == 16
        && id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// The most words one post adds to the index; the rest of a long post is not searched.
pub const MAX_WORDS: usize = 2000;
/// The most words a search may name.
pub const MAX_QUERY_WORDS: usize = 8;

/// The words of `text` the search index keeps and a query names: runs of letters and digits,
/// lower-cased, 2 to 32 characters, each once, at most `limit`.
pub fn words(text: &str, limit: usize) -> Vec<String> {
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for word in text.split(|c: char| !c.is_alphanumeric()) {
        let count = word.chars().count();
        if !(2..=32).contains(&count) {
            continue;
        }
        let word = word.to_lowercase();
        if seen.insert(word.clone()) {
            out.push(word);
            if out.len() >= limit {
                break;
            }
        }
    }
    out
}

/// A subject as threads match it: without `Re:`/`Fwd:`/`AW:` prefixes and `[tags]`,
/// whitespace folded, lower-cased; and whether it had a reply prefix.
pub fn subject_key(subject: &str) -> (String, bool) {
    let mut rest = subject.trim();
    let mut reply = false;
    loop {
        let lower = rest.to_ascii_lowercase();
        if let Some(end) = rest.starts_with('[').then(|| rest.find(']')).flatten() {
            rest = rest[end + 1..].trim_start();
            continue;
        }
        let prefix = ["re:", "fwd:", "fw:", "aw:", "sv:", "antw:"]
            .iter()
            .find(|p| lower.starts_with(*p));
        match prefix {
            Some(p) => {
                reply = true;
                rest = rest[p.len()..].trim_start();
            }
            None => break,
        }
    }
    let key = rest.split_whitespace().collect::<Vec<_>>().join(" ");
    (key.to_lowercase(), reply)
}

/// `YYYY-MM` of unix time `t` (UTC).
pub fn month_of(t: u64) -> String {
    let (y, m, _) = civil((t / 86_400) as i64);
    format!("{y:04}-{m:02}")
}

/// The unix times a month `YYYY-MM` starts and ends at, when it is one.
pub fn month_bounds(month: &str) -> Option<(u64, u64)> {
    let (y, m) = month.split_once('-')?;
    if y.len() != 4 || m.len() != 2 {
        return None;
    }
    let (y, m): (i64, i64) = (y.parse().ok()?, m.parse().ok()?);
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) {
        return None;
    }
    let start = days_from_civil(y, m, 1) * 86_400;
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    let end = days_from_civil(ny, nm, 1) * 86_400;
    Some((start as u64, end as u64))
}

/// The civil date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
pub fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Runs `$call` on whichever backend `$store` is.
macro_rules! each {
    ($store:expr, $s:ident => $call:expr) => {
        match $store {
            Store::Redb($s) => $call,
            Store::Postgres($s) => $call,
        }
    };
}

/// A post as a backend writes it: the record with its place in its thread, its bytes, its
/// search words, and its subject key (empty: none).
#[derive(Debug, Clone)]
pub struct ArchivedRow {
    /// The record.
    pub post: ArchivedPost,
    /// Its bytes.
    pub raw: Vec<u8>,
    /// Its words ([`words`]).
    pub words: Vec<String>,
    /// Its subject key ([`subject_key`]).
    pub subject_key: String,
}

/// The posts of one batch placed so far, so that a reply finds a post of the same batch.
#[derive(Default)]
struct Batch {
    /// By `list\nid`.
    posts: std::collections::HashMap<String, ArchivedPost>,
    /// Thread by `list\nsubject key`.
    subjects: std::collections::HashMap<String, String>,
}

impl Store {
    /// Archives `new` unless its list has its id already; finds its place in a thread first
    /// (the newest post it answers that is archived, else, for a reply, the thread of the
    /// same subject). Clears the post's mark ([`Store::mark_to_archive`]) in the same commit.
    /// Returns the record as kept and whether it was new.
    pub async fn archive_post(
        &self,
        new: NewArchivedPost,
    ) -> Result<(ArchivedPost, bool), StoreError> {
        let mut out = self.archive_posts(vec![new]).await?;
        out.pop()
            .ok_or_else(|| StoreError::new(super::ErrorKind::Other, "archive", "nothing archived"))
    }

    /// [`Store::archive_post`] for many posts, in one commit (an import): a post may answer
    /// one earlier in the same batch.
    pub async fn archive_posts(
        &self,
        batch: Vec<NewArchivedPost>,
    ) -> Result<Vec<(ArchivedPost, bool)>, StoreError> {
        let mut placed = Batch::default();
        let mut rows = Vec::with_capacity(batch.len());
        let mut out = Vec::with_capacity(batch.len());
        for new in batch {
            let list = new.post.list.clone();
            let key = format!("{list}\n{}", new.post.id);
            let kept = match placed.posts.get(&key) {
                Some(p) => Some(p.clone()),
                None => self.archived(&list, &new.post.id).await?,
            };
            if let Some(kept) = kept {
                if let Some(spool) = new.post.spool_id {
                    self.archived_done(&list, spool).await?;
                }
                out.push((kept, false));
                continue;
            }
            let row = self.place(new, &placed).await?;
            placed.posts.insert(key, row.post.clone());
            if !row.subject_key.is_empty() {
                placed
                    .subjects
                    .entry(format!("{list}\n{}", row.subject_key))
                    .or_insert_with(|| row.post.thread.clone());
            }
            out.push((row.post.clone(), true));
            rows.push(row);
        }
        let added = each!(self, s => Archive::put_archived(s, &rows).await)?;
        // A post another node archived meanwhile was not written again.
        let mut written = added.into_iter();
        for (_, new) in out.iter_mut().filter(|(_, new)| *new) {
            *new = written.next().unwrap_or(false);
        }
        Ok(out)
    }

    /// `new` with its place in its thread, as a row to write.
    async fn place(
        &self,
        mut new: NewArchivedPost,
        batch: &Batch,
    ) -> Result<ArchivedRow, StoreError> {
        let list = new.post.list.clone();
        let (key, reply) = subject_key(&new.post.subject);
        let mut place = None;
        for answered in new.answers.iter().take(20) {
            let id = archive_id(&list, answered);
            let parent = match batch.posts.get(&format!("{list}\n{id}")) {
                Some(p) => Some(p.clone()),
                None => self.archived(&list, &id).await?,
            };
            if let Some(parent) = parent {
                place = Some((parent.id, parent.thread));
                break;
            }
        }
        if place.is_none() && reply && !key.is_empty() {
            let thread = match batch.subjects.get(&format!("{list}\n{key}")) {
                Some(t) => Some(t.clone()),
                None => self.archived_thread_by_subject(&list, &key).await?,
            };
            place = thread.map(|t| (t.clone(), t));
        }
        let (parent, thread) = place
            .map(|(p, t)| (Some(p), t))
            .unwrap_or_else(|| (None, new.post.id.clone()));
        new.post.parent = parent;
        new.post.thread = thread;
        let words = words(&new.text, MAX_WORDS);
        Ok(ArchivedRow {
            post: new.post,
            raw: new.raw,
            words,
            subject_key: key,
        })
    }

    /// Archived post `id` of `list`.
    pub async fn archived(&self, list: &str, id: &str) -> Result<Option<ArchivedPost>, StoreError> {
        each!(self, s => Archive::archived(s, &list.to_ascii_lowercase(), id).await)
    }

    /// The bytes of archived post `id` of `list` (none once removed).
    pub async fn archived_raw(&self, list: &str, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        each!(self, s => Archive::archived_raw(s, &list.to_ascii_lowercase(), id).await)
    }

    /// At most `limit` posts of `list` dated from `from` to before `to`, by date then id,
    /// after `after` (a post's `(date, id)`: the page before ended there).
    pub async fn archived_between(
        &self,
        list: &str,
        (from, to): (u64, u64),
        after: Option<(u64, String)>,
        limit: usize,
    ) -> Result<Vec<ArchivedPost>, StoreError> {
        let list = list.to_ascii_lowercase();
        each!(self, s => Archive::archived_between(s, &list, from, to, after, limit).await)
    }

    /// The newest `limit` posts of `list`, newest first.
    pub async fn archived_newest(
        &self,
        list: &str,
        limit: usize,
    ) -> Result<Vec<ArchivedPost>, StoreError> {
        each!(self, s => Archive::archived_newest(s, &list.to_ascii_lowercase(), limit).await)
    }

    /// At most `limit` posts of thread `thread` of `list`, by date.
    pub async fn archived_thread(
        &self,
        list: &str,
        thread: &str,
        limit: usize,
    ) -> Result<Vec<ArchivedPost>, StoreError> {
        let list = list.to_ascii_lowercase();
        each!(self, s => Archive::archived_thread(s, &list, thread, limit).await)
    }

    /// The thread of `list` whose posts have subject key `key` ([`subject_key`]).
    pub async fn archived_thread_by_subject(
        &self,
        list: &str,
        key: &str,
    ) -> Result<Option<String>, StoreError> {
        let list = list.to_ascii_lowercase();
        each!(self, s => Archive::archived_thread_by_subject(s, &list, key).await)
    }

    /// The months `list` has posts in (`YYYY-MM`), newest first, with how many.
    pub async fn archived_months(&self, list: &str) -> Result<Vec<(String, u64)>, StoreError> {
        each!(self, s => Archive::archived_months(s, &list.to_ascii_lowercase()).await)
    }

    /// At most `limit` posts of `list` whose subject, author or body has every word of
    /// `query` ([`words`]), newest first; none when the query has no word.
    pub async fn archived_search(
        &self,
        list: &str,
        query: &str,
        limit: usize,
    ) -> Result<Vec<ArchivedPost>, StoreError> {
        let asked = words(query, MAX_QUERY_WORDS);
        if asked.is_empty() {
            return Ok(Vec::new());
        }
        let list = list.to_ascii_lowercase();
        each!(self, s => Archive::archived_search(s, &list, &asked, limit).await)
    }

    /// Removes archived post `id` of `list` for good: its bytes, its words, its subject and
    /// author go; a record stays as its thread's placeholder (and keeps an import from adding
    /// it again). False when there is no such post or it was removed already.
    pub async fn remove_archived(&self, list: &str, id: &str) -> Result<bool, StoreError> {
        each!(self, s => Archive::remove_archived(s, &list.to_ascii_lowercase(), id).await)
    }

    /// Marks spooled post `spool` of `list` as to be archived, before it is queued: if the
    /// archiving after the queueing fails, [`Store::to_archive`] still names it.
    pub async fn mark_to_archive(&self, list: &str, spool: SpoolId) -> Result<(), StoreError> {
        each!(self, s => Archive::mark_to_archive(s, &list.to_ascii_lowercase(), spool).await)
    }

    /// At most `limit` marked posts ([`Store::mark_to_archive`]) not archived yet, oldest
    /// first: `(list, spool id)`.
    pub async fn to_archive(&self, limit: usize) -> Result<Vec<(String, SpoolId)>, StoreError> {
        each!(self, s => Archive::to_archive(s, limit).await)
    }

    /// Clears the mark of post `spool` of `list` (archived, or never to be).
    pub async fn archived_done(&self, list: &str, spool: SpoolId) -> Result<(), StoreError> {
        each!(self, s => Archive::archived_done(s, &list.to_ascii_lowercase(), spool).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_round_trip_through_their_bounds() {
        assert_eq!(month_of(0), "1970-01");
        assert_eq!(
            month_bounds("2026-12"),
            Some((1_796_083_200, 1_798_761_600))
        );
        assert_eq!(month_of(1_798_761_599), "2026-12");
        assert_eq!(month_of(1_798_761_600), "2027-01");
        assert_eq!(month_bounds("2026-13"), None);
        assert_eq!(month_bounds("26-01"), None);
    }

    #[test]
    fn subjects_match_without_reply_prefixes_and_tags() {
        assert_eq!(
            subject_key("Re: [list] AW:  Meeting   notes"),
            ("meeting notes".to_string(), true)
        );
        assert_eq!(
            subject_key("Meeting notes"),
            ("meeting notes".to_string(), false)
        );
    }

    #[test]
    fn words_are_lower_cased_once_each() {
        assert_eq!(
            words("Hello, hello wörld! a x1 <script>", 10),
            vec!["hello", "wörld", "x1", "script"]
        );
        assert_eq!(archive_id("L@x", " <A@b> "), archive_id("l@x", "<a@b>"));
        assert!(is_archive_id(&archive_id("l@x", "<a@b>")));
    }
}
