//! The list archive's pages on the `[http]` listener (`docs/archive.md`), under
//! `/archive/LIST/`: the list's months and search (`?q=`), a month by thread or by date
//! (`YYYY-MM/`, `?by=date`), its mbox (`YYYY-MM.mbox`), a thread (`t/ID`), a post (`m/ID`) and
//! its attachments (`m/ID/a/N`), and the Atom feed (`atom.xml`).
//!
//! Every page is rendered here from the store, escaped, with no script and nothing from
//! elsewhere ([`super::pages`]); every list of posts is bounded and paged. Readers are
//! anonymous: addresses are shown shortened. A `members` archive answers 404 to anyone but a
//! member signed in by the settings link mailed from the list's public page.

mod feed;
mod views;

use super::serve::{Request, Response, respond, text};
use crate::base::config::ArchiveMode;
use crate::stages::list::{ListRuntime, Lists};
use crate::state::store::Store;
use crate::state::store::archive::{is_archive_id, month_bounds};
use std::sync::Arc;

/// Posts on one month page.
pub const MONTH_PAGE: usize = 200;
/// Posts on one thread page.
pub const THREAD_PAGE: usize = 500;
/// Posts a search shows.
pub const SEARCH_RESULTS: usize = 50;
/// Posts in the Atom feed.
pub const FEED_POSTS: usize = 30;
/// Posts one month's mbox holds at most.
pub const MBOX_POSTS: usize = 20_000;
/// Month files made at once: each is held whole in memory while it is sent, so a crowd asking
/// for big months waits (503) instead of filling the memory.
pub const MBOX_AT_ONCE: usize = 2;

/// The archive pages of the lists served.
pub struct Archive {
    store: Arc<Store>,
    lists: Lists,
    /// The turns of month files ([`MBOX_AT_ONCE`]).
    mbox_turns: Arc<tokio::sync::Semaphore>,
}

/// What a request under `/archive/` asks for.
enum Asked<'a> {
    List,
    Month(&'a str),
    Mbox(&'a str),
    Thread(&'a str),
    Post(&'a str),
    Attachment(&'a str, usize),
    Feed,
}

impl Asked<'_> {
    /// The request for `rest` (what follows `/archive/LIST/`), when it is one.
    fn of(rest: &str) -> Option<Asked<'_>> {
        let parts: Vec<&str> = rest.split('/').collect();
        let asked = match parts.as_slice() {
            [""] => Asked::List,
            ["atom.xml"] => Asked::Feed,
            [month, ""] if month_bounds(month).is_some() => Asked::Month(month),
            [file] => {
                let month = file.strip_suffix(".mbox")?;
                month_bounds(month)?;
                Asked::Mbox(month)
            }
            ["t", id] if is_archive_id(id) => Asked::Thread(id),
            ["m", id] if is_archive_id(id) => Asked::Post(id),
            ["m", id, "a", n] if is_archive_id(id) => Asked::Attachment(id, n.parse().ok()?),
            _ => return None,
        };
        Some(asked)
    }
}

impl Archive {
    /// The archive pages of `lists`, read from `store`.
    pub fn new(store: Arc<Store>, lists: Lists) -> Self {
        Archive {
            store,
            lists,
            mbox_turns: Arc::new(tokio::sync::Semaphore::new(MBOX_AT_ONCE)),
        }
    }

    /// Whether `path` is the archive's.
    pub fn serves(path: &str) -> bool {
        path.starts_with("/archive/")
    }

    /// Answers a request under `/archive/`.
    pub async fn handle(&self, request: &Request) -> Response {
        if !matches!(request.method.as_str(), "GET" | "HEAD") {
            return text(405, "method not allowed");
        }
        let rest = request.path.trim_start_matches("/archive/");
        let Some((list, rest)) = rest.split_once('/') else {
            // `/archive/LIST` without its slash: the list page's relative links need it.
            return redirect(&format!("{}/", request.path));
        };
        let list = super::form::decode(list.as_bytes(), false).to_ascii_lowercase();
        let (Some(runtime), Some(asked)) = (self.readable(&list, request).await, Asked::of(rest))
        else {
            return text(404, "not found");
        };
        let query = super::form::urlencoded(request.query.as_deref().unwrap_or("").as_bytes());
        let view = views::View {
            store: &self.store,
            list: &runtime.config,
            query: &query,
        };
        let answer = match asked {
            Asked::List => view.list_page().await,
            Asked::Month(month) => view.month_page(month).await,
            Asked::Mbox(month) => match self.mbox_turns.try_acquire() {
                Ok(_turn) => view.month_mbox(month).await,
                Err(_) => Ok(text(
                    503,
                    "other month files are being made; try again shortly",
                )),
            },
            Asked::Thread(id) => view.thread_page(id).await,
            Asked::Post(id) => view.post_page(id).await,
            Asked::Attachment(id, n) => view.attachment(id, n).await,
            Asked::Feed => feed::atom(&view, runtime.base_url().unwrap_or_default()).await,
        };
        let mut answer = answer.unwrap_or_else(|e| {
            tracing::error!(list = %list, path = %request.path, error = %e, "an archive page could not be read from the store");
            text(503, "the archive cannot be read now; try again later")
        });
        if runtime.config.archive == ArchiveMode::Members {
            // A member's page must not be kept by a cache another reader shares.
            answer.headers_mut().insert(
                hyper::header::CACHE_CONTROL,
                hyper::header::HeaderValue::from_static("private, no-store"),
            );
        }
        if runtime.config.archive_noindex {
            answer.headers_mut().insert(
                "x-robots-tag",
                hyper::header::HeaderValue::from_static("noindex"),
            );
        }
        answer
    }

    /// The list `list` when this reader may read its archive: anyone for a public archive,
    /// for a members-only one a member signed in by their settings link (its token, kept as
    /// the reader cookie, names the list and the address and has not expired; membership is
    /// checked now, so one who left is out at once).
    async fn readable(&self, list: &str, request: &Request) -> Option<Arc<ListRuntime>> {
        let runtime = self.lists.get(list)?;
        match runtime.config.archive {
            ArchiveMode::Public => Some(runtime),
            ArchiveMode::Members => self.signed_in(list, request).await.then_some(runtime),
            ArchiveMode::Off => None,
        }
    }

    /// Whether `request` carries the reader cookie of a current member of `list`.
    async fn signed_in(&self, list: &str, request: &Request) -> bool {
        use crate::stages::list::tokens::{LinkUse, open_link};
        let cookie = super::member_pages::READER_COOKIE;
        let Some(token) = request.header("cookie").and_then(|h| {
            h.split(';')
                .filter_map(|c| c.trim().split_once('='))
                .find(|(name, _)| *name == cookie)
                .map(|(_, v)| v.to_string())
        }) else {
            return false;
        };
        let Ok(secret) = self.store.token_secret().await else {
            return false;
        };
        let now = crate::auth::unix_now();
        let Some(link) = open_link(&secret, LinkUse::Settings, &token, now) else {
            return false;
        };
        link.list.eq_ignore_ascii_case(list)
            && self
                .store
                .is_member(list, &link.address)
                .await
                .unwrap_or(false)
    }
}

/// A redirect to `location` (a path of ours).
fn redirect(location: &str) -> Response {
    let mut answer = respond(308, "text/plain; charset=utf-8", "moved\n");
    if let Ok(value) = hyper::header::HeaderValue::from_str(location) {
        answer.headers_mut().insert(hyper::header::LOCATION, value);
    }
    answer
}
