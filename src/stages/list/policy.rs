//! Stage 5: who may post, what is held, and loop protection.

use crate::auth::Verification;
use crate::auth::arc::ArcVerdict;
use crate::auth::dkim::DkimVerdict;
use crate::auth::dmarc::{DmarcVerdict, Policy};
use crate::auth::message::RawMessage;
use crate::auth::trust::TrustDecision;
use crate::base::config::{DmarcFailAction, ListConfig, NonMemberAction};

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

/// Who the poster is to the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Not a member: the list's `non_member_action` applies.
    NonMember,
    /// A member.
    Member,
    /// A member whose posts a moderator sees first (the member's `moderated` flag).
    Moderated,
    /// On the list's `accept_posts_from`: posts as a member does.
    Accepted,
    /// On the list's `hold_posts_from`.
    Held,
    /// On the list's `reject_posts_from`.
    Rejected,
    /// On the list's `discard_posts_from`.
    Discarded,
}

/// What the list makes of `poster` (its address, lower-case), who has `member`'s record if a
/// member. The moderation lists come first, the harshest first (discard, reject, hold, accept);
/// then the member's own flag.
pub fn standing(
    list: &ListConfig,
    poster: &str,
    member: Option<&crate::state::store::Member>,
) -> Standing {
    let on = |patterns: &[String]| patterns.iter().any(|p| matches_pattern(p, poster));
    if on(&list.discard_posts_from) {
        Standing::Discarded
    } else if on(&list.reject_posts_from) {
        Standing::Rejected
    } else if on(&list.hold_posts_from) {
        Standing::Held
    } else {
        match member {
            Some(m) if m.moderated => Standing::Moderated,
            Some(_) => Standing::Member,
            None if on(&list.accept_posts_from) => Standing::Accepted,
            None => Standing::NonMember,
        }
    }
}

