//! A post's recipient records in the database: a page of them to a row, and a log of what
//! rounds recorded since the page was last written.
//!
//! A row per recipient cost the database about 30 µs a recipient (its insertion with two
//! indexes, the claim, the record, the count, the deletion, each with its WAL), twice what
//! the node itself spent on that recipient, so one database carried barely one node. Here
//! queueing writes one row per [`PAGE`] recipients (their records as a JSON array), a claim
//! leases whole pages, and the records of a round are appended as one log row per page they
//! touch, never rewriting the page. Settling reads each page with its log over it: once
//! every recipient is delivered or bounced, the pages and their logs go; while some still
//! wait, the logs are folded into their pages. Whatever reads a page reads its log with it,
//! so nothing sees a record late.

use super::{int, pg};
use crate::state::store::{Delivery, DeliveryState, DeliverySummary, Fault, SpoolId};
use deadpool_postgres::GenericClient;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

/// The most recipients a page holds. A node that claims fewer at a time queues smaller
/// pages: a claim takes whole pages.
pub(super) const PAGE: usize = 500;

/// Pages read per statement when a whole post is read (settling, `deliveries`).
const PAGES_READ: i64 = 64;
/// Pages of a post being queued written per statement: what is encoded at once.
const PAGES_WRITTEN: usize = 64;

/// A page of one post's records, with its log read over it.
pub(super) struct Page {
    /// Its lowest address (lowercase): the page holds the addresses from it up to the next
    /// page's.
    pub first: String,
    /// Its records, by lowercase address.
    pub records: BTreeMap<String, Delivery>,
    /// The node holding its claim, if any.
    pub node: Option<String>,
    /// Until when the claim holds (unix time; 0: handed back).
    pub lease_until: i64,
    /// The log rows read over it (none: it has no log), by sequence number.
    pub logged: Vec<i64>,
}

impl Page {
    fn new(
        first: String,
        blob: &[u8],
        (node, lease_until): (Option<String>, i64),
    ) -> Result<Self, Fault> {
        let mut page = Page {
            records: BTreeMap::new(),
            first,
            node,
            lease_until,
            logged: Vec::new(),
        };
        for d in decode(blob, &page.first)? {
            page.records.insert(d.address.to_ascii_lowercase(), d);
        }
        Ok(page)
    }

    /// Reads a logged record over the page's: a recipient delivered or bounced stays so, so
    /// a node whose claim lapsed cannot undo what the node that took over recorded.
    fn apply(&mut self, d: Delivery) {
        match self.records.entry(d.address.to_ascii_lowercase()) {
            Entry::Vacant(v) => {
                v.insert(d);
            }
            Entry::Occupied(mut o) => {
                if waiting(o.get()) {
                    o.insert(d);
                }
            }
        }
    }

    /// Its waiting recipients due at `now` (recorded deferred ones whose retry time came
    /// included).
    pub fn due(&self, now: u64) -> impl Iterator<Item = &Delivery> {
        self.records.values().filter(move |d| due_at(d, now))
    }

    /// Its recipients due at `now`, in address order, taken out of it.
    pub fn into_due(self, now: u64) -> impl Iterator<Item = Delivery> {
        self.records.into_values().filter(move |d| due_at(d, now))
    }

    /// The counts the claims read: records, pending, deferred; and when the first waiting
    /// one is due (0 with none).
    fn counts(&self) -> ([i32; 3], i64) {
        let count = |s: DeliveryState| self.records.values().filter(|d| d.state == s).count();
        let next_due = self
            .records
            .values()
            .filter(|d| waiting(d))
            .map(|d| d.next_attempt);
        let counts = [
            self.records.len(),
            count(DeliveryState::Pending),
            count(DeliveryState::Deferred),
        ];
        (counts.map(|n| n as i32), int(next_due.min().unwrap_or(0)))
    }

    /// Its records as stored.
    fn blob(&self) -> Result<Vec<u8>, Fault> {
        Ok(serde_json::to_vec(&Stored::of(self.records.values()))?)
    }
}

