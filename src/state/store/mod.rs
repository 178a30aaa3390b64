//! Stage 2 (spool) and, later, the outbound queue: everything arclist must not lose.
//!
//! A message is committed durably before the SMTP `250`; from then on a crash may delay it,
//! never lose it. One concrete type, [`Store`], is passed around; it is whichever of two
//! backends the server file names: [`RedbStore`], one embedded file for one machine (the
//! default), or [`PgStore`], PostgreSQL shared by several arclist nodes that claim their work
//! with leases. Each backend implements the narrow surface of each role it has
//! (`roles/`: spool, members, queue, records, cluster); what both mean alike is written
//! once, on [`Store`].

mod any;
pub mod archive;
pub(crate) mod blocking;
pub mod copy;
mod digests;
pub(crate) mod error;
pub mod modes;
mod postgres_store;
mod redb_store;
mod roles;
mod salvage;
mod stored_entry;

pub use any::Store;
pub use blocking::wait;
pub(crate) use error::Fault;
pub use error::{ErrorKind, StoreError};
pub use modes::DeliveryMode;
pub use postgres_store::{PgStore, SslMode, url_tls};
pub use redb_store::RedbStore;
pub(crate) use stored_entry::StoredEntry;

use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// Identifies a spooled message.
pub type SpoolId = u64;

/// How a message arrived.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpoolEnvelope {
    /// MAIL FROM (empty for the null sender).
    pub mail_from: String,
    /// Accepted RCPT TO addresses.
    pub rcpt_to: Vec<String>,
    /// The client's address.
    pub client_ip: IpAddr,
    /// The client's EHLO/HELO/LHLO name.
    pub helo: String,
    /// `SMTP`, `ESMTP`, `ESMTPS` (TLS) or `LMTP`.
    pub protocol: String,
    /// The TLS version and cipher, when the session used TLS.
    pub tls: Option<String>,
    /// Unix time of acceptance.
    pub received_at: u64,
    /// The verdict the SMTP session already reached (the forwarding screen verifies before
    /// `250`), so the pipeline need not verify again; dropped once the pipeline used it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Box<crate::auth::Verification>>,
    /// What the spam filter said before `250` (`docs/filtering.md`), when one was asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<FilterMark>,
    /// The quota a member's post went over before `250` (`docs/filtering.md`): the list holds
    /// it for a moderator with this reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub over_quota: Option<String>,
}

impl SpoolEnvelope {
    /// The envelope of a message arclist writes itself (a notice, a delivery status
    /// notification, a report): the null sender, from this host (`helo`) over `local`.
    pub fn local(rcpt_to: Vec<String>, helo: &str, received_at: u64) -> Self {
        SpoolEnvelope {
            mail_from: String::new(),
            rcpt_to,
            client_ip: IpAddr::from([127, 0, 0, 1]),
            helo: helo.to_string(),
            protocol: "local".into(),
            tls: None,
            received_at,
            verdict: None,
            filter: None,
            over_quota: None,
        }
    }
}

/// The spam filter's verdict on a spooled message, for the stages after `250`: the list's
/// copy takes its header or subject, a list that holds instead of refusing holds it, and the
/// log and the report show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FilterMark {
    /// The filter's action: `no action`, `add header`, `rewrite subject`, or `reject`,
    /// `discard` or `quarantine` (a list that holds instead of refusing).
    pub action: String,
    /// The message's score.
    pub score: f64,
    /// The score at which the filter rejects.
    pub required: f64,
    /// The subject the filter wrote, for `rewrite subject`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The filter's reason, for a held post.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl FilterMark {
    /// The filter's actions that mean the message must reach no one: refused before `250`, or
    /// held for a moderator by a list that takes them.
    pub const MUST_NOT_PASS: [&'static str; 3] = ["reject", "discard", "quarantine"];

    /// The filter said the message must reach no one ([`FilterMark::MUST_NOT_PASS`]).
    pub fn must_not_pass(&self) -> bool {
        Self::MUST_NOT_PASS.contains(&self.action.as_str())
    }
}

