//! The exact bytes of a message, split into header fields and body without reinterpreting them.
//!
//! Signatures are computed over the bytes as received, so nothing here decodes or normalizes
//! a field; it only finds where each one starts and ends.

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
        }
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
    fn lf_to_crlf() {
        assert_eq!(to_crlf(b"a\nb\r\nc\r"), b"a\r\nb\r\nc\r\n");
    }
}
