//! The 7-bit copy of an 8-bit post (RFC 6152 §3): for receivers that do not offer 8BITMIME,
//! the list signs a second copy whose 8-bit parts are quoted-printable (text) or base64
//! (anything else), so no server on the way needs to convert it and break the signatures.
//! Headers are left as they are: a post with 8-bit header fields (SMTPUTF8) has no 7-bit form.

use super::mime::encoding::Encoding;
use super::mime::{self, ContentType, Part};
use crate::auth::message::RawMessage;

/// Nested multiparts followed.
const MAX_DEPTH: usize = 8;

/// The 7-bit form of `message` (CRLF wire form), or `None` when its body is 7-bit already or
/// its header is not (then no 7-bit form exists).
pub fn downgrade(message: &[u8]) -> Option<Vec<u8>> {
    let parsed = RawMessage::parse(message);
    if parsed.body.is_ascii() {
        return None;
    }
    let head_len = message.len() - parsed.body.len();
    let head = &message[..head_len];
    if !head.is_ascii() {
        return None;
    }
    let header = |name: &str| {
        parsed
            .fields(name)
            .next()
            .map(|f| f.unfolded_value().trim().to_string())
    };
    let (body, cte) = entity(
        header("Content-Type").as_deref(),
        header("Content-Transfer-Encoding").as_deref(),
        parsed.body,
        0,
    )?;
    let head = strip_blank(head);
    let mut out = match cte {
        Some(cte) => mime::replace_fields(head, &[("Content-Transfer-Encoding", cte.into())]),
        None => head.to_vec(),
    };
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(&body);
    Some(out)
}

/// A header block without the empty line that ends it.
fn strip_blank(head: &[u8]) -> &[u8] {
    head.strip_suffix(b"\r\n\r\n").unwrap_or(head)
}

/// The 7-bit body of one entity and, when it changed, its new transfer encoding.
fn entity(
    content_type: Option<&str>,
    cte: Option<&str>,
    body: &[u8],
    depth: usize,
) -> Option<(Vec<u8>, Option<&'static str>)> {
    if body.is_ascii() {
        return Some((body.to_vec(), None));
    }
    let ct = ContentType::parse(content_type);
    if ct.media.starts_with("multipart/") {
        if depth >= MAX_DEPTH {
            return None;
        }
        // A container declared 8bit holds only 7-bit parts now.
        let declared = cte.map(|c| c.trim().to_ascii_lowercase());
        let relabel = matches!(declared.as_deref(), Some("8bit" | "binary")).then_some("7bit");
        return multipart(&ct, body, depth).map(|b| (b, relabel));
    }
    // message/* may not be base64 or quoted-printable (RFC 2046 §5.2.1): no 7-bit form here.
    if ct.media.starts_with("message/") {
        return None;
    }
    // 8-bit data in a base64 or quoted-printable part is not valid MIME: leave it be.
    let raw = match Encoding::parse(cte) {
        Some(Encoding::SevenBit | Encoding::EightBit) => body,
        None if cte.is_some_and(|c| c.eq_ignore_ascii_case("binary")) => body,
        _ => return None,
    };
    let target = if ct.media.starts_with("text/") {
        Encoding::Quoted
    } else {
        Encoding::Base64
    };
    Some((target.encode(raw), Some(target.as_str())))
}

/// Each 8-bit part of a multipart body in its 7-bit form; the others byte for byte.
fn multipart(ct: &ContentType, body: &[u8], depth: usize) -> Option<Vec<u8>> {
    let boundary = ct.param("boundary")?;
    let layout = mime::layout(body, boundary)?;
    let mut out = Vec::with_capacity(body.len() + body.len() / 3);
    let mut last = 0;
    for &(start, end) in &layout.parts {
        let part = Part::split(&body[start..end]);
        if part.body.is_ascii() && part.head.is_ascii() {
            continue;
        }
        if !part.head.is_ascii() {
            return None;
        }
        let (new_body, cte) = entity(
            part.field("Content-Type").as_deref(),
            part.field("Content-Transfer-Encoding").as_deref(),
            part.body,
            depth + 1,
        )?;
        out.extend_from_slice(&body[last..start]);
        let fields: Vec<(&str, String)> = cte
            .map(|c| vec![("Content-Transfer-Encoding", c.to_string())])
            .unwrap_or_default();
        let head = mime::replace_fields(part.head, &fields);
        if !head.is_empty() {
            out.extend_from_slice(&head);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(new_body.strip_suffix(b"\r\n").unwrap_or(&new_body));
        last = end;
    }
    out.extend_from_slice(&body[last..]);
    (out.is_ascii()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eight_bit_text_becomes_quoted_printable_and_the_rest_stays() {
        let m = "Subject: x\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGr\u{fc}\u{df}e\r\n";
        let out = String::from_utf8(downgrade(m.as_bytes()).expect("8-bit")).expect("ascii");
        assert!(
            out.contains("Content-Transfer-Encoding: quoted-printable\r\n\r\nGr=C3=BC=C3=9Fe\r\n"),
            "{out}"
        );
        assert!(downgrade(b"Subject: x\r\n\r\nascii\r\n").is_none());
        let multi = "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\u{e9}t\u{e9}\r\n--b\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--b--\r\n";
        let out = String::from_utf8(downgrade(multi.as_bytes()).expect("8-bit")).expect("ascii");
        assert!(out.contains("\r\n\r\n=C3=A9t=C3=A9\r\n--b\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--b--\r\n"), "{out}");
        assert!(
            downgrade("Subject: \u{e9}\r\n\r\n\u{e9}\r\n".as_bytes()).is_none(),
            "8-bit header"
        );
        let forwarded = "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: y\r\n\r\n\u{e9}\r\n--b--\r\n";
        assert!(
            downgrade(forwarded.as_bytes()).is_none(),
            "message/rfc822 may not be encoded"
        );
    }
}
