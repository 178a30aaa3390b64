//! Stage 2 (spool) and, later, the outbound queue: everything arclist must not lose.
//!
//! A message is committed durably before the SMTP `250`; from then on a crash may delay it,
//! never lose it. The store sits behind the [`Store`] trait with two backends: [`RedbStore`],
//! one embedded file for one machine (the default), and [`PgStore`], PostgreSQL shared by
//! several arclist nodes that claim their work with leases. [`AnyStore`] is whichever the
//! server file names.

mod any;
pub(crate) mod error;
mod postgres_store;
mod redb_store;
mod salvage;

pub use any::AnyStore;
pub(crate) use error::Fault;
pub use error::{ErrorKind, StoreError};
pub use postgres_store::PgStore;
pub use redb_store::RedbStore;

use serde::{Deserialize, Serialize};
use std::future::Future;
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
}

/// The spam filter's verdict on a spooled message, for the stages after `250`: the list's
/// copy takes its header or subject, a list that holds instead of refusing holds it, and the
/// log and the report show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FilterMark {
    /// The filter's action: `no action`, `add header`, `rewrite subject`, or `reject` (a list
    /// that holds instead of refusing).
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

/// A signed post waiting for delivery.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueueEntry {
    /// The spool id of the post it came from.
    pub id: SpoolId,
    /// The list's posting address.
    pub list: String,
    /// The envelope sender for delivery (the list's `-bounces` address).
    pub mail_from: String,
    /// Who gets it.
    pub recipients: Vec<String>,
    /// Unix time it was queued.
    pub queued_at: u64,
    /// Set when every recipient is settled; the per-recipient records are gone then.
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