/// Whether `address` matches `pattern`, ignoring case: `*` stands for any run of characters,
/// everything else for itself.
pub fn matches_pattern(pattern: &str, address: &str) -> bool {
    let (p, a) = (
        pattern.trim().to_ascii_lowercase(),
        address.to_ascii_lowercase(),
    );
    let mut pieces = p.split('*');
    let first = pieces.next().unwrap_or_default();
    let Some(mut rest) = a.strip_prefix(first) else {
        return false;
    };
    let pieces: Vec<&str> = pieces.collect();
    let Some((last, middle)) = pieces.split_last() else {
        return rest.is_empty();
    };
    for piece in middle {
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// The List-Id value of `list`: `Name <local.domain>` (RFC 2919).
pub fn list_id(list: &ListConfig) -> String {
    format!("{}.{}", list.local_part(), list.domain())
}

/// Why `message` is not a post to distribute at all, if it is not: a loop (this list's mail
/// come back), or an automatic reply (RFC 3834: one member's out-of-office answer to a post
/// would otherwise go to every member, and their auto-replies back to the list).
pub fn not_a_post(message: &RawMessage<'_>, list: &ListConfig) -> Option<String> {
    if let Some(why) = loop_reason(message, list) {
        return Some(format!("loop: {why}"));
    }
    auto_reply(message).map(|why| format!("automatic reply, not a post: {why}"))
}

/// What marks `message` as an automatic reply: `Auto-Submitted: auto-replied`,
/// `X-Autoreply`/`X-Autorespond`, or `Precedence: auto_reply`. The subject alone never
/// decides: a person may well write "Out of office next week".
pub fn auto_reply(message: &RawMessage<'_>) -> Option<String> {
    let value = |name: &str| lowered(message, name);
    if let Some(v) = value("Auto-Submitted").filter(|v| v.starts_with("auto-replied")) {
        return Some(format!("Auto-Submitted: {v}"));
    }
    if value("Precedence").as_deref() == Some("auto_reply") {
        return Some("Precedence: auto_reply".into());
    }
    ["X-Autoreply", "X-Autorespond"]
        .into_iter()
        .find(|name| value(name).is_some())
        .map(|name| format!("{name} present"))
}

/// Why `message` looks sent by a robot other than an auto-responder (`Auto-Submitted:
/// auto-generated`, `Precedence: bulk`, `junk` or `list`): held for a moderator rather than
/// distributed or dropped, since a cron job's list or an umbrella list fed by another list
/// sends such mail on purpose, and a moderator can approve it.
pub fn robot_sent(message: &RawMessage<'_>) -> Option<String> {
    let value = |name: &str| lowered(message, name);
    if let Some(v) = value("Auto-Submitted").filter(|v| !v.starts_with("no")) {
        return Some(format!("Auto-Submitted: {v}"));
    }
    value("Precedence")
        .filter(|v| matches!(v.as_str(), "bulk" | "junk" | "list"))
        .map(|v| format!("Precedence: {v}"))
}

/// The first `name` field's value, unfolded, trimmed and lower-cased.
pub fn lowered(message: &RawMessage<'_>, name: &str) -> Option<String> {
    message
        .fields(name)
        .next()
        .map(|f| f.unfolded_value().trim().to_ascii_lowercase())
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
    let (domain, selector) = (list.signing_domain(), &list.signing.selector);
    crate::stages::filter::loops::sealed_by(message, domain, selector).then(|| {
        format!(
            "already sealed by this list (d={}, s={selector})",
            domain.to_ascii_lowercase()
        )
    })
}

/// Why a post waits for a moderator on the spam filter's word, if it does: the filter said
/// reject (or discard, or quarantine) before `250` and the list holds such posts
/// (`spam_reject = "hold"`).
pub fn held_by_filter(meta: &crate::state::store::SpoolMeta) -> Option<String> {
    let mark = meta.envelope.filter.as_ref()?;
    mark.must_not_pass().then(|| {
        mark.reason
            .clone()
            .unwrap_or_else(|| format!("the spam filter says reject (score {:.2})", mark.score))
    })
}

/// Whether `message` comes from a list `list` is subscribed to (`nested_from`): `None` when
/// it names none of them in `List-Id`; `Ok` with the parent's List-Id when a passing DKIM
/// signature of the parent's domain (or a subdomain), or a passing ARC chain whose newest
/// seal is the parent's, vouches for it; `Err` with the reason otherwise, since anybody can
/// write a `List-Id` field.
pub fn from_parent(
    list: &ListConfig,
    v: &Verification,
    message: &RawMessage<'_>,
) -> Option<Result<String, String>> {
    let ids: Vec<String> = message
        .fields("List-Id")
        .filter_map(|f| {
            let value = f.unfolded_value();
            let inner = value.rsplit_once('<')?.1.split_once('>')?.0.trim();
            Some(inner.to_ascii_lowercase())
        })
        .collect();
    let parent = list.nested_from.iter().find(|p| ids.contains(&p.list_id))?;
    let ours = |d: &str| {
        let d = d.to_ascii_lowercase();
        d == parent.domain || d.ends_with(&format!(".{}", parent.domain))
    };
    let dkim = v
        .dkim
        .iter()
        .any(|d| d.verdict == DkimVerdict::Pass && ours(&d.domain));
    let arc =
        v.arc.verdict == ArcVerdict::Pass && v.arc.hops.first().is_some_and(|h| ours(&h.domain));
    if dkim || arc {
        return Some(Ok(parent.list_id.clone()));
    }
    Some(Err(format!(
        "carries the List-Id of parent list {} but no passing DKIM signature or ARC seal of {} vouches for it (DKIM: {}; ARC: {})",
        parent.list_id,
        parent.domain,
        dkim_summary(v),
        v.arc.verdict.as_str()
    )))
}

/// The DKIM results in a few words, for a reason a moderator reads.
fn dkim_summary(v: &Verification) -> String {
    if v.dkim.is_empty() {
        return "no signature".into();
    }
    v.dkim
        .iter()
        .map(|d| format!("{} {}", d.domain, d.verdict.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Decides what happens to a post from `poster` to `list`.
pub fn decide(
    list: &ListConfig,
    v: &Verification,
    trust: &TrustDecision,
    poster: Standing,
    loop_reason: Option<String>,
    message: &RawMessage<'_>,
) -> Decision {
    if let Some(why) = loop_reason {
        return Decision::Discard(why);
    }
    match poster {
        Standing::Discarded => {
            return Decision::Discard("the poster is on the list's discard_posts_from".into());
        }
        Standing::Rejected => return Decision::Reject(list.reject_reason.clone()),
        _ => {}
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
    if poster == Standing::Moderated {
        return Decision::Hold("the poster is a moderated member".into());
    }
    if poster == Standing::Held {
        return Decision::Hold("the poster is on the list's hold_posts_from".into());
    }
    match from_parent(list, v, message) {
        Some(Ok(_)) => return Decision::Distribute,
        Some(Err(why)) => return Decision::Hold(why),
        None => {}
    }
    if let Some(why) = robot_sent(message) {
        return Decision::Hold(format!(
            "sent by a robot ({why}); a moderator may let it through"
        ));
    }
    if poster == Standing::NonMember {
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

#[cfg(test)]
mod pattern_tests {
    use super::matches_pattern;

    #[test]
    fn patterns_match_whole_addresses_with_stars() {
        assert!(matches_pattern("Carol@Club.test", "carol@club.test"));
        assert!(!matches_pattern("carol@club.test", "xcarol@club.test"));
        assert!(!matches_pattern("carol@club.test", "carol@club.test.evil"));
        assert!(matches_pattern("*@club.test", "anyone@club.test"));
        assert!(!matches_pattern("*@club.test", "anyone@club.test.evil"));
        assert!(matches_pattern("dave@*", "dave@anywhere.example"));
        assert!(matches_pattern("*spam*@club.test", "bigspammer@club.test"));
        assert!(!matches_pattern("*spam*@club.test", "bob@club.test"));
        assert!(matches_pattern("a*a", "aa"));
        assert!(!matches_pattern("a*a", "a"));
    }
}
