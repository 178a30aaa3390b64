//! Outcomes of delivery rounds the store could not take when the round ended (a shared
//! database restarted or out of reach), kept in this node and written when the store answers
//! again.
//!
//! Forgetting them would send the copies again: the recipients would still read as waiting,
//! and once the node's claims were handed back or lapsed, a later round (of this node or
//! another) would deliver them a second time. So the round's records stay here, the node
//! keeps its claims on those recipients (its heartbeat renews them once the database is
//! back, and a restarted database lets no claim lapse for a lease, see
//! `postgres_store/deliveries.rs`), and a writer retries every [`RETRY_EVERY`] until the
//! store takes them. Claims a failed round could not hand back wait here too, or the
//! heartbeat would renew them for as long as the node lives and the post would never end.
//!
//! Kept in memory, at most [`KEEP_AT_MOST`] recipients: a node stopped or killed while it
//! holds some loses them, and those recipients are delivered again by whichever node takes
//! them next (at least once, never lost).

use super::owner::{Hooks, Owner, Queued};
use crate::base::tasks::Tasks;
use crate::state::store::{Delivery, QueueHead, Settled, Store, StoreError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often kept outcomes are offered to the store again.
const RETRY_EVERY: Duration = Duration::from_secs(1);
/// The most recipients' outcomes one node keeps; rounds beyond it are handed back instead
/// (delivered again later). A round holds about `[cluster] claim_batch` recipients (whole
/// pages of up to 500 until it holds that many).
pub(super) const KEEP_AT_MOST: usize = 200_000;

/// One round's outcomes not yet recorded, with what recording them needs.
pub(super) struct Round {
    /// The post the round was of.
    pub entry: Arc<QueueHead>,
    /// Its owner, whose hook hears of the round once it is recorded.
    pub owner: Arc<Owner>,
    /// Whether the post is the same bytes for everyone.
    pub plain: bool,
    /// The round's records (delivered, bounced, deferred).
    pub records: Vec<Delivery>,
    /// Whether it was the post's last round on this node (none of its pages runs here):
    /// writing it ends every claim the node holds on the post.
    pub last: bool,
}

/// What waits for the store.
#[derive(Default)]
struct Kept {
    rounds: Vec<Round>,
    /// Claims to hand back: post and addresses.
    releases: Vec<(u64, Vec<String>)>,
    /// Recipients in `rounds`.
    recipients: usize,
}

/// Kept rounds by post, counted until each is written (also while the writer holds them).
type Posts = std::collections::HashMap<u64, usize>;

/// The node's kept outcomes and claims to hand back; see the module's comment.
pub(super) struct Unrecorded {
    kept: Mutex<Kept>,
    posts: Mutex<Posts>,
    /// Woken when something is kept.
    wake: tokio::sync::Notify,
    /// The most recipients kept ([`KEEP_AT_MOST`]).
    limit: usize,
}

impl Default for Unrecorded {
    fn default() -> Self {
        Unrecorded {
            kept: Mutex::default(),
            posts: Mutex::default(),
            wake: tokio::sync::Notify::new(),
            limit: KEEP_AT_MOST,
        }
    }
}

impl Unrecorded {
    /// Keeps `round`, which the store refused with `why`, to write later; a round over
    /// [`KEEP_AT_MOST`] is not kept and its claims are handed back instead.
    pub(super) fn keep(&self, round: Round, why: &StoreError) {
        let (id, list, count) = (
            round.entry.id,
            round.entry.list.clone(),
            round.records.len(),
        );
        let Ok(mut kept) = self.kept.lock() else {
            return;
        };
        if kept.recipients + count > self.limit {
            tracing::error!(
                id, list = %list, recipients = count, kept = kept.recipients, error = %why,
                "cannot record this round and already keeping {} outcomes; its recipients will be delivered again",
                self.limit
            );
            let addresses = round.records.into_iter().map(|d| d.address).collect();
            kept.releases.push((id, addresses));
        } else {
            tracing::warn!(
                id, list = %list, recipients = count, error = %why,
                "cannot record this round's outcomes; keeping them in this node until the store answers"
            );
            kept.recipients += count;
            kept.rounds.push(round);
            if let Ok(mut posts) = self.posts.lock() {
                *posts.entry(id).or_default() += 1;
            }
        }
        crate::base::metrics::delivery_unrecorded(kept.recipients);
        drop(kept);
        self.wake.notify_one();
    }

    /// Keeps claims on `addresses` of post `id` that a failed round could not hand back.
    pub(super) fn release_later(&self, id: u64, addresses: Vec<String>) {
        if let Ok(mut kept) = self.kept.lock() {
            kept.releases.push((id, addresses));
        }
        self.wake.notify_one();
    }

    /// Resolves once no round of post `id` kept here waits to be written.
    pub(super) async fn written(&self, id: u64) {
        while self
            .posts
            .lock()
            .is_ok_and(|p| p.get(&id).is_some_and(|n| *n > 0))
        {
            tokio::time::sleep(RETRY_EVERY / 4).await;
        }
    }

    /// One round of post `id` was written.
    fn recorded(&self, id: u64) {
        if let Ok(mut posts) = self.posts.lock()
            && let Some(n) = posts.get_mut(&id)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                posts.remove(&id);
            }
        }
    }

    fn take(&self) -> Kept {
        self.kept
            .lock()
            .map(|mut k| std::mem::take(&mut *k))
            .unwrap_or_default()
    }

    /// Puts back what could not be written yet, ahead of anything kept meanwhile.
    fn put_back(&self, mut rest: Kept) {
        if let Ok(mut kept) = self.kept.lock() {
            rest.rounds.append(&mut kept.rounds);
            rest.releases.append(&mut kept.releases);
            rest.recipients += kept.recipients;
            *kept = rest;
            crate::base::metrics::delivery_unrecorded(kept.recipients);
        }
    }

    fn is_empty(&self) -> bool {
        self.kept
            .lock()
            .map_or(true, |k| k.rounds.is_empty() && k.releases.is_empty())
    }
}

