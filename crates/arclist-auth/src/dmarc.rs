//! DMARC (RFC 9989, which obsoletes RFC 7489 and RFC 9091): policy discovery and the
//! organizational domain by the DNS tree walk (no Public Suffix List), `psd=`, `np=`, `sp=`
//! and `t=`, alignment, and the policy that applies, as data the list stage acts on.

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

/// A published DMARC record (RFC 9989 §4.7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DmarcRecord {
    /// Where it was found (`example.org` for `_dmarc.example.org`).
    pub domain: String,
    /// `p=` (`none` when absent or invalid in a record that asks for reports).
    pub policy: Policy,
    /// `sp=`, for subdomains that find this record by the tree walk (else `p=` applies).
    #[serde(default)]
    pub subdomain_policy: Option<Policy>,
    /// `np=`, for author domains that do not exist (else `sp=`, then `p=`).
    #[serde(default)]
    pub nonexistent_policy: Option<Policy>,
    /// `psd=y` (a public suffix: registrations happen below it), `psd=n` (an organizational
    /// domain), or neither.
    #[serde(default)]
    pub psd: Option<bool>,
    /// `t=y`: the owner is testing; apply the policy one step softer.
    #[serde(default)]
    pub testing: bool,
    /// `adkim=s`.
    pub strict_dkim: bool,
    /// `aspf=s`.
    pub strict_spf: bool,
    /// `rua=`: where the owner wants aggregate reports (mailto: URIs).
    #[serde(default)]
    pub rua: Vec<String>,
}

impl DmarcRecord {
    /// Parses a TXT value; `None` when it is not a usable DMARC record: not `v=DMARC1`, or no
    /// valid `p=` and no `rua=` (RFC 9989 §4.7: with `rua=` it counts as `p=none`). Unknown
    /// tags, and those RFC 9989 removed (`pct`, `rf`, `ri`), are ignored.
    pub fn parse(domain: &str, txt: &str) -> Option<Self> {
        let tags = TagList::parse(txt.trim().trim_end_matches(';')).ok()?;
        if tags.iter().next() != Some(("v", "DMARC1")) {
            return None;
        }
        let policy = match tags.get("p").and_then(Policy::parse) {
            Some(p) => p,
            None if tags.get("rua").is_some() => Policy::None,
            None => return None,
        };
        let flag = |name: &str| tags.get(name).map(|v| v.trim().to_ascii_lowercase());
        Some(DmarcRecord {
            domain: domain.trim_end_matches('.').to_ascii_lowercase(),
            policy,
            subdomain_policy: tags.get("sp").and_then(Policy::parse),
            nonexistent_policy: tags.get("np").and_then(Policy::parse),
            psd: match flag("psd").as_deref() {
                Some("y") => Some(true),
                Some("n") => Some(false),
                _ => None,
            },
            testing: flag("t").as_deref() == Some("y"),
            strict_dkim: flag("adkim").as_deref() == Some("s"),
            strict_spf: flag("aspf").as_deref() == Some("s"),
            rua: tags
                .get("rua")
                .map(|v| {
                    v.split(',')
                        .map(|u| u.trim().to_string())
                        .filter(|u| !u.is_empty())
                        .take(4)
                        .collect()
                })
                .unwrap_or_default(),
        })
    }
}

