//! Full verification of a DKIM2 chain (§13, §14) with a verdict and reason for every hop and
//! every instance.
//!
//! The order of the checks, and so which reason a broken chain reports first: numbering,
//! timestamps, the envelope of the top hop, `mf=` against `d=` and the chain of custody,
//! the instances (hashes on the content each Recipe recreates, and the From rule), and last
//! the signatures. Every hop's signature is still checked when an earlier check failed, so a
//! report shows which hop broke and which hops are sound.

use super::error::{Dkim2Error, Dkim2Verdict};
use super::fields::{ChainBinding, HashEntry, InstanceField, SigValue, SignatureField};
use super::hash::{ContentState, body_hash, signature_input};
use super::recipe::BodyRecipe;
use super::{DRAFT, MAX_AGE_SECS, MAX_FIELDS, MAX_FUTURE_SECS, domain_within, path_domain};
use crate::dns::Resolver;
use crate::key_lookup::{KeyFailure, KeyStore};
use crate::key_record::{KeyType, SigAlg};
use crate::message::{HeaderField, RawMessage};
use serde::{Deserialize, Serialize};

/// The SMTP envelope the message arrived with, for the top hop's `mf=`/`rt=` (§14.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dkim2Envelope {
    /// MAIL FROM as a path (`<a@b>`, `<>`); brackets are added when missing.
    pub mail_from: String,
    /// Every RCPT TO of the transaction.
    pub rcpt_to: Vec<String>,
}

/// Whether, and against which clock, `t=` is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeCheck {
    /// Signatures older than 14 days or more than a day ahead of this Unix time fail.
    At(u64),
    /// No timestamp check: stored mail and test corpora older than the window.
    Off,
}

/// One hop (DKIM2-Signature) as the verifier saw it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HopReport {
    /// `i=`.
    pub i: u32,
    /// `d=`.
    pub domain: String,
    /// `selector:algorithm` of every `s=` item.
    pub selectors: Vec<String>,
    /// `m=`: the instance it signed.
    pub m: u32,
    /// `t=`.
    pub t: u64,
    /// `mf=`, decoded (empty with `nd=`).
    pub mail_from: String,
    /// `rt=`, decoded.
    pub rcpt_to: Vec<String>,
    /// `nd=`, if the hop handed over on the same system.
    pub next_domain: Option<String>,
    /// The Recipe of the instance this hop introduced, described, if it introduced one.
    pub recipe: Option<String>,
    /// Whether that Recipe was applied and the instance before it verified.
    pub recipe_applied: bool,
    /// This hop's verdict.
    pub verdict: Dkim2Verdict,
    /// Why, when not pass (the §14 string).
    pub reason: String,
}

/// One Message-Instance as the verifier saw it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstanceReport {
    /// `m=`.
    pub m: u32,
    /// Its Recipe, described.
    pub recipe: Option<String>,
    /// Whether its hashes matched the content recreated for it.
    pub verdict: Dkim2Verdict,
    /// Why, when not pass.
    pub reason: String,
}

/// The result of verifying a message's DKIM2 chain.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Dkim2Report {
    /// The chain verdict.
    pub verdict: Dkim2Verdict,
    /// The first reason the chain did not pass (empty on pass/none).
    pub reason: String,
    /// The same reason, typed.
    pub error: Option<Dkim2Error>,
    /// The draft the verdict follows.
    pub draft: String,
    /// Hops, newest first.
    pub hops: Vec<HopReport>,
    /// Instances, newest first.
    pub instances: Vec<InstanceReport>,
    /// Whether instance 1, the originator's, verified after undoing every Recipe.
    pub original_verified: bool,
}

impl Dkim2Report {
    fn none() -> Self {
        Dkim2Report {
            verdict: Dkim2Verdict::None,
            reason: String::new(),
            error: None,
            draft: DRAFT.to_string(),
            hops: Vec::new(),
            instances: Vec::new(),
            original_verified: false,
        }
    }

    fn fail_early(error: Dkim2Error) -> Self {
        Dkim2Report {
            verdict: error.verdict(),
            reason: error.to_string(),
            error: Some(error),
            ..Self::none()
        }
    }
}

