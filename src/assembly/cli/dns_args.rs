//! The DNS options every verifying command shares.

use super::CliError;
use crate::auth::dns::{LiveConfig, LiveResolver, LoopbackDnsServer, Resolver, Zone};
use crate::auth::spf::SpfEvaluator;
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Where DNS answers come from.
#[derive(Args, Debug, Clone)]
pub struct DnsArgs {
    /// Answer from this RFC 1035 zone file instead of live DNS (repeatable).
    #[arg(long = "zone", value_name = "FILE")]
    pub zones: Vec<PathBuf>,
    /// Ask this nameserver (host:port, repeatable) instead of /etc/resolv.conf.
    #[arg(long = "dns", value_name = "HOST:PORT")]
    pub nameservers: Vec<SocketAddr>,
    /// Seconds before a DNS query counts as a temporary failure.
    #[arg(long, default_value_t = 5)]
    pub dns_timeout: u64,
}

/// A resolver plus, in zone mode, the loopback server that lets SPF see the same zones.
pub struct DnsSetup {
    /// The resolver for DKIM, ARC and DMARC.
    pub resolver: Resolver,
    /// Configuration for hickory-based components (SPF).
    pub live: LiveConfig,
    _server: Option<LoopbackDnsServer>,
}

impl DnsArgs {
    /// Builds the resolver; in zone mode also serves the zones on loopback for SPF.
    pub async fn setup(&self, need_server: bool) -> Result<DnsSetup, CliError> {
        let mut live = LiveConfig {
            nameservers: self.nameservers.clone(),
            timeout: Duration::from_secs(self.dns_timeout.max(1)),
            ..LiveConfig::default()
        };
        if self.zones.is_empty() {
            let resolver = Resolver::Live(Box::new(
                LiveResolver::new(&live).map_err(CliError::Engine)?,
            ));
            return Ok(DnsSetup {
                resolver,
                live,
                _server: None,
            });
        }
        let mut zone = Zone::new();
        for path in &self.zones {
            zone.load_file(path)?;
        }
        let server = if need_server {
            let server = LoopbackDnsServer::start(zone.clone())
                .await
                .map_err(CliError::LoopbackDns)?;
            live.nameservers = vec![server.addr()];
            Some(server)
        } else {
            None
        };
        Ok(DnsSetup {
            resolver: Resolver::Zone(Arc::new(zone)),
            live,
            _server: server,
        })
    }
}

impl DnsSetup {
    /// An SPF evaluator over the same DNS.
    pub fn spf(&self, hostname: &str) -> Result<SpfEvaluator, CliError> {
        SpfEvaluator::new(&self.live, hostname).map_err(CliError::Engine)
    }
}
