//! The pipeline stage for mail to aliases: one ARC set (and, if configured, one DKIM
//! signature) for the message, whatever the number of targets, then the queue with an SRS
//! envelope sender. From, Subject and the body are never touched, so the author's DKIM
//! signature still verifies at the target and DMARC can pass on it.

use super::gate::{judge, judge_dmarc, precheck, return_refusal};
use super::{ForwardDomain, Forwarding};
use crate::auth::{Envelope, Verification};
use crate::base::metrics::ForwardOutcome;
use crate::stages::delivery::Owner;
use crate::stages::outbound::Arrival;
use crate::state::store::{QueueEntry, SpoolMeta, SpoolState, Store, StoreError};

/// What forwarding decided for a message, for the caller to record: the signing ran on a
/// thread that may block, the store is awaited on the runtime.
pub enum Outcome {
    /// Nothing to send (refused, or nothing left to forward to): the metadata as it ends.
    Settled(SpoolMeta),
    /// The copy to queue, with its queue entry and the metadata that says so.
    Queued(SpoolMeta, QueueEntry, Vec<u8>),
}

impl Outcome {
    /// Records the outcome: one update, or the queue entry and its copy in one commit.
    pub async fn record(self, store: &Store) -> Result<(), StoreError> {
        match self {
            Outcome::Settled(meta) => store.update(&meta).await,
            Outcome::Queued(meta, entry, copy) => store.enqueue(&meta, &entry, &copy).await,
        }
    }
}

/// Seals and queues `message` for every target of the aliases it was sent to.
pub fn forward(
    forwarding: &Forwarding,
    mut meta: SpoolMeta,
    message: &[u8],
    v: &Verification,
    hostname: &str,
) -> Outcome {
    let found: Vec<_> = meta
        .envelope
        .rcpt_to
        .iter()
        .filter_map(|r| {
            forwarding
                .alias(r)
                .map(|(d, a)| (r.to_ascii_lowercase(), d, a))
        })
        .collect();
    let Some((_, domain, _)) = found.first().cloned() else {
        meta.state = SpoolState::Done;
        meta.note = Some("no alias among the recipients any more; nothing forwarded".into());
        return Outcome::Settled(meta);
    };
    let aliases: Vec<_> = found
        .iter()
        .map(|(r, _, a)| (r.clone(), a.clone()))
        .collect();
    record_facts(&mut meta, message, &domain, v);
    // The session screened it already; this holds for mail spooled before a config change.
    if let Some(r) = precheck(message, &aliases, domain.config.max_hops)
        .or_else(|| judge(v, &aliases, &domain.config.trusted_sealers))
    {
        meta.state = SpoolState::Rejected;
        meta.note = Some(format!("not forwarded: {} {} {}", r.code, r.status, r.text));
        tracing::info!(id = meta.id, note = ?meta.note, "forwarding refused");
        crate::base::metrics::forward(ForwardOutcome::Refused);
        return Outcome::Settled(meta);
    }
    let targets = targets_of(found.iter().map(|(_, _, alias)| alias));
    let now = crate::auth::unix_now();
    let mut notes = Vec::new();
    let mut delivered_to: String = (aliases.iter())
        .map(|(alias, _)| crate::base::header::field("Delivered-To", alias))
        .collect();
    let stripped = screened(&meta, message, &v.dkim, &mut delivered_to);
    let message = stripped.as_deref().unwrap_or(message);
    let seal = Seal {
        domain: &domain,
        v,
        hostname,
        now,
    };
    let signed = seal.copy(&meta, message, &delivered_to, &aliases[0].0, &mut notes);
    let mail_from = domain.srs.forward(&meta.envelope.mail_from, now);
    let signed = match targets.first() {
        Some(first) => super::dkim2::mark(
            &domain,
            signed,
            (&mail_from, first),
            v.dkim2.as_ref(),
            (meta.id, now),
            &mut notes,
        ),
        None => signed,
    };
    notes.insert(
        0,
        format!(
            "forwarded for {} to {} target(s) as {}",
            aliases
                .iter()
                .map(|(a, _)| a.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            targets.len(),
            if mail_from.is_empty() {
                "<>"
            } else {
                &mail_from
            }
        ),
    );
    tracing::info!(id = meta.id, domain = %domain.config.domain, targets = targets.len(), notes = ?notes, "forwarding");
    crate::base::metrics::forward(ForwardOutcome::Queued);
    let entry = QueueEntry {
        id: meta.id,
        list: Owner::Forward(domain.config.domain.clone()).to_string(),
        mail_from,
        recipients: targets,
        queued_at: now,
        summary: None,
        plain: false,
    };
    meta.state = SpoolState::Queued;
    meta.note = Some(notes.join("; "));
    Outcome::Queued(meta, entry, signed)
}

/// The targets of `aliases`, lowercased, each once, in order.
fn targets_of<'a>(aliases: impl Iterator<Item = &'a crate::base::config::Alias>) -> Vec<String> {
    let mut targets: Vec<String> = Vec::new();
    for alias in aliases {
        for t in &alias.targets {
            let t = t.to_ascii_lowercase();
            if !targets.contains(&t) {
                targets.push(t);
            }
        }
    }
    targets
}

