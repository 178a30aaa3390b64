//! `arclist check-dns`: what receivers will check about a list (or forwarding) domain, checked
//! the way they check it, each finding one line with the fix.
//!
//! - the DKIM/ARC key record at `SELECTOR._domainkey.DOMAIN` holds the public half of the
//!   configured private key, and is long enough;
//! - SPF for the envelope-sender domain authorizes each outbound IP (evaluated, not
//!   string-matched) within the ten-lookup limit;
//! - the domain publishes DMARC (Gmail and Yahoo require it of bulk senders);
//! - MX for the domain exists (posts and bounces must reach arclist);
//! - each outbound IP's reverse DNS names the HELO host, which resolves back to it;
//! - a BIMI record at `default._bimi.DOMAIN`, if published, has DMARC at enforcement behind
//!   it (else no receiver shows the logo).

use crate::auth::dns::{DnsError, Resolver};
use crate::auth::key_record::KeyRecord;
use crate::auth::signing_key::SigningKey;
use crate::auth::spf::{SpfEvaluator, SpfVerdict};
use serde::Serialize;
use std::net::IpAddr;
use std::path::PathBuf;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// As it should be.
    Ok,
    /// Works, but worth fixing.
    Warn,
    /// Receivers will reject or junk mail because of this.
    Fail,
}

/// One result.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// How bad.
    pub severity: Severity,
    /// What was checked: `key`, `spf`, `spf-lookups`, `dmarc`, `bimi`, `mx`, `ptr`.
    pub check: &'static str,
    /// The list address or forwarding domain it concerns.
    pub subject: String,
    /// What was found.
    pub message: String,
    /// What to do about it, for anything not ok.
    pub fix: Option<String>,
}

/// One domain to check, from a list file or a forwarding file.
#[derive(Debug, Clone)]
pub struct Target {
    /// For the report: the list address or `forwarding DOMAIN`.
    pub subject: String,
    /// The domain mail is addressed to (MX, DMARC).
    pub domain: String,
    /// The envelope sender used when sending (SPF).
    pub sender: String,
    /// `d=` of signatures and seals.
    pub signing_domain: String,
    /// `s=`.
    pub selector: String,
    /// The private key file.
    pub key: PathBuf,
}

/// What the checks need besides the target.
pub struct Checker {
    /// DNS.
    pub resolver: Resolver,
    /// SPF over the same DNS.
    pub spf: SpfEvaluator,
    /// Our HELO name.
    pub hostname: String,
    /// The addresses mail leaves from.
    pub outbound: Vec<IpAddr>,
    /// The local part that takes DMARC aggregate reports (`[server] dmarc_reports`), for the
    /// `rua=` to suggest.
    pub reports_local: Option<String>,
}

/// SPF's limit on DNS-querying terms (RFC 7208 §4.6.4).
const SPF_LOOKUP_LIMIT: usize = 10;

impl Checker {
    /// Every finding for `t`.
    pub async fn check(&self, t: &Target) -> Vec<Finding> {
        let mut out = Vec::new();
        let mut add = |severity, check, message: String, fix: Option<String>| {
            out.push(Finding {
                severity,
                check,
                subject: t.subject.clone(),
                message,
                fix,
            })
        };
        for (s, c, m, f) in self.key(t).await {
            add(s, c, m, f);
        }
        for (s, c, m, f) in self.spf(t).await {
            add(s, c, m, f);
        }
        for (s, c, m, f) in self.dmarc(t).await {
            add(s, c, m, f);
        }
        for (s, c, m, f) in self.bimi(t).await {
            add(s, c, m, f);
        }
        for (s, c, m, f) in self.mx(t).await {
            add(s, c, m, f);
        }
        for (s, c, m, f) in self.ptr().await {
            add(s, c, m, f);
        }
        out
    }

