//! Queueing a post on the embedded store: its pending records, its entry and, for a list post,
//! the reading of the members it goes to.
//!
//! A list's members are read on one thread while their records are written on another: the
//! two took 15 and 14 ms one after the other for 10,000 members (a quarter of a second for
//! 100,000), all of it before the first copy could leave, with the second core idle. Side by
//! side the start costs the longer of the two.

use super::{RECORDS_PER_COMMIT, RedbStore, digests, duplicates, write_pending, write_queued};
use crate::state::store::roles::tally;
use crate::state::store::{
    Enqueued, Fault, QueueEntry, SeenWindow, SpoolId, SpoolMeta, StoreError,
};
use redb::ReadableDatabase;
use std::sync::Arc;
use std::sync::mpsc::sync_channel;

/// Members read at a time: the first page is read before anything is written, so it is
/// small; a list of fewer members is queued in one commit.
const READ_PAGE: usize = 1_024;
/// Records written a commit while the members are read: enough that commits stay a small
/// part of the work, few enough that the writing keeps up with the reading.
const WRITE_CHUNK: usize = 1_024;
/// Pages read ahead of the writing at most (memory: a few thousand addresses).
const PAGES_AHEAD: usize = 4;

/// What queues a post: its spool metadata and entry, its signed copy and 7-bit twin, and its
/// Message-ID with the start of the duplicate window.
pub(crate) struct Queueing {
    /// The post's spool metadata, with the state the caller set (queued).
    pub meta: SpoolMeta,
    /// Its queue entry; for a list post its recipients are filled in from the members.
    pub entry: QueueEntry,
    /// The signed copy the members' copies are made from.
    pub signed: Vec<u8>,
    /// The 7-bit twin of an 8-bit copy.
    pub seven_bit: Option<Vec<u8>>,
    /// The post's Message-ID and the start of the duplicate window.
    pub seen: Option<(String, u64)>,
}

impl Queueing {
    /// Owned copies of what the Queue role's callers lend.
    pub fn new(
        meta: &SpoolMeta,
        entry: QueueEntry,
        signed: &[u8],
        seven_bit: Option<&[u8]>,
        seen: Option<SeenWindow<'_>>,
    ) -> Self {
        Queueing {
            meta: meta.clone(),
            entry,
            signed: signed.to_vec(),
            seven_bit: seven_bit.map(<[u8]>::to_vec),
            seen: seen.map(|w| (w.message_id.to_string(), w.since)),
        }
    }
}

impl RedbStore {
    /// [`crate::state::store::Store::enqueue_for_members`] on the embedded store.
    pub(crate) async fn enqueue_for_members(
        &self,
        q: Queueing,
        today: &str,
    ) -> Result<(Enqueued, usize), StoreError> {
        let today = today.to_string();
        self.off_thread(move |s| s.enqueue_for_members_blocking(q, &today))
            .await
    }

    /// Queues `q`, whose entry names its recipients. A large post's pending records go first,
    /// a batch a commit: lost in a crash, they are written again when the post is queued
    /// again from the spool.
    pub(super) fn enqueue_post_blocking(&self, q: Queueing) -> Result<Enqueued, StoreError> {
        if self.already_queued(&q)? {
            return Ok(Enqueued::Queued);
        }
        if q.entry.recipients.len() <= RECORDS_PER_COMMIT {
            return self.queue_commit(q, true, false);
        }
        if let Some(first) = self.duplicate_before(&q)? {
            return Ok(Enqueued::DuplicateOf(first));
        }
        for chunk in q.entry.recipients.chunks(RECORDS_PER_COMMIT) {
            let (id, chunk) = (q.entry.id, chunk.to_vec());
            self.write_shared(false, move |txn| write_pending(txn, id, &chunk))?;
        }
        self.queue_commit(q, false, false)
    }

