//! Live DNS through hickory-resolver.

use super::{DnsError, Mx, normalize_name};
use crate::observe::DnsOutcome;
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError as HickoryDnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Default least time a negative answer is cached, in seconds.
pub const NEGATIVE_MIN_SECS: u64 = 30;
/// Default most time a negative answer is cached, in seconds (RFC 2308 §5 suggests one to
/// three hours as the ceiling).
pub const NEGATIVE_MAX_SECS: u64 = 3600;

/// Answers (positive and negative) the cache keeps at most; the least recently used go first.
pub const CACHE_ENTRIES: u64 = 4096;

/// Where live queries go and how long each may take.
#[derive(Debug, Clone)]
pub struct LiveConfig {
    /// Nameservers as `host:port`; empty means the system's (`/etc/resolv.conf`).
    pub nameservers: Vec<SocketAddr>,
    /// Per-query timeout. A query that runs out of time is a temporary error.
    pub timeout: Duration,
    /// How many times a query is tried per nameserver before it counts as timed out.
    pub attempts: usize,
    /// The least time a "no such name" or "no such record" answer is kept: the zone's SOA
    /// minimum when it is longer, this when the zone asks for less (or sends no SOA), so that
    /// the same missing name asked again and again is asked of the network once.
    pub negative_min: Duration,
    /// The most time such an answer is kept, however long the zone's SOA asks for: a key
    /// published after a lookup failed is seen within this.
    pub negative_max: Duration,
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            nameservers: Vec::new(),
            timeout: Duration::from_secs(5),
            attempts: 2,
            negative_min: Duration::from_secs(NEGATIVE_MIN_SECS),
            negative_max: Duration::from_secs(NEGATIVE_MAX_SECS),
        }
    }
}

/// A caching resolver over real DNS. Cloning shares the cache.
#[derive(Clone)]
pub struct LiveResolver {
    inner: TokioResolver,
}

impl LiveResolver {
    /// Builds a resolver; fails only when the system configuration cannot be read.
    pub fn new(config: &LiveConfig) -> Result<Self, String> {
        let (resolver_config, mut opts) = Self::configs(config)?;
        opts.timeout = config.timeout;
        opts.attempts = config.attempts;
        let inner =
            TokioResolver::builder_with_config(resolver_config, TokioRuntimeProvider::default())
                .with_options(opts)
                .build()
                .map_err(|e| format!("cannot build DNS resolver: {e}"))?;
        Ok(LiveResolver { inner })
    }

    /// The hickory configuration for `config`, shared with the SPF evaluator so both ask the
    /// same servers.
    pub fn configs(config: &LiveConfig) -> Result<(ResolverConfig, ResolverOpts), String> {
        let (resolver_config, mut opts) = if config.nameservers.is_empty() {
            hickory_resolver::system_conf::read_system_conf()
                .map_err(|e| format!("cannot read /etc/resolv.conf: {e}"))?
        } else {
            let servers = config
                .nameservers
                .iter()
                .map(|addr| {
                    let mut udp = ConnectionConfig::udp();
                    udp.port = addr.port();
                    let mut tcp = ConnectionConfig::tcp();
                    tcp.port = addr.port();
                    NameServerConfig::new(addr.ip(), true, vec![udp, tcp])
                })
                .collect();
            (
                ResolverConfig::from_name_servers(servers),
                ResolverOpts::default(),
            )
        };
        opts.timeout = config.timeout;
        opts.attempts = config.attempts;
        // Mail names are absolute; never try search-list suffixes.
        opts.ndots = 0;
        // hickory's default cache holds 32 answers; a list server looks up keys, policies and
        // MX hosts for many domains, and the cache honours each record's TTL.
        opts.cache_size = CACHE_ENTRIES;
        // hickory keeps a negative answer only as long as its SOA says, and not at all without
        // one: a zone whose SOA minimum is 0, or an answer without SOA, would have every
        // repeat of a missing name asked again (a pasted message names thousands).
        let max = config.negative_max.max(config.negative_min);
        opts.negative_min_ttl = Some(config.negative_min);
        opts.negative_max_ttl = Some(max);
        Ok((resolver_config, opts))
    }

