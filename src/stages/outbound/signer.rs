//! The outbound signer: one identity's ARC sealer and DKIM signer, applied in the order
//! receivers verify them.
//!
//! Order matters: the ARC set is added first and the DKIM signature on top of it, so the
//! signature covers the message as it leaves, while the set's ARC-Message-Signature covers the
//! copy as the identity made it. A list post and a forwarded message both leave through
//! [`Signer::seal_and_sign`]; mail the identity writes itself (notices, DSNs, reports) through
//! [`Signer::sign`]. Nothing else in the server adds a signature field.
//!
//! **DKIM2** (`crates/arclist-auth/src/dkim2/`, `docs/dkim2.md`) binds each signature to one
//! envelope, so it is added per recipient, on top of the ARC set and DKIM signature (which do
//! not cover DKIM2 fields, nor DKIM2 them): [`Signer::dkim2_instance`] records the hop's
//! changes once per post, [`Signer::dkim2_fan_out`] works out what every recipient's signature
//! shares and [`Signer::dkim2_sign_member`] signs each recipient's copy. A hop that
//! changes no signed field (forwarding) adds no instance: [`Signer::dkim2_check_unchanged`]
//! decides once per message, [`Signer::dkim2_sign_checked`] signs each recipient's copy. Mail
//! the identity writes to one person starts a chain of its own ([`Signer::dkim2_sign_own`]).

use crate::auth::arc::{ArcReport, ArcSealer};
use crate::auth::dkim::{DkimSigner, MemberSignature};
use crate::auth::dkim2::{Dkim2Envelope, Dkim2Fanout, Dkim2Report, Dkim2Signer, NewInstance};
use crate::auth::signing_key::SigningKey;
use std::sync::Arc;

/// DKIM signing failed: the key could not sign (the engine's reason, as it gave it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SignError(pub String);

/// A copy that was sealed (or passed on unsealed, as [`Signer::seal_and_sign`] says) but could
/// not be DKIM-signed: the caller decides whether it may still leave.
#[derive(Debug)]
pub struct Unsigned {
    /// The copy with the ARC set (when one could be added), without a DKIM signature.
    pub sealed: Vec<u8>,
    /// Why it has no DKIM signature.
    pub error: SignError,
}

/// What arrived, as the next ARC set records it.
pub struct Arrival<'a> {
    /// The upstream ARC chain as verified on arrival.
    pub chain: &'a ArcReport,
    /// The ARC-Authentication-Results payload: our authserv-id and results.
    pub results: &'a str,
}

/// One identity's outbound signatures: a list's, or a forwarding domain's.
#[derive(Clone)]
pub struct Signer {
    sealer: ArcSealer,
    dkim: DkimSigner,
    dkim2: Dkim2Signer,
    /// The same DKIM2 signer, for copies whose incoming chain [`Signer::dkim2_check_unchanged`]
    /// already judged when they were made: at delivery the intake's report is gone.
    dkim2_checked: Dkim2Signer,
    sign_relayed: bool,
}

impl Signer {
    /// Seals and signs as `domain` with `selector`, one key for both.
    pub fn new(key: Arc<SigningKey>, domain: &str, selector: &str) -> Self {
        Signer {
            sealer: ArcSealer::new(key.clone(), domain, selector),
            dkim2: Dkim2Signer::new(domain, selector, key.clone()),
            dkim2_checked: Dkim2Signer::new(domain, selector, key.clone())
                .with_out_of_band_arrangement(),
            dkim: DkimSigner::new(key, domain, selector),
            sign_relayed: true,
        }
    }

    /// Copies that pass through ([`Signer::seal_and_sign`]) get the ARC set only, no DKIM
    /// signature (a forwarding domain with `dkim_sign = false`); mail the identity writes
    /// itself is still signed.
    pub fn seal_only(mut self) -> Self {
        self.sign_relayed = false;
        self
    }

