//! Digests: the posts of a day, in one message, for the members who chose one
//! (`docs/members.md`). Each distributed post's list copy waits in the store
//! ([`crate::state::store::Store::add_to_digest`]) while any member takes a digest; a digest
//! goes out at the list's `[digest] hour` (UTC), earlier once the pending posts pass
//! `size_kib`, or when an operator says (`arclist digest send`). It is the list's own message:
//! DKIM-signed by the list, no ARC set, queued like a post so each member's copy has their own
//! VERP address and one-click unsubscribe and its bounces are scored like a post's.

mod compose;

use super::ListRuntime;
use crate::base::header::mailbox;
use crate::stages::outbound::compose::{Body, Mail, unique};
use crate::state::store::modes::date_of;
use crate::state::store::{DeliveryMode, DigestIssue, SpoolId, Store, wait};
use compose::Entry;

/// What sending a list's digest did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Sent {
    /// The issue sent, if one was.
    pub issue: Option<DigestIssue>,
    /// Posts it carried.
    pub posts: usize,
    /// Members who get the MIME digest and the plain one.
    pub members: (usize, usize),
    /// The spool ids of the queued digests (MIME, plain).
    pub queued: Vec<SpoolId>,
}

/// Whether `list`'s digest is due at `now`: posts pending and either the list's hour has come
/// since the last one was sent, or they pass the size threshold.
pub fn due(store: &Store, list: &ListRuntime, now: u64) -> Result<bool, String> {
    let cfg = &list.config;
    let pending = wait(store.digest_pending(&cfg.address)).map_err(|e| e.to_string())?;
    if pending.is_empty() {
        return Ok(false);
    }
    let size: usize = pending.iter().map(|(_, c)| c.len()).sum();
    if size > cfg.digest.size_kib.saturating_mul(1024) {
        return Ok(true);
    }
    let last = wait(store.digest_issue(&cfg.address)).map_err(|e| e.to_string())?;
    let today_at_hour = now - now % 86_400 + u64::from(cfg.digest.hour) * 3600;
    let scheduled = if now >= today_at_hour {
        today_at_hour
    } else {
        today_at_hour - 86_400
    };
    Ok(last.is_none_or(|l| l.sent_at < scheduled))
}

/// Sends what is pending for `list` now, to the members in digest modes; the posts leave the
/// pending digest once queued. Runs on the blocking pool (it waits for the store).
pub fn send(store: &Store, list: &ListRuntime, now: u64) -> Result<Sent, String> {
    let cfg = &list.config;
    let pending = wait(store.digest_pending(&cfg.address)).map_err(|e| e.to_string())?;
    if pending.is_empty() {
        return Ok(Sent::default());
    }
    let today = date_of(now);
    let (mut mime_to, mut plain_to) = (Vec::new(), Vec::new());
    for m in wait(store.members(&cfg.address)).map_err(|e| e.to_string())? {
        match (m.disabled, m.delivery_on(&today)) {
            (false, DeliveryMode::Digest) => mime_to.push(m.address),
            (false, DeliveryMode::DigestPlain) => plain_to.push(m.address),
            _ => {}
        }
    }
    let last = wait(store.digest_issue(&cfg.address)).map_err(|e| e.to_string())?;
    let volume = date_of(now)[..4].parse().unwrap_or(0);
    let issue = DigestIssue {
        volume,
        issue: last
            .filter(|l| l.volume == volume)
            .map_or(1, |l| l.issue + 1),
        sent_at: now,
    };
    let posts: Vec<Entry<'_>> = distinct(&pending).map(Entry::of).collect();
    let members = (mime_to.len(), plain_to.len());
    let mut queued = Vec::new();
    let why = format!("{} sent", compose::subject(cfg, issue));
    if !mime_to.is_empty() {
        let message = message(list, issue, compose::mime(cfg, &posts), "mime")?;
        queued.push(queue(store, list, mime_to, &message, &why)?);
    }
    if !plain_to.is_empty() {
        let body = compose::plain(cfg, issue, &posts);
        let message = message(list, issue, body, "plain")?;
        queued.push(queue(store, list, plain_to, &message, &why)?);
    }
    let ids: Vec<SpoolId> = pending.iter().map(|(id, _)| *id).collect();
    wait(store.digest_sent(&cfg.address, &ids, issue)).map_err(|e| e.to_string())?;
    tracing::info!(list = %cfg.address, volume = issue.volume, issue = issue.issue, posts = ids.len(), mime = members.0, plain = members.1, "digest sent");
    Ok(Sent {
        issue: Some(issue),
        posts: ids.len(),
        members,
        queued,
    })
}

/// The pending copies, each Message-ID once: two nodes given the same post at once both add
/// it to the digest before the queueing's commit tells one of them it is a duplicate.
fn distinct(pending: &[(SpoolId, Vec<u8>)]) -> impl Iterator<Item = &[u8]> {
    let mut seen = std::collections::HashSet::new();
    pending.iter().map(|(_, copy)| copy.as_slice()).filter(
        move |copy| match super::post::message_id(copy) {
            Some(id) => seen.insert(id.to_ascii_lowercase()),
            None => true,
        },
    )
}

/// The digest as a message from the list, DKIM-signed by it (and by nothing else: no ARC set,
/// since it is the list's own message, not a post passed on).
fn message(
    list: &ListRuntime,
    issue: DigestIssue,
    body: Body,
    kind: &str,
) -> Result<Vec<u8>, String> {
    let cfg = &list.config;
    let unique = unique().ok_or("no randomness for a Message-ID")?;
    let mut mail = Mail::new()
        .field("From", &mailbox(cfg.display_name(), &cfg.address))
        .field("To", &format!("<{}>", cfg.address))
        .text("Subject", &compose::subject(cfg, issue))
        .date(issue.sent_at)
        .message_id(
            &format!("digest.{kind}.{}.{}.{unique}", issue.volume, issue.issue),
            cfg.domain(),
        )
        .field("Precedence", "list");
    for (name, value) in super::copy::list_headers(cfg, list.personalized()) {
        mail = mail.field(name, &value);
    }
    list.sign(&mail.finish(body))
}

/// Queues a digest for `to`, each member's copy delivered as a post's is.
fn queue(
    store: &Store,
    list: &ListRuntime,
    to: Vec<String>,
    message: &[u8],
    why: &str,
) -> Result<SpoolId, String> {
    super::notice::queue_own_as(store, list, (to, false), message, why)
}
