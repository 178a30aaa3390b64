//! The exact bytes of a message, split into header fields and body without reinterpreting them.
//!
//! Signatures are computed over the bytes as received, so nothing here decodes or normalizes
//! a field; it only finds where each one starts and ends.

use std::sync::OnceLock;

/// One header field as it appears in the message.
#[derive(Debug, Clone, Copy)]
pub struct HeaderField<'a> {
    /// The field name as written (case preserved).
    pub name: &'a [u8],
    /// The whole field: name, colon, value, folding, and the final CRLF.
    pub raw: &'a [u8],
    /// Everything after the colon, up to but excluding the final CRLF.
    pub value: &'a [u8],
}

impl HeaderField<'_> {
    /// Case-insensitive name comparison (field names are ASCII).
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name.as_bytes())
    }

    /// The value with folding removed, for reading tags; lossy on invalid UTF-8.
    pub fn unfolded_value(&self) -> String {
        let mut out = Vec::with_capacity(self.value.len());
        for &b in self.value {
            if b != b'\r' && b != b'\n' {
                out.push(b);
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// A message split into its header fields and body.
#[derive(Debug, Clone)]
pub struct RawMessage<'a> {
    /// Header fields in order, top first.
    pub headers: Vec<HeaderField<'a>>,
    /// The body: everything after the blank line (empty when there is none).
    pub body: &'a [u8],
    /// Where each field name occurs, made on first use and then shared by every signature.
    index: OnceLock<HeaderIndex>,
}

/// The positions of a message's header fields by lower-cased name.
///
/// Each DKIM signature and ARC-Message-Signature picks its `h=` fields by name; building this
/// once per message, not once per signature, keeps a message with many signatures and many
/// fields from costing signatures × fields.
#[derive(Debug, Clone, Default)]
pub struct HeaderIndex {
    /// Field positions ordered by case-folded name, then position: each name's fields are one
    /// run, top first. Positions, not names, so indexing a message allocates once (a fan-out
    /// indexes every member's copy).
    sorted: Vec<usize>,
}

impl HeaderIndex {
    /// The index of `headers`.
    pub fn new(headers: &[HeaderField<'_>]) -> Self {
        let mut sorted: Vec<usize> = (0..headers.len()).collect();
        sorted.sort_by(|&a, &b| folded(headers[a].name, headers[b].name).then(a.cmp(&b)));
        HeaderIndex { sorted }
    }

    /// The fields of `headers` (the fields this index was made of) that an `h=` list selects,
    /// in its order: for each name the bottom-most instance not yet used; a name with no
    /// instance left selects nothing (RFC 6376 §5.4.2).
    pub fn select(&self, headers: &[HeaderField<'_>], h: &[String]) -> Vec<usize> {
        // Fields taken so far, by the start of their name's run.
        let mut taken = vec![0usize; self.sorted.len()];
        h.iter()
            .filter_map(|name| {
                let name = name.as_bytes();
                let start =
                    (self.sorted).partition_point(|&at| folded(name_of(headers, at), name).is_lt());
                let end = start
                    + self.sorted[start..]
                        .partition_point(|&at| folded(name_of(headers, at), name).is_eq());
                let used = taken.get_mut(start)?;
                let at = (end - start).checked_sub(*used + 1)?;
                *used += 1;
                Some(self.sorted[start + at])
            })
            .collect()
    }
}

fn name_of<'h>(headers: &'h [HeaderField<'_>], at: usize) -> &'h [u8] {
    headers.get(at).map_or(&b""[..], |f| f.name)
}

/// Header names compared as ASCII case-insensitive.
fn folded(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    a.iter()
        .map(u8::to_ascii_lowercase)
        .cmp(b.iter().map(u8::to_ascii_lowercase))
}

/// Which of the header limits a message goes over: the same limits SMTP intake enforces
/// before anything parses a message, for every other way a message comes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderOverLimit {
    /// The header section is larger than this many bytes.
    Bytes(usize),
    /// The header section has more than this many fields.
    Fields(usize),
}

impl std::fmt::Display for HeaderOverLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeaderOverLimit::Bytes(max) => write!(f, "header section over {max} bytes"),
            HeaderOverLimit::Fields(max) => write!(f, "more than {max} header fields"),
        }
    }
}

/// Whether the header section of `message` (CRLF wire form) goes over `max_bytes` or
/// `max_fields`, counted without parsing: a field starts at every line that does not begin
/// with a space or tab.
pub fn header_over_limits(
    message: &[u8],
    max_fields: usize,
    max_bytes: usize,
) -> Option<HeaderOverLimit> {
    let header =
        memchr::memmem::find(message, b"\r\n\r\n").map_or(message, |end| &message[..end + 2]);
    if header.len() > max_bytes {
        return Some(HeaderOverLimit::Bytes(max_bytes));
    }
    let fields = memchr::memchr_iter(b'\n', header)
        .filter(|&i| !matches!(header.get(i + 1), Some(b' ' | b'\t')))
        .count();
    (fields > max_fields).then_some(HeaderOverLimit::Fields(max_fields))
}

impl<'a> RawMessage<'a> {
    /// Splits `data`, which must use CRLF line endings (see [`to_crlf`]).
    ///
    /// A line that is neither a field nor a continuation ends the header block there, as in
    /// most MTAs; the rest counts as body.
    pub fn parse(data: &'a [u8]) -> Self {
        let mut headers: Vec<HeaderField<'a>> = Vec::new();
        let mut pos = 0;
        while pos < data.len() {
            if data[pos..].starts_with(b"\r\n") {
                return RawMessage {
                    headers,
                    body: &data[pos + 2..],
                    index: OnceLock::new(),
                };
            }
            if matches!(data[pos], b' ' | b'\t') && !headers.is_empty() {
                // A continuation without a field to continue cannot happen here: the loop
                // below consumes continuations with their field.
                break;
            }
            let Some(colon) = data[pos..]
                .iter()
                .position(|&b| b == b':' || b == b'\r' || b == b'\n')
            else {
                break;
            };
            if data[pos + colon] != b':' || colon == 0 {
                break;
            }
            let name_end = pos + colon;
            let mut end = pos;
            loop {
                match find_crlf(&data[end..]) {
                    Some(i) => {
                        end += i + 2;
                        if end < data.len() && matches!(data[end], b' ' | b'\t') {
                            continue;
                        }
                    }
                    None => end = data.len(),
                }
                break;
            }
            let value_end = if data[..end].ends_with(b"\r\n") {
                end - 2
            } else {
                end
            };
            let name = trim_trailing_wsp(&data[pos..name_end]);
            headers.push(HeaderField {
                name,
                raw: &data[pos..end],
                value: &data[name_end + 1..value_end],
            });
            pos = end;
        }
        RawMessage {
            headers,
            body: &data[pos.min(data.len())..],
            index: OnceLock::new(),
        }
    }

    /// The fields by name, made once for this message.
    pub fn index(&self) -> &HeaderIndex {
        self.index.get_or_init(|| HeaderIndex::new(&self.headers))
    }

    /// Fields named `name`, top first.
    pub fn fields<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s HeaderField<'a>> + 's {
        self.headers.iter().filter(move |h| h.is(name))
    }

    /// Byte length of the header block, blank line included (0 when there is no body separator).
    pub fn header_len(&self, data: &[u8]) -> usize {
        data.len() - self.body.len()
    }
}

fn find_crlf(data: &[u8]) -> Option<usize> {
    data.windows(2).position(|w| w == b"\r\n")
}

fn trim_trailing_wsp(mut s: &[u8]) -> &[u8] {
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Returns `data` with every bare LF (and bare CR) turned into CRLF: the wire form of a message
/// stored with Unix line endings.
pub fn to_crlf(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 32);
    let mut i = 0;
    while i < data.len() {
        match data[i] {
            b'\r' => {
                out.extend_from_slice(b"\r\n");
                i += if data.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
            }
            b'\n' => {
                out.extend_from_slice(b"\r\n");
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_folded_fields_and_body() {
        let data = b"From: a@b\r\nSubject: one\r\n two\r\nX:y\r\n\r\nbody\r\n";
        let m = RawMessage::parse(data);
        assert_eq!(m.headers.len(), 3);
        assert_eq!(m.headers[1].raw, b"Subject: one\r\n two\r\n");
        assert_eq!(m.headers[1].value, b" one\r\n two");
        assert_eq!(m.headers[2].name, b"X");
        assert_eq!(m.body, b"body\r\n");
    }

    #[test]
    fn no_body_separator() {
        let m = RawMessage::parse(b"A: b\r\nC: d");
        assert_eq!(m.headers.len(), 2);
        assert_eq!(m.headers[1].value, b" d");
        assert!(m.body.is_empty());
    }

    #[test]
    fn the_index_picks_each_names_bottom_most_unused_instance() {
        let m = RawMessage::parse(b"A: 1\r\nb: 2\r\nA: 3\r\nB: 4\r\n\r\n");
        let h: Vec<String> = ["a", "B", "a", "a", "c"].map(String::from).into();
        assert_eq!(m.index().select(&m.headers, &h), vec![2, 3, 0]);
    }

    #[test]
    fn header_limits_count_fields_not_continuations() {
        let m = b"A: 1\r\n 2\r\nB: 3\r\n\r\nC: not a field\r\n";
        assert_eq!(header_over_limits(m, 2, 1000), None);
        assert_eq!(
            header_over_limits(m, 1, 1000),
            Some(HeaderOverLimit::Fields(1))
        );
        assert_eq!(
            header_over_limits(m, 2, 10),
            Some(HeaderOverLimit::Bytes(10))
        );
    }

    #[test]
    fn lf_to_crlf() {
        assert_eq!(to_crlf(b"a\nb\r\nc\r"), b"a\r\nb\r\nc\r\n");
    }
}
