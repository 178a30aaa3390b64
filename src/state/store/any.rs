//! The one store type the server passes around: a redb file, or a PostgreSQL database shared
//! by nodes. Each operation dispatches to the backend's role ([`super::roles`]); what both
//! backends mean alike (setting a message aside, a finished post's outcomes, a single node's
//! claims and jobs) is written here, once.

use super::roles::{Cluster, Leases, Members, Queue, Rates, Records, Slots, Spool};
use super::{
    Delivery, DeliveryState, Departure, Enqueued, ErrorKind, Member, PgStore, Pruned, QueueEntry,
    QueueHead, RedbStore, Retention, SeenWindow, Settled, SpoolEnvelope, SpoolId, SpoolMeta,
    SpoolState, StoreError,
};
use crate::base::config::ServerConfig;

/// The durable store: whichever backend the server file names.
#[derive(Clone)]
pub enum Store {
    /// One embedded file, one process.
    Redb(RedbStore),
    /// A database several nodes share.
    Postgres(PgStore),
}

/// Runs `$call` on whichever backend `$store` is.
macro_rules! each {
    ($store:expr, $s:ident => $call:expr) => {
        match $store {
            Store::Redb($s) => $call,
            Store::Postgres($s) => $call,
        }
    };
}

impl Store {
    /// Opens the store `server.store` names (a `postgresql://` URL or a file), bringing a
    /// database's schema up to date.
    pub async fn open(server: &ServerConfig) -> Result<Store, StoreError> {
        match server.store_url() {
            Some(url) => PgStore::open(url, &server.hostname, &server.cluster)
                .await
                .map(Self::Postgres),
            None => RedbStore::open(&server.store).map(Self::Redb),
        }
    }

    /// Opens a shared store's database connections now rather than at first use (nothing for
    /// the embedded store): what a server does once at its start.
    pub async fn open_connections(&self) {
        if let Store::Postgres(s) = self {
            s.open_connections().await;
        }
    }

    /// Rows read since the store was opened (spool, queue, delivery records): what tests and
    /// benchmarks use to show that idle work does not grow with history.
    pub fn rows_read(&self) -> u64 {
        each!(self, s => s.rows_read())
    }

    /// Resolves once no write of the embedded store is still running (each holds its file):
    /// what a stopping server waits for before it closes the store.
    pub async fn writes_done(&self) {
        if let Store::Redb(s) = self {
            s.writes_done().await;
        }
    }

    /// Copies the embedded store to the new file `to` while it is in use (see
    /// [`RedbStore::backup`]); a shared database is backed up with `pg_dump`. The bytes copied.
    pub async fn backup(&self, to: &std::path::Path) -> Result<u64, StoreError> {
        match self {
            Store::Redb(s) => s.backup(to).await,
            Store::Postgres(_) => Err(StoreError::new(
                crate::state::store::ErrorKind::Other,
                to.display().to_string(),
                "a PostgreSQL store is backed up with pg_dump (docs/scaling.md)",
            )),
        }
    }

    /// The embedded store, when that is the one.
    pub fn as_redb(&self) -> Option<&RedbStore> {
        match self {
            Store::Redb(s) => Some(s),
            Store::Postgres(_) => None,
        }
    }

    /// The shared store, when that is the one.
    pub fn as_postgres(&self) -> Option<&PgStore> {
        match self {
            Store::Redb(_) => None,
            Store::Postgres(s) => Some(s),
        }
    }

    /// Commits the message and its envelope durably and returns its id. Only after this
    /// returns `Ok` may the listener answer `250`.
    pub async fn spool(
        &self,
        envelope: SpoolEnvelope,
        message: Vec<u8>,
    ) -> Result<SpoolId, StoreError> {
        each!(self, s => Spool::spool(s, envelope, message).await)
    }

    /// Every spooled message's metadata, oldest first.
    pub async fn list(&self) -> Result<Vec<SpoolMeta>, StoreError> {
        each!(self, s => Spool::list(s).await)
    }

    /// One message's metadata and raw bytes.
    pub async fn get(&self, id: SpoolId) -> Result<Option<(SpoolMeta, Vec<u8>)>, StoreError> {
        each!(self, s => Spool::get(s, id).await)
    }