/// Where a spooled message is on its way through arclist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpoolState {
    /// Accepted, not yet authenticated.
    Received,
    /// Authenticated; its results are recorded, the list stages have not run yet.
    Authenticated,
    /// Waiting for a moderator; `note` says why.
    Held,
    /// Signed and handed to delivery (see [`QueueEntry`]).
    Queued,
    /// Released by a moderator; the pipeline distributes it on its next pass.
    Approved,
    /// An email command (join, leave, confirm, help) that has been carried out; `note` says what.
    Done,
    /// Refused by list policy; `note` says why.
    Rejected,
    /// Dropped on purpose (a list's `discard` option, a loop); `note` says why.
    Discarded,
}

impl SpoolState {
    /// Whether the pipeline still has work for a message in this state: such messages are
    /// picked up again after a restart (and, on a shared store, after their node died).
    pub fn unfinished(self) -> bool {
        matches!(
            self,
            SpoolState::Received | SpoolState::Authenticated | SpoolState::Approved
        )
    }
}

/// A spooled message's metadata.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpoolMeta {
    /// Its id.
    pub id: SpoolId,
    /// The envelope.
    pub envelope: SpoolEnvelope,
    /// Where it stands.
    pub state: SpoolState,
    /// Size of the raw message in bytes.
    pub size: usize,
    /// Our Authentication-Results, once authenticated.
    pub auth_results: Option<String>,
    /// Temporary failures so far (DNS), for backoff.
    pub attempts: u32,
    /// Why the message was held, rejected or discarded.
    #[serde(default)]
    pub note: Option<String>,
    /// What `arclist report` counts, recorded as the message goes through.
    #[serde(default)]
    pub facts: Facts,
}

/// The facts about a message that reports are made of.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Facts {
    /// The list it was for (posts, commands, bounces).
    #[serde(default)]
    pub list: Option<String>,
    /// The RFC5322.From domain.
    #[serde(default)]
    pub from_domain: String,
    /// The DMARC verdict on arrival.
    #[serde(default)]
    pub dmarc: String,
    /// The author domain's published DMARC policy.
    #[serde(default)]
    pub dmarc_policy: String,
    /// From rewritten or the post wrapped, for the author domain's DMARC policy.
    #[serde(default)]
    pub mitigated: bool,
    /// The trusted sealers whose ARC chain let a DMARC failure through.
    #[serde(default)]
    pub arc_override: Vec<String>,
    /// For a returned message: hard, soft, policy, delayed or complaint.
    #[serde(default)]
    pub bounce: Option<String>,
    /// For a returned message: the member it concerns.
    #[serde(default)]
    pub bounce_for: Option<String>,
    /// For forwarded mail and its delivery status notifications: the forwarding domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forwarded_by: Option<String>,
    /// For forwarded mail: its envelope sender's domain vouched for it (SPF passed for it, or
    /// that domain's DKIM signature verified), so a notification would reach the real sender.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sender_verified: bool,
    /// For an aggregate report to the author domain: where its DMARC record was found, the
    /// `rua=` addresses it asks reports at, and the DKIM (domain, result) and SPF (domain,
    /// result) that DMARC judged. Empty when the record asks for no reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reporting: Option<Box<ReportFacts>>,
}

/// What an aggregate report to an author domain says of one message (RFC 9990 §2.1).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReportFacts {
    /// The domain whose record applied.
    pub record_domain: String,
    /// Its `rua=` URIs.
    pub rua: Vec<String>,
    /// Each DKIM signature's domain and result.
    pub dkim: Vec<(String, String)>,
    /// The SPF (MAIL FROM) domain and result.
    pub spf: Option<(String, String)>,
    /// DMARC's DKIM and SPF results after alignment: `pass` or `fail`.
    pub aligned: (String, String),
}

/// A list member.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Member {
    /// The member's address, lower-cased.
    pub address: String,
    /// Display name, if known.
    pub name: String,
    /// Unix time of joining.
    pub joined_at: u64,
    /// Bounce score: 1 per hard bounce, 0.5 per soft one; reset after a week without bounces.
    #[serde(default)]
    pub bounce_score: f32,
    /// Unix time of the last bounce counted.
    #[serde(default)]
    pub last_bounce: u64,
    /// Refusals that were the receiver's policy (spam, DMARC), not the address: counted, never
    /// scored.
    #[serde(default)]
    pub policy_rejections: u32,
    /// Delivery stopped because the score reached the limit.
    #[serde(default)]
    pub disabled: bool,
    /// How the member takes the list's mail (records written before modes existed read as
    /// regular, on both backends: the record is JSON and the field defaults).
    #[serde(default)]
    pub delivery: DeliveryMode,
    /// With [`DeliveryMode::Nomail`]: the UTC date (`YYYY-MM-DD`) from which the member gets
    /// mail again, in [`Member::returns_to`]'s mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nomail_until: Option<String>,
    /// The mode a pause with an end date returns to.
    #[serde(default)]
    pub returns_to: DeliveryMode,
    /// The member's posts are held for a moderator, as a non-member's would be.
    #[serde(default)]
    pub moderated: bool,
}

