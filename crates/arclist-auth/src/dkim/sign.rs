//! Signing a message with DKIM as the list's domain.

use super::{append_unsigned, sign_field};
use crate::canon::{self, Canon, HashAlg, body_hash};
use crate::header_format::{SignatureTags, TagLayout, TagList};
use crate::message::{HeaderIndex, RawMessage};
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
        let tags = self.tags(&h, &bh, now);
        sign_field(&tags, &parsed.headers, &h, &self.key)
    }

    /// The signature's tags, `b=` still to fill: `h` signed, `bh` the body hash.
    fn tags(&self, h: &[String], bh: &[u8], now: u64) -> TagList {
        TagList::signature(
            "DKIM-Signature",
            TagLayout::Folded,
            ("v", "1".to_string()),
            &SignatureTags {
                algorithm: self.key.algorithm().as_str(),
                domain: &self.domain,
                selector: &self.selector,
                time: now,
                headers: h,
                body_hash: bh,
            },
        )
    }

    /// What every member's signature of `shared` has in common, when each member's copy is
    /// `shared` with fields named `names` added on top, in that order (one-click's
    /// List-Unsubscribe and List-Unsubscribe-Post): the `h=` list, and the shared fields it
    /// covers already canonicalized, so that [`DkimSigner::sign_member`] reads and
    /// canonicalizes only the member's own fields.
    pub fn prepare_members(shared: &[u8], names: &[&str]) -> MemberSignature {
        let mut copy = Vec::with_capacity(shared.len() + 32 * names.len());
        for name in names {
            copy.extend_from_slice(name.as_bytes());
            copy.extend_from_slice(b": x\r\n");
        }
        copy.extend_from_slice(shared);
        let parsed = RawMessage::parse(&copy);
        let h = Self::header_list(&parsed);
        let mut pieces = Vec::new();
        for idx in HeaderIndex::new(&parsed.headers).select(&parsed.headers, &h) {
            if idx < names.len() {
                pieces.push(Piece::Member(idx));
                continue;
            }
            if !matches!(pieces.last(), Some(Piece::Shared(_))) {
                pieces.push(Piece::Shared(Vec::new()));
            }
            if let (Some(Piece::Shared(run)), Some(field)) =
                (pieces.last_mut(), parsed.headers.get(idx))
            {
                canon::header(Canon::Relaxed, field.raw, run);
            }
        }
        MemberSignature {
            names: names.iter().map(|n| n.to_ascii_lowercase()).collect(),
            h,
            pieces,
        }
    }

    /// The `DKIM-Signature` field (with CRLF) for a member's copy made as `prepared` says:
    /// `fields` (each whole, with its CRLF) on top of the shared copy whose body hash is `bh`.
    /// The same field as [`DkimSigner::sign_with_body_hash`] of that copy; an error when
    /// `fields` are not the ones `prepared` was made for.
    pub fn sign_member(
        &self,
        prepared: &MemberSignature,
        fields: &[&[u8]],
        now: u64,
        bh: &[u8],
    ) -> Result<String, String> {
        let named = |(field, name): (&&[u8], &String)| {
            field.len() > name.len()
                && field[..name.len()].eq_ignore_ascii_case(name.as_bytes())
                && field[name.len()] == b':'
                && field.ends_with(b"\r\n")
        };
        if fields.len() != prepared.names.len() || !fields.iter().zip(&prepared.names).all(named) {
            return Err(
                "a member's fields differ from the ones the signature was prepared for".into(),
            );
        }
        let tags = self.tags(&prepared.h, bh, now);
        let mut data = Vec::with_capacity(2048);
        for piece in &prepared.pieces {
            match piece {
                Piece::Shared(run) => data.extend_from_slice(run),
                Piece::Member(i) => canon::header(Canon::Relaxed, fields[*i], &mut data),
            }
        }
        append_unsigned(Canon::Relaxed, tags.unsigned().as_bytes(), &mut data);
        Ok(tags.signed(&self.key.sign(&data)?))
    }
}

/// What every member's DKIM signature of one shared copy has in common
/// ([`DkimSigner::prepare_members`]).
pub struct MemberSignature {
    /// The names of the member's own fields, in order, lowercased.
    names: Vec<String>,
    /// The `h=` list of every member's copy.
    h: Vec<String>,
    /// The signed header data in order, before the signature field itself.
    pieces: Vec<Piece>,
}

/// A stretch of the signed header data.
enum Piece {
    /// Shared fields, canonicalized.
    Shared(Vec<u8>),
    /// The member's field at this index.
    Member(usize),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A field rendered with `b=` empty adds the same signed data without the stripping.
    #[test]
    fn an_unsigned_field_needs_no_stripping() {
        let (key, _) = SigningKey::generate_ed25519().expect("key");
        let signer = DkimSigner::new(Arc::new(key), "lists.example", "s1");
        let h = vec!["from".to_string(), "subject".to_string()];
        let unsigned = signer.tags(&h, b"bodyhash", 1_800_000_000).unsigned();
        let (mut stripped, mut direct) = (Vec::new(), Vec::new());
        super::super::append_self(Canon::Relaxed, unsigned.as_bytes(), &mut stripped);
        append_unsigned(Canon::Relaxed, unsigned.as_bytes(), &mut direct);
        assert_eq!(direct, stripped);
        assert!(
            direct.ends_with(b"b="),
            "{}",
            String::from_utf8_lossy(&direct)
        );
    }

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

    /// A member's signature made from the prepared shared part is the one signing the whole
    /// copy makes, whatever the shared copy already has of the member's field names; fields
    /// other than the prepared ones are refused.
    #[test]
    fn a_prepared_member_signature_signs_like_the_whole_copy() {
        let (key, _) = SigningKey::generate_ed25519().expect("key");
        let signer = DkimSigner::new(Arc::new(key), "lists.example", "s1");
        let names = ["List-Unsubscribe", "List-Unsubscribe-Post"];
        let shareds: [&[u8]; 3] = [
            b"From: a@example.org\r\nSubject: post\r\nTo: l@lists.example\r\n\r\nThe body.\r\n",
            b"List-Id: <l.lists.example>\r\nFrom:  a@example.org\r\nList-Unsubscribe: <mailto:x>\r\nSubject: a\r\n long one\r\n\r\nBody\r\n",
            b"X-Other: 1\r\n\r\n",
        ];
        for shared in shareds {
            let prepared = DkimSigner::prepare_members(shared, &names);
            let bh = DkimSigner::body_hash_of(shared);
            for member in ["a@x.example", "b@y.example"] {
                let first = format!("List-Unsubscribe:  <https://l/{member}>,\r\n <mailto:l>\r\n");
                let second = "list-unsubscribe-post: List-Unsubscribe=One-Click\r\n".to_string();
                let copy = [first.as_bytes(), second.as_bytes(), shared].concat();
                let fields = [first.as_bytes(), second.as_bytes()];
                assert_eq!(
                    signer.sign_member(&prepared, &fields, 1_800_000_000, &bh),
                    signer.sign(&copy, 1_800_000_000),
                    "{}",
                    String::from_utf8_lossy(&copy)
                );
            }
            let wrong: [&[u8]; 2] = [
                b"List-Post: <mailto:l>\r\n",
                b"List-Unsubscribe-Post: x\r\n",
            ];
            assert!(signer.sign_member(&prepared, &wrong, 1, &bh).is_err());
            assert!(signer.sign_member(&prepared, &wrong[..1], 1, &bh).is_err());
        }
    }
}
