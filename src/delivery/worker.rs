//! The delivery loop: due recipients, grouped by domain, retried with backoff.

use super::client::{Outcome, Reply, Transaction, deliver};
use super::route::{Routing, destinations};
use crate::auth::dns::Resolver;
use crate::list::ListRuntime;
use crate::store::{Delivery, DeliveryState, QueueEntry, Store};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// Seconds to wait after each temporary failure; the last repeats.
const BACKOFF: &[u64] = &[60, 300, 900, 1800, 3600, 7200, 14_400];
/// How long a recipient may stay deferred before it counts as bounced (five days).
const LIFETIME: u64 = 5 * 86_400;
/// How often the queue is scanned for due recipients.
const SCAN_EVERY: Duration = Duration::from_millis(500);
/// Destinations served at once.
const PARALLEL_DOMAINS: usize = 16;

/// The list a queued message belongs to, and the token secret (for VERP and one-click).
type Personal = (Arc<ListRuntime>, Vec<u8>);

/// Delivers the queue.
pub struct DeliveryWorker<S: Store> {
    /// The store holding the queue.
    pub store: Arc<S>,
    /// DNS for MX lookups.
    pub resolver: Resolver,
    /// Smarthost or direct.
    pub routing: Routing,
    /// Our EHLO name.
    pub helo: String,
    /// Per-command timeout.
    pub timeout: Duration,
    /// The lists, for per-recipient copies (one-click unsubscribe).
    pub lists: crate::pipeline::Lists,
}

impl<S: Store> DeliveryWorker<S> {
    /// Runs until aborted.
    pub fn start(self) -> JoinHandle<()> {
        let worker = Arc::new(self);
        tokio::spawn(async move {
            loop {
                if let Err(e) = worker.clone().pass().await {
                    tracing::error!(error = %e, "delivery pass failed; retrying");
                }
                tokio::time::sleep(SCAN_EVERY).await;
            }
        })
    }

    /// One pass over the queue: every recipient that is due gets one try.
    async fn pass(self: Arc<Self>) -> Result<(), String> {
        let store = self.store.clone();
        let now = crate::auth::unix_now();
        let due = tokio::task::spawn_blocking(
            move || -> Result<Vec<(QueueEntry, Vec<Delivery>)>, String> {
                let mut out = Vec::new();
                for entry in store.queue().map_err(|e| e.to_string())? {
                    let due: Vec<Delivery> = store
                        .deliveries(entry.id)
                        .map_err(|e| e.to_string())?
                        .into_iter()
                        .filter(|d| {
                            matches!(d.state, DeliveryState::Pending | DeliveryState::Deferred)
                                && d.next_attempt <= now
                        })
                        .collect();
                    if !due.is_empty() {
                        out.push((entry, due));
                    }
                }
                Ok(out)
            },
        )
        .await
        .map_err(|e| e.to_string())??;
        for (entry, due) in due {
            self.clone().deliver_entry(entry, due).await?;
        }
        Ok(())
    }

