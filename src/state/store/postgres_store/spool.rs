//! The spool's rows: intake (committed before `250`), state changes with the node's claim,
//! taking over a dead node's messages, renewing claims, and pruning finished work.

use super::{Conn, int, parse, pg};
use crate::state::store::Fault;
use crate::state::store::{Pruned, Retention, SpoolEnvelope, SpoolId, SpoolMeta, SpoolState};
use deadpool_postgres::GenericClient;

/// The state's name in the `state` column (its JSON name).
pub(super) fn state_name(state: SpoolState) -> &'static str {
    match state {
        SpoolState::Received => "received",
        SpoolState::Authenticated => "authenticated",
        SpoolState::Held => "held",
        SpoolState::Queued => "queued",
        SpoolState::Approved => "approved",
        SpoolState::Done => "done",
        SpoolState::Rejected => "rejected",
        SpoolState::Discarded => "discarded",
    }
}

/// Metadata from its row; the `id` column is the one that counts.
fn meta_of(id: i64, json: &str) -> Result<SpoolMeta, Fault> {
    let mut meta: SpoolMeta = parse(json, &format!("metadata {id}"))?;
    meta.id = id as u64;
    Ok(meta)
}

/// Commits a received message, claimed by `node` until `until`; returns its id.
pub(super) async fn insert(
    c: &Conn,
    envelope: SpoolEnvelope,
    message: &[u8],
    node: &str,
    until: i64,
) -> Result<SpoolId, Fault> {
    let received_at = int(envelope.received_at);
    let meta = SpoolMeta {
        id: 0,
        envelope,
        state: SpoolState::Received,
        size: message.len(),
        auth_results: None,
        attempts: 0,
        note: None,
        facts: Default::default(),
    };
    let json = serde_json::to_string(&meta)?;
    let stmt = c
        .prepare_cached(
            "INSERT INTO spool (id, state, received_at, meta, data, node, lease_until)
             VALUES (nextval('spool_ids'), 'received', $1, $2, $3, $4, $5) RETURNING id",
        )
        .await
        .map_err(pg)?;
    let row = c
        .query_one(&stmt, &[&received_at, &json, &message, &node, &until])
        .await
        .map_err(pg)?;
    Ok(row.get::<_, i64>(0) as u64)
}

/// Every message's metadata, oldest first.
pub(super) async fn list(c: &Conn) -> Result<Vec<SpoolMeta>, Fault> {
    let rows = c
        .query("SELECT id, meta FROM spool ORDER BY id", &[])
        .await
        .map_err(pg)?;
    rows.iter().map(|r| meta_of(r.get(0), r.get(1))).collect()
}

/// One message's metadata and bytes (none once its bytes were pruned).
pub(super) async fn get(c: &Conn, id: SpoolId) -> Result<Option<(SpoolMeta, Vec<u8>)>, Fault> {
    let stmt = c
        .prepare_cached("SELECT meta, data FROM spool WHERE id = $1 AND data IS NOT NULL")
        .await
        .map_err(pg)?;
    let Some(row) = c.query_opt(&stmt, &[&(id as i64)]).await.map_err(pg)? else {
        return Ok(None);
    };
    Ok(Some((meta_of(id as i64, row.get(0))?, row.get(1))))
}

/// One message's metadata as stored, not decoded, and the size of its bytes (0 once pruned).
pub(super) async fn raw_meta(c: &Conn, id: SpoolId) -> Result<Option<(String, usize)>, Fault> {
    let row = c
        .query_opt(
            "SELECT meta, COALESCE(octet_length(data), 0) FROM spool WHERE id = $1",
            &[&(id as i64)],
        )
        .await
        .map_err(pg)?;
    Ok(row.map(|r| (r.get(0), r.get::<_, i32>(1) as usize)))
}

/// Writes `meta` (only while the stored state is `from`, when given). A message the pipeline
/// still works on stays claimed by `node`; a finished one is nobody's.
pub(super) async fn update(
    c: &impl GenericClient,
    meta: &SpoolMeta,
    from: Option<SpoolState>,
    node: &str,
    until: i64,
) -> Result<bool, Fault> {
    let json = serde_json::to_string(meta)?;
    let claimed = meta.state.unfinished();
    let until = if claimed { until } else { 0 };
    let from = from.map(state_name);
    let stmt = c
        .prepare_cached(
            "UPDATE spool SET meta = $2, state = $3, node = $4, lease_until = $5
             WHERE id = $1 AND ($6::TEXT IS NULL OR state = $6)",
        )
        .await
        .map_err(pg)?;
    let n = c
        .execute(
            &stmt,
            &[
                &(meta.id as i64),
                &json,
                &state_name(meta.state),
                &node,
                &until,
                &from,
            ],
        )
        .await
        .map_err(pg)?;
    Ok(n == 1)
}

