//! What DKIM2 hashes and signs: the content of one instance (§6) and the signature input
//! (§12.8).
//!
//! An instance's header hash covers every signed field (§4 says which are not), sorted by
//! name, fields of one name from the bottom up, each in relaxed canonical form; its body hash
//! covers the body in simple canonical form. A signature covers no content directly: it signs
//! the Message-Instance fields up to its `m=`, the signatures before it, and itself without
//! its signature values, each with every whitespace character removed.

use super::fields::HashAlgo;
use super::is_unsigned_field;
use crate::canon::{self, Canon};
use crate::message::RawMessage;
use std::collections::BTreeMap;

/// The signed content of one instance: the signed header fields (lower-cased name → values
/// as written after the colon, top first) and the body (None once a null body Recipe made it
/// unrecoverable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentState {
    /// Signed fields by lower-cased name, each name's values top first.
    pub headers: BTreeMap<String, Vec<Vec<u8>>>,
    /// The body, CRLF.
    pub body: Option<Vec<u8>>,
}

impl ContentState {
    /// The current instance of `message`.
    pub fn of(message: &RawMessage<'_>) -> Self {
        ContentState {
            body: Some(message.body.to_vec()),
            ..Self::headers_of(message)
        }
    }

    /// The signed header fields of `message` alone (no body): for a header hash, which
    /// needs no copy of the body.
    pub fn headers_of(message: &RawMessage<'_>) -> Self {
        let mut headers: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
        for field in &message.headers {
            if is_unsigned_field(field.name) {
                continue;
            }
            let name = String::from_utf8_lossy(field.name.trim_ascii()).to_ascii_lowercase();
            headers.entry(name).or_default().push(field.value.to_vec());
        }
        ContentState {
            headers,
            body: None,
        }
    }

    /// The header fields hash (§6.2).
    pub fn header_hash(&self, algo: &HashAlgo) -> Option<Vec<u8>> {
        let mut ctx = aws_lc_rs::digest::Context::new(algo.digest()?);
        let mut buf = Vec::with_capacity(256);
        for (name, values) in &self.headers {
            for value in values.iter().rev() {
                buf.clear();
                let mut raw = Vec::with_capacity(name.len() + 1 + value.len());
                raw.extend_from_slice(name.as_bytes());
                raw.push(b':');
                raw.extend_from_slice(value);
                canon::header(Canon::Relaxed, &raw, &mut buf);
                ctx.update(&buf);
            }
        }
        Some(ctx.finish().as_ref().to_vec())
    }

    /// The From domain when there is exactly one From with one mailbox, lower-cased.
    pub fn from_domain(&self) -> Option<String> {
        match self.headers.get("from").map(Vec::as_slice) {
            Some([one]) => from_domain(&String::from_utf8_lossy(one)),
            _ => None,
        }
    }
}

/// The body hash (§6.1): simple canonicalization, trailing empty lines reduced to one CRLF.
pub fn body_hash(algo: &HashAlgo, body: &[u8]) -> Option<Vec<u8>> {
    let mut ctx = aws_lc_rs::digest::Context::new(algo.digest()?);
    canon::body(Canon::Simple, body, |piece| ctx.update(piece));
    Some(ctx.finish().as_ref().to_vec())
}

/// The domain of a From value holding one mailbox (`Name <a@b>` or `a@b`).
fn from_domain(value: &str) -> Option<String> {
    let value = value.trim();
    let addr = match (value.rfind('<'), value.rfind('>')) {
        (Some(a), Some(b)) if a < b => &value[a + 1..b],
        _ => value,
    };
    if value.matches('<').count() > 1 || value.matches('@').count() != 1 && !value.contains('<') {
        return None;
    }
    let (local, domain) = addr.trim().rsplit_once('@')?;
    let bad = |c: char| c.is_whitespace() || c.is_control() || "@<>()[],;:\"".contains(c);
    if local.is_empty() || domain.is_empty() || domain.contains(bad) {
        return None;
    }
    Some(domain.to_ascii_lowercase())
}

/// Appends `name:value` with the name lower-cased and every whitespace character removed,
/// then CRLF: how DKIM2 fields enter the signature input.
fn push_stripped(name: &str, value: &[u8], out: &mut Vec<u8>) {
    out.extend(
        name.bytes()
            .filter(|b| !b.is_ascii_whitespace())
            .map(|b| b.to_ascii_lowercase()),
    );
    out.push(b':');
    out.extend(value.iter().filter(|b| !b.is_ascii_whitespace()));
    out.extend_from_slice(b"\r\n");
}

/// Appends a DKIM2-Signature value stripped of whitespace and of its signature values
/// (each `s=` item cut after `selector:algorithm:`).
fn push_unsigned_signature(value: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b"dkim2-signature:");
    for (k, spec) in value.split(|&b| b == b';').enumerate() {
        if k > 0 {
            out.push(b';');
        }
        let is_s = spec.contains(&b'=')
            && spec
                .split(|&b| b == b'=')
                .next()
                .is_some_and(|n| n.trim_ascii() == b"s");
        let mut colons = 0;
        for &b in spec.iter().filter(|b| !b.is_ascii_whitespace()) {
            if !is_s {
                out.push(b);
            } else if matches!(b, b',' | b'|') {
                colons = 0;
                out.push(b);
            } else if colons < 2 {
                out.push(b);
                colons += usize::from(b == b':');
            }
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// The signature input (§12.8) of the DKIM2-Signature whose value is `own`: the
/// Message-Instance values it covers (oldest first), the DKIM2-Signature values before it
/// (oldest first), then `own` without its signature values.
pub fn signature_input(instances: &[&[u8]], earlier: &[&[u8]], own: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(512 * (instances.len() + earlier.len() + 1));
    for value in instances {
        push_stripped("Message-Instance", value, &mut out);
    }
    for value in earlier {
        push_stripped("DKIM2-Signature", value, &mut out);
    }
    push_unsigned_signature(own, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_input_ignores_folding_and_values() {
        let a = signature_input(
            &[b" m=1; h=sha256:AA==:BB==;"],
            &[],
            b" i=1; s=x:ed25519-sha256:QUJD\r\n\tREVG;",
        );
        let b = signature_input(
            &[b"m=1;\r\n h=sha256:AA==:BB==;"],
            &[],
            b"i=1; s=x:ed25519-sha256:;",
        );
        assert_eq!(a, b);
        assert_eq!(
            String::from_utf8_lossy(&a),
            "message-instance:m=1;h=sha256:AA==:BB==;\r\ndkim2-signature:i=1;s=x:ed25519-sha256:;\r\n"
        );
        let two = signature_input(
            &[],
            &[],
            b"s=a:rsa-sha256:QQ==,b:ed25519-sha256:Qg==|c:x:Qw==;",
        );
        assert_eq!(
            String::from_utf8_lossy(&two),
            "dkim2-signature:s=a:rsa-sha256:,b:ed25519-sha256:|c:x:;\r\n"
        );
    }

    #[test]
    fn from_domains() {
        assert_eq!(
            from_domain(" \"A, B\" <a@Example.COM>").as_deref(),
            Some("example.com")
        );
        assert_eq!(from_domain(" a@b.example").as_deref(), Some("b.example"));
        assert_eq!(from_domain(" a@b.example, c@d.example"), None);
        assert_eq!(from_domain(" nobody"), None);
    }
}