/// What the report counts of a forwarded message: its domain, its author's domain and DMARC,
/// and the trusted sealers whose chain let a DMARC failure through.
fn record_facts(meta: &mut SpoolMeta, message: &[u8], domain: &ForwardDomain, v: &Verification) {
    let author = crate::auth::dmarc::single_author(message)
        .ok()
        .map(|(_, a)| a);
    let f = &mut meta.facts;
    f.forwarded_by = Some(domain.config.domain.clone());
    f.from_domain = v.dmarc.from_domain.clone();
    f.dmarc = v.dmarc.verdict.as_str().to_string();
    f.dmarc_policy = v.dmarc.policy.as_str().to_string();
    f.sender_verified = sender_verified(&meta.envelope.mail_from, author.as_deref(), v);
    let trust = crate::auth::trust::evaluate(v, &domain.config.trusted_sealers);
    if trust.overridden {
        f.arc_override = trust.sealers;
    }
}

/// Whether `mail_from` itself, not just its domain, was vouched for, so a delivery status
/// notification to it is not backscatter: SPF passed for it (SPF speaks for a domain's whole
/// envelope, so that is the domain saying it sent this), or a verified DKIM signature names it
/// as the agent (`i=` equal to it), or it is the From address (`author`) and DMARC passed for
/// that. A signature of the domain alone does not do: one genuine signature, replayed with any
/// other envelope sender of the domain, would aim notifications at any local part.
fn sender_verified(mail_from: &str, author: Option<&str>, v: &Verification) -> bool {
    let Some((_, domain)) = mail_from.rsplit_once('@') else {
        return false;
    };
    let spf = v.spf.as_ref().is_some_and(|s| {
        s.mail_from.as_str() == "pass" && s.mail_from_domain.eq_ignore_ascii_case(domain)
    });
    let signed_by = v.dkim.iter().any(|d| {
        d.verdict == crate::auth::dkim::DkimVerdict::Pass && d.auid.eq_ignore_ascii_case(mail_from)
    });
    let dmarc_author = author.is_some_and(|a| a.eq_ignore_ascii_case(mail_from))
        && v.dmarc.verdict == crate::auth::dmarc::DmarcVerdict::Pass
        && v.dmarc.from_domain.eq_ignore_ascii_case(domain);
    spf || signed_by || dmarc_author
}

/// What a relayed copy is sealed with: the forwarding domain's key, over arclist's results.
struct Seal<'a> {
    domain: &'a ForwardDomain,
    v: &'a Verification,
    hostname: &'a str,
    now: u64,
}

impl Seal<'_> {
    /// The copy the targets get: `top` (Delivered-To fields) and our Received field for
    /// `rcpt`, the next ARC set over it with our results (a trusted sealer's override
    /// recorded) and, if configured, our DKIM signature. What could not be added is said in
    /// `notes`; the message is relayed without it.
    fn copy(
        &self,
        meta: &SpoolMeta,
        message: &[u8],
        top: &str,
        rcpt: &str,
        notes: &mut Vec<String>,
    ) -> Vec<u8> {
        let (domain, v, hostname, now) = (self.domain, self.v, self.hostname, self.now);
        let trace = format!(
            "{top}{}",
            crate::base::header::field(
                "Received",
                &crate::stages::trace::received(meta, hostname, rcpt)
            )
        );
        let copy = [trace.as_bytes(), message].concat();
        let envelope = Envelope {
            ip: meta.envelope.client_ip,
            helo: meta.envelope.helo.clone(),
            mail_from: meta.envelope.mail_from.clone(),
        };
        let mut results = v.auth_results(hostname, Some(&envelope));
        crate::auth::trust::evaluate(v, &domain.config.trusted_sealers).annotate(&mut results);
        let results = results.render();
        let arrival = Arrival {
            chain: &v.arc,
            results: &results,
        };
        (domain.signer)
            .seal_and_sign(copy, &arrival, now, notes)
            .unwrap_or_else(|u| {
                notes.push(format!("no DKIM signature added: {}", u.error));
                u.sealed
            })
    }
}

