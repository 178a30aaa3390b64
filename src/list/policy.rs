//! Stage 5: who may post, what is held, and loop protection.

use crate::auth::Verification;
use crate::auth::dmarc::{DmarcVerdict, Policy};
use crate::auth::message::RawMessage;
use crate::auth::trust::TrustDecision;
use crate::config::{DmarcFailAction, ListConfig, NonMemberAction};

/// What happens to a post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Transform, sign and send to the members.
    Distribute,
    /// Keep for a moderator, with the reason.
    Hold(String),
    /// Refuse, with the reason.
    Reject(String),
    /// Drop silently, with the reason (for the log).
    Discard(String),
}

/// The List-Id value of `list`: `Name <local.domain>` (RFC 2919).
pub fn list_id(list: &ListConfig) -> String {
    format!("{}.{}", list.local_part(), list.domain())
}

/// Why `message` must not be redistributed by `list` again, if it must not.
pub fn loop_reason(message: &RawMessage<'_>, list: &ListConfig) -> Option<String> {
    let id = format!("<{}>", list_id(list));
    if message.fields("List-Id").any(|f| {
        f.unfolded_value()
            .to_ascii_lowercase()
            .contains(&id.to_ascii_lowercase())
    }) {
        return Some(format!("already carries this list's List-Id {id}"));
    }
    let ours = format!("d={}", list.signing_domain().to_ascii_lowercase());
    let sel = format!("s={}", list.signing.selector);
    message
        .fields("ARC-Seal")
        .map(|f| f.unfolded_value().to_ascii_lowercase().replace(' ', ""))
        .any(|v| {
            v.split(';').any(|t| t.trim() == ours)
                && v.split(';').any(|t| t.trim() == sel.to_ascii_lowercase())
        })
        .then(|| format!("already sealed by this list ({ours}, {sel})"))
}

/// Decides what happens to a post from `poster` to `list`.
pub fn decide(
    list: &ListConfig,
    v: &Verification,
    trust: &TrustDecision,
    is_member: bool,
    loop_reason: Option<String>,
) -> Decision {
    if let Some(why) = loop_reason {
        return Decision::Discard(format!("loop: {why}"));
    }
    if v.dmarc.verdict == DmarcVerdict::Fail
        && v.dmarc.policy == Policy::Reject
        && !trust.overridden
    {
        let why = format!(
            "DMARC fails for {} with p=reject ({}); {}",
            v.dmarc.from_domain, v.dmarc.reason, trust.reason
        );
        return match list.dmarc_fail_action {
            DmarcFailAction::Reject => Decision::Reject(why),
            DmarcFailAction::Hold => Decision::Hold(why),
        };
    }
    if list.moderated {
        return Decision::Hold("the list is moderated".into());
    }
    if !is_member {
        let why = "the poster is not a member".to_string();
        return match list.non_member_action {
            NonMemberAction::Hold => Decision::Hold(why),
            NonMemberAction::Reject => Decision::Reject(why),
            NonMemberAction::Discard => Decision::Discard(why),
            NonMemberAction::Accept => Decision::Distribute,
        };
    }
    Decision::Distribute
}
