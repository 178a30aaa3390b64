//! The queue: signed posts, their recipients' records (in pages, `pages.rs`), the hot queue
//! of posts with work left, and the claims nodes take on pages of recipients so no two
//! deliver the same one.

use super::spool::state_name;
use super::{Conn, int, pages, parse, pg};
use crate::state::store::Fault;
use crate::state::store::{
    Delivery, Enqueued, QueueEntry, QueueHead, Settled, SpoolId, SpoolMeta, StoredEntry,
};
use deadpool_postgres::GenericClient;

/// A post to queue, with what [`crate::state::store::Store::enqueue_post`] writes beside it.
pub(super) struct Queued {
    pub meta: SpoolMeta,
    pub entry: QueueEntry,
    pub signed: Vec<u8>,
    pub seven_bit: Option<Vec<u8>>,
    /// The post's Message-ID and the start of its duplicate window.
    pub seen: Option<(String, u64)>,
    /// The most recipients a page of its records holds.
    pub page: usize,
}

/// Queues a post in one transaction: its entry and signed copy, pages of pending records, its
/// hot-queue head, the spool metadata, and the Message-ID for the duplicate
/// window. `spooled`: the node and lease of the message's spool row, whose metadata is written
/// (it stays claimed only while its state is unfinished); `None` for a message arclist wrote,
/// spooled here under a fresh id (returned).
/// Queueing the same post twice (two nodes that both took it) keeps the first; queueing
/// another post with a Message-ID the list distributed within the window writes nothing.
pub(super) async fn enqueue(
    c: &mut Conn,
    mut q: Queued,
    spooled: Option<(&str, i64)>,
) -> Result<(SpoolId, Enqueued), Fault> {
    // Committed durably: after a database crash the nodes live on, and a queueing lost then
    // would leave its message claimed by a node that believes it done.
    let tx = c.transaction().await.map_err(pg)?;
    // First, so a second node queueing the same post waits on the row's lock and then sees
    // the first one's: the duplicate check and the queueing are one commit.
    if let Some((mid, since)) = &q.seen
        && let Some(first) = claim_message_id(&tx, &q.entry, mid, *since).await?
    {
        return Ok((q.entry.id, Enqueued::DuplicateOf(first)));
    }
    if spooled.is_none() {
        let id: i64 = tx
            .query_one("SELECT nextval('spool_ids')", &[])
            .await
            .map_err(pg)?
            .get(0);
        (q.meta.id, q.entry.id, q.meta.size) = (id as u64, id as u64, q.signed.len());
        let json = serde_json::to_string(&q.meta)?;
        tx.execute(
            "INSERT INTO spool (id, state, received_at, meta, data) VALUES ($1, $2, $3, $4, $5)",
            &[
                &id,
                &state_name(q.meta.state),
                &int(q.meta.envelope.received_at),
                &json,
                &q.signed,
            ],
        )
        .await
        .map_err(pg)?;
    }
    let id = q.entry.id as i64;
    let head = q.entry.fresh_head();
    // The list of recipients in a column of its own: written once, read only by
    // `queue_entry`, never with the entry a fan-out reads and settling rewrites.
    let recipients = std::mem::take(&mut q.entry.recipients);
    let (entry, listed) = (
        serde_json::to_string(&q.entry)?,
        serde_json::to_string(&recipients)?,
    );
    let stmt = tx
        .prepare_cached(
            "INSERT INTO queue (id, entry, data, seven_bit, recipients) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT DO NOTHING",
        )
        .await
        .map_err(pg)?;
    let fresh = tx
        .execute(&stmt, &[&id, &entry, &q.signed, &q.seven_bit, &listed])
        .await
        .map_err(pg)?
        == 1;
    if fresh {
        pages::write_pending(&tx, q.entry.id, &recipients, q.page).await?;
        write_head(&tx, &head).await?;
    }
    if let Some((node, until)) = spooled {
        super::spool::update(&tx, &q.meta, None, node, until).await?;
    }
    tx.commit().await.map_err(pg)?;
    Ok((id as u64, Enqueued::Queued))
}

