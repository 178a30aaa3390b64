//! The delivery loop: due recipients, grouped by domain, spread over a bounded number of
//! connections, retried with backoff.

use super::DeliveryError;
use super::client::{Outcome, Session, Transaction, deliver};
use super::connect::{Endpoint, Reply};
use super::outgoing::Outgoing;
use super::owner::{HookError, Hooks, Owner, PerRecipient, Queued};
use super::pool::Pool;
use super::route::{Routing, destinations};
use super::unrecorded::{Round, Unrecorded, Writer};
use crate::auth::dns::Resolver;
use crate::base::metrics::DeliveryOutcome;
use crate::base::tasks::Tasks;
use crate::state::store::{Delivery, DeliveryState, QueueHead, Store};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

/// The longest the worker sleeps with nothing due: a safety net (a clock step, a post queued
/// by another process); each wake reads only the hot queue.
const IDLE_CHECK: Duration = Duration::from_secs(30);
/// The least time between two hand-backs of freed memory.
const TRIM_EVERY: Duration = Duration::from_secs(2);
/// The wait after the queue could not be read.
const RETRY_READ_AFTER: Duration = Duration::from_secs(5);

/// Due recipients by post, and when the next post not yet due will be.
type Due = (Vec<(QueueHead, Vec<Delivery>)>, Option<u64>);
/// A further connection to one destination is opened only for this many transactions: a
/// handful of recipients is quicker down one connection than through several handshakes.
const PER_CONNECTION_AT_LEAST: usize = 8;
/// Recipients due in one round above which each accepted one is recorded as its 250 arrives.
const RECORD_AS_ACCEPTED_ABOVE: usize = 8;
/// How often, at most, the copies accepted meanwhile are recorded during a fan-out on the
/// embedded store, unless [`RECORD_AT_MOST`] wait sooner: what a crash can send twice.
const RECORD_EVERY: std::time::Duration = std::time::Duration::from_millis(50);
/// [`RECORD_EVERY`] on a shared store: each record is a commit and a few log rows in the
/// database, and the copies accepted since a node died go again when a peer takes over.
const RECORD_EVERY_SHARED: std::time::Duration = std::time::Duration::from_millis(10);
/// Accepted copies waiting for their record above which it is written at once: a fast fan-out
/// accepts thousands in [`RECORD_EVERY`], and a crash would send them all twice.
const RECORD_AT_MOST: usize = 512;
/// How often the recorder looks whether [`RECORD_AT_MOST`] copies wait.
const RECORD_TICK: std::time::Duration = std::time::Duration::from_millis(5);
/// Pages of one post going out at once: the next page's connections start while the slowest
/// destination of the one before finishes.
const PAGES_AT_ONCE: usize = 2;
/// Recipients in the first page of a round at most: reading and decoding a whole round's
/// records (10,000 on the embedded store) took 10 ms before the first copy could be made;
/// a small first page goes out while the next, of a full round, is read.
const FIRST_PAGE: usize = 1_000;
/// Posts up to this size have a connection's next batch of per-member copies signed while the
/// current one is sent (two batches in memory); larger ones one batch at a time.
const SIGN_AHEAD_UP_TO: usize = 256 * 1024;
/// Per-recipient transactions (VERP envelopes, one-click copies) are made this many at a time,
/// just before they are sent, so a 100,000-member list never holds 100,000 of them in memory.
const PERSONAL_BATCH: usize = 64;

/// The local addresses delivery connects from, by whose mail it is (Postfix: one
/// `smtp_bind_address` per transport). `None`: the system chooses.
#[derive(Debug, Clone, Copy, Default)]
pub struct BindAddresses {
    /// For the lists' mail: posts, notices, digests.
    pub lists: (Option<std::net::Ipv4Addr>, Option<std::net::Ipv6Addr>),
    /// For forwarded mail and what forwarding sends back (DSNs, SRS returns).
    pub forwarding: (Option<std::net::Ipv4Addr>, Option<std::net::Ipv6Addr>),
}

/// A round's per-recipient envelope senders and copies, made by the message's owner.
type Personal = Arc<dyn PerRecipient>;

/// How much delivery may do at once.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections at once, over all destinations.
    pub max_connections: usize,
    /// Connections at once to one destination domain.
    pub per_destination: usize,
    /// Recipients per transaction when they share one copy.
    pub recipients_per_transaction: usize,
    /// Recipients claimed, delivered and recorded at a time (a page): a million-member post
    /// is delivered page after page, so what a round holds in memory, and the records each
    /// page writes, are bounded by the page, not by the list.
    pub per_round: usize,
    /// How long an idle connection is kept for reuse.
    pub reuse: Duration,
    /// Seconds to wait after each temporary failure; the last repeats.
    pub retry_after: Vec<u64>,
    /// Seconds a recipient may stay deferred before it counts as bounced.
    pub lifetime: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 100,
            per_destination: 10,
            recipients_per_transaction: 50,
            per_round: 10_000,
            reuse: Duration::from_secs(5),
            retry_after: vec![60, 300, 900, 1800, 3600, 7200, 14_400],
            lifetime: 5 * 86_400,
        }
    }
}

