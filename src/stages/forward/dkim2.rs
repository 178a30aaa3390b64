//! The forwarding hop's DKIM2 (`docs/dkim2.md`), for a domain with `dkim2 = true`.
//!
//! Forwarding changes no signed field (Delivered-To, Received, the ARC set and DKIM signature
//! are trace and authentication fields DKIM2 leaves out), so the hop adds no Message-Instance
//! to a chain that arrived, and starts one (`m=1`) when none did. DKIM2 binds the signature to
//! one transaction (`rt=` names the target), so the work is split: when the message is
//! relayed, with the intake's verdict at hand, [`mark`] decides whether the hop may sign and
//! marks the queued copy; at delivery each target's copy takes the mark off again and gets
//! the hop's DKIM2-Signature for its own transaction ([`target_copy`]). The domain's delivery
//! status notifications start a chain of their own ([`sign_own`]).

use super::ForwardDomain;
use crate::auth::dkim2::Dkim2Report;

/// The mark on top of a queued copy the relay found signable. An `X-` field, which DKIM2
/// leaves unsigned and which lies above the ARC set and DKIM signature, so that should it ever
/// leave (the domain's `dkim2` turned off by a reload while the copy waits) it breaks nothing.
const MARK: &[u8] = b"X-Arclist-DKIM2: forward\r\n";

/// `signed` (the sealed copy queued for every target) marked for DKIM2 signing per target when
/// the domain has `dkim2 = true` and the hop may sign it for `mail_from` (the SRS sender) →
/// `first` (one of the targets: the checks do not depend on which), `verified` the incoming
/// chain as intake verified it. When it may not (the chain did not verify, a first hop whose
/// From is outside the domain, an SRS domain outside the signing domain), the copy goes on
/// without DKIM2 and the reason is logged with the spool id and domain, and noted.
pub(super) fn mark(
    domain: &ForwardDomain,
    signed: Vec<u8>,
    (mail_from, first): (&str, &str),
    verified: Option<&Dkim2Report>,
    (id, now): (u64, u64),
    notes: &mut Vec<String>,
) -> Vec<u8> {
    if !domain.config.dkim2 {
        return signed;
    }
    match (domain.signer).dkim2_check_unchanged(&signed, (mail_from, first), verified, now) {
        Ok(()) => [MARK, &signed].concat(),
        Err(why) => {
            let domain = &domain.config.domain;
            tracing::warn!(id, %domain, reason = %why, "forwarded message leaves without DKIM2");
            notes.push(why.to_string());
            signed
        }
    }
}

/// Whether `queued` carries the relay's mark, and the copy below it.
pub(super) fn unmark(queued: &[u8]) -> (bool, &[u8]) {
    match queued.get(..MARK.len()) {
        Some(top) if top.eq_ignore_ascii_case(MARK) => (true, &queued[MARK.len()..]),
        _ => (false, queued),
    }
}

/// `rcpt`'s copy of `queued` for the transaction from `mail_from`: without the relay's mark,
/// and with the hop's DKIM2-Signature for this transaction when the copy was marked; None
/// when the queued bytes serve as they are. A copy that cannot be signed (a 7-bit twin
/// re-encoded since the relay checked it) leaves without DKIM2, logged: its ARC set stands.
pub(super) fn target_copy(
    domain: &ForwardDomain,
    (mail_from, rcpt): (&str, &str),
    queued: &[u8],
) -> Option<Vec<u8>> {
    let (marked, below) = unmark(queued);
    if !marked {
        return None;
    }
    let now = crate::auth::unix_now();
    match (domain.signer).dkim2_sign_checked(below, (mail_from, rcpt), now) {
        Ok(signed) => Some(signed),
        Err(e) => {
            let domain = &domain.config.domain;
            tracing::warn!(%domain, %rcpt, error = %e, "forwarded copy leaves without DKIM2");
            Some(below.to_vec())
        }
    }
}

/// `message`, a delivery status notification the domain wrote (its From the domain's own) for
/// the one transaction from the null sender to `rcpt`, with the domain's first DKIM2 hop on
/// top when it has `dkim2 = true`; as it is, logged, when it cannot be signed.
pub(super) fn sign_own(domain: &ForwardDomain, message: Vec<u8>, rcpt: &str, now: u64) -> Vec<u8> {
    if !domain.config.dkim2 {
        return message;
    }
    match (domain.signer).dkim2_sign_own(&message, ("", rcpt), now) {
        Ok(signed) => signed,
        Err(e) => {
            let domain = &domain.config.domain;
            tracing::warn!(%domain, %rcpt, error = %e, "notification leaves without DKIM2");
            message
        }
    }
}

#[cfg(test)]
mod tests {
    use super::unmark;

    #[test]
    fn only_the_mark_on_top_comes_off() {
        let marked = b"X-Arclist-DKIM2: forward\r\nARC-Seal: x\r\n\r\nbody\r\n";
        assert_eq!(unmark(marked), (true, &b"ARC-Seal: x\r\n\r\nbody\r\n"[..]));
        let below = b"ARC-Seal: x\r\nX-Arclist-DKIM2: forward\r\n\r\n";
        assert_eq!(unmark(below), (false, &below[..]));
    }
}