    async fn key(&self, t: &Target) -> Vec<Row> {
        let name = format!("{}._domainkey.{}", t.selector, t.signing_domain);
        let ours = match SigningKey::from_pem_file(&t.key).and_then(|k| {
            k.dns_record()
                .map_err(crate::auth::signing_key::KeyLoadError)
        }) {
            Ok(record) => record,
            Err(e) => {
                return vec![row(
                    Severity::Fail,
                    "key",
                    format!("cannot read the private key {}: {e}", t.key.display()),
                    Some("make one with `arclist keygen`".into()),
                )];
            }
        };
        // In zone-file form: a 2048-bit key's record is longer than one 255-byte string.
        let publish = format!(
            "publish {}",
            crate::auth::dns::zone::zone_line(&format!("{name}."), &ours)
        );
        let mine = match KeyRecord::parse(ours.as_bytes()) {
            Ok(k) => k,
            Err(e) => {
                return vec![row(
                    Severity::Fail,
                    "key",
                    format!("the private key {} is unusable: {e}", t.key.display()),
                    Some("make a 2048-bit key with `arclist keygen`".into()),
                )];
            }
        };
        let published = match self.resolver.txt(&name).await {
            Ok(records) => records,
            Err(e) => {
                return vec![row(
                    Severity::Fail,
                    "key",
                    lookup_failed(&name, &e),
                    Some(publish),
                )];
            }
        };
        let mut rows = Vec::new();
        let matching = published.iter().find(|r| match KeyRecord::parse(r) {
            Ok(k) => same_key(&k.public_key, &mine.public_key),
            Err(_) => false,
        });
        match matching {
            Some(_) => rows.push(row(
                Severity::Ok,
                "key",
                format!("{name} publishes the configured key ({} bits)", mine.bits()),
                None,
            )),
            None => {
                let why = published
                    .iter()
                    .map(|r| match KeyRecord::parse(r) {
                        Ok(_) => "a different key".to_string(),
                        Err(e) => e.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join("; ");
                rows.push(row(
                    Severity::Fail,
                    "key",
                    format!(
                        "{name} does not publish the key in {} ({why}): every signature and seal will fail",
                        t.key.display()
                    ),
                    Some(format!("{publish} (or set signing.selector to the selector that has it)")),
                ));
            }
        }
        if matches!(mine.key_type, crate::auth::key_record::KeyType::Rsa) && mine.bits() < 2048 {
            rows.push(row(
                Severity::Warn,
                "key-size",
                format!(
                    "the key is RSA {} bits; receivers accept 1024 but recommend 2048",
                    mine.bits()
                ),
                Some("make a 2048-bit key with `arclist keygen` under a new selector, publish it, then switch".into()),
            ));
        }
        rows
    }

    async fn spf(&self, t: &Target) -> Vec<Row> {
        let domain = t.sender.rsplit_once('@').map_or("", |(_, d)| d);
        let mut rows = Vec::new();
        for ip in &self.outbound {
            let out = self.spf.check(*ip, &self.hostname, &t.sender).await;
            let mechanism = match ip {
                IpAddr::V4(_) => format!("ip4:{ip}"),
                IpAddr::V6(_) => format!("ip6:{ip}"),
            };
            rows.push(match out.mail_from {
                SpfVerdict::Pass => row(
                    Severity::Ok,
                    "spf",
                    format!("SPF for {domain} authorizes {ip}"),
                    None,
                ),
                SpfVerdict::Temperror => row(
                    Severity::Fail,
                    "spf",
                    format!("SPF for {domain}: DNS error"),
                    Some("check the domain's nameservers".into()),
                ),
                verdict => row(
                    Severity::Fail,
                    "spf",
                    format!(
                        "SPF for {domain} gives {} for {ip}, the address list mail leaves from",
                        verdict.as_str()
                    ),
                    Some(format!(
                        "add {mechanism} to {domain}'s SPF record, e.g. \"v=spf1 {mechanism} -all\""
                    )),
                ),
            });
        }
        match spf_lookups(&self.resolver, domain, 0).await {
            Ok(n) if n > SPF_LOOKUP_LIMIT => rows.push(row(
                Severity::Fail,
                "spf-lookups",
                format!(
                    "SPF for {domain} needs {n} DNS lookups; receivers stop at {SPF_LOOKUP_LIMIT} and answer permerror"
                ),
                Some("flatten includes into ip4:/ip6: terms, or drop ones no longer used".into()),
            )),
            Ok(_) | Err(_) => {}
        }
        rows
    }

    async fn dmarc(&self, t: &Target) -> Vec<Row> {
        let name = format!("_dmarc.{}", t.domain);
        let found = match self.resolver.txt(&name).await {
            Ok(r) => r
                .into_iter()
                .map(|r| String::from_utf8_lossy(&r).into_owned())
                .find(|r| r.trim_start().to_ascii_lowercase().starts_with("v=dmarc1")),
            Err(e) if e.is_temporary() => {
                return vec![row(Severity::Fail, "dmarc", lookup_failed(&name, &e), None)];
            }
            Err(_) => None,
        };
        match found {
            Some(record) => {
                let rua = self
                    .reports_local
                    .as_ref()
                    .map(|local| format!("mailto:{local}@{}", t.domain));
                match rua.filter(|rua| !record.contains(rua.as_str())) {
                    // Reports are how the operator learns what receivers make of the list.
                    Some(rua) => vec![row(
                        Severity::Warn,
                        "dmarc",
                        format!("{name}: {record} (receivers' reports do not come to arclist)"),
                        Some(format!(
                            "add rua={rua} to it; `arclist report` then shows them"
                        )),
                    )],
                    None => vec![row(
                        Severity::Ok,
                        "dmarc",
                        format!("{name}: {record}"),
                        None,
                    )],
                }
            }
            None => vec![row(
                Severity::Fail,
                "dmarc",
                format!(
                    "{} publishes no DMARC record; Gmail and Yahoo refuse bulk mail without one",
                    t.domain
                ),
                Some(format!(
                    "publish {name} IN TXT \"v=DMARC1; p=none; rua=mailto:{}@{}\" (start with p=none and read the reports)",
                    self.reports_local.as_deref().unwrap_or("postmaster"),
                    t.domain
                )),
            )],
        }
    }

    /// The first TXT record at `name` whose text starts with `prefix` (case ignored); the row
    /// to report when the lookup failed for now.
    async fn record(&self, name: &str, prefix: &str) -> Result<Option<String>, Row> {
        match self.resolver.txt(name).await {
            Ok(r) => Ok(r
                .into_iter()
                .map(|r| String::from_utf8_lossy(&r).into_owned())
                .find(|r| r.trim_start().to_ascii_lowercase().starts_with(prefix))),
            Err(e) if e.is_temporary() => {
                Err(row(Severity::Fail, "bimi", lookup_failed(name, &e), None))
            }
            Err(_) => Ok(None),
        }
    }

    /// The domain's BIMI record (the default selector) and whether DMARC is at enforcement
    /// behind it: mailbox providers show a logo only then, so a record without it is a logo
    /// nobody sees.
    async fn bimi(&self, t: &Target) -> Vec<Row> {
        let name = format!("default._bimi.{}", t.domain);
        let bimi = match self.record(&name, "v=bimi1").await {
            Ok(Some(b)) => b,
            Ok(None) => {
                let text = format!(
                    "{name}: no BIMI record (optional: a logo beside the list's mail needs one, and DMARC at enforcement)"
                );
                return vec![row(Severity::Ok, "bimi", text, None)];
            }
            Err(r) => return vec![r],
        };
        let dmarc_name = format!("_dmarc.{}", t.domain);
        let dmarc = match self.record(&dmarc_name, "v=dmarc1").await {
            Ok(found) => found,
            Err(r) => return vec![r],
        };
        let short = match dmarc
            .as_deref()
            .and_then(|d| crate::auth::dmarc::DmarcRecord::parse(&t.domain, d))
        {
            None => Err(format!("{} publishes no DMARC record", t.domain)),
            Some(record) => record
                .at_enforcement()
                .map_err(|why| format!("its DMARC record has {why}")),
        };
        // RFC 9989 dropped pct=, BIMI still reads it: a sampled policy is not enforcement.
        let short = short.and_then(|()| match pct(dmarc.as_deref().unwrap_or_default()) {
            Some(p) if p < 100 => Err(format!("its DMARC record has pct={p}")),
            _ => Ok(()),
        });
        match short {
            Ok(()) => vec![row(
                Severity::Ok,
                "bimi",
                format!("{name}: {bimi} (DMARC at enforcement)"),
                None,
            )],
            Err(why) => vec![row(
                Severity::Warn,
                "bimi",
                format!(
                    "{name}: {bimi}, but {why}: receivers show no logo without DMARC at enforcement"
                ),
                Some(format!(
                    "set {dmarc_name} to p=quarantine or p=reject (no sp=none, no t=y, no pct below 100) once the reports show the list's mail passes"
                )),
            )],
        }
    }

    async fn mx(&self, t: &Target) -> Vec<Row> {
        let hosts = match self.resolver.mx(&t.domain).await {
            Ok(mx) => mx,
            Err(e) => {
                return vec![row(
                    Severity::Fail,
                    "mx",
                    format!(
                        "{}: posts and bounces cannot reach arclist",
                        lookup_failed(&t.domain, &e)
                    ),
                    Some(format!("publish {} IN MX 10 {}.", t.domain, self.hostname)),
                )];
            }
        };
        let mut reaches_us = false;
        for h in &hosts {
            if h.exchange.eq_ignore_ascii_case(&self.hostname) {
                reaches_us = true;
            } else if let Ok(ips) = self.resolver.ips(&h.exchange).await {
                reaches_us |= ips.iter().any(|ip| self.outbound.contains(ip));
            }
        }
        let names: Vec<&str> = hosts.iter().map(|h| h.exchange.as_str()).collect();
        if reaches_us {
            vec![row(
                Severity::Ok,
                "mx",
                format!("{} MX: {}", t.domain, names.join(", ")),
                None,
            )]
        } else {
            vec![row(
                Severity::Warn,
                "mx",
                format!(
                    "{} MX is {}, not this server ({}); fine when a relay passes mail on to arclist",
                    t.domain,
                    names.join(", "),
                    self.hostname
                ),
                Some(format!(
                    "publish {} IN MX 10 {}. if mail should come here directly",
                    t.domain, self.hostname
                )),
            )]
        }
    }

    async fn ptr(&self) -> Vec<Row> {
        let mut rows = Vec::new();
        for ip in &self.outbound {
            let names = self.resolver.ptr(*ip).await.unwrap_or_default();
            let forward_ok = match names
                .iter()
                .find(|n| n.eq_ignore_ascii_case(&self.hostname))
            {
                Some(n) => self
                    .resolver
                    .ips(n)
                    .await
                    .map(|ips| ips.contains(ip))
                    .unwrap_or(false),
                None => false,
            };
            rows.push(if forward_ok {
                row(
                    Severity::Ok,
                    "ptr",
                    format!("{ip} reverses to {} and back", self.hostname),
                    None,
                )
            } else {
                row(
                    Severity::Fail,
                    "ptr",
                    match names.first() {
                        Some(n) => {
                            format!("{ip} reverses to {n}, not the HELO name {}", self.hostname)
                        }
                        None => format!(
                            "{ip} has no reverse DNS (PTR); Gmail and Microsoft refuse such senders"
                        ),
                    },
                    Some(format!(
                        "ask whoever owns {ip} to set its PTR to {}, and make {} resolve to {ip}",
                        self.hostname, self.hostname
                    )),
                )
            });
        }
        rows
    }
}

type Row = (Severity, &'static str, String, Option<String>);

/// The `pct=` of a DMARC record's text, if it has a number there.
fn pct(record: &str) -> Option<u32> {
    record.split(';').find_map(|tag| {
        let (k, v) = tag.split_once('=')?;
        (k.trim().eq_ignore_ascii_case("pct"))
            .then(|| v.trim().parse().ok())
            .flatten()
    })
}

fn row(s: Severity, check: &'static str, message: String, fix: Option<String>) -> Row {
    (s, check, message, fix)
}

fn lookup_failed(name: &str, e: &DnsError) -> String {
    if e.is_temporary() {
        format!("{name}: DNS error ({e})")
    } else {
        format!("{name}: no record")
    }
}

/// The same public key, whether published as SubjectPublicKeyInfo or bare RSAPublicKey (which
/// SPKI ends with).
fn same_key(published: &[u8], ours: &[u8]) -> bool {
    !published.is_empty() && (published == ours || ours.ends_with(published))
}

/// DNS-querying terms an SPF check of `domain` costs: `include`, `a`, `mx`, `ptr`, `exists`
/// and `redirect`, counted through includes and redirects.
fn spf_lookups<'a>(
    resolver: &'a Resolver,
    domain: &'a str,
    depth: usize,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<usize, DnsError>> + Send + 'a>> {
    Box::pin(async move {
        if depth > SPF_LOOKUP_LIMIT {
            return Ok(SPF_LOOKUP_LIMIT + 1);
        }
        let records = resolver.txt(domain).await?;
        let Some(record) = records
            .into_iter()
            .map(|r| String::from_utf8_lossy(&r).into_owned())
            .find(|r| r.to_ascii_lowercase().starts_with("v=spf1"))
        else {
            return Ok(0);
        };
        let mut count = 0;
        for term in record.split_whitespace().skip(1) {
            let term = term
                .trim_start_matches(['+', '-', '~', '?'])
                .to_ascii_lowercase();
            let (name, arg) = match term.split_once([':', '=']) {
                Some((n, a)) => (n.to_string(), Some(a.to_string())),
                None => (term.split('/').next().unwrap_or("").to_string(), None),
            };
            match name.as_str() {
                "include" | "redirect" => {
                    count += 1;
                    if let Some(target) = arg {
                        count += spf_lookups(resolver, &target, depth + 1).await.unwrap_or(0);
                    }
                }
                "a" | "mx" | "ptr" | "exists" => count += 1,
                _ => {}
            }
        }
        Ok(count)
    })
}