impl DmarcRecord {
    /// Whether the policy is at enforcement as BIMI asks of a domain whose mail may show a
    /// logo: `p=quarantine` or `p=reject`, no `sp=none` for subdomains, not testing (`t=y`);
    /// else what falls short. (`pct=`, which RFC 9989 removed, is not kept here: a caller
    /// with the record's text checks that itself.)
    pub fn at_enforcement(&self) -> Result<(), String> {
        if !matches!(self.policy, Policy::Quarantine | Policy::Reject) {
            return Err(format!("p={}", self.policy.as_str()));
        }
        if self.subdomain_policy == Some(Policy::None) {
            return Err("sp=none".into());
        }
        if self.testing {
            return Err("t=y (testing)".into());
        }
        Ok(())
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
    /// The policy the author's domain asks for (`p=` at the author domain; `np=`, `sp=` or
    /// `p=` from a record higher up; one step softer under `t=y`), whatever the verdict: the
    /// list stage mitigates on this.
    pub policy: Policy,
    /// What a receiver would do with this message: the policy when the verdict is fail, else
    /// none.
    pub disposition: Policy,
    /// An aligned DKIM pass, naming the d=.
    pub dkim_aligned: Option<String>,
    /// Whether SPF passed aligned.
    pub spf_aligned: bool,
    /// The author's organizational domain, as the tree walk found it (empty when alignment
    /// did not need it: every identifier was the author domain itself, or none passed).
    #[serde(default)]
    pub organizational_domain: String,
    /// The tree walk, one line per name asked (`arclist verify` prints it).
    #[serde(default)]
    pub walk: Vec<String>,
    /// Why, for the report.
    pub reason: String,
}

/// Most names one tree walk asks (RFC 9989 §4.10).
pub const MAX_WALK: usize = 8;

/// The names an RFC 9989 tree walk asks for `domain`, in order: the domain itself; then, for
/// a name of eight labels or more, its rightmost seven; then one label fewer each step, down
/// to a single label. Never more than [`MAX_WALK`].
pub fn walk_names(domain: &str) -> Vec<String> {
    let name = domain.trim_end_matches('.').to_ascii_lowercase();
    let labels: Vec<&str> = name.split('.').filter(|l| !l.is_empty()).collect();
    if labels.is_empty() {
        return Vec::new();
    }
    let mut out = vec![labels.join(".")];
    let mut keep = labels.len().min(MAX_WALK) - 1;
    while keep >= 1 && !labels.is_empty() {
        out.push(labels[labels.len() - keep..].join("."));
        keep -= 1;
    }
    out.truncate(MAX_WALK);
    out
}

/// Tree walks for one message, remembering each answer, so the author domain's walk and the
/// identifiers' walks (alignment) ask each name once.
pub struct Walker<'a> {
    resolver: &'a Resolver,
    seen: std::collections::HashMap<String, Option<DmarcRecord>>,
    orgs: std::collections::HashMap<String, String>,
    /// What was asked and found, in order.
    pub log: Vec<String>,
}

impl<'a> Walker<'a> {
    /// A walker asking `resolver`.
    pub fn new(resolver: &'a Resolver) -> Self {
        Walker {
            resolver,
            seen: std::collections::HashMap::new(),
            orgs: std::collections::HashMap::new(),
            log: Vec::new(),
        }
    }

    /// The one usable DMARC record at `_dmarc.DOMAIN`, if there is exactly one.
    async fn record_at(&mut self, domain: &str) -> Result<Option<DmarcRecord>, DnsError> {
        if let Some(found) = self.seen.get(domain) {
            return Ok(found.clone());
        }
        let found = lookup(self.resolver, domain).await?;
        self.log.push(match &found {
            Some(r) => format!("_dmarc.{domain}: p={}{}", r.policy.as_str(), describe(r)),
            None => format!("_dmarc.{domain}: no (single, valid) record"),
        });
        self.seen.insert(domain.to_string(), found.clone());
        Ok(found)
    }

    /// Policy discovery (RFC 9989 §4.10.1): the first record on the walk from the author
    /// domain, and whether it is at the author domain itself.
    pub async fn policy_record(
        &mut self,
        author: &str,
    ) -> Result<Option<(DmarcRecord, bool)>, DnsError> {
        for (i, name) in walk_names(author).into_iter().enumerate() {
            if let Some(r) = self.record_at(&name).await? {
                return Ok(Some((r, i == 0)));
            }
        }
        Ok(None)
    }