    /// `copy` as it leaves: the next ARC set recording `arrival`, then the DKIM signature.
    /// A set that cannot be added (the chain already failed, RFC 8617 §5.1.2; a DNS error on
    /// arrival; 50 sets) is said in `notes` and the copy goes on without it, as RFC 8617
    /// requires; the DKIM signature still makes the From align. A DKIM failure is returned
    /// with the sealed copy, for the caller to hold it or send it on.
    pub fn seal_and_sign(
        &self,
        copy: Vec<u8>,
        arrival: &Arrival<'_>,
        now: u64,
        notes: &mut Vec<String>,
    ) -> Result<Vec<u8>, Unsigned> {
        let sealed = match self.sealer.seal(&copy, arrival.chain, arrival.results, now) {
            Ok(set) => set.prepend_to(&copy),
            Err(e) => {
                notes.push(format!("no ARC set added: {e}"));
                copy
            }
        };
        if !self.sign_relayed {
            return Ok(sealed);
        }
        match self.dkim.sign(&sealed, now) {
            Ok(field) => Ok([field.as_bytes(), &sealed].concat()),
            Err(e) => Err(Unsigned {
                sealed,
                error: SignError(e),
            }),
        }
    }

    /// This hop's DKIM2 Message-Instance for `copy`, made from `received` (the message as it
    /// arrived, `verified` its DKIM2 chain): the always-wrap Recipe, which also restores the
    /// `per_recipient` fields each copy will get, and the hashes, the body's once. The reason
    /// when there is none: the received body is not recoverable by copy ranges, the incoming
    /// chain did not verify, or the From is outside the signing domain on a first hop.
    pub fn dkim2_instance(
        &self,
        received: &[u8],
        copy: &[u8],
        per_recipient: &[&str],
        verified: Option<&Dkim2Report>,
    ) -> Result<String, SignError> {
        let recipe = crate::auth::dkim2::wrap_recipe(received, copy, per_recipient)
            .map_err(|why| SignError(format!("not signing DKIM2: {why}")))?;
        (self.dkim2)
            .prepare(copy, recipe, verified)
            .map_err(|e| SignError(e.to_string()))
    }

    /// Once per post: what every member's DKIM2 signature shares, for `shared` (the post as
    /// [`Signer::dkim2_instance`] saw it) and the `instance` it made.
    pub fn dkim2_fan_out(&self, instance: &[u8], shared: &[u8]) -> Result<Dkim2Fanout, SignError> {
        (self.dkim2)
            .fan_out(instance, shared)
            .map_err(|e| SignError(e.to_string()))
    }

    /// What goes on top of `copy` (the post `fanout` was made for, or that post with fields
    /// of the member's own on top: `personal`) for the one transaction `mail_from` → `rcpt`:
    /// this hop's DKIM2-Signature and the instance (its header hash redone for a personal
    /// copy).
    pub fn dkim2_sign_member(
        &self,
        fanout: &Dkim2Fanout,
        (copy, personal): (&[u8], bool),
        (mail_from, rcpt): (&str, &str),
        now: u64,
    ) -> Result<Vec<u8>, SignError> {
        let hop = one_transaction(mail_from, rcpt);
        let signed = (self.dkim2)
            .sign_member(fanout, personal.then_some(copy), &hop, now)
            .map_err(|e| SignError(e.to_string()))?;
        Ok(signed.prepend_to(b""))
    }

    /// Whether this hop may DKIM2-sign `copy` as it is (the hop changed no signed field, so
    /// it adds no instance, or `m=1` when it starts the chain) for `mail_from` → `rcpt`, with
    /// `verified` the incoming chain's report from intake: every check the engine makes, run
    /// once per message so that [`Signer::dkim2_sign_checked`] may sign each recipient's copy
    /// later. The reason when not: the chain did not verify, a first hop's From is outside
    /// the signing domain, `mf=` is outside it or breaks the chain of custody, or a signed
    /// field changed.
    pub fn dkim2_check_unchanged(
        &self,
        copy: &[u8],
        (mail_from, rcpt): (&str, &str),
        verified: Option<&Dkim2Report>,
        now: u64,
    ) -> Result<(), SignError> {
        let hop = one_transaction(mail_from, rcpt);
        (self.dkim2)
            .check(copy, &hop, NewInstance::Unchanged, verified, now)
            .map_err(|e| SignError(e.to_string()))
    }