    /// Replaces a message's metadata (state, results, attempts).
    pub async fn update(&self, meta: &SpoolMeta) -> Result<(), StoreError> {
        each!(self, s => Spool::update(s, meta).await)
    }

    /// Message `id`'s metadata as stored, not decoded, and the size of its bytes (0 once
    /// pruned): what [`Store::set_aside`] rebuilds a record that does not decode from.
    pub async fn raw_meta(&self, id: SpoolId) -> Result<Option<(String, usize)>, StoreError> {
        each!(self, s => Spool::raw_meta(s, id).await)
    }

    /// Sets aside message `id`, whose processing failed for good, for a person to look at: an
    /// unfinished message is held with `reason` as its note; a record that does not decode is
    /// rebuilt from what of it still does ([`SpoolMeta::salvage`]) and held (or, finished
    /// already, keeps its state), with `reason`. Returns the record as now stored; `None` when
    /// there is no such message or it was finished already.
    pub async fn set_aside(
        &self,
        id: SpoolId,
        reason: &str,
    ) -> Result<Option<SpoolMeta>, StoreError> {
        let mut meta = match self.get(id).await {
            Ok(Some((meta, _))) if meta.state.unfinished() => meta,
            Ok(_) => return Ok(None),
            Err(e) if e.kind() == ErrorKind::Corrupt => match self.raw_meta(id).await? {
                Some((raw, size)) => SpoolMeta::salvage(id, &raw, size),
                None => return Ok(None),
            },
            Err(e) => return Err(e),
        };
        if meta.state.unfinished() {
            meta.state = SpoolState::Held;
        }
        meta.note = Some(reason.to_string());
        self.update(&meta).await?;
        Ok(Some(meta))
    }

    /// Replaces a message's metadata only if its stored state is still `from`, in one
    /// transaction; false when someone else changed it first (two moderators deciding one
    /// post at once: only one decision counts).
    pub async fn transition(&self, meta: &SpoolMeta, from: SpoolState) -> Result<bool, StoreError> {
        each!(self, s => Spool::transition(s, meta, from).await)
    }

    /// Adds a member at a person's request (operator, confirmed join), also one who left
    /// before; false when already one.
    pub async fn add_member(&self, list: &str, member: &Member) -> Result<bool, StoreError> {
        Ok(self.add_members(list, std::slice::from_ref(member)).await? == 1)
    }

    /// Adds every member not already there, in one commit (an import of a whole list, by an
    /// operator: departures are cleared); returns how many were new.
    pub async fn add_members(&self, list: &str, members: &[Member]) -> Result<usize, StoreError> {
        each!(self, s => Members::add_members(s, list, members).await)
    }

    /// Seeds `list` from its file: adds `members` unless the list was seeded before (`again`
    /// seeds anyway), never anyone who left. `None` when skipped, else how many were added.
    pub async fn seed_members(
        &self,
        list: &str,
        members: &[Member],
        again: bool,
    ) -> Result<Option<usize>, StoreError> {
        each!(self, s => Members::seed_members(s, list, members, again).await)
    }

    /// Why `address` left `list`, when it did and nobody added it again since.
    pub async fn departure(
        &self,
        list: &str,
        address: &str,
    ) -> Result<Option<Departure>, StoreError> {
        each!(self, s => Members::departure(s, list, address).await)
    }

    /// Writes a member's record, adding or replacing it.
    pub async fn put_member(&self, list: &str, member: &Member) -> Result<(), StoreError> {
        each!(self, s => Members::put_member(s, list, member).await)
    }

    /// Removes a member and remembers why, so a seed never adds them again; false when they
    /// were not one.
    pub async fn remove_member(
        &self,
        list: &str,
        address: &str,
        why: Departure,
    ) -> Result<bool, StoreError> {
        each!(self, s => Members::remove_member(s, list, address, why).await)
    }

    /// Adds or replaces a forwarding alias (`alias@domain`) and its targets.
    pub async fn put_alias(&self, alias: &str, targets: &[String]) -> Result<(), StoreError> {
        each!(self, s => Members::put_alias(s, alias, targets).await)
    }

    /// Removes a forwarding alias; false when there was none.
    pub async fn remove_alias(&self, alias: &str) -> Result<bool, StoreError> {
        each!(self, s => Members::remove_alias(s, alias).await)
    }