/// A parsed field with its exact value, as the signature input needs it.
pub(super) struct Parsed<'a, T> {
    pub(super) field: T,
    pub(super) value: &'a [u8],
}

pub(super) type Fields<'a> = (
    Vec<Parsed<'a, SignatureField>>,
    Vec<Parsed<'a, InstanceField>>,
);

pub(super) fn parse_fields<'a>(headers: &[HeaderField<'a>]) -> Result<Fields<'a>, Dkim2Error> {
    let (mut sigs, mut mis) = (Vec::new(), Vec::new());
    for h in headers {
        if h.is("DKIM2-Signature") {
            let field = SignatureField::parse(&h.unfolded_value())?;
            sigs.push(Parsed {
                field,
                value: h.value,
            });
        } else if h.is("Message-Instance") {
            let field = InstanceField::parse(&h.unfolded_value())?;
            mis.push(Parsed {
                field,
                value: h.value,
            });
        }
    }
    sigs.sort_by_key(|p| p.field.i);
    mis.sort_by_key(|p| p.field.m);
    Ok((sigs, mis))
}

/// Every (selector, domain) the message's DKIM2-Signatures name.
pub fn wanted_keys(message: &RawMessage<'_>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for h in message.fields("DKIM2-Signature") {
        if let Ok(sig) = SignatureField::parse(&h.unfolded_value()) {
            for v in sig.s.iter().flatten() {
                out.push((v.selector.clone(), sig.d.clone()));
            }
        }
    }
    out
}

/// Fetches the keys and verifies (see [`verify_dkim2_with_keys`]).
pub async fn verify_dkim2(
    resolver: &Resolver,
    message: &[u8],
    envelope: Option<&Dkim2Envelope>,
    time: TimeCheck,
) -> Dkim2Report {
    let parsed = RawMessage::parse(message);
    let keys = KeyStore::fetch(resolver, wanted_keys(&parsed)).await;
    verify_dkim2_with_keys(&parsed, &keys, envelope, time)
}

/// Numbering (§14.2): hops 1..n, instances 1..k, each hop signing an instance no older than
/// the hop before, the newest instance signed.
fn check_numbering(sigs: &[&SignatureField], mis: &[&InstanceField]) -> Result<(), Dkim2Error> {
    if sigs.is_empty() {
        return Err(Dkim2Error::SignatureMissing(1));
    }
    for (want, s) in (1u32..).zip(sigs) {
        if s.i != want {
            return Err(Dkim2Error::SequenceGap(want));
        }
    }
    for (want, mi) in (1u32..).zip(mis) {
        if mi.m != want {
            return Err(Dkim2Error::InstanceMissing(want));
        }
    }
    let highest = mis.len() as u32;
    for pair in sigs.windows(2) {
        if pair[1].m < pair[0].m {
            return Err(Dkim2Error::InstanceOrder {
                i: pair[1].i,
                m: pair[1].m,
                previous: pair[0].i,
            });
        }
    }
    for s in sigs {
        if s.m > highest {
            return Err(Dkim2Error::InstanceMissing(s.m));
        }
    }
    match sigs.last() {
        Some(top) if top.m < highest => Err(Dkim2Error::InstanceNotSigned(highest)),
        _ => Ok(()),
    }
}

fn check_time(sig: &SignatureField, time: TimeCheck) -> Result<(), Dkim2Error> {
    let TimeCheck::At(now) = time else {
        return Ok(());
    };
    if now > sig.t && now - sig.t > MAX_AGE_SECS {
        Err(Dkim2Error::Expired(sig.i))
    } else if sig.t > now.saturating_add(MAX_FUTURE_SECS) {
        Err(Dkim2Error::FromFuture(sig.i))
    } else {
        Ok(())
    }
}

fn bracketed(path: &str) -> String {
    let p = path.trim();
    if p.starts_with('<') && p.ends_with('>') {
        p.to_string()
    } else {
        format!("<{p}>")
    }
}

/// Paths are equal when their local parts are equal exactly and domains without regard to
/// case.
fn same_path(a: &str, b: &str) -> bool {
    let (a, b) = (bracketed(a), bracketed(b));
    match (a.rsplit_once('@'), b.rsplit_once('@')) {
        (Some((la, da)), Some((lb, db))) => la == lb && da.eq_ignore_ascii_case(db),
        _ => a == b,
    }
}

