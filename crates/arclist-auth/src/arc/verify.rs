//! ARC chain validation (RFC 8617 §5.2) with a report for every hop.

use super::chain::{ArcSet, SealTags, collect_sets};
use super::seal_data;
use crate::canon::BodyHashCache;
use crate::dkim::{DkimVerdict, Identity, SignatureHeader, check_signature};
use crate::key_lookup::{KeyFailure, KeyStore};
use crate::message::RawMessage;
use crate::results::AuthResults;
use serde::{Deserialize, Serialize};

/// The chain's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArcVerdict {
    /// No ARC sets.
    None,
    /// Every seal verifies, the newest AMS verifies, and the cv= values are consistent.
    Pass,
    /// Anything else.
    Fail,
    /// A key could not be fetched: no verdict yet, and no seal may be added.
    Temperror,
}

impl ArcVerdict {
    /// The RFC 8601 spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ArcVerdict::None => "none",
            ArcVerdict::Pass => "pass",
            ArcVerdict::Fail => "fail",
            ArcVerdict::Temperror => "temperror",
        }
    }
}

/// What happened to one signature check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", content = "why", rename_all = "lowercase")]
pub enum Check {
    /// Verified.
    Pass,
    /// Did not verify, and why.
    Fail(String),
    /// DNS failed.
    Temperror(String),
    /// Not needed for the verdict and not attempted, and why.
    Skipped(String),
}

impl Check {
    /// A one-word summary.
    pub fn word(&self) -> &'static str {
        match self {
            Check::Pass => "pass",
            Check::Fail(_) => "fail",
            Check::Temperror(_) => "temperror",
            Check::Skipped(_) => "skipped",
        }
    }

    /// Why it did not pass, if it did not.
    pub fn why(&self) -> Option<&str> {
        match self {
            Check::Pass => None,
            Check::Fail(w) | Check::Temperror(w) | Check::Skipped(w) => Some(w),
        }
    }
}

/// One hop of the chain as the verifier saw it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HopReport {
    /// `i=`.
    pub instance: u32,
    /// The sealer's `d=`.
    pub domain: String,
    /// The sealer's `s=`.
    pub selector: String,
    /// The `cv=` the seal claims.
    pub cv: String,
    /// Whether the ARC-Seal verified.
    pub seal: Check,
    /// Whether the ARC-Message-Signature verified (only the newest must).
    pub ams: Check,
    /// The AAR's authserv-id.
    pub authserv_id: String,
    /// The AAR's statements, as written (`spf=pass smtp.mailfrom=...`).
    pub recorded: Vec<String>,
    /// A one-line summary of what failed, empty when all is well.
    pub reason: String,
}

/// The result of validating a message's ARC chain.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArcReport {
    /// The chain verdict.
    pub verdict: ArcVerdict,
    /// Why the chain failed (empty on pass/none).
    pub reason: String,
    /// Number of sets found.
    pub instances: u32,
    /// RFC 8617 §5.2 oldest-pass: 0 when every AMS still verifies, else the oldest instance
    /// from which every newer AMS verifies. None when not pass.
    pub oldest_pass: Option<u32>,
    /// The newest seal's claimed cv (a chain whose newest seal says fail must not be extended).
    pub newest_cv: Option<String>,
    /// Hops, newest first.
    pub hops: Vec<HopReport>,
}

impl ArcReport {
    fn verdict_only(verdict: ArcVerdict, reason: impl Into<String>) -> Self {
        ArcReport {
            verdict,
            reason: reason.into(),
            instances: 0,
            oldest_pass: None,
            newest_cv: None,
            hops: Vec::new(),
        }
    }
}

/// Every (selector, domain) the message's ARC sets need.
pub fn wanted_keys(message: &RawMessage<'_>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Ok(sets) = collect_sets(message) {
        for set in &sets {
            if let Ok(s) = SealTags::parse(&set.seal.unfolded_value()) {
                out.push((s.selector, s.domain));
            }
            if let Ok(s) = SignatureHeader::parse(&set.ams.unfolded_value(), true) {
                out.push((s.selector, s.domain));
            }
        }
    }
    out
}

fn check_ams(
    set: &ArcSet<'_>,
    message: &RawMessage<'_>,
    bodies: &mut BodyHashCache<'_>,
    keys: &KeyStore,
) -> (Check, String, String) {
    let sig = match SignatureHeader::parse(&set.ams.unfolded_value(), true) {
        Ok(s) => s,
        Err(e) => {
            return (
                Check::Fail(format!("malformed AMS: {e}")),
                String::new(),
                String::new(),
            );
        }
    };
    if sig.identity != Identity::Instance(set.instance) {
        return (
            Check::Fail("AMS i= does not match its set".into()),
            sig.domain,
            sig.selector,
        );
    }
    let check = match check_signature(&sig, set.ams.raw, message, bodies, keys) {
        Ok(_) => Check::Pass,
        Err((DkimVerdict::Temperror, why)) => Check::Temperror(why),
        Err((_, why)) => Check::Fail(why),
    };
    (check, sig.domain, sig.selector)
}

