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

/// Why `message` is not a post to distribute at all, if it is not: a loop (this list's mail
/// come back), or mail a robot sent (RFC 3834: an out-of-office reply to a post would otherwise
/// go to every member, and their auto-replies back to the list).
pub fn not_a_post(message: &RawMessage<'_>, list: &ListConfig) -> Option<String> {
    if let Some(why) = loop_reason(message, list) {
        return Some(format!("loop: {why}"));
    }
    automatic(message).map(|why| format!("automatic mail, not a post: {why}"))
}

/// What marks `message` as sent by a robot: `Auto-Submitted` other than `no`, `Precedence`
/// bulk, junk, list or auto_reply, `X-Autoreply`/`X-Autorespond`, or an out-of-office title.
pub fn automatic(message: &RawMessage<'_>) -> Option<String> {
    let value = |name: &str| {
        message
            .fields(name)
            .next()
            .map(|f| f.unfolded_value().trim().to_ascii_lowercase())
    };
    if let Some(v) = value("Auto-Submitted").filter(|v| !v.starts_with("no")) {
        return Some(format!("Auto-Submitted: {v}"));
    }
    if let Some(v) = value("Precedence")
        .filter(|v| matches!(v.as_str(), "bulk" | "junk" | "list" | "auto_reply"))
    {
        return Some(format!("Precedence: {v}"));
    }
    for name in ["X-Autoreply", "X-Autorespond"] {
        if value(name).is_some() {
            return Some(format!("{name} present"));
        }
    }
    let subject = value("Subject").unwrap_or_default();
    [
        "out of office",
        "automatic reply",
        "autoreply",
        "auto-reply",
    ]
    .iter()
    .find(|w| subject.contains(*w))
    .map(|w| format!("subject says {w:?}"))
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
        return Decision::Discard(why);
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
