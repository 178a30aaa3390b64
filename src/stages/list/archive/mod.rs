//! Archiving beside delivery (`docs/archive.md`): a list whose `archive` is not `off` keeps
//! every post it distributes, as members got it, in the store's archive.
//!
//! The post is marked in the store before it is queued ([`mark`]) and archived right after
//! ([`archive_queued`]); the queueing never waits on the archive and never fails because of
//! it. A post whose archiving failed (the store busy, the process stopped between the two)
//! keeps its mark, and [`catch_up`] archives it from its queued copy later. The copy carries
//! `List-Archive` (RFC 2369) and `Archived-At` (RFC 5064), added before it is sealed and
//! signed ([`fields`]).

pub mod export;
pub mod import;
pub mod mbox;
pub mod read;

use super::ListRuntime;
use crate::base::config::{ArchiveMode, ListConfig};
use crate::base::tasks::Tasks;
use crate::state::store::{SpoolId, Store, StoreError};
use std::time::Duration;

/// The path of the archive pages under the `[http]` listener's base URL.
pub const PATH: &str = "/archive";
/// Marked posts one catch-up pass takes.
const CATCH_UP_BATCH: usize = 100;
/// How often marked posts are looked for.
const CATCH_UP_EVERY: Duration = Duration::from_secs(60);

/// Whether `list` keeps an archive.
pub fn archives(list: &ListConfig) -> bool {
    list.archive != ArchiveMode::Off
}

/// The URL of `list`'s archive under `base` (the `[http]` listener's base URL).
pub fn list_url(base: &str, list: &str) -> String {
    format!(
        "{}{PATH}/{}/",
        base.trim_end_matches('/'),
        list.to_ascii_lowercase()
    )
}

/// The URL of archived post `id` of `list` under `base`.
pub fn post_url(base: &str, list: &str, id: &str) -> String {
    format!("{}m/{id}", list_url(base, list))
}

/// The `List-Archive` and `Archived-At` fields of `list`'s copy of a post (`copy`, spooled
/// as `spool`), when the list keeps an archive and the `[http]` listener serves it (`base`).
/// A list without its own archive keeps its `archive_url`, written by the copy stage.
pub fn fields(
    list: &ListConfig,
    base: Option<&str>,
    copy: &[u8],
    spool: SpoolId,
) -> Vec<(&'static str, String)> {
    if !archives(list) {
        return Vec::new();
    }
    let Some(base) = base else {
        // Archived, but not served here: the operator's own archive URL, if any.
        return list
            .archive_url
            .iter()
            .map(|url| ("List-Archive", format!("<{url}>")))
            .collect();
    };
    let mut out = vec![(
        "List-Archive",
        format!("<{}>", list_url(base, &list.address)),
    )];
    if let Some(id) = read::id_of(&list.address, copy, Some(spool)) {
        out.push((
            "Archived-At",
            format!("<{}>", post_url(base, &list.address, &id)),
        ));
    }
    out
}

/// `copy` with `fields` on top.
pub fn with_fields(fields: &[(&'static str, String)], copy: Vec<u8>) -> Vec<u8> {
    if fields.is_empty() {
        return copy;
    }
    let mut out = Vec::with_capacity(copy.len() + 256);
    for (name, value) in fields {
        out.extend_from_slice(crate::base::header::field(name, value).as_bytes());
    }
    out.extend_from_slice(&copy);
    out
}

/// Marks post `spool` of `list` to be archived, before it is queued. A failure is logged and
/// delivery goes on: the post is then archived right after queueing or not at all.
pub fn mark(store: &Store, list: &ListRuntime, spool: SpoolId) {
    if !archives(&list.config) {
        return;
    }
    let address = &list.config.address;
    if let Err(e) = crate::state::store::wait(store.mark_to_archive(address, spool)) {
        tracing::error!(id = spool, list = %address, error = %e, "cannot mark the post for the archive; it is delivered, and archived only if archiving it now works");
    }
}

/// Archives queued post `spool` of `list`, `signed` as members get it. A failure is logged:
/// its mark stays and [`catch_up`] tries again.
pub fn archive_queued(store: &Store, list: &ListRuntime, spool: SpoolId, signed: &[u8]) {
    if !archives(&list.config) {
        return;
    }
    let address = &list.config.address;
    let now = crate::auth::unix_now();
    let Some(entry) = read::entry(address, signed.to_vec(), Some(spool), now) else {
        tracing::warn!(id = spool, list = %address, "the list's copy does not parse as a message; not archived");
        return;
    };
    match crate::state::store::wait(store.archive_post(entry)) {
        Ok((post, _)) => {
            tracing::info!(id = spool, list = %address, archive_id = %post.id, thread = %post.thread, "archived")
        }
        Err(e) => {
            tracing::warn!(id = spool, list = %address, error = %e, "archiving failed; the post is delivered and will be archived from the store later")
        }
    }
}

/// Archives, from their queued copies, at most one batch of the posts still marked; clears
/// the marks of posts that will never be queued (refused, discarded, pruned) or whose list no
/// longer archives. Returns how many it archived.
pub async fn catch_up(store: &Store, lists: &super::Lists) -> Result<usize, StoreError> {
    let mut archived = 0;
    for (address, spool) in store.to_archive(CATCH_UP_BATCH).await? {
        let list = lists.get(&address).filter(|l| archives(&l.config));
        let queued = match list {
            Some(_) => store.queued(spool).await?,
            None => None,
        };
        let Some((_, signed)) = queued else {
            // Still on its way (its queueing not committed yet, or to be redone after a
            // restart): keep the mark. Anything else is marked again if it is ever queued (a
            // held post approved later), so no mark stays to block the ones after it.
            let waiting = match list {
                Some(_) => store
                    .get(spool)
                    .await?
                    .is_some_and(|(m, _)| m.state.unfinished()),
                None => false,
            };
            if !waiting {
                store.archived_done(&address, spool).await?;
            }
            continue;
        };
        let now = crate::auth::unix_now();
        match read::entry(&address, signed, Some(spool), now) {
            Some(entry) => {
                store.archive_post(entry).await?;
                archived += 1;
            }
            None => store.archived_done(&address, spool).await?,
        }
    }
    Ok(archived)
}

/// Catches the archive up at start and then every minute, until `tasks` stop.
pub async fn run(store: std::sync::Arc<Store>, lists: super::Lists, tasks: Tasks) {
    while !tasks.is_stopping() {
        match catch_up(&store, &lists).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(posts = n, "archive caught up from the store"),
            Err(e) => {
                tracing::warn!(error = %e, "catching the archive up failed; trying again in a minute")
            }
        }
        tokio::select! {
            _ = tasks.stopping() => return,
            _ = tokio::time::sleep(CATCH_UP_EVERY) => {}
        }
    }
}