/// Reads the log row `seq` of the page `first` (`blob`) over that page in `pages` (in order
/// of their first address); a row of another page is left alone.
fn apply_log(pages: &mut [Page], first: &str, seq: i64, blob: &[u8]) -> Result<(), Fault> {
    if let Ok(at) = pages.binary_search_by(|p| p.first.as_str().cmp(first)) {
        for d in decode(blob, first)? {
            pages[at].apply(d);
        }
        pages[at].logged.push(seq);
    }
    Ok(())
}

/// Whether a record still waits for a delivery.
fn waiting(d: &Delivery) -> bool {
    matches!(d.state, DeliveryState::Pending | DeliveryState::Deferred)
}

/// Whether a record waits and its time has come at `now`.
fn due_at(d: &Delivery, now: u64) -> bool {
    waiting(d) && d.next_attempt <= now
}

/// Records as a page or a log row keeps them: a recipient not tried yet by its address
/// alone, a delivered one by its address, tries and reply, any other whole. Most records of
/// a fan-out are the first two, and the bytes are what the database spends its time on.
#[derive(Serialize, Deserialize, Default)]
struct Stored<'a> {
    #[serde(default, skip_serializing_if = "Vec::is_empty", borrow)]
    untried: Vec<std::borrow::Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", borrow)]
    delivered: Vec<(std::borrow::Cow<'a, str>, u32, std::borrow::Cow<'a, str>)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    records: Vec<Delivery>,
}

impl<'a> Stored<'a> {
    /// `records` in their stored form.
    fn of(records: impl IntoIterator<Item = &'a Delivery>) -> Self {
        let mut stored = Stored::default();
        for d in records {
            match d.state {
                DeliveryState::Pending
                    if d.attempts == 0 && d.next_attempt == 0 && d.last_reply.is_empty() =>
                {
                    stored.untried.push(d.address.as_str().into());
                }
                DeliveryState::Delivered if d.next_attempt == 0 => stored.delivered.push((
                    d.address.as_str().into(),
                    d.attempts,
                    d.last_reply.as_str().into(),
                )),
                _ => stored.records.push(d.clone()),
            }
        }
        stored
    }

    /// The records, the ones a later one may replace (waiting) first.
    fn into_records(self) -> impl Iterator<Item = Delivery> {
        let untried = self.untried.into_iter().map(|a| Delivery::pending(&a));
        let delivered = self
            .delivered
            .into_iter()
            .map(|(a, attempts, reply)| Delivery {
                address: a.into_owned(),
                state: DeliveryState::Delivered,
                attempts,
                next_attempt: 0,
                last_reply: reply.into_owned(),
            });
        untried.chain(self.records).chain(delivered)
    }
}

/// Records as stored; `first` names the page in the error.
fn decode(blob: &[u8], first: &str) -> Result<Vec<Delivery>, Fault> {
    let stored: Stored = serde_json::from_slice(blob)
        .map_err(|e| Fault::corrupt(format!("corrupt recipient page at {first:?}: {e}")))?;
    Ok(stored.into_records().collect())
}

/// A page to insert: its first address, records, how many, and the counts claims read.
struct NewPage {
    first: String,
    blob: Vec<u8>,
    /// Records, pending, deferred.
    counts: [i32; 3],
    next_due: i64,
}

/// Writes post `id`'s recipients as pending records, in pages of at most `size`, the same
/// address (whatever its case) once. A list's members come in address order, so the sort
/// costs a look at each; pages are written [`PAGES_WRITTEN`] a statement, so a million
/// recipients are not all encoded at once.
pub(super) async fn write_pending(
    c: &impl GenericClient,
    id: SpoolId,
    recipients: &[String],
    size: usize,
) -> Result<(), Fault> {
    let lower = |a: &&str, b: &&str| {
        let (a, b) = (a.bytes(), b.bytes());
        a.map(|c| c.to_ascii_lowercase())
            .cmp(b.map(|c| c.to_ascii_lowercase()))
    };
    let mut sorted: Vec<&str> = recipients.iter().map(String::as_str).collect();
    // Stable, so the first of two spellings of an address is the one kept.
    sorted.sort_by(lower);
    sorted.dedup_by(|later, first| later.eq_ignore_ascii_case(first));
    let size = size.clamp(1, PAGE);
    for statement in sorted.chunks(size * PAGES_WRITTEN) {
        let mut pages = Vec::with_capacity(statement.len().div_ceil(size));
        for chunk in statement.chunks(size) {
            let untried = chunk
                .iter()
                .map(|a| std::borrow::Cow::Borrowed(*a))
                .collect();
            let blob = serde_json::to_vec(&Stored {
                untried,
                ..Stored::default()
            })?;
            let n = chunk.len() as i32;
            pages.push(NewPage {
                first: chunk[0].to_ascii_lowercase(),
                blob,
                counts: [n, n, 0],
                next_due: 0,
            });
        }
        insert(c, id, pages).await?;
    }
    Ok(())
}

