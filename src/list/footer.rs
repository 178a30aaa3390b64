//! The list footer, added where it cannot corrupt the post.

use crate::auth::message::RawMessage;

/// A Content-Type value split into its media type (lower-case) and parameters.
struct ContentType {
    media: String,
    params: Vec<(String, String)>,
}

impl ContentType {
    fn parse(value: Option<String>) -> Self {
        let value = value.unwrap_or_else(|| "text/plain".into());
        let mut parts = value.split(';');
        let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let params = parts
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| {
                (
                    k.trim().to_ascii_lowercase(),
                    v.trim().trim_matches('"').to_string(),
                )
            })
            .collect();
        ContentType { media, params }
    }

    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The body with `footer` added, or why it was left alone.
///
/// A plain-text post in 7bit/8bit gets the footer appended after a `-- ` line; a
/// multipart/mixed post gets it as a new text/plain part before the closing boundary. Signed or
/// encrypted posts, HTML-only posts and encoded text parts are left untouched: a footer there
/// would break a signature or the encoding.
pub fn with_footer(message: &RawMessage<'_>, footer: &str) -> Result<Vec<u8>, String> {
    let header = |name: &str| {
        message
            .fields(name)
            .next()
            .map(|f| f.unfolded_value().trim().to_string())
    };
    let ct = ContentType::parse(header("Content-Type"));
    let cte = header("Content-Transfer-Encoding")
        .unwrap_or_else(|| "7bit".into())
        .to_ascii_lowercase();
    let footer = footer.replace("\r\n", "\n").replace('\n', "\r\n");
    let body = message.body;
    match ct.media.as_str() {
        "text/plain" => {
            if cte != "7bit" && cte != "8bit" {
                return Err(format!("text/plain in {cte}"));
            }
            let charset = ct
                .param("charset")
                .unwrap_or("us-ascii")
                .to_ascii_lowercase();
            if !footer.is_ascii() && charset != "utf-8" {
                return Err(format!("non-ASCII footer in a {charset} post"));
            }
            let mut out = body.to_vec();
            if !out.is_empty() && !out.ends_with(b"\r\n") {
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"-- \r\n");
            out.extend_from_slice(footer.as_bytes());
            out.extend_from_slice(b"\r\n");
            Ok(out)
        }
        "multipart/mixed" => {
            let boundary = ct
                .param("boundary")
                .ok_or("multipart/mixed without boundary")?;
            let close = format!("\r\n--{boundary}--");
            let at = memchr::memmem::rfind(body, close.as_bytes()).ok_or("no closing boundary")?;
            let encoding = if footer.is_ascii() { "7bit" } else { "8bit" };
            let part = format!(
                "\r\n--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: {encoding}\r\nContent-Disposition: inline\r\n\r\n{footer}\r\n"
            );
            let mut out = Vec::with_capacity(body.len() + part.len());
            out.extend_from_slice(&body[..at]);
            out.extend_from_slice(part.trim_end_matches("\r\n").as_bytes());
            out.extend_from_slice(&body[at..]);
            Ok(out)
        }
        other => Err(format!("{other} is left as it is")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_gets_a_signature_separator() {
        let m = b"Subject: x\r\n\r\nhello";
        let out = with_footer(&RawMessage::parse(m), "list info").expect("added");
        assert_eq!(out, b"hello\r\n-- \r\nlist info\r\n");
    }

    #[test]
    fn multipart_mixed_gets_a_part_and_signed_is_untouched() {
        let m = b"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b1--\r\n";
        let out =
            String::from_utf8(with_footer(&RawMessage::parse(m), "caf\u{e9}").expect("added"))
                .expect("utf8");
        assert!(out.contains("hi\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\nContent-Disposition: inline\r\n\r\ncaf\u{e9}\r\n--b1--\r\n"), "{out}");
        let signed = b"Content-Type: multipart/signed; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n";
        assert!(with_footer(&RawMessage::parse(signed), "f").is_err());
        let b64 = b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\naGk=\r\n";
        assert!(with_footer(&RawMessage::parse(b64), "f").is_err());
    }
}