/// What the writer needs of the delivery worker.
pub(super) struct Writer {
    pub store: Arc<Store>,
    pub hooks: Hooks,
    pub tasks: Tasks,
    pub unrecorded: Arc<Unrecorded>,
}

impl Writer {
    /// Offers what is kept to the store every [`RETRY_EVERY`] until it takes it all; then
    /// waits for more. Runs until the server's tasks stop.
    pub(super) async fn run(self) {
        loop {
            if self.unrecorded.is_empty() {
                self.unrecorded.wake.notified().await;
            }
            tokio::time::sleep(RETRY_EVERY).await;
            let left = self.write(self.unrecorded.take()).await;
            self.unrecorded.put_back(left);
        }
    }

    /// Writes `kept` in order, stopping at the first failure (the store is still away);
    /// returns what is left.
    async fn write(&self, mut kept: Kept) -> Kept {
        let mut left = Kept::default();
        let mut rounds = std::mem::take(&mut kept.rounds).into_iter();
        for round in rounds.by_ref() {
            let count = round.records.len();
            match self.record(round).await {
                Ok(()) => kept.recipients -= count,
                Err(round) => {
                    left.rounds.push(round);
                    break;
                }
            }
        }
        left.rounds.extend(rounds);
        left.recipients = kept.recipients;
        let mut releases = std::mem::take(&mut kept.releases).into_iter();
        if left.rounds.is_empty() {
            for (id, addresses) in releases.by_ref() {
                if let Err(e) = self.store.release_claims(id, &addresses).await {
                    tracing::debug!(id, error = %e, "cannot hand back claims yet");
                    left.releases.push((id, addresses));
                    break;
                }
                tracing::info!(
                    id,
                    recipients = addresses.len(),
                    "handed back the claims of a round that failed while the store was away"
                );
            }
        }
        left.releases.extend(releases);
        left
    }

    /// Records one kept round and settles its post; the owner's hook hears of it after the
    /// record, as at the end of a round (it heard before the record when the round ended).
    async fn record(&self, round: Round) -> Result<(), Round> {
        let id = round.entry.id;
        let written = match round.last {
            true => self.store.record_last_round(id, &round.records).await,
            false => self.store.record_round(id, &round.records).await,
        };
        let settled = match written {
            Ok(settled) => settled,
            Err(e) => {
                tracing::debug!(id, error = %e, "the store still cannot take a kept round");
                return Err(round);
            }
        };
        self.unrecorded.recorded(id);
        tracing::info!(
            id,
            list = %round.entry.list,
            recipients = round.records.len(),
            "recorded a round's outcomes kept while the store was away"
        );
        if let Some(hook) = self.hooks.of(&round.owner).cloned() {
            let after = move || {
                let queued = Queued {
                    owner: &round.owner,
                    head: &round.entry,
                    plain: round.plain,
                };
                hook.after_record(queued, &round.records);
            };
            if let Err(e) = self.tasks.spawn_blocking(after).await {
                tracing::error!(id, error = %e, "the owner's hook after a kept round failed");
            }
        }
        finished(id, &settled);
        Ok(())
    }
}

/// Logs a post that a round's record finished.
pub(super) fn finished(id: u64, settled: &Settled) {
    if let Settled::Finished(summary) = settled {
        let delivered: u64 = summary.delivered.values().sum();
        tracing::info!(
            id,
            delivered,
            bounced = summary.bounced.len(),
            "post finished; it left the hot queue"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::store::ErrorKind;

    fn round(id: u64, recipients: usize) -> Round {
        Round {
            entry: Arc::new(QueueHead {
                id,
                list: "members@lists.test".into(),
                mail_from: "members-bounces@lists.test".into(),
                queued_at: 0,
                next_due: 0,
                pending: recipients,
                deferred: 0,
            }),
            owner: Arc::new(Owner::parse("members@lists.test")),
            plain: true,
            last: false,
            records: (0..recipients)
                .map(|n| Delivery::pending(&format!("m{n}@y.test")))
                .collect(),
        }
    }

    #[tokio::test]
    async fn a_kept_round_holds_its_post_until_written_and_one_over_the_limit_is_handed_back() {
        let why = StoreError::new(ErrorKind::Unavailable, "db", "connection refused");
        let unrecorded = Unrecorded {
            limit: 5,
            ..Unrecorded::default()
        };
        unrecorded.keep(round(1, 3), &why);
        unrecorded.keep(round(2, 3), &why);
        let kept = unrecorded.take();
        assert_eq!(kept.recipients, 3);
        assert_eq!(kept.rounds.len(), 1, "the second round is over the limit");
        assert_eq!(kept.releases[0].0, 2, "its claims are handed back instead");
        assert_eq!(kept.releases[0].1.len(), 3);
        // Taken by the writer, post 1 is still held until its record is written.
        let held = tokio::time::timeout(Duration::from_millis(300), unrecorded.written(1));
        assert!(held.await.is_err(), "post 1 waits for its record");
        unrecorded.written(2).await;
        // Put back unwritten, then written.
        unrecorded.put_back(kept);
        assert!(!unrecorded.is_empty());
        unrecorded.recorded(1);
        unrecorded.written(1).await;
    }
}
