//! Failed console logins, counted per client address and per name: after a few failures the
//! address (or the name, tried from anywhere) must wait before its next password is checked,
//! and the wait doubles with each further failure up to a bound. A flood from one address
//! then costs that address, not everyone (a global gate answered every login 503), and a
//! password guessed from many addresses still slows down per name. Memory is bounded: an
//! entry is forgotten once it has been quiet for the longest wait, and each book holds at
//! most [`MAX_ENTRIES`].

use crate::base::per_client::client_key;
use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Entries per book (addresses, names); beyond, the quietest is forgotten.
pub const MAX_ENTRIES: usize = 10_000;

/// When logins must wait.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Failures from one address before it waits.
    pub per_address: u32,
    /// Failures for one name before it waits.
    pub per_name: u32,
    /// The longest wait; an entry quiet this long is forgotten.
    pub max_wait: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last: Instant,
    until: Instant,
}

/// One kind of key's failures.
struct Book<K>(HashMap<K, Entry>);

impl<K: Hash + Eq + Clone> Book<K> {
    /// How long `key` must still wait, if at all.
    fn wait(&self, key: &K, now: Instant) -> Option<Duration> {
        let entry = self.0.get(key)?;
        (entry.until > now).then(|| entry.until - now)
    }

    /// Counts a failure of `key`; beyond `free` failures it waits 1 s, doubling each time.
    fn fail(&mut self, key: &K, free: u32, max_wait: Duration, now: Instant) {
        if !self.0.contains_key(key) && self.0.len() >= MAX_ENTRIES {
            self.0.retain(|_, e| now.duration_since(e.last) < max_wait);
            if self.0.len() >= MAX_ENTRIES
                && let Some(quietest) = self
                    .0
                    .iter()
                    .min_by_key(|(_, e)| e.last)
                    .map(|(k, _)| k.clone())
            {
                self.0.remove(&quietest);
            }
        }
        let entry = self.0.entry(key.clone()).or_insert(Entry {
            failures: 0,
            last: now,
            until: now,
        });
        // Quiet for the longest wait: the earlier failures no longer count.
        if now.duration_since(entry.last) >= max_wait {
            entry.failures = 0;
        }
        entry.failures = entry.failures.saturating_add(1);
        entry.last = now;
        if entry.failures >= free {
            let doublings = (entry.failures - free).min(30);
            entry.until = now + Duration::from_secs(1u64 << doublings).min(max_wait);
        }
    }
}

/// Why a login is not checked now, and for how long.
#[derive(Debug, Clone, PartialEq)]
pub struct Wait {
    /// `address`, `name` or `busy` (a check of this address is already running).
    pub because: &'static str,
    /// Seconds before trying again helps (at least 1).
    pub seconds: u64,
}

/// Every address's and name's failed logins, and the checks running per address.
pub struct Throttle {
    policy: Policy,
    addresses: Mutex<Book<IpAddr>>,
    names: Mutex<Book<String>>,
    /// Names that logged in from an address (its [`client_key`]) before, with when: a name's
    /// lock-out does not apply there, so someone guessing at a moderator's name from
    /// elsewhere cannot keep the moderator out of the console. At most [`MAX_ENTRIES`].
    known: Mutex<HashMap<(IpAddr, String), Instant>>,
    running: Arc<Mutex<HashSet<IpAddr>>>,
}

/// How long a good login keeps its address known for its name.
const KNOWN_FOR: Duration = Duration::from_secs(30 * 24 * 3600);

/// A running check for one address; another from it waits until this is dropped.
pub struct Turn {
    client: IpAddr,
    running: Arc<Mutex<HashSet<IpAddr>>>,
}

impl Drop for Turn {
    fn drop(&mut self) {
        if let Ok(mut running) = self.running.lock() {
            running.remove(&self.client);
        }
    }
}

/// The key a name is counted under: as typed would let `Ann` and `ann ` count apart.
fn name_key(name: &str) -> String {
    name.trim().to_lowercase().chars().take(64).collect()
}

impl Throttle {
    /// No failures yet.
    pub fn new(policy: Policy) -> Self {
        Throttle {
            policy,
            addresses: Mutex::new(Book(HashMap::new())),
            names: Mutex::new(Book(HashMap::new())),
            known: Mutex::new(HashMap::new()),
            running: Arc::default(),
        }
    }

    /// A turn to check a password `client` sent for `name`, or how long they must wait.
    pub fn admit(&self, client: IpAddr, name: &str) -> Result<Turn, Wait> {
        // Counted as the connection limits count: an IPv6 client per /64, IPv4-mapped as IPv4.
        let client = client_key(client);
        let now = Instant::now();
        let seconds = |d: Duration| d.as_secs() + u64::from(d.subsec_nanos() > 0);
        let by_address = self
            .addresses
            .lock()
            .ok()
            .and_then(|b| b.wait(&client, now));
        if let Some(d) = by_address {
            return Err(Wait {
                because: "address",
                seconds: seconds(d),
            });
        }
        let known = self.known.lock().ok().is_some_and(|k| {
            k.get(&(client, name_key(name)))
                .is_some_and(|at| now.duration_since(*at) < KNOWN_FOR)
        });
        let by_name = self
            .names
            .lock()
            .ok()
            .filter(|_| !known)
            .and_then(|b| b.wait(&name_key(name), now));
        if let Some(d) = by_name {
            return Err(Wait {
                because: "name",
                seconds: seconds(d),
            });
        }
        let busy = Wait {
            because: "busy",
            seconds: 1,
        };
        let mut running = self.running.lock().map_err(|_| busy.clone())?;
        // One check at a time per address: parallel guesses would all run before the first
        // failure is counted.
        if !running.insert(client) {
            return Err(busy);
        }
        Ok(Turn {
            client,
            running: self.running.clone(),
        })
    }