    async fn deliver_entry(
        self: Arc<Self>,
        entry: QueueEntry,
        due: Vec<Delivery>,
    ) -> Result<(), String> {
        let store = self.store.clone();
        let id = entry.id;
        let Some((_, message)) = tokio::task::spawn_blocking(move || store.queued(id))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?
        else {
            return Ok(());
        };
        let message = Arc::new(message);
        let personal: Option<Arc<Personal>> = match self
            .lists
            .get(&entry.list)
            .filter(|l| l.personalized() || l.config.verp)
        {
            Some(list) => {
                let store = self.store.clone();
                let secret = tokio::task::spawn_blocking(move || store.token_secret())
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())?;
                Some(Arc::new((list.clone(), secret)))
            }
            None => None,
        };
        let mut by_domain: BTreeMap<String, Vec<Delivery>> = BTreeMap::new();
        for d in due {
            let domain = d
                .address
                .rsplit_once('@')
                .map(|(_, d)| d.to_ascii_lowercase())
                .unwrap_or_default();
            by_domain.entry(domain).or_default().push(d);
        }
        // Accepted recipients are made durable as they come (batched while a commit is under way),
        // not at the end of the batch: a crash then resends only the last moment's copies.
        let (accepted_tx, mut accepted_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let before: std::collections::HashMap<String, Delivery> = by_domain
            .values()
            .flatten()
            .map(|d| (d.address.clone(), d.clone()))
            .collect();
        let recorder_store = self.store.clone();
        let recorder = tokio::spawn(async move {
            while let Some(first) = accepted_rx.recv().await {
                let mut batch = vec![first];
                while let Ok(more) = accepted_rx.try_recv() {
                    batch.push(more);
                }
                let records: Vec<Delivery> = batch
                    .into_iter()
                    .filter_map(|a| before.get(&a).cloned())
                    .map(|mut d| {
                        d.state = DeliveryState::Delivered;
                        d.attempts += 1;
                        d.last_reply = "250 (accepted; recorded on receipt)".into();
                        d
                    })
                    .collect();
                let store = recorder_store.clone();
                let _ = tokio::task::spawn_blocking(move || store.record_deliveries(id, &records))
                    .await;
            }
        });
        let mut tasks = tokio::task::JoinSet::new();
        let mut updated = Vec::new();
        for (domain, deliveries) in by_domain {
            while tasks.len() >= PARALLEL_DOMAINS {
                if let Some(Ok(done)) = tasks.join_next().await {
                    updated.extend(done);
                }
            }
            let (worker, message, entry, personal, accepted) = (
                self.clone(),
                message.clone(),
                entry.clone(),
                personal.clone(),
                accepted_tx.clone(),
            );
            tasks.spawn(async move {
                worker
                    .deliver_domain(
                        &entry,
                        &domain,
                        deliveries,
                        &message,
                        personal.as_deref(),
                        &accepted,
                    )
                    .await
            });
        }
        while let Some(done) = tasks.join_next().await {
            if let Ok(done) = done {
                updated.extend(done);
            }
        }
        drop(accepted_tx);
        let _ = recorder.await;
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.record_deliveries(id, &updated))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    }

    /// Tries `hosts` in order until one settles the transactions; the next host is tried only
    /// when one could not be reached or deferred everything.
    async fn try_hosts(
        &self,
        hosts: &[SocketAddr],
        transactions: &[Transaction<'_>],
        accepted: &tokio::sync::mpsc::UnboundedSender<String>,
    ) -> Vec<(String, Outcome)> {
        let mut last = Vec::new();
        for host in hosts {
            last = deliver(
                *host,
                &self.helo,
                transactions,
                self.timeout,
                Some(accepted),
            )
            .await;
            if !last.iter().all(|(_, o)| matches!(o, Outcome::Deferred(_))) {
                break;
            }
        }
        last
    }

    async fn deliver_domain(
        &self,
        entry: &QueueEntry,
        domain: &str,
        mut deliveries: Vec<Delivery>,
        message: &[u8],
        personal: Option<&Personal>,
        accepted: &tokio::sync::mpsc::UnboundedSender<String>,
    ) -> Vec<Delivery> {
        let now = crate::auth::unix_now();
        let addresses: Vec<String> = deliveries.iter().map(|d| d.address.clone()).collect();
        let mut outcomes: Vec<(String, Outcome)> =
            match destinations(&self.routing, &self.resolver, domain).await {
                Err(e) => addresses
                    .iter()
                    .map(|a| {
                        (
                            a.clone(),
                            Outcome::Deferred(format!("DNS for {domain}: {e}")),
                        )
                    })
                    .collect(),
                Ok(hosts) if hosts.is_empty() => addresses
                    .iter()
                    .map(|a| {
                        (
                            a.clone(),
                            Outcome::Bounced(Reply {
                                code: 556,
                                text: format!("5.1.10 {domain} accepts no mail"),
                            }),
                        )
                    })
                    .collect(),
                Ok(hosts) => match personal {
                    // One transaction for the whole domain: every recipient gets the same bytes.
                    None => {
                        let t = Transaction {
                            mail_from: entry.mail_from.clone(),
                            recipients: addresses.clone(),
                            message,
                        };
                        self.try_hosts(&hosts, &[t], accepted).await
                    }
                    // One transaction per recipient, on one connection: each gets its own envelope
                    // sender (VERP) and, with one-click unsubscribe, its own signed copy.
                    Some((list, secret)) => {
                        let mut copies = Vec::with_capacity(addresses.len());
                        let mut failed = Vec::new();
                        for address in &addresses {
                            match list.personalize(secret, address, message) {
                                Ok(copy) => copies.push((
                                    address.clone(),
                                    list.envelope_sender(secret, entry.id, address),
                                    copy,
                                )),
                                Err(e) => failed.push((
                                    address.clone(),
                                    Outcome::Deferred(format!(
                                        "cannot sign the personal copy: {e}"
                                    )),
                                )),
                            }
                        }
                        let transactions: Vec<Transaction<'_>> = copies
                            .iter()
                            .map(|(address, sender, copy)| Transaction {
                                mail_from: sender.clone(),
                                recipients: vec![address.clone()],
                                message: copy,
                            })
                            .collect();
                        let mut all = self.try_hosts(&hosts, &transactions, accepted).await;
                        all.extend(failed);
                        all
                    }
                },
            };
        for d in &mut deliveries {
            let Some(pos) = outcomes.iter().position(|(a, _)| *a == d.address) else {
                continue;
            };
            let (_, outcome) = outcomes.swap_remove(pos);
            d.attempts += 1;
            match outcome {
                Outcome::Delivered(reply) => {
                    d.state = DeliveryState::Delivered;
                    d.last_reply = reply.to_string();
                }
                Outcome::Bounced(reply) => {
                    d.state = DeliveryState::Bounced;
                    d.last_reply = reply.to_string();
                }
                Outcome::Deferred(why) => {
                    d.last_reply = why;
                    if now.saturating_sub(entry.queued_at) > LIFETIME {
                        d.state = DeliveryState::Bounced;
                        d.last_reply = format!("gave up after five days: {}", d.last_reply);
                    } else {
                        d.state = DeliveryState::Deferred;
                        d.next_attempt =
                            now + BACKOFF[(d.attempts as usize - 1).min(BACKOFF.len() - 1)];
                    }
                }
            }
            tracing::info!(id = entry.id, rcpt = %d.address, state = ?d.state, reply = %d.last_reply, "delivery attempt");
        }
        deliveries
    }
}