/// Writes records copied from an embedded store (`(lowercase address, JSON)`, in address
/// order) as pages of post `id`, each record as it was.
pub(super) async fn write_copied(
    c: &impl GenericClient,
    id: SpoolId,
    records: &[(String, String)],
) -> Result<(), Fault> {
    let mut pages = Vec::new();
    for chunk in records.chunks(PAGE) {
        let json: Vec<&str> = chunk.iter().map(|(_, r)| r.as_str()).collect();
        let blob = format!("{{\"records\":[{}]}}", json.join(",")).into_bytes();
        let page = Page::new(chunk[0].0.clone(), &blob, (None, 0))?;
        let (counts, next_due) = page.counts();
        pages.push(NewPage {
            first: page.first,
            blob,
            counts,
            next_due,
        });
    }
    insert(c, id, pages).await
}

/// Inserts `pages` of post `id`.
async fn insert(c: &impl GenericClient, id: SpoolId, pages: Vec<NewPage>) -> Result<(), Fault> {
    let (mut firsts, mut blobs, mut next_due) = (Vec::new(), Vec::new(), Vec::new());
    let mut counts: [Vec<i32>; 3] = Default::default();
    for page in pages {
        firsts.push(page.first);
        blobs.push(page.blob);
        for (to, n) in counts.iter_mut().zip(page.counts) {
            to.push(n);
        }
        next_due.push(page.next_due);
    }
    let stmt = c
        .prepare_cached(
            "INSERT INTO recipient_pages (id, first, records, size, pending, deferred, next_due)
             SELECT $1, t.f, t.r, t.s, t.p, t.d, t.n
             FROM unnest($2::TEXT[], $3::BYTEA[], $4::INT[], $5::INT[], $6::INT[], $7::BIGINT[])
               AS t(f, r, s, p, d, n)
             ON CONFLICT DO NOTHING",
        )
        .await
        .map_err(pg)?;
    let [sizes, pending, deferred] = &counts;
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 7] = [
        &(id as i64),
        &firsts,
        &blobs,
        sizes,
        pending,
        deferred,
        &next_due,
    ];
    c.execute(&stmt, &params).await.map_err(pg)?;
    Ok(())
}

/// The first address of every page of post `id`, in order: what tells which page an address
/// is on (they never change while the post has pages).
pub(super) async fn firsts(c: &impl GenericClient, id: SpoolId) -> Result<Vec<String>, Fault> {
    let stmt = c
        .prepare_cached("SELECT first FROM recipient_pages WHERE id = $1 ORDER BY first")
        .await
        .map_err(pg)?;
    let rows = c.query(&stmt, &[&(id as i64)]).await.map_err(pg)?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The page (its first address, from `firsts`) that `address` (lowercase) is on.
pub(super) fn page_of<'a>(firsts: &'a [String], address: &str) -> Option<&'a String> {
    let at = firsts.partition_point(|f| f.as_str() <= address);
    firsts.get(at.saturating_sub(1))
}

