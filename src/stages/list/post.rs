//! The list's post stage: what a message to a list's addresses is (a post, a command, a
//! bounce, mail for the owners, a DMARC report), and, for a post, the list stages run in order
//! ([`ListRuntime::handle`]) with what became of it stored: queued for the members, held,
//! rejected or discarded, or dropped as a second copy of a post already distributed. The
//! pipeline authenticates the message and calls [`ListWork::run`] on the blocking pool.

use super::{ListRuntime, Outcome, bounces, commands, copy, dmarc_reports, moderation, owners};
use crate::auth::Verification;
use crate::base::metrics::PostOutcome;
use crate::stages::directory::{Recipient, Role};
use crate::state::store::{
    Enqueued, QueueEntry, SeenWindow, SpoolId, SpoolMeta, SpoolState, Store, StoreError,
};

/// What a message for a list's addresses is, by list posting address.
pub enum ListWork {
    /// A post to the list.
    Post(String),
    /// A command for the list robot (`-request`, `-join`, `-leave`, a confirmation).
    Command(String, commands::Request),
    /// A bounce, with its VERP token when it came to one.
    Bounce(String, Option<String>),
    /// Mail for the list's owners.
    Owners(String),
    /// A receiver's DMARC aggregate report about the list domain's mail.
    Report(String),
}

impl ListWork {
    /// The posting address of the list it is for.
    pub fn list(&self) -> &str {
        match self {
            ListWork::Post(l)
            | ListWork::Command(l, _)
            | ListWork::Bounce(l, _)
            | ListWork::Owners(l)
            | ListWork::Report(l) => l,
        }
    }

    /// The one thing a message is for: a post first, then a command, a bounce, the owners.
    pub fn choose(resolved: &[Recipient], message: &[u8]) -> Option<ListWork> {
        if let Some(post) = resolved.iter().find(|r| r.role == Role::Post) {
            return Some(ListWork::Post(post.list.clone()));
        }
        if let Some(report) = resolved.iter().find(|r| r.role == Role::DmarcReport) {
            return Some(ListWork::Report(report.list.clone()));
        }
        let subject = crate::auth::message::RawMessage::parse(message)
            .fields("Subject")
            .next()
            .map(|f| f.unfolded_value())
            .unwrap_or_default();
        let command = resolved.iter().find_map(|r| {
            commands::request_for(&r.role, &subject).map(|c| ListWork::Command(r.list.clone(), c))
        });
        let bounce = || {
            resolved.iter().find_map(|r| match &r.role {
                Role::Bounces(token) => Some(ListWork::Bounce(r.list.clone(), token.clone())),
                _ => None,
            })
        };
        // postmaster@ a list's domain reaches that list's owners, as NAME-owner@ does.
        let owners = || {
            resolved
                .iter()
                .find(|r| matches!(r.role, Role::Owner | Role::Postmaster))
                .map(|r| ListWork::Owners(r.list.clone()))
        };
        command.or_else(bounce).or_else(owners)
    }

    /// Runs this work's stage for `list` on message `arrival` and stores what became of it.
    /// Returns the post a moderator's emailed approval released, for the pipeline to
    /// distribute now.
    pub fn run(
        self,
        store: &Store,
        list: &ListRuntime,
        arrival: Post<'_>,
        hostname: &str,
        window: u64,
    ) -> Result<Option<SpoolId>, StoreError> {
        match self {
            ListWork::Post(_) => distribute(store, list, arrival, hostname, window).map(|()| None),
            ListWork::Command(_, request) => {
                commands::handle(store, list, arrival.meta, arrival.message, request)
            }
            ListWork::Bounce(_, token) => {
                let (meta, message) = (arrival.meta, arrival.message);
                bounces::handle(store, list, meta, message, token.as_deref()).map(|()| None)
            }
            ListWork::Owners(_) => {
                let (meta, message) = (arrival.meta, arrival.message);
                owners::to_owners(store, list, meta, message, (arrival.verdict, hostname))
                    .map(|()| None)
            }
            ListWork::Report(l) => {
                dmarc_reports::receive(store, &l, arrival.meta, arrival.message).map(|()| None)
            }
        }
    }
}

