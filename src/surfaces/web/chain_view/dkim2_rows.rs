//! The DKIM2 part of the chain viewer's page: the chain's verdict and a row per hop (who
//! signed, the instance it signed, the envelope it bound, the Recipe it introduced and whether
//! it was applied, its verdict and reason), beside the ARC sets.

use crate::auth::dkim2::{Dkim2Report, HopReport};
use serde::Serialize;

/// One DKIM2-Signature as the page shows it.
#[derive(Serialize)]
struct Hop {
    i: u32,
    domain: String,
    selectors: String,
    m: u32,
    /// `mf=… rt=…`, or `nd=…` for a hand-over on the same system.
    envelope: String,
    /// The Recipe this hop introduced, described, and whether it was undone to check the
    /// instance before it.
    recipe: Option<String>,
    recipe_applied: bool,
    verdict: &'static str,
    reason: String,
}

/// The DKIM2 chain as the page shows it; absent from the page when the message has no
/// DKIM2 fields.
#[derive(Serialize)]
pub(super) struct Dkim2 {
    verdict: &'static str,
    reason: String,
    draft: String,
    original_verified: bool,
    hops: Vec<Hop>,
}

impl Dkim2 {
    /// The chain's `dkim2=` verdict, for the request log.
    pub(super) fn verdict(&self) -> &'static str {
        self.verdict
    }
}

fn hop(h: &HopReport) -> Hop {
    Hop {
        i: h.i,
        domain: h.domain.clone(),
        selectors: h.selectors.join(", "),
        m: h.m,
        envelope: match &h.next_domain {
            Some(nd) => format!("nd={nd}"),
            None => format!("mf={} rt={}", h.mail_from, h.rcpt_to.join(",")),
        },
        recipe: h.recipe.clone(),
        recipe_applied: h.recipe_applied,
        verdict: h.verdict.as_str(),
        reason: h.reason.clone(),
    }
}

/// The page's view of a verified DKIM2 chain (hops newest first, as the ARC sets are).
pub(super) fn rows(report: &Dkim2Report) -> Dkim2 {
    Dkim2 {
        verdict: report.verdict.as_str(),
        reason: report.reason.clone(),
        draft: report.draft.clone(),
        original_verified: report.original_verified,
        hops: report.hops.iter().map(hop).collect(),
    }
}