/// Appends `records` of post `id` to the logs of their pages (`firsts`), one row a page, if
/// the post still has work left: a late record must not bring a finished post back.
pub(super) async fn append(
    c: &impl GenericClient,
    id: SpoolId,
    records: &[Delivery],
    firsts: &[String],
) -> Result<(), Fault> {
    let mut by_page: BTreeMap<&String, Vec<&Delivery>> = BTreeMap::new();
    for d in records {
        if let Some(first) = page_of(firsts, &d.address.to_ascii_lowercase()) {
            by_page.entry(first).or_default().push(d);
        }
    }
    if by_page.is_empty() {
        return Ok(());
    }
    let mut pages = Vec::with_capacity(by_page.len());
    let mut blobs = Vec::with_capacity(by_page.len());
    for (first, records) in by_page {
        pages.push(first.as_str());
        blobs.push(serde_json::to_vec(&Stored::of(records))?);
    }
    let stmt = c
        .prepare_cached(
            "INSERT INTO recipient_log (id, first, records)
             SELECT $1, t.f, t.r FROM unnest($2::TEXT[], $3::BYTEA[]) AS t(f, r)
             WHERE EXISTS (SELECT 1 FROM active WHERE id = $1)",
        )
        .await
        .map_err(pg)?;
    c.execute(&stmt, &[&(id as i64), &pages, &blobs])
        .await
        .map_err(pg)?;
    Ok(())
}

/// Reads the logs of `pages` (of post `id`, in order of their first address) over them.
async fn read_logs(c: &impl GenericClient, id: SpoolId, pages: &mut [Page]) -> Result<(), Fault> {
    if pages.is_empty() {
        return Ok(());
    }
    let firsts: Vec<&str> = pages.iter().map(|p| p.first.as_str()).collect();
    let stmt = c
        .prepare_cached(
            "SELECT first, seq, records FROM recipient_log
             WHERE id = $1 AND first = ANY($2) ORDER BY seq",
        )
        .await
        .map_err(pg)?;
    let rows = c.query(&stmt, &[&(id as i64), &firsts]).await.map_err(pg)?;
    for row in &rows {
        apply_log(pages, row.get(0), row.get(1), row.get(2))?;
    }
    Ok(())
}

/// The next [`PAGES_READ`] pages of post `id` after first address `after`, with their logs;
/// `after` moves on to the last of them (none: the post's pages are all read).
async fn read_next(
    c: &impl GenericClient,
    id: SpoolId,
    after: &mut String,
) -> Result<Vec<Page>, Fault> {
    let stmt = c
        .prepare_cached(
            "SELECT first, records, node, lease_until FROM recipient_pages
             WHERE id = $1 AND first > $2 ORDER BY first LIMIT $3",
        )
        .await
        .map_err(pg)?;
    let rows = c
        .query(&stmt, &[&(id as i64), &*after, &PAGES_READ])
        .await
        .map_err(pg)?;
    let mut pages = Vec::with_capacity(rows.len());
    for r in &rows {
        pages.push(Page::new(r.get(0), r.get(1), (r.get(2), r.get(3)))?);
    }
    read_logs(c, id, &mut pages).await?;
    if let Some(last) = pages.last() {
        after.clone_from(&last.first);
    }
    Ok(pages)
}

/// Every record of post `id`, by address.
pub(super) async fn all(c: &impl GenericClient, id: SpoolId) -> Result<Vec<Delivery>, Fault> {
    let (mut out, mut after) = (Vec::new(), String::new());
    loop {
        let pages = read_next(c, id, &mut after).await?;
        if pages.is_empty() {
            return Ok(out);
        }
        out.extend(pages.into_iter().flat_map(|p| p.records.into_values()));
    }
}

