//! `/api/lists/LIST/members...`: paging and search, add, remove, enable, settings (delivery
//! mode, moderation), import, sync.

use super::{Answer, Api, Call, Reply, ok};
use crate::surfaces::admin::{AdminError, MemberSettings, NewMember, PageQuery, members::MAX_PAGE};

/// Routes under `/api/lists/LIST/members`; `rest` follows `members`.
pub(super) async fn route(api: &Api, call: &Call<'_>, list: &str, rest: &[&str]) -> Answer {
    // An unknown list is named before anything in the request is judged.
    let list = api.known_list(list)?;
    match (call.method, rest) {
        ("GET", []) => ok(&api.members(&list, &page_query(call)?).await?),
        ("POST", []) => {
            let new: NewMember = call.json()?;
            let added = api.add_member(&list, new).await?;
            Ok(Reply::json(if added.added { 201 } else { 200 }, &added))
        }
        ("POST", ["import"]) => ok(&api
            .import(&list, &String::from_utf8_lossy(call.body))
            .await?),
        ("POST", ["sync"]) => ok(&api.sync(&list).await?),
        ("DELETE", [address]) => ok(&api.remove_member(&list, address).await?),
        ("POST", [address, "enable"]) => ok(&api.enable(&list, address).await?),
        ("POST", [address, "settings"]) => {
            let settings: MemberSettings = call.json()?;
            ok(&api.set_member(&list, address, settings).await?)
        }
        _ => Err(AdminError::NotFound("no such members route".into())),
    }
}

/// `?after=ADDRESS&limit=N`, `?q=TEXT&offset=N`, or neither.
fn page_query(call: &Call<'_>) -> Result<PageQuery, AdminError> {
    let number = |name: &'static str, default: usize| -> Result<usize, AdminError> {
        call.param(name).map_or(Ok(default), |v| {
            v.parse()
                .map_err(|_| AdminError::bad(name, format!("{name}={v} is not a number")))
        })
    };
    Ok(PageQuery {
        offset: number("offset", 0)?,
        limit: number("limit", MAX_PAGE)?,
        after: call.param("after").map(str::to_string),
        q: call.param("q").unwrap_or_default().to_string(),
    })
}
