//! Email commands: `-join`, `-leave`, `-request` (with `set` for the delivery mode) and
//! `-confirm+TOKEN`, with double opt-in.
//!
//! A join, leave or `set` request never changes anything by itself: it sends a confirmation
//! to the address asking, and only a reply to the token address it names (from that same
//! address, within three days) does. So nobody can subscribe, unsubscribe or pause someone
//! else's mail with a forged From.

use super::ListRuntime;
use super::copy::author;
use super::notice::{self, Notice};
use super::robots;
use super::tokens::{self, Action};
use crate::stages::directory::Role;
use crate::state::store::modes::{date_of, day_number, parse_date};
use crate::state::store::{
    DeliveryMode, Member, SpoolId, SpoolMeta, SpoolState, Store, StoreError,
};

/// What a command message asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Start a subscription (asks for confirmation).
    Join,
    /// End a subscription (asks for confirmation).
    Leave,
    /// Carry out the request a token stands for.
    Confirm(String),
    /// Change the delivery mode (asks for confirmation): `set regular`, `set digest`,
    /// `set digest plain`, `set nomail`, `set nomail until YYYY-MM-DD`.
    Set(DeliveryMode, Option<String>),
    /// Send the command summary.
    Help,
    /// A moderator's decision on a held post: the word (`approve`, `reject`, `discard`) and
    /// the post's moderation token.
    Moderate(String, String),
}

/// The request a message to `role` makes; `-request` reads the first word of the Subject.
pub fn request_for(role: &Role, subject: &str) -> Option<Request> {
    match role {
        Role::Join => Some(Request::Join),
        Role::Leave => Some(Request::Leave),
        Role::Confirm(token) => Some(Request::Confirm(token.to_ascii_lowercase())),
        Role::Request => {
            let words: Vec<String> = subject
                .split_whitespace()
                .map(|w| w.to_ascii_lowercase())
                .collect();
            // Replies keep "Re:" in front of the subject they answer.
            let words: Vec<&str> = words
                .iter()
                .map(String::as_str)
                .filter(|w| *w != "re:")
                .collect();
            Some(match words.as_slice() {
                ["join" | "subscribe", ..] => Request::Join,
                ["leave" | "unsubscribe", ..] => Request::Leave,
                ["confirm", token, ..] => Request::Confirm((*token).to_string()),
                ["set", rest @ ..] => set_request(rest).unwrap_or(Request::Help),
                [word @ ("approve" | "reject" | "discard"), token, ..] => Request::Moderate(
                    (*word).to_string(),
                    token.trim_end_matches([':', ',', '.']).to_string(),
                ),
                _ => Request::Help,
            })
        }
        _ => None,
    }
}

/// The `set` command's words after `set`; `None` (help is sent) for anything else.
fn set_request(words: &[&str]) -> Option<Request> {
    let (mode, until) = match words {
        ["regular" | "normal"] => (DeliveryMode::Regular, None),
        ["digest"] | ["digest", "mime"] => (DeliveryMode::Digest, None),
        ["digest", "plain"] => (DeliveryMode::DigestPlain, None),
        ["nomail"] => (DeliveryMode::Nomail, None),
        ["nomail", "until", date] => (DeliveryMode::Nomail, Some(parse_date(date)?)),
        _ => return None,
    };
    Some(Request::Set(mode, until))
}

/// A reply (subject, body, Reply-To) to send, if any, and the note for the spool.
type Answer = (Option<(String, String, Option<String>)>, String);

/// The confirmation request for a join or leave: a reply to a token address confirms it.
fn ask_to_confirm(
    cfg: &crate::base::config::ListConfig,
    secret: &[u8],
    action: Action,
    requester: &str,
    today: u64,
) -> Answer {
    let token = tokens::make(secret, action, &cfg.address, requester, today);
    let confirm = format!("{}-confirm+{token}@{}", cfg.local_part(), cfg.domain());
    let asked = match action {
        Action::Set(mode, until) => format!(
            "that {requester} get the {} list ({}) as: {}",
            cfg.display_name(),
            cfg.address,
            describe(mode, until.map(|d| date_of(d * 86_400)).as_deref())
        ),
        _ => format!(
            "to {} the {} list ({}) for {requester}",
            action.word(),
            cfg.display_name(),
            cfg.address
        ),
    };
    let body = format!(
        "Someone, hopefully you, asked {asked}.\r\n\r\n\
         To confirm, reply to this message, or send any message to\r\n\r\n    {confirm}\r\n\r\n\
         If you did not ask, ignore this message: nothing changes, and the request expires in {} days.\r\n",
        tokens::VALID_DAYS
    );
    (
        Some((format!("confirm {token}"), body, Some(confirm))),
        format!(
            "{} request from {requester}: confirmation sent",
            action.word()
        ),
    )
}