/// Claims for `node`, until `until`, pages of post `id` after first address `after` with a
/// recipient due at `now` and no live claim (this node's own included), at most `pages`;
/// pages another node is claiming at this very moment are skipped, not waited for. Returns
/// the pages, their logs read over them, and the nodes whose lapsed claims were taken.
pub(super) async fn claim(
    c: &impl GenericClient,
    id: SpoolId,
    (now, after, pages): (u64, &str, i64),
    node: &str,
    until: i64,
) -> Result<(Vec<Page>, Vec<String>), Fault> {
    // A lapsed claim is taken only once the database has been up for a whole lease: while it
    // was down (or restarting) no node could renew anything, and the holder may have
    // delivered those recipients and be waiting to record them (`delivery/unrecorded.rs`);
    // its heartbeat renews the claim within a third of a lease of the database's return.
    let lease = until.saturating_sub(int(now)).max(0);
    // One statement, the pages' logs read with them: a claim whose answer is lost (the
    // database going away between two statements) is undone with it, rather than left held
    // by a node that does not know it holds it, which its heartbeat would renew for ever.
    let stmt = c
        .prepare_cached(
            "WITH claimed AS (
               UPDATE recipient_pages p SET node = $4, lease_until = $5
               FROM (SELECT first, node AS was, lease_until AS had FROM recipient_pages
                     WHERE id = $1 AND first > $6 AND pending + deferred > 0
                       AND next_due <= $2 AND lease_until < $2
                       AND (lease_until = 0
                            OR extract(epoch FROM pg_postmaster_start_time()) < $2 - $7)
                     ORDER BY first LIMIT $3 FOR UPDATE SKIP LOCKED) due
               WHERE p.id = $1 AND p.first = due.first
               RETURNING p.first, p.records, due.was, due.had)
             SELECT first, records, was, had, NULL::BIGINT AS seq FROM claimed
             UNION ALL
             SELECT l.first, l.records, NULL, 0, l.seq
             FROM recipient_log l JOIN claimed c ON l.id = $1 AND l.first = c.first
             ORDER BY seq NULLS FIRST",
        )
        .await
        .map_err(pg)?;
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 7] = [
        &(id as i64),
        &int(now),
        &pages,
        &node,
        &until,
        &after,
        &lease,
    ];
    let rows = c.query(&stmt, &params).await.map_err(pg)?;
    let (mut claimed, mut lapsed) = (Vec::new(), Vec::new());
    // The pages come first (their `seq` is NULL), then their logs in the order written.
    let logs = rows
        .iter()
        .filter_map(|r| Some((r, r.get::<_, Option<i64>>(4)?)));
    for r in rows.iter().filter(|r| r.get::<_, Option<i64>>(4).is_none()) {
        claimed.push(Page::new(
            r.get(0),
            r.get(1),
            (Some(node.to_string()), until),
        )?);
        if let Some(was) = super::deliveries::lapsed_from(r.get(2), r.get(3), node) {
            lapsed.push(was);
        }
    }
    claimed.sort_by(|a, b| a.first.cmp(&b.first));
    for (r, seq) in logs {
        apply_log(&mut claimed, r.get(0), seq, r.get(1))?;
    }
    Ok((claimed, lapsed))
}

/// What settling found in a post's pages: whether every recipient is settled, and if so,
/// its summary.
pub(super) async fn summary(
    c: &impl GenericClient,
    id: SpoolId,
    now: u64,
) -> Result<Option<DeliverySummary>, Fault> {
    let mut summary = DeliverySummary {
        finished_at: now,
        ..DeliverySummary::default()
    };
    let mut after = String::new();
    loop {
        let pages = read_next(c, id, &mut after).await?;
        if pages.is_empty() {
            summary
                .bounced
                .sort_by_cached_key(|d| d.address.to_ascii_lowercase());
            return Ok(Some(summary));
        }
        for page in pages {
            for d in page.records.into_values() {
                if waiting(&d) {
                    return Ok(None);
                }
                summary.add(d);
            }
        }
    }
}

/// Which of its claims on a post's pages a node ends when it settles the post.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Release {
    /// Those on pages with no recipient due: the node may still be delivering the others.
    Done,
    /// All: no round of the post runs on the node.
    All,
}

/// Folds the logs of post `id` into their pages (not those of pages another node holds:
/// it is still writing them) and ends `node`'s claims as `release` says; returns the
/// recipients pending and deferred, and when the first is due (a recipient a claim holds
/// counts as due when the claim lapses).
pub(super) async fn fold(
    c: &impl GenericClient,
    id: SpoolId,
    (node, ending): (&str, Release),
    now: u64,
) -> Result<(usize, usize, u64), Fault> {
    let (mut pending, mut deferred, mut next_due) = (0, 0, u64::MAX);
    let mut after = String::new();
    loop {
        let pages = read_next(c, id, &mut after).await?;
        if pages.is_empty() {
            return Ok((
                pending,
                deferred,
                if next_due == u64::MAX { 0 } else { next_due },
            ));
        }
        let mut writes = Writes::default();
        for page in &pages {
            let mine = page.node.as_deref() == Some(node);
            let live = page.node.is_some() && page.lease_until >= int(now);
            let release = mine && (ending == Release::All || page.due(now).next().is_none());
            let held = live && !release;
            if !page.logged.is_empty() && (mine || !live) {
                writes.fold(page, release)?;
            } else if release {
                writes.release(page);
            }
            for d in page.records.values().filter(|d| waiting(d)) {
                match d.state {
                    DeliveryState::Pending => pending += 1,
                    _ => deferred += 1,
                }
                let lease = if held {
                    page.lease_until.max(0) as u64
                } else {
                    0
                };
                next_due = next_due.min(d.next_attempt.max(lease));
            }
        }
        writes.run(c, id, node).await?;
    }
}

