//! Posts being delivered, each recipient's state, the signed copy, and retrying deferred
//! recipients now.

use super::{Admin, AdminError, Result};
use crate::state::store::{Delivery, DeliveryState, DeliverySummary, QueueHead, SpoolId};
use serde::{Deserialize, Serialize};

/// A queued post's delivery, recipient by recipient.
#[derive(Debug, Serialize, Deserialize)]
pub struct PostStatus {
    /// The list (or `forward:DOMAIN`) it belongs to.
    #[serde(default)]
    pub list: String,
    /// Each recipient still being delivered (empty once finished).
    pub deliveries: Vec<Delivery>,
    /// Once finished: what was delivered and what bounced.
    pub summary: Option<DeliverySummary>,
}

/// One post of a list in `GET /api/queue?list=L`: what became of its copies.
#[derive(Debug, Serialize, Deserialize)]
pub struct PostLine {
    /// The post's id.
    pub id: SpoolId,
    /// Unix time it was queued.
    pub queued_at: u64,
    /// Its Subject, while the spooled message is kept.
    pub subject: String,
    /// Whether every recipient is settled.
    pub finished: bool,
    /// Copies delivered.
    pub delivered: u64,
    /// Recipients waiting for a retry or their first try.
    pub waiting: u64,
    /// Recipients that bounced.
    pub bounced: u64,
}

/// Deferred recipients made due.
#[derive(Debug, Serialize, Deserialize)]
pub struct Retried {
    /// How many.
    pub due_now: usize,
}

/// Most posts [`Admin::recent_posts`] lists, newest first.
const RECENT_POSTS: usize = 50;

impl Admin {
    /// The posts with recipients still to deliver.
    pub async fn active(&self) -> Result<Vec<QueueHead>> {
        Ok(self.store.active().await?)
    }

    /// The newest posts of `list` still on record, finished or not, with their figures.
    pub async fn recent_posts(&self, list: &str) -> Result<Vec<PostLine>> {
        let list = self.known_list(list)?;
        let mut entries: Vec<_> = self
            .store
            .queue()
            .await?
            .into_iter()
            .filter(|e| e.list.eq_ignore_ascii_case(&list) && !e.plain)
            .collect();
        entries.sort_by_key(|e| std::cmp::Reverse(e.queued_at));
        entries.truncate(RECENT_POSTS);
        let mut lines = Vec::with_capacity(entries.len());
        for e in entries {
            let subject = self
                .store
                .get(e.id)
                .await?
                .and_then(|(_, m)| crate::stages::list::mime::Part::split(&m).field("subject"))
                .unwrap_or_default();
            let (delivered, waiting, bounced) = match &e.summary {
                Some(s) => (s.delivered.values().sum(), 0, s.bounced.len() as u64),
                None => {
                    let all = self.store.deliveries(e.id).await?;
                    let count = |st: &[DeliveryState]| {
                        all.iter().filter(|d| st.contains(&d.state)).count() as u64
                    };
                    (
                        count(&[DeliveryState::Delivered]),
                        count(&[DeliveryState::Pending, DeliveryState::Deferred]),
                        count(&[DeliveryState::Bounced]),
                    )
                }
            };
            lines.push(PostLine {
                id: e.id,
                queued_at: e.queued_at,
                subject,
                finished: e.summary.is_some(),
                delivered,
                waiting,
                bounced,
            });
        }
        Ok(lines)
    }

    /// Each recipient of queued post `id`.
    pub async fn post_status(&self, id: SpoolId) -> Result<PostStatus> {
        let entry = self
            .store
            .queue_entry(id)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("no queued post {id}")))?;
        Ok(PostStatus {
            list: entry.list.clone(),
            deliveries: self.store.deliveries(id).await?,
            summary: entry.summary,
        })
    }

    /// The copy of queued post `id` as it goes out.
    pub async fn queued_message(&self, id: SpoolId) -> Result<Vec<u8>> {
        let (_, data) = self
            .store
            .queued(id)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("no queued post {id}")))?;
        Ok(data)
    }

    /// Makes every deferred recipient of `id` due now.
    pub async fn retry(&self, id: SpoolId) -> Result<Retried> {
        let mut due: Vec<Delivery> = self
            .store
            .deliveries(id)
            .await?
            .into_iter()
            .filter(|d| d.state == DeliveryState::Deferred)
            .collect();
        for d in &mut due {
            d.next_attempt = 0;
        }
        self.store.record_round(id, &due).await?;
        self.store.nudge();
        Ok(Retried { due_now: due.len() })
    }
}
