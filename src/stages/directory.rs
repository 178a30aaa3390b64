//! Who an address is: each list's posting address and its companions, forwarding aliases and
//! SRS return addresses. The SMTP session refuses everything else at RCPT time, so arclist is
//! never a relay; the pipeline asks again to route what was spooled.

use crate::base::config::ListConfig;
use crate::base::live::Live;
use crate::stages::forward::Forwarding;

/// What an accepted recipient address is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// A post to the list.
    Post,
    /// A bounce; VERP addresses carry a token after `+`.
    Bounces(Option<String>),
    /// Commands for the list robot.
    Request,
    /// A subscription request.
    Join,
    /// An unsubscription request.
    Leave,
    /// Mail for the list's owners.
    Owner,
    /// A reply confirming a join or leave request; carries the token.
    Confirm(String),
    /// `postmaster@` a list domain (RFC 5321 §4.5.1 requires accepting it).
    Postmaster,
    /// A forwarding alias (the address, lower-case).
    Forward(String),
    /// A bounce to one of our SRS addresses; carries the original sender it goes back to.
    SrsReturn(String),
    /// A receiver's DMARC aggregate report about a list domain's mail.
    DmarcReport,
}

/// A resolved recipient: which list (by posting address) and what for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// The list's posting address; for forwarding, `forward:DOMAIN`, or `srs:ADDRESS` for an
    /// SRS address. One message carries recipients of one kind only (the session asks for the
    /// others again), so a second SRS address waits for a transaction of its own: each
    /// return is screened and counted against its own sender's budget, and none is dropped.
    pub list: String,
    /// The role of the address.
    pub role: Role,
}

/// The addresses arclist serves, built from the list files and the forwarding domains.
/// Clones share one directory: a reload ([`Directory::serve_lists`], and a new value of the
/// forwarding handle) changes it for every session and worker at once.
#[derive(Clone, Default)]
pub struct Directory {
    lists: Live<Vec<ListAddress>>,
    forwarding: Live<Forwarding>,
    /// The local part that takes DMARC aggregate reports at every list domain.
    reports: Option<String>,
    /// What the SMTP session must know of each list before `250`, by posting address.
    screens: Live<Vec<ListScreen>>,
}

/// What the SMTP session screens a list's mail by, before `250`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListScreen {
    /// The list's posting address.
    pub address: String,
    /// Posts the spam filter rejects are held (`spam_reject = "hold"`), not refused.
    pub hold_spam: bool,
    /// The list's own ARC seal, `d=` and `s=` (lower-case): a post already sealed so is the
    /// list's own mail come back. `None` when another served list seals with the same pair:
    /// then a post sealed so may be that list's copy to a nested list, not a loop, and the
    /// `List-Id` check alone decides.
    pub seal: Option<(String, String)>,
    /// The list's quotas on posts.
    pub quota: crate::stages::filter::quotas::ListQuota,
    /// The list's `max_message_size`: a bigger post is refused at the end of DATA.
    pub max_message_size: Option<usize>,
}

/// A list's local part and domain (lower-case), and its posting address.
type ListAddress = (String, String, String);

impl Directory {
    /// A directory of `lists`.
    pub fn new(lists: &[ListConfig]) -> Self {
        let directory = Directory::default();
        directory.serve_lists(lists);
        directory
    }

    /// Serves `lists` from now on, instead of the lists before.
    pub fn serve_lists(&self, lists: &[ListConfig]) {
        self.lists.set(
            lists
                .iter()
                .map(|l| {
                    (
                        l.local_part().to_ascii_lowercase(),
                        l.domain().to_ascii_lowercase(),
                        l.address.clone(),
                    )
                })
                .collect(),
        );
        let seal = |l: &ListConfig| {
            (
                l.signing_domain().to_ascii_lowercase(),
                l.signing.selector.to_ascii_lowercase(),
            )
        };
        let seals: Vec<_> = lists.iter().map(seal).collect();
        self.screens.set(
            lists
                .iter()
                .map(|l| ListScreen {
                    address: l.address.clone(),
                    hold_spam: l.spam_reject == crate::base::config::SpamReject::Hold,
                    seal: Some(seal(l))
                        .filter(|own| seals.iter().filter(|s| *s == own).count() == 1),
                    quota: crate::stages::filter::quotas::ListQuota {
                        posts_per_5min: l.max_posts_per_5min,
                        posts_per_sender_per_hour: l.max_posts_per_sender_per_hour,
                    },
                    max_message_size: l.max_message_size,
                })
                .collect(),
        );
    }

    /// What the SMTP session screens the list posted to at `list` by, if it is served.
    pub fn screen(&self, list: &str) -> Option<ListScreen> {
        self.screens
            .get()
            .iter()
            .find(|l| l.address == list)
            .cloned()
    }

    /// Also serves the aliases and SRS addresses of `forwarding` (whatever value it holds).
    pub fn with_forwarding(mut self, forwarding: Live<Forwarding>) -> Self {
        self.forwarding = forwarding;
        self
    }

    /// Also takes DMARC aggregate reports at `local@` every list domain.
    pub fn with_report_address(mut self, local: Option<String>) -> Self {
        self.reports = local.map(|l| l.to_ascii_lowercase());
        self
    }