    /// `copy`, which [`Signer::dkim2_check_unchanged`] passed when it was made, for the one
    /// transaction `mail_from` → `rcpt`: this hop's DKIM2-Signature (and `m=1`'s
    /// Message-Instance on a first hop) on top. The incoming chain is not judged again: only
    /// for copies that check passed.
    pub fn dkim2_sign_checked(
        &self,
        copy: &[u8],
        (mail_from, rcpt): (&str, &str),
        now: u64,
    ) -> Result<Vec<u8>, SignError> {
        let hop = one_transaction(mail_from, rcpt);
        let signed = (self.dkim2_checked)
            .sign(copy, &hop, NewInstance::Unchanged, None, now)
            .map_err(|e| SignError(e.to_string()))?;
        Ok(signed.prepend_to(copy))
    }

    /// `message`, written by the identity itself (a delivery status notification), for the
    /// one transaction `mail_from` → `rcpt`: the first hop's DKIM2-Signature (`i=1`) and
    /// Message-Instance (`m=1`) on top. Its From must be within the signing domain (-09 §11).
    pub fn dkim2_sign_own(
        &self,
        message: &[u8],
        (mail_from, rcpt): (&str, &str),
        now: u64,
    ) -> Result<Vec<u8>, SignError> {
        let hop = one_transaction(mail_from, rcpt);
        let signed = (self.dkim2)
            .sign(message, &hop, NewInstance::Unchanged, None, now)
            .map_err(|e| SignError(e.to_string()))?;
        Ok(signed.prepend_to(message))
    }

    /// `message`, written by the identity itself, with its DKIM signature on top.
    pub fn sign(&self, message: &[u8], now: u64) -> Result<Vec<u8>, SignError> {
        let field = self.dkim.sign(message, now).map_err(SignError)?;
        Ok([field.as_bytes(), message].concat())
    }

    /// The DKIM body hash [`Signer::sign`] would compute for `message`, to give
    /// [`Signer::sign_member`] for every message with the same body.
    pub fn body_hash_of(message: &[u8]) -> Vec<u8> {
        DkimSigner::body_hash_of(message)
    }

    /// What every member's DKIM signature of `shared` has in common when each member's copy
    /// is `shared` with fields named `names` on top, for [`Signer::sign_member`].
    pub fn prepare_members(shared: &[u8], names: &[&str]) -> MemberSignature {
        DkimSigner::prepare_members(shared, names)
    }

    /// What goes on top of a member's copy of a shared copy: its own `fields` and, above
    /// them, a DKIM signature covering them as [`Signer::sign`] would sign the whole copy.
    /// `prepared` is [`Signer::prepare_members`] of the shared copy and `body_hash` its body
    /// hash, both worked out once for every member: each copy costs its own fields and the
    /// signature, and the shared bytes are not copied (delivery sends them from where they
    /// are).
    pub fn sign_member(
        &self,
        (body_hash, prepared): (&[u8], &MemberSignature),
        fields: &[&[u8]],
        now: u64,
    ) -> Result<Vec<u8>, SignError> {
        let field = (self.dkim)
            .sign_member(prepared, fields, now, body_hash)
            .map_err(SignError)?;
        let size = field.len() + fields.iter().map(|f| f.len()).sum::<usize>();
        let mut own = Vec::with_capacity(size);
        own.extend_from_slice(field.as_bytes());
        for f in fields {
            own.extend_from_slice(f);
        }
        Ok(own)
    }
}

