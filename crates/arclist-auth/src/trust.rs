//! Stage 4: trusted intermediaries (RFC 8617 §7.2 local policy).
//!
//! When DMARC fails but the post arrived with a passing ARC chain whose every sealer the list
//! trusts, the results the oldest hop recorded may stand in for ours: the post was genuine when
//! it reached that first trusted hop, which then changed it (a footer, a subject tag).
//!
//! A DKIM2 chain (draft-ietf-dkim-dkim2-spec-09) may stand in the same way, from the same
//! trusted list: when it verifies back to the originator's instance through every Recipe, the
//! originator's `d=` is aligned with the From domain, and the hop that handed the message to
//! us (the newest) is trusted. DKIM2 proves the author's content itself, so only the last
//! hop needs trusting (for having sent it to us at all), where ARC needs every sealer.

use crate::Verification;
use crate::arc::ArcVerdict;
use crate::dkim2::{Dkim2Report, Dkim2Verdict, HopReport, domain_within};
use crate::dmarc::DmarcVerdict;
use crate::results::AuthResults;

/// What the trust stage concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustDecision {
    /// True when the ARC chain overrides a DMARC failure.
    pub overridden: bool,
    /// The sealers that vouched, oldest first (`domain:selector`).
    pub sealers: Vec<String>,
    /// Why, for the results and the log.
    pub reason: String,
    /// True when the DKIM2 chain, not ARC, vouched (`sealers` are then the DKIM2 signers).
    pub dkim2: bool,
}

impl TrustDecision {
    fn no(reason: impl Into<String>) -> Self {
        TrustDecision {
            overridden: false,
            sealers: Vec::new(),
            reason: reason.into(),
            dkim2: false,
        }
    }

    /// Records an override in our Authentication-Results (the DMARC result keeps `fail`, with
    /// the reason and `policy.arc-override`, or `policy.dkim2-override`, naming the sealers or
    /// signers) and counts it.
    pub fn annotate(&self, results: &mut crate::results::AuthResults) {
        if !self.overridden {
            return;
        }
        if let Some(dmarc) = results.results.iter_mut().find(|r| r.method == "dmarc") {
            dmarc.comment = Some(self.reason.clone());
            let name = if self.dkim2 {
                "policy.dkim2-override"
            } else {
                "policy.arc-override"
            };
            (dmarc.properties).push((name.into(), self.sealers.join(",")));
        }
        crate::observe::observer().arc_override();
    }
}

/// Whether `domain`/`selector` matches a `trusted` entry (`domain` or `domain:selector`).
fn trusted(entries: &[String], domain: &str, selector: &str) -> bool {
    entries.iter().any(|t| match t.split_once(':') {
        Some((d, s)) => d.eq_ignore_ascii_case(domain) && s == selector,
        None => t.eq_ignore_ascii_case(domain),
    })
}

/// Decides whether `v`'s ARC chain, or else its DKIM2 chain, overrides its DMARC failure for
/// a list trusting `trusted` (sealers and DKIM2 signers alike: `domain` or `domain:selector`).
pub fn evaluate(v: &Verification, trusted_sealers: &[String]) -> TrustDecision {
    if v.dmarc.verdict != DmarcVerdict::Fail {
        return TrustDecision::no("no override needed: DMARC did not fail");
    }
    let arc = evaluate_arc(v, trusted_sealers);
    if arc.overridden {
        return arc;
    }
    match v
        .dkim2
        .as_ref()
        .map(|r| evaluate_dkim2(r, v, trusted_sealers))
    {
        Some(Ok(dkim2)) => dkim2,
        Some(Err(why)) => TrustDecision::no(format!("{}; {why}", arc.reason)),
        None => arc,
    }
}

/// Whether `domain` is aligned with the From domain: one within the other, or both within the
/// author's organizational domain when DMARC found it (relaxed alignment, without guessing an
/// organizational domain DMARC did not find).
fn aligned(domain: &str, v: &Verification) -> bool {
    let (from, org) = (&v.dmarc.from_domain, &v.dmarc.organizational_domain);
    domain_within(domain, from)
        || domain_within(from, domain)
        || !org.is_empty() && domain_within(domain, org) && domain_within(from, org)
}

