//! `/api/lists...` (show, create, settings, sending the digest) and `/api/aliases...` (forwarding aliases kept in
//! the store).

use super::{Answer, Api, Call, Reply, ok};
use crate::surfaces::admin::{AdminError, NewList, Targets};

/// Routes under `/api/lists`.
pub(super) async fn route(api: &Api, call: &Call<'_>, rest: &[&str]) -> Answer {
    match (call.method, rest) {
        ("GET", []) => ok(&api.lists().await?),
        ("POST", []) => {
            let new: NewList = call.json()?;
            Ok(Reply::json(201, &api.create_list(&new).await?))
        }
        ("GET", [list]) => ok(&api.list(list).await?),
        ("GET", [list, "settings"]) => ok(&api.settings(list).await?),
        ("PUT", [list, "settings"]) => {
            let change: crate::base::config::OwnerSettings = call.json()?;
            ok(&api.put_settings(list, &change).await?)
        }
        (_, [list, "members", more @ ..]) => super::members::route(api, call, list, more).await,
        ("POST", [list, "digest"]) => ok(&api.send_digest(list).await?),
        _ => Err(AdminError::NotFound("no such lists route".into())),
    }
}

/// Routes under `/api/aliases`.
pub(super) async fn aliases_route(api: &Api, call: &Call<'_>, rest: &[&str]) -> Answer {
    match (call.method, rest) {
        ("GET", []) => ok(&api.aliases().await?),
        ("PUT", [alias]) => {
            let Targets { targets } = call.json()?;
            ok(&api.put_alias(alias, targets).await?)
        }
        ("DELETE", [alias]) => ok(&api.remove_alias(alias).await?),
        _ => Err(AdminError::NotFound("no such aliases route".into())),
    }
}