fn check_seal(sets: &[ArcSet<'_>], set: &ArcSet<'_>, tags: &SealTags, keys: &KeyStore) -> Check {
    let key = match keys.get(&tags.selector, &tags.domain) {
        Ok(k) => k,
        Err(KeyFailure::Temporary(e)) => return Check::Temperror(e.to_string()),
        Err(e) => return Check::Fail(e.to_string()),
    };
    let data = seal_data(sets, set.instance as usize, set.seal.raw, tags.cv == "fail");
    match key.verify(tags.algorithm, &data, &tags.b) {
        Ok(()) => Check::Pass,
        Err(e) => Check::Fail(format!(
            "seal {e} (an ARC header was changed or the key does not match)"
        )),
    }
}

/// One hop's report, the cv= its seal claims (when the seal parses), and a temporary error
/// met on the way; `reason` is empty when nothing is wrong with the hop.
fn check_hop(
    sets: &[ArcSet<'_>],
    set: &ArcSet<'_>,
    message: &RawMessage<'_>,
    bodies: &mut BodyHashCache<'_>,
    keys: &KeyStore,
) -> (HopReport, Option<String>, Option<String>) {
    let mut temp: Option<String> = None;
    let mut sealed_cv = None;
    let i = set.instance;
    let aar_value = set.aar.unfolded_value();
    let aar = aar_value
        .split_once(';')
        .and_then(|(_, rest)| AuthResults::parse(rest));
    let mut hop = HopReport {
        instance: i,
        domain: String::new(),
        selector: String::new(),
        cv: String::new(),
        seal: Check::Skipped("not reached".into()),
        ams: Check::Skipped("only the newest AMS must verify".into()),
        authserv_id: aar
            .as_ref()
            .map(|a| a.authserv_id.clone())
            .unwrap_or_default(),
        recorded: aar
            .map(|a| a.results.iter().map(|r| r.render()).collect())
            .unwrap_or_default(),
        reason: String::new(),
    };
    let mut problems = Vec::new();
    match SealTags::parse(&set.seal.unfolded_value()) {
        Err(e) => {
            hop.seal = Check::Fail(format!("malformed seal: {e}"));
            problems.push(format!("i={i}: malformed ARC-Seal: {e}"));
        }
        Ok(tags) => {
            hop.domain = tags.domain.clone();
            hop.selector = tags.selector.clone();
            hop.cv = tags.cv.clone();
            sealed_cv = Some(tags.cv.clone());
            let expected = if i == 1 { "none" } else { "pass" };
            if tags.cv == "fail" {
                problems.push(format!("i={i}: the sealer recorded cv=fail"));
            } else if tags.cv != expected {
                problems.push(format!(
                    "i={i}: cv={} where {expected} is required",
                    tags.cv
                ));
            }
            hop.seal = check_seal(sets, set, &tags, keys);
            match &hop.seal {
                Check::Fail(w) => problems.push(format!("i={i}: seal: {w}")),
                Check::Temperror(w) => {
                    temp.get_or_insert(format!("i={i}: {w}"));
                }
                _ => {}
            }
        }
    }
    let (ams, _, _) = check_ams(set, message, bodies, keys);
    if i as usize == sets.len() {
        match &ams {
            Check::Fail(w) => problems.push(format!("i={i}: newest AMS: {w}")),
            Check::Temperror(w) => {
                temp.get_or_insert(format!("i={i}: {w}"));
            }
            _ => {}
        }
    }
    hop.ams = ams;
    if hop.domain.is_empty()
        && let Ok(sig) = SignatureHeader::parse(&set.ams.unfolded_value(), true)
    {
        hop.domain = sig.domain;
        hop.selector = sig.selector;
    }
    hop.reason = problems.join("; ");
    (hop, sealed_cv, temp)
}

/// Validates the chain with keys already fetched.
pub fn verify_arc(
    message: &RawMessage<'_>,
    bodies: &mut BodyHashCache<'_>,
    keys: &KeyStore,
) -> ArcReport {
    let sets = match collect_sets(message) {
        Ok(s) if s.is_empty() => return ArcReport::verdict_only(ArcVerdict::None, ""),
        Ok(s) => s,
        Err(e) => return ArcReport::verdict_only(ArcVerdict::Fail, e),
    };
    let n = sets.len();
    let mut hops: Vec<HopReport> = Vec::with_capacity(n);
    let mut chain_fail: Option<String> = None;
    let mut temp: Option<String> = None;
    let mut newest_cv = None;
    // Newest first, as a reader wants to see them.
    for set in sets.iter().rev() {
        let (hop, sealed_cv, timeout) = check_hop(&sets, set, message, bodies, keys);
        if set.instance as usize == n {
            newest_cv = sealed_cv;
        }
        if let Some(t) = timeout {
            temp.get_or_insert(t);
        }
        if chain_fail.is_none() && !hop.reason.is_empty() {
            chain_fail = Some(hop.reason.clone());
        }
        hops.push(hop);
    }
    // A definite failure stands even when another key timed out; otherwise a timeout leaves
    // the chain undecided.
    let (verdict, reason) = match (chain_fail, temp) {
        (Some(r), _) => (ArcVerdict::Fail, r),
        (None, Some(t)) => (ArcVerdict::Temperror, t),
        (None, None) => (ArcVerdict::Pass, String::new()),
    };
    let oldest_pass = (verdict == ArcVerdict::Pass).then(|| {
        // hops are newest first; walk down while the AMS verifies.
        let mut oldest = 0;
        for hop in &hops {
            if hop.ams != Check::Pass {
                oldest = hop.instance + 1;
                break;
            }
        }
        oldest
    });
    ArcReport {
        verdict,
        reason,
        instances: n as u32,
        oldest_pass,
        newest_cv,
        hops,
    }
}

impl std::fmt::Display for HopReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "i={} d={} s={} cv={} seal={}",
            self.instance,
            self.domain,
            self.selector,
            self.cv,
            self.seal.word()
        )?;
        if let Some(w) = self.seal.why() {
            write!(f, " ({w})")?;
        }
        write!(f, " ams={}", self.ams.word())?;
        if let Some(w) = self.ams.why() {
            write!(f, " ({w})")?;
        }
        if !self.authserv_id.is_empty() {
            write!(f, " aar={}", self.authserv_id)?;
        }
        Ok(())
    }
}