/// A delivery mode as a member reads it.
pub fn describe(mode: DeliveryMode, until: Option<&str>) -> String {
    match (mode, until) {
        (DeliveryMode::Regular, _) => "every post as it is sent".into(),
        (DeliveryMode::Digest, _) => "a daily digest (MIME)".into(),
        (DeliveryMode::DigestPlain, _) => "a daily plain-text digest".into(),
        (DeliveryMode::Nomail, None) => "no mail, while staying a member".into(),
        (DeliveryMode::Nomail, Some(date)) => {
            format!("no mail until {date} (UTC), then mail as before")
        }
    }
}

/// Carries out a confirmed join or leave (`action` is `None` for a bad or expired token).
fn confirmed(
    store: &Store,
    cfg: &crate::base::config::ListConfig,
    action: Option<Action>,
    message: &[u8],
    requester: &str,
    now: u64,
) -> Result<Answer, StoreError> {
    Ok(match action {
        Some(Action::Join) => {
            let member = Member {
                address: requester.to_string(),
                name: author(message)
                    .map(|a| crate::base::config::clean_member_name(&a.name))
                    .unwrap_or_default(),
                joined_at: now,
                ..Default::default()
            };
            crate::state::store::wait(store.add_member(&cfg.address, &member))?;
            let body = format!(
                "Welcome to the {} list. Post by writing to {}.\r\nTo leave, write to {}-leave@{}.\r\n",
                cfg.display_name(),
                cfg.address,
                cfg.local_part(),
                cfg.domain()
            );
            (
                Some((format!("Welcome to {}", cfg.display_name()), body, None)),
                format!("{requester} confirmed and joined"),
            )
        }
        Some(Action::Leave) => {
            crate::state::store::wait(store.remove_member(
                &cfg.address,
                requester,
                crate::state::store::Departure::now(crate::state::store::DepartureReason::Left),
            ))?;
            let body = format!(
                "You have left the {} list ({}).\r\n",
                cfg.display_name(),
                cfg.address
            );
            (
                Some((format!("You left {}", cfg.display_name()), body, None)),
                format!("{requester} confirmed and left"),
            )
        }
        Some(Action::Set(mode, until)) => changed(store, cfg, requester, mode, until)?,
        None => (
            None,
            format!("confirmation from {requester} with an invalid or expired token; ignored"),
        ),
    })
}

/// Carries out a confirmed `set`: the requester's delivery mode, if still a member.
fn changed(
    store: &Store,
    cfg: &crate::base::config::ListConfig,
    requester: &str,
    mode: DeliveryMode,
    until: Option<u64>,
) -> Result<Answer, StoreError> {
    let Some(mut member) = crate::state::store::wait(store.member(&cfg.address, requester))? else {
        let body = format!(
            "{requester} is not a member of the {} list ({}); nothing changed.\r\n",
            cfg.display_name(),
            cfg.address
        );
        return Ok((
            Some((format!("Not changed: {}", cfg.display_name()), body, None)),
            format!("set {mode} confirmed by {requester}, who is not a member; nothing changed"),
        ));
    };
    let today = date_of(crate::auth::unix_now());
    let until = until.map(|d| date_of(d * 86_400));
    member.set_delivery(mode, until.clone(), &today);
    crate::state::store::wait(store.put_member(&cfg.address, &member))?;
    let now = member.delivery_on(&today);
    let body = format!(
        "You now get the {} list ({}) as: {}.\r\n{}\r\nSend \"set regular\" to {}-request@{} to get every post again.\r\n",
        cfg.display_name(),
        cfg.address,
        describe(mode, until.as_deref()),
        if now == mode {
            String::new()
        } else {
            format!("That date has passed: you get mail as {now} now.\r\n")
        },
        cfg.local_part(),
        cfg.domain()
    );
    Ok((
        Some((
            format!("Delivery changed: {}", cfg.display_name()),
            body,
            None,
        )),
        format!(
            "{requester} confirmed set {mode}{}",
            until.map(|u| format!(" until {u}")).unwrap_or_default()
        ),
    ))
}

