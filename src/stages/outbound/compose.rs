//! The mail arclist writes itself: header fields in the order given, each through the one
//! encoder ([`crate::base::header`]); a single-part body or a multipart one (`multipart/mixed`,
//! `multipart/report`) with a boundary that occurs in none of its parts; CRLF line ends;
//! the Date and Message-ID fields.
//!
//! Each part's body is written as given and closed with CRLF when it does not end with one,
//! then the next delimiter follows: the CRLF before a delimiter belongs to it (RFC 2046
//! §5.1.1), so a text part that must end in a line break of its own ends in a blank line,
//! and an attached message (which ends in CRLF) is attached exactly.

use crate::base::header::{field, text_field};

/// Longest header line we write where folding can avoid it (RFC 5322 §2.1.1).
const LINE: usize = 78;

/// A message being composed: its header so far.
#[derive(Debug, Default)]
pub struct Mail {
    head: String,
    content_written: bool,
}

impl Mail {
    /// An empty header.
    pub fn new() -> Self {
        Mail::default()
    }

    /// Adds `Name: value` (see [`crate::base::header::field`]: no value can add a field).
    pub fn field(mut self, name: &str, value: &str) -> Self {
        self.head.push_str(&field(name, value));
        self
    }

    /// Adds a field copied from a message as it came (`raw`, folding and all, ending in
    /// CRLF; empty adds nothing): a wrapped post's To, Cc, Date and Message-ID.
    pub fn copied(mut self, raw: &str) -> Self {
        self.head.push_str(raw);
        self
    }

    /// Adds unstructured text (a Subject), as RFC 2047 encoded words when not ASCII.
    pub fn text(mut self, name: &str, text: &str) -> Self {
        self.head.push_str(&text_field(name, text));
        self
    }

    /// Adds `Date:` for `unix` seconds.
    pub fn date(self, unix: u64) -> Self {
        self.field("Date", &crate::stages::trace::rfc5322_date(unix))
    }

    /// Adds `Message-ID: <left@domain>`; `left` should say what the message is and be unique
    /// (a kind, a spool id, a time: see [`unique`] where there is none).
    pub fn message_id(self, left: &str, domain: &str) -> Self {
        self.field("Message-ID", &format!("<{left}@{domain}>"))
    }

    /// Adds `MIME-Version: 1.0` and `body`'s `Content-Type` here; without this call they
    /// come last, before the body.
    pub fn content(mut self, body: &Body) -> Self {
        self.head.push_str(&field("MIME-Version", "1.0"));
        self.head.push_str(&body.content_type_field());
        self.content_written = true;
        self
    }

    /// The finished message: the header, the blank line, `body`.
    pub fn finish(self, body: Body) -> Vec<u8> {
        let mail = match self.content_written {
            true => self,
            false => self.content(&body),
        };
        let mut out = Vec::with_capacity(mail.head.len() + 2 + body.bytes.len());
        out.extend_from_slice(mail.head.as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&body.bytes);
        out
    }
}

/// A finished body and the Content-Type that describes it.
#[derive(Debug)]
pub struct Body {
    content_type: String,
    boundary: Option<String>,
    bytes: Vec<u8>,
}

impl Body {
    /// One part: `text` as `content_type` (`text/plain; charset=utf-8`).
    pub fn single(content_type: &str, text: impl Into<Vec<u8>>) -> Self {
        Body {
            content_type: content_type.to_string(),
            boundary: None,
            bytes: text.into(),
        }
    }

    /// The Content-Type field, folded before `boundary=` when one line would be too long.
    fn content_type_field(&self) -> String {
        let Some(boundary) = &self.boundary else {
            return field("Content-Type", &self.content_type);
        };
        let one_line = field(
            "Content-Type",
            &format!("{}; boundary=\"{boundary}\"", self.content_type),
        );
        if one_line.len() - 2 <= LINE {
            return one_line;
        }
        let first = field("Content-Type", &format!("{};", self.content_type));
        format!("{first}\tboundary=\"{boundary}\"\r\n")
    }
}