/// The envelope of one transaction to one recipient, as DKIM2's `mf=` and `rt=` bind it.
fn one_transaction(mail_from: &str, rcpt: &str) -> Dkim2Envelope {
    Dkim2Envelope {
        mail_from: mail_from.to_string(),
        rcpt_to: vec![rcpt.to_string()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::arc::ArcVerdict;

    fn signer() -> Signer {
        let (key, _) = SigningKey::generate_ed25519().expect("key");
        Signer::new(Arc::new(key), "lists.test", "s1")
    }

    fn chain(newest_cv: Option<&str>) -> ArcReport {
        ArcReport {
            verdict: ArcVerdict::None,
            reason: String::new(),
            instances: 0,
            oldest_pass: None,
            newest_cv: newest_cv.map(str::to_string),
            hops: Vec::new(),
        }
    }

    /// The names of the fields on top of `message`, in order.
    fn top(message: &[u8]) -> Vec<String> {
        let parsed = crate::auth::message::RawMessage::parse(message);
        (parsed.headers.iter())
            .map(|f| String::from_utf8_lossy(f.name).into_owned())
            .collect()
    }

    const COPY: &[u8] = b"From: <a@x.test>\r\nSubject: hi\r\n\r\nbody\r\n";

    #[test]
    fn the_arc_set_goes_on_first_and_the_dkim_signature_on_top_of_it() {
        let arrival = Arrival {
            chain: &chain(None),
            results: "lists.test; spf=pass",
        };
        let mut notes = Vec::new();
        let out = (signer().seal_and_sign(COPY.to_vec(), &arrival, 1_795_000_000, &mut notes))
            .expect("signed");
        assert_eq!(
            top(&out),
            [
                "DKIM-Signature",
                "ARC-Seal",
                "ARC-Message-Signature",
                "ARC-Authentication-Results",
                "From",
                "Subject"
            ]
        );
        assert!(notes.is_empty(), "{notes:?}");
        let sealed = (signer().seal_only())
            .seal_and_sign(COPY.to_vec(), &arrival, 1_795_000_000, &mut notes)
            .expect("sealed");
        assert_eq!(top(&sealed)[..2], ["ARC-Seal", "ARC-Message-Signature"]);
    }

    #[test]
    fn a_chain_that_already_failed_is_signed_but_not_sealed_and_says_so() {
        let arrival = Arrival {
            chain: &chain(Some("fail")),
            results: "lists.test; arc=fail",
        };
        let mut notes = Vec::new();
        let out = (signer().seal_and_sign(COPY.to_vec(), &arrival, 1_795_000_000, &mut notes))
            .expect("signed");
        assert_eq!(top(&out), ["DKIM-Signature", "From", "Subject"]);
        assert!(notes[0].starts_with("no ARC set added"), "{notes:?}");
        let own = signer().sign(COPY, 1_795_000_000).expect("signed");
        assert_eq!(top(&own), ["DKIM-Signature", "From", "Subject"]);
    }

    #[test]
    fn an_unchanged_copy_is_checked_once_and_signed_per_recipient() {
        let now = 1_795_000_000;
        let envelope = ("srs@lists.test", "ann@gmail.test");
        // A first hop must have the signer's From (-09 §11): refused, with the reason.
        let refused = signer().dkim2_check_unchanged(COPY, envelope, None, now);
        assert!(refused.is_err_and(|e| e.0.contains("not signing DKIM2")));
        let own = b"From: <robot@lists.test>\r\nSubject: hi\r\n\r\nbody\r\n";
        let signer = signer();
        assert_eq!(
            signer.dkim2_check_unchanged(own, envelope, None, now),
            Ok(())
        );
        let signed = signer
            .dkim2_sign_checked(own, envelope, now)
            .expect("signed");
        assert_eq!(
            top(&signed),
            ["DKIM2-Signature", "Message-Instance", "From", "Subject"]
        );
        assert!(signed.starts_with(b"DKIM2-Signature: i=1; m=1;"));
    }
}