/// Carries out a command message and records the outcome on its spool entry. Returns the id
/// of a held post a moderator approved, for the pipeline to distribute.
pub fn handle(
    store: &Store,
    list: &ListRuntime,
    meta: SpoolMeta,
    message: &[u8],
    request: Request,
) -> Result<Option<SpoolId>, StoreError> {
    let mut released = None;
    answer(store, list, meta, message, request, &mut released)?;
    Ok(released)
}

fn answer(
    store: &Store,
    list: &ListRuntime,
    mut meta: SpoolMeta,
    message: &[u8],
    request: Request,
    released: &mut Option<SpoolId>,
) -> Result<(), StoreError> {
    let cfg = &list.config;
    let requester = author(message)
        .map(|a| a.address)
        .unwrap_or_else(|_| meta.envelope.mail_from.to_ascii_lowercase());
    let now = crate::auth::unix_now();
    if let Some(why) = robots::why_not_answer(message, &meta.envelope.mail_from, &requester, cfg) {
        return finish(
            store,
            meta,
            &format!("command not carried out or answered: {why}"),
        );
    }
    // A moderator's decision is carried out however many came this hour (a moderator may
    // clear twenty held posts at once); only the confirmation it earns is rate-limited.
    let deciding = matches!(request, Request::Moderate(..));
    if !deciding && !list.replies.allow(&requester, now) {
        let why = format!(
            "{requester} already got {} replies this hour; not answered",
            cfg.max_replies_per_hour
        );
        return finish(store, meta, &why);
    }
    let today = now / 86_400;
    let secret = crate::state::store::wait(store.token_secret())?;
    let (reply, note) = match request {
        Request::Join | Request::Leave => {
            let action = if request == Request::Join {
                Action::Join
            } else {
                Action::Leave
            };
            ask_to_confirm(cfg, &secret, action, &requester, today)
        }
        Request::Set(mode, until) => {
            let action = Action::Set(mode, until.as_deref().and_then(day_number));
            ask_to_confirm(cfg, &secret, action, &requester, today)
        }
        Request::Confirm(token) => {
            let action = tokens::check(&secret, &token, &cfg.address, &requester, today);
            confirmed(store, cfg, action, message, &requester, now)?
        }
        Request::Moderate(word, token) => {
            moderate(store, list, message, &requester, (&word, &token), released)?
        }
        Request::Help => {
            let body = help(cfg);
            (
                Some((format!("Help for {}", cfg.display_name()), body, None)),
                format!("help sent to {requester}"),
            )
        }
    };
    tracing::info!(id = meta.id, list = %cfg.address, %note, "email command");
    meta.state = SpoolState::Done;
    meta.note = Some(note);
    let Some((subject, body, reply_to)) = reply else {
        return crate::state::store::wait(store.update(&meta));
    };
    if deciding && !list.replies.allow(&requester, now) {
        return crate::state::store::wait(store.update(&meta));
    }
    notice::send(
        store,
        list,
        meta,
        Notice {
            to: vec![requester],
            subject: &subject,
            body: &body,
            reply_to: reply_to.as_deref(),
        },
    )
}

/// A moderator's decision by mail: `token` names the held post, and the sender must be one
/// of the list's moderators (owners included).
fn moderate(
    store: &Store,
    list: &ListRuntime,
    message: &[u8],
    requester: &str,
    (word, token): (&str, &str),
    released: &mut Option<SpoolId>,
) -> Result<Answer, StoreError> {
    use super::moderation::{Decision, decide, tell_poster};
    let cfg = &list.config;
    if !cfg.all_moderators().iter().any(|m| m == requester) {
        return Ok((
            None,
            format!("{word} from {requester}, who does not moderate this list; ignored"),
        ));
    }
    let secret = crate::state::store::wait(store.token_secret())?;
    let Some(id) = tokens::check_moderation(&secret, token, &cfg.address) else {
        return Ok((
            None,
            format!("{word} from {requester} with an invalid token; ignored"),
        ));
    };
    let decision = match word {
        "approve" => Decision::Approve,
        "discard" => Decision::Discard,
        _ => Decision::Reject(reason(message)),
    };
    let (subject, note) = match decide(store, &cfg.address, id, &decision, requester) {
        Ok((meta, message)) => {
            match &decision {
                Decision::Approve => *released = Some(id),
                Decision::Reject(reason) => {
                    let why = reason.as_deref().unwrap_or("refused by a moderator");
                    if let Err(e) = tell_poster(store, list, &meta, &message, why) {
                        tracing::error!(id, error = %e, "cannot tell the poster why");
                    }
                }
                Decision::Discard => {}
            }
            (
                format!("Post {id}: {word} done"),
                format!("{requester}: {word} post {id}"),
            )
        }
        Err(why) => (
            format!("Post {id}: {word} not done"),
            format!("{requester}: {word} post {id} not done: {why}"),
        ),
    };
    let body = format!("{note}\r\n");
    Ok((Some((subject, body, None)), note))
}