/// Delivers the queue.
pub struct DeliveryWorker {
    store: Arc<Store>,
    resolver: Resolver,
    routing: Routing,
    helo: String,
    timeout: Duration,
    hooks: Hooks,
    limits: Limits,
    pool: Pool,
    connections: Arc<Semaphore>,
    destinations: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// Per-destination slots over the cluster, on a shared store.
    slots: Arc<super::slots::Slots>,
    tasks: Tasks,
    /// The local addresses mail leaves from, IPv4 and IPv6 (none: the system's choice).
    bind: BindAddresses,
    /// Rounds' outcomes and claims the store could not take yet.
    unrecorded: Arc<Unrecorded>,
    /// Where per-member copies are made and signed, one thread per core.
    cpu: Arc<super::cpu_pool::CpuPool>,
}

impl DeliveryWorker {
    /// A worker for `store`'s queue. `timeout` bounds each step of a delivery; `hooks` are
    /// asked, by the owner of each queued message, for per-recipient envelope senders and
    /// copies and for what follows a round.
    pub fn new(
        store: Arc<Store>,
        resolver: Resolver,
        routing: Routing,
        helo: &str,
        timeout: Duration,
        hooks: Hooks,
        limits: Limits,
    ) -> Self {
        let pool = Pool::new(
            super::slots::reuse_for(&store, limits.reuse),
            limits.per_destination,
        );
        DeliveryWorker {
            slots: super::slots::Slots::new(&store, &limits),
            store,
            resolver,
            routing,
            helo: helo.to_string(),
            timeout,
            hooks,
            pool,
            connections: Arc::new(Semaphore::new(limits.max_connections.max(1))),
            destinations: Mutex::new(HashMap::new()),
            limits,
            tasks: Tasks::new(),
            bind: BindAddresses::default(),
            unrecorded: Arc::default(),
            cpu: Arc::new(super::cpu_pool::CpuPool::per_core()),
        }
    }

    /// Connects from these local addresses (`[delivery] bind_address`, `bind_address6`,
    /// `forward_bind_address`, `forward_bind_address6`), each to destinations of its family.
    pub fn with_bind_addresses(mut self, bind: BindAddresses) -> Self {
        self.bind = bind;
        self
    }

    /// `hosts` with the local address of their family to connect from, for mail of `owner`
    /// (a queued message's stored owner).
    fn with_source_addresses(
        &self,
        mut hosts: Vec<super::connect::Endpoint>,
        owner: &str,
    ) -> Vec<super::connect::Endpoint> {
        let (v4, v6) = match Owner::parse(owner) {
            Owner::List(_) => self.bind.lists,
            Owner::Forward(_) | Owner::Dsn(_) | Owner::SrsReturn => self.bind.forwarding,
        };
        for host in &mut hosts {
            host.source = match host.addr {
                std::net::SocketAddr::V4(_) => v4.map(std::net::IpAddr::V4),
                std::net::SocketAddr::V6(_) => v6.map(std::net::IpAddr::V6),
            };
        }
        hosts
    }

    /// Runs until `tasks` stop (which also cuts off every delivery in progress).
    pub fn start(mut self, tasks: &Tasks) {
        self.tasks = tasks.clone();
        let writer = Writer {
            store: self.store.clone(),
            hooks: self.hooks.clone(),
            tasks: tasks.clone(),
            unrecorded: self.unrecorded.clone(),
        };
        tasks.spawn(writer.run());
        let worker = Arc::new(self);
        tasks.spawn(worker.run());
    }

    /// The worker's loop: start what is due, then sleep until a post is queued, a delivery
    /// ends, the next deferred recipient is due or idle connections need closing. An idle
    /// server reads only the hot queue, which holds nothing but work still to do.
    async fn run(self: Arc<Self>) {
        // Posts being delivered, by task: each scan leaves them alone, so a slow destination
        // holds up only its own post's recipients, never newer mail.
        let mut running = tokio::task::JoinSet::new();
        let mut tasks: HashMap<tokio::task::Id, u64> = HashMap::new();
        let mut in_flight: HashSet<u64> = HashSet::new();
        let mut trimmed = std::time::Instant::now();
        loop {
            let next_due = match self.clone().due(in_flight.clone()).await {
                Ok((due, next_due)) => {
                    for (entry, recipients) in due {
                        let id = entry.id;
                        in_flight.insert(id);
                        let w = self.clone();
                        let work = async move {
                            // Only a shared store has claims to hand back after a failure.
                            let claimed: Option<Vec<String>> = w
                                .store
                                .shared()
                                .map(|_| recipients.iter().map(|d| d.address.clone()).collect());
                            if let Err(e) = w.clone().deliver_entry(entry, recipients).await {
                                tracing::error!(id, error = %e, "delivery of a post failed; will retry");
                                // Hand back what this round claimed and did not record, so a
                                // later round takes it again.
                                if let Some(claimed) = claimed
                                    && let Err(e) = w.store.release_claims(id, &claimed).await
                                {
                                    // The heartbeat would renew them for as long as this node
                                    // lives: hand them back once the store answers.
                                    tracing::warn!(id, error = %e, "cannot hand back this round's claims yet; retrying");
                                    w.unrecorded.release_later(id, claimed);
                                }
                                // Stay in flight a while, or the next scan would start it again
                                // at once and spin on a lasting fault.
                                tokio::time::sleep(RETRY_READ_AFTER).await;
                            }
                        };
                        let handle = running.spawn(self.tasks.track(work));
                        tasks.insert(handle.id(), id);
                    }
                    next_due
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the delivery queue; retrying");
                    Some(crate::auth::unix_now() + RETRY_READ_AFTER.as_secs())
                }
            };
            if let Ok(mut d) = self.destinations.lock() {
                // Forget destinations nobody is delivering to.
                d.retain(|_, s| Arc::strong_count(s) > 1);
            }
            self.pool.reap();
            let nap = self.nap(next_due);
            tokio::select! {
                () = self.store.queued_signal() => {}
                Some(done) = running.join_next_with_id(), if !running.is_empty() => {
                    let task = match done {
                        Ok((task, _)) => task,
                        Err(e) => {
                            tracing::error!(error = %e, "a delivery task failed");
                            e.id()
                        }
                    };
                    if let Some(id) = tasks.remove(&task) {
                        in_flight.remove(&id);
                    }
                    if running.is_empty() && trimmed.elapsed() >= TRIM_EVERY {
                        // A fan-out just ended: hand its freed pages back.
                        crate::base::memory::release_free_memory();
                        trimmed = std::time::Instant::now();
                    }
                }
                () = tokio::time::sleep(nap) => {}
            }
        }
    }

