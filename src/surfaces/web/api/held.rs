//! `/api/held...`: posts waiting for a moderator; show one; approve, reject or discard it.

use super::{Answer, Api, Call, Reply, ok};
use crate::stages::list::moderation::Decision;
use crate::surfaces::admin::{AdminError, Rejection, parse_id};

/// Routes under `/api/held`; `rest` follows `held`.
pub(super) async fn route(api: &Api, call: &Call<'_>, rest: &[&str]) -> Answer {
    match (call.method, rest) {
        ("GET", []) => ok(&api.held_posts().await?),
        ("GET", [id]) => ok(&api.held_post(parse_id(id)?).await?),
        ("GET", [id, "message"]) => Ok(Reply::message(api.held_message(parse_id(id)?).await?)),
        ("POST", [id, "approve"]) if call.param("accept_sender") == Some("true") => {
            ok(&api.approve_accepting_sender(parse_id(id)?).await?)
        }
        ("POST", [id, "approve"]) => ok(&api.decide(parse_id(id)?, Decision::Approve).await?),
        ("POST", [id, "discard"]) => ok(&api.decide(parse_id(id)?, Decision::Discard).await?),
        ("POST", [id, "reject"]) => {
            let rejection: Rejection = if call.body.is_empty() {
                Rejection::default()
            } else {
                call.json()?
            };
            ok(&api
                .decide(parse_id(id)?, Decision::Reject(rejection.reason))
                .await?)
        }
        _ => Err(AdminError::NotFound("no such held route".into())),
    }
}