    /// Queues `q` for the members of its list who get posts on `today` (its entry's
    /// recipients are filled in from them) and, when any of them takes the digest, adds the
    /// post to the list's digest in the same commit. Returns what became of it and how many
    /// recipients it was queued for.
    pub(super) fn enqueue_for_members_blocking(
        &self,
        mut q: Queueing,
        today: &str,
    ) -> Result<(Enqueued, usize), StoreError> {
        if self.already_queued(&q)? {
            return Ok((Enqueued::Queued, 0));
        }
        let list = q.entry.list.clone();
        let mut digest = false;
        let (firsts, after) = self.recipients_after(&list, "", today, &mut digest)?;
        let Some(after) = after else {
            // An earlier try of a larger list, cut short by a crash, may have left records.
            self.compact_leftovers(q.entry.id)?;
            q.entry.recipients = firsts;
            let n = q.entry.recipients.len();
            return self.queue_commit(q, true, digest).map(|done| (done, n));
        };
        if let Some(first) = self.duplicate_before(&q)? {
            return Ok((Enqueued::DuplicateOf(first), 0));
        }
        let id = q.entry.id;
        let (rest_digest, recipients) = std::thread::scope(|scope| {
            let (pages, read) = sync_channel(PAGES_AHEAD);
            let (from, of) = (after.clone(), list.as_str());
            // The sender moves in, so the pages end when the reader does.
            let reader = std::thread::Builder::new()
                .name("arclist-members".into())
                .spawn_scoped(scope, move || {
                    self.read_recipients(of, from, today, |page| pages.send(page).is_ok())
                });
            let reader = match reader {
                Ok(reader) => reader,
                // No thread to spare: read first, then write (slower, as it was).
                Err(e) => {
                    let why = "cannot start a thread to read members; reading them first";
                    tracing::warn!(list = %list, error = %e, "{why}");
                    let mut all = Vec::new();
                    let digest = self.read_recipients(&list, after, today, |page| {
                        all.push(page);
                        true
                    })?;
                    return Ok((digest, self.write_as_read(id, firsts, all)?));
                }
            };
            // The reader ends when this stops taking pages (the receiver dropped on return).
            let written = self.write_as_read(id, firsts, read);
            let digest = reader.join().unwrap_or_else(|_| {
                Err(self.err(Fault::other(format!(
                    "reading the members of {list} failed (a panic)"
                ))))
            });
            Ok::<_, StoreError>((digest?, written?))
        })?;
        q.entry.recipients = recipients;
        let n = q.entry.recipients.len();
        self.queue_commit(q, false, digest || rest_digest)
            .map(|done| (done, n))
    }

    /// Reads `list`'s members after `after` a page at a time and hands the addresses of those
    /// who get posts on `today` to `take`, until there are no more or it takes no more (says
    /// false); returns whether any of them takes the digest.
    fn read_recipients(
        &self,
        list: &str,
        mut after: String,
        today: &str,
        mut take: impl FnMut(Vec<String>) -> bool,
    ) -> Result<bool, StoreError> {
        let mut digest = false;
        loop {
            let (page, next) = self.recipients_after(list, &after, today, &mut digest)?;
            if !take(page) {
                return Ok(digest);
            }
            match next {
                Some(next) => after = next,
                None => return Ok(digest),
            }
        }
    }

    /// One page of [`READ_PAGE`] members of `list` after `after`: the addresses of those who
    /// get posts on `today` (`digest` set when one takes the digest), and the address to read
    /// on from when the page was full.
    fn recipients_after(
        &self,
        list: &str,
        after: &str,
        today: &str,
        digest: &mut bool,
    ) -> Result<(Vec<String>, Option<String>), StoreError> {
        let (mut page, mut seen) = (Vec::with_capacity(READ_PAGE), 0);
        let last = self.visit_members_after(list, after, READ_PAGE, |member| {
            seen += 1;
            page.extend(tally(member, today, digest));
        })?;
        Ok((page, last.filter(|_| seen >= READ_PAGE)))
    }

