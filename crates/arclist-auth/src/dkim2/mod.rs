//! DKIM2 (draft-ietf-dkim-dkim2-spec-09, November 2026, the newest draft; key records as
//! draft-ietf-dkim-dkim2-dns-03, which keeps the DKIM1 record syntax): parsing, signing and
//! verifying `DKIM2-Signature` and `Message-Instance` header fields.
//!
//! Every hop that relays a message signs it with its own domain (`DKIM2-Signature`, numbered
//! `i=1, 2, …`), binds the signature to the SMTP envelope it sent with (`mf=`, `rt=`), and a
//! hop that changes the message records the hashes of the new content in a `Message-Instance`
//! (`m=1, 2, …`) with a Recipe (§5: copy ranges and literals) that recreates the previous
//! content. A verifier undoes the Recipes one after another, newest first, and checks every
//! instance's hashes on the content it recreated, then every hop's signature.
//!
//! Section references (`§`) point to -09. Where -09 differs from the interop corpus's draft
//! (-06, `tests/data/dkim2/README.md`), the rule is named where it is applied:
//!
//! - -08: timestamp, envelope, chain-of-custody and From errors are `fail`, not `permerror`;
//!   Auto-Submitted and VBR-Info are signed fields.
//! - -09: the From domain must match the signing domain of the hop that introduced that
//!   From (§11); a null body Recipe is a `permerror` (§13); `,` means every signature or hash
//!   of the group must pass and an unknown algorithm is a `permerror` for its group; a hop
//!   re-signs only a fully verified message; error strings as §14.
//!
//! Not built: ML-DSA keys (no maintained crate arclist could use), `nd=` chains beyond
//! parsing them, provisional verification. A hop that sends one message to many recipients
//! (a list) prepares its instance once and signs each recipient's copy (`fanout.rs`). See
//! `docs/dkim2.md`.

mod error;
mod fanout;
mod fields;
mod hash;
mod json;
mod recipe;
mod sign;
mod verify;

pub use error::{Dkim2Error, Dkim2Verdict};
pub use fanout::{Dkim2Fanout, wrap_recipe};
pub use fields::{
    ChainBinding, HashAlgo, HashEntry, InstanceField, SigValue, SignatureField, decode_path,
    encode_path,
};
pub use hash::{ContentState, body_hash, signature_input};
pub use recipe::{BodyRecipe, Recipe, Step};
pub use sign::{Dkim2Signer, NewInstance, SignRefusal, Signed};
pub use verify::{
    Dkim2Envelope, Dkim2Report, HopReport, InstanceReport, TimeCheck, verify_dkim2,
    verify_dkim2_with_keys, wanted_keys,
};

/// The draft this engine implements, for logs, reports and docs.
pub const DRAFT: &str = "draft-ietf-dkim-dkim2-spec-09";

/// A chain with more fields than this is refused before any work (§14: "Too many DKIM2
/// header fields"); the same bound as ARC's 50 sets.
pub const MAX_FIELDS: usize = 50;

/// How old a signature may be (§14: 14 days).
pub const MAX_AGE_SECS: u64 = 14 * 86_400;

/// How far in the future a signature's `t=` may be (clock skew allowance, one day).
pub const MAX_FUTURE_SECS: u64 = 86_400;

/// Whether a header field is left out of the instance header hash (§4): trace and
/// authentication fields that hops add, the DKIM2 fields themselves, and every `X-` field.
/// Auto-Submitted and VBR-Info are signed since -08.
pub fn is_unsigned_field(name: &[u8]) -> bool {
    const UNSIGNED: &[&str] = &[
        "apparently-to",
        "arc-authentication-results",
        "arc-message-signature",
        "arc-seal",
        "authentication-results",
        "delivered-to",
        "dkim-signature",
        "dkim2-signature",
        "dl-expansion-history",
        "message-instance",
        "original-recipient",
        "received",
        "return-path",
        "sio-label-history",
        "x400-received",
        "x400-trace",
    ];
    let name = name.trim_ascii();
    UNSIGNED
        .iter()
        .any(|u| name.eq_ignore_ascii_case(u.as_bytes()))
        || name.len() >= 2 && name[..2].eq_ignore_ascii_case(b"x-")
        || name.len() >= 9 && name[..9].eq_ignore_ascii_case(b"received-")
}

/// Relaxed domain match (§11): `a` equals `b` or is a subdomain of it, case-insensitively.
pub fn domain_within(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim_end_matches('.'), b.trim_end_matches('.'));
    if a.is_empty() || b.is_empty() || a.starts_with('[') {
        return false;
    }
    a.eq_ignore_ascii_case(b)
        || a.len() > b.len()
            // Bytes, not a str slice: the cut may fall inside a non-ASCII character.
            && a.as_bytes()[a.len() - b.len()..].eq_ignore_ascii_case(b.as_bytes())
            && a.as_bytes()[a.len() - b.len() - 1] == b'.'
}

/// The domain of an RFC 5321 path (`<local@domain>`), empty for the null path `<>`.
pub fn path_domain(path: &str) -> &str {
    let inner = path.trim().trim_start_matches('<').trim_end_matches('>');
    inner.rsplit_once('@').map_or("", |(_, d)| d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsigned_fields_and_domains() {
        for n in ["Received", "x-anything", "Received-SPF", "DKIM2-Signature"] {
            assert!(is_unsigned_field(n.as_bytes()), "{n}");
        }
        for n in ["From", "Auto-Submitted", "VBR-Info", "x", "receivedx"] {
            assert!(!is_unsigned_field(n.as_bytes()), "{n}");
        }
        assert!(domain_within("a.example.com", "example.com"));
        assert!(domain_within("Example.COM", "example.com"));
        assert!(!domain_within("badexample.com", "example.com"));
        assert!(!domain_within("example.com", "a.example.com"));
        // A cut inside a non-ASCII character is no match, not a panic.
        assert!(!domain_within("xé", "a"));
        assert!(!domain_within("mail.exämple.com", "e.com"));
        assert!(domain_within("mail.exämple.com", "exämple.com"));
        assert_eq!(path_domain("<a@b.example>"), "b.example");
        assert_eq!(path_domain("<>"), "");
    }
}
