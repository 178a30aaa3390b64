//! The background pruner: finished work leaves the store after its retention period, in
//! bounded batches, so the file stops growing and nothing idle grows with history.

use crate::config::RetentionConfig;
use crate::store::{RedbStore, Retention, Store};
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

/// Forgets the Message-IDs distributed longer ago than `window`, in bounded batches.
async fn forget_distributed(store: &Arc<RedbStore>, tasks: &Tasks, window: u64) {
    loop {
        let s = store.clone();
        let before = crate::auth::unix_now().saturating_sub(window);
        match tasks
            .spawn_blocking(move || s.forget_distributed(before, BATCH))
            .await
        {
            Ok(Ok((_, true))) => tokio::time::sleep(BETWEEN_BATCHES).await,
            Ok(Ok(_)) | Err(_) => return,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "forgetting old Message-IDs failed; trying again at the next run");
                return;
            }
        }
    }
}

/// Prunes every `prune_every_secs` until the server stops.
pub async fn run(store: Arc<RedbStore>, tasks: Tasks, config: RetentionConfig) {
    let keep = Retention {
        records: secs(config.records_days),
        raw: secs(config.raw_days),
    };
    loop {
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
        forget_distributed(&store, &tasks, secs(config.duplicates_days)).await;
        if records + raw > 0 {
            tracing::info!(
                removed = records,
                raw_removed = raw,
                "pruned finished messages past their retention"
            );
        }
        tokio::time::sleep(Duration::from_secs(config.prune_every_secs.max(1))).await;
    }
}
