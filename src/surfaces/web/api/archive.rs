//! `/api/archive/LIST/...`: removing a post from a list's archive, exporting it as mboxrd,
//! importing an mbox.

use super::{Answer, Api, Call, Reply, ok};
use crate::surfaces::admin::AdminError;

/// Routes under `/api/archive`; `rest` follows `archive`.
pub(super) async fn route(api: &Api, call: &Call<'_>, rest: &[&str]) -> Answer {
    match (call.method, rest) {
        ("DELETE", [list, "posts", id]) => ok(&api.archive_remove(list, id).await?),
        ("GET", [list, "mbox"]) => Ok(Reply {
            status: 200,
            content_type: "application/mbox",
            body: api.archive_export(list, call.param("month")).await?,
        }),
        ("POST", [list, "import"]) => ok(&api.archive_import(list, call.body).await?),
        _ => Err(AdminError::NotFound("no such archive route".into())),
    }
}
