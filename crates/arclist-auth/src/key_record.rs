//! DKIM public key records (RFC 6376 §3.6.1) and signature verification with them.

use super::tags::{TagList, strip_fws};
use aws_lc_rs::signature::{self, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The key types DKIM knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// RSA (`k=rsa`, the default).
    Rsa,
    /// Ed25519 (`k=ed25519`, RFC 8463).
    Ed25519,
}

/// A published key, parsed.
#[derive(Debug, Clone)]
pub struct KeyRecord {
    /// `k=`.
    pub key_type: KeyType,
    /// The decoded `p=`: an RSA SubjectPublicKeyInfo or RSAPublicKey, or 32 Ed25519 bytes.
    pub public_key: Vec<u8>,
    /// `t=s`: the signature's `i=` domain must equal `d=` exactly.
    pub strict_subdomains: bool,
    /// `t=y`: the domain is testing DKIM.
    pub testing: bool,
    /// `h=`: acceptable hash algorithms (empty means any).
    pub hashes: Vec<String>,
}

/// Why a key record cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The record's syntax is wrong.
    #[error("malformed key record: {0}")]
    Malformed(String),
    /// `p=` is empty: the key was revoked.
    #[error("key revoked (empty p=)")]
    Revoked,
    /// A key type arclist does not know.
    #[error("unknown key type k={0}")]
    UnknownType(String),
    /// An RSA key shorter than 1024 bits (RFC 8301).
    #[error("RSA key of {0} bits is shorter than the 1024 RFC 8301 requires")]
    TooShort(usize),
    /// `s=` excludes email.
    #[error("key not for email (s={0})")]
    WrongService(String),
    /// `h=` excludes the signature's hash.
    #[error("key does not allow hash {0}")]
    HashNotAllowed(String),
}

impl KeyRecord {
    /// Parses a TXT record's joined strings.
    pub fn parse(txt: &[u8]) -> Result<Self, KeyError> {
        let text = std::str::from_utf8(txt).map_err(|_| KeyError::Malformed("not UTF-8".into()))?;
        let tags = TagList::parse(text).map_err(|e| KeyError::Malformed(e.to_string()))?;
        if let Some(v) = tags.get("v") {
            let first = tags.iter().next().map(|(n, _)| n);
            if v != "DKIM1" || first != Some("v") {
                return Err(KeyError::Malformed(format!("v={v} (must be DKIM1, first)")));
            }
        }
        let key_type = match tags.get("k").unwrap_or("rsa") {
            "rsa" => KeyType::Rsa,
            "ed25519" => KeyType::Ed25519,
            other => return Err(KeyError::UnknownType(other.to_string())),
        };
        if let Some(s) = tags.get("s")
            && !s.split(':').any(|x| matches!(x.trim(), "*" | "email"))
        {
            return Err(KeyError::WrongService(s.to_string()));
        }
        let p = strip_fws(
            tags.get("p")
                .ok_or_else(|| KeyError::Malformed("no p= tag".into()))?,
        );
        if p.is_empty() {
            return Err(KeyError::Revoked);
        }
        let public_key = STANDARD
            .decode(p.as_bytes())
            .map_err(|e| KeyError::Malformed(format!("p= is not base64: {e}")))?;
        let flags: Vec<&str> = tags
            .get("t")
            .map(|t| t.split(':').map(str::trim).collect())
            .unwrap_or_default();
        let hashes = tags
            .get("h")
            .map(|h| h.split(':').map(|x| x.trim().to_string()).collect())
            .unwrap_or_default();
        let record = KeyRecord {
            key_type,
            public_key,
            strict_subdomains: flags.contains(&"s"),
            testing: flags.contains(&"y"),
            hashes,
        };
        match key_type {
            KeyType::Rsa => {
                let bits = rsa_modulus_bits(&record.public_key)
                    .ok_or_else(|| KeyError::Malformed("p= is not an RSA public key".into()))?;
                if bits < 1024 {
                    return Err(KeyError::TooShort(bits));
                }
            }
            KeyType::Ed25519 if record.public_key.len() != 32 => {
                return Err(KeyError::Malformed("Ed25519 key is not 32 bytes".into()));
            }
            KeyType::Ed25519 => {}
        }
        Ok(record)
    }

    /// Key size in bits, for reports (`(2048-bit key)`).
    pub fn bits(&self) -> usize {
        match self.key_type {
            KeyType::Rsa => rsa_modulus_bits(&self.public_key).unwrap_or(0),
            KeyType::Ed25519 => 256,
        }
    }

