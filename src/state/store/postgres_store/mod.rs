//! The shared store on PostgreSQL, for several arclist nodes serving one service.
//!
//! Every node accepts mail, commits it here before its `250`, and claims what it works on: a
//! spooled message for the pipeline, a batch of a post's recipients for delivery. A claim is
//! a lease (`node`, `lease_until`) the node renews while it lives ([`heartbeat`]); what a dead
//! node held lapses and the next node to look takes it (`FOR UPDATE SKIP LOCKED`, so two
//! nodes never take the same recipient).
//!
//! It implements every role of [`super::roles`], the leases among them. Its calls are async
//! and wait for their queries on the caller's runtime: the pool's connections, the heartbeat
//! and every query run on the server's own runtime.

mod archive;
mod deliveries;
mod digests;
mod import;
mod members;
mod pages;
mod rates;
mod schema;
mod slots;
mod spool;
pub mod ssl_mode;
pub use ssl_mode::SslMode;
mod tls;

use super::roles::{Cluster, Leases, Members, Queue, Records, Spool};
use super::{
    Delivery, Departure, Enqueued, Member, Pruned, QueueEntry, QueueHead, Retention, SeenWindow,
    Settled, SpoolEnvelope, SpoolId, SpoolMeta, SpoolState, StoreError, StoredEntry,
};
use crate::base::config::{ClusterConfig, without_password};
use crate::state::store::Fault;
use pages::Release;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// A pooled connection.
type Conn = deadpool_postgres::Object;

/// How long a call waits for a free connection or a new one before it fails.
const CONNECT_WAIT: Duration = Duration::from_secs(15);
/// How often the delivery worker looks at the hot queue for work other nodes queued.
const POLL_QUEUE: Duration = Duration::from_secs(1);

/// A driver error with the server's own words when it sent some, by its kind.
fn pg(e: tokio_postgres::Error) -> Fault {
    Fault::from(e)
}

/// A record kept as JSON, read back; `what` names it in the error.
fn parse<T: serde::de::DeserializeOwned>(json: &str, what: &str) -> Result<T, Fault> {
    serde_json::from_str(json).map_err(|e| Fault::corrupt(format!("corrupt {what}: {e}")))
}

/// A time or count as the database's BIGINT (the far future stays the far future).
fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A store in a PostgreSQL database, shared by every node that names it.
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: deadpool_postgres::Pool,
    /// Makes a pool of its own for the hand-back at close, which cannot count on the
    /// server's runtime still running the pool's connections.
    reconnect: Box<dyn Fn() -> Result<deadpool_postgres::Pool, Fault> + Send + Sync>,
    /// The heartbeat task, stopped with the store.
    heartbeat: std::sync::Mutex<Option<tokio::task::AbortHandle>>,
    /// The URL without its password, for errors.
    display: String,
    /// This process's name in claims: host, pid and start time, so a restarted node does not
    /// renew the claims of the process it replaces.
    node: String,
    cluster: ClusterConfig,
    /// Signalled when this node queues a post.
    queued: tokio::sync::Notify,
    token: OnceLock<Vec<u8>>,
    /// Rows read so far, so tests and benchmarks can see what an idle node costs.
    rows_read: std::sync::atomic::AtomicU64,
    /// Set by [`PgStore::abandon`]: closing then keeps the claims, as a crash would.
    abandoned: std::sync::atomic::AtomicBool,
    /// The connection slots this node holds, which the heartbeat renews.
    slots: HeldSlots,
    /// The first address of each page of posts this node recorded outcomes of
    /// (`pages::firsts`), so a record knows its pages without asking; at most
    /// [`FIRSTS_KEPT`] posts.
    firsts: std::sync::Mutex<std::collections::HashMap<SpoolId, Arc<Vec<String>>>>,
}

/// Posts whose page boundaries a node keeps at once (a million-member post's are a few
/// thousand addresses).
const FIRSTS_KEPT: usize = 256;

/// Connection slots held by this node, by destination and number.
type HeldSlots = Arc<std::sync::Mutex<std::collections::HashSet<(String, u32)>>>;