    /// How long the loop may sleep: until `next_due` (unix time), shorter while idle
    /// connections wait to be closed, and never longer than [`IDLE_CHECK`].
    fn nap(&self, next_due: Option<u64>) -> Duration {
        let now = crate::auth::unix_now();
        let until_due = next_due.map_or(IDLE_CHECK, |t| Duration::from_secs(t.saturating_sub(now)));
        let nap = until_due.min(IDLE_CHECK);
        if self.pool.has_idle() {
            nap.min(super::slots::reap_every(&self.store))
        } else {
            nap
        }
    }

    /// The recipients due now, by post, leaving out the posts `in_flight`, and when the next
    /// post not in flight is due; also updates the queue gauges. Reads the hot queue and the
    /// records of due posts only.
    async fn due(self: Arc<Self>, in_flight: HashSet<u64>) -> Result<Due, DeliveryError> {
        let store = &self.store;
        let now = crate::auth::unix_now();
        {
            {
                let heads = store.active().await?;
                let pending = heads.iter().map(|h| h.pending).sum();
                let deferred = heads.iter().map(|h| h.deferred).sum();
                let oldest = heads.iter().map(|h| h.queued_at).min();
                let oldest = oldest.map_or(0, |o| now.saturating_sub(o));
                crate::base::metrics::queue(pending, deferred, Duration::from_secs(oldest));
                let mut out = Vec::new();
                let mut next_due: Option<u64> = None;
                for head in heads {
                    if in_flight.contains(&head.id) {
                        continue;
                    }
                    if head.next_due > now {
                        next_due = Some(next_due.map_or(head.next_due, |n| n.min(head.next_due)));
                        continue;
                    }
                    // On a shared store, claimed for this node: another node delivering the
                    // same post takes other recipients.
                    let due = store
                        .claim_due_after(head.id, now, "", self.first_page())
                        .await?;
                    if due.is_empty() {
                        // A head with nothing waiting (written by an older arclist, a crash
                        // between a round's records and its settling, or recipients other
                        // nodes hold): settle it now, which also says when it is due again.
                        store.record_last_round(head.id, &[]).await?;
                    } else {
                        out.push((head, due));
                    }
                }
                Ok((out, next_due))
            }
        }
    }

    /// Recipients the first page of a round claims ([`FIRST_PAGE`]).
    fn first_page(&self) -> usize {
        self.limits.per_round.clamp(1, FIRST_PAGE)
    }

    /// Destination `domain`'s slots: this process's semaphore (forgotten by the loop once
    /// nobody holds it) and, on a shared store, the cluster's leased slots.
    fn destination_slots(&self, domain: &str) -> super::slots::Destination {
        let local = match self.destinations.lock() {
            Ok(mut d) => d
                .entry(domain.to_string())
                .or_insert_with(|| Arc::new(Semaphore::new(self.limits.per_destination.max(1))))
                .clone(),
            Err(_) => Arc::new(Semaphore::new(1)),
        };
        self.slots.destination(domain, local)
    }

    /// Post `entry`'s signed copy and, when its owner wants per-recipient envelopes or
    /// copies, what makes them; and whether the post is plain.
    async fn copy_of(
        &self,
        entry: &Arc<QueueHead>,
        owner: &Arc<Owner>,
    ) -> Result<(Copies, Option<Personal>, bool), DeliveryError> {
        let (store, head, owner) = (self.store.clone(), entry.clone(), owner.clone());
        let hook = self.hooks.of(&owner).cloned();
        let id = entry.id;
        let found = store.queued(id).await?;
        let seven_bit = store.queued_seven_bit(id).await?;
        let personal = match (&found, hook) {
            // A plain message is the same bytes for everyone, whoever its owner is. The
            // owner's per-recipient state (which may read the token secret, through the
            // store's synchronous bridge) is made on the blocking pool.
            (Some((queued, _)), Some(hook)) if !queued.plain => {
                let per = move || {
                    hook.per_recipient(Queued {
                        owner: &owner,
                        head: &head,
                        plain: false,
                    })
                };
                self.tasks.spawn_blocking(per).await??
            }
            _ => None,
        };
        let Some((queued, message)) = found else {
            return Err(DeliveryError::MissingCopy { id });
        };
        let copies = Copies {
            message: message.into(),
            seven_bit: seven_bit.map(Arc::from),
        };
        Ok((copies, personal, queued.plain))
    }

