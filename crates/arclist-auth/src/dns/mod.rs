//! DNS for authentication and delivery: one [`Resolver`] with two back ends.
//!
//! Live lookups go through hickory-resolver, whose cache honours record TTLs; offline
//! verification answers from RFC 1035 zone files. Both report a timeout or SERVFAIL as
//! [`DnsError::Temporary`], distinct from [`DnsError::NotFound`], because a temporary failure
//! must never turn into a `fail` verdict (RFC 8617 §5.2, RFC 6376 §6.1.2).

pub mod budget;
mod live;
mod loopback_server;
pub mod zone;

pub use budget::LookupBudget;
pub use live::{LiveConfig, LiveResolver};
pub use loopback_server::LoopbackDnsServer;
pub use zone::{Zone, ZoneError, ZoneRecord};

use std::net::IpAddr;
use std::sync::Arc;

/// Why a DNS question got no usable answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    /// The name does not exist or holds no record of the asked type (NXDOMAIN / NODATA).
    #[error("no {rtype} record at {name}")]
    NotFound {
        /// The name that was asked.
        name: String,
        /// The record type that was asked.
        rtype: &'static str,
    },
    /// A timeout, SERVFAIL or transport error: the answer may exist; try again later.
    #[error("temporary DNS failure for {rtype} {name}: {reason}")]
    Temporary {
        /// The name that was asked.
        name: String,
        /// The record type that was asked.
        rtype: &'static str,
        /// What went wrong, for the operator.
        reason: String,
    },
}

impl DnsError {
    /// True when the failure may go away on retry.
    pub fn is_temporary(&self) -> bool {
        matches!(self, DnsError::Temporary { .. })
    }
}

/// A mail exchanger for a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mx {
    /// Lower is preferred.
    pub preference: u16,
    /// Host name of the exchanger, without the trailing dot.
    pub exchange: String,
}

/// The one resolver interface used everywhere in arclist.
///
/// An enum rather than a trait object: there are exactly two back ends (and a budget over
/// either), and async methods on an enum need no boxing.
#[derive(Clone)]
pub enum Resolver {
    /// Real DNS (system or configured nameservers).
    Live(Box<LiveResolver>),
    /// Answers from zone files only; a name absent from the zones does not exist.
    Zone(Arc<Zone>),
    /// Another resolver, asked only as often and as long as a [`LookupBudget`] allows.
    Budgeted(Arc<budget::Budgeted>),
}

impl Resolver {
    /// This resolver (sharing its cache), with every question counted against `budget`.
    pub fn budgeted(&self, budget: Arc<LookupBudget>) -> Resolver {
        Resolver::Budgeted(Arc::new(budget::Budgeted {
            inner: self.clone(),
            budget,
        }))
    }

    /// TXT records at `name`, each record's character-strings joined (RFC 6376 §3.6.2.2).
    pub async fn txt(&self, name: &str) -> Result<Vec<Vec<u8>>, DnsError> {
        match self {
            Resolver::Live(live) => live.txt(name).await,
            Resolver::Zone(zone) => zone.txt(name),
            Resolver::Budgeted(b) => b.txt(name).await,
        }
    }

    /// MX records at `name`, sorted by preference.
    pub async fn mx(&self, name: &str) -> Result<Vec<Mx>, DnsError> {
        let mut found = match self {
            Resolver::Live(live) => live.mx(name).await?,
            Resolver::Zone(zone) => zone.mx(name)?,
            Resolver::Budgeted(b) => b.mx(name).await?,
        };
        found.sort_by_key(|mx| mx.preference);
        Ok(found)
    }

    /// The names `ip` points back to (PTR), for the forward-confirmed reverse DNS check.
    pub async fn ptr(&self, ip: IpAddr) -> Result<Vec<String>, DnsError> {
        let name = reverse_name(ip);
        match self {
            Resolver::Live(live) => live.ptr(&name).await,
            Resolver::Zone(zone) => zone.ptr(&name),
            Resolver::Budgeted(b) => b.ptr(ip).await,
        }
    }

    /// A and AAAA addresses of `name`.
    pub async fn ips(&self, name: &str) -> Result<Vec<IpAddr>, DnsError> {
        match self {
            Resolver::Live(live) => live.ips(name).await,
            Resolver::Zone(zone) => zone.ips(name),
            Resolver::Budgeted(b) => b.ips(name).await,
        }
    }
}

/// Lower-cases a DNS name and drops a trailing dot, the form every lookup key uses.
pub(crate) fn normalize_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// `4.3.2.1.in-addr.arpa` for 1.2.3.4; nibbles under `ip6.arpa` for IPv6 (RFC 3596).
pub fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut out = String::with_capacity(72);
            for byte in v6.octets().iter().rev() {
                out.push_str(&format!("{:x}.{:x}.", byte & 0xf, byte >> 4));
            }
            out.push_str("ip6.arpa");
            out
        }
    }
}
