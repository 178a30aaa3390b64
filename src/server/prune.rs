//! The background pruner: finished work leaves the store after its retention period, in
//! bounded batches, so the file stops growing and nothing idle grows with history.

use crate::config::RetentionConfig;
use crate::store::{Retention, Store};
use crate::tasks::Tasks;
use std::sync::Arc;
use std::time::Duration;

/// Messages one batch (one write transaction) may remove: short enough that the spool's
/// commits before `250` never wait long behind it.
const BATCH: usize = 100;
/// The pause between two batches of one run, for the same reason.
const BETWEEN_BATCHES: Duration = Duration::from_millis(20);

/// Seconds in `days` days.
fn secs(days: f64) -> u64 {
    (days * 86_400.0).round() as u64
}

/// How a kind of record older than a time is forgotten, a bounded batch at a time: how many
/// went, and whether more are left.
type Forget = fn(&Store, u64, usize) -> Result<(usize, bool), crate::store::StoreError>;

/// Forgets, in bounded batches, the records `forget` removes that are older than `keep`
/// seconds; `what` names them in the log.
async fn forget_older(store: &Arc<Store>, tasks: &Tasks, keep: u64, what: &str, forget: Forget) {
    loop {
        let s = store.clone();
        let before = crate::auth::unix_now().saturating_sub(keep);
        match tasks
            .spawn_blocking(move || forget(&s, before, BATCH))
            .await
        {
            Ok(Ok((_, true))) => tokio::time::sleep(BETWEEN_BATCHES).await,
            Ok(Ok(_)) | Err(_) => return,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "forgetting old {what} failed; trying again at the next run");
                return;
            }
        }
    }
}

/// Prunes every `prune_every_secs` until the server stops.
pub async fn run(store: Arc<Store>, tasks: Tasks, config: RetentionConfig) {
    let keep = Retention {
        records: secs(config.records_days),
        raw: secs(config.raw_days),
    };
    let every = config.prune_every_secs.max(1);
    loop {
        // On a shared store one node a period prunes, not every node.
        if !super::ours(&store, &tasks, "prune", crate::auth::unix_now() / every).await {
            tokio::time::sleep(Duration::from_secs(every)).await;
            continue;
        }
        let (mut records, mut raw) = (0, 0);
        loop {
            let (s, now) = (store.clone(), crate::auth::unix_now());
            match tasks
                .spawn_blocking(move || s.prune(now, keep, BATCH))
                .await
            {
                Ok(Ok(p)) => {
                    records += p.records;
                    raw += p.raw;
                    if !p.more {
                        break;
                    }
                }
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "pruning failed; trying again at the next run");
                    break;
                }
                Err(_) => return,
            }
            tokio::time::sleep(BETWEEN_BATCHES).await;
        }
        let duplicates = secs(config.duplicates_days);
        forget_older(&store, &tasks, duplicates, "Message-IDs", |s, before, n| {
            s.forget_distributed(before, n)
        })
        .await;
        // Receivers' DMARC reports are records like the messages' own.
        let reports = secs(config.records_days);
        forget_older(&store, &tasks, reports, "DMARC reports", |s, before, n| {
            s.forget_dmarc_reports(before, n)
        })
        .await;
        if records + raw > 0 {
            tracing::info!(
                removed = records,
                raw_removed = raw,
                "pruned finished messages past their retention"
            );
        }
        tokio::time::sleep(Duration::from_secs(every)).await;
    }
}