    /// Delivers post `entry` to its due recipients, `first` (the first page) and then page
    /// after page until none is left, recording each page's outcomes; the post is settled
    /// after the last page (and by a page whose outcomes were kept while the store was away,
    /// `unrecorded.rs`, when they are written). The next page is claimed and started while one is still
    /// going out ([`PAGES_AT_ONCE`]), so connections are not left idle while the slowest
    /// destination of a page finishes.
    async fn deliver_entry(
        self: Arc<Self>,
        entry: QueueHead,
        first: Vec<Delivery>,
    ) -> Result<(), DeliveryError> {
        let id = entry.id;
        // Read once per round: everything the owner is asked is asked of this.
        let owner = Arc::new(Owner::parse(&entry.list));
        let entry = Arc::new(entry);
        let (message, personal, plain) = self.copy_of(&entry, &owner).await?;
        let per_round = self.limits.per_round.max(1);
        // What a page holds when more may follow it: the first page was claimed smaller.
        let (mut full, round) = (
            self.store.claim_limit(self.first_page()),
            self.store.claim_limit(per_round),
        );
        let mut pages = Pages::default();
        let (mut next, mut cursor) = (Some(first), None::<String>);
        // A failure (a claim or a record the store refused) ends the claiming, not the pages
        // going out: their outcomes are recorded (or kept, `unrecorded.rs`) before the error
        // is told.
        let mut failed: Option<DeliveryError> = None;
        loop {
            while pages.running.len() < PAGES_AT_ONCE {
                let page = match (next.take(), &cursor) {
                    (Some(page), _) => page,
                    (None, Some(after)) => {
                        let now = crate::auth::unix_now();
                        match self.store.claim_due_after(id, now, after, per_round).await {
                            Ok(page) => page,
                            Err(e) => {
                                (cursor, failed) = (None, Some(e.into()));
                                break;
                            }
                        }
                    }
                    (None, None) => break,
                };
                // A short page was the last one there was; a full one may have more after it.
                cursor = (page.len() >= full)
                    .then(|| page.last().map(|d| d.address.clone()))
                    .flatten();
                full = round;
                if page.is_empty() {
                    break;
                }
                let (worker, entry) = (self.clone(), entry.clone());
                let (message, personal) = (message.clone(), personal.clone());
                let addresses = page.iter().map(|d| d.address.clone()).collect();
                let work = self.tasks.track(async move {
                    worker.deliver_page(&entry, page, &message, &personal).await
                });
                pages.start(work, addresses);
            }
            let Some(updated) = pages.next(&self.store, id).await else {
                self.end_round(entry, owner, Vec::new(), plain, true)
                    .await?;
                return failed.map_or(Ok(()), Err);
            };
            // The only page, or the last: its records and the settling are one commit.
            let last = pages.running.is_empty() && cursor.is_none();
            let recorded = self.end_round(entry.clone(), owner.clone(), updated, plain, last);
            if let Err(e) = recorded.await {
                cursor = None;
                failed.get_or_insert(e);
            }
            if pages.running.is_empty() && cursor.is_none() {
                return failed.map_or(Ok(()), Err);
            }
        }
    }

    /// Delivers one page of post `entry`'s recipients, each destination on its own
    /// connections; returns the records to write (the accepted ones already written, in a
    /// large page, as they came).
    async fn deliver_page(
        self: Arc<Self>,
        entry: &Arc<QueueHead>,
        due: Vec<Delivery>,
        message: &Copies,
        personal: &Option<Personal>,
    ) -> Vec<Delivery> {
        let id = entry.id;
        let mut by_domain: BTreeMap<String, Vec<Delivery>> = BTreeMap::new();
        for d in due {
            let domain = d
                .address
                .rsplit_once('@')
                .map(|(_, d)| d.to_ascii_lowercase())
                .unwrap_or_default();
            by_domain.entry(domain).or_default().push(d);
        }
        // Accepted recipients of a fan-out are made durable as they come (see `record_accepted`
        // for how they are batched), not at the end of the round: a crash then resends only
        // the last moment's copies. A handful of recipients is written once, at the end of the
        // round, right after their transactions: one disk flush for the message instead of two.
        let (accepted_tx, accepted_rx) = tokio::sync::mpsc::unbounded_channel::<(String, String)>();
        // Only the attempt count is needed to write an accepted recipient's record, not a
        // second copy of every record (which for 100,000 members is tens of megabytes).
        let before: HashMap<String, u32> = by_domain
            .values()
            .flatten()
            .map(|d| (d.address.clone(), d.attempts))
            .collect();
        // Not cancelled at a stop: it ends when the delivery tasks holding `accepted_tx` are
        // dropped, after writing what they had accepted, so a graceful stop resends nothing.
        let as_they_come = before.len() > RECORD_AS_ACCEPTED_ABOVE;
        let recorder = self.tasks.spawn_to_end(record_accepted(
            self.store.clone(),
            self.tasks.clone(),
            (id, as_they_come),
            before,
            accepted_rx,
        ));
        let mut tasks = tokio::task::JoinSet::new();
        for (domain, deliveries) in by_domain {
            let (worker, message, entry, personal, accepted) = (
                self.clone(),
                message.clone(),
                entry.clone(),
                personal.clone(),
                accepted_tx.clone(),
            );
            let work = async move {
                worker
                    .deliver_domain(&entry, &domain, deliveries, message, personal, accepted)
                    .await
            };
            tasks.spawn(self.tasks.track(work));
        }
        let mut updated = Vec::new();
        while let Some(done) = tasks.join_next().await {
            if let Ok(Some(done)) = done {
                updated.extend(done);
            }
        }
        drop(accepted_tx);
        // The recorder has the delivered recipients it did not write (all of them in a small
        // round); the rest are in `updated`.
        updated.retain(|d| d.state != DeliveryState::Delivered);
        updated.extend(recorder.await.unwrap_or_default());
        updated
    }