    /// Writes the pending records of post `id`'s recipients as their pages come, a chunk a
    /// commit; returns every address written, in order.
    fn write_as_read(
        &self,
        id: SpoolId,
        mut chunk: Vec<String>,
        pages: impl IntoIterator<Item = Vec<String>>,
    ) -> Result<Vec<String>, StoreError> {
        let mut pages = pages.into_iter();
        let mut written: Vec<Arc<Vec<String>>> = Vec::new();
        let mut open = true;
        while open {
            match pages.next() {
                Some(page) => chunk.extend(page),
                None => open = false,
            }
            if chunk.len() >= WRITE_CHUNK || (!open && !chunk.is_empty()) {
                let records = Arc::new(std::mem::take(&mut chunk));
                let these = records.clone();
                self.write_shared(false, move |txn| write_pending(txn, id, &these))?;
                written.push(records);
            }
        }
        // Sized once: a million addresses are not copied again and again as a list grows.
        let mut all = Vec::with_capacity(written.iter().map(|c| c.len()).sum());
        for chunk in written {
            // The commits are done with their copies of the chunks.
            all.extend(Arc::try_unwrap(chunk).unwrap_or_else(|c| c.as_ref().clone()));
        }
        Ok(all)
    }

    /// Another post of the list distributed with `q`'s Message-ID within the window, looked up
    /// before records are written a batch at a time (a list's posts are queued one at a time,
    /// so it holds; the queueing commit checks again). Records an earlier try left (a crash
    /// between its batches), which may name members who have left since, go first.
    fn duplicate_before(&self, q: &Queueing) -> Result<Option<SpoolId>, StoreError> {
        self.compact_leftovers(q.entry.id)?;
        if let Some((mid, since)) = &q.seen
            && let Some(first) = self.distributed_blocking(&q.entry.list, mid, *since)?
            && first != q.entry.id
        {
            return Ok(Some(first));
        }
        Ok(None)
    }

    /// Whether `q`'s post is queued already: a message run twice by the pipeline (fed at a
    /// start and by its lane at once) must not have its records, some of them delivered, made
    /// pending again or removed as leftovers. Its first queueing stands.
    fn already_queued(&self, q: &Queueing) -> Result<bool, StoreError> {
        let txn = self.db()?.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(super::QUEUE).map_err(|e| self.err(e))?;
        let queued = table.get(q.entry.id).map_err(|e| self.err(e))?.is_some();
        if queued {
            let (id, list) = (q.entry.id, &q.entry.list);
            tracing::warn!(id, list = %list, "post already queued; not queued again");
        }
        Ok(queued)
    }

    /// Removes the records of post `id` that an earlier try of its queueing left, if any
    /// (looked for first: a post queued for the first time costs no commit).
    fn compact_leftovers(&self, id: SpoolId) -> Result<(), StoreError> {
        let txn = self.db()?.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(super::DELIVERIES).map_err(|e| self.err(e))?;
        let (first, end) = super::delivery_range(id);
        let any = (table.range(first.as_str()..end.as_str()))
            .map_err(|e| self.err(e))?
            .next()
            .is_some();
        drop((table, txn));
        if any {
            self.compact_records(id)
        } else {
            Ok(())
        }
    }

