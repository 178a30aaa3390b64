//! Held posts and the people who decide them: a notice to the moderators for each held post
//! (with the reason, the authentication summary and a token to approve or reject by replying,
//! as Mailman does), the daily digest of what still waits, the decision itself (shared by the
//! admin API, the CLI and replies by mail) and the notice a refused poster gets.

use super::ListRuntime;
use super::copy::author;
use super::notice::{self, Notice};
use super::robots;
use super::tokens;
use crate::auth::message::RawMessage;
use crate::base::config::NotifyRejected;
use crate::state::store::{SpoolId, SpoolMeta, SpoolState, Store};

/// What a moderator decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Distribute it.
    Approve,
    /// Refuse it; the reason (if any) goes to the poster, as the list's setting allows.
    Reject(Option<String>),
    /// Drop it silently.
    Discard,
}

impl Decision {
    /// The word moderators use (`approve`, `reject`, `discard`).
    pub fn word(&self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Reject(_) => "reject",
            Decision::Discard => "discard",
        }
    }
}

/// The From and Subject of a message, for people to recognise it (one line each, no
/// control characters, at most 200 characters).
pub fn summary(message: &[u8]) -> (String, String) {
    let parsed = RawMessage::parse(message);
    let field = |name: &str| {
        let value = parsed
            .fields(name)
            .next()
            .map(|f| f.unfolded_value())
            .unwrap_or_default();
        value
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(200)
            .collect::<String>()
            .trim()
            .to_string()
    };
    (field("From"), field("Subject"))
}

/// Tells the moderators that post `meta` (bytes `message`) is held and why, with a token to
/// decide it by mail. Runs after the hold is recorded: a notice that cannot be made is
/// logged, and the post waits all the same.
pub fn notify_held(store: &Store, list: &ListRuntime, meta: &SpoolMeta, message: &[u8]) {
    let cfg = &list.config;
    let moderators = cfg.all_moderators();
    if moderators.is_empty() {
        return;
    }
    let sent = crate::state::store::wait(store.token_secret())
        .map_err(|e| e.to_string())
        .and_then(|secret| {
            let token = tokens::moderation(&secret, &cfg.address, meta.id);
            let robot = format!("{}-request@{}", cfg.local_part(), cfg.domain());
            let (from, subject) = summary(message);
            let body = held_text(meta, &from, &subject, &token, &robot);
            notice::send_new(
                store,
                list,
                Notice {
                    to: moderators,
                    subject: &format!("approve {token}: held post to {}", cfg.address),
                    body: &body,
                    reply_to: Some(&robot),
                },
                &format!("moderator notice for held post {}", meta.id),
            )
        });
    match sent {
        Ok(_) => {
            tracing::info!(id = meta.id, list = %cfg.address, "moderators told of a held post")
        }
        Err(e) => {
            tracing::error!(id = meta.id, list = %cfg.address, error = %e, "cannot tell the moderators of a held post")
        }
    }
}

/// The text of a held-post notice.
fn held_text(meta: &SpoolMeta, from: &str, subject: &str, token: &str, robot: &str) -> String {
    let auth = meta
        .auth_results
        .as_deref()
        .unwrap_or("not recorded")
        .replace("\r\n", "\r\n    ");
    format!(
        "A post is waiting for a moderator.\r\n\r\n\
         From:     {from}\r\n\
         Subject:  {subject}\r\n\
         Envelope: <{}> from {} [{}]\r\n\
         Held:     {}\r\n\
         Checks:   {auth}\r\n\r\n\
         To approve it, reply to this message (keep the subject).\r\n\
         To reject it, write to {robot} with the subject\r\n\r\n    reject {token}\r\n\r\n\
         and, if you like, the reason for the poster in the body. To drop it silently, use\r\n\
         \"discard {token}\" instead. Or: arclist held approve|reject|discard {}\r\n",
        meta.envelope.mail_from,
        meta.envelope.helo,
        meta.envelope.client_ip,
        meta.note.as_deref().unwrap_or("no reason recorded"),
        meta.id,
    )
}

/// Why a decision on a held post changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    /// No post has this id.
    #[error("no post {id}")]
    NoPost {
        /// The post asked for.
        id: SpoolId,
    },
    /// The post is not (or no longer) held.
    #[error("post {id} is not held (it is {state:?})")]
    NotHeld {
        /// The post.
        id: SpoolId,
        /// Its state now.
        state: SpoolState,
    },
    /// Another moderator decided it between our read and our write.
    #[error("post {id} was decided by someone else meanwhile")]
    DecidedMeanwhile {
        /// The post.
        id: SpoolId,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::state::store::StoreError),
}

