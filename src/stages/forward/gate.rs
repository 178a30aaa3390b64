//! The screen a message to an alias or an SRS address passes before arclist says `250`: a forwarder that accepts
//! and then drops mail loses it silently, and one that accepts and bounces it sends
//! backscatter. Refusing in the SMTP session tells the real sender's server, which tells the
//! real sender.

use super::returns::{self, ReturnBudget};
use super::{ForwardDomain, Forwarding};
use crate::auth::dmarc::{DmarcVerdict, Policy};
use crate::auth::message::RawMessage;
use crate::auth::{Authenticator, Envelope, Verification};
use crate::base::config::Alias;
use std::sync::Arc;

/// Why a message is not forwarded: an SMTP reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// 4xx or 5xx.
    pub code: u16,
    /// The enhanced status code.
    pub status: &'static str,
    /// The text for the sender.
    pub text: String,
}

/// What the session needs to screen messages to aliases and SRS addresses.
#[derive(Clone)]
pub struct Gate {
    /// The aliases (replaced by a reload).
    pub forwarding: crate::base::live::Live<Forwarding>,
    /// The auth engine.
    pub auth: Authenticator,
    /// What went back through SRS addresses this hour; kept across reloads.
    returns: Arc<ReturnBudget>,
}

/// Checks that do not need DNS: size, hop count, and our own earlier delivery to the alias.
pub fn precheck(message: &[u8], aliases: &[(String, Alias)], max_hops: usize) -> Option<Refusal> {
    let limit = aliases.iter().map(|(_, a)| a.max_size).min()?;
    if let Some(r) = size_and_hops(message, limit, max_hops) {
        return Some(r);
    }
    let parsed = RawMessage::parse(message);
    // Each forwarded copy carries Delivered-To for its alias: seeing our own again is a loop
    // (an alias forwarding to a mailbox that forwards back).
    for field in parsed.fields("Delivered-To") {
        let seen = field
            .unfolded_value()
            .trim()
            .trim_matches(['<', '>'])
            .to_ascii_lowercase();
        if let Some((alias, _)) = aliases.iter().find(|(a, _)| *a == seen) {
            return Some(Refusal {
                code: 554,
                status: "5.4.6",
                text: format!("mail loop: this message was already forwarded for {alias}"),
            });
        }
    }
    None
}

/// The size limit (552) and the hop count (554: probably a loop), which relayed mail of every
/// kind keeps.
fn size_and_hops(message: &[u8], limit: usize, max_hops: usize) -> Option<Refusal> {
    if message.len() > limit {
        return Some(Refusal {
            code: 552,
            status: "5.3.4",
            text: format!("message exceeds the {limit} byte limit for forwarding"),
        });
    }
    let hops = RawMessage::parse(message).fields("Received").count();
    if hops > max_hops {
        return Some(Refusal {
            code: 554,
            status: "5.4.6",
            text: format!("{hops} Received fields: too many hops, probably a mail loop"),
        });
    }
    None
}

/// The verdict's part: a temporary DNS failure asks the sender to retry; a DMARC failure for
/// an author domain publishing p=reject is refused unless every alias allows it, or an ARC
/// chain sealed only by `trusted` sealers vouches for the original (RFC 8617 §7.2).
pub fn judge(v: &Verification, aliases: &[(String, Alias)], trusted: &[String]) -> Option<Refusal> {
    judge_dmarc(
        v,
        aliases.iter().all(|(_, a)| a.forward_dmarc_reject),
        trusted,
    )
}

/// As [`judge`], with `allowed` saying whether the recipients take p=reject failures anyway.
pub fn judge_dmarc(v: &Verification, allowed: bool, trusted: &[String]) -> Option<Refusal> {
    if v.has_temporary_error() {
        return Some(Refusal {
            code: 451,
            status: "4.7.0",
            text: "temporary DNS failure while checking the sender; try again later".into(),
        });
    }
    let allowed = allowed || crate::auth::trust::evaluate(v, trusted).overridden;
    if v.dmarc.verdict == DmarcVerdict::Fail && v.dmarc.policy == Policy::Reject && !allowed {
        return Some(Refusal {
            code: 550,
            status: "5.7.1",
            text: format!(
                "{} publishes DMARC p=reject and this message fails DMARC (no aligned SPF or DKIM pass); not forwarded",
                v.dmarc.from_domain
            ),
        });
    }
    None
}

