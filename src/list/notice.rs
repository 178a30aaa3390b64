//! Messages the list itself writes (command replies, notices to owners): composed as plain
//! text from the list's robot address, DKIM-signed by the list, and queued like a post.

use super::ListRuntime;
use super::display_name::phrase;
use crate::store::{QueueEntry, SpoolMeta, Store, StoreError};
use crate::trace::rfc5322_date;

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
pub fn send<S: Store>(
    store: &S,
    list: &ListRuntime,
    mut meta: SpoolMeta,
    notice: Notice<'_>,
) -> Result<(), StoreError> {
    let cfg = &list.config;
    let now = crate::auth::unix_now();
    if notice.to.is_empty() {
        return store.update(&meta);
    }
    let robot = format!("{}-request@{}", cfg.local_part(), cfg.domain());
    let to: Vec<String> = notice.to.iter().map(|a| format!("<{a}>")).collect();
    let mut text = format!(
        "From: {} <{robot}>\r\nTo: {}\r\nSubject: {}\r\nDate: {}\r\nMessage-ID: <notice.{}.{now}@{}>\r\n\
         Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n",
        phrase(cfg.display_name()),
        to.join(", "),
        notice.subject,
        rfc5322_date(now),
        meta.id,
        cfg.domain()
    );
    if let Some(r) = notice.reply_to {
        text.push_str(&format!("Reply-To: <{r}>\r\n"));
    }
    text.push_str("\r\n");
    text.push_str(notice.body);
    let signed = match list.sign(text.as_bytes()) {
        Ok(s) => s,
        Err(e) => {
            meta.note = Some(format!(
                "{}; notice not sent: {e}",
                meta.note.unwrap_or_default()
            ));
            return store.update(&meta);
        }
    };
    let entry = QueueEntry {
        id: meta.id,
        list: cfg.address.clone(),
        mail_from: format!("{}-bounces@{}", cfg.local_part(), cfg.domain()),
        recipients: notice.to,
        queued_at: now,
        summary: None,
    };
    store.enqueue(&meta, &entry, &signed)
}

/// Passes mail for `NAME-owner@` on to the owners as it came, with the list's DKIM signature
/// on top so their servers can tell it came through the list.
pub fn to_owners<S: Store>(
    store: &S,
    list: &ListRuntime,
    mut meta: SpoolMeta,
    message: &[u8],
) -> Result<(), StoreError> {
    let cfg = &list.config;
    meta.state = crate::store::SpoolState::Done;
    if cfg.owners.is_empty() {
        meta.note = Some("mail for the owners, but the list names none; kept here".into());
        return store.update(&meta);
    }
    let signed = match list.sign(message) {
        Ok(s) => s,
        Err(e) => {
            meta.note = Some(format!("mail for the owners not passed on: {e}"));
            return store.update(&meta);
        }
    };
    meta.note = Some(format!("passed on to {}", cfg.owners.join(", ")));
    meta.state = crate::store::SpoolState::Queued;
    let entry = QueueEntry {
        id: meta.id,
        list: cfg.address.clone(),
        mail_from: format!("{}-bounces@{}", cfg.local_part(), cfg.domain()),
        recipients: cfg.owners.clone(),
        queued_at: crate::auth::unix_now(),
        summary: None,
    };
    store.enqueue(&meta, &entry, &signed)
}
