//! Canonicalization (RFC 6376 §3.4) of header fields and bodies, and body hashing.

use aws_lc_rs::digest;
use std::collections::HashMap;

/// A canonicalization algorithm for headers or body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Canon {
    /// Bytes as they are (bodies: trailing empty lines reduced to one CRLF).
    Simple,
    /// Whitespace-insensitive.
    Relaxed,
}

impl Canon {
    /// Parses a `c=` tag value (`header/body`; a missing body part means simple; a missing
    /// tag means simple/simple, RFC 6376 §3.5).
    pub fn parse_pair(value: Option<&str>) -> Option<(Canon, Canon)> {
        let Some(value) = value else {
            return Some((Canon::Simple, Canon::Simple));
        };
        let (h, b) = value.split_once('/').unwrap_or((value, "simple"));
        Some((Self::parse_one(h)?, Self::parse_one(b)?))
    }

    fn parse_one(s: &str) -> Option<Canon> {
        match s {
            "simple" => Some(Canon::Simple),
            "relaxed" => Some(Canon::Relaxed),
            _ => None,
        }
    }

    /// The tag spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Canon::Simple => "simple",
            Canon::Relaxed => "relaxed",
        }
    }
}

/// Appends the canonical form of one whole header field (`raw` includes name and CRLF).
pub fn header(canon: Canon, raw: &[u8], out: &mut Vec<u8>) {
    match canon {
        Canon::Simple => {
            out.extend_from_slice(raw);
            if !raw.ends_with(b"\r\n") {
                out.extend_from_slice(b"\r\n");
            }
        }
        Canon::Relaxed => {
            let colon = raw.iter().position(|&b| b == b':').unwrap_or(raw.len());
            let name = &raw[..colon];
            for &b in name {
                if !matches!(b, b' ' | b'\t') {
                    out.push(b.to_ascii_lowercase());
                }
            }
            out.push(b':');
            relaxed_value(raw.get(colon + 1..).unwrap_or_default(), out);
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// Relaxed header value: unfold, collapse WSP runs to one SP, trim both ends.
fn relaxed_value(value: &[u8], out: &mut Vec<u8>) {
    let mut pending_space = false;
    let mut wrote = false;
    for &b in value {
        match b {
            b'\r' | b'\n' => {}
            b' ' | b'\t' => pending_space = true,
            _ => {
                if pending_space && wrote {
                    out.push(b' ');
                }
                pending_space = false;
                wrote = true;
                out.push(b);
            }
        }
    }
}

/// Feeds the canonical form of `body` to `sink` in pieces, without copying the body.
///
/// Trailing empty lines are held back until a non-empty line proves they are not trailing,
/// which is what lets this run in one pass. A line holding only whitespace is empty under
/// relaxed canonicalization and counts as trailing.
pub fn body(canon: Canon, body: &[u8], mut sink: impl FnMut(&[u8])) {
    if canon == Canon::Simple {
        // Simple only trims trailing CRLFs, so the content can go out as one slice.
        let mut end = body.len();
        while body[..end].ends_with(b"\r\n") {
            end -= 2;
        }
        if end > 0 {
            sink(&body[..end]);
        }
        sink(b"\r\n");
        return;
    }
    let crlf = memchr::memmem::Finder::new(b"\r\n");
    let mut pending_crlfs = 0usize;
    let mut rest = body;
    while !rest.is_empty() {
        let (line, next) = match crlf.find(rest) {
            Some(i) => (&rest[..i], &rest[i + 2..]),
            None => (rest, &rest[rest.len()..]),
        };
        rest = next;
        if line.iter().all(|b| matches!(b, b' ' | b'\t')) {
            pending_crlfs += 1;
            continue;
        }
        for _ in 0..pending_crlfs {
            sink(b"\r\n");
        }
        pending_crlfs = 0;
        relaxed_line(line, &mut sink);
        sink(b"\r\n");
    }
}

fn relaxed_line(line: &[u8], sink: &mut impl FnMut(&[u8])) {
    // Most lines of prose have single spaces, no tabs and no trailing space: they are already
    // canonical, and two SIMD scans prove it faster than walking them word by word.
    let canonical = memchr::memchr(b'\t', line).is_none()
        && memchr::memmem::find(line, b"  ").is_none()
        && line.last() != Some(&b' ');
    if canonical {
        sink(line);
        return;
    }
    // Runs of non-WSP bytes go out as they are; a WSP run becomes one SP unless it ends the line.
    let mut rest = line;
    while let Some(ws) = memchr::memchr2(b' ', b'\t', rest) {
        if ws > 0 {
            sink(&rest[..ws]);
        }
        let after = rest[ws..]
            .iter()
            .position(|b| !matches!(b, b' ' | b'\t'))
            .map_or(rest.len(), |p| ws + p);
        if after < rest.len() {
            sink(b" ");
        }
        rest = &rest[after..];
    }
    if !rest.is_empty() {
        sink(rest);
    }
}

/// The hash functions DKIM and ARC use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlg {
    /// SHA-256, the only one RFC 8301 allows.
    Sha256,
    /// SHA-1, recognised only to report it as unacceptable.
    Sha1,
}

impl HashAlg {
    fn algorithm(self) -> &'static digest::Algorithm {
        match self {
            HashAlg::Sha256 => &digest::SHA256,
            HashAlg::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
        }
    }
}

/// Hashes `body` canonicalized with `canon`, stopping after `limit` canonical bytes (`l=`).
/// Returns the digest and the full canonical length (to check `l=` against).
pub fn body_hash(alg: HashAlg, canon: Canon, data: &[u8], limit: Option<u64>) -> (Vec<u8>, u64) {
    let mut ctx = digest::Context::new(alg.algorithm());
    let mut total = 0u64;
    body(canon, data, |piece| {
        let room = limit.map_or(piece.len() as u64, |l| {
            l.saturating_sub(total).min(piece.len() as u64)
        });
        // `room` never exceeds `piece.len()`, so the cast back cannot truncate.
        ctx.update(&piece[..room as usize]);
        total += piece.len() as u64;
    });
    (ctx.finish().as_ref().to_vec(), total)
}

/// (hash, canonicalization, `l=`) → (digest, full canonical length).
type BodyHashKey = (HashAlg, Canon, Option<u64>);

/// Body hashes shared by every signature over one message: each (hash, canonicalization,
/// length) is computed once, however many signatures ask for it.
#[derive(Default)]
pub struct BodyHashCache<'a> {
    body: &'a [u8],
    done: HashMap<BodyHashKey, (Vec<u8>, u64)>,
}

