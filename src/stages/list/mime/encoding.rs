//! The transfer encodings a text part may come in (RFC 2045 §6): decoded to add a footer,
//! encoded back the same way.

use base64::Engine;

/// A part's Content-Transfer-Encoding, as far as the footer cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `7bit` (or absent): ASCII lines.
    SevenBit,
    /// `8bit`: lines of any bytes but NUL, CR and LF alone.
    EightBit,
    /// `quoted-printable`.
    Quoted,
    /// `base64`.
    Base64,
}

impl Encoding {
    /// The encoding a Content-Transfer-Encoding value names; `None` for `binary` and unknown
    /// ones, which are left alone.
    pub fn parse(value: Option<&str>) -> Option<Encoding> {
        match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            None | Some("7bit") => Some(Encoding::SevenBit),
            Some("8bit") => Some(Encoding::EightBit),
            Some("quoted-printable") => Some(Encoding::Quoted),
            Some("base64") => Some(Encoding::Base64),
            _ => None,
        }
    }

    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::SevenBit => "7bit",
            Encoding::EightBit => "8bit",
            Encoding::Quoted => "quoted-printable",
            Encoding::Base64 => "base64",
        }
    }

    /// The text `body` stands for.
    pub fn decode(self, body: &[u8]) -> Result<Vec<u8>, base64::DecodeError> {
        match self {
            Encoding::SevenBit | Encoding::EightBit => Ok(body.to_vec()),
            Encoding::Quoted => Ok(qp_decode(body)),
            Encoding::Base64 => {
                let clean: Vec<u8> = body
                    .iter()
                    .copied()
                    .filter(|b| !b.is_ascii_whitespace())
                    .collect();
                base64::engine::general_purpose::STANDARD.decode(&clean)
            }
        }
    }

    /// `text` (CRLF lines) in this encoding.
    pub fn encode(self, text: &[u8]) -> Vec<u8> {
        match self {
            Encoding::SevenBit | Encoding::EightBit => text.to_vec(),
            Encoding::Quoted => qp_encode(text),
            Encoding::Base64 => {
                let encoded = base64::engine::general_purpose::STANDARD.encode(text);
                let mut out = Vec::with_capacity(encoded.len() + encoded.len() / 38 + 2);
                for line in encoded.as_bytes().chunks(76) {
                    out.extend_from_slice(line);
                    out.extend_from_slice(b"\r\n");
                }
                out
            }
        }
    }
}

/// Quoted-printable to bytes: `=XX` escapes and `=` soft line breaks undone; a malformed
/// escape stays as it is.
pub fn qp_decode(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        if body[i] != b'=' {
            out.push(body[i]);
            i += 1;
            continue;
        }
        let rest = &body[i + 1..];
        if rest.starts_with(b"\r\n") {
            i += 3;
        } else if rest.starts_with(b"\n") {
            i += 2;
        } else if let Some(b) = rest
            .get(..2)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
        } else {
            out.push(b'=');
            i += 1;
        }
    }
    out
}

/// Bytes to quoted-printable: lines of at most 76 characters, CRLF kept as hard breaks, and
/// only printable ASCII left bare (never a space or tab before a line end).
pub fn qp_encode(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + text.len() / 8);
    for (n, line) in text.split(|&b| b == b'\n').enumerate() {
        if n > 0 {
            out.extend_from_slice(b"\r\n");
        }
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut width = 0;
        for (i, &b) in line.iter().enumerate() {
            let last = i + 1 == line.len();
            let bare = (b.is_ascii_graphic() && b != b'=') || (b == b' ' || b == b'\t') && !last;
            let piece = if bare {
                vec![b]
            } else {
                format!("={b:02X}").into_bytes()
            };
            if width + piece.len() > 75 {
                out.extend_from_slice(b"=\r\n");
                width = 0;
            }
            width += piece.len();
            out.extend_from_slice(&piece);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_printable_round_trips() {
        let text = "Caf\u{e9} = 1 \r\nand a line that goes on and on and on and on and on and on and on and on to wrap\r\n";
        let encoded = qp_encode(text.as_bytes());
        assert!(
            encoded.split(|&b| b == b'\n').all(|l| l.len() <= 77),
            "{}",
            String::from_utf8_lossy(&encoded)
        );
        assert_eq!(qp_decode(&encoded), text.as_bytes());
        assert_eq!(qp_decode(b"a=3Db=\r\nc=ZZ"), b"a=bc=ZZ");
    }
}