/// Why a message to an SRS address is not relayed, when it is not: a `550` for anything but a
/// delivery report or an auto-reply ([`returns::kind`]).
pub fn return_refusal(message: &[u8]) -> Option<Refusal> {
    let why = returns::kind(message).err()?;
    Some(Refusal {
        code: 550,
        status: "5.7.1",
        text: format!(
            "an SRS address relays only delivery reports and auto-replies to the original sender, and {why}; not relayed"
        ),
    })
}

impl Gate {
    /// A gate over `forwarding`'s aliases and SRS addresses, authenticating with `auth`.
    pub fn new(forwarding: crate::base::live::Live<Forwarding>, auth: Authenticator) -> Self {
        Gate {
            forwarding,
            auth,
            returns: Arc::default(),
        }
    }

    /// The aliases among `rcpts`, with their policies.
    pub fn aliases(&self, rcpts: &[String]) -> Vec<(String, Alias)> {
        let forwarding = self.forwarding.get();
        rcpts
            .iter()
            .filter_map(|r| {
                forwarding
                    .alias(r)
                    .map(|(_, a)| (r.to_ascii_lowercase(), a))
            })
            .collect()
    }

    /// Screens a message for `rcpts`: the refusal, if any, and the verdict when the message
    /// was verified (the pipeline uses it instead of verifying again).
    pub async fn screen(
        &self,
        message: &[u8],
        envelope: &Envelope,
        rcpts: &[String],
    ) -> (Option<Refusal>, Option<Verification>) {
        let forwarding = self.forwarding.get();
        if let Some((domain, originals)) = srs_returns(&forwarding, rcpts) {
            return self
                .screen_return(message, envelope, &domain, &originals)
                .await;
        }
        let aliases = self.aliases(rcpts);
        let Some((domain, _)) = rcpts.iter().find_map(|r| forwarding.alias(r)) else {
            return (None, None);
        };
        if let Some(r) = precheck(message, &aliases, domain.config.max_hops) {
            return (Some(r), None);
        }
        let v = self
            .auth
            .verify(message, Some(envelope), crate::auth::unix_now())
            .await;
        (judge(&v, &aliases, &domain.config.trusted_sealers), Some(v))
    }
}

/// The forwarding domain and the original senders (lower-case, once each) of the SRS
/// addresses among `rcpts`, if there are any.
fn srs_returns(
    forwarding: &Forwarding,
    rcpts: &[String],
) -> Option<(Arc<ForwardDomain>, Vec<String>)> {
    let now = crate::auth::unix_now();
    let mut domain = None;
    let mut originals: Vec<String> = Vec::new();
    for r in rcpts {
        let Some(Ok(original)) = forwarding.srs_return(r, now) else {
            continue;
        };
        domain = domain.or_else(|| forwarding.by_srs_address(r).cloned());
        let original = original.to_ascii_lowercase();
        if !originals.contains(&original) {
            originals.push(original);
        }
    }
    Some((domain?, originals))
}

impl Gate {
    /// Screens a null-sender message to SRS addresses: a delivery report or an auto-reply
    /// (550 otherwise), within size and hops, not a p=reject DMARC failure, and within the
    /// hourly budget of each original sender (450 over it: a genuine report is retried by its
    /// server and arrives late, not lost).
    async fn screen_return(
        &self,
        message: &[u8],
        envelope: &Envelope,
        domain: &ForwardDomain,
        originals: &[String],
    ) -> (Option<Refusal>, Option<Verification>) {
        let config = &domain.config;
        if let Some(r) = return_refusal(message)
            .or_else(|| size_and_hops(message, config.max_size, config.max_hops))
        {
            return (Some(r), None);
        }
        let v = self
            .auth
            .verify(message, Some(envelope), crate::auth::unix_now())
            .await;
        // Nobody asked for spoofs of p=reject authors: the original sender is whoever the
        // address decodes to, never a mailbox that opted in as an alias's targets did.
        if let Some(r) = judge_dmarc(&v, false, &config.trusted_sealers) {
            return (Some(r), Some(v));
        }
        let per_hour = config.srs.returns_per_hour;
        let now = crate::auth::unix_now();
        for original in originals {
            if let Err(wait) = self.returns.take(original, per_hour, now) {
                tracing::info!(ip = %envelope.ip, to = %original, domain = %config.domain, per_hour, "SRS return over its hourly budget ([srs] returns_per_hour); 450");
                let text = format!(
                    "more than {per_hour} delivery reports and auto-replies for this SRS address's sender this hour; try again in {wait} s"
                );
                return (
                    Some(Refusal {
                        code: 450,
                        status: "4.7.1",
                        text,
                    }),
                    Some(v),
                );
            }
        }
        (None, Some(v))
    }
}
