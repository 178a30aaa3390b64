//! Just enough MIME structure to change a post's parts (the footer, the 7-bit copy): a part's
//! header fields, a multipart body cut at its boundaries so that the parts left alone stay
//! byte for byte as they were (attachments, signatures the sender made), and the transfer
//! encodings ([`encoding`]).

pub mod encoding;

/// A Content-Type value split into its media type (lower-case) and parameters.
pub struct ContentType {
    /// `text/plain`, `multipart/mixed`, ...
    pub media: String,
    params: Vec<(String, String)>,
}

impl ContentType {
    /// Parses a field value; absent means `text/plain` (RFC 2045 §5.2).
    pub fn parse(value: Option<&str>) -> Self {
        let value = value.unwrap_or("text/plain");
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

    /// A parameter's value.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value with `charset` set to `charset`, other parameters kept.
    pub fn with_charset(&self, charset: &str) -> String {
        let mut out = self.media.clone();
        for (k, v) in self.params.iter().filter(|(k, _)| k != "charset") {
            out.push_str(&format!("; {k}=\"{v}\""));
        }
        out.push_str(&format!("; charset={charset}"));
        out
    }
}

/// A part: its header block (without the empty line) and its body.
pub struct Part<'a> {
    /// The header lines, CRLF-separated.
    pub head: &'a [u8],
    /// The body.
    pub body: &'a [u8],
}

impl<'a> Part<'a> {
    /// Splits a part at its first empty line; a part with no header fields starts with one.
    pub fn split(bytes: &'a [u8]) -> Part<'a> {
        if let Some(rest) = bytes.strip_prefix(b"\r\n") {
            return Part {
                head: b"",
                body: rest,
            };
        }
        match memchr::memmem::find(bytes, b"\r\n\r\n") {
            Some(i) => Part {
                head: &bytes[..i],
                body: &bytes[i + 4..],
            },
            None => Part {
                head: bytes,
                body: b"",
            },
        }
    }

    /// The unfolded value of header field `name`.
    pub fn field(&self, name: &str) -> Option<String> {
        field(self.head, name)
    }
}

/// The unfolded value of field `name` in a header block.
pub fn field(head: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(head);
    let mut value: Option<String> = None;
    for line in text.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            if let Some(v) = value.as_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
            continue;
        }
        if value.is_some() {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.trim().eq_ignore_ascii_case(name)
        {
            value = Some(v.trim().to_string());
        }
    }
    value
}

/// A header block with fields `set` (name, value) in place of any of the same name.
pub fn replace_fields(head: &[u8], set: &[(&str, String)]) -> Vec<u8> {
    let text = String::from_utf8_lossy(head);
    let mut out = String::new();
    let mut dropping = false;
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        if line.starts_with([' ', '\t']) {
            if !dropping {
                out.push_str(line);
                out.push_str("\r\n");
            }
            continue;
        }
        let name = line.split_once(':').map(|(k, _)| k.trim()).unwrap_or("");
        dropping = set.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
        if !dropping {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    for (name, value) in set {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    let mut bytes = out.into_bytes();
    bytes.truncate(bytes.len().saturating_sub(2));
    bytes
}

/// Where each part of a multipart body lies: `(start, end)` of its content between
/// delimiter lines, and where the close delimiter starts.
pub struct Layout {
    /// Each part's content range.
    pub parts: Vec<(usize, usize)>,
}

/// Cuts `body` at `boundary` (RFC 2046 §5.1.1); `None` when there is no close delimiter.
pub fn layout(body: &[u8], boundary: &str) -> Option<Layout> {
    let dash = format!("--{boundary}");
    let mut starts = Vec::new();
    let mut from = 0;
    while let Some(i) = memchr::memmem::find(&body[from..], dash.as_bytes()) {
        let at = from + i;
        let line_start = at == 0 || body[..at].ends_with(b"\r\n");
        // A delimiter line is the boundary, then `--` (the close) or only white space.
        let rest = &body[at + dash.len()..];
        let line_end = memchr::memmem::find(rest, b"\r\n").unwrap_or(rest.len());
        let tail = &rest[..line_end];
        let whole = tail.starts_with(b"--") || tail.iter().all(|b| *b == b' ' || *b == b'\t');
        if line_start && whole {
            starts.push(at);
        }
        from = at + dash.len();
    }
    let close = *starts
        .iter()
        .find(|&&s| body[s + dash.len()..].starts_with(b"--"))?;
    let opens: Vec<usize> = starts.into_iter().filter(|&s| s < close).collect();
    let mut parts = Vec::new();
    for (n, &s) in opens.iter().enumerate() {
        let line_end = memchr::memmem::find(&body[s..], b"\r\n")? + s + 2;
        let next = opens.get(n + 1).copied().unwrap_or(close);
        // The CRLF before the next delimiter belongs to the delimiter.
        let end = next.saturating_sub(2).max(line_end);
        parts.push((line_end, end));
    }
    Some(Layout { parts })
}
