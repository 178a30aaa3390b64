//! The screen a message to an alias passes before arclist says `250`: a forwarder that accepts
//! and then drops mail loses it silently, and one that accepts and bounces it sends
//! backscatter. Refusing in the SMTP session tells the real sender's server, which tells the
//! real sender.

use super::Forwarding;
use crate::auth::dmarc::{DmarcVerdict, Policy};
use crate::auth::message::RawMessage;
use crate::auth::{Authenticator, Envelope, Verification};
use crate::config::Alias;

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

/// What the session needs to screen messages to aliases.
#[derive(Clone)]
pub struct Gate {
    /// The aliases (replaced by a reload).
    pub forwarding: crate::live::Live<Forwarding>,
    /// The auth engine.
    pub auth: Authenticator,
}

/// Checks that do not need DNS: size, hop count, and our own earlier delivery to the alias.
pub fn precheck(message: &[u8], aliases: &[(String, Alias)], max_hops: usize) -> Option<Refusal> {
    let limit = aliases.iter().map(|(_, a)| a.max_size).min()?;
    if message.len() > limit {
        return Some(Refusal {
            code: 552,
            status: "5.3.4",
            text: format!("message exceeds the {limit} byte limit for forwarding"),
        });
    }
    let parsed = RawMessage::parse(message);
    let hops = parsed.fields("Received").count();
    if hops > max_hops {
        return Some(Refusal {
            code: 554,
            status: "5.4.6",
            text: format!("{hops} Received fields: too many hops, probably a mail loop"),
        });
    }
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

/// The verdict's part: a temporary DNS failure asks the sender to retry; a DMARC failure for
/// an author domain publishing p=reject is refused unless every alias allows it, or an ARC
/// chain sealed only by `trusted` sealers vouches for the original (RFC 8617 §7.2).
pub fn judge(v: &Verification, aliases: &[(String, Alias)], trusted: &[String]) -> Option<Refusal> {
    if v.has_temporary_error() {
        return Some(Refusal {
            code: 451,
            status: "4.7.0",
            text: "temporary DNS failure while checking the sender; try again later".into(),
        });
    }
    let allowed = aliases.iter().all(|(_, a)| a.forward_dmarc_reject)
        || crate::auth::trust::evaluate(v, trusted).overridden;
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

impl Gate {
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
        let aliases = self.aliases(rcpts);
        let forwarding = self.forwarding.get();
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
