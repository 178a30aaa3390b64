//! The Atom feed (RFC 4287) of a list's latest posts.

use super::super::serve::{Response, respond};
use super::FEED_POSTS;
use super::views::{View, obscure};
use crate::stages::list::archive::{list_url, post_url};
use crate::state::store::StoreError;
use crate::state::store::archive::civil;

/// `text` made safe inside XML.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 cannot carry at all.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

/// An RFC 3339 date.
fn rfc3339(t: u64) -> String {
    let (y, m, d) = civil((t / 86_400) as i64);
    let s = t % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// The feed of the list's newest posts, its links under `base` (the `[http]` base URL).
pub(super) async fn atom(view: &View<'_>, base: &str) -> Result<Response, StoreError> {
    let address = &view.list.address;
    let posts = view.store.archived_newest(address, FEED_POSTS).await?;
    let home = list_url(base, address);
    let updated = posts.first().map_or(0, |p| p.date);
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">\n\
         <title>{}</title>\n<id>{}</id>\n<link rel=\"alternate\" href=\"{}\"/>\n\
         <link rel=\"self\" href=\"{}atom.xml\"/>\n<updated>{}</updated>\n",
        xml(view.list.display_name()),
        xml(&home),
        xml(&home),
        xml(&home),
        rfc3339(updated)
    );
    for p in posts.iter().filter(|p| !p.removed) {
        let url = post_url(base, address, &p.id);
        let name = match p.author_name.is_empty() {
            true => obscure(&p.author_address),
            false => obscure(&p.author_name),
        };
        out.push_str(&format!(
            "<entry>\n<title>{}</title>\n<id>{}</id>\n<link href=\"{}\"/>\n\
             <updated>{}</updated>\n<author><name>{}</name></author>\n</entry>\n",
            xml(&obscure(&p.subject)),
            xml(&url),
            xml(&url),
            rfc3339(p.date),
            xml(if name.is_empty() { "unknown" } else { &name })
        ));
    }
    out.push_str("</feed>\n");
    Ok(respond(200, "application/atom+xml; charset=utf-8", out))
}