    /// The commit that queues `q`: its entry, copy, head and spool metadata, its pending
    /// records `with_records` (or they were written before), the post in its list's digest
    /// when `digest`, and its Message-ID; nothing when the Message-ID was taken meanwhile.
    /// Lost in a crash, it is queued again from the spool (and the Message-ID with it).
    fn queue_commit(
        &self,
        q: Queueing,
        with_records: bool,
        digest: bool,
    ) -> Result<Enqueued, StoreError> {
        let id = q.entry.id;
        let now = crate::auth::unix_now();
        let done = self.write_shared(false, move |txn| {
            // Checked in the commit that queues: two sessions given the same post at once
            // queue it once.
            if let Some((mid, since)) = &q.seen
                && let Some(first) = duplicates::seen_in(txn, &q.entry.list, mid, *since)?
                && first != id
            {
                return Ok(Enqueued::DuplicateOf(first));
            }
            write_queued(txn, &q.meta, &q.entry, &q.signed, with_records)?;
            if let Some(twin) = &q.seven_bit {
                txn.open_table(super::QUEUE_SEVEN_BIT)?
                    .insert(id, twin.as_slice())?;
            }
            if digest {
                digests::add_in(txn, &q.entry.list, id, &q.signed)?;
            }
            if let Some((mid, _)) = &q.seen {
                duplicates::remember(txn, &q.entry.list, mid, id, now)?;
            }
            Ok(Enqueued::Queued)
        })?;
        match done {
            Enqueued::Queued => self.inner.queued.notify_one(),
            // Another post took the Message-ID in between: its records are not this post's.
            Enqueued::DuplicateOf(_) if !with_records => self.compact_records(id)?,
            Enqueued::DuplicateOf(_) => {}
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::store::roles::Spool;
    use crate::state::store::{Member, SpoolEnvelope, SpoolState};

    async fn spool(store: &RedbStore) -> SpoolId {
        let envelope = SpoolEnvelope::local(vec!["l@lists.example".into()], "lists.example", 1);
        let message = b"Subject: x\r\n\r\nbody\r\n".to_vec();
        store.spool(envelope, message).await.expect("spool")
    }

    fn queueing(store: &RedbStore, list: &str, id: SpoolId) -> Queueing {
        let (mut meta, _) = store.get_blocking(id).expect("read").expect("spooled");
        meta.state = SpoolState::Queued;
        let entry = QueueEntry {
            id,
            list: list.into(),
            mail_from: "l-bounces@lists.example".into(),
            recipients: Vec::new(),
            queued_at: 1,
            summary: None,
            plain: false,
        };
        Queueing::new(&meta, entry, b"signed", None, None)
    }

    /// A queueing cut short by a crash left records of members who have left since; the list
    /// is now small enough for one commit, and the retry from the spool still removes them:
    /// the post goes to the members there are, and only to them.
    #[tokio::test]
    async fn a_retry_drops_the_records_a_crashed_try_left() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = RedbStore::open(&dir.path().join("s.redb")).expect("open");
        let list = "l@lists.example";
        let id = spool(&store).await;
        let gone: Vec<String> = (0..3).map(|i| format!("gone{i}@x.example")).collect();
        store
            .write_shared(false, move |txn| write_pending(txn, id, &gone))
            .expect("first try's records");
        let stayed = Member {
            address: "stayed@x.example".into(),
            ..Member::default()
        };
        store
            .add_members_blocking(list, &[stayed])
            .expect("members");
        let (done, n) = store
            .enqueue_for_members_blocking(queueing(&store, list, id), "2026-12-07")
            .expect("queued");
        assert_eq!((done, n), (Enqueued::Queued, 1));
        let records: Vec<String> = (store.deliveries_blocking(id).expect("records").into_iter())
            .map(|d| d.address)
            .collect();
        assert_eq!(records, ["stayed@x.example"]);
    }

    /// The same post queued a second time (the pipeline ran it twice) changes nothing: the
    /// copy already delivered stays delivered, nobody is made pending again.
    #[tokio::test]
    async fn a_post_queued_twice_keeps_its_first_queueing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = RedbStore::open(&dir.path().join("s.redb")).expect("open");
        let list = "l@lists.example";
        let id = spool(&store).await;
        let members: Vec<Member> = ["a@x.example", "b@x.example"]
            .map(|address| Member {
                address: address.into(),
                ..Member::default()
            })
            .to_vec();
        store.add_members_blocking(list, &members).expect("members");
        let today = "2026-12-07";
        let first = store.enqueue_for_members_blocking(queueing(&store, list, id), today);
        assert_eq!(first.expect("queued"), (Enqueued::Queued, 2));
        let delivered = crate::state::store::Delivery {
            state: crate::state::store::DeliveryState::Delivered,
            ..crate::state::store::Delivery::pending("a@x.example")
        };
        store
            .record_deliveries_blocking(id, &[delivered])
            .expect("delivered");
        let again = store.enqueue_for_members_blocking(queueing(&store, list, id), today);
        assert_eq!(again.expect("queued"), (Enqueued::Queued, 0));
        let states: Vec<_> = (store.deliveries_blocking(id).expect("records").into_iter())
            .map(|d| (d.address, d.state))
            .collect();
        assert_eq!(
            states,
            [
                (
                    "a@x.example".to_string(),
                    crate::state::store::DeliveryState::Delivered
                ),
                (
                    "b@x.example".to_string(),
                    crate::state::store::DeliveryState::Pending
                )
            ]
        );
    }
}