    /// The organizational domain of `domain` (RFC 9989 §4.10.2): where a `psd=n` record is;
    /// else the name just below a `psd=y` record; else the highest name with a record; else
    /// `domain` itself.
    pub async fn organizational_domain(&mut self, domain: &str) -> Result<String, DnsError> {
        if let Some(org) = self.orgs.get(domain) {
            return Ok(org.clone());
        }
        let org = self.find_organizational_domain(domain).await?;
        self.orgs.insert(domain.to_string(), org.clone());
        Ok(org)
    }

    async fn find_organizational_domain(&mut self, domain: &str) -> Result<String, DnsError> {
        let names = walk_names(domain);
        if names.is_empty() {
            return Ok(domain.to_string());
        }
        let mut highest = None;
        for (i, name) in names.iter().enumerate() {
            let Some(record) = self.record_at(name).await? else {
                continue;
            };
            match record.psd {
                Some(false) => return Ok(name.clone()),
                Some(true) => return Ok(below(domain, name).unwrap_or_else(|| names[0].clone())),
                None => highest = Some(i),
            }
        }
        Ok(highest.map_or_else(|| names[0].clone(), |i| names[i].clone()))
    }

    /// Whether identifier `id` aligns with author domain `author`: the same name (strict), or
    /// the same organizational domain (relaxed). Names outside the author's organizational
    /// domain are told apart without a walk of their own.
    pub async fn aligned(
        &mut self,
        id: &str,
        author: &str,
        strict: bool,
    ) -> Result<bool, DnsError> {
        let (id, author) = (
            id.trim_end_matches('.').to_ascii_lowercase(),
            author.trim_end_matches('.').to_ascii_lowercase(),
        );
        if id == author {
            return Ok(true);
        }
        if strict {
            return Ok(false);
        }
        let org = self.organizational_domain(&author).await?;
        if !(id == org || id.ends_with(&format!(".{org}"))) {
            return Ok(false);
        }
        Ok(self.organizational_domain(&id).await? == org)
    }
}

/// The name one label below `upper` on the way to `domain` (`b.c` for `a.b.c` under `c`).
fn below(domain: &str, upper: &str) -> Option<String> {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let rest = domain.strip_suffix(&format!(".{upper}"))?;
    let label = rest.rsplit('.').next()?;
    Some(format!("{label}.{upper}"))
}

fn describe(r: &DmarcRecord) -> String {
    let mut out = String::new();
    if let Some(sp) = r.subdomain_policy {
        out.push_str(&format!(" sp={}", sp.as_str()));
    }
    if let Some(np) = r.nonexistent_policy {
        out.push_str(&format!(" np={}", np.as_str()));
    }
    match r.psd {
        Some(true) => out.push_str(" psd=y"),
        Some(false) => out.push_str(" psd=n"),
        None => {}
    }
    if r.testing {
        out.push_str(" t=y");
    }
    out
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
    // More than one record means none (RFC 9989 §4.10).
    Ok(if found.len() == 1 {
        found.into_iter().next()
    } else {
        None
    })
}

/// Whether `domain` does not exist, as `np=` means it: no A, AAAA or MX record answers for
/// it (our resolver does not tell NXDOMAIN from an empty answer, so a name with neither
/// addresses nor mail exchangers counts as non-existent: it could not receive a reply).
async fn nonexistent(resolver: &Resolver, domain: &str) -> Result<bool, DnsError> {
    let none = |r: Result<bool, DnsError>| match r {
        Ok(found) => Ok(!found),
        Err(DnsError::NotFound { .. }) => Ok(true),
        Err(e) => Err(e),
    };
    let (ips, mx) = tokio::join!(resolver.ips(domain), resolver.mx(domain));
    Ok(none(ips.map(|v| !v.is_empty()))? && none(mx.map(|v| !v.is_empty()))?)
}