/// The pages one batch of a fold rewrites, and the claims it ends.
#[derive(Default)]
struct Writes {
    firsts: Vec<String>,
    blobs: Vec<Option<Vec<u8>>>,
    counts: [Vec<i32>; 3],
    next_due: Vec<i64>,
    release: Vec<bool>,
    /// The log rows folded into the pages rewritten: (page, sequence number).
    logged: (Vec<String>, Vec<i64>),
}

impl Writes {
    fn fold(&mut self, page: &Page, release: bool) -> Result<(), Fault> {
        let (counts, next_due) = page.counts();
        self.firsts.push(page.first.clone());
        self.blobs.push(Some(page.blob()?));
        for (to, n) in self.counts.iter_mut().zip(counts) {
            to.push(n);
        }
        self.next_due.push(next_due);
        self.release.push(release);
        for &seq in &page.logged {
            self.logged.0.push(page.first.clone());
            self.logged.1.push(seq);
        }
        Ok(())
    }

    fn release(&mut self, page: &Page) {
        self.firsts.push(page.first.clone());
        self.blobs.push(None);
        for to in &mut self.counts {
            to.push(0);
        }
        self.next_due.push(0);
        self.release.push(true);
    }

    /// Writes the batch: pages rewritten keep any claim but this node's ended one, and lose
    /// the log rows folded into them, those exactly: a row committed meanwhile may have a
    /// lower sequence number than one read (numbers are drawn before commits).
    async fn run(self, c: &impl GenericClient, id: SpoolId, node: &str) -> Result<(), Fault> {
        if self.firsts.is_empty() {
            return Ok(());
        }
        let stmt = c
            .prepare_cached(
                "UPDATE recipient_pages p SET
                   records = COALESCE(t.r, p.records),
                   size = CASE WHEN t.r IS NULL THEN p.size ELSE t.s END,
                   pending = CASE WHEN t.r IS NULL THEN p.pending ELSE t.pe END,
                   deferred = CASE WHEN t.r IS NULL THEN p.deferred ELSE t.de END,
                   next_due = CASE WHEN t.r IS NULL THEN p.next_due ELSE t.n END,
                   node = CASE WHEN t.rel AND p.node = $2 THEN NULL ELSE p.node END,
                   lease_until = CASE WHEN t.rel AND p.node = $2 THEN 0 ELSE p.lease_until END
                 FROM unnest($3::TEXT[], $4::BYTEA[], $5::INT[], $6::INT[], $7::INT[],
                             $8::BIGINT[], $9::BOOL[]) AS t(f, r, s, pe, de, n, rel)
                 WHERE p.id = $1 AND p.first = t.f",
            )
            .await
            .map_err(pg)?;
        let [sizes, pending, deferred] = &self.counts;
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 9] = [
            &(id as i64),
            &node,
            &self.firsts,
            &self.blobs,
            sizes,
            pending,
            deferred,
            &self.next_due,
            &self.release,
        ];
        c.execute(&stmt, &params).await.map_err(pg)?;
        if !self.logged.0.is_empty() {
            let stmt = c
                .prepare_cached(
                    "DELETE FROM recipient_log l USING unnest($2::TEXT[], $3::BIGINT[]) AS t(f, s)
                     WHERE l.id = $1 AND l.first = t.f AND l.seq = t.s",
                )
                .await
                .map_err(pg)?;
            c.execute(&stmt, &[&(id as i64), &self.logged.0, &self.logged.1])
                .await
                .map_err(pg)?;
        }
        Ok(())
    }
}

