//! The list's DKIM2 hop (`docs/dkim2.md`), for a list with `dkim2 = true`.
//!
//! DKIM2 binds each signature to one envelope (`rt=` names the recipient), so the work is
//! split: when the post is made, the list's Message-Instance (its Recipe and hashes, the body
//! hashed once) goes on top of the queued copy ([`with_instance`]); at delivery each member's
//! copy takes it off again, gets its one-click fields, the instance's header hash redone and
//! the list's DKIM2-Signature for that member's transaction ([`ListRuntime::member_copy`]).
//! The ARC set and the DKIM signature below are the post's, unchanged: neither covers DKIM2
//! fields, nor DKIM2 them.

use super::ListRuntime;
use crate::auth::dkim2::{Dkim2Fanout, Dkim2Report};
use crate::stages::delivery::Outgoing;
use std::sync::Arc;

/// The fields one-click unsubscribe gives each member's copy: the Recipe restores them too.
const PER_MEMBER: &[&str] = &["List-Unsubscribe", "List-Unsubscribe-Post"];

/// The name that opens the list's prepared instance on top of a queued copy.
const INSTANCE: &[u8] = b"message-instance:";

/// `signed` (the post's copy, sealed and signed) with the list's DKIM2 Message-Instance on
/// top, made from `received` (the post as it arrived, `verified` its DKIM2 chain). Without
/// one (the body was re-encoded or restructured, the chain did not verify, a first hop whose
/// From is not the list's domain) the copy goes on without DKIM2, and the reason is logged
/// with the list and Message-ID and noted.
pub(super) fn with_instance(
    list: &ListRuntime,
    received: &[u8],
    signed: Vec<u8>,
    verified: Option<&Dkim2Report>,
    notes: &mut Vec<String>,
) -> Vec<u8> {
    let per_member: &[&str] = if list.personalized() { PER_MEMBER } else { &[] };
    match (list.signer).dkim2_instance(received, &signed, per_member, verified) {
        Ok(instance) => [instance.as_bytes(), &signed].concat(),
        Err(why) => {
            let message_id = super::post::message_id(received).unwrap_or_default();
            tracing::warn!(list = %list.config.address, %message_id, reason = %why, "post leaves without DKIM2");
            notes.push(why.to_string());
            signed
        }
    }
}

/// `signed`, a notice the list wrote (from its own `-request` address), with the list's
/// first DKIM2 hop (`i=1`, `m=1`) for the transaction it goes in, when the list has
/// `dkim2 = true` and the notice has one recipient: `rt=` names recipients, and a notice to
/// several (the owners) shares one transaction, so it goes without, as before. A notice that
/// cannot be signed goes without too, logged.
pub(super) fn own_notice(list: &ListRuntime, signed: Vec<u8>, to: &[String]) -> Vec<u8> {
    let [rcpt] = to else {
        return signed;
    };
    if !list.config.dkim2 {
        return signed;
    }
    let mail_from = super::notice::bounces_address(list);
    let now = crate::auth::unix_now();
    match (list.signer).dkim2_sign_own(&signed, (&mail_from, rcpt), now) {
        Ok(with_dkim2) => with_dkim2,
        Err(e) => {
            let list = &list.config.address;
            tracing::warn!(%list, %rcpt, error = %e, "notice leaves without DKIM2");
            signed
        }
    }
}

/// The list's prepared Message-Instance on top of a queued copy, and the copy below it.
fn split_prepared(queued: &[u8]) -> (Option<&[u8]>, &[u8]) {
    let opens = queued
        .get(..INSTANCE.len())
        .is_some_and(|n| n.eq_ignore_ascii_case(INSTANCE));
    if !opens {
        return (None, queued);
    }
    // The field ends at the first line break not followed by folding white space.
    let end = queued
        .windows(3)
        .position(|w| w[..2] == *b"\r\n" && w[2] != b' ' && w[2] != b'\t')
        .map(|at| at + 2);
    match end {
        Some(end) => (Some(&queued[..end]), &queued[end..]),
        None => (None, queued),
    }
}

