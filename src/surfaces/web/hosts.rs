//! Which `Host` the admin listener answers to. A browser sends the name it resolved, so a
//! page of another site whose name an attacker points at 127.0.0.1 (DNS rebinding) reaches
//! the listener with its own name in `Host`: the browser treats the answers as that site's,
//! and its scripts could read the console's login page or the chain viewer. An IP literal
//! cannot be rebound (the browser's origin is the address itself), and `localhost` resolves
//! locally; any other name must be one the operator listed.

/// The names a listener answers to, beside IP literals and `localhost`.
#[derive(Debug, Clone, Default)]
pub struct Hosts(Vec<String>);

impl Hosts {
    /// The operator's names (`[admin] hosts`), compared without case.
    pub fn new(names: &[String]) -> Self {
        Hosts(
            names
                .iter()
                .map(|n| n.trim().trim_end_matches('.').to_ascii_lowercase())
                .collect(),
        )
    }

    /// Whether a request whose `Host` field is `host` may be answered. No `Host` at all
    /// (HTTP/1.0 tools) is not a browser's, so it is let through.
    pub fn allows(&self, host: Option<&str>) -> bool {
        let Some(host) = host else {
            return true;
        };
        let name = name_of(host).trim_end_matches('.').to_ascii_lowercase();
        name.parse::<std::net::IpAddr>().is_ok() || name == "localhost" || self.0.contains(&name)
    }
}

/// `host` without its port: `[::1]:9425` is `::1`, `example.org:80` is `example.org`.
fn name_of(host: &str) -> &str {
    let host = host.trim();
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default();
    }
    // A bare IPv6 address (not valid in `Host`, but unambiguous) has colons of its own.
    if host.parse::<std::net::Ipv6Addr>().is_ok() {
        return host;
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_localhost_and_listed_names_only() {
        let hosts = Hosts::new(&["Lists.Example.org".to_string()]);
        for ok in [
            "127.0.0.1:9425",
            "[::1]:9425",
            "::1",
            "localhost",
            "LOCALHOST:9425",
            "lists.example.org",
            "lists.example.org.:443",
        ] {
            assert!(hosts.allows(Some(ok)), "{ok}");
        }
        for refused in [
            "attacker.example:9425",
            "127.0.0.1.attacker.example",
            "lists.example.org.attacker.example",
            "",
            "localhost.attacker.example",
        ] {
            assert!(!hosts.allows(Some(refused)), "{refused}");
        }
        assert!(hosts.allows(None));
    }
}