/// One part of a multipart body: its fields and its body.
#[derive(Debug)]
pub struct Part {
    head: String,
    body: Vec<u8>,
}

impl Part {
    /// A part of type `content_type` with `body` (see [the module](self) for line ends).
    pub fn new(content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Part {
            head: field("Content-Type", content_type),
            body: body.into(),
        }
    }

    /// A part whose body is a finished (multipart) body, as a `multipart/digest` inside a
    /// `multipart/mixed`.
    pub fn nested(body: Body) -> Self {
        Part {
            head: body.content_type_field(),
            body: body.bytes,
        }
    }

    /// Adds a field after Content-Type (`Content-Disposition`, `Content-Transfer-Encoding`).
    pub fn field(mut self, name: &str, value: &str) -> Self {
        self.head.push_str(&field(name, value));
        self
    }
}

/// A multipart body being put together.
#[derive(Debug)]
pub struct Multipart {
    content_type: String,
    boundary: String,
    preamble: String,
    parts: Vec<Part>,
}

impl Multipart {
    /// A `multipart/SUBTYPE` body (`mixed`, or `report; report-type=delivery-status`) whose
    /// boundary is `boundary`, or `boundary_N` for the first N that occurs in no part.
    pub fn new(subtype: &str, boundary: &str) -> Self {
        Multipart {
            content_type: format!("multipart/{subtype}"),
            boundary: boundary.to_string(),
            preamble: String::new(),
            parts: Vec::new(),
        }
    }

    /// Text before the first part, for readers that do not know MIME; none by default.
    pub fn preamble(mut self, text: &str) -> Self {
        self.preamble = text.to_string();
        self
    }

    /// Adds `part` after those already there.
    pub fn part(mut self, part: Part) -> Self {
        self.parts.push(part);
        self
    }

    /// The body, with its boundary chosen.
    pub fn finish(self) -> Body {
        let boundary = self.free_boundary();
        let size: usize = self.parts.iter().map(|p| p.head.len() + p.body.len()).sum();
        let mut out = Vec::with_capacity(size + self.preamble.len() + 64 * self.parts.len());
        if !self.preamble.is_empty() {
            close_line(&mut out, self.preamble.as_bytes());
        }
        for part in &self.parts {
            out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
            out.extend_from_slice(part.head.as_bytes());
            out.extend_from_slice(b"\r\n");
            close_line(&mut out, &part.body);
        }
        out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        Body {
            content_type: self.content_type,
            boundary: Some(boundary),
            bytes: out,
        }
    }

    /// The boundary asked for, numbered until it occurs in no part (RFC 2046 §5.1.1).
    fn free_boundary(&self) -> String {
        let used = |b: &str| {
            memchr::memmem::find(self.preamble.as_bytes(), b.as_bytes()).is_some()
                || (self.parts.iter())
                    .any(|p| memchr::memmem::find(&p.body, b.as_bytes()).is_some())
        };
        let mut boundary = self.boundary.clone();
        let mut n = 0u32;
        while used(&boundary) {
            n += 1;
            boundary = format!("{}_{n}", self.boundary);
        }
        boundary
    }
}

/// Appends `text` and, unless it ends with one, CRLF.
fn close_line(out: &mut Vec<u8>, text: &[u8]) {
    out.extend_from_slice(text);
    if !text.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
}

