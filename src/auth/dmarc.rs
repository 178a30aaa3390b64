//! DMARC (RFC 7489): policy discovery with organizational-domain fallback, alignment, and the
//! policy that applies, as data the list stage acts on.

use super::dkim::{DkimOutcome, DkimVerdict};
use super::dns::{DnsError, Resolver};
use super::spf::{SpfOutcome, SpfVerdict};
use super::tags::TagList;
use serde::{Deserialize, Serialize};

/// A domain owner's requested handling of failing mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Monitor only.
    None,
    /// Treat as suspicious.
    Quarantine,
    /// Refuse.
    Reject,
}

impl Policy {
    fn parse(s: &str) -> Option<Policy> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" => Some(Policy::None),
            "quarantine" => Some(Policy::Quarantine),
            "reject" => Some(Policy::Reject),
            _ => None,
        }
    }

    /// The record spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::None => "none",
            Policy::Quarantine => "quarantine",
            Policy::Reject => "reject",
        }
    }
}

/// DMARC's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DmarcVerdict {
    /// An aligned DKIM or SPF pass.
    Pass,
    /// A policy exists and nothing aligned passed.
    Fail,
    /// No policy published.
    None,
    /// DNS failed.
    Temperror,
    /// No usable author domain (missing or several From addresses).
    Permerror,
}

impl DmarcVerdict {
    /// The RFC 8601 spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            DmarcVerdict::Pass => "pass",
            DmarcVerdict::Fail => "fail",
            DmarcVerdict::None => "none",
            DmarcVerdict::Temperror => "temperror",
            DmarcVerdict::Permerror => "permerror",
        }
    }
}

/// A published DMARC record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DmarcRecord {
    /// Where it was found (`example.org` for `_dmarc.example.org`).
    pub domain: String,
    /// `p=`.
    pub policy: Policy,
    /// `sp=` (defaults to `p=`).
    pub subdomain_policy: Policy,
    /// `adkim=s`.
    pub strict_dkim: bool,
    /// `aspf=s`.
    pub strict_spf: bool,
    /// `pct=`.
    pub pct: u8,
}

impl DmarcRecord {
    /// Parses a TXT value; `None` when it is not a DMARC record at all.
    pub fn parse(domain: &str, txt: &str) -> Option<Self> {
        let tags = TagList::parse(txt.trim_end_matches(';')).ok()?;
        if tags.iter().next() != Some(("v", "DMARC1")) {
            return None;
        }
        // RFC 7489 §6.6.3: an unknown p= with rua present is p=none; we are lenient either way
        // because refusing mail over a typo in someone else's record helps nobody.
        let policy = tags
            .get("p")
            .and_then(Policy::parse)
            .unwrap_or(Policy::None);
        Some(DmarcRecord {
            domain: domain.to_string(),
            policy,
            subdomain_policy: tags.get("sp").and_then(Policy::parse).unwrap_or(policy),
            strict_dkim: tags.get("adkim") == Some("s"),
            strict_spf: tags.get("aspf") == Some("s"),
            pct: tags
                .get("pct")
                .and_then(|p| p.parse::<u8>().ok())
                .map_or(100, |p| p.min(100)),
        })
    }
}

/// DMARC's outcome for one message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DmarcOutcome {
    /// The verdict.
    pub verdict: DmarcVerdict,
    /// The RFC5322.From domain.
    pub from_domain: String,
    /// The record that applied, if any.
    pub record: Option<DmarcRecord>,
    /// The policy the author's domain asks for (p=, or sp= for a subdomain via its
    /// organizational domain), whatever the verdict: the list stage mitigates on this.
    pub policy: Policy,
    /// What a receiver would do with this message: the policy when the verdict is fail (after
    /// pct sampling), else none.
    pub disposition: Policy,
    /// An aligned DKIM pass, naming the d=.
    pub dkim_aligned: Option<String>,
    /// Whether SPF passed aligned.
    pub spf_aligned: bool,
    /// Why, for the report.
    pub reason: String,
}