/// Queues a signed post for every member who gets posts today (not paused, not stopped by
/// bounces), and remembers its Message-ID for the duplicate window.
fn queue_post(
    store: &Store,
    list: &ListRuntime,
    mut meta: SpoolMeta,
    (signed, seven_bit): (&[u8], Option<&[u8]>),
    seen: Option<SeenWindow<'_>>,
) -> Result<(), StoreError> {
    let address = &list.config.address;
    // A pause with an end date is judged here, at fan-out, against today's UTC date: no task
    // has to rewrite the record on the day.
    let today = crate::state::store::modes::date_of(crate::auth::unix_now());
    // Recipients are filled in by the queueing, which reads the members (and adds the post
    // to the digest first when any of them takes it).
    let entry = QueueEntry {
        id: meta.id,
        list: address.clone(),
        mail_from: format!(
            "{}-bounces@{}",
            list.config.local_part(),
            list.config.domain()
        ),
        recipients: Vec::new(),
        queued_at: crate::auth::unix_now(),
        summary: None,
        plain: false,
    };
    meta.state = SpoolState::Queued;
    super::archive::mark(store, list, meta.id);
    let id = meta.id;
    let queued = store.enqueue_for_members(&meta, entry, &today, signed, seven_bit, seen);
    // The pipeline tells the failure by message; this says which list it was queued for.
    let (done, recipients) = crate::state::store::wait(queued).inspect_err(|e| {
        tracing::warn!(id, list = %address, error = %e, "cannot queue the post for the members");
    })?;
    if let (Enqueued::DuplicateOf(first), Some(seen)) = (done, seen) {
        return discard_duplicate(store, meta, address, first, seen.message_id);
    }
    tracing::info!(id, list = %address, recipients, notes = ?meta.note, "queued for delivery");
    crate::base::metrics::post(PostOutcome::Queued);
    // After the queueing, so the members' copies never wait for the archive.
    super::archive::archive_queued(store, list, id, signed);
    Ok(())
}

/// The other post of `list` distributed with `message_id` since `since`, if any: looked up
/// before the post is signed, to spare the work; the queueing checks again in its commit.
fn duplicate_of(
    store: &Store,
    list: &str,
    message_id: &str,
    since: u64,
    id: SpoolId,
) -> Result<Option<SpoolId>, StoreError> {
    Ok(
        crate::state::store::wait(store.distributed(list, message_id, since))?
            .filter(|first| *first != id),
    )
}

/// Records that post `meta` is not distributed: the list already sent `first` with the same
/// Message-ID.
fn discard_duplicate(
    store: &Store,
    mut meta: SpoolMeta,
    list: &str,
    first: SpoolId,
    message_id: &str,
) -> Result<(), StoreError> {
    meta.facts.list = Some(list.to_string());
    meta.state = SpoolState::Discarded;
    meta.note = Some(format!(
        "duplicate of post {first} (Message-ID {message_id}); not distributed again"
    ));
    tracing::info!(id = meta.id, list = %list, first, message_id = %message_id, "duplicate post dropped");
    crate::base::metrics::post(PostOutcome::Duplicate);
    crate::state::store::wait(store.update(&meta))
}

/// What an aggregate report to the author domain would say of this post, when its DMARC
/// record asks for reports.
fn report_facts(v: &Verification) -> Option<Box<crate::state::store::ReportFacts>> {
    let record = v.dmarc.record.as_ref().filter(|r| !r.rua.is_empty())?;
    let result = |pass: bool| if pass { "pass" } else { "fail" }.to_string();
    Some(Box::new(crate::state::store::ReportFacts {
        record_domain: record.domain.clone(),
        rua: record.rua.clone(),
        dkim: v
            .dkim
            .iter()
            .map(|d| (d.domain.clone(), d.verdict.as_str().to_string()))
            .collect(),
        spf: v
            .spf
            .as_ref()
            .map(|s| (s.mail_from_domain.clone(), s.mail_from.as_str().to_string())),
        aligned: (
            result(v.dmarc.dkim_aligned.is_some()),
            result(v.dmarc.spf_aligned),
        ),
    }))
}

