//! `/api/queue...`: posts being delivered, each recipient's state, the signed copy, and
//! retrying deferred recipients now.

use super::{Answer, Api, Call, Failure, Reply};
use crate::store::{Delivery, DeliveryState, DeliverySummary, SpoolId, Store};
use serde::{Deserialize, Serialize};

/// A queued post's delivery, recipient by recipient.
#[derive(Debug, Serialize, Deserialize)]
pub struct PostStatus {
    /// Each recipient still being delivered (empty once finished).
    pub deliveries: Vec<Delivery>,
    /// Once finished: what was delivered and what bounced.
    pub summary: Option<DeliverySummary>,
}

impl<S: Store> Api<S> {
    /// Routes under `/api/queue`; `rest` follows `queue`.
    pub(super) fn queue_route(&self, call: &Call<'_>, rest: &[&str]) -> Answer {
        let id = |text: &str| -> Result<SpoolId, Failure> {
            text.parse()
                .map_err(|_| Failure::invalid(format!("{text:?} is not a post id")))
        };
        match (call.method, rest) {
            ("GET", []) => Ok(Reply::json(200, &self.store.active()?)),
            ("GET", [n]) => {
                let id = id(n)?;
                let entry = self
                    .store
                    .queue_entry(id)?
                    .ok_or_else(|| Failure::not_found(format!("no queued post {id}")))?;
                let status = PostStatus {
                    deliveries: self.store.deliveries(id)?,
                    summary: entry.summary,
                };
                Ok(Reply::json(200, &status))
            }
            ("GET", [n, "message"]) => {
                let id = id(n)?;
                let (_, data) = self
                    .store
                    .queued(id)?
                    .ok_or_else(|| Failure::not_found(format!("no queued post {id}")))?;
                Ok(Reply::message(data))
            }
            ("POST", [n, "retry"]) => {
                let id = id(n)?;
                let mut due: Vec<Delivery> = self
                    .store
                    .deliveries(id)?
                    .into_iter()
                    .filter(|d| d.state == DeliveryState::Deferred)
                    .collect();
                for d in &mut due {
                    d.next_attempt = 0;
                }
                self.store.record_round(id, &due)?;
                self.store.nudge();
                Ok(Reply::json(
                    200,
                    &serde_json::json!({ "due_now": due.len() }),
                ))
            }
            _ => Err(Failure::not_found("no such queue route")),
        }
    }
}
