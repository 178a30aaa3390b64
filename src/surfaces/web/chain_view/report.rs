//! What the page shows of one verified message: a row per ARC set, per DKIM signature and
//! per DKIM2 hop, the hop where the chain broke, the DMARC verdict with its tree walk.

use crate::auth::Verification;
use crate::auth::message::RawMessage;
use serde::Serialize;
use std::collections::HashMap;

#[derive(Serialize)]
struct Hop {
    instance: u32,
    domain: String,
    selector: String,
    cv: String,
    seal: &'static str,
    seal_why: String,
    ams: &'static str,
    ams_why: String,
    authserv_id: String,
    recorded: Vec<String>,
    covered: Vec<String>,
}

#[derive(Serialize)]
struct Dkim {
    domain: String,
    selector: String,
    verdict: &'static str,
    reason: String,
    covered: Vec<String>,
}

#[derive(Serialize)]
struct Dmarc {
    verdict: &'static str,
    from_domain: String,
    policy: &'static str,
    record: Option<String>,
    reason: String,
    walk: Vec<String>,
    /// Whether a mailbox provider could show the From domain's BIMI logo for it.
    bimi: String,
}

#[derive(Serialize)]
struct Broken {
    instance: u32,
    domain: String,
    why: String,
}

/// Whether the message is BIMI-eligible: DMARC passes for its From domain and the policy
/// that applies is at enforcement (quarantine or reject, the record not testing, no
/// `sp=none`), as mailbox providers require before they show a logo.
fn bimi_eligibility(v: &crate::auth::Verification) -> String {
    use crate::auth::dmarc::{DmarcVerdict, Policy};
    let d = &v.dmarc;
    if d.verdict != DmarcVerdict::Pass {
        return format!(
            "Not BIMI-eligible: DMARC is {} for {}.",
            d.verdict.as_str(),
            d.from_domain
        );
    }
    match d.record.as_ref().map(|r| (r.at_enforcement(), &r.domain)) {
        Some((Err(why), at)) => {
            format!("Not BIMI-eligible: DMARC passes, but the record at {at} has {why}.")
        }
        Some((Ok(()), _)) if matches!(d.policy, Policy::Quarantine | Policy::Reject) => format!(
            "BIMI-eligible: DMARC passes for {} and its policy ({}) is at enforcement.",
            d.from_domain,
            d.policy.as_str()
        ),
        _ => format!(
            "Not BIMI-eligible: DMARC passes, but the policy for {} is {} (BIMI asks quarantine or reject).",
            d.from_domain,
            d.policy.as_str()
        ),
    }
}

/// One message's verdicts as the page shows them.
#[derive(Serialize)]
pub(crate) struct Report {
    verdict: &'static str,
    reason: String,
    sets: u32,
    oldest_pass: Option<u32>,
    broken_at: Option<Broken>,
    hops: Vec<Hop>,
    dkim: Vec<Dkim>,
    dmarc: Dmarc,
    /// The DKIM2 chain, when the message has DKIM2 fields.
    dkim2: Option<super::dkim2_rows::Dkim2>,
    /// Set when DNS questions went unasked for want of budget: the verdicts that needed them
    /// say temperror, and the page says why before anything else.
    lookups: Option<String>,
}

impl Report {
    /// Says on the page that the check ran out of DNS budget, and how.
    pub(crate) fn budget_exhausted(&mut self, note: String) {
        self.lookups = Some(note);
    }

    /// ARC sets found.
    pub(crate) fn sets(&self) -> u32 {
        self.sets
    }

    /// DKIM signatures checked.
    pub(crate) fn signatures(&self) -> usize {
        self.dkim.len()
    }

    /// `arc=` verdict.
    pub(crate) fn verdict(&self) -> &'static str {
        self.verdict
    }

    /// `dkim2=` verdict, when the message has DKIM2 fields.
    pub(crate) fn dkim2_verdict(&self) -> Option<&'static str> {
        self.dkim2.as_ref().map(|d| d.verdict())
    }
}

/// The `h=` lists of a message's signatures, read in one pass over its fields: the page used
/// to parse the whole message again for every row, which for a pasted message with thousands
/// of fields and tens of signatures cost fields × signatures.
struct Covered {
    /// ARC-Message-Signature `h=` by `i=`, the topmost field of each instance.
    ams: HashMap<String, Vec<String>>,
    /// DKIM-Signature (`d=` lower-cased, `s=`, `h=`), top first.
    dkim: Vec<(String, String, Vec<String>)>,
}

impl Covered {
    fn of(message: &[u8]) -> Self {
        let parsed = RawMessage::parse(message);
        let mut covered = Covered {
            ams: HashMap::new(),
            dkim: Vec::new(),
        };
        for field in &parsed.headers {
            if field.is("ARC-Message-Signature") {
                let v = field.unfolded_value();
                if let Some(i) = tag(&v, "i") {
                    covered.ams.entry(i).or_insert_with(|| h_list(&v));
                }
            } else if field.is("DKIM-Signature") {
                let v = field.unfolded_value();
                if let (Some(d), Some(s)) = (tag(&v, "d"), tag(&v, "s")) {
                    covered.dkim.push((d.to_ascii_lowercase(), s, h_list(&v)));
                }
            }
        }
        covered
    }