/// Records that the list distributes `entry` with `message_id`, unless another post has that
/// Message-ID at or after `since`: then that post's id, and nothing written.
async fn claim_message_id(
    tx: &impl GenericClient,
    entry: &QueueEntry,
    message_id: &str,
    since: u64,
) -> Result<Option<SpoolId>, Fault> {
    let (list, mid) = (
        entry.list.to_ascii_lowercase(),
        message_id.to_ascii_lowercase(),
    );
    let (id, now) = (entry.id as i64, crate::auth::unix_now() as i64);
    let claimed = tx
        .query_opt(
            "INSERT INTO seen (list, message_id, post, at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (list, message_id) DO UPDATE SET post = EXCLUDED.post, at = EXCLUDED.at
             WHERE seen.at < $5 OR seen.post = EXCLUDED.post
             RETURNING post",
            &[&list, &mid, &id, &now, &int(since)],
        )
        .await
        .map_err(pg)?;
    if claimed.is_some() {
        return Ok(None);
    }
    let first = tx
        .query_one(
            "SELECT post FROM seen WHERE list = $1 AND message_id = $2",
            &[&list, &mid],
        )
        .await
        .map_err(pg)?;
    Ok(Some(first.get::<_, i64>(0) as u64))
}

/// Records a round's outcomes (appended to the logs of their pages, `firsts`) and settles the
/// post, ending `node`'s claims as `release` says, in one transaction: with nothing left
/// waiting, keeps a summary of the records and removes them and the post's hot-queue head;
/// otherwise folds the logs into their pages and recounts what waits (a recipient another
/// node holds counts as due when its claim lapses).
pub(super) async fn record_round(
    c: &mut Conn,
    id: SpoolId,
    records: &[Delivery],
    (node, release): (&str, pages::Release),
    firsts: &[String],
) -> Result<Settled, Fault> {
    let tx = c.transaction().await.map_err(pg)?;
    pages::append(&tx, id, records, firsts).await?;
    let key = id as i64;
    // The post's row is the lock that makes two nodes' settling of one post take turns.
    let stmt = tx
        .prepare_cached("SELECT entry FROM queue WHERE id = $1 FOR UPDATE")
        .await
        .map_err(pg)?;
    let Some(row) = tx.query_opt(&stmt, &[&key]).await.map_err(pg)? else {
        return Ok(Settled::Unknown);
    };
    let mut entry: StoredEntry = parse(row.get(0), "queue entry")?;
    if let Some(summary) = entry.summary {
        // Another node finished it since this one looked: its summary stands.
        return Ok(Settled::Finished(summary));
    }
    let now = crate::auth::unix_now();
    if let Some(summary) = pages::summary(&tx, id, now).await? {
        entry.summary = Some(summary.clone());
        let json = entry.to_json()?;
        pages::remove(&tx, id).await?;
        tx.execute("DELETE FROM active WHERE id = $1", &[&key])
            .await
            .map_err(pg)?;
        tx.execute(
            "UPDATE queue SET entry = $2, finished_at = $3 WHERE id = $1",
            &[&key, &json, &int(now)],
        )
        .await
        .map_err(pg)?;
        tx.commit().await.map_err(pg)?;
        return Ok(Settled::Finished(summary));
    }
    let (pending, deferred, next_due) = pages::fold(&tx, id, (node, release), now).await?;
    let head = QueueHead {
        id,
        list: entry.list.clone(),
        mail_from: entry.mail_from.clone(),
        queued_at: entry.queued_at,
        next_due,
        pending,
        deferred,
    };
    write_head(&tx, &head).await?;
    tx.commit().await.map_err(pg)?;
    Ok(Settled::Waiting(head))
}

/// Writes a post's hot-queue head.
async fn write_head(c: &impl GenericClient, head: &QueueHead) -> Result<(), Fault> {
    let json = serde_json::to_string(head)?;
    let stmt = c
        .prepare_cached(
            "INSERT INTO active (id, head) VALUES ($1, $2)
             ON CONFLICT (id) DO UPDATE SET head = EXCLUDED.head",
        )
        .await
        .map_err(pg)?;
    c.execute(&stmt, &[&(head.id as i64), &json])
        .await
        .map_err(pg)?;
    Ok(())
}