impl ListRuntime {
    /// `recipient`'s copy of `queued` (a post, or its 7-bit twin) for the transaction from
    /// `mail_from`: one-click's fields when the list has them, and with `dkim2` on, the list's
    /// instance and a DKIM2-Signature for this envelope, on top of the queued bytes (less a
    /// prepared instance, which only a DKIM2 signature makes whole). `one_click` and `dkim2`
    /// are [`ListRuntime::one_click_signing`] and [`ListRuntime::dkim2_fan_out`] of the same
    /// queued bytes, worked out once for every member. A copy that cannot be DKIM2-signed
    /// leaves without (logged): its ARC set and DKIM signature still stand.
    pub fn member_copy(
        &self,
        keys: &super::tokens::TokenKeys,
        (mail_from, recipient): (&str, &str),
        (queued, one_click): (&Arc<[u8]>, Option<&super::MemberSigning>),
        dkim2: Option<&Result<Dkim2Fanout, String>>,
    ) -> Result<Outgoing, super::ListError> {
        let (_, below) = split_prepared(queued);
        let skip = queued.len() - below.len();
        let personal = self.personalized();
        let own = match personal {
            true => self.personalize(keys, recipient, below, one_click)?,
            false => Vec::new(),
        };
        // Without DKIM2 (now), a prepared instance is left off: unsigned, it would fail.
        let Some(fanout) = dkim2 else {
            return Ok(Outgoing::personal(own, queued.clone(), skip));
        };
        let now = crate::auth::unix_now();
        let signed = fanout.as_ref().map_err(Clone::clone).and_then(|f| {
            // A personal copy's header hash is redone over its own fields too: only the
            // header is read, so the body is not copied for it.
            let head = personal.then(|| {
                let end = memchr::memmem::find(below, b"\r\n\r\n").map_or(below.len(), |at| at + 4);
                [own.as_slice(), &below[..end]].concat()
            });
            let copy = head.as_deref().unwrap_or(below);
            (self.signer)
                .dkim2_sign_member(f, (copy, personal), (mail_from, recipient), now)
                .map_err(|e| e.to_string())
        });
        match signed {
            Ok(mut on_top) => {
                on_top.extend_from_slice(&own);
                Ok(Outgoing::personal(on_top, queued.clone(), skip))
            }
            Err(e) => {
                let list = &self.config.address;
                tracing::warn!(%list, rcpt = %recipient, error = %e, "member's copy leaves without DKIM2");
                Ok(Outgoing::personal(own, queued.clone(), skip))
            }
        }
    }

    /// Once per queued copy (a post, or its 7-bit twin): what every member's one-click copy
    /// of it shares, for [`ListRuntime::member_copy`]; `None` without one-click.
    pub fn one_click_signing(&self, queued: &[u8]) -> Option<super::MemberSigning> {
        let (_, below) = split_prepared(queued);
        self.personalized().then(|| Self::member_signing(below))
    }

    /// Once per queued copy (a post, or its 7-bit twin): what every member's DKIM2 signature
    /// of it shares, for [`ListRuntime::member_copy`]; `None` when the list does not sign
    /// DKIM2 or `queued` has no prepared instance.
    pub fn dkim2_fan_out(&self, queued: &[u8]) -> Option<Result<Dkim2Fanout, String>> {
        let (instance, below) = split_prepared(queued);
        let instance = instance.filter(|_| self.config.dkim2)?;
        Some(
            (self.signer)
                .dkim2_fan_out(instance, below)
                .map_err(|e| e.to_string()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::split_prepared;

    #[test]
    fn the_prepared_instance_comes_off_whole() {
        let queued =
            b"Message-Instance: m=2;\r\n\th=sha256:AA==:BB==\r\nARC-Seal: x\r\n\r\nbody\r\n";
        let (mi, rest) = split_prepared(queued);
        assert_eq!(
            mi,
            Some(&b"Message-Instance: m=2;\r\n\th=sha256:AA==:BB==\r\n"[..])
        );
        assert_eq!(rest, b"ARC-Seal: x\r\n\r\nbody\r\n");
        let plain = b"ARC-Seal: x\r\nMessage-Instance: m=1\r\n\r\n";
        assert_eq!(split_prepared(plain), (None, &plain[..]));
    }
}
