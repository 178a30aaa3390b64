//! Where a domain's mail goes: a smarthost, or its MX hosts in preference order, falling back
//! to its own A/AAAA records (RFC 5321 §5.1).

use crate::auth::dns::{DnsError, Resolver};
use std::net::{IpAddr, SocketAddr};

use super::DeliveryError;
use super::connect::{Credentials, Endpoint, Security};
use std::sync::Arc;

/// A relay that takes all outgoing mail.
#[derive(Debug, Clone)]
pub struct Smarthost {
    /// `host:port`.
    pub target: String,
    /// TLS rules for it.
    pub security: Security,
    /// AUTH, if it wants it.
    pub credentials: Option<Arc<Credentials>>,
}

/// How the server routes mail.
#[derive(Debug, Clone)]
pub enum Routing {
    /// Everything through one relay.
    Smarthost(Smarthost),
    /// MX lookup; `port` is 25 except on test beds.
    Direct {
        /// The port to connect to.
        port: u16,
    },
}

impl Routing {
    /// The routing `config` asks for. For a smarthost, this reads the password file and the CA
    /// bundle now, so a mistake stops the server at startup instead of deferring all mail.
    pub fn from_config(
        config: &crate::base::config::DeliveryConfig,
    ) -> Result<Routing, DeliveryError> {
        use crate::base::config::SmarthostTls;
        let Some(target) = &config.smarthost else {
            return Ok(Routing::Direct { port: config.port });
        };
        let ca = config.smarthost_ca.as_deref();
        let security = match config.smarthost_tls {
            SmarthostTls::Opportunistic => Security::Opportunistic,
            SmarthostTls::Starttls => Security::StartTls(super::tls::verified(ca)?),
            SmarthostTls::Implicit => Security::Implicit(super::tls::verified(ca)?),
        };
        let credentials = match (&config.smarthost_user, &config.smarthost_password_file) {
            (Some(user), Some(file)) => {
                let text = std::fs::read_to_string(file).map_err(|source| {
                    DeliveryError::PasswordFile {
                        path: file.clone(),
                        source,
                    }
                })?;
                let password = text.lines().next().unwrap_or_default().to_string();
                if password.is_empty() {
                    return Err(DeliveryError::EmptyPassword { path: file.clone() });
                }
                Some(Arc::new(Credentials {
                    user: user.clone(),
                    password,
                }))
            }
            _ => None,
        };
        Ok(Routing::Smarthost(Smarthost {
            target: target.clone(),
            security,
            credentials,
        }))
    }
}

/// The places to try for `domain`, best first. A temporary DNS failure is an error (the
/// recipients are deferred); a domain with no mail servers at all is `Ok(empty)`.
pub async fn destinations(
    routing: &Routing,
    resolver: &Resolver,
    domain: &str,
) -> Result<Vec<Endpoint>, DeliveryError> {
    match routing {
        Routing::Smarthost(relay) => {
            let target = &relay.target;
            let (host, port) = target
                .rsplit_once(':')
                .ok_or_else(|| DeliveryError::NoPort {
                    target: target.clone(),
                })?;
            let port: u16 = port.parse().map_err(|_| DeliveryError::BadPort {
                target: target.clone(),
            })?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let ips = match host.parse::<IpAddr>() {
                Ok(ip) => vec![ip],
                Err(_) => {
                    resolver
                        .ips(host)
                        .await
                        .map_err(|source| DeliveryError::SmarthostDns {
                            host: host.to_string(),
                            source,
                        })?
                }
            };
            Ok(ips
                .into_iter()
                .map(|ip| Endpoint {
                    addr: SocketAddr::new(ip, port),
                    name: Some(host.to_string()),
                    security: relay.security.clone(),
                    credentials: relay.credentials.clone(),
                    source: None,
                })
                .collect())
        }
        Routing::Direct { port } => {
            let hosts: Vec<String> = match resolver.mx(domain).await {
                Ok(mx) => mx.into_iter().map(|m| m.exchange).collect(),
                Err(DnsError::NotFound { .. }) => vec![domain.to_string()],
                Err(e) => return Err(e.into()),
            };
            // A "null MX" (RFC 7505) means the domain accepts no mail.
            if hosts.len() == 1 && (hosts[0].is_empty() || hosts[0] == ".") {
                return Ok(Vec::new());
            }
            let mut out = Vec::new();
            let mut temporary = None;
            for host in hosts {
                match resolver.ips(&host).await {
                    Ok(ips) => out.extend(
                        ips.into_iter()
                            .map(|ip: IpAddr| Endpoint::direct(SocketAddr::new(ip, *port))),
                    ),
                    Err(e) if e.is_temporary() => temporary = Some(e),
                    Err(_) => {}
                }
            }
            match (out.is_empty(), temporary) {
                (true, Some(e)) => Err(e.into()),
                _ => Ok(out),
            }
        }
    }
}