    /// Records a page's outcomes and, after the `last` page, settles the post; the post's
    /// owner hears of the page before the records (to tell a sender) and after them (to
    /// score refusals). On a shared store that cannot take them (the database restarting or
    /// away), the outcomes are kept in this node and written when it answers
    /// (`unrecorded.rs`); the page ends only then, so no further page or round of this node
    /// takes the post meanwhile.
    async fn end_round(
        &self,
        entry: Arc<QueueHead>,
        owner: Arc<Owner>,
        updated: Vec<Delivery>,
        plain: bool,
        last: bool,
    ) -> Result<(), DeliveryError> {
        let id = entry.id;
        let hook = self.hooks.of(&owner).cloned();
        let store = self.store.clone();
        let (head, of) = (entry.clone(), owner.clone());
        let settled = self
            .tasks
            .spawn_blocking(move || {
                let queued = Queued {
                    owner: &owner,
                    head: &entry,
                    plain,
                };
                // Before the records: a crash in between repeats it (tells a sender twice,
                // not never); after them: a crash in between skips it (scores a refusal
                // never, not twice).
                if let Some(hook) = &hook {
                    hook.before_record(queued, &updated);
                }
                // The hooks are synchronous (they may sign and queue mail): the round's
                // record waits here through the store's bridge, in the same trip.
                let recorded = if last {
                    crate::state::store::wait(store.record_last_round(id, &updated)).map(Some)
                } else {
                    crate::state::store::wait(store.record_deliveries(id, &updated)).map(|()| None)
                };
                match recorded {
                    Ok(settled) => {
                        if let Some(hook) = &hook {
                            hook.after_record(queued, &updated);
                        }
                        Ok(settled)
                    }
                    Err(e) => Err((e, updated)),
                }
            })
            .await?;
        match settled {
            Ok(Some(settled)) => super::unrecorded::finished(id, &settled),
            Ok(None) => {}
            // A single node's store answers for itself: its round fails as before.
            // So does a shared store's lasting fault (not the database away): kept, it would
            // be retried for ever.
            Err((e, _)) if self.store.shared().is_none() || !e.kind().is_transient() => {
                return Err(e.into());
            }
            Err((e, records)) => {
                let round = Round {
                    entry: head,
                    owner: of,
                    plain,
                    records,
                    last,
                };
                self.unrecorded.keep(round, &e);
                self.unrecorded.written(id).await;
            }
        }
        Ok(())
    }

    async fn deliver_domain(
        self: Arc<Self>,
        entry: &QueueHead,
        domain: &str,
        mut deliveries: Vec<Delivery>,
        message: Copies,
        personal: Option<Personal>,
        accepted: UnboundedSender<(String, String)>,
    ) -> Vec<Delivery> {
        let now = crate::auth::unix_now();
        let addresses: Vec<String> = deliveries.iter().map(|d| d.address.clone()).collect();
        let mut outcomes: Vec<(String, Outcome)> =
            match destinations(&self.routing, &self.resolver, domain)
                .await
                .map(|hosts| self.with_source_addresses(hosts, &entry.list))
            {
                Err(e) => addresses
                    .iter()
                    .map(|a| {
                        (
                            a.clone(),
                            Outcome::Deferred(format!("DNS for {domain}: {e}")),
                        )
                    })
                    .collect(),
                Ok(hosts) if hosts.is_empty() => addresses
                    .iter()
                    .map(|a| {
                        (
                            a.clone(),
                            Outcome::Bounced(Reply {
                                code: 556,
                                text: format!("5.1.10 {domain} accepts no mail"),
                            }),
                        )
                    })
                    .collect(),
                Ok(hosts) => {
                    self.spread(entry, domain, addresses, hosts, message, personal, accepted)
                        .await
                }
            };
        let mut by_address: HashMap<String, Outcome> = outcomes.drain(..).collect();
        for d in &mut deliveries {
            let Some(outcome) = by_address.remove(&d.address) else {
                continue;
            };
            d.attempts += 1;
            match outcome {
                Outcome::Delivered(reply) => {
                    d.state = DeliveryState::Delivered;
                    d.last_reply = reply.to_string();
                }
                Outcome::Bounced(reply) => {
                    d.state = DeliveryState::Bounced;
                    d.last_reply = reply.to_string();
                }
                Outcome::Deferred(why) => {
                    d.last_reply = why;
                    let lifetime = self.limits.lifetime;
                    if now.saturating_sub(entry.queued_at) > lifetime {
                        d.state = DeliveryState::Bounced;
                        d.last_reply =
                            format!("gave up after {} hours: {}", lifetime / 3600, d.last_reply);
                    } else {
                        d.state = DeliveryState::Deferred;
                        d.next_attempt =
                            now + backoff(&self.limits.retry_after, d.attempts, &d.address);
                    }
                }
            }
            tracing::debug!(id = entry.id, rcpt = %d.address, state = ?d.state, reply = %d.last_reply, "delivery attempt");
            let outcome = match d.state {
                DeliveryState::Delivered => DeliveryOutcome::Delivered,
                DeliveryState::Bounced => DeliveryOutcome::Bounced,
                _ => DeliveryOutcome::Deferred,
            };
            crate::base::metrics::delivery(outcome, &d.address);
        }
        let count = |s: DeliveryState| deliveries.iter().filter(|d| d.state == s).count();
        tracing::info!(
            id = entry.id,
            list = %entry.list,
            domain,
            delivered = count(DeliveryState::Delivered),
            deferred = count(DeliveryState::Deferred),
            bounced = count(DeliveryState::Bounced),
            "delivery to destination"
        );
        deliveries
    }

