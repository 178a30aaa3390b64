//! The life cycle of queued work in the redb store: the hot queue (`ACTIVE`) that delivery
//! reads, compaction of a finished post's per-recipient records, and pruning after the
//! retention periods, in bounded batches.

use super::{ACTIVE, DATA, DELIVERIES, META, QUEUE, QUEUE_DATA, QUEUE_SEVEN_BIT};
use crate::state::store::Fault;
use crate::state::store::{
    DeliveryState, DeliverySummary, Pruned, QueueEntry, QueueHead, Retention, Settled, SpoolMeta,
    SpoolState, StoredEntry,
};
use redb::{ReadableTable, WriteTransaction};

/// Recounts post `id`'s waiting recipients within `txn`; see [`crate::state::store::Store::settle`].
pub(super) fn settle(txn: &WriteTransaction, id: u64, now: u64) -> Result<Settled, Fault> {
    let mut queue = txn.open_table(QUEUE)?;
    let Some(json) = queue.get(id)?.map(|v| v.value().to_string()) else {
        return Ok(Settled::Unknown);
    };
    let mut entry = StoredEntry::parse(&json, &format!("queue entry {id}"))?;
    if let Some(summary) = entry.summary {
        // Finished already: settling again must not replace its summary with an empty one.
        return Ok(Settled::Finished(summary));
    }
    // The log read over the records, not folded into them: a post that finishes here has
    // its records removed next, and writing them first would be work thrown away.
    let logged = super::record_log::overlay(&txn.open_table(super::record_log::LOG)?, id, "")?;
    let deliveries = txn.open_table(DELIVERIES)?;
    let mut head = QueueHead {
        id,
        list: entry.list.clone(),
        mail_from: entry.mail_from.clone(),
        queued_at: entry.queued_at,
        next_due: u64::MAX,
        pending: 0,
        deferred: 0,
    };
    let mut summary = DeliverySummary {
        finished_at: now,
        ..DeliverySummary::default()
    };
    let (prefix, end) = super::delivery_range(id);
    for row in deliveries.range(prefix.as_str()..end.as_str())? {
        let (k, v) = row?;
        let d = super::record_log::newest(&logged, (&prefix, k.value()), v.value())?;
        match d.state {
            DeliveryState::Pending => head.pending += 1,
            DeliveryState::Deferred => head.deferred += 1,
            DeliveryState::Delivered | DeliveryState::Bounced => {
                summary.add(d);
                continue;
            }
        }
        head.next_due = head.next_due.min(d.next_attempt);
    }
    let mut active = txn.open_table(ACTIVE)?;
    if head.pending + head.deferred > 0 {
        let json = serde_json::to_string(&head)?;
        active.insert(id, json.as_str())?;
        // Waiting: the next round reads its records from the table again.
        drop(deliveries);
        super::record_log::fold(txn, id)?;
        return Ok(Settled::Waiting(head));
    }
    // The records themselves go in the same commit, or a batch a commit after it for a large
    // post (the store's `settle_compacting`; the layout-2 upgrade leaves them for pruning):
    // with the summary written they are no longer read.
    active.remove(id)?;
    entry.summary = Some(summary.clone());
    queue.insert(id, entry.to_json()?.as_str())?;
    Ok(Settled::Finished(summary))
}

/// What may go of one spooled message, given its metadata and queue entry.
#[derive(Debug, PartialEq, Eq)]
enum Fate {
    /// Keep everything.
    Keep,
    /// Remove the raw bytes (spooled and signed), keep the records.
    Raw,
    /// Remove every trace.
    All,
}

/// The unix time a message's work finished, if it has: for a queued post, when its last
/// recipient was settled; for anything else arclist is done with, when it arrived.
fn finished_at(meta: &SpoolMeta, entry: Option<&QueueEntry>) -> Option<u64> {
    match meta.state {
        SpoolState::Queued => entry
            .and_then(|e| e.summary.as_ref())
            .map(|s| s.finished_at),
        SpoolState::Done | SpoolState::Rejected | SpoolState::Discarded => {
            Some(meta.envelope.received_at)
        }
        // Held posts wait for a moderator; the others still have work to do.
        SpoolState::Held
        | SpoolState::Received
        | SpoolState::Authenticated
        | SpoolState::Approved => None,
    }
}

fn fate(meta: &SpoolMeta, entry: Option<&QueueEntry>, now: u64, keep: Retention) -> Fate {
    match finished_at(meta, entry) {
        Some(at) if at.saturating_add(keep.records) <= now => Fate::All,
        Some(at) if at.saturating_add(keep.raw) <= now => Fate::Raw,
        _ => Fate::Keep,
    }
}