/// Carries out `decision` on held post `id` (of the list with posting address `list`), by
/// `who` (for the record): the post leaves the held state in one transaction, so of two
/// decisions at once only the first counts. Approving only marks it: the caller hands the
/// id to the pipeline. A rejection's notice to the poster is the caller's ([`tell_poster`]).
/// Returns the post as decided and its bytes; errors say why nothing changed.
pub fn decide(
    store: &Store,
    list: &str,
    id: SpoolId,
    decision: &Decision,
    who: &str,
) -> Result<(SpoolMeta, Vec<u8>), DecideError> {
    let (mut meta, message) =
        crate::state::store::wait(store.get(id))?.ok_or(DecideError::NoPost { id })?;
    if meta.state != SpoolState::Held {
        return Err(DecideError::NotHeld {
            id,
            state: meta.state,
        });
    }
    let held_because = meta.note.take().unwrap_or_default();
    meta.facts.list.get_or_insert_with(|| list.to_string());
    let (state, note) = match decision {
        Decision::Approve => (
            SpoolState::Approved,
            format!("approved by {who}; held because: {held_because}"),
        ),
        Decision::Discard => (
            SpoolState::Discarded,
            format!("discarded by {who}; held because: {held_because}"),
        ),
        Decision::Reject(reason) => (
            SpoolState::Rejected,
            format!(
                "rejected by {who}: {}",
                reason.as_deref().unwrap_or(&held_because)
            ),
        ),
    };
    (meta.state, meta.note) = (state, Some(note));
    if !crate::state::store::wait(store.transition(&meta, SpoolState::Held))? {
        return Err(DecideError::DecidedMeanwhile { id });
    }
    tracing::info!(id, %list, by = %who, decision = decision.word(), "held post decided");
    Ok((meta, message))
}

/// Tells the poster of refused post `meta` why, when the list's `notify_rejected` allows it
/// for them: only an author whose DMARC passed (anyone else may be forged, and the notice
/// would be backscatter to the person impersonated), never a robot, at most the list's
/// replies per hour. The notice is a message of its own; `meta` is recorded by the caller.
pub fn tell_poster(
    store: &Store,
    list: &ListRuntime,
    meta: &SpoolMeta,
    message: &[u8],
    why: &str,
) -> Result<(), String> {
    let cfg = &list.config;
    let poster = author(message).map(|a| a.address).unwrap_or_default();
    let member = !poster.is_empty()
        && crate::state::store::wait(store.is_member(&cfg.address, &poster))
            .map_err(|e| e.to_string())?;
    let wanted = match cfg.notify_rejected {
        NotifyRejected::All => true,
        NotifyRejected::Members => member,
        NotifyRejected::None => false,
    };
    let allowed = wanted
        && meta.facts.dmarc == "pass"
        && robots::why_not_answer(message, &meta.envelope.mail_from, &poster, cfg).is_none()
        && list.replies.allow(&poster, crate::auth::unix_now());
    if !allowed {
        return Ok(());
    }
    let (_, subject) = summary(message);
    let body = format!(
        "Your post to {} was not distributed.\r\n\r\nSubject: {subject}\r\nReason:  {why}\r\n\r\n\
         Questions go to the list's owners: {}-owner@{}\r\n",
        cfg.address,
        cfg.local_part(),
        cfg.domain()
    );
    notice::send_new(
        store,
        list,
        Notice {
            to: vec![poster],
            subject: &format!("Your post to {} was not distributed", cfg.display_name()),
            body: &body,
            reply_to: Some(&format!("{}-owner@{}", cfg.local_part(), cfg.domain())),
        },
        &format!("notice to the poster of refused post {}", meta.id),
    )
    .map(|_| ())
}

/// Mails the moderators one list of the posts `held` still waiting for them; nothing when
/// none waits. Returns whether a digest was queued.
pub fn digest(
    store: &Store,
    list: &ListRuntime,
    held: &[(SpoolMeta, String, String)],
) -> Result<bool, String> {
    let cfg = &list.config;
    if held.is_empty() {
        return Ok(false);
    }
    let secret = crate::state::store::wait(store.token_secret()).map_err(|e| e.to_string())?;
    let mut body = format!(
        "{} post(s) to {} wait for a moderator. Reply to the notice of each, or write to\r\n\
         {}-request@{} with the subject \"approve TOKEN\" (or reject, discard).\r\n\r\n",
        held.len(),
        cfg.address,
        cfg.local_part(),
        cfg.domain()
    );
    for (meta, from, subject) in held {
        let waited = crate::auth::unix_now().saturating_sub(meta.envelope.received_at) / 3600;
        body.push_str(&format!(
            "{}  token {}  waiting {waited} h\r\n    From: {from}\r\n    Subject: {subject}\r\n    Held: {}\r\n\r\n",
            meta.id,
            tokens::moderation(&secret, &cfg.address, meta.id),
            meta.note.as_deref().unwrap_or_default()
        ));
    }
    notice::send_new(
        store,
        list,
        Notice {
            to: cfg.all_moderators(),
            subject: &format!("{} held post(s) waiting on {}", held.len(), cfg.address),
            body: &body,
            reply_to: None,
        },
        "moderators' daily digest",
    )
    .map(|sent| sent.is_some())
}