/// The longest a closing store waits to hand its claims back.
const RELEASE_WAIT: Duration = Duration::from_secs(5);

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(beat) = self.heartbeat.lock().ok().and_then(|mut b| b.take()) {
            beat.abort();
        }
        if self.abandoned.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let pool = match (self.reconnect)() {
            Ok(pool) => pool,
            Err(e) => {
                tracing::warn!(node = %self.node, error = %e, "could not hand back this node's claims; they lapse with their lease");
                return;
            }
        };
        let node = self.node.clone();
        // A node that stops on purpose hands its unfinished work back now, not a lease later.
        // On a thread and a connection of its own: this may run inside async code, where
        // nothing may block on a runtime, or after the server's runtime stopped.
        let closing = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            let release = match runtime {
                Ok(rt) => rt.block_on(async {
                    tokio::time::timeout(RELEASE_WAIT, async {
                        spool::release(&pool, &node).await?;
                        slots::release_all(&pool.get().await?, &node).await
                    })
                    .await
                }),
                Err(e) => Ok(Err(Fault::from(e))),
            };
            if let Ok(Err(e)) | Err(e) = release.map_err(|e| Fault::busy(e.to_string())) {
                tracing::warn!(node = %node, error = %e, "could not hand back this node's claims; they lapse with their lease");
            }
        });
        let _ = closing.join();
    }
}

/// The URL's `sslmode` (libpq's default `prefer` when it names none) and its `sslrootcert`
/// file (`system` for the system's CAs), as a connection reads them.
pub fn url_tls(url: &str) -> Result<(SslMode, Option<std::path::PathBuf>), String> {
    let (url, root) = take_root_cert(url);
    let (_, mode) = ssl_mode::take_ssl_mode(&url)?;
    Ok((mode, root))
}

/// Splits `sslrootcert=FILE` (libpq's name; the driver does not know it) out of `url`.
fn take_root_cert(url: &str) -> (String, Option<std::path::PathBuf>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_string(), None);
    };
    let mut root = None;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|kv| match kv.strip_prefix("sslrootcert=") {
            Some(file) => {
                root = Some(std::path::PathBuf::from(file));
                false
            }
            None => true,
        })
        .collect();
    match kept.is_empty() {
        true => (base.to_string(), root),
        false => (format!("{base}?{}", kept.join("&")), root),
    }
}

impl PgStore {
    /// Connects to the database at `url` (`postgresql://user:password@host:port/db`, with
    /// libpq's `sslmode` and optionally `sslrootcert=CA.pem` for TLS) and brings its schema up
    /// to date. `node` names this process in its claims.
    /// Runs on the caller's runtime, as every later call does.
    pub async fn open(url: &str, node: &str, cluster: &ClusterConfig) -> Result<Self, StoreError> {
        let store = Self::connect(url, node, cluster)?;
        store.migrate().await?;
        store.start_heartbeat();
        Ok(store)
    }

    /// Opens the pool's `pool_size` connections now, as a fixed-size pool does (HikariCP's
    /// default), instead of one by one as work first needs them: the first post after a start
    /// then neither waits for a dozen connections (each a TLS handshake to a remote database)
    /// nor has the database start their backends in the middle of its fan-out. A connection
    /// that cannot be opened now is left for first use to open and report.
    pub async fn open_connections(&self) {
        let mut opening = tokio::task::JoinSet::new();
        for _ in 0..self.inner.cluster.pool_size.max(1) {
            let pool = self.inner.pool.clone();
            opening.spawn(async move { pool.get().await });
        }
        // All held until all are open: a connection given back early would be handed out
        // again instead of a new one being made.
        let mut opened = Vec::new();
        while let Some(done) = opening.join_next().await {
            opened.push(done);
        }
        let failed: Vec<String> = opened
            .into_iter()
            .filter_map(|o| match o {
                Ok(Ok(_)) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(e) => Some(e.to_string()),
            })
            .collect();
        if let Some(first) = failed.first() {
            tracing::warn!(failed = failed.len(), pool_size = self.inner.cluster.pool_size, error = %first, database = %self.inner.display, "some of the pool's database connections could not be opened at start (is max_connections enough for every node's pool_size + 1?); they are tried again when needed");
        }
    }