    /// Verifies `signature` over `data` for the signature algorithm `a=`.
    ///
    /// For ed25519-sha256 the signed message is the SHA-256 of `data` (RFC 8463 §3).
    pub fn verify(&self, algorithm: SigAlg, data: &[u8], sig: &[u8]) -> Result<(), String> {
        if !self.hashes.is_empty() && !self.hashes.iter().any(|h| h == "sha256") {
            return Err(KeyError::HashNotAllowed("sha256".into()).to_string());
        }
        match (algorithm, self.key_type) {
            (SigAlg::RsaSha256, KeyType::Rsa) => UnparsedPublicKey::new(
                &signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
                &self.public_key,
            )
            .verify(data, sig)
            .map_err(|_| "signature does not verify".to_string()),
            (SigAlg::Ed25519Sha256, KeyType::Ed25519) => {
                let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
                UnparsedPublicKey::new(&signature::ED25519, &self.public_key)
                    .verify(digest.as_ref(), sig)
                    .map_err(|_| "signature does not verify".to_string())
            }
            _ => Err("key type does not match the signature algorithm".into()),
        }
    }
}

/// Signature algorithms (`a=`) arclist accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigAlg {
    /// rsa-sha256.
    RsaSha256,
    /// ed25519-sha256 (RFC 8463).
    Ed25519Sha256,
}

impl SigAlg {
    /// Parses `a=`; rsa-sha1 and anything else are refused with the reason.
    pub fn parse(a: &str) -> Result<Self, String> {
        match a {
            "rsa-sha256" => Ok(SigAlg::RsaSha256),
            "ed25519-sha256" => Ok(SigAlg::Ed25519Sha256),
            "rsa-sha1" => Err("rsa-sha1 is not acceptable (RFC 8301)".into()),
            other => Err(format!("unknown algorithm a={other}")),
        }
    }

    /// The `a=` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SigAlg::RsaSha256 => "rsa-sha256",
            SigAlg::Ed25519Sha256 => "ed25519-sha256",
        }
    }
}

/// Bit length of the modulus in an RSA SubjectPublicKeyInfo or RSAPublicKey (DER).
pub fn rsa_modulus_bits(der: &[u8]) -> Option<usize> {
    let (tag, body, _) = der_read(der)?;
    if tag != 0x30 {
        return None;
    }
    let (first_tag, first, rest) = der_read(body)?;
    let rsa_public_key = match first_tag {
        // RSAPublicKey: SEQUENCE { INTEGER n, INTEGER e }
        0x02 => return Some(int_bits(first)),
        // SubjectPublicKeyInfo: SEQUENCE { AlgorithmIdentifier, BIT STRING }
        0x30 => {
            let (bit_tag, bits, _) = der_read(rest)?;
            if bit_tag != 0x03 || bits.first() != Some(&0) {
                return None;
            }
            &bits[1..]
        }
        _ => return None,
    };
    let (seq, inner, _) = der_read(rsa_public_key)?;
    let (int_tag, n, _) = der_read(inner)?;
    (seq == 0x30 && int_tag == 0x02).then(|| int_bits(n))
}

fn int_bits(n: &[u8]) -> usize {
    let n = match n.iter().position(|&b| b != 0) {
        Some(i) => &n[i..],
        None => return 0,
    };
    n.len() * 8 - n[0].leading_zeros() as usize
}

/// Reads one DER TLV: (tag, contents, rest).
fn der_read(data: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *data.first()?;
    let first = *data.get(1)? as usize;
    let (len, start) = if first < 0x80 {
        (first, 2)
    } else {
        let n = first & 0x7f;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | *data.get(2 + i)? as usize;
        }
        (len, 2 + n)
    };
    let end = start.checked_add(len)?;
    Some((tag, data.get(start..end)?, data.get(end..)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revoked_and_short_keys() {
        assert_eq!(
            KeyRecord::parse(b"v=DKIM1; k=rsa; p=").unwrap_err(),
            KeyError::Revoked
        );
        // A 512-bit key from the open ARC test suite.
        let short = b"v=DKIM1; k=rsa; p=MFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAMz5pRT1VFVNzRb1E0dDgB5C/8uOT7jiSl+RNgQrMgeW5pvpHl9mStGIAa2jSdBDZSCIXZDuZNQEcjh6m5vKzE8CAwEAAQ==";
        assert_eq!(
            KeyRecord::parse(short).unwrap_err(),
            KeyError::TooShort(512)
        );
        assert!(matches!(
            KeyRecord::parse(b"v=DKIM2; p=AAAA"),
            Err(KeyError::Malformed(_))
        ));
        assert!(matches!(
            KeyRecord::parse(b"k=dsa; p=AAAA"),
            Err(KeyError::UnknownType(_))
        ));
    }
}
