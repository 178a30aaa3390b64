//! The pipeline stage for mail to aliases: one ARC set (and, if configured, one DKIM
//! signature) for the message, whatever the number of targets, then the queue with an SRS
//! envelope sender. From, Subject and the body are never touched, so the author's DKIM
//! signature still verifies at the target and DMARC can pass on it.

use super::gate::{judge, precheck};
use super::{ForwardDomain, Forwarding};
use crate::auth::{Envelope, Verification};
use crate::config::Alias;
use crate::metrics::ForwardOutcome;
use crate::store::{QueueEntry, SpoolMeta, SpoolState, Store, StoreError};

/// Seals and queues `message` for every target of the aliases it was sent to.
pub fn forward<S: Store>(
    store: &S,
    forwarding: &Forwarding,
    mut meta: SpoolMeta,
    message: &[u8],
    v: &Verification,
    hostname: &str,
) -> Result<(), StoreError> {
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
        return store.update(&meta);
    };
    let aliases: Vec<_> = found
        .iter()
        .map(|(r, _, a)| (r.clone(), a.clone()))
        .collect();
    record_facts(&mut meta, &domain, v);
    // The session screened it already; this holds for mail spooled before a config change.
    if let Some(r) = precheck(message, &aliases, domain.config.max_hops)
        .or_else(|| judge(v, &aliases, &domain.config.trusted_sealers))
    {
        meta.state = SpoolState::Rejected;
        meta.note = Some(format!("not forwarded: {} {} {}", r.code, r.status, r.text));
        tracing::info!(id = meta.id, note = ?meta.note, "forwarding refused");
        crate::metrics::forward(ForwardOutcome::Refused);
        return store.update(&meta);
    }
    let mut targets: Vec<String> = Vec::new();
    for (_, _, alias) in &found {
        for t in &alias.targets {
            let t = t.to_ascii_lowercase();
            if !targets.contains(&t) {
                targets.push(t);
            }
        }
    }
    let now = crate::auth::unix_now();
    let mut notes = Vec::new();
    let signed = sealed_copy(
        &meta, message, &aliases, &domain, v, hostname, now, &mut notes,
    );
    let mail_from = domain.srs.forward(&meta.envelope.mail_from, now);
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
    crate::metrics::forward(ForwardOutcome::Queued);
    let entry = QueueEntry {
        id: meta.id,
        list: format!("forward:{}", domain.config.domain),
        mail_from,
        recipients: targets,
        queued_at: now,
        summary: None,
        plain: false,
    };
    meta.state = SpoolState::Queued;
    meta.note = Some(notes.join("; "));
    store.enqueue(&meta, &entry, &signed)
}

/// What the report counts of a forwarded message: its domain, its author's domain and DMARC,
/// and the trusted sealers whose chain let a DMARC failure through.
fn record_facts(meta: &mut SpoolMeta, domain: &ForwardDomain, v: &Verification) {
    let f = &mut meta.facts;
    f.forwarded_by = Some(domain.config.domain.clone());
    f.from_domain = v.dmarc.from_domain.clone();
    f.dmarc = v.dmarc.verdict.as_str().to_string();
    f.dmarc_policy = v.dmarc.policy.as_str().to_string();
    f.sender_verified = sender_verified(&meta.envelope.mail_from, v);
    let trust = crate::auth::trust::evaluate(v, &domain.config.trusted_sealers);
    if trust.overridden {
        f.arc_override = trust.sealers;
    }
}

/// Whether the envelope sender's domain vouched for `mail_from`: SPF passed for it, or a DKIM
/// signature of that domain (or of a parent domain) verified.
fn sender_verified(mail_from: &str, v: &Verification) -> bool {
    let Some((_, domain)) = mail_from.rsplit_once('@') else {
        return false;
    };
    let domain = domain.to_ascii_lowercase();
    let spf = v.spf.as_ref().is_some_and(|s| {
        s.mail_from.as_str() == "pass" && s.mail_from_domain.eq_ignore_ascii_case(&domain)
    });
    let dkim = v.dkim.iter().any(|d| {
        let d_domain = d.domain.to_ascii_lowercase();
        d.verdict == crate::auth::dkim::DkimVerdict::Pass
            && !d_domain.is_empty()
            && (domain == d_domain || domain.ends_with(&format!(".{d_domain}")))
    });
    spf || dkim
}

/// The copy the targets get: our trace fields, the next ARC set over it with our results (a
/// trusted sealer's override recorded) and, if configured, our DKIM signature. What could not
/// be added is said in `notes`; the message is forwarded without it.
#[allow(clippy::too_many_arguments)]
fn sealed_copy(
    meta: &SpoolMeta,
    message: &[u8],
    aliases: &[(String, Alias)],
    domain: &ForwardDomain,
    v: &Verification,
    hostname: &str,
    now: u64,
    notes: &mut Vec<String>,
) -> Vec<u8> {
    let mut copy = String::new();
    for (alias, _) in aliases {
        copy.push_str(&format!("Delivered-To: {alias}\r\n"));
    }
    copy.push_str(&format!(
        "Received: {}\r\n",
        crate::trace::received(meta, hostname, &aliases[0].0)
    ));
    let copy = [copy.as_bytes(), message].concat();
    let envelope = Envelope {
        ip: meta.envelope.client_ip,
        helo: meta.envelope.helo.clone(),
        mail_from: meta.envelope.mail_from.clone(),
    };
    let mut results = v.auth_results(hostname, Some(&envelope));
    crate::auth::trust::evaluate(v, &domain.config.trusted_sealers).annotate(&mut results);
    let results = results.render();
    let sealed = match domain.sealer.seal(&copy, &v.arc, &results, now) {
        Ok(set) => set.prepend_to(&copy),
        Err(e) => {
            notes.push(format!("no ARC set added: {e}"));
            copy
        }
    };
    match &domain.signer {
        Some(signer) => match signer.sign(&sealed, now) {
            Ok(field) => [field.as_bytes(), &sealed].concat(),
            Err(e) => {
                notes.push(format!("no DKIM signature added: {e}"));
                sealed
            }
        },
        None => sealed,
    }
}

/// Sends a bounce that came back to one of our SRS addresses on to the original sender, as it
/// is: the address was checked (hash and age) before the message was accepted.
pub fn return_bounce<S: Store>(
    store: &S,
    mut meta: SpoolMeta,
    message: &[u8],
    original: &str,
) -> Result<(), StoreError> {
    let entry = QueueEntry {
        id: meta.id,
        list: "srs".into(),
        mail_from: meta.envelope.mail_from.clone(),
        recipients: vec![original.to_string()],
        queued_at: crate::auth::unix_now(),
        summary: None,
        plain: false,
    };
    meta.state = SpoolState::Queued;
    meta.note = Some(format!("bounce to an SRS address, returned to {original}"));
    tracing::info!(id = meta.id, to = original, "SRS bounce returned");
    crate::metrics::forward(ForwardOutcome::BounceReturned);
    store.enqueue(&meta, &entry, message)
}
