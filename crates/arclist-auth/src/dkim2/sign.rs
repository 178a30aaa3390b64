//! Signing one hop (§12): a Message-Instance when this hop starts the chain or changed the
//! message, and the hop's DKIM2-Signature over the envelope it sends with.
//!
//! The signer refuses what a -09 verifier would fail, with the reason: a message that already
//! carries DKIM2 fields but was not fully verified (unless an out-of-band arrangement covers
//! it, -09), a From outside the signing domain on the first hop or a hop that changes From
//! (-09 §11), an `mf=` outside `d=`, a broken chain of custody, and a message that changed
//! since its newest instance without a Recipe saying how.

use super::error::{Dkim2Error, Dkim2Verdict};
use super::fields::{ChainBinding, HashAlgo, HashEntry, InstanceField, SigValue, SignatureField};
use super::hash::{ContentState, body_hash, signature_input};
use super::recipe::Recipe;
use super::verify::{Dkim2Envelope, Dkim2Report, Fields, check_custody, parse_fields};
use super::{MAX_FIELDS, domain_within};
use crate::message::RawMessage;
use crate::signing_key::SigningKey;
use std::sync::Arc;

/// How this hop's content relates to the newest instance.
#[derive(Debug, Clone)]
pub enum NewInstance {
    /// Unchanged (or the first hop, which gets `m=1`).
    Unchanged,
    /// Changed: a new instance with this Recipe, which recreates the message as received.
    Changed(Recipe),
}

/// Why a hop was not signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignRefusal {
    /// The message carries DKIM2 fields that did not fully verify (-09: re-sign only a
    /// fully verified message).
    #[error("not signing DKIM2: the incoming chain is not fully verified ({0})")]
    NotVerified(String),
    /// What a verifier would fail this hop for.
    #[error("not signing DKIM2: {0}")]
    WouldFail(Dkim2Error),
    /// The message changed since its newest instance and no Recipe says how.
    #[error(
        "not signing DKIM2: the message no longer matches Message-Instance m={0}; a Recipe is needed"
    )]
    Changed(u32),
    /// No RCPT TO to bind.
    #[error("not signing DKIM2: no recipients for rt=")]
    NoRecipients,
    /// The key could not sign.
    #[error("DKIM2 signing failed: {0}")]
    Signing(String),
    /// A copy does not fit the instance prepared for it
    /// ([`Dkim2Signer::sign_prepared`]).
    #[error("not signing DKIM2: {0}")]
    Prepared(String),
}

/// The fields one hop adds.
#[derive(Debug, Clone)]
pub struct Signed {
    /// The hop number written (`i=`).
    pub i: u32,
    /// The instance signed (`m=`).
    pub m: u32,
    /// `DKIM2-Signature: …` with CRLF.
    pub signature: String,
    /// `Message-Instance: …` with CRLF, when this hop added one.
    pub instance: Option<String>,
}

impl Signed {
    /// The message with this hop's fields on top (signature first).
    pub fn prepend_to(&self, message: &[u8]) -> Vec<u8> {
        let extra = self.signature.len() + self.instance.as_ref().map_or(0, String::len);
        let mut out = Vec::with_capacity(message.len() + extra);
        out.extend_from_slice(self.signature.as_bytes());
        if let Some(mi) = &self.instance {
            out.extend_from_slice(mi.as_bytes());
        }
        out.extend_from_slice(message);
        out
    }
}

/// A hop's signature planned by [`Dkim2Signer::plan`]: everything but the signature value.
struct Plan<'a> {
    /// The DKIM2-Signature field, its signature still empty.
    sig: SignatureField,
    /// The hop's new Message-Instance field, when it adds one.
    instance: Option<String>,
    /// The values of the instances the message already has, oldest first.
    instances: Vec<&'a [u8]>,
    /// The values of the earlier hops' signatures, oldest first.
    earlier: Vec<&'a [u8]>,
}

/// Signs hops for one domain and selector.
#[derive(Clone)]
pub struct Dkim2Signer {
    pub(super) domain: String,
    pub(super) selector: String,
    pub(super) key: Arc<SigningKey>,
    pub(super) hashes: Vec<HashAlgo>,
    out_of_band: bool,
}