/// Claims for `node` every unfinished message whose claim lapsed (or that nobody claimed).
/// Also returns, one per message, the nodes whose lapsed claims were taken.
pub(super) async fn take_unfinished(
    c: &Conn,
    node: &str,
    until: i64,
) -> Result<(Vec<SpoolId>, Vec<String>), Fault> {
    let now = crate::auth::unix_now() as i64;
    let rows = c
        .query(
            "UPDATE spool s SET node = $1, lease_until = $2
             FROM (SELECT id, node AS was, lease_until AS had FROM spool
                   WHERE state IN ('received', 'authenticated', 'approved') AND lease_until < $3
                   FOR UPDATE) t
             WHERE s.id = t.id
             RETURNING s.id, t.was, t.had",
            &[&node, &until, &now],
        )
        .await
        .map_err(pg)?;
    let mut ids: Vec<SpoolId> = rows.iter().map(|r| r.get::<_, i64>(0) as u64).collect();
    ids.sort_unstable();
    let lapsed = rows
        .iter()
        .filter_map(|r| super::deliveries::lapsed_from(r.get(1), r.get(2), node))
        .collect();
    Ok((ids, lapsed))
}

/// Gives up every claim `node` holds: at a graceful stop, so other nodes (or the node once
/// restarted) take the work at once.
pub(super) async fn release(pool: &deadpool_postgres::Pool, node: &str) -> Result<(), Fault> {
    let c = pool.get().await?;
    renew(&c, node, 0).await
}

/// Extends every claim `node` holds to `until` (0: gives them up). Rows a transaction is
/// writing at this moment are skipped, not waited for: that write ends their claim anyway, and
/// waiting could deadlock with it.
pub(super) async fn renew(c: &Conn, node: &str, until: i64) -> Result<(), Fault> {
    // Pages of recipients have no index on `node`, so a claim is written in place (migration
    // 7): a heartbeat reads every page of every post with work left, a few thousand rows for
    // a million recipients.
    for table in ["spool", "recipient_pages"] {
        c.execute(
            &format!(
                "UPDATE {table} SET lease_until = $2 WHERE ctid IN
                 (SELECT ctid FROM {table} WHERE node = $1 AND lease_until > 0
                  FOR UPDATE SKIP LOCKED)"
            ),
            &[&node, &until],
        )
        .await
        .map_err(pg)?;
    }
    Ok(())
}

/// Removes, at most `batch` messages at a time, what finished longer ago than `keep` says:
/// first every trace of the oldest, then the bytes of the next. Held and unfinished messages
/// are never touched (only finished states and finished posts are looked at).
pub(super) async fn prune(
    c: &mut Conn,
    now: u64,
    keep: Retention,
    batch: usize,
) -> Result<Pruned, Fault> {
    let records_cut = int(now.saturating_sub(keep.records));
    let raw_cut = int(now.saturating_sub(keep.raw));
    let limit = batch as i64;
    let tx = c.transaction().await.map_err(pg)?;
    let mut out = Pruned::default();
    let gone = tx
        .query(
            "WITH doomed AS (
                (SELECT id FROM spool WHERE state IN ('done', 'rejected', 'discarded')
                   AND received_at <= $1 ORDER BY received_at LIMIT $2)
                UNION
                (SELECT id FROM queue WHERE finished_at IS NOT NULL AND finished_at <= $1
                   ORDER BY finished_at LIMIT $2)
                LIMIT $2)
             DELETE FROM spool WHERE id IN (SELECT id FROM doomed) RETURNING id",
            &[&records_cut, &limit],
        )
        .await
        .map_err(pg)?;
    let ids: Vec<i64> = gone.iter().map(|r| r.get(0)).collect();
    // Pages and log rows of a finished post are removed when it settles; a record written
    // by a node that had not heard yet can be left behind, and goes with the post here.
    for table in ["queue", "recipient_pages", "recipient_log"] {
        tx.execute(&format!("DELETE FROM {table} WHERE id = ANY($1)"), &[&ids])
            .await
            .map_err(pg)?;
    }
    out.records = ids.len();
    let left = (batch - out.records.min(batch)) as i64;
    if left > 0 {
        let raw = tx
            .query(
                "WITH stale AS (
                    (SELECT id FROM spool WHERE state IN ('done', 'rejected', 'discarded')
                       AND data IS NOT NULL AND received_at <= $1 ORDER BY received_at LIMIT $2)
                    UNION
                    (SELECT id FROM queue WHERE finished_at IS NOT NULL AND data IS NOT NULL
                       AND finished_at <= $1 ORDER BY finished_at LIMIT $2)
                    LIMIT $2)
                 SELECT id FROM stale",
                &[&raw_cut, &left],
            )
            .await
            .map_err(pg)?;
        let ids: Vec<i64> = raw.iter().map(|r| r.get(0)).collect();
        tx.execute("UPDATE spool SET data = NULL WHERE id = ANY($1)", &[&ids])
            .await
            .map_err(pg)?;
        tx.execute(
            "UPDATE queue SET data = NULL, seven_bit = NULL WHERE id = ANY($1)",
            &[&ids],
        )
        .await
        .map_err(pg)?;
        out.raw = ids.len();
    }
    tx.commit().await.map_err(pg)?;
    out.more = out.records + out.raw >= batch;
    Ok(out)
}