/// What the pipeline hands over of a message to SRS addresses.
pub struct Return<'a> {
    /// The spooled message.
    pub message: &'a [u8],
    /// Its arrival verdict.
    pub verdict: &'a Verification,
    /// The original senders the SRS addresses decode to.
    pub originals: &'a [String],
    /// Our host name, for the Received field and the ARC results.
    pub hostname: &'a str,
}

/// Sends a delivery report or auto-reply that came back to one of our SRS addresses on to the
/// original sender(s), sealed as forwarded mail is: our Received field and an ARC set (and
/// with `dkim_sign`, our DKIM signature) over the message as it came. The session screened it
/// ([`super::gate`]); the screen runs again here for mail spooled before it did.
pub fn return_bounce(forwarding: &Forwarding, mut meta: SpoolMeta, r: Return<'_>) -> Outcome {
    let rcpt = (meta.envelope.rcpt_to.iter())
        .find(|a| forwarding.by_srs_address(a).is_some())
        .cloned();
    let Some((rcpt, domain)) =
        rcpt.and_then(|a| forwarding.by_srs_address(&a).cloned().map(|d| (a, d)))
    else {
        meta.state = SpoolState::Done;
        meta.note = Some("its SRS domain is no longer configured; nothing returned".into());
        return Outcome::Settled(meta);
    };
    let refusal = match meta.envelope.mail_from.is_empty() {
        false => Some("not from the null sender".to_string()),
        true => return_refusal(r.message)
            .or_else(|| judge_dmarc(r.verdict, false, &domain.config.trusted_sealers))
            .map(|x| format!("{} {} {}", x.code, x.status, x.text)),
    };
    if let Some(why) = refusal {
        meta.state = SpoolState::Rejected;
        meta.note = Some(format!("not returned through {rcpt}: {why}"));
        tracing::info!(id = meta.id, note = ?meta.note, "SRS return refused");
        crate::base::metrics::forward(ForwardOutcome::Refused);
        return Outcome::Settled(meta);
    }
    let now = crate::auth::unix_now();
    let mut notes = Vec::new();
    let seal = Seal {
        domain: &domain,
        v: r.verdict,
        hostname: r.hostname,
        now,
    };
    let sealed = seal.copy(&meta, r.message, "", &rcpt, &mut notes);
    let kind = super::returns::kind(r.message).map_or("bounce", |k| k.as_str());
    notes.insert(
        0,
        format!("{kind} to {rcpt}, returned to {}", r.originals.join(", ")),
    );
    let entry = QueueEntry {
        id: meta.id,
        list: Owner::SrsReturn.to_string(),
        mail_from: String::new(),
        recipients: r.originals.to_vec(),
        queued_at: now,
        summary: None,
        plain: false,
    };
    meta.state = SpoolState::Queued;
    meta.note = Some(notes.join("; "));
    tracing::info!(id = meta.id, to = ?r.originals, notes = ?meta.note, "SRS return relayed");
    crate::base::metrics::forward(ForwardOutcome::BounceReturned);
    Outcome::Queued(meta, entry, sealed)
}

/// The edits of what was screened before `250` (`docs/filtering.md`): the spam filter's flag
/// joins our fields on top (`top`); a rewritten subject would break the author's DKIM
/// signature, so forwarded mail gets the flag only. A BIMI-Location or BIMI-Indicator no
/// signature covers is a forged logo: the message without it, when it has one.
fn screened(
    meta: &SpoolMeta,
    message: &[u8],
    dkim: &[crate::auth::dkim::DkimOutcome],
    top: &mut String,
) -> Option<Vec<u8>> {
    let flagged = meta.envelope.filter.as_ref();
    if flagged.is_some_and(|f| matches!(f.action.as_str(), "add header" | "rewrite subject")) {
        top.push_str(&crate::base::header::field("X-Spam", "Yes"));
    }
    crate::stages::filter::bimi::strip_unsigned(message, dkim)
}