    /// Splits one destination's recipients over up to `per_destination` connections and runs
    /// them side by side.
    #[allow(clippy::too_many_arguments)]
    async fn spread(
        self: &Arc<Self>,
        entry: &QueueHead,
        domain: &str,
        addresses: Vec<String>,
        hosts: Vec<Endpoint>,
        message: Copies,
        personal: Option<Personal>,
        accepted: UnboundedSender<(String, String)>,
    ) -> Vec<(String, Outcome)> {
        // Without per-recipient envelopes every recipient shares one transaction, up to the
        // batch size; with them (VERP, one-click) each recipient is its own transaction.
        let groups: Vec<Vec<String>> = match &personal {
            None => addresses
                .chunks(self.limits.recipients_per_transaction.max(1))
                .map(<[String]>::to_vec)
                .collect(),
            Some(_) => addresses.into_iter().map(|a| vec![a]).collect(),
        };
        let connections = groups
            .len()
            .div_ceil(PER_CONNECTION_AT_LEAST)
            .clamp(1, self.limits.per_destination.max(1));
        let per_connection = groups.len().div_ceil(connections);
        let slots = self.destination_slots(domain);
        let hosts = Arc::new(hosts);
        let mut tasks = tokio::task::JoinSet::new();
        let mut groups = groups.into_iter().peekable();
        while groups.peek().is_some() {
            let share: Vec<Vec<String>> = groups.by_ref().take(per_connection).collect();
            let (worker, hosts, slots, message, personal, accepted) = (
                self.clone(),
                hosts.clone(),
                slots.clone(),
                message.clone(),
                personal.clone(),
                accepted.clone(),
            );
            let (id, mail_from) = (entry.id, entry.mail_from.clone());
            tasks.spawn(self.tasks.track(async move {
                let Some(_destination) = slots.acquire(&worker.tasks).await else {
                    return Vec::new();
                };
                let Ok(_connection) = worker.connections.clone().acquire_owned().await else {
                    return Vec::new();
                };
                worker
                    .connection(id, &mail_from, share, &hosts, message, personal, &accepted)
                    .await
            }));
        }
        let mut out = Vec::new();
        while let Some(done) = tasks.join_next().await {
            if let Ok(Some(done)) = done {
                out.extend(done);
            }
        }
        out
    }

    /// One connection's share: its transactions, made (and for one-click, signed) a batch at
    /// a time just before they are sent.
    #[allow(clippy::too_many_arguments)]
    async fn connection(
        &self,
        id: u64,
        mail_from: &str,
        share: Vec<Vec<String>>,
        hosts: &[Endpoint],
        message: Copies,
        personal: Option<Personal>,
        accepted: &UnboundedSender<(String, String)>,
    ) -> Vec<(String, Outcome)> {
        let session = Session {
            helo: &self.helo,
            limit: self.timeout,
            accepted: Some(accepted),
            pool: Some(&self.pool),
        };
        let mut out = Vec::new();
        let Some(personal) = personal else {
            let transactions: Vec<Transaction> = share
                .into_iter()
                .map(|recipients| Transaction {
                    mail_from: mail_from.to_string(),
                    recipients,
                    message: Outgoing::shared(message.message.clone()),
                    seven_bit: message.seven_bit.clone().map(Outgoing::shared),
                })
                .collect();
            return try_hosts(hosts, &transactions, &session).await;
        };
        // The next batch is signed while this one is on the wire: the cores sign while the
        // connection waits for its receiver, instead of taking turns with it.
        let mut chunks = share.into_iter().flatten().collect::<Vec<_>>().into_iter();
        let sign = |chunk: Vec<String>| {
            let (p, m) = (personal.clone(), message.clone());
            self.cpu.submit(move || personal_copies(&*p, id, chunk, &m))
        };
        let take = |chunks: &mut std::vec::IntoIter<String>| -> Option<Vec<String>> {
            let chunk: Vec<String> = chunks.by_ref().take(PERSONAL_BATCH.max(1)).collect();
            (!chunk.is_empty()).then_some(chunk)
        };
        // Ahead only for posts of ordinary size: a batch of a large post's copies is memory
        // enough.
        let ahead = message.message.len() <= SIGN_AHEAD_UP_TO;
        let mut signing = take(&mut chunks).map(sign);
        while let Some(current) = signing.take() {
            if ahead {
                signing = take(&mut chunks).map(sign);
            }
            let made = current.await.unwrap_or_default();
            let mut transactions = Vec::with_capacity(made.len());
            for (address, copy) in made {
                match copy {
                    Ok(t) => transactions.push(t),
                    Err(e) => out.push((
                        address,
                        Outcome::Deferred(format!("cannot sign the personal copy: {e}")),
                    )),
                }
            }
            out.extend(try_hosts(hosts, &transactions, &session).await);
            if !ahead {
                signing = take(&mut chunks).map(sign);
            }
        }
        out
    }
}

