//! Posts waiting for a moderator: show one with its checks; approve, reject (with a reason
//! for the poster) or discard it.

use super::{Admin, AdminError, Result};
use crate::stages::list::moderation::{self, Decision};
use crate::state::store::{SpoolId, SpoolMeta, SpoolState};
use serde::{Deserialize, Serialize};

/// A held post, as moderators see it.
#[derive(Debug, Serialize, Deserialize)]
pub struct HeldPost {
    /// Its id.
    pub id: SpoolId,
    /// The list it was sent to.
    pub list: String,
    /// The envelope sender.
    pub mail_from: String,
    /// The From field.
    pub from: String,
    /// The Subject.
    pub subject: String,
    /// Why it is held.
    pub reason: String,
    /// Unix time it arrived.
    pub received_at: u64,
    /// The client that sent it, and its HELO name.
    pub client: String,
    /// Our Authentication-Results for it.
    pub auth_results: Option<String>,
}

/// `POST /api/held/ID/reject`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Rejection {
    /// The reason the poster is told (else the reason it was held).
    #[serde(default)]
    pub reason: Option<String>,
}

/// A decision taken.
#[derive(Debug, Serialize, Deserialize)]
pub struct Decided {
    /// Whether the post went to the pipeline at once (else at the next start).
    pub distributed_now: bool,
    /// The post.
    pub id: SpoolId,
    /// Its note after the decision.
    pub note: Option<String>,
    /// Whether the poster was sent the rejection notice.
    pub poster_considered: bool,
    /// Its state after the decision.
    pub state: SpoolState,
}

impl Admin {
    /// Every held post still in the spool.
    pub async fn held_posts(&self) -> Result<Vec<HeldPost>> {
        let mut posts = Vec::new();
        for m in self.store.list().await? {
            if m.state != SpoolState::Held {
                continue;
            }
            // A post gone or unreadable since the listing is left out, not an error.
            if let Ok(Some((_, message))) = self.store.get(m.id).await {
                posts.push(self.view(m, &message));
            }
        }
        Ok(posts)
    }

    /// One held post.
    pub async fn held_post(&self, id: SpoolId) -> Result<HeldPost> {
        let (meta, message) = self.held(id).await?;
        Ok(self.view(meta, &message))
    }

    /// One held post's bytes, as received.
    pub async fn held_message(&self, id: SpoolId) -> Result<Vec<u8>> {
        Ok(self.held(id).await?.1)
    }

    /// Held post `id` and its bytes; not found when there is none, conflict when it is not
    /// held.
    async fn held(&self, id: SpoolId) -> Result<(SpoolMeta, Vec<u8>)> {
        let (meta, message) = self
            .store
            .get(id)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("no post {id}")))?;
        if meta.state != SpoolState::Held {
            return Err(AdminError::Conflict(format!(
                "post {id} is not held (it is {:?})",
                meta.state
            )));
        }
        Ok((meta, message))
    }

    /// The list a post was for: recorded, or the first recipient that is a list.
    fn list_of(&self, meta: &SpoolMeta) -> Option<String> {
        let config = self.config.get();
        meta.facts.list.clone().or_else(|| {
            meta.envelope
                .rcpt_to
                .iter()
                .find_map(|r| config.list(r).map(|l| l.address.clone()))
        })
    }

    fn view(&self, meta: SpoolMeta, message: &[u8]) -> HeldPost {
        let (from, subject) = moderation::summary(message);
        HeldPost {
            id: meta.id,
            list: self.list_of(&meta).unwrap_or_default(),
            client: format!("{} [{}]", meta.envelope.helo, meta.envelope.client_ip),
            mail_from: meta.envelope.mail_from,
            from,
            subject,
            reason: meta.note.unwrap_or_default(),
            received_at: meta.envelope.received_at,
            auth_results: meta.auth_results,
        }
    }

    /// Approves held post `id` and adds its author (its From address) to the list's
    /// `accept_posts_from`, so their next posts need no moderator (Mailman's "approve and
    /// always accept").
    pub async fn approve_accepting_sender(&self, id: SpoolId) -> Result<Decided> {
        let (meta, message) = self.held(id).await?;
        let sender = crate::stages::list::copy::author(&message)
            .map(|a| a.address)
            .map_err(|e| AdminError::Conflict(format!("post {id}: {e}; no sender to accept")))?;
        let list = self
            .list_of(&meta)
            .ok_or_else(|| AdminError::Conflict(format!("post {id} names no list")))?;
        let decided = self.decide(id, Decision::Approve).await?;
        let mut accept = self
            .settings(&list)
            .await?
            .accept_posts_from
            .unwrap_or_default();
        if !accept.iter().any(|a| a.eq_ignore_ascii_case(&sender)) {
            accept.push(sender.clone());
            let change = crate::base::config::OwnerSettings {
                accept_posts_from: Some(accept),
                ..Default::default()
            };
            self.put_settings(&list, &change).await?;
        }
        tracing::info!(id, %list, %sender, "held post approved and its sender always accepted");
        Ok(decided)
    }

    /// Approves, rejects or discards held post `id`, as an operator.
    pub async fn decide(&self, id: SpoolId, decision: Decision) -> Result<Decided> {
        let (meta, _) = self.held(id).await?;
        let address = self
            .list_of(&meta)
            .ok_or_else(|| AdminError::Conflict(format!("post {} names no list", meta.id)))?;
        let (store, list) = (self.store.clone(), self.lists.get(&address));
        let approve = decision == Decision::Approve;
        // The list stage waits for the store itself, and a rejection signs a notice: both on
        // the blocking pool.
        let (decided, poster_told) = self
            .blocking(move || decide_held(&store, &address, list.as_deref(), meta.id, &decision))
            .await??;
        let distributed_now = approve
            && self
                .feed
                .as_ref()
                .is_some_and(|f| f.send(decided.id).is_ok());
        Ok(Decided {
            distributed_now,
            id: decided.id,
            note: decided.note,
            poster_considered: poster_told,
            state: decided.state,
        })
    }
}

/// Carries out `decision` on post `id` of list `address` and, for a rejection, tells the
/// poster when `list` (its key, for the notice) is loaded. Blocking: the list stage waits for
/// the store and signs. Returns the post as decided and whether the poster was considered.
fn decide_held(
    store: &crate::state::store::Store,
    address: &str,
    list: Option<&crate::stages::list::ListRuntime>,
    id: SpoolId,
    decision: &Decision,
) -> Result<(SpoolMeta, bool)> {
    let (decided, message) = moderation::decide(store, address, id, decision, "an operator")
        .map_err(|e| AdminError::Conflict(e.to_string()))?;
    let mut poster_told = false;
    if let Decision::Reject(reason) = decision {
        // Only the notice needs the list's key; the decision stands without it.
        match list {
            Some(list) => {
                let why = reason.as_deref().unwrap_or("refused by a moderator");
                match moderation::tell_poster(store, list, &decided, &message, why) {
                    Ok(()) => poster_told = true,
                    Err(e) => {
                        tracing::error!(id = decided.id, error = %e, "cannot tell the poster why")
                    }
                }
            }
            None => {
                tracing::warn!(id = decided.id, list = %address, "list not loaded; the poster is not told")
            }
        }
    }
    Ok((decided, poster_told))
}
