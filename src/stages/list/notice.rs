//! Messages the list itself writes (command replies, notices to owners): composed as plain
//! text from the list's robot address, DKIM-signed by the list, and queued like a post.

use super::ListRuntime;
use crate::base::header::mailbox;
use crate::stages::outbound::compose::{Body, Mail, unique};
use crate::state::store::{QueueEntry, SpoolMeta, Store, StoreError};

/// A message from the list to some people.
pub struct Notice<'a> {
    /// Who gets it.
    pub to: Vec<String>,
    /// Its subject.
    pub subject: &'a str,
    /// Its text (CRLF line ends).
    pub body: &'a str,
    /// Where replies should go, if not back to the robot.
    pub reply_to: Option<&'a str>,
}

/// Signs `notice` and queues it under `meta`'s spool id, which also records `meta`. If the list
/// cannot sign, `meta` is still recorded, its note saying why nothing was sent.
pub fn send(
    store: &Store,
    list: &ListRuntime,
    mut meta: SpoolMeta,
    notice: Notice<'_>,
) -> Result<(), StoreError> {
    if notice.to.is_empty() {
        return crate::state::store::wait(store.update(&meta));
    }
    let signed = match compose(list, &notice, meta.id) {
        Ok(s) => s,
        Err(e) => {
            meta.note = Some(format!(
                "{}; notice not sent: {e}",
                meta.note.unwrap_or_default()
            ));
            return crate::state::store::wait(store.update(&meta));
        }
    };
    let entry = entry(list, notice.to, meta.id);
    crate::state::store::wait(store.enqueue(&meta, &entry, &signed))
}

/// Signs `notice` and queues it as a message of its own (a new spool id), for notices that
/// belong to no incoming message, or to one that must stay free to be queued later (a held
/// post). `why` is the spool note. Returns the new id, `None` when there is nobody to tell.
pub fn send_new(
    store: &Store,
    list: &ListRuntime,
    notice: Notice<'_>,
    why: &str,
) -> Result<Option<crate::state::store::SpoolId>, String> {
    if notice.to.is_empty() {
        return Ok(None);
    }
    let signed = compose(list, &notice, 0)?;
    queue_own(store, list, notice.to, &signed, why).map(Some)
}

/// Spools and queues, as one message of its own, mail the list wrote and signed itself
/// (`signed`, to `to`): a notice, a digest, a DMARC report. `why` is the spool note.
pub fn queue_own(
    store: &Store,
    list: &ListRuntime,
    to: Vec<String>,
    signed: &[u8],
    why: &str,
) -> Result<crate::state::store::SpoolId, String> {
    queue_own_as(store, list, (to, true), signed, why)
}

/// As [`queue_own`]; with `plain` false, each member's copy is delivered as a post's is: from
/// their own VERP address, with their own one-click unsubscribe (a digest to the members).
pub fn queue_own_as(
    store: &Store,
    list: &ListRuntime,
    (to, plain): (Vec<String>, bool),
    signed: &[u8],
    why: &str,
) -> Result<crate::state::store::SpoolId, String> {
    let cfg = &list.config;
    let now = crate::auth::unix_now();
    let meta = SpoolMeta {
        id: 0,
        envelope: crate::state::store::SpoolEnvelope::local(to.clone(), cfg.domain(), now),
        state: crate::state::store::SpoolState::Queued,
        size: signed.len(),
        auth_results: None,
        attempts: 0,
        note: Some(why.to_string()),
        facts: crate::state::store::Facts {
            list: Some(cfg.address.clone()),
            ..Default::default()
        },
    };
    let entry = QueueEntry {
        plain,
        ..entry(list, to, 0)
    };
    crate::state::store::wait(store.enqueue_local(meta, entry, signed)).map_err(|e| e.to_string())
}

/// The queue entry of a notice to `to`.
fn entry(list: &ListRuntime, to: Vec<String>, id: crate::state::store::SpoolId) -> QueueEntry {
    let cfg = &list.config;
    QueueEntry {
        id,
        list: cfg.address.clone(),
        mail_from: bounces_address(list),
        recipients: to,
        queued_at: crate::auth::unix_now(),
        summary: None,
        plain: true,
    }
}

/// The envelope sender of the list's notices: its `-bounces` address.
pub(super) fn bounces_address(list: &ListRuntime) -> String {
    let cfg = &list.config;
    format!("{}-bounces@{}", cfg.local_part(), cfg.domain())
}

/// The notice as a message from the list robot, DKIM-signed by the list. `id` makes its
/// Message-ID unique (0 for one not tied to a spooled message: a random part stands in).
fn compose(
    list: &ListRuntime,
    notice: &Notice<'_>,
    id: crate::state::store::SpoolId,
) -> Result<Vec<u8>, String> {
    let cfg = &list.config;
    let now = crate::auth::unix_now();
    let robot = format!("{}-request@{}", cfg.local_part(), cfg.domain());
    let to: Vec<String> = notice.to.iter().map(|a| format!("<{a}>")).collect();
    let unique = match id {
        0 => unique().ok_or("no randomness for a Message-ID")?,
        id => id.to_string(),
    };
    // Every field through the one encoder: the list's name and the subject come from the
    // list file, the console and posters, and must not be able to add fields of their own.
    let body = Body::single("text/plain; charset=utf-8", notice.body);
    let mut mail = Mail::new()
        .field("From", &mailbox(cfg.display_name(), &robot))
        .field("To", &to.join(", "))
        .text("Subject", notice.subject)
        .date(now)
        .message_id(&format!("notice.{unique}.{now}"), cfg.domain())
        .field("Auto-Submitted", "auto-replied")
        .content(&body);
    if let Some(r) = notice.reply_to {
        mail = mail.field("Reply-To", &format!("<{r}>"));
    }
    let signed = list.sign(&mail.finish(body))?;
    Ok(super::dkim2::own_notice(list, signed, &notice.to))
}