/// A random left part for a Message-ID of mail tied to nothing else unique (`n` and 16 hex
/// digits); `None` when the system has no randomness to give.
pub fn unique() -> Option<String> {
    let mut r = [0u8; 8];
    aws_lc_rs::rand::fill(&mut r).ok()?;
    Some(format!("n{:x}", u64::from_be_bytes(r)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_come_in_order_and_mime_fields_last_unless_placed() {
        let plain = Body::single("text/plain; charset=utf-8", "hi\r\n");
        let m = Mail::new()
            .field("From", "<a@x.test>")
            .text("Subject", "caf\u{e9}")
            .finish(plain);
        assert_eq!(
            String::from_utf8(m).unwrap(),
            "From: <a@x.test>\r\nSubject: =?UTF-8?B?Y2Fmw6k=?=\r\nMIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\r\nhi\r\n"
        );
        let plain = Body::single("text/plain", "x");
        let m = Mail::new()
            .content(&plain)
            .field("Reply-To", "<r@x.test>")
            .copied("Cc: <c@x.test>,\r\n\t<d@x.test>\r\n")
            .copied("")
            .finish(plain);
        assert_eq!(
            String::from_utf8(m).unwrap(),
            "MIME-Version: 1.0\r\nContent-Type: text/plain\r\nReply-To: <r@x.test>\r\n\
             Cc: <c@x.test>,\r\n\t<d@x.test>\r\n\r\nx"
        );
    }

    #[test]
    fn a_value_cannot_add_a_field() {
        let m = Mail::new()
            .field("To", "<a@x.test>\r\nBcc: <b@y.test>")
            .finish(Body::single("text/plain", ""));
        let m = String::from_utf8(m).unwrap();
        assert!(!m.contains("\r\nBcc"), "{m}");
    }

    #[test]
    fn date_and_message_id() {
        let m = Mail::new()
            .date(1_795_000_000)
            .message_id("notice.7.1795000000", "lists.test")
            .finish(Body::single("text/plain", ""));
        let m = String::from_utf8(m).unwrap();
        assert!(
            m.starts_with(
                "Date: Wed, 18 Nov 2026 11:06:40 +0000\r\n\
                 Message-ID: <notice.7.1795000000@lists.test>\r\n"
            ),
            "{m}"
        );
        let (a, b) = (unique().unwrap(), unique().unwrap());
        assert!(a.starts_with('n') && a != b, "{a} {b}");
    }

    #[test]
    fn multipart_bodies_close_each_part_and_end_with_the_final_delimiter() {
        let body = Multipart::new("mixed", "=_t")
            .preamble("For MIME readers.\r\n\r\n")
            .part(Part::new("text/plain", "text\r\n\r\n"))
            .part(
                Part::new("message/rfc822", "Subject: s\r\n\r\nx")
                    .field("Content-Disposition", "inline"),
            )
            .finish();
        assert_eq!(
            String::from_utf8(body.bytes.clone()).unwrap(),
            "For MIME readers.\r\n\r\n--=_t\r\nContent-Type: text/plain\r\n\r\ntext\r\n\r\n\
             --=_t\r\nContent-Type: message/rfc822\r\nContent-Disposition: inline\r\n\r\n\
             Subject: s\r\n\r\nx\r\n--=_t--\r\n"
        );
        let m = String::from_utf8(Mail::new().finish(body)).unwrap();
        assert!(
            m.starts_with(
                "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"=_t\"\r\n\r\nFor"
            ),
            "{m}"
        );
        // No preamble: the first delimiter follows the header's blank line.
        let bare = Multipart::new("mixed", "=_t")
            .part(Part::new("text/plain", "t"))
            .finish();
        assert_eq!(
            bare.bytes,
            b"--=_t\r\nContent-Type: text/plain\r\n\r\nt\r\n--=_t--\r\n"
        );
    }

    #[test]
    fn the_boundary_occurs_in_no_part() {
        let body = Multipart::new("mixed", "=_arclist_owners_7")
            .part(Part::new(
                "message/rfc822",
                "\r\n--=_arclist_owners_7\r\n--=_arclist_owners_7_1\r\n",
            ))
            .finish();
        assert_eq!(body.boundary.as_deref(), Some("=_arclist_owners_7_2"));
    }

    #[test]
    fn a_long_multipart_content_type_folds_before_the_boundary() {
        let body = Multipart::new(
            "report; report-type=delivery-status",
            "=_arclist_dsn_12.1795000000",
        )
        .part(Part::new("text/plain", "t"))
        .finish();
        assert_eq!(
            body.content_type_field(),
            "Content-Type: multipart/report; report-type=delivery-status;\r\n\
             \tboundary=\"=_arclist_dsn_12.1795000000\"\r\n"
        );
        let short = Multipart::new("mixed", "b").finish();
        assert_eq!(
            short.content_type_field(),
            "Content-Type: multipart/mixed; boundary=\"b\"\r\n"
        );
    }
}
