//! `/api/held...`: posts waiting for a moderator; show one with its checks; approve, reject
//! (with a reason for the poster) or discard it.

use super::{Answer, Api, Call, Failure, Reply};
use crate::list::moderation::{self, Decision};
use crate::store::{SpoolId, SpoolMeta, SpoolState, Store};
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

impl<S: Store> Api<S> {
    /// Routes under `/api/held`; `rest` follows `held`.
    pub(super) fn held_route(&self, call: &Call<'_>, rest: &[&str]) -> Answer {
        match (call.method, rest) {
            ("GET", []) => {
                let held: Vec<HeldPost> = self
                    .store
                    .list()?
                    .into_iter()
                    .filter(|m| m.state == SpoolState::Held)
                    .filter_map(|m| {
                        let (_, message) = self.store.get(m.id).ok()??;
                        Some(self.view(m, &message))
                    })
                    .collect();
                Ok(Reply::json(200, &held))
            }
            ("GET", [id]) => {
                let (meta, message) = self.held(id)?;
                Ok(Reply::json(200, &self.view(meta, &message)))
            }
            ("GET", [id, "message"]) => Ok(Reply::message(self.held(id)?.1)),
            ("POST", [id, "approve"]) => self.decide(id, Decision::Approve),
            ("POST", [id, "discard"]) => self.decide(id, Decision::Discard),
            ("POST", [id, "reject"]) => {
                let rejection: Rejection = if call.body.is_empty() {
                    Rejection::default()
                } else {
                    call.json()?
                };
                self.decide(id, Decision::Reject(rejection.reason))
            }
            _ => Err(Failure::not_found("no such held route")),
        }
    }

    /// Held post `id` and its bytes; 404 when there is none, 409 when it is not held.
    fn held(&self, id: &str) -> Result<(SpoolMeta, Vec<u8>), Failure> {
        let id: SpoolId = id
            .parse()
            .map_err(|_| Failure::invalid(format!("{id:?} is not a post id")))?;
        let (meta, message) = self
            .store
            .get(id)?
            .ok_or_else(|| Failure::not_found(format!("no post {id}")))?;
        if meta.state != SpoolState::Held {
            return Err(Failure(
                409,
                format!("post {id} is not held (it is {:?})", meta.state),
            ));
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

    fn decide(&self, id: &str, decision: Decision) -> Answer {
        let (meta, _) = self.held(id)?;
        let address = self
            .list_of(&meta)
            .ok_or_else(|| Failure(409, format!("post {} names no list", meta.id)))?;
        let (decided, message) =
            moderation::decide(&*self.store, &address, meta.id, &decision, "an operator")
                .map_err(|e| Failure(409, e))?;
        let mut poster_told = false;
        if let Decision::Reject(reason) = &decision {
            // Only the notice needs the list's key; the decision stands without it.
            match self.lists.get(&address) {
                Some(list) => {
                    let why = reason.as_deref().unwrap_or("refused by a moderator");
                    match moderation::tell_poster(&*self.store, &list, &decided, &message, why) {
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
        let distributed_now = decision == Decision::Approve
            && self
                .feed
                .as_ref()
                .is_some_and(|f| f.send(decided.id).is_ok());
        Ok(Reply::json(
            200,
            &serde_json::json!({
                "id": decided.id,
                "state": decided.state,
                "note": decided.note,
                "distributed_now": distributed_now,
                "poster_considered": poster_told,
            }),
        ))
    }
}
