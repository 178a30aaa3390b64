//! The list footer, added where readers see it and where it cannot corrupt the post.
//!
//! - text/plain (7bit, 8bit, quoted-printable or base64): decoded, the footer appended after
//!   a `-- ` line, encoded back the same way. A non-ASCII footer in a 7bit part makes the part
//!   quoted-printable (valid 7-bit); in a US-ASCII part the charset becomes UTF-8; a part in
//!   another charset gets an ASCII footer only.
//! - text/html: the footer, escaped (non-ASCII as character references, so any charset
//!   holds it), goes in before `</body>`.
//! - multipart/alternative: the footer goes into each text and HTML alternative (and into the
//!   root of a multipart/related one), so whichever the reader's client shows has it. Wrapping
//!   the alternatives in multipart/mixed with a footer part was the other choice; several
//!   clients show such a part as an attachment, or not at all beside HTML.
//! - multipart/related: into its root part. multipart/mixed: into its first part when that is
//!   the message itself (text, HTML or their alternatives, not an attachment), as readers see
//!   it; otherwise a text/plain part of its own before the closing boundary. Attachments stay
//!   as they were.
//! - A footed part keeps its final line break (the CRLF before a boundary is the boundary's).
//! - Signed or encrypted posts (multipart/signed, multipart/encrypted, application/pkcs7-mime)
//!   and anything else are left alone: a footer would break the sender's signature.
//!
//! Parts the footer does not touch keep every byte.

use super::mime::{self, ContentType, Part, encoding};
use crate::auth::message::RawMessage;
use encoding::Encoding;

/// Nested multiparts followed before giving up.
const MAX_DEPTH: usize = 4;

