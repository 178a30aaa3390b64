//! What the archive reads out of a post: the fields its pages list (Message-ID, date,
//! subject, author, what it answers) and its text, for the search and the message page. HTML
//! is only ever turned into text here, never passed on as HTML (`docs/archive.md` says why).

use crate::state::store::SpoolId;
use crate::state::store::archive::{ArchivedPost, NewArchivedPost, archive_id};
use mail_parser::{Message, MessageParser, MimeHeaders};

/// The most text of one post the search reads.
const MAX_TEXT: usize = 64 * 1024;

/// The Message-ID a post without one is archived under: one per spooled post.
pub fn stand_in_message_id(list: &str, spool: SpoolId) -> String {
    let domain = list.rsplit_once('@').map_or(list, |(_, d)| d);
    format!("<arclist-post-{spool}@{domain}>")
}

/// The parsed message, or `None` for bytes that are no message at all.
pub fn parse(raw: &[u8]) -> Option<Message<'_>> {
    MessageParser::default().parse(raw)
}

/// The post's Message-ID with its angle brackets, when it has one.
pub fn message_id(message: &Message<'_>) -> Option<String> {
    let id = message.message_id()?.trim();
    (!id.is_empty() && id.len() <= 998).then(|| format!("<{id}>"))
}

/// The archive id the post of `list` with `raw` bytes gets (its `Archived-At` names it);
/// `spool` names a post without a Message-ID.
pub fn id_of(list: &str, raw: &[u8], spool: Option<SpoolId>) -> Option<String> {
    let message = parse(raw)?;
    let mid = message_id(&message).or_else(|| spool.map(|s| stand_in_message_id(list, s)))?;
    Some(archive_id(list, &mid))
}

/// The Message-IDs `message` answers: In-Reply-To first, then References from the newest.
fn answers(message: &Message<'_>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |ids: Option<&[std::borrow::Cow<'_, str>]>, one: Option<&str>| {
        let ids: Vec<String> = match (ids, one) {
            (Some(list), _) => list.iter().rev().map(|s| s.to_string()).collect(),
            (None, Some(id)) => vec![id.to_string()],
            _ => Vec::new(),
        };
        for id in ids {
            let id = format!("<{}>", id.trim());
            if !out.contains(&id) {
                out.push(id);
            }
        }
    };
    let irt = message.in_reply_to();
    add(irt.as_text_list(), irt.as_text());
    let refs = message.references();
    add(refs.as_text_list(), refs.as_text());
    out
}

/// A post ready to archive for `list`: `raw` as members got it, `spool` the post it came from
/// (none for an import), `arrival` the time to use when its Date is missing. `None` for bytes
/// that are no message or, without a spooled post, carry no Message-ID.
pub fn entry(
    list: &str,
    raw: Vec<u8>,
    spool: Option<SpoolId>,
    arrival: u64,
) -> Option<NewArchivedPost> {
    let message = parse(&raw)?;
    let message_id =
        message_id(&message).or_else(|| spool.map(|s| stand_in_message_id(list, s)))?;
    let list = list.to_ascii_lowercase();
    // A date before 1990 or more than a day ahead is a broken clock: the arrival is nearer.
    let date = message
        .date()
        .map(|d| d.to_timestamp())
        .filter(|t| *t >= 631_152_000 && *t <= (arrival as i64).saturating_add(86_400))
        .map_or(arrival, |t| t as u64);
    let subject = message.subject().unwrap_or_default().trim().to_string();
    let (author_name, author_address) = message
        .from()
        .and_then(|a| a.first())
        .map(|a| {
            (
                a.name().unwrap_or_default().trim().to_string(),
                a.address().unwrap_or_default().trim().to_ascii_lowercase(),
            )
        })
        .unwrap_or_default();
    let mut text = format!("{subject}\n{author_name}\n{author_address}\n");
    text.push_str(&body_text(&message));
    truncate(&mut text, MAX_TEXT);
    let answers = answers(&message);
    let size = raw.len();
    drop(message);
    Some(NewArchivedPost {
        post: ArchivedPost {
            id: archive_id(&list, &message_id),
            list,
            message_id,
            date,
            subject,
            author_name,
            author_address,
            parent: None,
            thread: String::new(),
            size,
            removed: false,
            spool_id: spool,
        },
        answers,
        raw,
        text,
    })
}

/// Cuts `text` to at most `max` bytes, at a character's edge.
fn truncate(text: &mut String, max: usize) {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
}

