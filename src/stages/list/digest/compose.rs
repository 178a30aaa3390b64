//! The two digests of the same posts: MIME (RFC 2046 §5.1.5: `multipart/mixed` with a
//! `text/plain` table of contents, then a `multipart/digest` of `message/rfc822` parts, each
//! the list's copy of a post) and plain text (RFC 1153).

use crate::auth::message::RawMessage;
use crate::base::config::ListConfig;
use crate::stages::outbound::compose::{Body, Multipart, Part};
use crate::state::store::DigestIssue;

/// What the table of contents says of one post.
pub(super) struct Entry<'a> {
    /// The list's copy, as members got it.
    pub copy: &'a [u8],
    subject: String,
    from: String,
    date: String,
}

impl<'a> Entry<'a> {
    /// The entry of the post `copy`.
    pub fn of(copy: &'a [u8]) -> Self {
        let parsed = RawMessage::parse(copy);
        let field = |name: &str| {
            parsed
                .fields(name)
                .next()
                .map(|f| f.unfolded_value().trim().to_string())
                .unwrap_or_default()
        };
        Entry {
            copy,
            subject: field("Subject"),
            from: field("From"),
            date: field("Date"),
        }
    }
}

/// The digest's Subject: `NAME Digest, Vol V, Issue I`.
pub(super) fn subject(cfg: &ListConfig, issue: DigestIssue) -> String {
    format!(
        "{} Digest, Vol {}, Issue {}",
        cfg.display_name(),
        issue.volume,
        issue.issue
    )
}

/// The table of contents, with the list's digest header above it.
fn contents(cfg: &ListConfig, posts: &[Entry<'_>]) -> String {
    let mut out = String::new();
    if !cfg.digest.header.is_empty() {
        out.push_str(&crlf(&cfg.digest.header));
        out.push_str("\r\n");
    }
    out.push_str(&format!(
        "To post to {}, write to {}.\r\nTo change how you get it (every post, a digest, no mail), write \"help\" to {}-request@{}.\r\n\r\nToday's Topics:\r\n\r\n",
        cfg.display_name(),
        cfg.address,
        cfg.local_part(),
        cfg.domain()
    ));
    for (n, post) in posts.iter().enumerate() {
        out.push_str(&format!(
            "   {}. {} ({})\r\n",
            n + 1,
            post.subject,
            post.from
        ));
    }
    out
}

/// The MIME digest's body.
pub(super) fn mime(cfg: &ListConfig, posts: &[Entry<'_>]) -> Body {
    let mut inner = Multipart::new("digest", "arclist-digest-post");
    for post in posts {
        inner = inner.part(Part::new("message/rfc822", post.copy));
    }
    let mut outer = Multipart::new("mixed", "arclist-digest")
        .part(Part::new("text/plain; charset=utf-8", contents(cfg, posts)))
        .part(Part::nested(inner.finish()));
    if !cfg.digest.footer.is_empty() {
        outer = outer.part(Part::new(
            "text/plain; charset=utf-8",
            crlf(&cfg.digest.footer),
        ));
    }
    outer.finish()
}

/// RFC 1153's line between the table of contents and the first message: 70 hyphens.
const TOPICS_END: &str = "----------------------------------------------------------------------";
/// RFC 1153's line between messages: 30 hyphens.
const SEPARATOR: &str = "------------------------------";

/// The plain-text digest's body (RFC 1153): the topics, then each post's Date, From and
/// Subject with its text, separated by lines of 30 hyphens, then the trailer.
pub(super) fn plain(cfg: &ListConfig, issue: DigestIssue, posts: &[Entry<'_>]) -> Body {
    let mut out = format!(
        "{} Digest\t{}\tVolume {}, Issue {}\r\n\r\n",
        cfg.display_name(),
        crate::state::store::modes::date_of(issue.sent_at),
        issue.volume,
        issue.issue
    );
    out.push_str(&contents(cfg, posts));
    out.push_str(&format!("\r\n{TOPICS_END}\r\n\r\n"));
    for (n, post) in posts.iter().enumerate() {
        if n > 0 {
            out.push_str(&format!("\r\n{SEPARATOR}\r\n\r\n"));
        }
        out.push_str(&format!(
            "Date: {}\r\nFrom: {}\r\nSubject: {}\r\n\r\n",
            post.date, post.from, post.subject
        ));
        out.push_str(&text_of(post.copy));
    }
    out.push_str(&format!("\r\n{SEPARATOR}\r\n\r\n"));
    if !cfg.digest.footer.is_empty() {
        out.push_str(&crlf(&cfg.digest.footer));
        out.push_str(&format!("\r\n{SEPARATOR}\r\n\r\n"));
    }
    let end = format!(
        "End of {} Digest, Vol {}, Issue {}",
        cfg.display_name(),
        issue.volume,
        issue.issue
    );
    out.push_str(&format!("{end}\r\n{}\r\n", "*".repeat(end.chars().count())));
    Body::single("text/plain; charset=utf-8", out)
}

/// The text a plain digest shows of a post: its body when it is plain text in a transfer
/// encoding it can show as is, else a note; a line that would read as a separator is
/// indented so it cannot end the message early.
fn text_of(copy: &[u8]) -> String {
    let parsed = RawMessage::parse(copy);
    let value = |name: &str| {
        parsed
            .fields(name)
            .next()
            .map(|f| f.unfolded_value().trim().to_ascii_lowercase())
            .unwrap_or_default()
    };
    let plain = value("Content-Type");
    let encoding = value("Content-Transfer-Encoding");
    let shown = (plain.is_empty() || plain.starts_with("text/plain"))
        && matches!(encoding.as_str(), "" | "7bit" | "8bit");
    let start = memchr::memmem::find(copy, b"\r\n\r\n").map_or(copy.len(), |i| i + 4);
    if !shown {
        return "[This post is not plain text; the MIME digest carries it whole.]\r\n".into();
    }
    let mut out = String::new();
    for line in String::from_utf8_lossy(&copy[start..]).lines() {
        if line.trim_end() == SEPARATOR || line.trim_end() == TOPICS_END {
            out.push(' ');
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out
}

/// `text` with CRLF line ends.
fn crlf(text: &str) -> String {
    text.lines().map(|l| format!("{l}\r\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_separator_in_a_post_cannot_end_it() {
        let post = format!("Subject: x\r\n\r\nabove\r\n{SEPARATOR}\r\nbelow\r\n");
        let text = text_of(post.as_bytes());
        assert!(text.contains(&format!(" {SEPARATOR}\r\n")), "{text}");
        let html = b"Content-Type: text/html\r\n\r\n<p>hi</p>\r\n";
        assert!(text_of(html).contains("not plain text"));
    }
}