/// One bounded pruning batch within `txn`; see [`crate::state::store::Store::prune`].
pub(super) fn prune(
    txn: &WriteTransaction,
    now: u64,
    keep: Retention,
    batch: usize,
) -> Result<Pruned, Fault> {
    let mut meta_table = txn.open_table(META)?;
    let mut data = txn.open_table(DATA)?;
    let mut queue = txn.open_table(QUEUE)?;
    let mut queue_data = txn.open_table(QUEUE_DATA)?;
    let mut seven_bit = txn.open_table(QUEUE_SEVEN_BIT)?;
    let mut deliveries = txn.open_table(DELIVERIES)?;
    // Ids grow with arrival time, and nothing finishes before it arrives: the scan stops at the
    // first message too young for the shorter retention.
    let youngest = now.saturating_sub(keep.raw.min(keep.records));
    let mut decided = Vec::new();
    let mut out = Pruned::default();
    for row in meta_table.iter()? {
        let (k, v) = row?;
        let id = k.value();
        let meta: SpoolMeta = serde_json::from_str(v.value())
            .map_err(|e| Fault::corrupt(format!("corrupt metadata {id}: {e}")))?;
        if meta.envelope.received_at > youngest {
            break;
        }
        let entry = match queue.get(id)? {
            Some(q) => Some(
                StoredEntry::parse(q.value(), &format!("queue entry {id}"))?.without_recipients(),
            ),
            None => None,
        };
        match fate(&meta, entry.as_ref(), now, keep) {
            Fate::Keep => {}
            // Already without its bytes: nothing to do until its records expire.
            Fate::Raw if data.get(id)?.is_none() => {}
            f => decided.push((id, f)),
        }
        if decided.len() >= batch {
            out.more = true;
            break;
        }
    }
    for (id, f) in decided {
        data.remove(id)?;
        queue_data.remove(id)?;
        seven_bit.remove(id)?;
        if f == Fate::All {
            meta_table.remove(id)?;
            queue.remove(id)?;
            // Records a compaction cut short by a crash left (none, normally).
            let (from, to) = super::delivery_range(id);
            deliveries.retain_in(from.as_str()..to.as_str(), |_, _| false)?;
            super::record_log::remove(txn, id)?;
            out.records += 1;
        } else {
            out.raw += 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::store::SpoolEnvelope;

    fn meta(state: SpoolState, received_at: u64) -> SpoolMeta {
        SpoolMeta {
            id: 1,
            envelope: SpoolEnvelope {
                mail_from: String::new(),
                rcpt_to: Vec::new(),
                client_ip: std::net::IpAddr::from([127, 0, 0, 1]),
                helo: String::new(),
                protocol: "SMTP".into(),
                tls: None,
                received_at,
                verdict: None,
                filter: None,
                over_quota: None,
            },
            state,
            size: 0,
            auth_results: None,
            attempts: 0,
            note: None,
            facts: Default::default(),
        }
    }

    #[test]
    fn held_and_unfinished_messages_are_kept_whatever_their_age() {
        let keep = Retention {
            records: 10,
            raw: 5,
        };
        for state in [
            SpoolState::Held,
            SpoolState::Received,
            SpoolState::Authenticated,
            SpoolState::Approved,
        ] {
            assert_eq!(fate(&meta(state, 0), None, 1_000_000, keep), Fate::Keep);
        }
        // A queued post still being delivered has no summary yet.
        assert_eq!(
            fate(&meta(SpoolState::Queued, 0), None, 1_000_000, keep),
            Fate::Keep
        );
    }

    #[test]
    fn finished_messages_lose_their_bytes_then_their_records() {
        let keep = Retention {
            records: 10,
            raw: 5,
        };
        let done = meta(SpoolState::Rejected, 100);
        assert_eq!(fate(&done, None, 104, keep), Fate::Keep);
        assert_eq!(fate(&done, None, 105, keep), Fate::Raw);
        assert_eq!(fate(&done, None, 110, keep), Fate::All);
        let entry = QueueEntry {
            id: 1,
            list: "l@x".into(),
            mail_from: String::new(),
            recipients: Vec::new(),
            queued_at: 100,
            plain: false,
            summary: Some(DeliverySummary {
                finished_at: 200,
                ..Default::default()
            }),
        };
        // A post counts from when its delivery finished, not from when it arrived.
        let post = meta(SpoolState::Queued, 100);
        assert_eq!(fate(&post, Some(&entry), 204, keep), Fate::Keep);
        assert_eq!(fate(&post, Some(&entry), 205, keep), Fate::Raw);
        assert_eq!(fate(&post, Some(&entry), 210, keep), Fate::All);
    }

    #[tokio::test]
    async fn pruning_cut_short_by_a_restart_goes_on_where_it_stopped() {
        use crate::state::store::RedbStore;
        use crate::state::store::roles::{Records, Spool};
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("store.redb");
        let store = RedbStore::open(&path).expect("open");
        let mut ids = Vec::new();
        for n in 0..10u8 {
            let m = meta(SpoolState::Received, 1_000);
            let id = store
                .spool(m.envelope, vec![b'x'; usize::from(n) + 1])
                .await
                .expect("spool");
            let (mut meta, _) = store.get(id).await.expect("get").expect("there");
            meta.state = if n == 4 {
                SpoolState::Held
            } else {
                SpoolState::Rejected
            };
            store.update(&meta).await.expect("update");
            ids.push(id);
        }
        let keep = Retention {
            records: 10,
            raw: 5,
        };
        let first = store.prune(2_000, keep, 3).await.expect("prune");
        assert_eq!((first.records, first.more), (3, true));
        // The process dies between two batches; the next start goes on.
        drop(store);
        let store = RedbStore::open(&path).expect("reopen");
        while store.prune(2_000, keep, 3).await.expect("prune").more {}
        let left: Vec<(u64, SpoolState)> = store
            .list()
            .await
            .expect("list")
            .into_iter()
            .map(|m| (m.id, m.state))
            .collect();
        assert_eq!(
            left,
            vec![(ids[4], SpoolState::Held)],
            "only the held post stays"
        );
        assert!(
            store.get(ids[4]).await.expect("get").is_some(),
            "with its bytes"
        );
    }
}
