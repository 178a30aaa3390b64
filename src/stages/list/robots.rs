//! Robots never answer robots (RFC 3834): the list robot's replies (confirmations, help) go
//! only to people, and to one address at most a few times an hour. An auto-reply, a bounce, a
//! list's mail or the list's own address answered would answer back, and two robots can mail
//! each other for ever.

use crate::auth::message::RawMessage;
use crate::base::config::ListConfig;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Why the robot must not answer `message` from `requester` (envelope sender `mail_from`), if
/// it must not.
pub fn why_not_answer(
    message: &[u8],
    mail_from: &str,
    requester: &str,
    list: &ListConfig,
) -> Option<String> {
    if mail_from.is_empty() {
        return Some("sent from the null sender (a bounce or an automatic reply)".into());
    }
    if requester.is_empty() {
        return Some("no sender to answer".into());
    }
    if is_own_address(requester, list) {
        return Some(format!("{requester} is one of the list's own addresses"));
    }
    let parsed = RawMessage::parse(message);
    let value = |name: &str| super::policy::lowered(&parsed, name);
    if let Some(auto) = value("Auto-Submitted").filter(|v| !v.starts_with("no")) {
        return Some(format!("Auto-Submitted: {auto}"));
    }
    if let Some(p) = value("Precedence").filter(|v| matches!(v.as_str(), "bulk" | "list" | "junk"))
    {
        return Some(format!("Precedence: {p}"));
    }
    if value("List-Id").is_some() {
        return Some("sent by a mailing list (List-Id)".into());
    }
    None
}

/// Whether `address` is the list's posting address, one of its companions (`NAME-…@`), or
/// the postmaster or mailer-daemon of its domain.
pub fn is_own_address(address: &str, list: &ListConfig) -> bool {
    let Some((local, domain)) = address.rsplit_once('@') else {
        return false;
    };
    if !domain
        .trim_end_matches('.')
        .eq_ignore_ascii_case(list.domain())
    {
        return false;
    }
    let local = local.to_ascii_lowercase();
    let own = list.local_part().to_ascii_lowercase();
    local == own
        || local.starts_with(&format!("{own}-"))
        || matches!(local.as_str(), "postmaster" | "mailer-daemon")
}

/// Replies sent in the last hour, by normalised address ([`crate::base::config::mailbox_key`]): a bound on what one
/// mailbox can be made to receive from the robot (forged join requests in someone else's
/// name, a loop with another robot), however its address is spelled.
pub struct Replies {
    per_hour: usize,
    sent: Mutex<HashMap<String, VecDeque<u64>>>,
}

/// Addresses remembered before old entries are swept out all at once.
const SWEEP_AT: usize = 10_000;

impl Replies {
    /// At most `per_hour` replies to one address in any hour.
    pub fn new(per_hour: usize) -> Self {
        Replies {
            per_hour,
            sent: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a reply to `address` (its mailbox: see [`crate::base::config::mailbox_key`]) at unix time `now`, or says
    /// no when it would be one too many.
    pub fn allow(&self, address: &str, now: u64) -> bool {
        let Ok(mut sent) = self.sent.lock() else {
            return false;
        };
        let hour_ago = now.saturating_sub(3600);
        if sent.len() >= SWEEP_AT {
            sent.retain(|_, times| times.back().is_some_and(|t| *t > hour_ago));
        }
        let times = sent
            .entry(crate::base::config::mailbox_key(address))
            .or_default();
        while times.front().is_some_and(|t| *t <= hour_ago) {
            times.pop_front();
        }
        if times.len() >= self.per_hour {
            return false;
        }
        times.push_back(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list() -> ListConfig {
        toml::from_str(
            "address = \"members@lists.example.org\"\n[signing]\nselector = \"s\"\nkey = \"k.pem\"\n",
        )
        .expect("list")
    }

    #[test]
    fn robots_and_the_lists_own_addresses_get_no_answer() {
        let l = list();
        let plain = b"From: a@b.example\r\nSubject: help\r\n\r\n";
        assert_eq!(
            why_not_answer(plain, "a@b.example", "a@b.example", &l),
            None
        );
        assert!(why_not_answer(plain, "", "a@b.example", &l).is_some());
        for own in [
            "members@lists.example.org",
            "Members-Request@Lists.Example.org",
            "members-bounces+x@lists.example.org",
            "postmaster@lists.example.org",
        ] {
            assert!(why_not_answer(plain, own, own, &l).is_some(), "{own}");
        }
        assert!(!is_own_address("members@other.example", &l));
        assert!(!is_own_address("membership@lists.example.org", &l));
        for field in [
            "Auto-Submitted: auto-replied",
            "Precedence: bulk",
            "List-Id: <x.example>",
        ] {
            let m = format!("From: a@b.example\r\n{field}\r\n\r\n");
            assert!(
                why_not_answer(m.as_bytes(), "a@b.example", "a@b.example", &l).is_some(),
                "{field}"
            );
        }
        let human = b"From: a@b.example\r\nAuto-Submitted: no\r\n\r\n";
        assert_eq!(
            why_not_answer(human, "a@b.example", "a@b.example", &l),
            None
        );
    }

    #[test]
    fn replies_to_one_address_are_bounded_per_hour() {
        let r = Replies::new(3);
        assert!((0..3).all(|i| r.allow("v@x.example", 1000 + i)));
        assert!(!r.allow("V@x.example", 1010), "the fourth within the hour");
        assert!(r.allow("other@x.example", 1010));
        assert!(r.allow("v@x.example", 1000 + 3601), "an hour later");
    }

    #[test]
    fn plus_tags_and_case_count_as_one_mailbox() {
        let r = Replies::new(3);
        for (i, spelling) in ["v+1@x.example", "V+2@X.Example.", "v@x.example"]
            .iter()
            .enumerate()
        {
            assert!(r.allow(spelling, 1000 + i as u64), "{spelling}");
        }
        assert!(
            !r.allow("v+3@x.example", 1010),
            "a fourth tag, same mailbox"
        );
        assert!(r.allow("w+1@x.example", 1010), "another mailbox");
        assert_eq!(
            crate::base::config::mailbox_key("Ann+a+b@Example.ORG."),
            "ann@example.org"
        );
        assert_eq!(
            crate::base::config::mailbox_key("no-at-sign"),
            "no-at-sign@"
        );
    }
}
