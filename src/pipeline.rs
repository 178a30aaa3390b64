//! The post's way through arclist after the spool, assembled in one place.
//!
//! Today the pipeline authenticates each spooled message (SPF, DKIM, DMARC, ARC) and records
//! the results with it; the list stages (trust, policy, transform, sign) and delivery attach
//! here. A temporary DNS failure leaves the message in the spool and retries it with backoff;
//! it never becomes a verdict.

use crate::auth::{Authenticator, Envelope};
use crate::store::{SpoolId, SpoolState, Store};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Retry delays after temporary failures; the last repeats.
const BACKOFF: &[u64] = &[30, 60, 300, 900, 3600];

/// Runs the pipeline over spooled messages.
pub struct Pipeline<S: Store> {
    store: Arc<S>,
    auth: Authenticator,
    authserv_id: String,
}

impl<S: Store> Pipeline<S> {
    /// A pipeline writing results as `authserv_id`.
    pub fn new(store: Arc<S>, auth: Authenticator, authserv_id: &str) -> Self {
        Pipeline {
            store,
            auth,
            authserv_id: authserv_id.to_string(),
        }
    }

    /// Starts the worker: first every message left in the spool by an earlier run, then each
    /// id the listener sends.
    pub fn start(
        self,
        incoming: mpsc::UnboundedReceiver<SpoolId>,
        feed: mpsc::UnboundedSender<SpoolId>,
    ) -> JoinHandle<()> {
        tokio::spawn(self.run(incoming, feed))
    }

    async fn run(
        self,
        mut incoming: mpsc::UnboundedReceiver<SpoolId>,
        feed: mpsc::UnboundedSender<SpoolId>,
    ) {
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || store.list()).await {
            Ok(Ok(all)) => {
                let left: Vec<SpoolId> = all
                    .iter()
                    .filter(|m| m.state == SpoolState::Received)
                    .map(|m| m.id)
                    .collect();
                if !left.is_empty() {
                    tracing::info!(count = left.len(), "picking up messages left in the spool");
                }
                for id in left {
                    let _ = feed.send(id);
                }
            }
            Ok(Err(e)) => tracing::error!(error = %e, "cannot list the spool at startup"),
            Err(e) => tracing::error!(error = %e, "spool listing task failed"),
        }
        while let Some(id) = incoming.recv().await {
            if let Some(delay) = self.process(id).await {
                let feed = feed.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    let _ = feed.send(id);
                });
            }
        }
    }

    /// Authenticates one message; returns a retry delay after a temporary failure.
    async fn process(&self, id: SpoolId) -> Option<Duration> {
        let store = self.store.clone();
        let loaded = match tokio::task::spawn_blocking(move || store.get(id)).await {
            Ok(Ok(Some(found))) => found,
            Ok(Ok(None)) => return None,
            Ok(Err(e)) => {
                tracing::error!(id, error = %e, "cannot read spooled message; will retry");
                return Some(Duration::from_secs(BACKOFF[0]));
            }
            Err(_) => return Some(Duration::from_secs(BACKOFF[0])),
        };
        let (mut meta, message) = loaded;
        if meta.state != SpoolState::Received {
            return None;
        }
        let envelope = Envelope {
            ip: meta.envelope.client_ip,
            helo: meta.envelope.helo.clone(),
            mail_from: meta.envelope.mail_from.clone(),
        };
        let verdict = self
            .auth
            .verify(&message, Some(&envelope), crate::auth::unix_now())
            .await;
        let retry = if verdict.has_temporary_error() {
            meta.attempts += 1;
            let delay = BACKOFF[(meta.attempts as usize - 1).min(BACKOFF.len() - 1)];
            tracing::warn!(id, attempts = meta.attempts, retry_in_s = delay, arc = %verdict.arc.reason, dmarc = %verdict.dmarc.reason, "temporary DNS failure while authenticating; message stays spooled");
            Some(Duration::from_secs(delay))
        } else {
            meta.state = SpoolState::Authenticated;
            meta.auth_results = Some(
                verdict
                    .auth_results(&self.authserv_id, Some(&envelope))
                    .render(),
            );
            tracing::info!(
                id,
                from = %verdict.dmarc.from_domain,
                spf = verdict.spf.as_ref().map_or("none", |s| s.mail_from.as_str()),
                dkim = ?verdict.dkim.iter().map(|d| d.verdict.as_str()).collect::<Vec<_>>(),
                dmarc = verdict.dmarc.verdict.as_str(),
                policy = verdict.dmarc.policy.as_str(),
                arc = verdict.arc.verdict.as_str(),
                "authenticated"
            );
            None
        };
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || store.update(&meta)).await {
            Ok(Ok(())) => retry,
            Ok(Err(e)) => {
                tracing::error!(id, error = %e, "cannot record results; will retry");
                Some(Duration::from_secs(BACKOFF[0]))
            }
            Err(_) => Some(Duration::from_secs(BACKOFF[0])),
        }
    }
}