    /// Every alias added with [`Store::put_alias`], by address.
    pub async fn aliases(&self) -> Result<Vec<(String, Vec<String>)>, StoreError> {
        each!(self, s => Members::aliases(s).await)
    }

    /// A list's members, by address.
    pub async fn members(&self, list: &str) -> Result<Vec<Member>, StoreError> {
        self.members_after(list, "", usize::MAX).await
    }

    /// At most `limit` members of `list` whose address sorts after `after` (`""`: from the
    /// first), by address: paging that costs the page, not the list.
    pub async fn members_after(
        &self,
        list: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<Member>, StoreError> {
        each!(self, s => Members::members_after(s, list, after, limit).await)
    }

    /// The addresses of `list`'s members who get each post distributed on `today` (a UTC
    /// date, `YYYY-MM-DD`: a pause with an end date is judged against it), and whether any of
    /// them takes the digest: whom a post is queued for.
    pub async fn post_recipients(
        &self,
        list: &str,
        today: &str,
    ) -> Result<(Vec<String>, bool), StoreError> {
        each!(self, s => Members::post_recipients(s, list, today).await)
    }

    /// `address`'s record on `list`, if a member.
    pub async fn member(&self, list: &str, address: &str) -> Result<Option<Member>, StoreError> {
        each!(self, s => Members::member(s, list, address).await)
    }

    /// Whether `address` is a member of `list`.
    pub async fn is_member(&self, list: &str, address: &str) -> Result<bool, StoreError> {
        each!(self, s => Members::is_member(s, list, address).await)
    }

    /// Queues a signed message and writes its spool metadata (with the state the caller set),
    /// atomically.
    pub async fn enqueue(
        &self,
        meta: &SpoolMeta,
        entry: &QueueEntry,
        signed: &[u8],
    ) -> Result<(), StoreError> {
        self.enqueue_post(meta, entry.clone(), signed, None, None)
            .await
            .map(|_| ())
    }

    /// [`Store::enqueue`] for a list post, in the same commit: the 7-bit twin of an 8-bit
    /// copy (for receivers without 8BITMIME), and the post's Message-ID for the duplicate
    /// window ([`Store::distributed`]). Queues nothing, and says which post it duplicates,
    /// when the list distributed another post with that Message-ID within the window: the
    /// check and the queueing are one commit, so the same post given to two nodes at once
    /// goes out once. Takes the entry, whose recipients may be a million addresses.
    pub async fn enqueue_post(
        &self,
        meta: &SpoolMeta,
        entry: QueueEntry,
        signed: &[u8],
        seven_bit: Option<&[u8]>,
        seen: Option<SeenWindow<'_>>,
    ) -> Result<Enqueued, StoreError> {
        each!(self, s => Queue::enqueue_post(s, meta, entry, signed, seven_bit, seen).await)
    }

    /// [`Store::enqueue_post`] for the members of the entry's list who get posts on `today`
    /// (a UTC date, as [`Store::post_recipients`] takes it), who become its recipients; when
    /// any of them takes the digest, the post is added to the list's digest first (on the
    /// embedded store, in the same commit). Returns what became of it and how many recipients
    /// it was queued for. The embedded store reads the members while it writes their records.
    pub async fn enqueue_for_members(
        &self,
        meta: &SpoolMeta,
        entry: QueueEntry,
        today: &str,
        signed: &[u8],
        seven_bit: Option<&[u8]>,
        seen: Option<SeenWindow<'_>>,
    ) -> Result<(Enqueued, usize), StoreError> {
        let (done, n) = match self {
            Store::Redb(s) => {
                let q = super::redb_store::Queueing::new(meta, entry, signed, seven_bit, seen);
                s.enqueue_for_members(q, today).await?
            }
            Store::Postgres(_) => {
                self.enqueue_for_members_read_first(meta, entry, today, signed, seven_bit, seen)
                    .await?
            }
        };
        Ok((done, if done == Enqueued::Queued { n } else { 0 }))
    }

    /// [`Store::enqueue_for_members`] one step after the other: the members read, the post
    /// added to the digest (unless another post has its Message-ID already: the queueing's
    /// commit checks again), then queued.
    async fn enqueue_for_members_read_first(
        &self,
        meta: &SpoolMeta,
        mut entry: QueueEntry,
        today: &str,
        signed: &[u8],
        seven_bit: Option<&[u8]>,
        seen: Option<SeenWindow<'_>>,
    ) -> Result<(Enqueued, usize), StoreError> {
        if let Some(w) = &seen
            && let Some(first) = self.distributed(&entry.list, w.message_id, w.since).await?
            && first != meta.id
        {
            return Ok((Enqueued::DuplicateOf(first), 0));
        }
        let (recipients, digest) = self.post_recipients(&entry.list, today).await?;
        // A retry after a crash adds it to the digest again, which changes nothing.
        if digest {
            self.add_to_digest(&entry.list, meta.id, signed).await?;
        }
        entry.recipients = recipients;
        let n = entry.recipients.len();
        let done = self
            .enqueue_post(meta, entry, signed, seven_bit, seen)
            .await?;
        Ok((done, n))
    }

    /// The 7-bit twin of queued post `id`, if it has one.
    pub async fn queued_seven_bit(&self, id: SpoolId) -> Result<Option<Vec<u8>>, StoreError> {
        each!(self, s => Queue::queued_seven_bit(s, id).await)
    }

    /// Spools and queues, in one commit, a message arclist wrote itself (a notice to
    /// moderators, a digest): `meta` gets a fresh id and `signed` is both the spooled and the
    /// queued copy. Returns the id.
    pub async fn enqueue_local(
        &self,
        meta: SpoolMeta,
        entry: QueueEntry,
        signed: &[u8],
    ) -> Result<SpoolId, StoreError> {
        each!(self, s => Queue::enqueue_local(s, meta, entry, signed).await)
    }

    /// Every recipient record of queued message `id`.
    pub async fn deliveries(&self, id: SpoolId) -> Result<Vec<Delivery>, StoreError> {
        each!(self, s => Queue::deliveries(s, id).await)
    }

    /// Writes recipient records of queued message `id` (after an attempt).
    pub async fn record_deliveries(
        &self,
        id: SpoolId,
        deliveries: &[Delivery],
    ) -> Result<(), StoreError> {
        each!(self, s => Queue::record_deliveries(s, id, deliveries).await)
    }

    /// The secret that confirmation tokens are made with; created on first use.
    pub async fn token_secret(&self) -> Result<Vec<u8>, StoreError> {
        each!(self, s => Records::token_secret(s).await)
    }

    /// Every queued post still kept: those being delivered and the finished ones within the
    /// retention period (with their summary). Their recipients are left out (a million-member
    /// post's list is tens of megabytes): [`Store::queue_entry`] has them.
    pub async fn queue(&self) -> Result<Vec<QueueEntry>, StoreError> {
        each!(self, s => Queue::queue(s).await)
    }

    /// One queued post's entry (with its summary once finished), without the signed bytes and
    /// with the recipients it was queued for.
    pub async fn queue_entry(&self, id: SpoolId) -> Result<Option<QueueEntry>, StoreError> {
        each!(self, s => Queue::queue_entry(s, id).await)
    }

    /// Every recipient's record of queued post `id`: the live records while it is delivered;
    /// once finished, rebuilt from its entry and summary (the bounced ones as recorded, every
    /// other recipient delivered, with `attempts` 1: the count is not kept).
    pub async fn outcomes(&self, id: SpoolId) -> Result<Vec<Delivery>, StoreError> {
        let Some(entry) = self.queue_entry(id).await? else {
            return Ok(Vec::new());
        };
        let Some(summary) = entry.summary else {
            return self.deliveries(id).await;
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
    pub async fn active(&self) -> Result<Vec<QueueHead>, StoreError> {
        each!(self, s => Queue::active(s).await)
    }

    /// After a delivery round of post `id`: recounts its waiting recipients and when the next
    /// is due, or, when none is left, compacts its records into a
    /// [`super::DeliverySummary`] and takes it out of the hot queue.
    pub async fn settle(&self, id: SpoolId) -> Result<Settled, StoreError> {
        each!(self, s => Queue::settle(s, id).await)
    }

    /// [`Store::record_deliveries`] and then [`Store::settle`], in one commit: the end of a
    /// delivery round costs one disk flush, not two.
    pub async fn record_round(
        &self,
        id: SpoolId,
        deliveries: &[Delivery],
    ) -> Result<Settled, StoreError> {
        each!(self, s => Queue::record_round(s, id, deliveries).await)
    }

    /// [`Store::record_round`] at the end of this node's work on post `id`, when no other round
    /// of it runs here: on a shared store every claim this node holds on the post ends with it
    /// (a recipient deferred early in a long round is due again by its end, and its page
    /// would otherwise stay claimed, renewed by the heartbeat, and never tried again).
    pub async fn record_last_round(
        &self,
        id: SpoolId,
        deliveries: &[Delivery],
    ) -> Result<Settled, StoreError> {
        match self {
            Store::Redb(s) => Queue::record_round(s, id, deliveries).await,
            Store::Postgres(s) => s.record_last_round(id, deliveries).await,
        }
    }

    /// Removes, in one bounded batch (at most `batch` messages), what finished longer ago than
    /// `keep` says. Held and unfinished messages are never touched.
    pub async fn prune(
        &self,
        now: u64,
        keep: Retention,
        batch: usize,
    ) -> Result<Pruned, StoreError> {
        each!(self, s => Records::prune(s, now, keep, batch).await)
    }

    /// Resolves when something was queued since the last call (the delivery worker sleeps on
    /// it instead of polling).
    pub async fn queued_signal(&self) {
        each!(self, s => Cluster::queued_signal(s).await)
    }

    /// The post of `list` distributed with `message_id` at or after `since`, if any.
    pub async fn distributed(
        &self,
        list: &str,
        message_id: &str,
        since: u64,
    ) -> Result<Option<SpoolId>, StoreError> {
        each!(self, s => Records::distributed(s, list, message_id, since).await)
    }

    /// Forgets, at most `batch` at a time, the Message-IDs recorded before `before`; returns
    /// how many, and whether more are left.
    pub async fn forget_distributed(
        &self,
        before: u64,
        batch: usize,
    ) -> Result<(usize, bool), StoreError> {
        each!(self, s => Records::forget_distributed(s, before, batch).await)
    }

    /// Adds one to each rate counter in `keys` (a key names its subject and its time window;
    /// the number is when the counter may be forgotten) and returns each count after, in
    /// order. On a shared store every node counts into the same counters. Quotas read these.
    pub async fn count_rates(&self, keys: &[(String, u64)]) -> Result<Vec<u64>, StoreError> {
        each!(self, s => Rates::count_rates(s, keys).await)
    }

    /// Forgets, at most `batch` at a time, the rate counters that expired before `now`;
    /// returns how many, and whether more are left.
    pub async fn forget_rates(&self, now: u64, batch: usize) -> Result<(usize, bool), StoreError> {
        each!(self, s => Rates::forget_rates(s, now, batch).await)
    }

    /// Keeps a receiver's DMARC aggregate report; false when it was kept already (the same
    /// organization and report id).
    pub async fn put_dmarc_report(
        &self,
        report: &crate::auth::dmarc_report::AggregateReport,
    ) -> Result<bool, StoreError> {
        each!(self, s => Records::put_dmarc_report(s, report).await)
    }

    /// The DMARC aggregate reports whose period began at or after `since`.
    pub async fn dmarc_reports(
        &self,
        since: u64,
    ) -> Result<Vec<crate::auth::dmarc_report::AggregateReport>, StoreError> {
        each!(self, s => Records::dmarc_reports(s, since).await)
    }

    /// Forgets, at most `batch` at a time, the reports whose period began before `before`.
    pub async fn forget_dmarc_reports(
        &self,
        before: u64,
        batch: usize,
    ) -> Result<(usize, bool), StoreError> {
        each!(self, s => Records::forget_dmarc_reports(s, before, batch).await)
    }

    /// Wakes the delivery worker: work was made due by hand (a retry), not by a queueing.
    pub fn nudge(&self) {
        each!(self, s => Cluster::nudge(s))
    }

    /// One queued post and its signed bytes, as a delivery round reads them: the entry without
    /// its recipients (the records say who waits; [`Store::queue_entry`] has the list).
    pub async fn queued(&self, id: SpoolId) -> Result<Option<(QueueEntry, Vec<u8>)>, StoreError> {
        each!(self, s => Queue::queued(s, id).await)
    }

    /// Recipients of post `id` due at `now`, now this process's to deliver (on a shared store,
    /// at most the configured `claim_batch`).
    /// On a shared store each is claimed for a lease, so no other node delivers it meanwhile;
    /// recording its outcome ([`Store::record_deliveries`], [`Store::record_round`]) ends the
    /// claim, and a claim its node stopped renewing lapses for another node to take.
    pub async fn claim_due(&self, id: SpoolId, now: u64) -> Result<Vec<Delivery>, StoreError> {
        self.claim_due_after(id, now, "", usize::MAX).await
    }

    /// Like [`Store::claim_due`], one page: at most `limit` of the due recipients whose
    /// address sorts after `after` (`""`: from the first), in address order. A fan-out goes
    /// through a large list page by page, so what it holds in memory and what each page's
    /// records touch in the store are bounded by the page, not by the list.
    pub async fn claim_due_after(
        &self,
        id: SpoolId,
        now: u64,
        after: &str,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        match self {
            // Nobody else delivers from this store: what is due is this process's.
            Store::Redb(s) => s.due_after(id, now, after, limit).await,
            Store::Postgres(s) => Leases::claim_due(s, id, now, after, limit).await,
        }
    }

    /// How many recipients one [`Store::claim_due_after`] hands out when asked for `limit`
    /// and more are due: a page this size or larger may have more after it, a smaller one
    /// was the last (a shared store claims whole pages of records, so it may hand out up to
    /// a page more).
    pub fn claim_limit(&self, limit: usize) -> usize {
        match self {
            Store::Redb(_) => limit,
            Store::Postgres(s) => s.claim_batch().min(limit),
        }
    }

    /// Gives up this process's claims on the recipients `addresses` of post `id` that are
    /// still waiting: a round that failed hands them back for a later round.
    pub async fn release_claims(
        &self,
        id: SpoolId,
        addresses: &[String],
    ) -> Result<(), StoreError> {
        match self {
            // Nothing was claimed: a single node's recipients wait in their records.
            Store::Redb(_) => Ok(()),
            Store::Postgres(s) => Leases::release_claims(s, id, addresses).await,
        }
    }

    /// The spooled messages the pipeline has yet to finish and nobody works on, now this
    /// process's: at startup, what an earlier run left; on a shared store, also what a node
    /// that died left once its lease lapsed.
    pub async fn take_unfinished(&self) -> Result<Vec<SpoolId>, StoreError> {
        each!(self, s => Cluster::take_unfinished(s).await)
    }

    /// How often to look for work other nodes left or queued ([`Store::take_unfinished`], the
    /// hot queue): `None` for a store no other process writes.
    pub fn shared(&self) -> Option<std::time::Duration> {
        match self {
            Store::Redb(_) => None,
            Store::Postgres(s) => Some(Leases::poll_every(s)),
        }
    }

    /// Takes up to `want` of `limit` connection slots to `destination` (a domain) for this
    /// process, free or lapsed at `now`; none while all are held. On a shared store a slot is
    /// a lease held in the database (renewed with this node's claims, lapsing if it dies), so
    /// the limit holds for the whole cluster. On the embedded store every ask is granted
    /// (slot 0, `want` times): one process is the whole cluster, and its own semaphore is the
    /// limit.
    pub async fn take_destination_slots(
        &self,
        destination: &str,
        limit: u32,
        want: u32,
        now: u64,
    ) -> Result<Vec<u32>, StoreError> {
        match self {
            Store::Redb(_) => Ok(vec![0; want as usize]),
            Store::Postgres(s) => Slots::take_slots(s, destination, limit, want, now).await,
        }
    }

    /// Gives back `slots` (destination, slot), taken with [`Store::take_destination_slots`].
    pub async fn free_destination_slots(&self, slots: &[(String, u32)]) -> Result<(), StoreError> {
        match self {
            Store::Redb(_) => Ok(()),
            Store::Postgres(s) => Slots::free_slots(s, slots).await,
        }
    }

    /// Whether this process is the one to do `job` for `period` (a day's reports, a pruning
    /// pass): true for exactly one caller per (job, period) on a shared store.
    pub async fn once(&self, job: &str, period: u64) -> Result<bool, StoreError> {
        match self {
            // The only process there is does every job.
            Store::Redb(_) => Ok(true),
            Store::Postgres(s) => Leases::once(s, job, period).await,
        }
    }
}

impl From<RedbStore> for Store {
    fn from(s: RedbStore) -> Self {
        Store::Redb(s)
    }
}

impl From<PgStore> for Store {
    fn from(s: PgStore) -> Self {
        Store::Postgres(s)
    }
}