/// The policy that applies to `author` from `record` (found at the author domain when
/// `at_author`): RFC 9989 §4.10.1, softened one step under `t=y` (§4.7). Whether the author
/// domain exists is asked only when an `np=` could apply; if DNS cannot say, `sp=`/`p=` apply.
async fn applicable_policy(
    resolver: &Resolver,
    author: &str,
    record: &DmarcRecord,
    at_author: bool,
) -> Policy {
    let policy = if at_author {
        record.policy
    } else {
        match record.nonexistent_policy {
            Some(np) if nonexistent(resolver, author).await.unwrap_or(false) => np,
            _ => record.subdomain_policy.unwrap_or(record.policy),
        }
    };
    if record.testing {
        downgrade(policy)
    } else {
        policy
    }
}

/// Evaluates DMARC (RFC 9989) for `from_domain` given the DKIM and SPF results.
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
        organizational_domain: String::new(),
        walk: Vec::new(),
        reason: String::new(),
    };
    let Some(from) = from_domain else {
        out.verdict = DmarcVerdict::Permerror;
        out.reason = "no single RFC5322.From domain".into();
        return out;
    };
    let mut walker = Walker::new(resolver);
    let judged = judge(&mut walker, &mut out, from, dkim, spf).await;
    out.walk = std::mem::take(&mut walker.log);
    if let Err(e) = judged {
        out.verdict = DmarcVerdict::Temperror;
        out.reason = e.to_string();
    }
    out
}

/// Discovery, alignment and the verdict, into `out`. A DNS failure in discovery is returned
/// as is; one while checking an identifier's alignment matters only when nothing else aligned
/// passed (then the verdict is temperror: that identifier might have aligned).
async fn judge(
    walker: &mut Walker<'_>,
    out: &mut DmarcOutcome,
    from: &str,
    dkim: &[DkimOutcome],
    spf: Option<&SpfOutcome>,
) -> Result<(), DnsError> {
    let Some((record, at_author)) = walker.policy_record(from).await? else {
        out.reason = format!("no DMARC record for {from} (tree walk)");
        return Ok(());
    };
    out.policy = applicable_policy(walker.resolver, from, &record, at_author).await;
    let mut unsure = None;
    for d in dkim.iter().filter(|d| d.verdict == DkimVerdict::Pass) {
        match walker.aligned(&d.domain, from, record.strict_dkim).await {
            Ok(true) => {
                out.dkim_aligned = Some(d.domain.clone());
                break;
            }
            Ok(false) => {}
            Err(e) => unsure = Some(format!("alignment of {}: {e}", d.domain)),
        }
    }
    if out.dkim_aligned.is_none()
        && let Some(s) = spf.filter(|s| s.mail_from == SpfVerdict::Pass)
    {
        match walker
            .aligned(&s.mail_from_domain, from, record.strict_spf)
            .await
        {
            Ok(aligned) => out.spf_aligned = aligned,
            Err(e) => unsure = Some(format!("alignment of {}: {e}", s.mail_from_domain)),
        }
    }
    // Only walked for when alignment needed it (an identifier other than the author domain).
    out.organizational_domain = walker
        .orgs
        .get(&from.trim_end_matches('.').to_ascii_lowercase())
        .cloned()
        .unwrap_or_default();
    if out.dkim_aligned.is_some() || out.spf_aligned {
        out.verdict = DmarcVerdict::Pass;
        out.record = Some(record);
        return Ok(());
    }
    let undecided = match unsure {
        Some(why) => Some(why),
        None => undecided_identifier(walker, dkim, spf, from, &record).await?,
    };
    if let Some(which) = undecided {
        // An aligned identifier could not be checked: it might pass once DNS answers.
        out.verdict = DmarcVerdict::Temperror;
        out.reason = format!("no aligned pass for {from} yet: {which} could not be checked");
    } else {
        out.verdict = DmarcVerdict::Fail;
        out.reason = format!(
            "no aligned DKIM or SPF pass for {from} (p={}{}, record at {})",
            out.policy.as_str(),
            if record.testing { ", t=y" } else { "" },
            record.domain
        );
        out.disposition = out.policy;
    }
    out.record = Some(record);
    Ok(())
}