    /// Connects without touching the schema (for `arclist store migrate` and its checks).
    pub fn connect(url: &str, node: &str, cluster: &ClusterConfig) -> Result<Self, StoreError> {
        let display = without_password(url);
        let err = |f: Fault| f.at(display.clone());
        let (url, root) = take_root_cert(url);
        let (url, mode) = ssl_mode::take_ssl_mode(&url).map_err(|e| err(Fault::other(e)))?;
        let mut config: tokio_postgres::Config =
            url.parse().map_err(|e: tokio_postgres::Error| {
                err(Fault::other(format!("bad database URL: {e}")))
            })?;
        config.connect_timeout(CONNECT_WAIT);
        if config.get_application_name().is_none() {
            config.application_name("arclist");
        }
        // sslmode as libpq reads it (`ssl_mode.rs`): the driver is told whether to try TLS
        // and whether it is a must; the certificate checks are ours.
        config.ssl_mode(mode.driver());
        let tls = mode
            .client(root.as_deref())
            .map_err(|e| err(Fault::other(e)))?
            .map(tls::MakeRustls);
        let size = cluster.pool_size.max(1) + 1;
        let make = move |size: usize| {
            let manager_config = deadpool_postgres::ManagerConfig {
                recycling_method: deadpool_postgres::RecyclingMethod::Fast,
            };
            let manager = match tls.clone() {
                Some(tls) => {
                    deadpool_postgres::Manager::from_config(config.clone(), tls, manager_config)
                }
                None => deadpool_postgres::Manager::from_config(
                    config.clone(),
                    tokio_postgres::NoTls,
                    manager_config,
                ),
            };
            deadpool_postgres::Pool::builder(manager)
                .max_size(size)
                .runtime(deadpool_postgres::Runtime::Tokio1)
                .wait_timeout(Some(CONNECT_WAIT))
                .create_timeout(Some(CONNECT_WAIT))
                .build()
                .map_err(|e| Fault::other(format!("cannot make the connection pool: {e}")))
        };
        // One more than asked: the heartbeat keeps one.
        let pool = make(size).map_err(err)?;
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        Ok(PgStore {
            inner: Arc::new(Inner {
                pool,
                reconnect: Box::new(move || make(1)),
                heartbeat: std::sync::Mutex::new(None),
                display,
                node: format!("{node}/{}/{started}", std::process::id()),
                cluster: cluster.clone(),
                queued: tokio::sync::Notify::new(),
                token: OnceLock::new(),
                rows_read: std::sync::atomic::AtomicU64::new(0),
                abandoned: std::sync::atomic::AtomicBool::new(false),
                slots: HeldSlots::default(),
                firsts: std::sync::Mutex::default(),
            }),
        })
    }

    /// Brings the schema to the newest version; returns the versions applied now.
    pub async fn migrate(&self) -> Result<Vec<i32>, StoreError> {
        self.migrate_to(i32::MAX).await
    }

    /// Brings the schema to version `last` at most (what the upgrade tests start from: a
    /// database an older arclist made); returns the versions applied now.
    #[doc(hidden)]
    pub async fn migrate_to(&self, last: i32) -> Result<Vec<i32>, StoreError> {
        self.run(|mut c| async move { schema::migrate(&mut c, last).await })
            .await
    }

    /// The schema version the database is at, and the newest this arclist knows.
    pub async fn schema_version(&self) -> Result<(i32, i32), StoreError> {
        let newest = schema::MIGRATIONS.last().map_or(0, |m| m.0);
        let at = self
            .run(|c| async move { schema::version(&c).await })
            .await?;
        Ok((at, newest))
    }

