//! Where a domain's mail goes: a smarthost, or its MX hosts in preference order, falling back
//! to its own A/AAAA records (RFC 5321 §5.1).

use crate::auth::dns::{DnsError, Resolver};
use std::net::{IpAddr, SocketAddr};

/// How the server routes mail.
#[derive(Debug, Clone)]
pub enum Routing {
    /// Everything through one relay, `host:port`.
    Smarthost(String),
    /// MX lookup; `port` is 25 except on test beds.
    Direct {
        /// The port to connect to.
        port: u16,
    },
}

/// The addresses to try for `domain`, best first. A temporary DNS failure is an error (the
/// recipients are deferred); a domain with no mail servers at all is `Ok(empty)`.
pub async fn destinations(
    routing: &Routing,
    resolver: &Resolver,
    domain: &str,
) -> Result<Vec<SocketAddr>, String> {
    match routing {
        Routing::Smarthost(target) => {
            if let Ok(addr) = target.parse::<SocketAddr>() {
                return Ok(vec![addr]);
            }
            let (host, port) = target
                .rsplit_once(':')
                .ok_or_else(|| format!("smarthost {target:?} has no port"))?;
            let port: u16 = port
                .parse()
                .map_err(|_| format!("smarthost {target:?}: bad port"))?;
            let ips = resolver.ips(host).await.map_err(|e| e.to_string())?;
            Ok(ips
                .into_iter()
                .map(|ip| SocketAddr::new(ip, port))
                .collect())
        }
        Routing::Direct { port } => {
            let hosts: Vec<String> = match resolver.mx(domain).await {
                Ok(mx) => mx.into_iter().map(|m| m.exchange).collect(),
                Err(DnsError::NotFound { .. }) => vec![domain.to_string()],
                Err(e) => return Err(e.to_string()),
            };
            // A "null MX" (RFC 7505) means the domain accepts no mail.
            if hosts.len() == 1 && (hosts[0].is_empty() || hosts[0] == ".") {
                return Ok(Vec::new());
            }
            let mut out = Vec::new();
            let mut temporary = None;
            for host in hosts {
                match resolver.ips(&host).await {
                    Ok(ips) => {
                        out.extend(ips.into_iter().map(|ip: IpAddr| SocketAddr::new(ip, *port)))
                    }
                    Err(e) if e.is_temporary() => temporary = Some(e.to_string()),
                    Err(_) => {}
                }
            }
            match (out.is_empty(), temporary) {
                (true, Some(e)) => Err(e),
                _ => Ok(out),
            }
        }
    }
}
