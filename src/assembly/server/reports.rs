//! What goes out at each 00:00 UTC: the owners' daily reports (lists with
//! `daily_report = true`) and the moderators' digest of held posts still waiting.

use crate::base::tasks::Tasks;
use crate::stages::list::Lists;
use crate::stages::list::moderation;
use crate::state::store::{SpoolState, Store};
use std::sync::Arc;
use std::time::Duration;

/// Sends the reports and digests at each midnight until the server stops; with `dmarc`, also
/// DMARC aggregate reports to the author domains that ask for them.
pub async fn daily(
    store: Arc<Store>,
    lists: Lists,
    hostname: String,
    tasks: Tasks,
    dmarc: Option<crate::auth::dns::Resolver>,
) {
    loop {
        let now = crate::auth::unix_now();
        let next = (now / 86_400 + 1) * 86_400;
        tokio::time::sleep(Duration::from_secs(next - now)).await;
        // On a shared store one node sends a day's reports, not every node.
        if !super::ours(&store, &tasks, "daily", next / 86_400).await {
            continue;
        }
        match crate::surfaces::operate::report::mail_to_owners(&store, &lists, &hostname, next)
            .await
        {
            Ok(n) if n > 0 => tracing::info!(reports = n, "daily reports queued for list owners"),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "cannot make the daily reports"),
        }
        if let Some(resolver) = &dmarc {
            match crate::surfaces::operate::dmarc_out::send(
                &store, &lists, resolver, &hostname, next,
            )
            .await
            {
                Ok(n) if n > 0 => tracing::info!(reports = n, "DMARC aggregate reports queued"),
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "cannot make the DMARC aggregate reports"),
            }
        }
        let (store, lists) = (store.clone(), lists.clone());
        // Through `tasks`, so a stopping server waits for it before closing the store.
        match tasks.spawn_blocking(move || digests(&store, &lists)).await {
            Ok(Ok(n)) if n > 0 => {
                tracing::info!(digests = n, "held-post digests queued for moderators")
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "cannot make the held-post digests"),
            Err(e) => tracing::error!(error = %e, "digest task failed"),
        }
    }
}

/// One digest per list with held posts; returns how many were queued.
pub fn digests(store: &Store, lists: &Lists) -> Result<usize, String> {
    let held: Vec<_> = crate::state::store::wait(store.list())
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|m| m.state == SpoolState::Held)
        .collect();
    let mut sent = 0;
    for list in lists.all() {
        let mine: Vec<_> = held
            .iter()
            .filter(|m| m.facts.list.as_deref() == Some(list.config.address.as_str()))
            .filter_map(|m| {
                let (meta, message) = crate::state::store::wait(store.get(m.id)).ok()??;
                let (from, subject) = moderation::summary(&message);
                Some((meta, from, subject))
            })
            .collect();
        if moderation::digest(store, &list, &mine)? {
            sent += 1;
        }
    }
    Ok(sent)
}