/// The post's new body and the top-level header fields to set with it.
pub struct Footed {
    /// The new body.
    pub body: Vec<u8>,
    /// Header fields to replace (`Content-Type`, `Content-Transfer-Encoding`) when the footer
    /// changed them.
    pub fields: Vec<(&'static str, String)>,
}

/// What adding the footer did to one entity: its new body and changed header fields.
struct Changed {
    body: Vec<u8>,
    fields: Vec<(&'static str, String)>,
}

/// Why the footer was left out of a post (the post goes on without it).
#[derive(Debug, thiserror::Error)]
pub enum FooterError {
    /// Text in UTF-16, UTF-32 or UCS: appending ASCII bytes would corrupt it.
    #[error("{what} in a charset that is not ASCII-compatible")]
    AsciiIncompatible {
        /// "text" or "HTML".
        what: &'static str,
    },
    /// A media type the footer does not go into (signed, encrypted, an attachment).
    #[error("{media} is left as it is")]
    Untouched {
        /// The media type.
        media: String,
    },
    /// A text part in a transfer encoding arclist does not know.
    #[error("{media} in {encoding}")]
    UnknownEncoding {
        /// The part's media type.
        media: &'static str,
        /// The Content-Transfer-Encoding as written, `?` when absent.
        encoding: String,
    },
    /// A non-ASCII footer and a text part in a charset other than UTF-8 or US-ASCII.
    #[error("non-ASCII footer in a {charset} part")]
    Charset {
        /// The part's charset.
        charset: String,
    },
    /// Base64 text that does not decode.
    #[error("base64 text that does not decode: {0}")]
    Base64(#[from] base64::DecodeError),
    /// A multipart without its boundary parameter.
    #[error("{media} without boundary")]
    NoBoundary {
        /// "multipart" or the media type.
        media: &'static str,
    },
    /// A multipart whose closing boundary is missing.
    #[error("no closing boundary")]
    NoClosingBoundary,
    /// None of a multipart's parts could take the footer.
    #[error("no part of the {media} took the footer")]
    NoPart {
        /// The multipart's media type.
        media: String,
    },
}

/// The body with `footer` added, or why it was left alone.
pub fn with_footer(message: &RawMessage<'_>, footer: &str) -> Result<Footed, FooterError> {
    let header = |name: &str| {
        message
            .fields(name)
            .next()
            .map(|f| f.unfolded_value().trim().to_string())
    };
    let footer = footer.replace("\r\n", "\n").replace('\n', "\r\n");
    let changed = entity(
        header("Content-Type").as_deref(),
        header("Content-Transfer-Encoding").as_deref(),
        message.body,
        &footer,
        0,
    )?;
    let mut fields = changed.fields;
    // Content fields mean nothing without MIME-Version (RFC 2045 §4).
    if !fields.is_empty() && header("MIME-Version").is_none() {
        fields.push(("MIME-Version", "1.0".into()));
    }
    Ok(Footed {
        body: changed.body,
        fields,
    })
}

fn entity(
    content_type: Option<&str>,
    cte: Option<&str>,
    body: &[u8],
    footer: &str,
    depth: usize,
) -> Result<Changed, FooterError> {
    let ct = ContentType::parse(content_type);
    match ct.media.as_str() {
        "text/plain" => plain(&ct, cte, body, footer),
        "text/html" if ascii_incompatible(&ct) => {
            Err(FooterError::AsciiIncompatible { what: "HTML" })
        }
        "text/html" => html(cte, body, footer),
        "multipart/alternative" if depth < MAX_DEPTH => alternative(&ct, body, footer, depth),
        "multipart/related" if depth < MAX_DEPTH => related(&ct, body, footer, depth),
        "multipart/mixed" if depth < MAX_DEPTH => {
            first_part(&ct, body, footer, depth).or_else(|_| mixed(&ct, body, footer))
        }
        "multipart/mixed" => mixed(&ct, body, footer),
        other => Err(FooterError::Untouched {
            media: other.to_string(),
        }),
    }
}

/// A text part in a transfer encoding arclist does not decode.
fn unknown(media: &'static str, cte: Option<&str>) -> FooterError {
    FooterError::UnknownEncoding {
        media,
        encoding: cte.unwrap_or("?").to_string(),
    }
}

/// Charsets in which ASCII bytes are not ASCII text: a footer cannot simply be appended.
fn ascii_incompatible(ct: &ContentType) -> bool {
    ct.param("charset")
        .map(str::to_ascii_lowercase)
        .is_some_and(|c| c.starts_with("utf-16") || c.starts_with("utf-32") || c.starts_with("ucs"))
}

fn plain(
    ct: &ContentType,
    cte: Option<&str>,
    body: &[u8],
    footer: &str,
) -> Result<Changed, FooterError> {
    if ascii_incompatible(ct) {
        return Err(FooterError::AsciiIncompatible { what: "text" });
    }
    let enc = Encoding::parse(cte).ok_or_else(|| unknown("text/plain", cte))?;
    let mut fields = Vec::new();
    if !footer.is_ascii() {
        match ct.param("charset").map(str::to_ascii_lowercase).as_deref() {
            Some("utf-8" | "utf8") => {}
            None | Some("us-ascii") => fields.push(("Content-Type", ct.with_charset("utf-8"))),
            Some(other) => {
                return Err(FooterError::Charset {
                    charset: other.to_string(),
                });
            }
        }
    }
    let mut text = enc.decode(body)?;
    if !text.is_empty() && !text.ends_with(b"\r\n") && !text.ends_with(b"\n") {
        text.extend_from_slice(b"\r\n");
    }
    text.extend_from_slice(b"-- \r\n");
    text.extend_from_slice(footer.as_bytes());
    text.extend_from_slice(b"\r\n");
    // 8-bit text may not travel as 7bit: quoted-printable keeps the part valid 7-bit.
    let enc = match enc {
        Encoding::SevenBit if !text.is_ascii() => {
            fields.push((
                "Content-Transfer-Encoding",
                Encoding::Quoted.as_str().into(),
            ));
            Encoding::Quoted
        }
        e => e,
    };
    Ok(Changed {
        body: enc.encode(&text),
        fields,
    })
}

fn html(cte: Option<&str>, body: &[u8], footer: &str) -> Result<Changed, FooterError> {
    let enc = Encoding::parse(cte).ok_or_else(|| unknown("text/html", cte))?;
    let text = enc.decode(body)?;
    let block = format!(
        "<div class=\"list-footer\"><hr>{}</div>\r\n",
        escape(footer).replace("\r\n", "<br>\r\n")
    );
    let lower = text.to_ascii_lowercase();
    let at = memchr::memmem::rfind(&lower, b"</body>")
        .or_else(|| memchr::memmem::rfind(&lower, b"</html>"))
        .unwrap_or(text.len());
    let mut out = Vec::with_capacity(text.len() + block.len());
    out.extend_from_slice(&text[..at]);
    out.extend_from_slice(block.as_bytes());
    out.extend_from_slice(&text[at..]);
    Ok(Changed {
        body: enc.encode(&out),
        fields: Vec::new(),
    })
}

/// HTML text for `s`, non-ASCII as character references.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c if c.is_ascii() => out.push(c),
            c => out.push_str(&format!("&#{};", u32::from(c))),
        }
    }
    out
}

fn alternative(
    ct: &ContentType,
    body: &[u8],
    footer: &str,
    depth: usize,
) -> Result<Changed, FooterError> {
    let wanted = |media: &str| matches!(media, "text/plain" | "text/html" | "multipart/related");
    rebuild(ct, body, footer, depth, |_, media| wanted(media))
}