/// The DKIM2 override: the chain passed back to the originator's instance, whose signer is
/// aligned with From, and the hop that handed it to us is trusted. `Err` says why not.
fn evaluate_dkim2(
    r: &Dkim2Report,
    v: &Verification,
    trusted_sealers: &[String],
) -> Result<TrustDecision, String> {
    if r.verdict != Dkim2Verdict::Pass {
        return Err(format!(
            "no DKIM2 override: the chain is {} ({})",
            r.verdict.as_str(),
            r.reason
        ));
    }
    let (Some(newest), Some(originator)) = (r.hops.first(), r.hops.last()) else {
        return Err("no DKIM2 override: no hops".into());
    };
    if !r.original_verified {
        return Err("no DKIM2 override: the originator's instance did not verify".into());
    }
    // Selectors are reported as `selector:algorithm`; the list names `domain:selector`.
    let selector = |h: &HopReport| -> String {
        let first = h.selectors.first().map_or("", String::as_str);
        first.split(':').next().unwrap_or_default().to_string()
    };
    if !trusted(trusted_sealers, &newest.domain, &selector(newest)) {
        return Err(format!(
            "no DKIM2 override: the hop that handed it to us, i={} {}, is not trusted",
            newest.i, newest.domain
        ));
    }
    let from = &v.dmarc.from_domain;
    if !aligned(&originator.domain, v) {
        return Err(format!(
            "no DKIM2 override: the originator's d={} is not aligned with {from}",
            originator.domain
        ));
    }
    Ok(TrustDecision {
        overridden: true,
        sealers: (r.hops.iter().rev())
            .map(|h| format!("{}:{}", h.domain, selector(h)))
            .collect(),
        reason: format!(
            "dkim2 override: the chain verifies back to {} (i=1), aligned with {from}, handed over by trusted {} (i={})",
            originator.domain, newest.domain, newest.i
        ),
        dkim2: true,
    })
}

/// The ARC override (RFC 8617 §7.2): every sealer trusted, the oldest recorded dmarc=pass.
fn evaluate_arc(v: &Verification, trusted_sealers: &[String]) -> TrustDecision {
    if v.arc.verdict != ArcVerdict::Pass {
        return TrustDecision::no(format!(
            "no override: the ARC chain is {}",
            v.arc.verdict.as_str()
        ));
    }
    let untrusted: Vec<String> = v
        .arc
        .hops
        .iter()
        .filter(|h| !trusted(trusted_sealers, &h.domain, &h.selector))
        .map(|h| format!("i={} {}", h.instance, h.domain))
        .collect();
    if !untrusted.is_empty() {
        return TrustDecision::no(format!(
            "no override: untrusted sealer(s) {}",
            untrusted.join(", ")
        ));
    }
    let Some(oldest) = v.arc.hops.last() else {
        return TrustDecision::no("no override: no hops");
    };
    let recorded = AuthResults {
        authserv_id: oldest.authserv_id.clone(),
        version: None,
        results: oldest
            .recorded
            .iter()
            .filter_map(|r| {
                AuthResults::parse(&format!("x; {r}")).and_then(|a| a.results.into_iter().next())
            })
            .collect(),
    };
    let from = &v.dmarc.from_domain;
    let dmarc_pass = recorded
        .results
        .iter()
        .any(|r| r.method == "dmarc" && r.result == "pass");
    let sealers: Vec<String> = v
        .arc
        .hops
        .iter()
        .rev()
        .map(|h| format!("{}:{}", h.domain, h.selector))
        .collect();
    if dmarc_pass {
        TrustDecision {
            overridden: true,
            dkim2: false,
            reason: format!(
                "arc override: {} (i={}) recorded dmarc=pass for {from}",
                oldest.domain, oldest.instance
            ),
            sealers,
        }
    } else {
        TrustDecision::no(format!(
            "no override: the oldest trusted hop {} did not record dmarc=pass for {from}",
            oldest.domain
        ))
    }
}
