//! Verifying every DKIM-Signature of a message.

use super::signature::{Identity, SignatureHeader};
use super::{append_self, signed_header_data_indexed};
use crate::canon::BodyHashCache;
use crate::key_lookup::{KeyFailure, KeyStore};
use crate::message::RawMessage;
use serde::{Deserialize, Serialize};

/// RFC 8601 result values for one DKIM signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DkimVerdict {
    /// Verified.
    Pass,
    /// Did not verify: bad body hash, bad signature, unacceptable key or algorithm, expired.
    Fail,
    /// The signature cannot be processed (syntax, no key published).
    Permerror,
    /// DNS failed; try again later.
    Temperror,
}

impl DkimVerdict {
    /// The RFC 8601 spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            DkimVerdict::Pass => "pass",
            DkimVerdict::Fail => "fail",
            DkimVerdict::Permerror => "permerror",
            DkimVerdict::Temperror => "temperror",
        }
    }
}

/// The outcome for one DKIM-Signature.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DkimOutcome {
    /// The verdict.
    pub verdict: DkimVerdict,
    /// `d=` (empty when unparseable).
    pub domain: String,
    /// `s=`.
    pub selector: String,
    /// `i=` or `@d`.
    pub auid: String,
    /// First characters of `b=`, for `header.b` (RFC 6008).
    pub header_b: String,
    /// Key size in bits when a key was found.
    pub key_bits: Option<usize>,
    /// Why, when not pass.
    pub reason: String,
}

/// Checks one parsed signature against the message and key. Shared with the ARC AMS check.
pub(crate) fn check_signature(
    sig: &SignatureHeader,
    raw_field: &[u8],
    message: &RawMessage<'_>,
    bodies: &mut BodyHashCache<'_>,
    keys: &KeyStore,
) -> Result<usize, (DkimVerdict, String)> {
    let key = keys.get(&sig.selector, &sig.domain).map_err(|e| match e {
        KeyFailure::Temporary(d) => (DkimVerdict::Temperror, d.to_string()),
        KeyFailure::NotFound(name) => (DkimVerdict::Permerror, format!("no key at {name}")),
        KeyFailure::Unusable { name, error } => {
            (DkimVerdict::Fail, format!("key at {name}: {error}"))
        }
    })?;
    if key.strict_subdomains
        && let Identity::Auid(auid) = &sig.identity
    {
        let d = auid.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
        if !d.eq_ignore_ascii_case(&sig.domain) {
            return Err((
                DkimVerdict::Fail,
                "key has t=s but i= is a subdomain of d=".into(),
            ));
        }
    }
    let (hash, canonical_len) = bodies.get(sig.hash, sig.body_canon, sig.length).clone();
    if let Some(l) = sig.length
        && l > canonical_len
    {
        return Err((
            DkimVerdict::Fail,
            format!("l={l} exceeds the body's {canonical_len} canonical bytes"),
        ));
    }
    if hash != sig.bh {
        return Err((
            DkimVerdict::Fail,
            "body hash mismatch (body changed after signing)".into(),
        ));
    }
    let mut data = Vec::with_capacity(1024);
    signed_header_data_indexed(
        sig.header_canon,
        &message.headers,
        message.index(),
        &sig.signed_headers,
        &mut data,
    );
    append_self(sig.header_canon, raw_field, &mut data);
    key.verify(sig.algorithm, &data, &sig.b).map_err(|e| {
        (
            DkimVerdict::Fail,
            format!("{e} (headers changed after signing, or wrong key)"),
        )
    })?;
    Ok(key.bits())
}

/// DKIM signatures checked per message, topmost first; the rest are not looked up or
/// verified. Real mail carries one to three (author, ESP, list); a message with hundreds would
/// otherwise cost a DNS query and an RSA verification each.
pub const MAX_SIGNATURES: usize = 10;

/// Verifies the first [`MAX_SIGNATURES`] DKIM-Signatures in `message` with keys already
/// fetched into `keys`.
/// `now` is the current Unix time, for `x=`.
pub fn verify_dkim_signatures(
    message: &RawMessage<'_>,
    bodies: &mut BodyHashCache<'_>,
    keys: &KeyStore,
    now: u64,
) -> Vec<DkimOutcome> {
    message
        .fields("DKIM-Signature")
        .take(MAX_SIGNATURES)
        .map(|field| {
            let parsed = SignatureHeader::parse(&field.unfolded_value(), false);
            let mut outcome = DkimOutcome {
                verdict: DkimVerdict::Pass,
                domain: String::new(),
                selector: String::new(),
                auid: String::new(),
                header_b: String::new(),
                key_bits: None,
                reason: String::new(),
            };
            let sig = match parsed {
                Ok(sig) => sig,
                Err(e) => {
                    // rsa-sha1 is an unacceptable algorithm, not a syntax problem: RFC 8301 says fail.
                    outcome.verdict = if e.0.contains("rsa-sha1") {
                        DkimVerdict::Fail
                    } else {
                        DkimVerdict::Permerror
                    };
                    outcome.reason = e.0;
                    return outcome;
                }
            };
            outcome.domain = sig.domain.clone();
            outcome.selector = sig.selector.clone();
            outcome.auid = match &sig.identity {
                Identity::Auid(a) => a.clone(),
                Identity::Instance(_) => String::new(),
            };
            outcome.header_b = sig.b_text.chars().take(8).collect();
            if let (Some(x), Some(t)) = (sig.expiration, sig.timestamp)
                && x < t
            {
                outcome.verdict = DkimVerdict::Permerror;
                outcome.reason = "x= is before t=".into();
                return outcome;
            }
            if let Some(x) = sig.expiration
                && x < now
            {
                outcome.verdict = DkimVerdict::Fail;
                outcome.reason = format!("signature expired (x={x})");
                return outcome;
            }
            match check_signature(&sig, field.raw, message, bodies, keys) {
                Ok(bits) => outcome.key_bits = Some(bits),
                Err((verdict, reason)) => {
                    outcome.verdict = verdict;
                    outcome.reason = reason;
                }
            }
            outcome
        })
        .collect()
}

/// Every (selector, domain) the message's DKIM signatures need.
pub fn wanted_keys(message: &RawMessage<'_>) -> Vec<(String, String)> {
    message
        .fields("DKIM-Signature")
        .take(MAX_SIGNATURES)
        .filter_map(|f| SignatureHeader::parse(&f.unfolded_value(), false).ok())
        .map(|s| (s.selector, s.domain))
        .collect()
}
