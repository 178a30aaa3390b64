//! The archive's pages, each made from a bounded read of the store. Every value reaches the
//! page through a template with escaping on; a post's HTML is shown as text.

use super::super::pages;
use super::super::serve::{Response, respond, text};
use super::{MBOX_POSTS, MONTH_PAGE, SEARCH_RESULTS, THREAD_PAGE};
use crate::base::config::ListConfig;
use crate::stages::list::archive::{PATH, export, read};
use crate::state::store::archive::{ArchivedPost, civil, is_archive_id, month_bounds};
use crate::state::store::{Store, StoreError};
use minijinja::{Value, context};
use serde::Serialize;

/// One request's view of one list's archive.
pub(super) struct View<'a> {
    pub store: &'a Store,
    pub list: &'a ListConfig,
    pub query: &'a [(String, String)],
}

/// A post as a line of a list of posts.
#[derive(Serialize)]
struct Line {
    id: String,
    subject: String,
    author: String,
    when: String,
    removed: bool,
    depth: usize,
}

/// The posts of one thread on a month page.
#[derive(Serialize)]
struct ThreadLines {
    thread: String,
    posts: Vec<Line>,
}

/// A date as readers read it: `2026-12-03 10:00 UTC`.
pub(super) fn when(t: u64) -> String {
    let (y, m, d) = civil((t / 86_400) as i64);
    let s = t % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        s / 3600,
        s / 60 % 60
    )
}

/// `text` with every address shortened for anonymous readers: `ann@example.org` becomes
/// `a…@example.org`, so a page does not hand harvesters the list's addresses.
pub(super) fn obscure(text: &str) -> String {
    let local = |c: char| c.is_alphanumeric() || "._%+-=!#$&'*/?^`{|}~".contains(c);
    let domain = |c: char| c.is_alphanumeric() || c == '.' || c == '-';
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '@' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let start = chars[..i]
            .iter()
            .rposition(|c| !local(*c))
            .map_or(0, |p| p + 1);
        let end = chars[i + 1..]
            .iter()
            .position(|c| !domain(*c))
            .map_or(chars.len(), |p| i + 1 + p);
        let host: String = chars[i + 1..end].iter().collect();
        if start < i && host.contains('.') {
            // Keep the first character of the local part, already written; drop the rest.
            let drop = i - start - 1;
            for _ in 0..drop {
                out.pop();
            }
            out.push('…');
        }
        out.push('@');
        i += 1;
    }
    out
}

/// A post's author as anonymous readers see them: the name, else the shortened address.
fn author(p: &ArchivedPost) -> String {
    if p.author_name.is_empty() {
        obscure(&p.author_address)
    } else {
        obscure(&p.author_name)
    }
}

fn line(p: &ArchivedPost, depth: usize) -> Line {
    Line {
        id: p.id.clone(),
        subject: obscure(&p.subject),
        author: author(p),
        when: when(p.date),
        removed: p.removed,
        depth,
    }
}

