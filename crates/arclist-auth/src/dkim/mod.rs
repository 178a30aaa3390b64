//! DKIM (RFC 6376, RFC 8301, RFC 8463): the signature header shared with ARC's
//! ARC-Message-Signature, header hashing, verification and signing.

mod sign;
mod signature;
mod verify;

pub use sign::{DkimSigner, MemberSignature, OVERSIGNED_HEADERS, RECOMMENDED_HEADERS};
pub use signature::{Identity, SignatureHeader, SignatureParseError, strip_b_value};
pub(crate) use verify::check_signature;
pub use verify::{DkimOutcome, DkimVerdict, MAX_SIGNATURES, verify_dkim_signatures, wanted_keys};

use super::canon::{self, Canon};
use super::message::{HeaderField, HeaderIndex};

/// Builds the header part of the data a DKIM/AMS signature covers: the `h=` fields, each the
/// bottom-most not yet used instance of its name (RFC 6376 §5.4.2); a name with no instance
/// left contributes nothing.
pub fn signed_header_data(
    canon: Canon,
    headers: &[HeaderField<'_>],
    h: &[String],
    out: &mut Vec<u8>,
) {
    signed_header_data_indexed(canon, headers, &HeaderIndex::new(headers), h, out);
}

/// [`signed_header_data`] with the message's field index made beforehand, so that checking
/// many signatures of one message indexes its fields once.
pub fn signed_header_data_indexed(
    canon: Canon,
    headers: &[HeaderField<'_>],
    index: &HeaderIndex,
    h: &[String],
    out: &mut Vec<u8>,
) {
    for idx in index.select(headers, h) {
        if let Some(field) = headers.get(idx) {
            canon::header(canon, field.raw, out);
        }
    }
}

/// Signs a DKIM-Signature or ARC-Message-Signature written by `tags`. The signed data is the
/// relaxed `h=` fields of `headers`, then the field itself with `b=` empty. Returns the
/// finished field with CRLF.
pub(crate) fn sign_field(
    tags: &crate::header_format::TagList,
    headers: &[HeaderField<'_>],
    h: &[String],
    key: &crate::signing_key::SigningKey,
) -> Result<String, String> {
    let mut data = Vec::with_capacity(2048);
    signed_header_data(Canon::Relaxed, headers, h, &mut data);
    append_unsigned(Canon::Relaxed, tags.unsigned().as_bytes(), &mut data);
    Ok(tags.signed(&key.sign(&data)?))
}

/// Appends the signature field itself with `b=` emptied and no trailing CRLF, the last
/// piece of signed data (RFC 6376 §3.7).
pub fn append_self(canon: Canon, raw_field: &[u8], out: &mut Vec<u8>) {
    append_unsigned(canon, &strip_b_value(raw_field), out);
}

/// [`append_self`] for a field this crate rendered with `b=` empty
/// ([`crate::header_format::TagList::unsigned`]): nothing to strip, so the field is not
/// copied first (a fan-out signs one per member).
pub(crate) fn append_unsigned(canon: Canon, field: &[u8], out: &mut Vec<u8>) {
    canon::header(canon, field, out);
    if out.ends_with(b"\r\n") {
        out.truncate(out.len() - 2);
    }
}
