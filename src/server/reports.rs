//! The owners' daily reports, mailed at each 00:00 UTC for lists with `daily_report = true`.

use crate::list::Lists;
use crate::store::RedbStore;
use std::sync::Arc;
use std::time::Duration;

/// Sends the reports at each midnight until the server stops.
pub async fn daily(store: Arc<RedbStore>, lists: Lists, hostname: String) {
    loop {
        let now = crate::auth::unix_now();
        let next = (now / 86_400 + 1) * 86_400;
        tokio::time::sleep(Duration::from_secs(next - now)).await;
        match crate::operate::report::mail_to_owners(&*store, &lists, &hostname, next).await {
            Ok(n) if n > 0 => tracing::info!(reports = n, "daily reports queued for list owners"),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "cannot make the daily reports"),
        }
    }
}