/// An aligned DKIM signature or SPF identity whose check failed temporarily: the only
/// temporary errors that can still turn a DMARC failure into a pass.
async fn undecided_identifier(
    walker: &mut Walker<'_>,
    dkim: &[DkimOutcome],
    spf: Option<&SpfOutcome>,
    from: &str,
    record: &DmarcRecord,
) -> Result<Option<String>, DnsError> {
    for d in dkim.iter().filter(|d| d.verdict == DkimVerdict::Temperror) {
        if walker.aligned(&d.domain, from, record.strict_dkim).await? {
            return Ok(Some(format!("the DKIM signature of {}", d.domain)));
        }
    }
    if let Some(s) = spf.filter(|s| s.mail_from == SpfVerdict::Temperror)
        && walker
            .aligned(&s.mail_from_domain, from, record.strict_spf)
            .await?
    {
        return Ok(Some(format!("SPF for {}", s.mail_from_domain)));
    }
    Ok(None)
}

/// One step softer: what `t=y` asks (RFC 9989 §4.7): reject as quarantine, quarantine as
/// none.
fn downgrade(p: Policy) -> Policy {
    match p {
        Policy::Reject => Policy::Quarantine,
        _ => Policy::None,
    }
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
    fn walk_names_follow_rfc_9989() {
        assert_eq!(
            walk_names("a.mail.example.com."),
            [
                "a.mail.example.com",
                "mail.example.com",
                "example.com",
                "com"
            ]
        );
        assert_eq!(
            walk_names("a.b.c.d.e.f.g.h.i.j"),
            [
                "a.b.c.d.e.f.g.h.i.j",
                "d.e.f.g.h.i.j",
                "e.f.g.h.i.j",
                "f.g.h.i.j",
                "g.h.i.j",
                "h.i.j",
                "i.j",
                "j"
            ]
        );
        assert_eq!(walk_names("com"), ["com"]);
        assert_eq!(
            below("x.mail.example.com", "com").as_deref(),
            Some("example.com")
        );
    }

    #[test]
    fn enforcement_as_bimi_asks_it() {
        let at = |txt: &str| DmarcRecord::parse("d.example", txt).map(|r| r.at_enforcement());
        assert_eq!(at("v=DMARC1; p=reject"), Some(Ok(())));
        assert_eq!(at("v=DMARC1; p=quarantine; sp=reject"), Some(Ok(())));
        assert_eq!(at("v=DMARC1; p=none"), Some(Err("p=none".into())));
        assert_eq!(
            at("v=DMARC1; p=reject; sp=none"),
            Some(Err("sp=none".into()))
        );
        assert_eq!(
            at("v=DMARC1; p=reject; t=y"),
            Some(Err("t=y (testing)".into()))
        );
    }

    #[test]
    fn record_parsing() {
        let r = DmarcRecord::parse(
            "x.example",
            "v=DMARC1; p=reject; sp=none; np=quarantine; psd=n; t=y; pct=50; adkim=s; zz=1",
        )
        .expect("valid");
        assert_eq!(
            (
                r.policy,
                r.subdomain_policy,
                r.nonexistent_policy,
                r.psd,
                r.testing,
                r.strict_dkim
            ),
            (
                Policy::Reject,
                Some(Policy::None),
                Some(Policy::Quarantine),
                Some(false),
                true,
                true
            )
        );
        assert!(DmarcRecord::parse("x", "v=spf1 -all").is_none());
        // No valid p=: with rua= it is p=none, without it is no record at all.
        let r =
            DmarcRecord::parse("x", "v=DMARC1; rua=mailto:r@x.example; unknown=tag").expect("rua");
        assert_eq!(r.policy, Policy::None);
        assert!(DmarcRecord::parse("x", "v=DMARC1; p=bogus").is_none());
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
