//! BIMI header fields on mail that arclist passes on. `BIMI-Location` and `BIMI-Indicator`
//! are written by the receiving mailbox provider once it has checked the author domain's BIMI
//! record and DMARC; one that arrives with a message was written by someone else, and a
//! receiver that trusted it would show a forged logo. `BIMI-Selector` is the author domain's
//! choice of logo: it means nothing on a post whose From the list rewrote to its own address.

use crate::auth::message::RawMessage;

/// The fields only the receiving side may add, lower-case.
pub const RECEIVER_FIELDS: [&str; 2] = ["bimi-location", "bimi-indicator"];

/// `message` without the [`RECEIVER_FIELDS`] that no DKIM signature covers, or `None` when it
/// carries none to remove. A field a signature's `h=` names stays: removing it would break the
/// signature, and with it DMARC for the forwarded message, while receivers check BIMI
/// themselves and drop such fields on arrival anyway.
pub fn strip_unsigned(message: &[u8]) -> Option<Vec<u8>> {
    let parsed = RawMessage::parse(message);
    let signed = signed_names(&parsed);
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

/// Every field name (lower-case) that a DKIM-Signature's `h=` lists.
fn signed_names(parsed: &RawMessage<'_>) -> Vec<String> {
    let mut names = Vec::new();
    for sig in parsed.fields("DKIM-Signature") {
        let value = sig.unfolded_value();
        for tag in value.split(';') {
            let Some((k, v)) = tag.split_once('=') else {
                continue;
            };
            if k.trim() == "h" {
                names.extend(
                    v.split(':')
                        .map(|n| n.trim().to_ascii_lowercase())
                        .filter(|n| !n.is_empty()),
                );
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forged_logos_go_signed_fields_stay() {
        let m = b"BIMI-Location: v=BIMI1; l=https://evil.test/logo.svg\r\nFrom: a@x.test\r\nBIMI-Indicator: PHN2Zz4=\r\nSubject: hi\r\n\r\nbody\r\n";
        let out = strip_unsigned(m).expect("stripped");
        assert_eq!(out, b"From: a@x.test\r\nSubject: hi\r\n\r\nbody\r\n");
        let signed = b"DKIM-Signature: v=1; d=x.test; s=s; h=From : bimi-location; bh=x; b=y\r\nBIMI-Location: v=BIMI1; l=https://x.test/l.svg\r\nBIMI-Indicator: PHN2Zz4=\r\nFrom: a@x.test\r\n\r\nbody\r\n";
        let out = strip_unsigned(signed).expect("the unsigned one goes");
        let text = String::from_utf8(out).expect("utf-8");
        assert!(text.contains("BIMI-Location") && !text.contains("BIMI-Indicator"));
        assert_eq!(strip_unsigned(b"From: a@x.test\r\n\r\nbody\r\n"), None);
    }
}