fn related(
    ct: &ContentType,
    body: &[u8],
    footer: &str,
    depth: usize,
) -> Result<Changed, FooterError> {
    // The root is the first part (RFC 2387 §3.2, without a start parameter).
    rebuild(ct, body, footer, depth, |n, _| n == 0)
}

/// The multipart `body` with the footer added to the parts `pick` chooses (by position and
/// media type); an error when none of them took it.
fn rebuild(
    ct: &ContentType,
    body: &[u8],
    footer: &str,
    depth: usize,
    pick: impl Fn(usize, &str) -> bool,
) -> Result<Changed, FooterError> {
    let boundary = ct
        .param("boundary")
        .ok_or(FooterError::NoBoundary { media: "multipart" })?;
    let layout = mime::layout(body, boundary).ok_or(FooterError::NoClosingBoundary)?;
    let mut out = Vec::with_capacity(body.len() + footer.len() * 4);
    let mut done = 0;
    let mut last = 0;
    for (n, &(start, end)) in layout.parts.iter().enumerate() {
        let part = Part::split(&body[start..end]);
        let part_ct = part.field("Content-Type");
        let media = ContentType::parse(part_ct.as_deref()).media;
        if !pick(n, &media) {
            continue;
        }
        let cte = part.field("Content-Transfer-Encoding");
        let Ok(changed) = entity(
            part_ct.as_deref(),
            cte.as_deref(),
            part.body,
            footer,
            depth + 1,
        ) else {
            continue;
        };
        out.extend_from_slice(&body[last..start]);
        let head = mime::replace_fields(part.head, &changed.fields);
        if !head.is_empty() {
            out.extend_from_slice(&head);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        // The CRLF before the next boundary belongs to the boundary (RFC 2046 §5.1.1): a part
        // that ended with a line break of its own keeps it; one that did not gets none.
        match part.body.ends_with(b"\r\n") {
            true => out.extend_from_slice(&changed.body),
            false => {
                out.extend_from_slice(changed.body.strip_suffix(b"\r\n").unwrap_or(&changed.body))
            }
        }
        last = end;
        done += 1;
    }
    if done == 0 {
        return Err(FooterError::NoPart {
            media: ct.media.clone(),
        });
    }
    out.extend_from_slice(&body[last..]);
    Ok(Changed {
        body: out,
        fields: Vec::new(),
    })
}

/// multipart/mixed whose first part is the message a reader reads (text, HTML, or their
/// alternatives, not an attachment): the footer goes inside it, where every client shows it;
/// an error sends the caller to a footer part of its own.
fn first_part(
    ct: &ContentType,
    body: &[u8],
    footer: &str,
    depth: usize,
) -> Result<Changed, FooterError> {
    let boundary = ct
        .param("boundary")
        .ok_or(FooterError::NoBoundary { media: "multipart" })?;
    let layout = mime::layout(body, boundary).ok_or(FooterError::NoClosingBoundary)?;
    let &(start, end) = layout.parts.first().ok_or(FooterError::NoPart {
        media: ct.media.clone(),
    })?;
    let first = Part::split(&body[start..end]);
    let attached = first
        .field("Content-Disposition")
        .is_some_and(|d| d.trim().to_ascii_lowercase().starts_with("attachment"));
    let media = ContentType::parse(first.field("Content-Type").as_deref()).media;
    let readable = matches!(
        media.as_str(),
        "text/plain" | "text/html" | "multipart/alternative" | "multipart/related"
    );
    if attached || !readable {
        return Err(FooterError::NoPart {
            media: ct.media.clone(),
        });
    }
    rebuild(ct, body, footer, depth, |n, _| n == 0)
}

fn mixed(ct: &ContentType, body: &[u8], footer: &str) -> Result<Changed, FooterError> {
    let boundary = ct.param("boundary").ok_or(FooterError::NoBoundary {
        media: "multipart/mixed",
    })?;
    let close = format!("\r\n--{boundary}--");
    let at = memchr::memmem::rfind(body, close.as_bytes()).ok_or(FooterError::NoClosingBoundary)?;
    let (encoding, text) = if footer.is_ascii() {
        ("7bit", footer.as_bytes().to_vec())
    } else {
        ("quoted-printable", encoding::qp_encode(footer.as_bytes()))
    };
    let mut out = Vec::with_capacity(body.len() + text.len() + 200);
    out.extend_from_slice(&body[..at]);
    out.extend_from_slice(
        format!(
            "\r\n--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: {encoding}\r\nContent-Disposition: inline\r\n\r\n"
        )
        .as_bytes(),
    );
    out.extend_from_slice(&text);
    out.extend_from_slice(&body[at..]);
    Ok(Changed {
        body: out,
        fields: Vec::new(),
    })
}

#[cfg(test)]
mod tests;