    /// Counts a wrong password or unknown name from `client` for `name`.
    pub fn failed(&self, client: IpAddr, name: &str) {
        let client = client_key(client);
        let (p, now) = (&self.policy, Instant::now());
        if let Ok(mut book) = self.addresses.lock() {
            book.fail(&client, p.per_address.max(1), p.max_wait, now);
        }
        if let Ok(mut book) = self.names.lock() {
            book.fail(&name_key(name), p.per_name.max(1), p.max_wait, now);
        }
    }

    /// A good login: the address's and the name's failures are forgotten.
    pub fn succeeded(&self, client: IpAddr, name: &str) {
        let client = client_key(client);
        if let Ok(mut book) = self.addresses.lock() {
            book.0.remove(&client);
        }
        if let Ok(mut known) = self.known.lock() {
            let now = Instant::now();
            if known.len() >= MAX_ENTRIES {
                known.retain(|_, at| now.duration_since(*at) < KNOWN_FOR);
            }
            if known.len() < MAX_ENTRIES {
                known.insert((client, name_key(name)), now);
            }
        }
        if let Ok(mut book) = self.names.lock() {
            book.0.remove(&name_key(name));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle() -> Throttle {
        Throttle::new(Policy {
            per_address: 3,
            per_name: 5,
            max_wait: Duration::from_secs(60),
        })
    }

    #[test]
    fn an_address_waits_after_its_failures_and_others_do_not() {
        let t = throttle();
        let (eve, ann) = (IpAddr::from([127, 0, 0, 2]), IpAddr::from([127, 0, 0, 3]));
        for i in 0..3 {
            let turn = t.admit(eve, &format!("guess{i}")).expect("free failures");
            drop(turn);
            t.failed(eve, &format!("guess{i}"));
        }
        let wait = t.admit(eve, "guess9").err().expect("waits");
        assert_eq!(wait.because, "address");
        assert!(wait.seconds >= 1);
        assert!(
            t.admit(ann, "ann").is_ok(),
            "another address is not held up"
        );
    }

    #[test]
    fn a_name_waits_after_failures_from_anywhere_and_a_success_clears_it() {
        let t = throttle();
        for i in 0..5u8 {
            t.failed(IpAddr::from([10, 0, 0, i]), "Bob");
        }
        let wait = t
            .admit(IpAddr::from([10, 0, 1, 1]), "bob")
            .err()
            .expect("waits");
        assert_eq!(wait.because, "name");
        t.succeeded(IpAddr::from([10, 0, 0, 1]), "bob");
        assert!(t.admit(IpAddr::from([10, 0, 1, 1]), "bob").is_ok());
    }

    #[test]
    fn a_name_locked_out_from_elsewhere_still_logs_in_where_it_did_before() {
        let t = throttle();
        let home = IpAddr::from([192, 0, 2, 7]);
        t.succeeded(home, "ann");
        for i in 0..20 {
            t.failed(IpAddr::from([10, 0, 0, i]), "ann");
        }
        assert!(t.admit(IpAddr::from([10, 0, 1, 1]), "ann").is_err());
        assert!(
            t.admit(home, "ann").is_ok(),
            "Ann's usual address is not locked out"
        );
    }

    #[test]
    fn an_ipv6_64_is_one_address() {
        let t = throttle();
        for i in 0..20u16 {
            let ip: IpAddr = format!("2001:db8::{i:x}").parse().expect("ip");
            t.failed(ip, &format!("name{i}"));
        }
        let other: IpAddr = "2001:db8::ffff".parse().expect("ip");
        assert!(
            t.admit(other, "ann").is_err(),
            "the /64 has used its failures"
        );
    }

    #[test]
    fn one_check_at_a_time_per_address() {
        let t = throttle();
        let a = IpAddr::from([127, 0, 0, 2]);
        let turn = t.admit(a, "x").expect("first");
        assert_eq!(t.admit(a, "y").err().map(|w| w.because), Some("busy"));
        drop(turn);
        assert!(t.admit(a, "y").is_ok());
    }

    #[test]
    fn the_wait_doubles_up_to_the_bound_and_the_book_is_bounded() {
        let mut book: Book<u32> = Book(HashMap::new());
        let (now, max) = (Instant::now(), Duration::from_secs(60));
        let waits: Vec<u64> = (0..12)
            .map(|_| {
                book.fail(&1, 3, max, now);
                book.wait(&1, now).map_or(0, |d| d.as_secs())
            })
            .collect();
        assert_eq!(waits, [0, 0, 1, 2, 4, 8, 16, 32, 60, 60, 60, 60]);
        for k in 0..(MAX_ENTRIES as u32 + 50) {
            book.fail(&k, 3, max, now);
        }
        assert!(book.0.len() <= MAX_ENTRIES);
    }
}