/// The reason a moderator wrote in a `reject` message: the first lines of a plain-text body
/// before any quoted text, at most 300 characters.
fn reason(message: &[u8]) -> Option<String> {
    let parsed = crate::auth::message::RawMessage::parse(message);
    let plain = parsed.fields("Content-Type").next().is_none_or(|f| {
        f.unfolded_value()
            .trim()
            .to_ascii_lowercase()
            .starts_with("text/plain")
    });
    if !plain {
        return None;
    }
    let start = memchr::memmem::find(message, b"\r\n\r\n")? + 4;
    let text = String::from_utf8_lossy(&message[start..]);
    let mut words = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('>') || (line.starts_with("On ") && line.ends_with("wrote:")) {
            break;
        }
        if line.is_empty() {
            if words.is_empty() {
                continue;
            }
            break;
        }
        words.push(line.to_string());
    }
    let reason: String = words.join(" ").chars().take(300).collect();
    (!reason.is_empty()).then_some(reason)
}

/// The command summary.
fn help(cfg: &crate::base::config::ListConfig) -> String {
    let (local, domain) = (cfg.local_part(), cfg.domain());
    format!(
        "Commands for {} ({}):\r\n\r\n  join:  write to {local}-join@{domain}\r\n  leave: write to {local}-leave@{domain}\r\n\r\n\
         How you get the list's mail: write to {local}-request@{domain} with one of these as the Subject:\r\n\r\n\
         \x20 set regular                  every post as it is sent\r\n\
         \x20 set digest                   a daily digest (MIME)\r\n\
         \x20 set digest plain             a daily plain-text digest\r\n\
         \x20 set nomail                   no mail, while staying a member\r\n\
         \x20 set nomail until 2027-01-15  no mail until that date (UTC), then as before\r\n\r\n\
         Each of these is confirmed by a reply before anything changes.\r\n",
        cfg.display_name(),
        cfg.address,
    )
}

fn finish(store: &Store, mut meta: SpoolMeta, note: &str) -> Result<(), StoreError> {
    meta.state = SpoolState::Done;
    meta.note = Some(note.to_string());
    crate::state::store::wait(store.update(&meta))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_subjects() {
        assert_eq!(
            request_for(&Role::Request, "Subscribe"),
            Some(Request::Join)
        );
        assert_eq!(
            request_for(&Role::Request, "Re: confirm jabcx123"),
            Some(Request::Confirm("jabcx123".into()))
        );
        assert_eq!(request_for(&Role::Request, "what?"), Some(Request::Help));
        assert_eq!(request_for(&Role::Leave, ""), Some(Request::Leave));
        assert_eq!(request_for(&Role::Post, "join"), None);
        let set = |subject: &str| request_for(&Role::Request, subject);
        assert_eq!(
            set("set digest plain"),
            Some(Request::Set(DeliveryMode::DigestPlain, None))
        );
        assert_eq!(
            set("Re: SET nomail until 2027-01-15"),
            Some(Request::Set(
                DeliveryMode::Nomail,
                Some("2027-01-15".into())
            ))
        );
        assert_eq!(
            set("set regular"),
            Some(Request::Set(DeliveryMode::Regular, None))
        );
        assert_eq!(set("set nomail until 2027-02-30"), Some(Request::Help));
        assert_eq!(set("set digest until 2027-01-15"), Some(Request::Help));
        assert_eq!(set("set weekly"), Some(Request::Help));
    }
}
