//! BIMI header fields on mail that arclist passes on. `BIMI-Location` and `BIMI-Indicator`
//! are written by the receiving mailbox provider once it has checked the author domain's BIMI
//! record and DMARC; one that arrives with a message was written by someone else, and a
//! receiver that trusted it would show a forged logo. `BIMI-Selector` is the author domain's
//! choice of logo: it means nothing on a post whose From the list rewrote to its own address.

use crate::auth::dkim::{DkimOutcome, DkimVerdict, SignatureHeader};
use crate::auth::message::RawMessage;

/// The fields only the receiving side may add, lower-case.
pub const RECEIVER_FIELDS: [&str; 2] = ["bimi-location", "bimi-indicator"];

/// `message` without the [`RECEIVER_FIELDS`] that no verified DKIM signature covers, or `None`
/// when it carries none to remove. A field a passing signature's `h=` names stays: removing it
/// would break the signature, and with it DMARC for the forwarded message, while receivers
/// check BIMI themselves and drop such fields on arrival anyway. A signature that did not pass
/// (`dkim`, the verdicts on arrival) protects nothing: anyone can write `h=bimi-location`.
pub fn strip_unsigned(message: &[u8], dkim: &[DkimOutcome]) -> Option<Vec<u8>> {
    let parsed = RawMessage::parse(message);
    let signed = signed_names(&parsed, dkim);
    let doomed = |name: &[u8]| {
        let name = String::from_utf8_lossy(name).to_ascii_lowercase();
        RECEIVER_FIELDS.contains(&name.as_str()) && !signed.contains(&name)
    };
    if !parsed.headers.iter().any(|h| doomed(h.name)) {
        return None;
    }
    let start = message.as_ptr() as usize;
    let header_end = parsed
        .headers
        .last()
        .map_or(0, |h| h.raw.as_ptr() as usize - start + h.raw.len());
    let mut out = Vec::with_capacity(message.len());
    for h in parsed.headers.iter().filter(|h| !doomed(h.name)) {
        out.extend_from_slice(h.raw);
    }
    out.extend_from_slice(&message[header_end.min(message.len())..]);
    Some(out)
}

/// Every field name (lower-case) that the `h=` of a DKIM-Signature that passed lists. A field
/// is matched to its verdict by `d=` and the start of `b=`, what the verdict keeps of it
/// (`header_b`, written by the engine's verifier from the same parse).
fn signed_names(parsed: &RawMessage<'_>, dkim: &[DkimOutcome]) -> Vec<String> {
    let mut names = Vec::new();
    for field in parsed.fields("DKIM-Signature") {
        // One that does not parse cannot have passed.
        let Ok(sig) = SignatureHeader::parse(&field.unfolded_value(), false) else {
            continue;
        };
        let header_b: String = sig.b_text.chars().take(8).collect();
        let passed = dkim.iter().any(|o| {
            o.verdict == DkimVerdict::Pass && o.header_b == header_b && o.domain == sig.domain
        });
        if passed {
            names.extend(sig.signed_headers.iter().map(|n| n.to_ascii_lowercase()));
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(verdict: DkimVerdict, domain: &str, b: &str) -> DkimOutcome {
        DkimOutcome {
            verdict,
            domain: domain.into(),
            selector: "s".into(),
            auid: format!("@{domain}"),
            header_b: b.into(),
            key_bits: Some(2048),
            reason: String::new(),
        }
    }

    #[test]
    fn forged_logos_go_fields_a_passing_signature_covers_stay() {
        let m = b"BIMI-Location: v=BIMI1; l=https://evil.test/logo.svg\r\nFrom: a@x.test\r\nBIMI-Indicator: PHN2Zz4=\r\nSubject: hi\r\n\r\nbody\r\n";
        let out = strip_unsigned(m, &[]).expect("stripped");
        assert_eq!(out, b"From: a@x.test\r\nSubject: hi\r\n\r\nbody\r\n");
        let signed = b"DKIM-Signature: v=1; a=rsa-sha256; d=x.test; s=s; h=From : bimi-location; bh=AAAA; b=yyyy zzzz\r\nBIMI-Location: v=BIMI1; l=https://x.test/l.svg\r\nBIMI-Indicator: PHN2Zz4=\r\nFrom: a@x.test\r\n\r\nbody\r\n";
        let passed = [outcome(DkimVerdict::Pass, "x.test", "yyyyzzzz")];
        let out = strip_unsigned(signed, &passed).expect("the unsigned one goes");
        let text = String::from_utf8(out).expect("utf-8");
        assert!(text.contains("BIMI-Location") && !text.contains("BIMI-Indicator"));
        assert_eq!(strip_unsigned(b"From: a@x.test\r\n\r\nbody\r\n", &[]), None);
        // Anyone can write h=bimi-location: a signature that did not verify keeps nothing.
        for failed in [
            vec![],
            vec![outcome(DkimVerdict::Fail, "x.test", "yyyyzzzz")],
            vec![outcome(DkimVerdict::Pass, "other.test", "yyyyzzzz")],
        ] {
            let out = strip_unsigned(signed, &failed).expect("both go");
            let text = String::from_utf8(out).expect("utf-8");
            assert!(!text.contains("BIMI-"), "{failed:?}: {text}");
        }
    }
}