/// The top hop against the envelope the message arrived with: a copy sent to other
/// recipients than those signed is a replay (§14.4; -08: fail).
fn check_envelope(top: &SignatureField, envelope: &Dkim2Envelope) -> Result<(), Dkim2Error> {
    let ChainBinding::Envelope { mail_from, rcpt_to } = &top.chain else {
        return Err(Dkim2Error::NextDomainOnTop(top.i));
    };
    if !same_path(&envelope.mail_from, mail_from) {
        return Err(Dkim2Error::MailFromMismatch {
            i: top.i,
            value: bracketed(&envelope.mail_from),
        });
    }
    for rcpt in &envelope.rcpt_to {
        if !rcpt_to.iter().any(|r| same_path(rcpt, r)) {
            return Err(Dkim2Error::RcptToMismatch {
                i: top.i,
                value: bracketed(rcpt),
            });
        }
    }
    Ok(())
}

/// `mf=` within `d=` (§10.5), and custody from the hop before (§14.4): the previous hop's
/// `nd=` names this `d=`, or one of its `rt=` domains is this hop's `mf=` domain (`d=` when
/// `mf=` is null).
pub(super) fn check_custody(
    previous: Option<&SignatureField>,
    sig: &SignatureField,
) -> Result<(), Dkim2Error> {
    if let ChainBinding::Envelope { mail_from, .. } = &sig.chain {
        let mf = path_domain(mail_from);
        if !mf.is_empty() && !domain_within(mf, &sig.d) {
            return Err(Dkim2Error::MailFromDomainMismatch(sig.i));
        }
    }
    let Some(prev) = previous else {
        return Ok(());
    };
    match (&prev.chain, &sig.chain) {
        (ChainBinding::NextDomain(nd), _) if nd.eq_ignore_ascii_case(&sig.d) => Ok(()),
        (ChainBinding::NextDomain(_), _) => Err(Dkim2Error::NextDomainMismatch(sig.i)),
        (ChainBinding::Envelope { rcpt_to, .. }, ChainBinding::Envelope { mail_from, .. })
            if !path_domain(mail_from).is_empty() =>
        {
            let mf = path_domain(mail_from);
            if rcpt_to.iter().any(|r| domain_within(mf, path_domain(r))) {
                Ok(())
            } else {
                Err(Dkim2Error::CustodyMailFrom {
                    i: sig.i,
                    previous: prev.i,
                })
            }
        }
        (ChainBinding::Envelope { rcpt_to, .. }, _) => {
            if rcpt_to
                .iter()
                .any(|r| domain_within(path_domain(r), &sig.d))
            {
                Ok(())
            } else {
                Err(Dkim2Error::CustodyDomain {
                    i: sig.i,
                    previous: prev.i,
                })
            }
        }
    }
}

fn check_value(
    sig: &SignatureField,
    v: &SigValue,
    input: &[u8],
    keys: &KeyStore,
) -> Result<(), Dkim2Error> {
    let selector = v.selector.clone();
    let Ok(alg) = SigAlg::parse(&v.algorithm) else {
        return Err(Dkim2Error::UnknownAlgorithm { i: sig.i, selector });
    };
    let key = match keys.get(&v.selector, &sig.d) {
        Ok(k) => k,
        Err(KeyFailure::Temporary(e)) => {
            return Err(Dkim2Error::KeyFetch {
                i: sig.i,
                selector,
                detail: e.to_string(),
            });
        }
        Err(KeyFailure::NotFound(_)) => return Err(Dkim2Error::KeyMissing { i: sig.i, selector }),
        Err(e @ KeyFailure::Unusable { .. }) => {
            return Err(Dkim2Error::KeyUnusable {
                i: sig.i,
                selector,
                detail: e.to_string(),
            });
        }
    };
    // A key of the other type, or one whose h= excludes SHA-256, cannot check this value:
    // that is the key's fault (permerror), not a forged signature (fail).
    let usable = matches!(
        (alg, key.key_type),
        (SigAlg::RsaSha256, KeyType::Rsa) | (SigAlg::Ed25519Sha256, KeyType::Ed25519)
    ) && (key.hashes.is_empty() || key.hashes.iter().any(|h| h == "sha256"));
    if !usable {
        return Err(Dkim2Error::KeyUnusable {
            i: sig.i,
            selector,
            detail: format!("the key cannot check {}", v.algorithm),
        });
    }
    key.verify(alg, input, &v.signature)
        .map_err(|_| Dkim2Error::IncorrectSignature { i: sig.i, selector })
}