    /// Rows this node read for the spool, the queue and its records since it connected: what
    /// tests and benchmarks use to show that idle work does not grow with history.
    pub fn rows_read(&self) -> u64 {
        self.inner
            .rows_read
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Counts `rows` read and passes them on.
    fn counted<T>(&self, rows: Vec<T>) -> Vec<T> {
        self.inner
            .rows_read
            .fetch_add(rows.len() as u64, std::sync::atomic::Ordering::Relaxed);
        rows
    }

    /// Closes this handle the way a crash would: its claims are not handed back and lapse
    /// with their lease (what the takeover tests need; a stopping node closes normally).
    pub fn abandon(self) {
        self.inner
            .abandoned
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// This process's name in its claims.
    pub fn node(&self) -> &str {
        &self.inner.node
    }

    /// Seconds a claim or a slot lasts without renewal.
    fn lease_secs(&self) -> u64 {
        self.inner.cluster.lease_secs
    }

    /// Marks `slot` of `destination` as held by this node (renewed by the heartbeat), or no
    /// longer.
    fn hold_slot(&self, destination: String, slot: u32, held: bool) {
        if let Ok(mut slots) = self.inner.slots.lock() {
            match held {
                true => slots.insert((destination, slot)),
                false => slots.remove(&(destination, slot)),
            };
        }
    }

    /// The lease a claim made now lasts until.
    fn lease_until(&self) -> i64 {
        (crate::auth::unix_now() + self.inner.cluster.lease_secs) as i64
    }

    /// The first address of each page of post `id` (none once it finished).
    async fn page_firsts(&self, id: SpoolId) -> Result<Arc<Vec<String>>, StoreError> {
        if let Some(known) = self
            .inner
            .firsts
            .lock()
            .ok()
            .and_then(|f| f.get(&id).cloned())
        {
            return Ok(known);
        }
        let firsts = self
            .run(move |c| async move { pages::firsts(&c, id).await })
            .await?;
        let firsts = Arc::new(firsts);
        // Pages keep their first address until the post finishes and they all go.
        if !firsts.is_empty()
            && let Ok(mut kept) = self.inner.firsts.lock()
        {
            if kept.len() >= FIRSTS_KEPT {
                kept.clear();
            }
            kept.insert(id, firsts.clone());
        }
        Ok(firsts)
    }

    /// `record_round` at the end of this node's work on post `id`: see
    /// [`super::Store::record_last_round`].
    pub(crate) async fn record_last_round(
        &self,
        id: SpoolId,
        records: &[Delivery],
    ) -> Result<Settled, StoreError> {
        self.settle_after(id, records, Release::All).await
    }

    /// Writes outcomes of post `id` to the logs of their pages.
    async fn append(&self, id: SpoolId, records: &[Delivery]) -> Result<(), StoreError> {
        let firsts = self.page_firsts(id).await?;
        self.run(|c| async move { pages::append(&c, id, records, &firsts).await })
            .await
    }

    /// Records a round's outcomes of post `id` and settles it, ending the claims `release`
    /// says.
    async fn settle_after(
        &self,
        id: SpoolId,
        records: &[Delivery],
        release: Release,
    ) -> Result<Settled, StoreError> {
        let firsts = match records.is_empty() {
            true => Arc::default(),
            false => self.page_firsts(id).await?,
        };
        let on = (self.inner.node.as_str(), release);
        let settled =
            self.run(|mut c| async move {
                deliveries::record_round(&mut c, id, records, on, &firsts).await
            })
            .await?;
        if let Settled::Finished(_) = settled
            && let Ok(mut kept) = self.inner.firsts.lock()
        {
            kept.remove(&id);
        }
        Ok(settled)
    }

    /// Renews this node's claims a few times per lease while the store is open, so they lapse
    /// only when the node is gone (or cut off from the database for a whole lease).
    fn start_heartbeat(&self) {
        let (pool, node, lease, held) = (
            self.inner.pool.clone(),
            self.inner.node.clone(),
            self.inner.cluster.lease_secs,
            self.inner.slots.clone(),
        );
        let every = Duration::from_secs((lease / 3).max(1));
        let beat = tokio::spawn(async move {
            // A connection of its own, kept: renewing must not queue behind a busy pool until
            // the claims lapse.
            let mut kept: Option<Conn> = None;
            loop {
                tokio::time::sleep(every).await;
                let until = (crate::auth::unix_now() + lease) as i64;
                let conn = match kept.take() {
                    Some(c) => Ok(c),
                    None => pool.get().await.map_err(Fault::from),
                };
                let slots: Vec<(String, u32)> = held
                    .lock()
                    .map(|h| h.iter().cloned().collect())
                    .unwrap_or_default();
                let renewed = match conn {
                    Ok(c) => match spool::renew(&c, &node, until).await {
                        Ok(()) => slots::renew(&c, &node, &slots, until)
                            .await
                            .map(|()| kept = Some(c)),
                        Err(e) => Err(e),
                    },
                    Err(e) => Err(e),
                };
                if let Err(e) = renewed {
                    tracing::warn!(node = %node, error = %e, "cannot renew this node's claims; retrying");
                }
            }
        });
        if let Ok(mut slot) = self.inner.heartbeat.lock() {
            *slot = Some(beat.abort_handle());
        }
    }

    /// The most recipients one claim takes (`[cluster] claim_batch`).
    pub(crate) fn claim_batch(&self) -> usize {
        self.inner.cluster.claim_batch
    }

    /// The most recipients a page of a post this node queues holds: never more than a claim
    /// takes, as a claim takes whole pages.
    fn page_size(&self) -> usize {
        self.inner.cluster.claim_batch.clamp(1, pages::PAGE)
    }

    /// Runs `work` with a pooled connection, on the caller's runtime.
    async fn run<T, F, Fut>(&self, work: F) -> Result<T, StoreError>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = Result<T, Fault>>,
    {
        match self.inner.pool.get().await {
            Ok(conn) => work(conn).await.map_err(|m| self.err(m)),
            Err(e) => Err(self.err(Fault::from(e))),
        }
    }

    /// Deletes at most `batch` rows of `table` whose time `column` is before `before`, oldest
    /// first; returns how many, and whether more may be left.
    async fn forget_before(
        &self,
        table: &'static str,
        column: &'static str,
        before: u64,
        batch: usize,
    ) -> Result<(usize, bool), StoreError> {
        let limit = i64::try_from(batch).unwrap_or(i64::MAX);
        self.run(move |c| async move {
            let sql = format!(
                "DELETE FROM {table} WHERE ctid IN
                 (SELECT ctid FROM {table} WHERE {column} < $1 ORDER BY {column} LIMIT $2)"
            );
            let n = c.execute(&sql, &[&int(before), &limit]).await.map_err(pg)? as usize;
            Ok((n, n >= batch))
        })
        .await
    }

    fn err(&self, fault: impl Into<Fault>) -> StoreError {
        fault.into().at(self.inner.display.clone())
    }

    /// Logs, per node, how many of its lapsed claims on `what` (of post `post`) this node
    /// took: the trace an operator follows when a node died or stalled past its lease.
    fn log_takeover(&self, what: &str, post: Option<SpoolId>, lapsed: Vec<String>) {
        let mut by_node = std::collections::BTreeMap::<String, usize>::new();
        for was in lapsed {
            *by_node.entry(was).or_default() += 1;
        }
        for (was, count) in by_node {
            tracing::info!(
                node = %self.inner.node,
                from = %was,
                count,
                post,
                "took over {count} lapsed {what} of node {was}"
            );
        }
    }
}

impl Spool for PgStore {
    async fn spool(
        &self,
        envelope: SpoolEnvelope,
        message: Vec<u8>,
    ) -> Result<SpoolId, StoreError> {
        let (node, until) = (self.inner.node.clone(), self.lease_until());
        self.run(move |c| async move { spool::insert(&c, envelope, &message, &node, until).await })
            .await
    }

    async fn list(&self) -> Result<Vec<SpoolMeta>, StoreError> {
        self.run(|c| async move { spool::list(&c).await })
            .await
            .map(|rows| self.counted(rows))
    }

    async fn get(&self, id: SpoolId) -> Result<Option<(SpoolMeta, Vec<u8>)>, StoreError> {
        self.run(move |c| async move { spool::get(&c, id).await })
            .await
    }

    async fn raw_meta(&self, id: SpoolId) -> Result<Option<(String, usize)>, StoreError> {
        self.run(move |c| async move { spool::raw_meta(&c, id).await })
            .await
    }

    async fn update(&self, meta: &SpoolMeta) -> Result<(), StoreError> {
        let (meta, node, until) = (meta.clone(), self.inner.node.clone(), self.lease_until());
        self.run(move |c| async move { spool::update(&c, &meta, None, &node, until).await })
            .await
            .map(|_| ())
    }

    async fn transition(&self, meta: &SpoolMeta, from: SpoolState) -> Result<bool, StoreError> {
        let (meta, node, until) = (meta.clone(), self.inner.node.clone(), self.lease_until());
        self.run(move |c| async move { spool::update(&c, &meta, Some(from), &node, until).await })
            .await
    }
}

impl Members for PgStore {
    async fn add_members(&self, list: &str, members: &[Member]) -> Result<usize, StoreError> {
        let (list, members) = (list.to_string(), members.to_vec());
        self.run(move |mut c| async move { members::add(&mut c, &list, &members, true).await })
            .await
    }

    async fn seed_members(
        &self,
        list: &str,
        members: &[Member],
        again: bool,
    ) -> Result<Option<usize>, StoreError> {
        let (list, members) = (list.to_string(), members.to_vec());
        self.run(move |mut c| async move { members::seed(&mut c, &list, &members, again).await })
            .await
    }

    async fn departure(&self, list: &str, address: &str) -> Result<Option<Departure>, StoreError> {
        let key = members::key(list, address);
        self.run(move |c| async move { members::departure(&c, key).await })
            .await
    }

    async fn put_member(&self, list: &str, member: &Member) -> Result<(), StoreError> {
        let (list, member) = (list.to_string(), member.clone());
        self.run(move |c| async move { members::put(&c, &list, &member).await })
            .await
    }

    async fn remove_member(
        &self,
        list: &str,
        address: &str,
        why: Departure,
    ) -> Result<bool, StoreError> {
        let key = members::key(list, address);
        self.run(move |mut c| async move { members::remove(&mut c, key, why).await })
            .await
    }

    async fn put_alias(&self, alias: &str, targets: &[String]) -> Result<(), StoreError> {
        let alias = alias.to_ascii_lowercase();
        let json = serde_json::to_string(targets).map_err(|e| self.err(e))?;
        self.run(move |c| async move {
            c.execute(
                "INSERT INTO aliases (alias, targets) VALUES ($1, $2)
                 ON CONFLICT (alias) DO UPDATE SET targets = EXCLUDED.targets",
                &[&alias, &json],
            )
            .await
            .map_err(pg)
            .map(|_| ())
        })
        .await
    }

    async fn remove_alias(&self, alias: &str) -> Result<bool, StoreError> {
        let alias = alias.to_ascii_lowercase();
        self.run(move |c| async move {
            c.execute("DELETE FROM aliases WHERE alias = $1", &[&alias])
                .await
                .map_err(pg)
                .map(|n| n > 0)
        })
        .await
    }

    async fn aliases(&self) -> Result<Vec<(String, Vec<String>)>, StoreError> {
        self.run(|c| async move {
            let rows = c
                .query("SELECT alias, targets FROM aliases ORDER BY alias", &[])
                .await
                .map_err(pg)?;
            rows.iter()
                .map(|r| {
                    let alias: String = r.get(0);
                    parse(r.get(1), &format!("alias record {alias}")).map(|t| (alias, t))
                })
                .collect()
        })
        .await
    }

    async fn members_after(
        &self,
        list: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<Member>, StoreError> {
        let (list, after) = (list.to_ascii_lowercase(), after.to_ascii_lowercase());
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(move |c| async move { members::page(&c, &list, &after, limit).await })
            .await
    }

    async fn post_recipients(
        &self,
        list: &str,
        today: &str,
    ) -> Result<(Vec<String>, bool), StoreError> {
        let (list, today) = (list.to_ascii_lowercase(), today.to_string());
        self.run(move |mut c| async move { members::post_recipients(&mut c, &list, &today).await })
            .await
    }

    async fn member(&self, list: &str, address: &str) -> Result<Option<Member>, StoreError> {
        let key = members::key(list, address);
        self.run(move |c| async move { members::one(&c, key).await })
            .await
    }

    async fn is_member(&self, list: &str, address: &str) -> Result<bool, StoreError> {
        Ok(self.member(list, address).await?.is_some())
    }
}

impl Queue for PgStore {
    async fn enqueue_post(
        &self,
        meta: &SpoolMeta,
        entry: QueueEntry,
        signed: &[u8],
        seven_bit: Option<&[u8]>,
        seen: Option<SeenWindow<'_>>,
    ) -> Result<Enqueued, StoreError> {
        let queued = deliveries::Queued {
            meta: meta.clone(),
            entry,
            signed: signed.to_vec(),
            seven_bit: seven_bit.map(<[u8]>::to_vec),
            seen: seen.map(|w| (w.message_id.to_string(), w.since)),
            page: self.page_size(),
        };
        let (node, until) = (self.inner.node.clone(), self.lease_until());
        let (_, done) = self
            .run(move |mut c| async move {
                deliveries::enqueue(&mut c, queued, Some((&node, until))).await
            })
            .await?;
        if done == Enqueued::Queued {
            self.inner.queued.notify_one();
        }
        Ok(done)
    }

    async fn queued_seven_bit(&self, id: SpoolId) -> Result<Option<Vec<u8>>, StoreError> {
        self.run(move |c| async move {
            let row = c
                .query_opt("SELECT seven_bit FROM queue WHERE id = $1", &[&(id as i64)])
                .await
                .map_err(pg)?;
            Ok(row.and_then(|r| r.get::<_, Option<Vec<u8>>>(0)))
        })
        .await
    }

    async fn enqueue_local(
        &self,
        meta: SpoolMeta,
        entry: QueueEntry,
        signed: &[u8],
    ) -> Result<SpoolId, StoreError> {
        let queued = deliveries::Queued {
            meta,
            entry,
            signed: signed.to_vec(),
            seven_bit: None,
            seen: None,
            page: self.page_size(),
        };
        let (id, _) = self
            .run(move |mut c| async move { deliveries::enqueue(&mut c, queued, None).await })
            .await?;
        self.inner.queued.notify_one();
        Ok(id)
    }

    async fn deliveries(&self, id: SpoolId) -> Result<Vec<Delivery>, StoreError> {
        self.run(move |c| async move { pages::all(&c, id).await })
            .await
            .map(|rows| self.counted(rows))
    }

    async fn record_deliveries(&self, id: SpoolId, records: &[Delivery]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        self.append(id, records).await
    }

    async fn queue(&self) -> Result<Vec<QueueEntry>, StoreError> {
        let all = self.run(|c| async move { deliveries::entries(&c).await });
        let all: Vec<StoredEntry> = all.await?;
        let entries = all
            .into_iter()
            .map(StoredEntry::without_recipients)
            .collect();
        Ok(self.counted(entries))
    }

    async fn queue_entry(&self, id: SpoolId) -> Result<Option<QueueEntry>, StoreError> {
        self.run(move |c| async move { deliveries::entry(&c, id).await })
            .await
    }

    async fn active(&self) -> Result<Vec<QueueHead>, StoreError> {
        self.run(|c| async move { deliveries::active(&c).await })
            .await
            .map(|rows| self.counted(rows))
    }

    async fn settle(&self, id: SpoolId) -> Result<Settled, StoreError> {
        self.settle_after(id, &[], Release::Done).await
    }

    async fn record_round(&self, id: SpoolId, records: &[Delivery]) -> Result<Settled, StoreError> {
        self.settle_after(id, records, Release::Done).await
    }

    async fn queued(&self, id: SpoolId) -> Result<Option<(QueueEntry, Vec<u8>)>, StoreError> {
        self.run(move |c| async move { deliveries::queued(&c, id).await })
            .await
    }
}

impl Records for PgStore {
    async fn token_secret(&self) -> Result<Vec<u8>, StoreError> {
        if let Some(secret) = self.inner.token.get() {
            return Ok(secret.clone());
        }
        let mut fresh = vec![0u8; 32];
        aws_lc_rs::rand::fill(&mut fresh)
            .map_err(|_| self.err(Fault::other("no randomness for the token secret")))?;
        let secret = self
            .run(move |c| async move {
                // The first node to ask makes it; every other node reads the same one.
                c.execute(
                    "INSERT INTO secrets (name, value) VALUES ('token', $1) ON CONFLICT DO NOTHING",
                    &[&fresh],
                )
                .await
                .map_err(pg)?;
                let row = c
                    .query_one("SELECT value FROM secrets WHERE name = 'token'", &[])
                    .await
                    .map_err(pg)?;
                Ok(row.get::<_, Vec<u8>>(0))
            })
            .await?;
        Ok(self.inner.token.get_or_init(|| secret).clone())
    }

    async fn prune(&self, now: u64, keep: Retention, batch: usize) -> Result<Pruned, StoreError> {
        self.run(move |mut c| async move {
            // Slots of dead nodes, beside the pruning pass (a few rows a destination at most).
            slots::forget_lapsed(&c, now).await?;
            spool::prune(&mut c, now, keep, batch.max(1)).await
        })
        .await
    }

    async fn distributed(
        &self,
        list: &str,
        message_id: &str,
        since: u64,
    ) -> Result<Option<SpoolId>, StoreError> {
        let (list, mid) = (list.to_ascii_lowercase(), message_id.to_ascii_lowercase());
        self.run(move |c| async move {
            let row = c
                .query_opt(
                    "SELECT post FROM seen WHERE list = $1 AND message_id = $2 AND at >= $3",
                    &[&list, &mid, &int(since)],
                )
                .await
                .map_err(pg)?;
            Ok(row.map(|r| r.get::<_, i64>(0) as u64))
        })
        .await
    }

    async fn forget_distributed(
        &self,
        before: u64,
        batch: usize,
    ) -> Result<(usize, bool), StoreError> {
        self.forget_before("seen", "at", before, batch).await
    }

    async fn put_dmarc_report(
        &self,
        report: &crate::auth::dmarc_report::AggregateReport,
    ) -> Result<bool, StoreError> {
        let json = serde_json::to_string(report).map_err(|e| self.err(e))?;
        let (begin, org, id) = (
            int(report.begin),
            report.org.clone(),
            report.report_id.clone(),
        );
        self.run(move |c| async move {
            c.execute(
                "INSERT INTO dmarc_reports (begin_at, org, report_id, record) VALUES ($1, $2, $3, $4)
                 ON CONFLICT DO NOTHING",
                &[&begin, &org, &id, &json],
            )
            .await
            .map_err(pg)
            .map(|n| n == 1)
        }).await
    }

    async fn dmarc_reports(
        &self,
        since: u64,
    ) -> Result<Vec<crate::auth::dmarc_report::AggregateReport>, StoreError> {
        self.run(move |c| async move {
            let rows = c
                .query(
                    "SELECT record FROM dmarc_reports WHERE begin_at >= $1
                     ORDER BY begin_at, org, report_id",
                    &[&int(since)],
                )
                .await
                .map_err(pg)?;
            rows.iter()
                .map(|r| parse(r.get(0), "DMARC report record"))
                .collect()
        })
        .await
    }

    async fn forget_dmarc_reports(
        &self,
        before: u64,
        batch: usize,
    ) -> Result<(usize, bool), StoreError> {
        self.forget_before("dmarc_reports", "begin_at", before, batch)
            .await
    }
}

impl Cluster for PgStore {
    async fn queued_signal(&self) {
        // Other nodes queue too: look at the hot queue every so often as well.
        tokio::select! {
            () = self.inner.queued.notified() => {}
            () = tokio::time::sleep(POLL_QUEUE) => {}
        }
    }

    fn nudge(&self) {
        self.inner.queued.notify_one();
    }

    async fn take_unfinished(&self) -> Result<Vec<SpoolId>, StoreError> {
        let (node, until) = (self.inner.node.clone(), self.lease_until());
        let (ids, lapsed) = self
            .run(move |c| async move { spool::take_unfinished(&c, &node, until).await })
            .await?;
        self.log_takeover("spooled messages", None, lapsed);
        Ok(ids)
    }
}

impl Leases for PgStore {
    async fn claim_due(
        &self,
        id: SpoolId,
        now: u64,
        after: &str,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let (node, until) = (self.inner.node.clone(), self.lease_until());
        let limit = self.inner.cluster.claim_batch.min(limit).max(1);
        let after = after.to_ascii_lowercase();
        let (rows, lapsed) = self
            .run(move |c| async move {
                deliveries::claim(&c, id, (now, &after, limit), &node, until).await
            })
            .await?;
        self.log_takeover("delivery claims", Some(id), lapsed);
        Ok(self.counted(rows))
    }

    async fn release_claims(&self, id: SpoolId, addresses: &[String]) -> Result<(), StoreError> {
        let node = self.inner.node.clone();
        let firsts = self.page_firsts(id).await?;
        let on: std::collections::BTreeSet<&String> = addresses
            .iter()
            .filter_map(|a| pages::page_of(&firsts, &a.to_ascii_lowercase()))
            .collect();
        let on: Vec<String> = on.into_iter().cloned().collect();
        self.run(move |c| async move { pages::release(&c, id, &node, &on).await })
            .await
    }

    fn poll_every(&self) -> Duration {
        Duration::from_secs((self.inner.cluster.lease_secs / 3).max(1))
    }

    async fn once(&self, job: &str, period: u64) -> Result<bool, StoreError> {
        let (job, node) = (job.to_string(), self.inner.node.clone());
        self.run(move |c| async move {
            let won = c
                .execute(
                    "INSERT INTO once_per_cluster (job, period, node) VALUES ($1, $2, $3)
                     ON CONFLICT DO NOTHING",
                    &[&job, &int(period), &node],
                )
                .await
                .map_err(pg)?
                == 1;
            // Only the last periods matter: the table stays a few rows per job.
            c.execute(
                "DELETE FROM once_per_cluster WHERE job = $1 AND period < $2",
                &[&job, &int(period).saturating_sub(16)],
            )
            .await
            .map_err(pg)?;
            Ok(won)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_password_and_libpq_only_options() {
        assert_eq!(
            without_password("postgresql://arclist:s3cret@db.example:5432/lists"),
            "postgresql://arclist@db.example:5432/lists"
        );
        assert_eq!(
            without_password("postgresql://db.example/lists"),
            "postgresql://db.example/lists"
        );
        assert_eq!(
            without_password("postgresql://a:p@ss@h/db?sslmode=require&password=x"),
            "postgresql://a@h/db?sslmode=require"
        );
        let (url, root) =
            take_root_cert("postgresql://a@h/db?sslmode=require&sslrootcert=/etc/ca.pem");
        assert_eq!(url, "postgresql://a@h/db?sslmode=require");
        assert_eq!(root.as_deref(), Some(std::path::Path::new("/etc/ca.pem")));
    }
}