impl View<'_> {
    fn asked(&self, name: &str) -> Option<&str> {
        super::super::form::value(self.query, name)
    }

    /// The list's archive URL, as a path on this listener.
    fn list_url(&self) -> String {
        format!("{PATH}/{}/", self.list.address.to_ascii_lowercase())
    }

    /// What every archive page shows, with `more`.
    fn page(&self, name: &str, more: Value) -> Response {
        let base = context! {
            list_name => self.list.display_name(),
            list_url => self.list_url(),
            feed => format!("{}atom.xml", self.list_url()),
            noindex => self.list.archive_noindex,
        };
        pages::page(name, context! { ..base, ..more })
    }

    /// The list's months, and the posts a search `q` finds.
    pub async fn list_page(&self) -> Result<Response, StoreError> {
        let address = &self.list.address;
        let months: Vec<Value> = self
            .store
            .archived_months(address)
            .await?
            .into_iter()
            .map(|(month, posts)| context! { month, posts })
            .collect();
        let q = self.asked("q").unwrap_or_default().trim();
        let q: String = q.chars().take(200).collect();
        let mut found = Vec::new();
        if !q.is_empty() {
            found = self
                .store
                .archived_search(address, &q, SEARCH_RESULTS + 1)
                .await?;
        }
        let more = found.len() > SEARCH_RESULTS;
        found.truncate(SEARCH_RESULTS);
        let found: Vec<Line> = found.iter().map(|p| line(p, 0)).collect();
        Ok(self.page("archive_list.html", context! { months, q, found, more }))
    }

    /// One month's posts, a bounded page at a time, by thread or by date.
    pub async fn month_page(&self, month: &str) -> Result<Response, StoreError> {
        let Some(bounds) = month_bounds(month) else {
            return Ok(text(404, "not found"));
        };
        let after = self.asked("after").and_then(|a| {
            let (date, id) = a.split_once('-')?;
            is_archive_id(id).then_some(())?;
            Some((date.parse().ok()?, id.to_string()))
        });
        let mut posts = self
            .store
            .archived_between(&self.list.address, bounds, after, MONTH_PAGE + 1)
            .await?;
        let next = (posts.len() > MONTH_PAGE).then(|| {
            posts.truncate(MONTH_PAGE);
            posts
                .last()
                .map(|p| format!("{}-{}", p.date, p.id))
                .unwrap_or_default()
        });
        let by_date = self.asked("by") == Some("date");
        let mut threads: Vec<ThreadLines> = Vec::new();
        if !by_date {
            for p in &posts {
                match threads.iter_mut().find(|t| t.thread == p.thread) {
                    Some(t) => t.posts.push(line(p, 0)),
                    None => threads.push(ThreadLines {
                        thread: p.thread.clone(),
                        posts: vec![line(p, 0)],
                    }),
                }
            }
        }
        let posts: Vec<Line> = posts.iter().map(|p| line(p, 0)).collect();
        Ok(self.page(
            "archive_month.html",
            context! { month, by_date, posts, threads, next },
        ))
    }

    /// One month as mboxrd.
    pub async fn month_mbox(&self, month: &str) -> Result<Response, StoreError> {
        let Some(bounds) = month_bounds(month) else {
            return Ok(text(404, "not found"));
        };
        let address = &self.list.address;
        let (file, _) = export::mbox_between(self.store, address, bounds, MBOX_POSTS).await?;
        let name = format!("{}-{month}.mbox", safe_name(self.list.local_part()));
        Ok(download(file, "application/mbox", &name))
    }

    /// One thread, its posts by date, indented by what they answer.
    pub async fn thread_page(&self, thread: &str) -> Result<Response, StoreError> {
        let mut posts = self
            .store
            .archived_thread(&self.list.address, thread, THREAD_PAGE + 1)
            .await?;
        if posts.is_empty() {
            return Ok(text(404, "no such thread"));
        }
        let cut = posts.len() > THREAD_PAGE;
        posts.truncate(THREAD_PAGE);
        let mut depths = std::collections::HashMap::new();
        let mut lines = Vec::with_capacity(posts.len());
        for p in &posts {
            let depth = p
                .parent
                .as_ref()
                .and_then(|parent| depths.get(parent))
                .map_or(0, |d: &usize| (d + 1).min(8));
            depths.insert(p.id.clone(), depth);
            lines.push(line(p, depth));
        }
        let subject = posts
            .iter()
            .find(|p| !p.removed)
            .map(|p| obscure(&p.subject))
            .unwrap_or_default();
        Ok(self.page(
            "archive_thread.html",
            context! { subject, posts => lines, cut },
        ))
    }

    /// One post: From, Date, Subject, its text, its attachments; a placeholder once removed.
    pub async fn post_page(&self, id: &str) -> Result<Response, StoreError> {
        let address = &self.list.address;
        let Some(post) = self.store.archived(address, id).await? else {
            return Ok(text(404, "no such post"));
        };
        let month = post.month();
        let raw = match post.removed {
            true => None,
            false => self.store.archived_raw(address, id).await?,
        };
        let Some(raw) = raw else {
            let mut answer = self.page(
                "archive_message.html",
                context! { removed => true, month, thread => post.thread, id },
            );
            *answer.status_mut() = hyper::StatusCode::GONE;
            return Ok(answer);
        };
        let (body, attachments) = match read::parse(&raw) {
            Some(message) => (read::body_text(&message), read::attachments(&message)),
            None => (String::from_utf8_lossy(&raw).into_owned(), Vec::new()),
        };
        Ok(self.page(
            "archive_message.html",
            context! {
                removed => false,
                id,
                month,
                thread => post.thread,
                subject => obscure(&post.subject),
                author => author(&post),
                date => when(post.date),
                message_id => obscure(&post.message_id),
                body => obscure(&body),
                attachments,
            },
        ))
    }

    /// Attachment `n` of post `id`, as a download that no browser renders.
    pub async fn attachment(&self, id: &str, n: usize) -> Result<Response, StoreError> {
        let Some(raw) = self.store.archived_raw(&self.list.address, id).await? else {
            return Ok(text(404, "no such post"));
        };
        let found = read::parse(&raw).and_then(|m| read::attachment(&m, n));
        let Some((name, bytes)) = found else {
            return Ok(text(404, "no such attachment"));
        };
        Ok(download(
            bytes,
            "application/octet-stream",
            &safe_name(&name),
        ))
    }
}

/// `name` made safe for a `filename=` parameter: letters, digits, `.`, `_`, `-`.
fn safe_name(name: &str) -> String {
    let safe: String = name
        .chars()
        .take(100)
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    match safe.trim_start_matches('.') {
        "" => "download".to_string(),
        s => s.to_string(),
    }
}

/// `bytes` as a file to save, never to show: `attachment`, `nosniff`, and a policy that lets
/// nothing in it run should a browser open it anyway.
fn download(bytes: Vec<u8>, content_type: &str, name: &str) -> Response {
    let mut answer = respond(200, content_type, bytes);
    let headers = answer.headers_mut();
    let pairs = [
        (
            "content-disposition",
            format!("attachment; filename=\"{name}\""),
        ),
        ("x-content-type-options", "nosniff".to_string()),
        (
            "content-security-policy",
            "default-src 'none'; sandbox".to_string(),
        ),
    ];
    for (header, value) in pairs {
        if let Ok(value) = hyper::header::HeaderValue::from_str(&value) {
            headers.insert(header, value);
        }
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_shortened() {
        assert_eq!(
            obscure("mail ann.lee@example.org or <b@x.io>, not @home or a@b"),
            "mail a…@example.org or <b…@x.io>, not @home or a@b"
        );
        assert_eq!(safe_name("../évil\".html"), "__vil_.html");
    }
}