impl<'a> BodyHashCache<'a> {
    /// A cache for one message body.
    pub fn new(body: &'a [u8]) -> Self {
        BodyHashCache {
            body,
            done: HashMap::new(),
        }
    }

    /// The body hash and full canonical length for these parameters.
    pub fn get(&mut self, alg: HashAlg, canon: Canon, limit: Option<u64>) -> &(Vec<u8>, u64) {
        let body = self.body;
        self.done
            .entry((alg, canon, limit))
            .or_insert_with(|| body_hash(alg, canon, body, limit))
    }

    /// How many distinct hashes were computed (for tests and benches).
    pub fn computed(&self) -> usize {
        self.done.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon_body(c: Canon, b: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        body(c, b, |p| out.extend_from_slice(p));
        out
    }

    #[test]
    fn rfc6376_examples() {
        // RFC 6376 §3.4.5.
        let raw_body = b" C \r\nD \t E\r\n\r\n\r\n";
        assert_eq!(canon_body(Canon::Relaxed, raw_body), b" C\r\nD E\r\n");
        assert_eq!(canon_body(Canon::Simple, raw_body), b" C \r\nD \t E\r\n");
        let mut h = Vec::new();
        header(Canon::Relaxed, b"A: X\r\n", &mut h);
        header(Canon::Relaxed, b"B : Y\t\r\n\tZ  \r\n", &mut h);
        assert_eq!(h, b"a:X\r\nb:Y Z\r\n");
    }

    #[test]
    fn whitespace_only_trailing_lines_are_trailing_under_relaxed() {
        assert_eq!(canon_body(Canon::Relaxed, b"hi\r\n  \r\n\t\r\n"), b"hi\r\n");
        assert_eq!(canon_body(Canon::Simple, b"hi\r\n  \r\n"), b"hi\r\n  \r\n");
    }

    #[test]
    fn empty_bodies() {
        assert_eq!(canon_body(Canon::Simple, b""), b"\r\n");
        assert_eq!(canon_body(Canon::Relaxed, b""), b"");
        assert_eq!(canon_body(Canon::Simple, b"\r\n\r\n"), b"\r\n");
        assert_eq!(canon_body(Canon::Simple, b"x"), b"x\r\n");
    }

    #[test]
    fn each_body_hash_is_computed_once() {
        let mut cache = BodyHashCache::new(b"body\r\n");
        let a = cache.get(HashAlg::Sha256, Canon::Relaxed, None).clone();
        let b = cache.get(HashAlg::Sha256, Canon::Relaxed, None).clone();
        cache.get(HashAlg::Sha256, Canon::Simple, None);
        cache.get(HashAlg::Sha256, Canon::Relaxed, Some(2));
        assert_eq!(a, b);
        assert_eq!(
            cache.computed(),
            3,
            "one per (canonicalization, length), not one per signature"
        );
    }

    #[test]
    fn length_limit_counts_canonical_bytes() {
        let (full, len) = body_hash(HashAlg::Sha256, Canon::Simple, b"abc\r\n", None);
        let (limited, _) = body_hash(HashAlg::Sha256, Canon::Simple, b"abc\r\nmore\r\n", Some(5));
        assert_eq!((full, len), (limited, 5));
    }
}
