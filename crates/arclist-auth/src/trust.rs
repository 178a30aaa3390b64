//! Stage 4: trusted intermediaries (RFC 8617 §7.2 local policy).
//!
//! When DMARC fails but the post arrived with a passing ARC chain whose every sealer the list
//! trusts, the results the oldest hop recorded may stand in for ours: the post was genuine when
//! it reached that first trusted hop, which then changed it (a footer, a subject tag).

use crate::Verification;
use crate::arc::ArcVerdict;
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
}

impl TrustDecision {
    fn no(reason: impl Into<String>) -> Self {
        TrustDecision {
            overridden: false,
            sealers: Vec::new(),
            reason: reason.into(),
        }
    }

    /// Records an override in our Authentication-Results (the DMARC result keeps `fail`, with
    /// the reason and `policy.arc-override` naming the sealers) and counts it.
    pub fn annotate(&self, results: &mut crate::results::AuthResults) {
        if !self.overridden {
            return;
        }
        if let Some(dmarc) = results.results.iter_mut().find(|r| r.method == "dmarc") {
            dmarc.comment = Some(self.reason.clone());
            dmarc
                .properties
                .push(("policy.arc-override".into(), self.sealers.join(",")));
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

/// Decides whether `v`'s ARC chain overrides its DMARC failure for a list trusting `trusted`.
pub fn evaluate(v: &Verification, trusted_sealers: &[String]) -> TrustDecision {
    if v.dmarc.verdict != DmarcVerdict::Fail {
        return TrustDecision::no("no override needed: DMARC did not fail");
    }
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
