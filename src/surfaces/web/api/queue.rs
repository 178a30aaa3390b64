//! `/api/queue...`: posts being delivered, each recipient's state, the signed copy, and
//! retrying deferred recipients now.

use super::{Answer, Api, Call, Reply, ok};
use crate::surfaces::admin::{AdminError, parse_id};

/// Routes under `/api/queue`; `rest` follows `queue`.
pub(super) async fn route(api: &Api, call: &Call<'_>, rest: &[&str]) -> Answer {
    match (call.method, rest) {
        ("GET", []) => match call.param("list") {
            Some(list) => ok(&api.recent_posts(list).await?),
            None => ok(&api.active().await?),
        },
        ("GET", [n]) => ok(&api.post_status(parse_id(n)?).await?),
        ("GET", [n, "message"]) => Ok(Reply::message(api.queued_message(parse_id(n)?).await?)),
        ("POST", [n, "retry"]) => ok(&api.retry(parse_id(n)?).await?),
        _ => Err(AdminError::NotFound("no such queue route".into())),
    }
}
