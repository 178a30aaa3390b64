//! Who may have a check now, and how many DNS questions it may ask: a few checks at once (the
//! rest are told to come back, not queued), and per client address a number of questions per
//! minute, shared by all of its checks in that minute.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Client addresses counted per minute; past this, newcomers share one account, so a flood of
/// addresses costs memory no more than it costs DNS.
const MAX_CLIENTS: usize = 10_000;

/// The accounting unit of a client address: the address for IPv4 (also when it comes
/// IPv4-mapped on a dual-stack socket), its /64 for IPv6 (one host has a whole /64 to choose
/// from); the same unit as the connection limits.
fn account_of(ip: IpAddr) -> IpAddr {
    crate::base::per_client::client_key(ip)
}

/// Questions asked per account in the current minute.
struct Minute {
    started: Instant,
    /// Which minute this is, so a refund from the one before is not counted in it.
    number: u64,
    used: HashMap<IpAddr, usize>,
}

/// The viewer's admission and its per-client DNS accounts.
pub struct Gate {
    checks: Arc<Semaphore>,
    per_client_minute: usize,
    minute: Mutex<Minute>,
}

/// Questions set aside for one check from its client's minute; what the check did not use
/// goes back with [`Gate::settle`].
#[derive(Debug)]
pub struct Allowance {
    account: IpAddr,
    minute: u64,
    /// Questions the check may ask.
    pub lookups: usize,
}

impl Gate {
    /// At most `checks_at_once` checks; each client account at most `per_client_minute`
    /// questions a minute.
    pub fn new(checks_at_once: usize, per_client_minute: usize) -> Self {
        Gate {
            checks: Arc::new(Semaphore::new(checks_at_once.max(1))),
            per_client_minute,
            minute: Mutex::new(Minute {
                started: Instant::now(),
                number: 0,
                used: HashMap::new(),
            }),
        }
    }

    /// A place for one check, or `None` when all are taken.
    pub fn admit(&self) -> Option<OwnedSemaphorePermit> {
        self.checks.clone().try_acquire_owned().ok()
    }

    /// Sets aside up to `per_check` questions from the minute of `client`'s account.
    pub fn allowance(&self, client: IpAddr, per_check: usize) -> Allowance {
        let mut account = account_of(client);
        let Ok(mut minute) = self.minute.lock() else {
            return Allowance {
                account,
                minute: u64::MAX,
                lookups: 0,
            };
        };
        if minute.started.elapsed() >= Duration::from_secs(60) {
            minute.started = Instant::now();
            minute.number += 1;
            minute.used.clear();
        }
        if !minute.used.contains_key(&account) && minute.used.len() >= MAX_CLIENTS {
            account = IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED);
        }
        let used = minute.used.entry(account).or_default();
        let lookups = per_check.min(self.per_client_minute.saturating_sub(*used));
        *used += lookups;
        Allowance {
            account,
            minute: minute.number,
            lookups,
        }
    }

    /// Gives back what a check set aside and did not ask.
    pub fn settle(&self, allowance: &Allowance, asked: usize) {
        let unused = allowance.lookups.saturating_sub(asked);
        if let Ok(mut minute) = self.minute.lock()
            && minute.number == allowance.minute
            && let Some(used) = minute.used.get_mut(&allowance.account)
        {
            *used = used.saturating_sub(unused);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_its_minute_and_no_more_and_unused_questions_come_back() {
        let gate = Gate::new(2, 100);
        let me: IpAddr = "192.0.2.1".parse().expect("ip");
        let a = gate.allowance(me, 60);
        assert_eq!(a.lookups, 60);
        let b = gate.allowance(me, 60);
        assert_eq!(b.lookups, 40, "what is left of the minute");
        assert_eq!(gate.allowance(me, 60).lookups, 0);
        gate.settle(&a, 10);
        assert_eq!(gate.allowance(me, 60).lookups, 50);
        let other: IpAddr = "192.0.2.2".parse().expect("ip");
        assert_eq!(
            gate.allowance(other, 60).lookups,
            60,
            "others have their own"
        );
    }

    #[test]
    fn one_ipv6_64_is_one_client() {
        let gate = Gate::new(2, 100);
        let a: IpAddr = "2001:db8::1".parse().expect("ip");
        let b: IpAddr = "2001:db8::ffff:1".parse().expect("ip");
        assert_eq!(gate.allowance(a, 100).lookups, 100);
        assert_eq!(gate.allowance(b, 100).lookups, 0);
    }

    #[test]
    fn checks_past_the_number_at_once_are_not_admitted() {
        let gate = Gate::new(2, 100);
        let one = gate.admit().expect("first");
        let _two = gate.admit().expect("second");
        assert!(gate.admit().is_none());
        drop(one);
        assert!(gate.admit().is_some());
    }
}
