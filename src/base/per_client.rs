//! Per-client-address connection limits, for the SMTP and HTTP listeners: one address may
//! hold only so many of the server's connection slots, so a single host cannot starve the
//! others (slowloris, idle floods).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

/// Connections open per client address, shared by a listener's accept loop and its
/// connections.
#[derive(Default)]
pub struct PerClient(std::sync::Mutex<HashMap<IpAddr, usize>>);

impl PerClient {
    /// A slot for one more session from `ip` (counted by [`client_key`]), or `None` when it
    /// has `max` already.
    pub fn enter(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<ClientSlot> {
        let ip = client_key(ip);
        let mut open = self.0.lock().ok()?;
        let n = open.entry(ip).or_default();
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(ClientSlot {
            ip,
            owner: Some(self.clone()),
        })
    }
}

/// The address a client's connections are counted under: an IPv4 address itself (also when
/// a dual-stack socket shows it as `::ffff:a.b.c.d`), an IPv6 address by its /64. A site gets
/// a /64 (or more) for its own hosts and can use any of its 2^64 addresses, so counting full
/// IPv6 addresses would give one host an unlimited share.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        },
    }
}

/// One connection's place in [`PerClient`]; given back when dropped.
pub struct ClientSlot {
    ip: IpAddr,
    /// `None` for a session no per-address limit applies to (LMTP).
    owner: Option<Arc<PerClient>>,
}

impl ClientSlot {
    /// A slot that counts nowhere.
    pub fn unlimited() -> Self {
        ClientSlot {
            ip: IpAddr::from([0, 0, 0, 0]),
            owner: None,
        }
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        if let Some(owner) = &self.owner
            && let Ok(mut open) = owner.0.lock()
            && let Some(n) = open.get_mut(&self.ip)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    #[test]
    fn ipv6_clients_count_by_their_slash_64_and_ipv4_by_address() {
        let a = client_key(ip("2001:db8:1:2::1"));
        assert_eq!(a, client_key(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")));
        assert_eq!(a, ip("2001:db8:1:2::"));
        assert_ne!(a, client_key(ip("2001:db8:1:3::1")), "the next /64");
        assert_eq!(client_key(ip("192.0.2.7")), ip("192.0.2.7"));
        assert_ne!(client_key(ip("192.0.2.7")), client_key(ip("192.0.2.8")));
        // IPv4 clients of a dual-stack listener are not lumped into one /64.
        assert_eq!(client_key(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        assert_ne!(
            client_key(ip("::ffff:192.0.2.7")),
            client_key(ip("::ffff:192.0.2.8"))
        );
    }

    #[test]
    fn one_slash_64_shares_the_per_address_limit() {
        let per_client = Arc::new(PerClient::default());
        let first = per_client.enter(ip("2001:db8::1"), 2);
        let second = per_client.enter(ip("2001:db8::2"), 2);
        assert!(first.is_some() && second.is_some());
        assert!(
            per_client.enter(ip("2001:db8::3"), 2).is_none(),
            "a third in the /64"
        );
        assert!(
            per_client.enter(ip("2001:db8:0:1::1"), 2).is_some(),
            "another /64"
        );
        drop(first);
        assert!(
            per_client.enter(ip("2001:db8::4"), 2).is_some(),
            "a slot given back"
        );
    }
}