    async fn lookup(
        &self,
        name: &str,
        rtype: RecordType,
        label: &'static str,
    ) -> Result<Vec<RData>, DnsError> {
        let fqdn = format!("{}.", normalize_name(name));
        let parsed = Name::from_str_relaxed(&fqdn).map_err(|_| DnsError::NotFound {
            name: name.to_string(),
            rtype: label,
        })?;
        let started = std::time::Instant::now();
        let answer = self.inner.lookup(parsed, rtype).await;
        crate::observe::observer().dns_lookup(
            started.elapsed(),
            match &answer {
                Ok(_) => DnsOutcome::Answer,
                Err(e) if e.is_no_records_found() => DnsOutcome::NotFound,
                Err(_) => DnsOutcome::Error,
            },
        );
        match answer {
            Ok(lookup) => {
                let found: Vec<RData> = lookup
                    .answers()
                    .iter()
                    .filter(|r| r.record_type() == rtype)
                    .map(|r| r.data.clone())
                    .collect();
                if found.is_empty() {
                    Err(DnsError::NotFound {
                        name: name.to_string(),
                        rtype: label,
                    })
                } else {
                    Ok(found)
                }
            }
            Err(err) => Err(classify(err, name, label)),
        }
    }

    pub(super) async fn txt(&self, name: &str) -> Result<Vec<Vec<u8>>, DnsError> {
        let answers = self.lookup(name, RecordType::TXT, "TXT").await?;
        Ok(answers
            .into_iter()
            .filter_map(|data| match data {
                RData::TXT(txt) => Some(
                    txt.txt_data
                        .iter()
                        .flat_map(|s| s.iter().copied())
                        .collect(),
                ),
                _ => None,
            })
            .collect())
    }

    pub(super) async fn mx(&self, name: &str) -> Result<Vec<Mx>, DnsError> {
        let answers = self.lookup(name, RecordType::MX, "MX").await?;
        Ok(answers
            .into_iter()
            .filter_map(|data| match data {
                RData::MX(mx) => Some(Mx {
                    preference: mx.preference,
                    exchange: normalize_name(&mx.exchange.to_ascii()),
                }),
                _ => None,
            })
            .collect())
    }

    pub(super) async fn ptr(&self, name: &str) -> Result<Vec<String>, DnsError> {
        let answers = self.lookup(name, RecordType::PTR, "PTR").await?;
        Ok(answers
            .into_iter()
            .filter_map(|data| match data {
                RData::PTR(p) => Some(normalize_name(&p.0.to_ascii())),
                _ => None,
            })
            .collect())
    }

    pub(super) async fn ips(&self, name: &str) -> Result<Vec<IpAddr>, DnsError> {
        let v4 = self.lookup(name, RecordType::A, "A").await;
        let v6 = self.lookup(name, RecordType::AAAA, "AAAA").await;
        let mut out = Vec::new();
        for answer in [&v4, &v6].into_iter().flatten() {
            for data in answer {
                match data {
                    RData::A(a) => out.push(IpAddr::V4(a.0)),
                    RData::AAAA(a) => out.push(IpAddr::V6(a.0)),
                    _ => {}
                }
            }
        }
        if !out.is_empty() {
            return Ok(out);
        }
        // A temporary failure on either family outranks "not found" on the other.
        match (v4, v6) {
            (Err(e), _) if e.is_temporary() => Err(e),
            (_, Err(e)) if e.is_temporary() => Err(e),
            _ => Err(DnsError::NotFound {
                name: name.to_string(),
                rtype: "A/AAAA",
            }),
        }
    }
}

fn classify(err: NetError, name: &str, rtype: &'static str) -> DnsError {
    if let NetError::Dns(HickoryDnsError::NoRecordsFound(no)) = &err
        && matches!(
            no.response_code,
            ResponseCode::NXDomain | ResponseCode::NoError
        )
    {
        return DnsError::NotFound {
            name: name.to_string(),
            rtype,
        };
    }
    DnsError::Temporary {
        name: name.to_string(),
        rtype,
        reason: err.to_string(),
    }
}