impl Member {
    /// The mode in force on `today` (`YYYY-MM-DD`, UTC): a pause whose end date has come is
    /// over, whether or not anything rewrote the record since.
    pub fn delivery_on(&self, today: &str) -> DeliveryMode {
        match (self.delivery, &self.nomail_until) {
            (DeliveryMode::Nomail, Some(until)) if until.as_str() <= today => self.returns_to,
            (mode, _) => mode,
        }
    }

    /// Whether the member gets each post distributed on `today`: not paused, not stopped by
    /// bounces.
    pub fn gets_posts_on(&self, today: &str) -> bool {
        !self.disabled && self.delivery_on(today).gets_each_post()
    }

    /// Changes the mode; `until` (a date [`modes::parse_date`] accepted) only counts with
    /// [`DeliveryMode::Nomail`]. A pause remembers the mode in force on `today` to return to.
    pub fn set_delivery(&mut self, mode: DeliveryMode, until: Option<String>, today: &str) {
        let current = self.delivery_on(today);
        if mode == DeliveryMode::Nomail {
            if current != DeliveryMode::Nomail {
                self.returns_to = current;
            }
            self.nomail_until = until;
        } else {
            self.returns_to = DeliveryMode::Regular;
            self.nomail_until = None;
        }
        self.delivery = mode;
    }
}

/// A digest issue: its numbers and when it was sent. The volume is the year it was sent in;
/// issues count from 1 in each volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestIssue {
    /// The volume (the year, UTC).
    pub volume: u32,
    /// The issue within the volume.
    pub issue: u32,
    /// Unix time it was sent.
    pub sent_at: u64,
}

/// Why an address left a list; remembered so nothing but a person brings it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DepartureReason {
    /// One-click unsubscribe (RFC 8058) or the web page.
    Unsubscribed,
    /// A confirmed leave request by mail.
    Left,
    /// Removed by an operator.
    Removed,
    /// A spam complaint (ARF) from the member's mailbox provider.
    Complaint,
}

/// When and why an address left a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Departure {
    /// Unix time.
    pub at: u64,
    /// Why.
    pub reason: DepartureReason,
}

impl Departure {
    /// A departure now, for `reason`.
    pub fn now(reason: DepartureReason) -> Self {
        Departure {
            at: crate::auth::unix_now(),
            reason,
        }
    }
}

/// A list post's Message-ID and the start of its duplicate window, queued with the post:
/// another post of the list with the same Message-ID at or after `since` makes this one a
/// duplicate. Checked in the commit that queues, so two nodes (or two sessions of one node)
/// given the same post at once queue it once.
#[derive(Debug, Clone, Copy)]
pub struct SeenWindow<'a> {
    /// The Message-ID field's value, as in the message.
    pub message_id: &'a str,
    /// Unix time the window starts.
    pub since: u64,
}

/// What queueing a list post did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    /// Queued for its recipients.
    Queued,
    /// Nothing was written: the list distributed this Message-ID within the window, as this
    /// post.
    DuplicateOf(SpoolId),
}

/// A signed post waiting for delivery.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueueEntry {
    /// The spool id of the post it came from.
    pub id: SpoolId,
    /// The list's posting address.
    pub list: String,
    /// The envelope sender for delivery (the list's `-bounces` address).
    pub mail_from: String,
    /// Who gets it. Read back in full only by [`Store::queue_entry`]: `queued()` and `queue()`
    /// leave it empty: a delivery round never needs it.
    #[serde(default)]
    pub recipients: Vec<String>,
    /// Unix time it was queued.
    pub queued_at: u64,
    /// Set when every recipient is settled; the per-recipient records are no longer read then
    /// (and removed right after, or with the post when it is pruned).
    #[serde(default)]
    pub summary: Option<DeliverySummary>,
    /// A message the list wrote itself (a notice, a digest, mail passed on to the owners):
    /// everyone gets the same bytes, with no VERP and no one-click unsubscribe, since the
    /// people it goes to need not be members.
    #[serde(default)]
    pub plain: bool,
}