/// The durable store.
pub trait Store: Send + Sync + 'static {
    /// Commits the message and its envelope durably and returns its id. Only after this
    /// returns `Ok` may the listener answer `250`.
    fn spool(
        &self,
        envelope: SpoolEnvelope,
        message: Vec<u8>,
    ) -> impl Future<Output = Result<SpoolId, StoreError>> + Send;
    /// Every spooled message's metadata, oldest first.
    fn list(&self) -> Result<Vec<SpoolMeta>, StoreError>;
    /// One message's metadata and raw bytes.
    fn get(&self, id: SpoolId) -> Result<Option<(SpoolMeta, Vec<u8>)>, StoreError>;
    /// Replaces a message's metadata (state, results, attempts).
    fn update(&self, meta: &SpoolMeta) -> Result<(), StoreError>;
    /// Message `id`'s metadata as stored, not decoded, and the size of its bytes (0 once
    /// pruned): what [`Store::set_aside`] rebuilds a record that does not decode from.
    fn raw_meta(&self, id: SpoolId) -> Result<Option<(String, usize)>, StoreError>;
    /// Sets aside message `id`, whose processing failed for good, for a person to look at: an
    /// unfinished message is held with `reason` as its note; a record that does not decode is
    /// rebuilt from what of it still does ([`SpoolMeta::salvage`]) and held (or, finished
    /// already, keeps its state), with `reason`. Returns the record as now stored; `None` when
    /// there is no such message or it was finished already.
    fn set_aside(&self, id: SpoolId, reason: &str) -> Result<Option<SpoolMeta>, StoreError> {
        let mut meta = match self.get(id) {
            Ok(Some((meta, _))) if meta.state.unfinished() => meta,
            Ok(_) => return Ok(None),
            Err(e) if e.kind() == ErrorKind::Corrupt => match self.raw_meta(id)? {
                Some((raw, size)) => SpoolMeta::salvage(id, &raw, size),
                None => return Ok(None),
            },
            Err(e) => return Err(e),
        };
        if meta.state.unfinished() {
            meta.state = SpoolState::Held;
        }
        meta.note = Some(reason.to_string());
        self.update(&meta)?;
        Ok(Some(meta))
    }
    /// Replaces a message's metadata only if its stored state is still `from`, in one
    /// transaction; false when someone else changed it first (two moderators deciding one
    /// post at once: only one decision counts).
    fn transition(&self, meta: &SpoolMeta, from: SpoolState) -> Result<bool, StoreError>;
    /// Adds a member at a person's request (operator, confirmed join), also one who left
    /// before; false when already one.
    fn add_member(&self, list: &str, member: &Member) -> Result<bool, StoreError>;
    /// Adds every member not already there, in one commit (an import of a whole list, by an
    /// operator: departures are cleared); returns how many were new.
    fn add_members(&self, list: &str, members: &[Member]) -> Result<usize, StoreError>;
    /// Seeds `list` from its file: adds `members` unless the list was seeded before (`again`
    /// seeds anyway), never anyone who left. `None` when skipped, else how many were added.
    fn seed_members(
        &self,
        list: &str,
        members: &[Member],
        again: bool,
    ) -> Result<Option<usize>, StoreError>;
    /// Why `address` left `list`, when it did and nobody added it again since.
    fn departure(&self, list: &str, address: &str) -> Result<Option<Departure>, StoreError>;
    /// Writes a member's record, adding or replacing it.
    fn put_member(&self, list: &str, member: &Member) -> Result<(), StoreError>;
    /// Removes a member and remembers why, so a seed never adds them again; false when they
    /// were not one.
    fn remove_member(&self, list: &str, address: &str, why: Departure) -> Result<bool, StoreError>;
    /// Adds or replaces a forwarding alias (`alias@domain`) and its targets.
    fn put_alias(&self, alias: &str, targets: &[String]) -> Result<(), StoreError>;
    /// Removes a forwarding alias; false when there was none.
    fn remove_alias(&self, alias: &str) -> Result<bool, StoreError>;
    /// Every alias added with [`Store::put_alias`], by address.
    fn aliases(&self) -> Result<Vec<(String, Vec<String>)>, StoreError>;
    /// A list's members, by address.
    fn members(&self, list: &str) -> Result<Vec<Member>, StoreError>;
    /// At most `limit` members of `list` whose address sorts after `after` (`""`: from the
    /// first), by address: paging that costs the page, not the list.
    fn members_after(
        &self,
        list: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<Member>, StoreError>;
    /// `address`'s record on `list`, if a member.
    fn member(&self, list: &str, address: &str) -> Result<Option<Member>, StoreError>;
    /// Whether `address` is a member of `list`.
    fn is_member(&self, list: &str, address: &str) -> Result<bool, StoreError>;
    /// Queues a signed message and writes its spool metadata (with the state the caller set),
    /// atomically.
    fn enqueue(
        &self,
        meta: &SpoolMeta,
        entry: &QueueEntry,
        signed: &[u8],
    ) -> Result<(), StoreError>;
    /// [`Store::enqueue`] for a list post, in the same commit: the 7-bit twin of an 8-bit
    /// copy (for receivers without 8BITMIME), and the post's Message-ID for the duplicate
    /// window ([`Store::distributed`]).
    fn enqueue_post(
        &self,
        meta: &SpoolMeta,
        entry: &QueueEntry,
        signed: &[u8],
        seven_bit: Option<&[u8]>,
        message_id: Option<&str>,
    ) -> Result<(), StoreError>;
    /// The 7-bit twin of queued post `id`, if it has one.
    fn queued_seven_bit(&self, id: SpoolId) -> Result<Option<Vec<u8>>, StoreError>;
    /// Spools and queues, in one commit, a message arclist wrote itself (a notice to
    /// moderators, a digest): `meta` gets a fresh id and `signed` is both the spooled and the
    /// queued copy. Returns the id.
    fn enqueue_local(
        &self,
        meta: SpoolMeta,
        entry: QueueEntry,
        signed: &[u8],
    ) -> Result<SpoolId, StoreError>;
    /// Every recipient record of queued message `id`.
    fn deliveries(&self, id: SpoolId) -> Result<Vec<Delivery>, StoreError>;
    /// Writes recipient records of queued message `id` (after an attempt).
    fn record_deliveries(&self, id: SpoolId, deliveries: &[Delivery]) -> Result<(), StoreError>;
    /// The secret that confirmation tokens are made with; created on first use.
    fn token_secret(&self) -> Result<Vec<u8>, StoreError>;
    /// Every queued post still kept: those being delivered and the finished ones within the
    /// retention period (with their summary).
    fn queue(&self) -> Result<Vec<QueueEntry>, StoreError>;
    /// One queued post's entry (with its summary once finished), without the signed bytes.
    fn queue_entry(&self, id: SpoolId) -> Result<Option<QueueEntry>, StoreError>;
    /// Every recipient's record of queued post `id`: the live records while it is delivered;
    /// once finished, rebuilt from its entry and summary (the bounced ones as recorded, every
    /// other recipient delivered, with `attempts` 1: the count is not kept).
    fn outcomes(&self, id: SpoolId) -> Result<Vec<Delivery>, StoreError> {
        let Some(entry) = self.queue_entry(id)? else {
            return Ok(Vec::new());
        };
        let Some(summary) = entry.summary else {
            return self.deliveries(id);
        };
        let bounced: std::collections::HashSet<String> = summary
            .bounced
            .iter()
            .map(|d| d.address.to_ascii_lowercase())
            .collect();
        let mut out: Vec<Delivery> = entry
            .recipients
            .into_iter()
            .filter(|a| !bounced.contains(&a.to_ascii_lowercase()))
            .map(|address| Delivery {
                address,
                state: DeliveryState::Delivered,
                attempts: 1,
                next_attempt: 0,
                last_reply: String::new(),
            })
            .collect();
        out.extend(summary.bounced);
        Ok(out)
    }
    /// The hot queue: posts with recipients still to deliver, oldest first.
    fn active(&self) -> Result<Vec<QueueHead>, StoreError>;
    /// After a delivery round of post `id`: recounts its waiting recipients and when the next
    /// is due, or, when none is left, compacts its records into a [`DeliverySummary`] and takes
    /// it out of the hot queue.
    fn settle(&self, id: SpoolId) -> Result<Settled, StoreError>;
    /// [`Store::record_deliveries`] and then [`Store::settle`], in one commit: the end of a
    /// delivery round costs one disk flush, not two.
    fn record_round(&self, id: SpoolId, deliveries: &[Delivery]) -> Result<Settled, StoreError>;
    /// Removes, in one bounded batch (at most `batch` messages), what finished longer ago than
    /// `keep` says. Held and unfinished messages are never touched.
    fn prune(&self, now: u64, keep: Retention, batch: usize) -> Result<Pruned, StoreError>;
    /// Resolves when something was queued since the last call (the delivery worker sleeps on
    /// it instead of polling).
    fn queued_signal(&self) -> impl Future<Output = ()> + Send;
    /// The post of `list` distributed with `message_id` at or after `since`, if any.
    fn distributed(
        &self,
        list: &str,
        message_id: &str,
        since: u64,
    ) -> Result<Option<SpoolId>, StoreError>;
    /// Forgets, at most `batch` at a time, the Message-IDs recorded before `before`; returns
    /// how many, and whether more are left.
    fn forget_distributed(&self, before: u64, batch: usize) -> Result<(usize, bool), StoreError>;
    /// Keeps a receiver's DMARC aggregate report; false when it was kept already (the same
    /// organization and report id).
    fn put_dmarc_report(
        &self,
        report: &crate::auth::dmarc_report::AggregateReport,
    ) -> Result<bool, StoreError>;
    /// The DMARC aggregate reports whose period began at or after `since`.
    fn dmarc_reports(
        &self,
        since: u64,
    ) -> Result<Vec<crate::auth::dmarc_report::AggregateReport>, StoreError>;
    /// Forgets, at most `batch` at a time, the reports whose period began before `before`.
    fn forget_dmarc_reports(&self, before: u64, batch: usize) -> Result<(usize, bool), StoreError>;
    /// Wakes the delivery worker: work was made due by hand (a retry), not by a queueing.
    fn nudge(&self);
    /// One queued post and its signed bytes.
    fn queued(&self, id: SpoolId) -> Result<Option<(QueueEntry, Vec<u8>)>, StoreError>;
    /// Recipients of post `id` due at `now`, now this process's to deliver (on a shared store,
    /// at most the configured `claim_batch`).
    /// On a shared store each is claimed for a lease, so no other node delivers it meanwhile;
    /// recording its outcome ([`Store::record_deliveries`], [`Store::record_round`]) ends the
    /// claim, and a claim its node stopped renewing lapses for another node to take.
    fn claim_due(&self, id: SpoolId, now: u64) -> Result<Vec<Delivery>, StoreError> {
        Ok(self
            .deliveries(id)?
            .into_iter()
            .filter(|d| {
                matches!(d.state, DeliveryState::Pending | DeliveryState::Deferred)
                    && d.next_attempt <= now
            })
            .collect())
    }
    /// Gives up this process's claims on the recipients `addresses` of post `id` that are
    /// still waiting: a round that failed hands them back for a later round.
    fn release_claims(&self, id: SpoolId, addresses: &[String]) -> Result<(), StoreError> {
        let _ = (id, addresses);
        Ok(())
    }
    /// The spooled messages the pipeline has yet to finish and nobody works on, now this
    /// process's: at startup, what an earlier run left; on a shared store, also what a node
    /// that died left once its lease lapsed.
    fn take_unfinished(&self) -> Result<Vec<SpoolId>, StoreError> {
        Ok(self
            .list()?
            .into_iter()
            .filter(|m| m.state.unfinished())
            .map(|m| m.id)
            .collect())
    }
    /// How often to look for work other nodes left or queued ([`Store::take_unfinished`], the
    /// hot queue): `None` for a store no other process writes.
    fn shared(&self) -> Option<std::time::Duration> {
        None
    }
    /// Whether this process is the one to do `job` for `period` (a day's reports, a pruning
    /// pass): true for exactly one caller per (job, period) on a shared store.
    fn once(&self, job: &str, period: u64) -> Result<bool, StoreError> {
        let _ = (job, period);
        Ok(true)
    }
}
