//! Parsing DKIM-Signature and ARC-Message-Signature values.

use crate::canon::{Canon, HashAlg};
use crate::key_record::SigAlg;
use crate::tags::{TagList, strip_fws};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// Who a signature speaks for: DKIM's `i=` agent identifier, or ARC's instance number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// DKIM `i=` (defaults to `@d=`).
    Auid(String),
    /// ARC `i=` (1..=50).
    Instance(u32),
}

/// A parsed signature header (DKIM-Signature or ARC-Message-Signature).
#[derive(Debug, Clone)]
pub struct SignatureHeader {
    /// `a=`.
    pub algorithm: SigAlg,
    /// Hash named by `a=`.
    pub hash: HashAlg,
    /// `b=`, decoded.
    pub b: Vec<u8>,
    /// `b=` as written, folding removed (for `header.b`).
    pub b_text: String,
    /// `bh=`, decoded.
    pub bh: Vec<u8>,
    /// `c=` header part.
    pub header_canon: Canon,
    /// `c=` body part.
    pub body_canon: Canon,
    /// `d=`, lower-cased.
    pub domain: String,
    /// `s=`.
    pub selector: String,
    /// `h=`, as listed.
    pub signed_headers: Vec<String>,
    /// `l=`.
    pub length: Option<u64>,
    /// `t=`.
    pub timestamp: Option<u64>,
    /// `x=`.
    pub expiration: Option<u64>,
    /// `i=`.
    pub identity: Identity,
}

/// Why a signature header cannot be used at all (a permerror).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SignatureParseError(pub String);

impl SignatureParseError {
    fn new(msg: impl Into<String>) -> Self {
        SignatureParseError(msg.into())
    }
}

impl SignatureHeader {
    /// Parses a DKIM-Signature (`arc == false`) or ARC-Message-Signature (`arc == true`) value.
    ///
    /// An unacceptable algorithm (rsa-sha1) parses into an error naming it, so it becomes a
    /// failure with a reason rather than a silent skip.
    pub fn parse(value: &str, arc: bool) -> Result<Self, SignatureParseError> {
        let tags = TagList::parse(value).map_err(|e| SignatureParseError(e.to_string()))?;
        let need = |name: &str| {
            tags.get(name)
                .ok_or_else(|| SignatureParseError::new(format!("missing {name}= tag")))
        };
        if !arc && need("v")? != "1" {
            return Err(SignatureParseError::new("v= is not 1"));
        }
        let algorithm = SigAlg::parse(need("a")?).map_err(SignatureParseError)?;
        let b_text = strip_fws(need("b")?);
        let b = STANDARD
            .decode(&b_text)
            .map_err(|_| SignatureParseError::new("b= is not base64"))?;
        let bh = STANDARD
            .decode(strip_fws(need("bh")?))
            .map_err(|_| SignatureParseError::new("bh= is not base64"))?;
        let (header_canon, body_canon) = Canon::parse_pair(tags.get("c"))
            .ok_or_else(|| SignatureParseError::new("unknown c= canonicalization"))?;
        let domain = need("d")?.to_ascii_lowercase();
        if domain.is_empty() {
            return Err(SignatureParseError::new("empty d="));
        }
        let selector = need("s")?.to_string();
        if selector.is_empty() {
            return Err(SignatureParseError::new("empty s="));
        }
        let signed_headers: Vec<String> = need("h")?
            .split(':')
            .map(strip_fws)
            .filter(|h| !h.is_empty())
            .collect();
        if !signed_headers
            .iter()
            .any(|h| h.eq_ignore_ascii_case("from"))
            && !arc
        {
            return Err(SignatureParseError::new("h= does not include From"));
        }
        if arc
            && signed_headers
                .iter()
                .any(|h| h.eq_ignore_ascii_case("arc-seal"))
        {
            return Err(SignatureParseError::new(
                "h= lists ARC-Seal, which an AMS must not sign",
            ));
        }
        let number = |name: &str| -> Result<Option<u64>, SignatureParseError> {
            tags.get(name)
                .map(|v| {
                    v.parse::<u64>()
                        .map_err(|_| SignatureParseError::new(format!("{name}= is not a number")))
                })
                .transpose()
        };
        let identity = if arc {
            let i = need("i")?;
            let n: u32 = i.parse().map_err(|_| {
                SignatureParseError::new(format!("i={i} is not an instance number"))
            })?;
            Identity::Instance(n)
        } else {
            let auid = tags
                .get("i")
                .map(str::to_string)
                .unwrap_or_else(|| format!("@{domain}"));
            let auid_domain = auid
                .rsplit_once('@')
                .map(|(_, d)| d.to_ascii_lowercase())
                .unwrap_or_default();
            if auid_domain != domain && !auid_domain.ends_with(&format!(".{domain}")) {
                return Err(SignatureParseError::new(format!(
                    "i={auid} is not within d={domain}"
                )));
            }
            Identity::Auid(auid)
        };
        Ok(SignatureHeader {
            algorithm,
            hash: HashAlg::Sha256,
            b,
            b_text,
            bh,
            header_canon,
            body_canon,
            domain,
            selector,
            signed_headers,
            length: number("l")?,
            timestamp: number("t")?,
            expiration: number("x")?,
            identity,
        })
    }
}

/// Returns the whole header field with the value of its `b=` tag removed (whitespace and
/// everything else kept), as signing and verifying require.
pub fn strip_b_value(raw_field: &[u8]) -> Vec<u8> {
    let colon = raw_field
        .iter()
        .position(|&b| b == b':')
        .map_or(0, |c| c + 1);
    let mut out = raw_field[..colon].to_vec();
    let value = &raw_field[colon..];
    let mut pos = 0;
    while pos <= value.len() {
        let end = value[pos..]
            .iter()
            .position(|&b| b == b';')
            .map_or(value.len(), |i| pos + i);
        let spec = &value[pos..end];
        match spec.iter().position(|&b| b == b'=') {
            Some(eq) if trim(&spec[..eq]) == b"b" => {
                out.extend_from_slice(&spec[..=eq]);
                // Keep a trailing CRLF that belongs to the field, not to the tag.
                if end == value.len() && spec.ends_with(b"\r\n") {
                    out.extend_from_slice(b"\r\n");
                }
            }
            _ => out.extend_from_slice(spec),
        }
        if end < value.len() {
            out.push(b';');
        }
        pos = end + 1;
    }
    out
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &s[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_only_b() {
        let raw = b"DKIM-Signature: v=1; bh=abc; b=de\r\n f; d=x\r\n";
        assert_eq!(
            strip_b_value(raw),
            b"DKIM-Signature: v=1; bh=abc; b=; d=x\r\n"
        );
        assert_eq!(strip_b_value(b"X: a=1; b=zz\r\n"), b"X: a=1; b=\r\n");
    }

    #[test]
    fn rejects_sha1_and_foreign_auid() {
        let base = "v=1; a=rsa-sha1; b=AA==; bh=AA==; d=example.org; s=s; h=from";
        assert!(
            SignatureHeader::parse(base, false)
                .unwrap_err()
                .0
                .contains("rsa-sha1")
        );
        let foreign =
            "v=1; a=rsa-sha256; b=AA==; bh=AA==; d=example.org; s=s; h=from; i=@evil.example";
        assert!(
            SignatureHeader::parse(foreign, false)
                .unwrap_err()
                .0
                .contains("not within")
        );
        let sub =
            "v=1; a=rsa-sha256; b=AA==; bh=AA==; d=example.org; s=s; h=from; i=u@sub.example.org";
        assert!(SignatureHeader::parse(sub, false).is_ok());
    }
}