/// One hop's signature: any `|` group whose `,` items all verify (-09).
fn check_signature(
    sig: &Parsed<'_, SignatureField>,
    sigs: &[Parsed<'_, SignatureField>],
    mis: &[Parsed<'_, InstanceField>],
    keys: &KeyStore,
) -> Result<(), Dkim2Error> {
    let instances: Vec<&[u8]> = mis
        .iter()
        .filter(|p| p.field.m <= sig.field.m)
        .map(|p| p.value)
        .collect();
    let earlier: Vec<&[u8]> = sigs
        .iter()
        .filter(|p| p.field.i < sig.field.i)
        .map(|p| p.value)
        .collect();
    let input = signature_input(&instances, &earlier, sig.value);
    let mut first_error = None;
    for group in &sig.field.s {
        match group
            .iter()
            .try_for_each(|v| check_value(&sig.field, v, &input, keys))
        {
            Ok(()) => return Ok(()),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or(Dkim2Error::SignatureTagMissing {
        i: sig.field.i,
        tag: "s".into(),
    }))
}

/// One instance's hashes on `state`: any `|` group whose `,` items all match (-09).
fn check_hashes(mi: &InstanceField, state: &ContentState) -> Result<(), Dkim2Error> {
    let check = |e: &HashEntry| -> Result<(), Dkim2Error> {
        let algo = e.algo.as_str().to_string();
        let Some(hh) = state.header_hash(&e.algo) else {
            return Err(Dkim2Error::UnknownHash {
                m: mi.m,
                name: algo,
            });
        };
        if hh != e.header {
            return Err(Dkim2Error::HeaderHashMismatch { m: mi.m, algo });
        }
        match &state.body {
            Some(body) if body_hash(&e.algo, body).as_ref() != Some(&e.body) => {
                Err(Dkim2Error::BodyHashMismatch { m: mi.m, algo })
            }
            _ => Ok(()),
        }
    };
    let mut first_error = None;
    for group in &mi.hashes {
        match group.iter().try_for_each(check) {
            Ok(()) => return Ok(()),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or(Dkim2Error::InstanceSyntax {
        m: mi.m,
        detail: "empty h=".into(),
    }))
}

/// The hop that introduced instance `m`: the first to sign it.
fn introducer<'s>(sigs: &'s [Parsed<'_, SignatureField>], m: u32) -> Option<&'s SignatureField> {
    sigs.iter().map(|p| &p.field).find(|s| s.m >= m)
}

/// What walking the instances newest to oldest found.
struct InstanceWalk {
    reports: Vec<InstanceReport>,
    /// (hop, error) for From errors, which belong to a hop.
    hop_errors: Vec<(u32, Dkim2Error)>,
    /// The first error, in walking order.
    first: Option<Dkim2Error>,
    original_verified: bool,
}

/// Checks every instance, newest first, undoing each Recipe to reach the one before, and the
/// From rule (-09 §11): the From of each instance that changed From, and of instance 1, is
/// within the `d=` of the hop that introduced that instance.
fn walk_instances(
    message: &RawMessage<'_>,
    sigs: &[Parsed<'_, SignatureField>],
    mis: &[Parsed<'_, InstanceField>],
) -> InstanceWalk {
    let mut walk = InstanceWalk {
        reports: Vec::new(),
        hop_errors: Vec::new(),
        first: None,
        original_verified: false,
    };
    let mut state = Some(ContentState::of(message));
    for p in mis.iter().rev() {
        let mi = &p.field;
        let recipe = mi.recipe.as_ref().filter(|_| mi.m > 1);
        let mut report = InstanceReport {
            m: mi.m,
            recipe: recipe.map(|r| r.describe()),
            verdict: Dkim2Verdict::Pass,
            reason: String::new(),
        };
        let Some(current) = state.take() else {
            report.verdict = Dkim2Verdict::Permerror;
            report.reason = "not checked: a newer Recipe could not be applied".into();
            walk.reports.push(report);
            continue;
        };
        let mut error = check_hashes(mi, &current).err();
        let changes_from = recipe.is_some_and(|r| r.headers.iter().any(|(n, _)| n == "from"));
        if (mi.m == 1 || changes_from)
            && let Some(hop) = introducer(sigs, mi.m)
        {
            let authentic = current
                .from_domain()
                .is_some_and(|d| domain_within(&d, &hop.d));
            if !authentic {
                let e = Dkim2Error::FromNotAuthentic(hop.i);
                walk.hop_errors.push((hop.i, e.clone()));
                error.get_or_insert(e);
            }
        }
        if mi.m == 1 && error.is_none() {
            walk.original_verified = true;
        }
        if let Some(r) = recipe {
            state = undo(mi.m, r, current, &mut error);
        } else {
            state = Some(current);
        }
        if let Some(e) = error {
            report.verdict = e.verdict();
            report.reason = e.to_string();
            walk.first.get_or_insert(e);
        }
        walk.reports.push(report);
    }
    walk
}

/// Applies instance `m`'s Recipe to reach instance `m-1`; None when it cannot.
fn undo(
    m: u32,
    recipe: &super::recipe::Recipe,
    current: ContentState,
    error: &mut Option<Dkim2Error>,
) -> Option<ContentState> {
    let headers = match recipe.apply_headers(m, &current.headers) {
        Ok(h) => h,
        Err(e) => {
            error.get_or_insert(e);
            return None;
        }
    };
    let body = match (&recipe.body, current.body) {
        // -09 §13: a null body Recipe is a permanent error (it was a fail in -08). The
        // earlier header hashes can still be checked.
        (BodyRecipe::Null, _) => {
            error.get_or_insert(Dkim2Error::NullBodyRecipe(m));
            None
        }
        (_, None) => None,
        (_, Some(body)) => match recipe.apply_body(m, &body) {
            Ok(b) => b,
            Err(e) => {
                error.get_or_insert(e);
                return None;
            }
        },
    };
    Some(ContentState { headers, body })
}

fn hop_report(
    sig: &SignatureField,
    mis: &[Parsed<'_, InstanceField>],
    introduced: bool,
) -> HopReport {
    let (mail_from, rcpt_to, next_domain) = match &sig.chain {
        ChainBinding::Envelope { mail_from, rcpt_to } => (mail_from.clone(), rcpt_to.clone(), None),
        ChainBinding::NextDomain(nd) => (String::new(), Vec::new(), Some(nd.clone())),
    };
    let recipe = mis
        .iter()
        .find(|p| introduced && p.field.m == sig.m && sig.m > 1)
        .and_then(|p| p.field.recipe.as_ref())
        .map(|r| r.describe());
    HopReport {
        i: sig.i,
        domain: sig.d.clone(),
        selectors: sig
            .s
            .iter()
            .flatten()
            .map(|v| format!("{}:{}", v.selector, v.algorithm))
            .collect(),
        m: sig.m,
        t: sig.t,
        mail_from,
        rcpt_to,
        next_domain,
        recipe,
        recipe_applied: false,
        verdict: Dkim2Verdict::Pass,
        reason: String::new(),
    }
}

/// Verifies the DKIM2 chain of `message` with the keys already fetched.
///
/// `envelope` is the transaction the message arrived in (None when unknown, as for a stored
/// file: the replay check is then skipped and the report says nothing about it).
pub fn verify_dkim2_with_keys(
    message: &RawMessage<'_>,
    keys: &KeyStore,
    envelope: Option<&Dkim2Envelope>,
    time: TimeCheck,
) -> Dkim2Report {
    let count = message
        .headers
        .iter()
        .filter(|h| h.is("DKIM2-Signature") || h.is("Message-Instance"))
        .count();
    if count == 0 {
        return Dkim2Report::none();
    }
    if count > MAX_FIELDS {
        return Dkim2Report::fail_early(Dkim2Error::ChainTooLong);
    }
    let (sigs, mis) = match parse_fields(&message.headers) {
        Ok(f) => f,
        Err(e) => return Dkim2Report::fail_early(e),
    };
    let sig_fields: Vec<&SignatureField> = sigs.iter().map(|p| &p.field).collect();
    let mi_fields: Vec<&InstanceField> = mis.iter().map(|p| &p.field).collect();
    let mut hops: Vec<HopReport> = sigs
        .iter()
        .enumerate()
        .map(|(k, p)| {
            let introduced = k == 0 || sigs[k - 1].field.m < p.field.m;
            hop_report(&p.field, &mis, introduced)
        })
        .collect();
    if let Err(e) = check_numbering(&sig_fields, &mi_fields) {
        let mut report = Dkim2Report::fail_early(e);
        for h in &mut hops {
            h.verdict = Dkim2Verdict::Permerror;
            h.reason = format!("chain not evaluated: {}", report.reason);
        }
        hops.reverse();
        report.hops = hops;
        return report;
    }
    // Per hop, every error in check order; the chain's reason is the first by that order.
    let mut hop_errors: Vec<Vec<Dkim2Error>> = vec![Vec::new(); sigs.len()];
    let mut chain_errors: Vec<Dkim2Error> = Vec::new();
    for (k, p) in sigs.iter().enumerate() {
        if let Err(e) = check_time(&p.field, time) {
            hop_errors[k].push(e.clone());
            chain_errors.push(e);
        }
    }
    if let (Some(env), Some(top)) = (envelope, sigs.last())
        && let Err(e) = check_envelope(&top.field, env)
    {
        hop_errors[sigs.len() - 1].push(e.clone());
        chain_errors.push(e);
    }
    for k in 0..sigs.len() {
        let prev = k.checked_sub(1).map(|j| &sigs[j].field);
        if let Err(e) = check_custody(prev, &sigs[k].field) {
            hop_errors[k].push(e.clone());
            chain_errors.push(e);
        }
    }
    let walk = walk_instances(message, &sigs, &mis);
    for (i, e) in &walk.hop_errors {
        hop_errors[(*i - 1) as usize].push(e.clone());
    }
    chain_errors.extend(walk.first.clone());
    for (k, p) in sigs.iter().enumerate() {
        if let Err(e) = check_signature(p, &sigs, &mis, keys) {
            hop_errors[k].push(e.clone());
            chain_errors.push(e);
        }
    }
    finish(hops, hop_errors, chain_errors, walk, &mis)
}

/// Puts the verdicts together: a temporary error decides only when nothing failed for good.
fn finish(
    mut hops: Vec<HopReport>,
    hop_errors: Vec<Vec<Dkim2Error>>,
    chain_errors: Vec<Dkim2Error>,
    walk: InstanceWalk,
    mis: &[Parsed<'_, InstanceField>],
) -> Dkim2Report {
    let instance_ok = |m: u32| {
        walk.reports
            .iter()
            .find(|r| r.m == m - 1)
            .is_some_and(|r| r.verdict == Dkim2Verdict::Pass)
    };
    for (hop, errors) in hops.iter_mut().zip(&hop_errors) {
        hop.recipe_applied = hop.recipe.is_some()
            && mis
                .iter()
                .any(|p| p.field.m == hop.m && p.field.recipe.is_some())
            && instance_ok(hop.m);
        let decisive = errors
            .iter()
            .find(|e| e.verdict() != Dkim2Verdict::Temperror)
            .or(errors.first());
        if let Some(e) = decisive {
            hop.verdict = e.verdict();
            hop.reason = e.to_string();
        }
    }
    hops.reverse();
    let decisive = chain_errors
        .iter()
        .find(|e| e.verdict() != Dkim2Verdict::Temperror)
        .or(chain_errors.first())
        .cloned();
    Dkim2Report {
        verdict: decisive
            .as_ref()
            .map_or(Dkim2Verdict::Pass, Dkim2Error::verdict),
        reason: decisive
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        error: decisive,
        draft: DRAFT.to_string(),
        hops,
        instances: walk.reports,
        original_verified: walk.original_verified,
    }
}