/// The post's text: its text/plain bodies, else its HTML bodies turned into text.
pub fn body_text(message: &Message<'_>) -> String {
    let mut out = String::new();
    for i in 0..message.text_body_count() {
        if let Some(part) = message.text_part(i as u32) {
            let text = part.text_contents().unwrap_or_default();
            if part.is_text_html() {
                out.push_str(&html_to_text(text));
            } else {
                out.push_str(text);
            }
            out.push('\n');
        }
    }
    if out.trim().is_empty() {
        for i in 0..message.html_body_count() {
            if let Some(part) = message.html_part(i as u32) {
                out.push_str(&html_to_text(part.text_contents().unwrap_or_default()));
                out.push('\n');
            }
        }
    }
    out
}

/// An attachment of a post, as the message page lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Attachment {
    /// Its position among the post's attachments (what its URL names).
    pub index: usize,
    /// Its file name, as the sender gave it (shown escaped), or `attachment-N`.
    pub name: String,
    /// Its MIME type, as the sender declared it.
    pub content_type: String,
    /// Its size, decoded.
    pub size: usize,
}

/// The post's attachments.
pub fn attachments(message: &Message<'_>) -> Vec<Attachment> {
    message
        .attachments()
        .enumerate()
        .map(|(index, part)| Attachment {
            index,
            name: part
                .attachment_name()
                .map_or_else(|| format!("attachment-{}", index + 1), str::to_string),
            content_type: part.content_type().map_or_else(
                || "application/octet-stream".to_string(),
                |c| match c.subtype() {
                    Some(sub) => format!("{}/{}", c.ctype(), sub),
                    None => c.ctype().to_string(),
                },
            ),
            size: part.contents().len(),
        })
        .collect()
}

/// Attachment `index`'s name and decoded bytes.
pub fn attachment(message: &Message<'_>, index: usize) -> Option<(String, Vec<u8>)> {
    let part = message.attachments().nth(index)?;
    let name = part
        .attachment_name()
        .map_or_else(|| format!("attachment-{}", index + 1), str::to_string);
    Some((name, part.contents().to_vec()))
}

/// HTML as plain text: tags dropped (with what `script`, `style` and comments hold), block
/// ends as line breaks, the common entities decoded. The result is text and is escaped
/// wherever it is shown; nothing of the markup survives as markup.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let lower = html.to_ascii_lowercase();
    let mut i = 0;
    while i < html.len() {
        let Some(rest) = html.get(i..) else { break };
        if !rest.starts_with('<') {
            let next = rest.find('<').map_or(html.len(), |n| i + n);
            out.push_str(&decode_entities(&html[i..next]));
            i = next;
            continue;
        }
        let low = &lower[i..];
        if low.starts_with("<!--") {
            i = low.find("-->").map_or(html.len(), |n| i + n + 3);
            continue;
        }
        let skip_to = ["script", "style", "head", "title"]
            .iter()
            .find(|t| low[1..].starts_with(*t))
            .map(|t| format!("</{t}"));
        let tag_end = low.find('>').map_or(html.len(), |n| i + n + 1);
        let name: String = low[1..]
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        if matches!(
            name.as_str(),
            "br" | "p" | "div" | "li" | "tr" | "h1" | "h2" | "h3" | "h4" | "blockquote" | "pre"
        ) {
            out.push('\n');
        }
        i = match skip_to {
            Some(close) => lower[tag_end.min(html.len())..]
                .find(&close)
                .map(|n| tag_end + n)
                .and_then(|at| lower[at..].find('>').map(|n| at + n + 1))
                .unwrap_or(html.len()),
            None => tag_end,
        };
    }
    out
}

fn decode_entities(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    text.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_becomes_text_without_scripts_or_styles() {
        let text = html_to_text(
            "<html><head><style>p{}</style></head><body><p>Hi &amp; <b>bye</b>\
             <script>alert(1)</script><img src=x onerror=alert(2)>&lt;script&gt;</p></body>",
        );
        assert_eq!(text.trim(), "Hi & bye<script>");
    }

    #[test]
    fn a_reply_names_what_it_answers_newest_first() {
        let raw = b"Message-ID: <c@x>\r\nIn-Reply-To: <b@x>\r\nReferences: <a@x> <b@x>\r\n\
                    From: A <A@X.org>\r\nSubject: Re: hi\r\nDate: Thu, 3 Dec 2026 10:00:00 +0000\r\n\r\nbody\r\n";
        let e = entry("L@x.org", raw.to_vec(), None, 1_800_000_000).expect("entry");
        assert_eq!(e.answers, vec!["<b@x>", "<a@x>"]);
        assert_eq!(e.post.author_address, "a@x.org");
        assert_eq!(e.post.list, "l@x.org");
        assert_eq!(e.post.date, 1_796_292_000);
        assert!(e.text.contains("body"));
    }
}