impl Dkim2Signer {
    /// A signer for `d=domain`, `selector`, hashing instances with SHA-256.
    pub fn new(domain: &str, selector: &str, key: Arc<SigningKey>) -> Self {
        Dkim2Signer {
            domain: domain.trim_end_matches('.').to_ascii_lowercase(),
            selector: selector.to_string(),
            key,
            hashes: vec![HashAlgo::Sha256],
            out_of_band: false,
        }
    }

    /// The instance hash algorithms (every one must match, -09 `,`); an empty list keeps
    /// SHA-256, as an instance without a hash could never verify.
    pub fn with_hashes(mut self, hashes: Vec<HashAlgo>) -> Self {
        if !hashes.is_empty() {
            self.hashes = hashes;
        }
        self
    }

    /// Signs an incoming chain that was not fully verified, as -09 allows only where an
    /// out-of-band arrangement with the sender covers it.
    pub fn with_out_of_band_arrangement(mut self) -> Self {
        self.out_of_band = true;
        self
    }

    /// The DKIM2 chain already on `parsed`, when this hop may extend it: it verified
    /// (`verified` passed) or an out-of-band arrangement stands in, and there is room for this
    /// hop's two fields. Shared by [`Dkim2Signer::sign`] and the fan-out's `prepare`.
    pub(super) fn chain_to_extend<'a>(
        &self,
        parsed: &RawMessage<'a>,
        verified: Option<&Dkim2Report>,
    ) -> Result<Fields<'a>, SignRefusal> {
        let (sigs, mis) =
            parse_fields(&parsed.headers).map_err(|e| SignRefusal::NotVerified(e.to_string()))?;
        if (!sigs.is_empty() || !mis.is_empty()) && !self.out_of_band {
            match verified {
                Some(r) if r.verdict == Dkim2Verdict::Pass => {}
                Some(r) => return Err(SignRefusal::NotVerified(r.reason.clone())),
                None => return Err(SignRefusal::NotVerified("not verified".into())),
            }
        }
        if sigs.len() + mis.len() + 2 > MAX_FIELDS {
            return Err(SignRefusal::WouldFail(Dkim2Error::ChainTooLong));
        }
        Ok((sigs, mis))
    }

    /// Signs `message` (CRLF) for the hop that sends it with `hop`. `verified` is the
    /// report of verifying the incoming chain, required when the message has DKIM2 fields.
    pub fn sign(
        &self,
        message: &[u8],
        hop: &Dkim2Envelope,
        change: NewInstance,
        verified: Option<&Dkim2Report>,
        now: u64,
    ) -> Result<Signed, SignRefusal> {
        let plan = self.plan(message, hop, change, verified, now)?;
        let mut instance_values = plan.instances;
        if let Some(text) = &plan.instance {
            instance_values.push(field_value(text));
        }
        Ok(Signed {
            i: plan.sig.i,
            m: plan.sig.m,
            signature: self.seal(plan.sig, &instance_values, &plan.earlier)?,
            instance: plan.instance,
        })
    }

    /// Whether [`Dkim2Signer::sign`] would sign `message` for `hop`: every check it makes,
    /// without the signature's cost (a relay that signs later, per recipient, asks once).
    pub fn check(
        &self,
        message: &[u8],
        hop: &Dkim2Envelope,
        change: NewInstance,
        verified: Option<&Dkim2Report>,
        now: u64,
    ) -> Result<(), SignRefusal> {
        self.plan(message, hop, change, verified, now).map(drop)
    }

    /// What signing `message` for `hop` writes, short of the signature itself, once every
    /// refusal -09 would give is ruled out.
    fn plan<'a>(
        &self,
        message: &'a [u8],
        hop: &Dkim2Envelope,
        change: NewInstance,
        verified: Option<&Dkim2Report>,
        now: u64,
    ) -> Result<Plan<'a>, SignRefusal> {
        let parsed = RawMessage::parse(message);
        let (sigs, mis) = self.chain_to_extend(&parsed, verified)?;
        if hop.rcpt_to.is_empty() {
            return Err(SignRefusal::NoRecipients);
        }
        let i = sigs.last().map_or(0, |p| p.field.i) + 1;
        let highest_m = mis.last().map_or(0, |p| p.field.m);
        let content = ContentState::of(&parsed);
        let instance = match (change, highest_m) {
            (NewInstance::Unchanged, 0) => Some(self.instance(1, &content, None)),
            (NewInstance::Unchanged, m) => {
                let newest = mis.last().map(|p| &p.field);
                if !newest.is_some_and(|mi| self.matches(mi, &content)) {
                    return Err(SignRefusal::Changed(m));
                }
                None
            }
            (NewInstance::Changed(recipe), m) => Some(self.instance(m + 1, &content, Some(recipe))),
        };
        let changes_from = instance
            .as_ref()
            .and_then(|mi| mi.recipe.as_ref())
            .is_some_and(|r| r.headers.iter().any(|(n, _)| n == "from"));
        if (i == 1 || changes_from)
            && !content
                .from_domain()
                .is_some_and(|d| domain_within(&d, &self.domain))
        {
            return Err(SignRefusal::WouldFail(Dkim2Error::FromNotAuthentic(i)));
        }
        let m = instance.as_ref().map_or(highest_m, |mi| mi.m);
        let sig = self.signature_field(i, m, hop, now);
        check_custody(sigs.last().map(|p| &p.field), &sig).map_err(SignRefusal::WouldFail)?;
        Ok(Plan {
            sig,
            instance: instance.as_ref().map(InstanceField::render),
            instances: mis.iter().map(|p| p.value).collect(),
            earlier: sigs.iter().map(|p| p.value).collect(),
        })
    }

    /// Hop `i`'s DKIM2-Signature over instance `m` for the envelope `hop`, not yet signed.
    pub(super) fn signature_field(
        &self,
        i: u32,
        m: u32,
        hop: &Dkim2Envelope,
        now: u64,
    ) -> SignatureField {
        let exploded = i > 1 && hop.rcpt_to.len() > 1;
        SignatureField {
            i,
            m,
            t: now,
            d: self.domain.clone(),
            chain: ChainBinding::Envelope {
                mail_from: bracket(&hop.mail_from),
                rcpt_to: hop.rcpt_to.iter().map(|r| bracket(r)).collect(),
            },
            s: vec![vec![SigValue {
                selector: self.selector.clone(),
                algorithm: self.key.algorithm().as_str().to_string(),
                signature: Vec::new(),
            }]],
            n: None,
            f: if exploded {
                vec!["exploded".into()]
            } else {
                Vec::new()
            },
        }
    }

    /// Signs `sig` over the instance values it covers and the signatures before it, and
    /// writes the field (`DKIM2-Signature: …` with CRLF).
    pub(super) fn seal(
        &self,
        mut sig: SignatureField,
        instance_values: &[&[u8]],
        earlier: &[&[u8]],
    ) -> Result<String, SignRefusal> {
        let unsigned = sig.render(true);
        let input = signature_input(instance_values, earlier, field_value(&unsigned));
        let value = self.key.sign(&input).map_err(SignRefusal::Signing)?;
        if let Some(v) = sig.s.first_mut().and_then(|g| g.first_mut()) {
            v.signature = value;
        }
        Ok(sig.render(false))
    }

    pub(super) fn instance(
        &self,
        m: u32,
        content: &ContentState,
        recipe: Option<Recipe>,
    ) -> InstanceField {
        let body = content.body.as_deref().unwrap_or_default();
        let entries = self
            .hashes
            .iter()
            .map(|algo| HashEntry {
                algo: algo.clone(),
                header: content.header_hash(algo).unwrap_or_default(),
                body: body_hash(algo, body).unwrap_or_default(),
            })
            .collect();
        InstanceField {
            m,
            hashes: vec![entries],
            recipe: recipe.filter(|_| m > 1),
        }
    }

    fn matches(&self, mi: &InstanceField, content: &ContentState) -> bool {
        let body = content.body.as_deref().unwrap_or_default();
        mi.hashes.iter().any(|group| {
            group.iter().all(|e| {
                content.header_hash(&e.algo).as_ref() == Some(&e.header)
                    && body_hash(&e.algo, body).as_ref() == Some(&e.body)
            })
        })
    }
}

pub(super) fn bracket(path: &str) -> String {
    let p = path.trim();
    if p.starts_with('<') && p.ends_with('>') {
        p.to_string()
    } else {
        format!("<{p}>")
    }
}

/// The value of a rendered field: after the colon, before the final CRLF.
pub(super) fn field_value(field: &str) -> &[u8] {
    let value = field.split_once(':').map_or("", |(_, v)| v);
    value.strip_suffix("\r\n").unwrap_or(value).as_bytes()
}