/// The recipients of post `id` accepted by their receivers (address and reply), as they
/// arrive. `as_they_come`: they are written as they come (every [`RECORD_EVERY`] on the
/// embedded store, [`RECORD_EVERY_SHARED`] on a shared one, or once [`RECORD_AT_MOST`] wait),
/// so a crash in a fan-out resends only the last moment's copies. Otherwise they are kept for
/// the end of the round, one commit with the rest. Either way, when a stop cut the round
/// short, what was accepted is written before the store closes. Returns the records not
/// written.
async fn record_accepted(
    store: Arc<Store>,
    tasks: Tasks,
    (id, as_they_come): (u64, bool),
    before: HashMap<String, u32>,
    mut accepted: UnboundedReceiver<(String, String)>,
) -> Vec<Delivery> {
    let mut unwritten = Vec::new();
    // Each record is a commit flushed to disk: one per moment, not per reply (one per wake-up
    // was a sixth of a signed fan-out's CPU on the embedded store; on PostgreSQL a commit and
    // a log row per page for every few dozen recipients). A node that dies leaves what it
    // accepted since to be sent again: a shared store's peers take over at once, so its
    // moment is shorter.
    let every = match (as_they_come, store.shared()) {
        (false, _) => std::time::Duration::ZERO,
        (true, None) => RECORD_EVERY,
        (true, Some(_)) => RECORD_EVERY_SHARED,
    };
    let mut written = tokio::time::Instant::now();
    while let Some(batch) = next_record(&mut accepted, written + every).await {
        written = tokio::time::Instant::now();
        let records: Vec<Delivery> = batch
            .into_iter()
            .filter_map(|(address, reply)| {
                let attempts = *before.get(&address)?;
                Some(Delivery {
                    address,
                    state: DeliveryState::Delivered,
                    attempts: attempts + 1,
                    next_attempt: 0,
                    last_reply: reply,
                })
            })
            .collect();
        if as_they_come {
            unwritten.extend(write_accepted(&store, id, records).await);
        } else {
            unwritten.extend(records);
        }
    }
    if tasks.is_stopping() && !unwritten.is_empty() {
        // Nobody is left to write them at the end of the round.
        return write_accepted(&store, id, unwritten).await;
    }
    unwritten
}

/// The accepted copies of the next record, once one came: all that come until `due`, unless
/// [`RECORD_AT_MOST`] wait sooner or the channel closes (the page's transactions are over).
/// It looks every [`RECORD_TICK`] rather than waking for each reply (tens of thousands a
/// second in a fast fan-out). `None`: the channel is closed and empty.
async fn next_record<T>(
    accepted: &mut UnboundedReceiver<T>,
    due: tokio::time::Instant,
) -> Option<Vec<T>> {
    let mut batch = Vec::new();
    if accepted.recv_many(&mut batch, usize::MAX).await == 0 {
        return None;
    }
    loop {
        let now = tokio::time::Instant::now();
        if now >= due
            || accepted.is_closed()
            || batch.len().saturating_add(accepted.len()) >= RECORD_AT_MOST
        {
            break;
        }
        tokio::time::sleep_until(due.min(now + RECORD_TICK)).await;
    }
    while let Ok(more) = accepted.try_recv() {
        batch.push(more);
    }
    Some(batch)
}

/// Writes `records` of post `id`; returns them if that failed.
async fn write_accepted(store: &Arc<Store>, id: u64, records: Vec<Delivery>) -> Vec<Delivery> {
    match store.record_deliveries(id, &records).await {
        Ok(()) => Vec::new(),
        Err(e) => {
            tracing::error!(id, error = %e, "cannot record accepted recipients yet; will write them at the end");
            records
        }
    }
}

/// The pages of one post going out, with the addresses each claimed, so a page that failed
/// (a panic) hands its claims back instead of holding them for as long as the node lives.
#[derive(Default)]
struct Pages {
    running: tokio::task::JoinSet<Option<Vec<Delivery>>>,
    claimed: HashMap<tokio::task::Id, Vec<String>>,
}

impl Pages {
    /// Starts delivering a page of `addresses` (`work` ends with `None` when the server stops).
    fn start(
        &mut self,
        work: impl std::future::Future<Output = Option<Vec<Delivery>>> + Send + 'static,
        addresses: Vec<String>,
    ) {
        let handle = self.running.spawn(work);
        self.claimed.insert(handle.id(), addresses);
    }