/// The Message-ID field's value (`<...>`), if the message has one.
pub(super) fn message_id(message: &[u8]) -> Option<String> {
    let parsed = crate::auth::message::RawMessage::parse(message);
    let value = parsed.fields("Message-ID").next()?.unfolded_value();
    let value = value.trim();
    (!value.is_empty() && value.len() <= 998).then(|| value.to_string())
}

/// A message for a list on its way: its spool record, bytes and arrival verdict.
pub struct Post<'a> {
    /// Its spool record.
    pub meta: SpoolMeta,
    /// Its bytes as spooled.
    pub message: &'a [u8],
    /// What authenticating it found on arrival (its DKIM2 chain too, checked against the
    /// envelope it arrived with, at the time it arrived).
    pub verdict: &'a Verification,
}

/// Runs the list stages for one post and stores what became of it. A post whose Message-ID
/// the list distributed within `window` seconds is a duplicate and is dropped.
fn distribute(
    store: &Store,
    list: &ListRuntime,
    post: Post<'_>,
    hostname: &str,
    window: u64,
) -> Result<(), StoreError> {
    let Post {
        mut meta,
        message,
        verdict: v,
    } = post;
    let address = &list.config.address;
    let poster = match copy::author(message) {
        Ok(author) => author.address,
        // The session refuses these before 250; this catches what was spooled before that.
        Err(why) => {
            meta.facts.list = Some(address.clone());
            meta.state = SpoolState::Rejected;
            meta.note = Some(format!(
                "not distributed: {why}; a post needs exactly one From address"
            ));
            tracing::info!(id = meta.id, list = %address, note = ?meta.note, "not distributed");
            crate::base::metrics::post(PostOutcome::Rejected);
            return crate::state::store::wait(store.update(&meta));
        }
    };
    let message_id = message_id(message).filter(|_| window > 0);
    let since = crate::auth::unix_now().saturating_sub(window);
    if let Some(mid) = &message_id
        && let Some(first) = duplicate_of(store, address, mid, since, meta.id)?
    {
        return discard_duplicate(store, meta, address, first, mid);
    }
    let member = crate::state::store::wait(store.member(address, &poster))?;
    let standing = super::policy::standing(&list.config, &poster, member.as_ref());
    meta.facts.list = Some(address.clone());
    meta.facts.from_domain = v.dmarc.from_domain.clone();
    meta.facts.dmarc = v.dmarc.verdict.as_str().to_string();
    meta.facts.dmarc_policy = v.dmarc.policy.as_str().to_string();
    meta.facts.reporting = report_facts(v);
    let approved = meta.state == SpoolState::Approved;
    let (state, note) = match list.handle(message, v, &meta, standing, approved, hostname) {
        Outcome::Queue {
            signed,
            seven_bit,
            notes,
            mitigated,
            overridden_by,
        } => {
            meta.facts.mitigated = mitigated;
            meta.facts.arc_override = overridden_by;
            meta.note = (!notes.is_empty()).then(|| notes.join("; "));
            let copies = (signed.as_slice(), seven_bit.as_deref());
            let seen = message_id
                .as_deref()
                .map(|message_id| SeenWindow { message_id, since });
            return queue_post(store, list, meta, copies, seen);
        }
        Outcome::Hold(why) => (SpoolState::Held, why),
        Outcome::Reject(why) => (SpoolState::Rejected, why),
        Outcome::Discard(why) => (SpoolState::Discarded, why),
    };
    tracing::info!(id = meta.id, list = %address, poster = %poster, state = ?state, reason = %note, "not distributed");
    crate::base::metrics::post(match state {
        SpoolState::Held => PostOutcome::Held,
        SpoolState::Rejected => PostOutcome::Rejected,
        _ => PostOutcome::Discarded,
    });
    meta.state = state;
    meta.note = Some(note.clone());
    match state {
        SpoolState::Held => {
            crate::state::store::wait(store.update(&meta))?;
            moderation::notify_held(store, list, &meta, message);
            Ok(())
        }
        SpoolState::Rejected => {
            crate::state::store::wait(store.update(&meta))?;
            if let Err(e) = moderation::tell_poster(store, list, &meta, message, &note) {
                tracing::error!(id = meta.id, error = %e, "cannot tell the poster why");
            }
            Ok(())
        }
        _ => crate::state::store::wait(store.update(&meta)),
    }
}
