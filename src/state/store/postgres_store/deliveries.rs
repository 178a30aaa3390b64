//! The queue: signed posts, one record per recipient, the hot queue of posts with work left,
//! and the claims nodes take on recipients so no two deliver the same one.

use super::spool::state_name;
use super::{Conn, int, parse, pg};
use crate::state::store::Fault;
use crate::state::store::{
    Delivery, DeliveryState, DeliverySummary, Enqueued, PendingRecord, QueueEntry, QueueHead,
    Settled, SpoolId, SpoolMeta, StoredEntry,
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
}

pub(super) fn delivery_state(state: DeliveryState) -> &'static str {
    match state {
        DeliveryState::Pending => "pending",
        DeliveryState::Deferred => "deferred",
        DeliveryState::Delivered => "delivered",
        DeliveryState::Bounced => "bounced",
    }
}

/// Queues a post in one transaction: its entry and signed copy, a pending record per
/// recipient, its hot-queue head, the spool metadata, and the Message-ID for the duplicate
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
    let entry = serde_json::to_string(&q.entry)?;
    let stmt = tx
        .prepare_cached(
            "INSERT INTO queue (id, entry, data, seven_bit) VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING",
        )
        .await
        .map_err(pg)?;
    let fresh = tx
        .execute(&stmt, &[&id, &entry, &q.signed, &q.seven_bit])
        .await
        .map_err(pg)?
        == 1;
    if fresh {
        write_pending(&tx, &q.entry).await?;
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

/// A pending record for each recipient and the post's hot-queue head.
async fn write_pending(c: &impl GenericClient, entry: &QueueEntry) -> Result<(), Fault> {
    let mut addresses = Vec::with_capacity(entry.recipients.len());
    let mut records = Vec::with_capacity(entry.recipients.len());
    for address in &entry.recipients {
        addresses.push(address.to_ascii_lowercase());
        records.push(serde_json::to_string(&PendingRecord::of(address))?);
    }
    let stmt = c
        .prepare_cached(
            "INSERT INTO deliveries (id, address, record, state, next_attempt)
             SELECT $1, t.a, t.r, 'pending', 0 FROM unnest($2::TEXT[], $3::TEXT[]) AS t(a, r)
             ON CONFLICT DO NOTHING",
        )
        .await
        .map_err(pg)?;
    c.execute(&stmt, &[&(entry.id as i64), &addresses, &records])
        .await
        .map_err(pg)?;
    let head = entry.fresh_head();
    let json = serde_json::to_string(&head)?;
    c.execute(
        "INSERT INTO active (id, head) VALUES ($1, $2)
         ON CONFLICT (id) DO UPDATE SET head = EXCLUDED.head",
        &[&(entry.id as i64), &json],
    )
    .await
    .map_err(pg)?;
    Ok(())
}

/// Every recipient record of post `id`, by address.
pub(super) async fn all(c: &Conn, id: SpoolId) -> Result<Vec<Delivery>, Fault> {
    let rows = c
        .query(
            "SELECT record FROM deliveries WHERE id = $1 ORDER BY address",
            &[&(id as i64)],
        )
        .await
        .map_err(pg)?;
    rows.iter()
        .map(|r| parse(r.get(0), "delivery record"))
        .collect()
}

/// Writes recipient records of a post still in the hot queue; each ends its claim. A recipient
/// delivered or bounced stays so, and only the claim's holder (`node`) may put a recipient back
/// to waiting: a node whose claim lapsed must not undo what the node that took over recorded.
pub(super) async fn record(
    c: &impl GenericClient,
    id: SpoolId,
    records: &[Delivery],
    node: &str,
) -> Result<(), Fault> {
    if records.is_empty() {
        return Ok(());
    }
    // One row per address (the last record wins, as in the embedded store), in address
    // order, so concurrent writers lock rows in the same order.
    let mut by_address = std::collections::BTreeMap::new();
    for d in records {
        by_address.insert(d.address.to_ascii_lowercase(), d);
    }
    let mut addresses = Vec::with_capacity(by_address.len());
    let mut json = Vec::with_capacity(by_address.len());
    let mut states = Vec::with_capacity(by_address.len());
    let mut next = Vec::with_capacity(by_address.len());
    for (address, d) in by_address {
        addresses.push(address);
        json.push(serde_json::to_string(d)?);
        states.push(delivery_state(d.state));
        next.push(int(d.next_attempt));
    }
    // Only for a post with work left: a late record must not bring a finished post's
    // records back.
    let stmt = c
        .prepare_cached(
            "INSERT INTO deliveries (id, address, record, state, next_attempt)
             SELECT $1, t.a, t.r, t.s, t.n
             FROM unnest($2::TEXT[], $3::TEXT[], $4::TEXT[], $5::BIGINT[]) AS t(a, r, s, n)
             WHERE EXISTS (SELECT 1 FROM active WHERE id = $1)
             ON CONFLICT (id, address) DO UPDATE SET record = EXCLUDED.record,
               state = EXCLUDED.state, next_attempt = EXCLUDED.next_attempt,
               node = NULL, lease_until = 0
             WHERE deliveries.state IN ('pending', 'deferred')
               AND (EXCLUDED.state IN ('delivered', 'bounced')
                    OR deliveries.node IS NULL OR deliveries.node = $6)",
        )
        .await
        .map_err(pg)?;
    c.execute(
        &stmt,
        &[&(id as i64), &addresses, &json, &states, &next, &node],
    )
    .await
    .map_err(pg)?;
    Ok(())
}

/// Records a round's outcomes and settles the post, in one transaction: recounts what waits
/// (a recipient another node holds counts as due when its claim lapses), or, with nothing
/// left, compacts the records into a summary and takes the post out of the hot queue.
pub(super) async fn record_round(
    c: &mut Conn,
    id: SpoolId,
    records: Vec<Delivery>,
    node: &str,
) -> Result<Settled, Fault> {
    let tx = c.transaction().await.map_err(pg)?;
    record(&tx, id, &records, node).await?;
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
    // A claimed recipient is due when its claim lapses (its round records it before then).
    let stmt = tx
        .prepare_cached(
            "SELECT count(*) FILTER (WHERE state = 'pending'),
                    count(*) FILTER (WHERE state = 'deferred'),
                    min(GREATEST(next_attempt, lease_until))
             FROM deliveries WHERE id = $1 AND state IN ('pending', 'deferred')",
        )
        .await
        .map_err(pg)?;
    let counts = tx.query_one(&stmt, &[&key]).await.map_err(pg)?;
    let (pending, deferred): (i64, i64) = (counts.get(0), counts.get(1));
    let now = crate::auth::unix_now();
    if pending + deferred > 0 {
        let head = QueueHead {
            id,
            list: entry.list.clone(),
            mail_from: entry.mail_from.clone(),
            queued_at: entry.queued_at,
            next_due: counts.get::<_, Option<i64>>(2).unwrap_or(0).max(0) as u64,
            pending: pending as usize,
            deferred: deferred as usize,
        };
        let json = serde_json::to_string(&head)?;
        let stmt = tx
            .prepare_cached(
                "INSERT INTO active (id, head) VALUES ($1, $2)
                 ON CONFLICT (id) DO UPDATE SET head = EXCLUDED.head",
            )
            .await
            .map_err(pg)?;
        tx.execute(&stmt, &[&key, &json]).await.map_err(pg)?;
        tx.commit().await.map_err(pg)?;
        return Ok(Settled::Waiting(head));
    }
    let summary = summarize(&tx, key, now).await?;
    entry.summary = Some(summary.clone());
    let json = entry.to_json()?;
    tx.execute("DELETE FROM deliveries WHERE id = $1", &[&key])
        .await
        .map_err(pg)?;
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
    Ok(Settled::Finished(summary))
}

/// What is kept of a finished post: deliveries by destination class, the bounced records.
/// Delivered recipients are counted by domain in the database (a big fan-out's records are
/// not sent over to be dropped), and only the bounced ones are read.
async fn summarize(c: &impl GenericClient, id: i64, now: u64) -> Result<DeliverySummary, Fault> {
    let mut summary = DeliverySummary {
        finished_at: now,
        ..DeliverySummary::default()
    };
    // The domain is what follows the last '@' (none without one), as `metrics::destination`
    // reads it.
    let by_domain = c
        .query(
            "SELECT substring(address from '@([^@]*)$'), count(*) FROM deliveries
             WHERE id = $1 AND state = 'delivered' GROUP BY 1",
            &[&id],
        )
        .await
        .map_err(pg)?;
    for row in &by_domain {
        let domain: Option<&str> = row.get(0);
        let class = crate::base::metrics::destination_of_domain(domain.unwrap_or(""));
        *summary.delivered.entry(class.to_string()).or_default() += row.get::<_, i64>(1) as u64;
    }
    let bounced = c
        .query(
            "SELECT record FROM deliveries
             WHERE id = $1 AND state <> 'delivered' ORDER BY address",
            &[&id],
        )
        .await
        .map_err(pg)?;
    for row in &bounced {
        summary.bounced.push(parse(row.get(0), "delivery record")?);
    }
    Ok(summary)
}

/// Queue entries, by id (all, or just `id`), read as `T`: a [`QueueEntry`], or a
/// [`StoredEntry`] to leave the recipients unread.
pub(super) async fn entries<T: serde::de::DeserializeOwned>(
    c: &Conn,
    id: Option<SpoolId>,
) -> Result<Vec<T>, Fault> {
    let id = id.map(|i| i as i64);
    let rows = c
        .query(
            "SELECT entry FROM queue WHERE $1::BIGINT IS NULL OR id = $1 ORDER BY id",
            &[&id],
        )
        .await
        .map_err(pg)?;
    rows.iter()
        .map(|r| parse(r.get(0), "queue entry"))
        .collect()
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

/// Claims for `node`, until `until`, at most `limit` recipients of post `id` that are due at
/// `now` and that no live claim holds (this node's own included: it may be running other
/// rounds of the post); rows another node is claiming at this very moment are skipped, not
/// waited for.
pub(super) async fn claim(
    c: &Conn,
    id: SpoolId,
    (now, after, limit): (u64, &str, i64),
    node: &str,
    until: i64,
) -> Result<(Vec<Delivery>, Vec<String>), Fault> {
    // The claims each row had before, read in the same statement: a lapsed one (a lease,
    // over, of a node that never handed it back) is a takeover the node logs.
    // A lapsed claim is taken only once the database has been up for a whole lease: while it
    // was down (or restarting) no node could renew anything, and the holder may have
    // delivered those recipients and be waiting to record them (`delivery/unrecorded.rs`);
    // its heartbeat renews the claim within a third of a lease of the database's return.
    let lease = until.saturating_sub(int(now)).max(0);
    let stmt = c
        .prepare_cached(
            "UPDATE deliveries d SET node = $4, lease_until = $5
             FROM (SELECT address, node AS was, lease_until AS had FROM deliveries
                   WHERE id = $1 AND state IN ('pending', 'deferred')
                     AND next_attempt <= $2 AND lease_until < $2 AND address > $6
                     AND (lease_until = 0
                          OR extract(epoch FROM pg_postmaster_start_time()) < $2 - $7)
                   ORDER BY address LIMIT $3 FOR UPDATE SKIP LOCKED) due
             WHERE d.id = $1 AND d.address = due.address
             RETURNING d.record, due.was, due.had",
        )
        .await
        .map_err(pg)?;
    let rows = c
        .query(
            &stmt,
            &[
                &(id as i64),
                &int(now),
                &limit,
                &node,
                &until,
                &after,
                &lease,
            ],
        )
        .await
        .map_err(pg)?;
    let mut claimed = Vec::with_capacity(rows.len());
    let mut lapsed = Vec::new();
    for r in &rows {
        claimed.push(parse(r.get(0), "delivery record")?);
        if let Some(was) = lapsed_from(r.get(1), r.get(2), node) {
            lapsed.push(was);
        }
    }
    // In address order (byte order, as the column's "C" collation), whatever order the
    // UPDATE returned its rows in: the last one is where the next page starts.
    claimed.sort_by_cached_key(|d: &Delivery| d.address.to_ascii_lowercase());
    Ok((claimed, lapsed))
}

/// The node whose lapsed claim a row was, when it was another node's: a claim handed back
/// at a graceful stop has a lease of 0, one never made has no node.
pub(super) fn lapsed_from(was: Option<String>, had: i64, node: &str) -> Option<String> {
    was.filter(|w| had > 0 && w != node)
}