    /// The records of the next page to end (none for one cut short by a stop or failed), or
    /// `None` when no page is left.
    async fn next(&mut self, store: &Store, id: u64) -> Option<Vec<Delivery>> {
        let ended = self.running.join_next_with_id().await?;
        let task = ended.as_ref().map_or_else(|e| e.id(), |(task, _)| *task);
        let claimed = self.claimed.remove(&task).unwrap_or_default();
        match ended {
            Ok((_, done)) => Some(done.unwrap_or_default()),
            Err(e) => {
                tracing::error!(id, recipients = claimed.len(), error = %e, "a page of a post failed; its recipients wait for a later round");
                if let Err(e) = store.release_claims(id, &claimed).await {
                    tracing::warn!(id, error = %e, "cannot hand back a failed page's claims; they lapse with their lease");
                }
                Some(Vec::new())
            }
        }
    }
}

/// The signed copy of a post, and the 7-bit twin of an 8-bit one.
#[derive(Clone)]
struct Copies {
    message: Arc<[u8]>,
    seven_bit: Option<Arc<[u8]>>,
}

/// Each recipient's transaction: the envelope sender and copy (and 7-bit twin) its owner
/// makes for it.
fn personal_copies(
    personal: &dyn PerRecipient,
    id: u64,
    recipients: Vec<String>,
    copies: &Copies,
) -> Vec<(String, Result<Transaction, HookError>)> {
    recipients
        .into_iter()
        .map(|address| {
            let mail_from = personal.envelope_sender(id, &address);
            let seven_bit = copies
                .seven_bit
                .as_ref()
                .map(|s| personal.copy(&address, &mail_from, s))
                .transpose();
            let t = personal
                .copy(&address, &mail_from, &copies.message)
                .and_then(|message| {
                    Ok(Transaction {
                        mail_from,
                        recipients: vec![address.clone()],
                        message,
                        seven_bit: seven_bit?,
                    })
                });
            (address, t)
        })
        .collect()
}

/// Tries `hosts` in order until one settles the transactions; the next host is tried only
/// when one could not be reached or deferred everything.
async fn try_hosts(
    hosts: &[Endpoint],
    transactions: &[Transaction],
    session: &Session<'_>,
) -> Vec<(String, Outcome)> {
    let mut last = Vec::new();
    for host in hosts {
        last = deliver(host, transactions, session).await;
        if !last.iter().all(|(_, o)| matches!(o, Outcome::Deferred(_))) {
            break;
        }
    }
    last
}

/// The wait before try number `attempts + 1`, with up to a tenth added, fixed per address, so
/// that a destination's deferred recipients do not all come back in the same second.
fn backoff(schedule: &[u64], attempts: u32, address: &str) -> u64 {
    let Some(last) = schedule.len().checked_sub(1) else {
        return 60;
    };
    let base = schedule[(attempts.max(1) as usize - 1).min(last)];
    let spread = address.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    base + spread % (base / 10 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::time::Instant;

    /// A record waits for its interval unless enough copies wait or the page is over: what a
    /// crash can send twice is bounded by count, not only by time.
    #[tokio::test]
    async fn a_record_waits_for_its_interval_unless_enough_wait_or_the_page_is_over() {
        let far = || Instant::now() + Duration::from_secs(10);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        // More than RECORD_AT_MOST at once: written now, all of them, not at the interval's end.
        for i in 0..RECORD_AT_MOST + 100 {
            tx.send(i).expect("send");
        }
        let start = Instant::now();
        let batch = next_record(&mut rx, far()).await.expect("a batch");
        assert_eq!(batch.len(), RECORD_AT_MOST + 100);
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "did not wait for the interval"
        );
        // A few: they wait for the interval (never less), then go together.
        for i in 0..100 {
            tx.send(i).expect("send");
        }
        let start = Instant::now();
        let due = start + Duration::from_millis(200);
        let batch = next_record(&mut rx, due).await.expect("a batch");
        assert_eq!(batch.len(), 100);
        assert!(
            Instant::now() >= due,
            "written before the interval was over"
        );
        // The page's transactions over (the senders gone): what came goes at once, then none.
        for i in 0..10 {
            tx.send(i).expect("send");
        }
        drop(tx);
        let start = Instant::now();
        assert_eq!(next_record(&mut rx, far()).await.map(|b| b.len()), Some(10));
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "waited after the page ended"
        );
        assert_eq!(next_record(&mut rx, far()).await, None::<Vec<usize>>);
    }

    #[test]
    fn backoff_grows_then_repeats_with_a_bounded_spread() {
        let schedule = Limits::default().retry_after;
        let a = backoff(&schedule, 1, "a@example.com");
        assert!((60..=66).contains(&a), "{a}");
        assert!((300..=330).contains(&backoff(&schedule, 2, "a@example.com")));
        assert_eq!(
            backoff(&schedule, 50, "a@example.com"),
            backoff(&schedule, 7, "a@example.com")
        );
        let spread: std::collections::HashSet<u64> = (0..50)
            .map(|i| backoff(&schedule, 3, &format!("user{i}@example.com")))
            .collect();
        assert!(spread.len() > 10, "recipients spread out: {spread:?}");
    }
}