/// Removes every page and log row of post `id`.
pub(super) async fn remove(c: &impl GenericClient, id: SpoolId) -> Result<(), Fault> {
    for sql in [
        "DELETE FROM recipient_pages WHERE id = $1",
        "DELETE FROM recipient_log WHERE id = $1",
    ] {
        let stmt = c.prepare_cached(sql).await.map_err(pg)?;
        c.execute(&stmt, &[&(id as i64)]).await.map_err(pg)?;
    }
    Ok(())
}

/// Ends `node`'s claims on `pages` (by first address) of post `id`.
pub(super) async fn release(
    c: &impl GenericClient,
    id: SpoolId,
    node: &str,
    pages: &[String],
) -> Result<(), Fault> {
    c.execute(
        "UPDATE recipient_pages SET node = NULL, lease_until = 0
         WHERE id = $1 AND node = $2 AND first = ANY($3)",
        &[&(id as i64), &node, &pages],
    )
    .await
    .map_err(pg)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_on_the_page_whose_first_address_is_the_last_not_after_it() {
        let firsts: Vec<String> = ["b", "f", "m"].into_iter().map(String::from).collect();
        let on = |a: &str| page_of(&firsts, a).map(String::as_str);
        assert_eq!(on("b"), Some("b"));
        assert_eq!(on("e@x"), Some("b"));
        assert_eq!(on("f"), Some("f"));
        assert_eq!(on("zz"), Some("m"));
        // Below every page (a record written by hand): the first page takes it.
        assert_eq!(on("a"), Some("b"));
        assert_eq!(page_of(&[], "a"), None);
    }

    #[test]
    fn records_come_back_as_they_were_stored_whatever_their_state() {
        let mut deferred = Delivery::pending("c@x");
        (deferred.state, deferred.attempts, deferred.next_attempt) =
            (DeliveryState::Deferred, 1, 9);
        deferred.last_reply = "451 later".into();
        let mut delivered = Delivery::pending("D@x");
        (delivered.state, delivered.attempts) = (DeliveryState::Delivered, 2);
        delivered.last_reply = "250 ok".into();
        let mut bounced = delivered.clone();
        (bounced.address, bounced.state) = ("e@x".into(), DeliveryState::Bounced);
        let all = [Delivery::pending("a@X"), deferred, delivered, bounced];
        let blob = serde_json::to_vec(&Stored::of(&all)).expect("json");
        let mut back = decode(&blob, "a@x").expect("decode");
        back.sort_by(|a, b| a.address.cmp(&b.address));
        let mut want = all.to_vec();
        want.sort_by(|a, b| a.address.cmp(&b.address));
        assert_eq!(back, want);
        // A page copied or migrated from whole records reads the same.
        let whole = format!(
            "{{\"records\":{}}}",
            serde_json::to_string(&all).expect("json")
        );
        assert_eq!(decode(whole.as_bytes(), "a@x").expect("decode").len(), 4);
    }

    #[test]
    fn a_settled_recipient_stays_settled_whatever_is_logged_after() {
        let (a, b) = (Delivery::pending("A@x"), Delivery::pending("b@x"));
        let blob = serde_json::to_vec(&Stored::of([&a, &b])).expect("json");
        let mut page = Page::new("a@x".into(), &blob, (None, 0)).expect("page");
        let mut done = Delivery::pending("a@X");
        done.state = DeliveryState::Delivered;
        page.apply(done);
        let mut later = Delivery::pending("a@x");
        later.state = DeliveryState::Deferred;
        later.next_attempt = 60;
        page.apply(later.clone());
        page.apply(Delivery {
            address: "b@x".into(),
            ..later
        });
        let states: Vec<DeliveryState> = page.records.values().map(|d| d.state).collect();
        assert_eq!(states, [DeliveryState::Delivered, DeliveryState::Deferred]);
        assert_eq!(page.due(59).count(), 0);
        assert_eq!(page.due(60).count(), 1);
        let (counts, next_due) = page.counts();
        assert_eq!((counts, next_due), ([2, 0, 1], 60));
    }
}