    fn ams(&self, instance: u32) -> Vec<String> {
        self.ams
            .get(&instance.to_string())
            .cloned()
            .unwrap_or_default()
    }

    fn dkim(&self, domain: &str, selector: &str) -> Vec<String> {
        self.dkim
            .iter()
            .find(|(d, s, _)| d.eq_ignore_ascii_case(domain) && s == selector)
            .map(|(_, _, h)| h.clone())
            .unwrap_or_default()
    }
}

/// The `h=` list of a signature field's value, lower-cased.
fn h_list(value: &str) -> Vec<String> {
    tag(value, "h")
        .map(|h| {
            h.split(':')
                .map(|f| f.trim().to_ascii_lowercase())
                .filter(|f| !f.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// Tag `name` of a `tag=value; ...` list, without spaces.
fn tag(value: &str, name: &str) -> Option<String> {
    value.split(';').find_map(|t| {
        let (k, v) = t.split_once('=')?;
        (k.trim() == name).then(|| v.split_whitespace().collect::<String>())
    })
}

fn hops(covered: &Covered, v: &Verification) -> Vec<Hop> {
    v.arc
        .hops
        .iter()
        .map(|h| Hop {
            instance: h.instance,
            domain: h.domain.clone(),
            selector: h.selector.clone(),
            cv: h.cv.clone(),
            seal: h.seal.word(),
            seal_why: h.seal.why().unwrap_or_default().to_string(),
            ams: h.ams.word(),
            ams_why: h.ams.why().unwrap_or_default().to_string(),
            authserv_id: h.authserv_id.clone(),
            recorded: h.recorded.clone(),
            covered: covered.ams(h.instance),
        })
        .collect()
}

fn dkim(covered: &Covered, v: &Verification) -> Vec<Dkim> {
    v.dkim
        .iter()
        .map(|d| Dkim {
            domain: d.domain.clone(),
            selector: d.selector.clone(),
            verdict: d.verdict.as_str(),
            reason: d.reason.clone(),
            covered: covered.dkim(&d.domain, &d.selector),
        })
        .collect()
}

/// The oldest hop whose seal or claim broke the chain: the one a reader looks for first.
fn broken_at(v: &Verification) -> Option<Broken> {
    v.arc
        .hops
        .iter()
        .rev()
        .find(|h| h.seal.why().is_some() || h.cv == "fail")
        .map(|h| Broken {
            instance: h.instance,
            domain: h.domain.clone(),
            why: h.seal.why().map(str::to_string).unwrap_or_else(|| {
                format!(
                    "its seal claims cv=fail: {} found the chain it received already failing",
                    h.domain
                )
            }),
        })
}

/// The page's view of `message` (CRLF wire form) and its verdicts `v`.
pub(crate) fn report(message: &[u8], v: &Verification) -> Report {
    let covered = Covered::of(message);
    Report {
        verdict: v.arc.verdict.as_str(),
        reason: v.arc.reason.clone(),
        sets: v.arc.instances,
        oldest_pass: v.arc.oldest_pass,
        broken_at: broken_at(v),
        hops: hops(&covered, v),
        dkim: dkim(&covered, v),
        dmarc: Dmarc {
            verdict: v.dmarc.verdict.as_str(),
            from_domain: v.dmarc.from_domain.clone(),
            policy: v.dmarc.policy.as_str(),
            record: v.dmarc.record.as_ref().map(|r| r.domain.clone()),
            reason: v.dmarc.reason.clone(),
            walk: v.dmarc.walk.clone(),
            bimi: bimi_eligibility(v),
        },
        dkim2: v.dkim2.as_ref().map(super::dkim2_rows::rows),
        lookups: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covered_fields_come_from_the_matching_signature() {
        let m = b"ARC-Message-Signature: i=2; a=rsa-sha256; d=b.test; s=s; h=From:To; bh=x; b=y\r\n\
                  ARC-Message-Signature: i=1; a=rsa-sha256; d=a.test; s=s; h=from : subject\r\n\t:date; bh=x; b=y\r\n\
                  DKIM-Signature: v=1; d=A.test; s=k; h=from:x; bh=x; b=y\r\n\
                  DKIM-Signature: v=1; d=a.test; s=k; h=from:y; bh=x; b=y\r\n\r\nbody\r\n";
        let covered = Covered::of(m);
        assert_eq!(covered.ams(1), vec!["from", "subject", "date"]);
        assert_eq!(covered.ams(2), vec!["from", "to"]);
        assert!(covered.ams(3).is_empty());
        // The topmost signature of a d=/s= pair, as the verifier reports them.
        assert_eq!(covered.dkim("a.test", "k"), vec!["from", "x"]);
        assert!(covered.dkim("a.test", "other").is_empty());
    }
}