/// The organizational domain of `domain` from the Public Suffix List.
pub fn organizational_domain(domain: &str) -> String {
    let lower = domain.trim_end_matches('.').to_ascii_lowercase();
    psl::domain_str(&lower).map(str::to_string).unwrap_or(lower)
}

fn aligned(a: &str, b: &str, strict: bool) -> bool {
    if strict {
        a.eq_ignore_ascii_case(b)
    } else {
        organizational_domain(a) == organizational_domain(b)
    }
}

/// Finds the DMARC record for `from_domain`: at the domain, else at its organizational domain.
/// Returns the record and whether it came from the organizational domain.
pub async fn discover(
    resolver: &Resolver,
    from_domain: &str,
) -> Result<Option<(DmarcRecord, bool)>, DnsError> {
    if let Some(r) = lookup(resolver, from_domain).await? {
        return Ok(Some((r, false)));
    }
    let org = organizational_domain(from_domain);
    if org != from_domain.to_ascii_lowercase()
        && let Some(r) = lookup(resolver, &org).await?
    {
        return Ok(Some((r, true)));
    }
    Ok(None)
}

async fn lookup(resolver: &Resolver, domain: &str) -> Result<Option<DmarcRecord>, DnsError> {
    let records = match resolver.txt(&format!("_dmarc.{domain}")).await {
        Ok(r) => r,
        Err(DnsError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let found: Vec<DmarcRecord> = records
        .iter()
        .filter_map(|t| DmarcRecord::parse(domain, &String::from_utf8_lossy(t)))
        .collect();
    // RFC 7489 §6.6.3: more than one record means none.
    Ok(if found.len() == 1 {
        found.into_iter().next()
    } else {
        None
    })
}

/// Evaluates DMARC for `from_domain` given the DKIM and SPF results.
pub async fn evaluate(
    resolver: &Resolver,
    from_domain: Option<&str>,
    dkim: &[DkimOutcome],
    spf: Option<&SpfOutcome>,
) -> DmarcOutcome {
    let mut out = DmarcOutcome {
        verdict: DmarcVerdict::None,
        from_domain: from_domain.unwrap_or_default().to_string(),
        record: None,
        policy: Policy::None,
        disposition: Policy::None,
        dkim_aligned: None,
        spf_aligned: false,
        reason: String::new(),
    };
    let Some(from) = from_domain else {
        out.verdict = DmarcVerdict::Permerror;
        out.reason = "no single RFC5322.From domain".into();
        return out;
    };
    let (record, via_org) = match discover(resolver, from).await {
        Ok(Some(found)) => found,
        Ok(None) => {
            out.reason = format!("no DMARC record for {from}");
            return out;
        }
        Err(e) => {
            out.verdict = DmarcVerdict::Temperror;
            out.reason = e.to_string();
            return out;
        }
    };
    out.policy = if via_org {
        record.subdomain_policy
    } else {
        record.policy
    };
    out.dkim_aligned = dkim
        .iter()
        .find(|d| d.verdict == DkimVerdict::Pass && aligned(&d.domain, from, record.strict_dkim))
        .map(|d| d.domain.clone());
    out.spf_aligned = spf.is_some_and(|s| {
        s.mail_from == SpfVerdict::Pass && aligned(&s.mail_from_domain, from, record.strict_spf)
    });
    let undecided = undecided_identifier(dkim, spf, from, &record);
    if out.dkim_aligned.is_some() || out.spf_aligned {
        out.verdict = DmarcVerdict::Pass;
    } else if let Some(which) = undecided {
        // An aligned identifier could not be checked: it might pass once DNS answers.
        out.verdict = DmarcVerdict::Temperror;
        out.reason = format!("no aligned pass for {from} yet: {which} could not be checked");
    } else {
        out.verdict = DmarcVerdict::Fail;
        out.reason = format!(
            "no aligned DKIM or SPF pass for {from} (p={})",
            out.policy.as_str()
        );
        out.disposition = if record.pct >= 100 || sampled(record.pct) {
            out.policy
        } else {
            downgrade(out.policy)
        };
    }
    out.record = Some(record);
    out
}

/// An aligned DKIM signature or SPF identity whose check failed temporarily: the only
/// temporary errors that can still turn a DMARC failure into a pass.
fn undecided_identifier(
    dkim: &[DkimOutcome],
    spf: Option<&SpfOutcome>,
    from: &str,
    record: &DmarcRecord,
) -> Option<String> {
    if let Some(d) = dkim.iter().find(|d| {
        d.verdict == DkimVerdict::Temperror && aligned(&d.domain, from, record.strict_dkim)
    }) {
        return Some(format!("the DKIM signature of {}", d.domain));
    }
    spf.filter(|s| {
        s.mail_from == SpfVerdict::Temperror
            && aligned(&s.mail_from_domain, from, record.strict_spf)
    })
    .map(|s| format!("SPF for {}", s.mail_from_domain))
}

/// RFC 7489 §6.6.4: mail not sampled gets the next less strict treatment.
fn downgrade(p: Policy) -> Policy {
    match p {
        Policy::Reject => Policy::Quarantine,
        _ => Policy::None,
    }
}

fn sampled(pct: u8) -> bool {
    let mut b = [0u8; 1];
    if aws_lc_rs::rand::fill(&mut b).is_err() {
        return true;
    }
    (u16::from(b[0]) * 100 / 256) < u16::from(pct)
}

/// The one author of `message`: its display name (decoded, possibly empty) and its address
/// (lower-cased), or why there is not exactly one. Exactly one From field holding exactly one
/// mailbox with an address, as DMARC needs (RFC 7489 §6.6.1); everything that decides who
/// posted (membership, DMARC, the From rewrite) uses this one answer.
pub fn single_author(message: &[u8]) -> Result<(String, String), String> {
    let parsed = mail_parser::MessageParser::default()
        .parse_headers(message)
        .ok_or_else(|| "message headers cannot be parsed".to_string())?;
    let froms = parsed.header_values("From").count();
    if froms != 1 {
        return Err(format!("{froms} From fields"));
    }
    let from = parsed
        .from()
        .ok_or_else(|| "From has no address".to_string())?;
    let mut addrs = from.iter();
    let first = addrs.next();
    let address = first
        .and_then(|a| a.address())
        .filter(|a| !a.trim().is_empty())
        .ok_or_else(|| "From has no address".to_string())?;
    if addrs.next().is_some() {
        return Err("From has several addresses".into());
    }
    let name = first.and_then(|a| a.name()).unwrap_or_default().to_string();
    Ok((name, address.to_ascii_lowercase()))
}

/// The domain of the single RFC5322.From address, or why there is none.
pub fn author_domain(message: &[u8]) -> Result<String, String> {
    let (_, first) = single_author(message)?;
    first
        .rsplit_once('@')
        .map(|(_, d)| d.trim_end_matches('>').to_ascii_lowercase())
        .filter(|d| !d.is_empty())
        .ok_or_else(|| format!("From address {first:?} has no domain"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn org_domain_and_alignment() {
        assert_eq!(organizational_domain("mail.example.co.uk"), "example.co.uk");
        assert!(aligned("mail.example.org", "example.org", false));
        assert!(!aligned("mail.example.org", "example.org", true));
    }

    #[test]
    fn record_parsing() {
        let r = DmarcRecord::parse("x.example", "v=DMARC1; p=reject; sp=none; pct=50; adkim=s")
            .expect("valid");
        assert_eq!(
            (r.policy, r.subdomain_policy, r.pct, r.strict_dkim),
            (Policy::Reject, Policy::None, 50, true)
        );
        assert!(DmarcRecord::parse("x", "v=spf1 -all").is_none());
    }

    #[test]
    fn author_domains() {
        assert_eq!(
            author_domain(b"From: \"A, B\" <a@Example.ORG>\r\n\r\n").as_deref(),
            Ok("example.org")
        );
        assert!(author_domain(b"From: a@x.example, b@y.example\r\n\r\n").is_err());
        assert!(author_domain(b"From: a@x.example\r\nFrom: b@y.example\r\n\r\n").is_err());
    }
}
