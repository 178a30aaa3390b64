//! Signing a message with DKIM as the list's domain.

use super::sign_field;
use crate::canon::{Canon, HashAlg, body_hash};
use crate::header_format::{SignatureTags, TagLayout, TagList};
use crate::message::RawMessage;
use crate::signing_key::SigningKey;
use std::sync::Arc;

/// The fields RFC 6376 §5.4.1 recommends signing, when present.
pub const RECOMMENDED_HEADERS: &[&str] = &[
    "from",
    "reply-to",
    "subject",
    "date",
    "to",
    "cc",
    "resent-date",
    "resent-from",
    "resent-to",
    "resent-cc",
    "in-reply-to",
    "references",
    "list-id",
    "list-help",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "list-subscribe",
    "list-post",
    "list-owner",
    "list-archive",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "content-id",
    "content-description",
    "message-id",
];

/// Fields signed once more than they occur, so that adding another instance later breaks
/// the signature (oversigning).
pub const OVERSIGNED_HEADERS: &[&str] = &["from", "subject", "to", "date"];

/// Signs messages as one domain and selector.
#[derive(Clone)]
pub struct DkimSigner {
    key: Arc<SigningKey>,
    domain: String,
    selector: String,
}

impl DkimSigner {
    /// A signer for `domain` with `selector`.
    pub fn new(key: Arc<SigningKey>, domain: &str, selector: &str) -> Self {
        DkimSigner {
            key,
            domain: domain.to_ascii_lowercase(),
            selector: selector.to_string(),
        }
    }

    /// The `h=` list for `message`: each recommended field as often as it occurs, plus one
    /// more for the oversigned ones.
    pub fn header_list(message: &RawMessage<'_>) -> Vec<String> {
        let mut h = Vec::new();
        for name in RECOMMENDED_HEADERS {
            let count = message.fields(name).count();
            let extra = usize::from(OVERSIGNED_HEADERS.contains(name));
            for _ in 0..count + extra {
                h.push((*name).to_string());
            }
        }
        h
    }

    /// Returns the `DKIM-Signature` field (with CRLF) to prepend to `message`.
    pub fn sign(&self, message: &[u8], now: u64) -> Result<String, String> {
        self.sign_with_body_hash(message, now, None)
    }

    /// The body hash [`DkimSigner::sign`] puts in `bh=` (relaxed, SHA-256), to compute once
    /// for a body many messages share: each member's copy of a post differs in its header
    /// only.
    pub fn body_hash_of(message: &[u8]) -> Vec<u8> {
        let parsed = RawMessage::parse(message);
        body_hash(HashAlg::Sha256, Canon::Relaxed, parsed.body, None).0
    }

    /// [`DkimSigner::sign`], with `bh` (from [`DkimSigner::body_hash_of`] of a message with
    /// the same body) instead of hashing the body again; `None` hashes it.
    pub fn sign_with_body_hash(
        &self,
        message: &[u8],
        now: u64,
        bh: Option<&[u8]>,
    ) -> Result<String, String> {
        let parsed = RawMessage::parse(message);
        let h = Self::header_list(&parsed);
        let bh = match bh {
            Some(bh) => bh.to_vec(),
            None => body_hash(HashAlg::Sha256, Canon::Relaxed, parsed.body, None).0,
        };
        let tags = TagList::signature(
            "DKIM-Signature",
            TagLayout::Folded,
            ("v", "1".to_string()),
            &SignatureTags {
                algorithm: self.key.algorithm().as_str(),
                domain: &self.domain,
                selector: &self.selector,
                time: now,
                headers: &h,
                body_hash: &bh,
            },
        );
        sign_field(&tags, &parsed.headers, &h, &self.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body hash computed once and given for another message with the same body makes the
    /// same signature as hashing it; a different body's hash does not.
    #[test]
    fn a_shared_body_hash_signs_like_hashing_the_body() {
        let (key, _) = SigningKey::generate_ed25519().expect("key");
        let signer = DkimSigner::new(Arc::new(key), "lists.example", "s1");
        let shared = b"From: a@example.org\r\nSubject: post\r\n\r\nThe body.\r\n";
        let copy = b"List-Unsubscribe: <https://x/1>\r\nFrom: a@example.org\r\nSubject: post\r\n\r\nThe body.\r\n";
        let bh = DkimSigner::body_hash_of(shared);
        assert_eq!(
            signer.sign_with_body_hash(copy, 1_800_000_000, Some(&bh)),
            signer.sign(copy, 1_800_000_000)
        );
        let other = DkimSigner::body_hash_of(b"From: a@example.org\r\n\r\nAnother body.\r\n");
        assert_ne!(
            signer.sign_with_body_hash(copy, 1_800_000_000, Some(&other)),
            signer.sign(copy, 1_800_000_000)
        );
    }
}