impl QueueEntry {
    /// The hot-queue head of this post as just queued: every recipient pending, due now.
    pub fn fresh_head(&self) -> QueueHead {
        QueueHead {
            id: self.id,
            list: self.list.clone(),
            mail_from: self.mail_from.clone(),
            queued_at: self.queued_at,
            next_due: 0,
            pending: self.recipients.len(),
            deferred: 0,
        }
    }
}

/// A post with recipients still to deliver: the hot queue, all the delivery worker reads when
/// it looks for work. Finished posts leave it, so its size follows the work to do, not history.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueueHead {
    /// The spool id of the post it came from.
    pub id: SpoolId,
    /// The list's posting address (or `forward:DOMAIN`, `srs`).
    pub list: String,
    /// The envelope sender for delivery.
    pub mail_from: String,
    /// Unix time it was queued.
    pub queued_at: u64,
    /// Unix time the earliest waiting recipient is due (0: now).
    #[serde(default)]
    pub next_due: u64,
    /// Recipients not tried yet.
    #[serde(default)]
    pub pending: usize,
    /// Recipients refused temporarily, waiting for their next try.
    #[serde(default)]
    pub deferred: usize,
}

/// What is kept of a finished post's per-recipient records: enough for reports and for
/// matching late bounces, far less than one record per member.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeliverySummary {
    /// Unix time the last recipient was settled (delivered or bounced).
    pub finished_at: u64,
    /// Recipients delivered, by destination class (google, microsoft, yahoo, other).
    pub delivered: std::collections::BTreeMap<String, u64>,
    /// The recipients refused for good, with their last reply.
    pub bounced: Vec<Delivery>,
}

impl DeliverySummary {
    /// Counts a settled recipient in: a delivery by its destination class, anything else as
    /// a bounce, with its record.
    pub(crate) fn add(&mut self, d: Delivery) {
        match d.state {
            DeliveryState::Delivered => {
                let class = crate::base::metrics::destination(&d.address);
                *self.delivered.entry(class.to_string()).or_default() += 1;
            }
            _ => self.bounced.push(d),
        }
    }
}

/// What [`Store::settle`] found after a delivery round.
#[derive(Debug, Clone)]
pub enum Settled {
    /// Recipients are still waiting; the post stays in the hot queue as this.
    Waiting(QueueHead),
    /// Every recipient is delivered or bounced; the post left the hot queue.
    Finished(DeliverySummary),
    /// No such queued post.
    Unknown,
}

/// How long finished work is kept (see [`Store::prune`]).
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Metadata and delivery summaries of finished messages, in seconds.
    pub records: u64,
    /// Raw spooled messages and signed copies of finished messages, in seconds.
    pub raw: u64,
}

/// What one [`Store::prune`] batch removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Messages whose every trace (metadata, summary, bytes) was removed.
    pub records: usize,
    /// Messages whose raw bytes (spooled and signed) were removed, their records kept.
    pub raw: usize,
    /// Whether the batch stopped at its bound with more to remove.
    pub more: bool,
}

/// Where one recipient of a queued message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Not tried yet, or due for another try.
    Pending,
    /// Tried and refused temporarily (or unreachable); `next_attempt` says when again.
    Deferred,
    /// The receiving server said 250 for it.
    Delivered,
    /// Refused permanently, or deferred past the queue lifetime.
    Bounced,
}

impl Delivery {
    /// The record of a recipient not tried yet.
    pub fn pending(address: &str) -> Self {
        Delivery {
            address: address.to_string(),
            state: DeliveryState::Pending,
            attempts: 0,
            next_attempt: 0,
            last_reply: String::new(),
        }
    }
}

/// One recipient's delivery record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// The recipient.
    pub address: String,
    /// Where it stands.
    pub state: DeliveryState,
    /// Tries so far.
    pub attempts: u32,
    /// Unix time of the next try (for Pending and Deferred).
    pub next_attempt: u64,
    /// The last reply or error, for `arclist queue show` and bounce handling.
    pub last_reply: String,
}
