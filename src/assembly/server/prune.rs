//! The background pruner: finished work leaves the store after its retention period, in
//! bounded batches, so the file stops growing and nothing idle grows with history.

use crate::base::config::RetentionConfig;
use crate::base::tasks::Tasks;
use crate::state::store::{Retention, Store, StoreError};
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

/// A kind of record forgotten once older than a time, a bounded batch at a time.
#[derive(Clone, Copy)]
enum Old {
    MessageIds,
    DmarcReports,
    /// Quota counters whose window is over (their "time" is their expiry).
    RateCounters,
}

impl Old {
    /// What they are called in the log.
    fn name(self) -> &'static str {
        match self {
            Old::MessageIds => "Message-IDs",
            Old::DmarcReports => "DMARC reports",
            Old::RateCounters => "quota counters",
        }
    }

    /// Forgets one batch recorded before `before`: how many went, and whether more are left.
    async fn forget(self, store: &Store, before: u64) -> Result<(usize, bool), StoreError> {
        match self {
            Old::MessageIds => store.forget_distributed(before, BATCH).await,
            Old::DmarcReports => store.forget_dmarc_reports(before, BATCH).await,
            Old::RateCounters => store.forget_rates(before, BATCH).await,
        }
    }
}

/// Forgets, in bounded batches, the records `old` names that are older than `keep` seconds.
async fn forget_older(store: &Store, tasks: &Tasks, keep: u64, old: Old) {
    while !tasks.is_stopping() {
        let before = crate::auth::unix_now().saturating_sub(keep);
        match old.forget(store, before).await {
            Ok((_, true)) => tokio::time::sleep(BETWEEN_BATCHES).await,
            Ok(_) => return,
            Err(e) => {
                let what = old.name();
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
            if tasks.is_stopping() {
                return;
            }
            match store.prune(crate::auth::unix_now(), keep, BATCH).await {
                Ok(p) => {
                    records += p.records;
                    raw += p.raw;
                    if !p.more {
                        break;
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "pruning failed; trying again at the next run");
                    break;
                }
            }
            tokio::time::sleep(BETWEEN_BATCHES).await;
        }
        let duplicates = secs(config.duplicates_days);
        forget_older(&store, &tasks, duplicates, Old::MessageIds).await;
        // Receivers' DMARC reports are records like the messages' own.
        let reports = secs(config.records_days);
        forget_older(&store, &tasks, reports, Old::DmarcReports).await;
        forget_older(&store, &tasks, 0, Old::RateCounters).await;
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