    /// What `address` is, or `None` when arclist does not serve it.
    pub fn resolve(&self, address: &str) -> Option<Recipient> {
        self.lookup(address).ok()
    }

    /// The hourly quota per envelope sender of forwarding domain `domain` (0: none, or not
    /// served).
    pub fn forward_quota(&self, domain: &str) -> u64 {
        let f = self.forwarding.get();
        f.domain(domain)
            .map_or(0, |d| d.config.max_messages_per_sender_per_hour)
    }

    /// What `address` is; when arclist does not serve it, why, if there is more to say than
    /// "not served here" (a forged or expired SRS address).
    pub fn lookup(&self, address: &str) -> Result<Recipient, Option<String>> {
        if let Some(found) = self.list_address(address) {
            return Ok(found);
        }
        let f = self.forwarding.get();
        if let Some((d, _)) = f.alias(address) {
            return Ok(Recipient {
                list: format!("forward:{}", d.config.domain),
                role: Role::Forward(address.to_ascii_lowercase()),
            });
        }
        match f.srs_return(address, crate::auth::unix_now()) {
            Some(Ok(original)) => Ok(Recipient {
                list: format!("srs:{}", address.to_ascii_lowercase()),
                role: Role::SrsReturn(original),
            }),
            Some(Err(e)) => Err(Some(e.to_string())),
            None => Err(None),
        }
    }

    /// A list's address or one of its companions; `postmaster` without a domain (RFC 5321
    /// §4.5.1 requires accepting it) is the first list's domain's postmaster.
    fn list_address(&self, address: &str) -> Option<Recipient> {
        let lists = self.lists.get();
        if address.eq_ignore_ascii_case("postmaster") {
            let (_, _, list) = lists.first()?;
            return Some(Recipient {
                list: list.clone(),
                role: Role::Postmaster,
            });
        }
        let (local, domain) = address.rsplit_once('@')?;
        let (local, domain) = (
            local.to_ascii_lowercase(),
            domain.trim_end_matches('.').to_ascii_lowercase(),
        );
        for (list_local, list_domain, list) in lists.iter() {
            if *list_domain != domain {
                continue;
            }
            let found = |role| {
                Some(Recipient {
                    list: list.clone(),
                    role,
                })
            };
            if local == *list_local {
                return found(Role::Post);
            }
            if local == "postmaster" {
                return found(Role::Postmaster);
            }
            if self.reports.as_deref() == Some(local.as_str()) {
                return found(Role::DmarcReport);
            }
            let Some(suffix) = local
                .strip_prefix(list_local.as_str())
                .and_then(|s| s.strip_prefix('-'))
            else {
                continue;
            };
            match suffix {
                "bounces" => return found(Role::Bounces(None)),
                "request" => return found(Role::Request),
                "join" => return found(Role::Join),
                "leave" => return found(Role::Leave),
                "owner" => return found(Role::Owner),
                _ => {}
            }
            if let Some(token) = suffix.strip_prefix("bounces+").filter(|t| !t.is_empty()) {
                return found(Role::Bounces(Some(token.to_string())));
            }
            if let Some(token) = suffix.strip_prefix("confirm+").filter(|t| !t.is_empty()) {
                return found(Role::Confirm(token.to_string()));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> Directory {
        let d = Directory::default();
        d.lists.set(vec![(
            "members".into(),
            "lists.example.org".into(),
            "members@lists.example.org".into(),
        )]);
        d
    }

    #[test]
    fn a_seal_two_lists_share_is_no_loop_sign() {
        let list = |address: &str, selector: &str| -> ListConfig {
            toml::from_str(&format!(
                "address = \"{address}\"\n[signing]\nselector = \"{selector}\"\nkey = \"k.pem\"\n"
            ))
            .expect("list")
        };
        // national@ and regional@ seal with one domain and selector: regional@ (a member of
        // national@) must not take national@'s copy for its own mail come back.
        let d = Directory::new(&[
            list("national@lists.example.org", "arc1"),
            list("regional@lists.example.org", "arc1"),
            list("other@lists.example.org", "arc2"),
        ]);
        let seal = |a: &str| d.screen(a).expect("served").seal;
        assert_eq!(seal("national@lists.example.org"), None);
        assert_eq!(seal("regional@lists.example.org"), None);
        assert_eq!(
            seal("other@lists.example.org"),
            Some(("lists.example.org".into(), "arc2".into()))
        );
    }

    #[test]
    fn companions_and_strangers() {
        let d = dir();
        assert_eq!(
            d.resolve("Members@Lists.Example.org").map(|r| r.role),
            Some(Role::Post)
        );
        assert_eq!(
            d.resolve("members-bounces+abc123@lists.example.org")
                .map(|r| r.role),
            Some(Role::Bounces(Some("abc123".into())))
        );
        assert_eq!(
            d.resolve("members-owner@lists.example.org").map(|r| r.role),
            Some(Role::Owner)
        );
        assert_eq!(
            d.resolve("postmaster@lists.example.org").map(|r| r.role),
            Some(Role::Postmaster)
        );
        assert_eq!(d.resolve("members@elsewhere.example"), None);
        assert_eq!(d.resolve("members-bounces+@lists.example.org"), None);
        assert_eq!(d.resolve("members-other@lists.example.org"), None);
        assert_eq!(d.resolve("victim@gmail.com"), None);
    }
}