/// Every queue entry, by id, without its recipients.
pub(super) async fn entries(c: &Conn) -> Result<Vec<StoredEntry>, Fault> {
    let rows = c
        .query("SELECT entry FROM queue ORDER BY id", &[])
        .await
        .map_err(pg)?;
    rows.iter()
        .map(|r| parse(r.get(0), "queue entry"))
        .collect()
}

/// Queue entry `id` with its recipients (kept apart since migration 7; in the entry before).
pub(super) async fn entry(c: &Conn, id: SpoolId) -> Result<Option<QueueEntry>, Fault> {
    let row = c
        .query_opt(
            "SELECT entry, recipients FROM queue WHERE id = $1",
            &[&(id as i64)],
        )
        .await
        .map_err(pg)?;
    let Some(row) = row else {
        return Ok(None);
    };
    let mut entry: QueueEntry = parse(row.get(0), "queue entry")?;
    if let Some(listed) = row.get::<_, Option<&str>>(1) {
        entry.recipients = parse(listed, "queue entry's recipients")?;
    }
    Ok(Some(entry))
}

/// The hot queue, oldest first.
pub(super) async fn active(c: &Conn) -> Result<Vec<QueueHead>, Fault> {
    let stmt = c
        .prepare_cached("SELECT head FROM active ORDER BY id")
        .await
        .map_err(pg)?;
    let rows = c.query(&stmt, &[]).await.map_err(pg)?;
    rows.iter().map(|r| parse(r.get(0), "queue head")).collect()
}

/// One queued post and its signed copy (none once its bytes were pruned).
pub(super) async fn queued(c: &Conn, id: SpoolId) -> Result<Option<(QueueEntry, Vec<u8>)>, Fault> {
    let stmt = c
        .prepare_cached("SELECT entry, data FROM queue WHERE id = $1 AND data IS NOT NULL")
        .await
        .map_err(pg)?;
    let Some(row) = c.query_opt(&stmt, &[&(id as i64)]).await.map_err(pg)? else {
        return Ok(None);
    };
    let entry: StoredEntry = parse(row.get(0), "queue entry")?;
    Ok(Some((entry.without_recipients(), row.get(1))))
}

/// Claims for `node`, until `until`, whole pages of post `id` after address `after` until
/// they hold at least `limit` recipients due at `now` (or no page is left); returns those
/// recipients, in address order, and the nodes whose lapsed claims were taken. A page with
/// fewer recipients due than records (some recorded, or deferred) stays claimed until the
/// post is settled; another node would find nothing in it either.
pub(super) async fn claim(
    c: &Conn,
    id: SpoolId,
    (now, after, limit): (u64, &str, usize),
    node: &str,
    until: i64,
) -> Result<(Vec<Delivery>, Vec<String>), Fault> {
    let wanted = (limit / pages::PAGE).max(1);
    let (mut due, mut lapsed) = (Vec::new(), Vec::new());
    let mut after = after.to_string();
    loop {
        let claim = pages::claim(c, id, (now, &after, wanted as i64), node, until).await;
        let (claimed, was) = match claim {
            Ok(claimed) => claimed,
            // What the statements before took is claimed: it is handed out, and the next
            // claim meets the fault again.
            Err(_) if !due.is_empty() => return Ok((due, lapsed)),
            Err(e) => return Err(e),
        };
        lapsed.extend(was);
        let got = claimed.len();
        for page in claimed {
            after.clone_from(&page.first);
            due.extend(page.into_due(now));
        }
        if got < wanted || due.len() >= limit {
            return Ok((due, lapsed));
        }
    }
}

/// The node whose lapsed claim a row was, when it was another node's: a claim handed back
/// at a graceful stop has a lease of 0, one never made has no node.
pub(super) fn lapsed_from(was: Option<String>, had: i64, node: &str) -> Option<String> {
    was.filter(|w| had > 0 && w != node)
}
