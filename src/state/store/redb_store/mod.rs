//! The embedded store on redb, with group commit.
//!
//! Concurrent SMTP sessions hand their messages to one writer thread. While it waits for one
//! commit's fsync, new messages queue up; the next commit takes all of them, so fifty sessions
//! share one fsync instead of paying fifty.

mod archive;
mod combine;
mod digests;
mod duplicates;
mod export;
mod lifecycle;
mod membership;
mod queueing;
pub(crate) use queueing::Queueing;
mod rates;
mod record_log;
mod recovery;
mod roles;

use super::roles::Cluster;
use super::{
    Delivery, DeliveryState, Departure, Member, Pruned, QueueEntry, QueueHead, Retention, Settled,
    SpoolEnvelope, SpoolId, SpoolMeta, SpoolState, StoreError,
};
use crate::state::store::{Fault, StoredEntry};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};
use tokio::sync::oneshot;

const META: TableDefinition<u64, &str> = TableDefinition::new("spool_meta");
const DATA: TableDefinition<u64, &[u8]> = TableDefinition::new("spool_data");
const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");
/// Members by `list\naddress`.
const MEMBERS: TableDefinition<&str, &str> = TableDefinition::new("members");
const QUEUE: TableDefinition<u64, &str> = TableDefinition::new("queue_meta");
const QUEUE_DATA: TableDefinition<u64, &[u8]> = TableDefinition::new("queue_data");
const SECRETS: TableDefinition<&str, &[u8]> = TableDefinition::new("secrets");
/// Recipient records by `id\naddress`, with `id` zero-padded so one message's records sort together.
const DELIVERIES: TableDefinition<&str, &str> = TableDefinition::new("deliveries");
/// Forwarding aliases added from the CLI: `alias@domain` to a JSON list of targets.
const ALIASES: TableDefinition<&str, &str> = TableDefinition::new("aliases");
/// The hot queue: posts with recipients still to deliver, as [`QueueHead`] JSON.
const ACTIVE: TableDefinition<u64, &str> = TableDefinition::new("queue_active");
/// Receivers' DMARC aggregate reports, by `begin(20 digits)\norg\nreport id`: JSON.
const DMARC_REPORTS: TableDefinition<&str, &str> = TableDefinition::new("dmarc_reports");
/// The 7-bit twins of 8-bit signed copies, by post id.
const QUEUE_SEVEN_BIT: TableDefinition<u64, &[u8]> = TableDefinition::new("queue_data_7bit");
/// The layout version of the file; 2 added the hot queue and delivery summaries.
const LAYOUT: u64 = 3;

fn delivery_key(id: SpoolId, address: &str) -> String {
    let mut key = String::with_capacity(21 + address.len());
    write_delivery_key(&mut key, id, address);
    key
}

/// [`delivery_key`] into `key` (cleared first): a post's records are written in a loop that
/// reuses one buffer.
fn write_delivery_key(key: &mut String, id: SpoolId, address: &str) {
    use std::fmt::Write;
    key.clear();
    let _ = writeln!(key, "{id:020}");
    key.extend(address.chars().map(|c| c.to_ascii_lowercase()));
}

/// The keys of post `id`'s recipient records: from its prefix (the first key, `""`'s) up to,
/// not including, the same id followed by the character after the newline.
fn delivery_range(id: SpoolId) -> (String, String) {
    (delivery_key(id, ""), format!("{id:020}\u{b}"))
}

fn member_key(list: &str, address: &str) -> String {
    format!(
        "{}\n{}",
        list.to_ascii_lowercase(),
        address.to_ascii_lowercase()
    )
}

/// Most messages one commit takes.
const MAX_BATCH: usize = 256;

struct Request {
    envelope: SpoolEnvelope,
    message: Vec<u8>,
    reply: oneshot::Sender<Result<SpoolId, StoreError>>,
}

/// A store in one redb file.
#[derive(Clone)]
pub struct RedbStore {
    // Declared before `inner`, so it is dropped first: the writer thread then sees its channel
    // close and ends, and `Inner`'s drop can wait for it.
    writer: mpsc::Sender<Request>,
    inner: Arc<Inner>,
    /// The writes running on the blocking pool ([`RedbStore::writes_done`]).
    writes: tokio_util::task::TaskTracker,
    path: PathBuf,
}

/// Owns the database and the writer thread. When the last handle goes, it waits for the
/// thread, so the file (and its lock) is closed when the store is dropped, not some time later.
struct Inner {
    db: Arc<recovery::Slot>,
    thread: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Signalled when a post is queued: the delivery worker sleeps on it.
    queued: tokio::sync::Notify,
    /// Rows read so far, so tests and benchmarks can see what an idle server costs.
    rows_read: AtomicU64,
    /// The token secret, read (or made) once: it never changes.
    token: OnceLock<Vec<u8>>,
    /// Group commit for the writes of every message after its spool commit.
    combiner: Arc<combine::Combiner>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

/// The store's own page cache.
const CACHE_BYTES: usize = 32 << 20;

impl RedbStore {
    /// Opens (or creates) the store at `path`, creating its folder.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let err = |f: Fault| f.at(path.display().to_string());
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::base::config::owner::create_dir(dir, 0o750)
                .map_err(|e| err(Fault::from(e).context("cannot create folder")))?;
        }
        create_private(path).map_err(|e| err(Fault::from(e).context("cannot create")))?;
        let db = Arc::new(recovery::Slot::new(
            open_database(path).map_err(err)?,
            path.to_path_buf(),
            open_database,
        ));
        let (writer, requests) = mpsc::channel::<Request>();
        let writer_db = db.clone();
        let writer_path = path.display().to_string();
        let combiner = Arc::new(combine::Combiner::default());
        let flushes = combiner.clone();
        let thread = std::thread::Builder::new()
            .name("arclist-store-writer".into())
            .spawn(move || write_loop(&writer_db, &writer_path, &requests, &flushes))
            .map_err(|e| err(Fault::from(e).context("cannot start the writer thread")))?;
        Ok(RedbStore {
            writer,
            inner: Arc::new(Inner {
                db,
                thread: std::sync::Mutex::new(Some(thread)),
                queued: tokio::sync::Notify::new(),
                rows_read: AtomicU64::new(0),
                token: OnceLock::new(),
                combiner,
            }),
            path: path.to_path_buf(),
            writes: tokio_util::task::TaskTracker::new(),
        })
    }

    /// Resolves once no write started from async code is still running: each holds the file
    /// open, and a stopping server must close it (a cancelled caller does not stop its write).
    pub async fn writes_done(&self) {
        self.writes.close();
        self.writes.wait().await;
        self.writes.reopen();
    }

    /// Every JSON record in `table`, in key order.
    fn read_all<T: serde::de::DeserializeOwned>(
        &self,
        table: TableDefinition<u64, &str>,
        what: &str,
    ) -> Result<Vec<T>, StoreError> {
        let txn = self.db()?.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(table).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(|e| self.err(e))? {
            let (k, v) = entry.map_err(|e| self.err(e))?;
            self.count_read();
            out.push(serde_json::from_str(v.value()).map_err(|e| {
                self.err(Fault::corrupt(format!("corrupt {what} {}: {e}", k.value())))
            })?);
        }
        Ok(out)
    }

    /// A JSON record and its bytes, stored under one id in two tables.
    fn read_pair<T: serde::de::DeserializeOwned>(
        &self,
        meta: TableDefinition<u64, &str>,
        data: TableDefinition<u64, &[u8]>,
        id: SpoolId,
        what: &str,
    ) -> Result<Option<(T, Vec<u8>)>, StoreError> {
        let txn = self.db()?.begin_read().map_err(|e| self.err(e))?;
        let meta = txn.open_table(meta).map_err(|e| self.err(e))?;
        let data = txn.open_table(data).map_err(|e| self.err(e))?;
        let (Some(m), Some(d)) = (
            meta.get(id).map_err(|e| self.err(e))?,
            data.get(id).map_err(|e| self.err(e))?,
        ) else {
            return Ok(None);
        };
        self.count_read();
        let parsed = serde_json::from_str(m.value())
            .map_err(|e| self.err(Fault::corrupt(format!("corrupt {what} {id}: {e}"))))?;
        Ok(Some((parsed, d.value().to_vec())))
    }

    fn count_read(&self) {
        self.inner.rows_read.fetch_add(1, Ordering::Relaxed);
    }

    /// Rows read from the file since it was opened (metadata, queue heads, delivery records,
    /// messages): what tests and benchmarks use to show that idle work does not grow with
    /// history.
    pub fn rows_read(&self) -> u64 {
        self.inner.rows_read.load(Ordering::Relaxed)
    }

    /// Whether `table`, keyed by a 20-digit time first, holds anything older than `end`: the
    /// pruner asks before it writes, so an idle server commits nothing.
    fn any_before(
        &self,
        table: TableDefinition<&str, &str>,
        end: &str,
    ) -> Result<bool, StoreError> {
        let txn = self.db()?.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(table).map_err(|e| self.err(e))?;
        let first = table.range(..end).map_err(|e| self.err(e))?.next();
        Ok(first.is_some())
    }

    /// Runs `work` in a write transaction shared with the other hot writes waiting at the same
    /// moment ([`combine`]), and returns once it is committed.
    /// `durable`: flushed to disk before this returns (else by the next durable commit, within
    /// [`combine::FLUSH_AFTER`] when the store is quiet).
    fn write_shared<T: Send + 'static>(
        &self,
        durable: bool,
        work: impl Fn(&redb::WriteTransaction) -> Result<T, Fault> + Send + 'static,
    ) -> Result<T, StoreError> {
        let slot = self.inner.db.clone();
        let open = move || slot.get();
        let out = self
            .inner
            .combiner
            .run(
                &open,
                Box::new(move |txn| work(txn).map(|t| Box::new(t) as combine::Output)),
                durable,
            )
            .map_err(|e| self.err(e))?;
        out.downcast::<T>().map(|t| *t).map_err(|_| {
            self.err(Fault::other(
                "a shared write returned another type than asked",
            ))
        })
    }

    /// Copies the store file to `to`, a new file (mode 0600, given to the service user as
    /// [`crate::base::config::owner::adopt`] says), while the store is in use: what was
    /// committed is flushed first, and the copy is made while a write transaction is open, so
    /// no commit changes the file under it. Writes wait for the copy. Returns the bytes copied.
    pub async fn backup(&self, to: &Path) -> Result<u64, StoreError> {
        let to = to.to_path_buf();
        self.off_thread(move |s| s.backup_blocking(&to)).await
    }

    fn backup_blocking(&self, to: &Path) -> Result<u64, StoreError> {
        let db = self.db()?;
        // Commits that share a later flush (combine.rs) reach the file now.
        combine::flush(&db).map_err(|e| self.err(e))?;
        let hold = db.begin_write().map_err(|e| self.err(e))?;
        let copied = copy_private(&self.path, to);
        let _ = hold.abort();
        copied.map_err(|e| {
            StoreError::new(
                crate::state::store::ErrorKind::Io,
                to.display().to_string(),
                format!("cannot write the backup: {e}"),
            )
        })
    }

    /// Runs `work` in one write transaction and commits it.
    fn write<T>(
        &self,
        work: impl FnOnce(&redb::WriteTransaction) -> Result<T, Fault>,
    ) -> Result<T, StoreError> {
        let txn = self.db()?.begin_write().map_err(|e| self.err(e))?;
        let out = work(&txn).map_err(|e| self.err(e))?;
        txn.commit().map_err(|e| self.err(e))?;
        Ok(out)
    }

    /// The database (reopened first, after an I/O error, when that is possible now).
    fn db(&self) -> Result<Arc<Database>, StoreError> {
        self.inner.db.get().map_err(|e| self.err(e))
    }

    fn err(&self, fault: impl Into<Fault>) -> StoreError {
        let fault = fault.into();
        self.inner.db.saw(&fault);
        fault.at(self.path.display().to_string())
    }
}

/// Creates the store file empty, mode 0600 and the service user's (it holds members, messages
/// and the token secret), unless it exists: redb then makes a new database in it.
fn create_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    match created {
        Ok(_) => crate::base::config::owner::adopt(path),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Copies `from` to the new file `to`, mode 0600, synced.
fn copy_private(from: &Path, to: &Path) -> std::io::Result<u64> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut source = std::fs::File::open(from)?;
    let mut target = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)?;
    let copied = std::io::copy(&mut source, &mut target).and_then(|n| {
        target.sync_all()?;
        crate::base::config::owner::adopt(to)?;
        Ok(n)
    });
    if copied.is_err() {
        let _ = std::fs::remove_file(to);
    }
    copied
}

/// Opens (or creates) the redb file at `path` with every table, brought to [`LAYOUT`].
fn open_database(path: &Path) -> Result<Database, Fault> {
    // redb caches up to 1 GiB by default; the hot data (the spool's newest messages, the
    // queue being delivered) is far smaller, and the page cache of the OS holds the rest.
    let db = redb::Builder::new()
        .set_cache_size(CACHE_BYTES)
        .create(path)
        .map_err(|e| Fault::from(e).context("cannot open"))?;
    // Create the tables so readers never meet a missing one.
    let txn = db.begin_write()?;
    {
        txn.open_table(META)?;
        txn.open_table(DATA)?;
        txn.open_table(COUNTERS)?;
        txn.open_table(MEMBERS)?;
        txn.open_table(QUEUE)?;
        txn.open_table(QUEUE_DATA)?;
        txn.open_table(SECRETS)?;
        txn.open_table(DELIVERIES)?;
        txn.open_table(record_log::LOG)?;
        txn.open_table(ALIASES)?;
        txn.open_table(ACTIVE)?;
        txn.open_table(membership::DEPARTED)?;
        txn.open_table(membership::SEEDED)?;
        txn.open_table(duplicates::SEEN)?;
        txn.open_table(QUEUE_SEVEN_BIT)?;
        txn.open_table(DMARC_REPORTS)?;
        txn.open_table(duplicates::SEEN_BY_TIME)?;
        txn.open_table(rates::RATES)?;
        txn.open_table(rates::RATES_BY_EXPIRY)?;
        archive::create_tables(&txn)?;
        txn.open_table(digests::PENDING)?;
        txn.open_table(digests::ISSUES)?;
        upgrade_layout(&txn)?;
        let folded = record_log::fold_all(&txn)?;
        if folded > 0 {
            tracing::info!(
                posts = folded,
                "records of fan-outs cut short moved into the records table"
            );
        }
    }
    txn.commit()?;
    Ok(db)
}

/// Brings a file written by an older arclist to [`LAYOUT`]: before layout 2 every queued post
/// stayed in the queue for ever, so each is settled once (the hot queue gets the ones still
/// waiting, the finished ones are compacted); before layout 3 lists were seeded from their
/// files at every start, so every list with members counts as seeded.
fn upgrade_layout(txn: &redb::WriteTransaction) -> Result<(), Fault> {
    let mut counters = txn.open_table(COUNTERS)?;
    let layout = counters.get("layout")?.map_or(1, |v| v.value());
    if layout >= LAYOUT {
        return Ok(());
    }
    let now = crate::auth::unix_now();
    if layout < 2 {
        settle_all(txn, now)?;
    }
    if layout < 3 {
        membership::mark_lists_with_members(txn, now)?;
    }
    counters.insert("layout", LAYOUT)?;
    Ok(())
}

/// Recipient records one commit writes or removes, for a post with more: a post queued with
/// its recipients named (not read from a list's members, `queueing.rs`, which writes smaller
/// commits as it reads) and a finished post's records are written and removed in commits of
/// this many, so the writer is never held for seconds and the spool's commits (the `250`s of
/// other mail) go in between.
const RECORDS_PER_COMMIT: usize = 50_000;

/// Writes a queue entry, its signed copy, its hot-queue head and the spool metadata, and
/// (`with_records`) a pending record per recipient, within `txn`.
fn write_queued(
    txn: &redb::WriteTransaction,
    meta: &SpoolMeta,
    entry: &QueueEntry,
    signed: &[u8],
    with_records: bool,
) -> Result<(), Fault> {
    let json = serde_json::to_string(entry)?;
    txn.open_table(QUEUE)?.insert(entry.id, json.as_str())?;
    txn.open_table(QUEUE_DATA)?.insert(entry.id, signed)?;
    if with_records {
        write_pending(txn, entry.id, &entry.recipients)?;
    }
    let json = serde_json::to_string(meta)?;
    txn.open_table(META)?.insert(meta.id, json.as_str())?;
    let head = entry.fresh_head();
    let json = serde_json::to_string(&head)?;
    txn.open_table(ACTIVE)?.insert(entry.id, json.as_str())?;
    Ok(())
}

/// Writes a pending record for each of `recipients` of post `id`.
fn write_pending(
    txn: &redb::WriteTransaction,
    id: SpoolId,
    recipients: &[String],
) -> Result<(), Fault> {
    write_records::<str, _>(txn, id, recipients.iter().map(String::as_str))
}

/// Removes at most `limit` recipient records of post `id`; returns how many.
fn remove_records(txn: &redb::WriteTransaction, id: SpoolId, limit: usize) -> Result<usize, Fault> {
    let mut deliveries = txn.open_table(DELIVERIES)?;
    let (prefix, end) = delivery_range(id);
    let keys: Vec<String> = deliveries
        .range(prefix.as_str()..end.as_str())?
        .take(limit)
        .map(|row| row.map(|(k, _)| k.value().to_string()))
        .collect::<Result<_, _>>()?;
    for key in &keys {
        deliveries.remove(key.as_str())?;
    }
    // Anything logged after the post finished goes too: its summary is what counts.
    record_log::remove(txn, id)?;
    Ok(keys.len())
}

/// Settles post `id` and, when it finished, removes its records in the same commit, up to
/// [`RECORDS_PER_COMMIT`]; also says whether that took them all.
fn settle_compacting(
    txn: &redb::WriteTransaction,
    id: SpoolId,
    now: u64,
) -> Result<(Settled, bool), Fault> {
    let settled = lifecycle::settle(txn, id, now)?;
    let compacted = matches!(settled, Settled::Finished(_))
        && remove_records(txn, id, RECORDS_PER_COMMIT)? < RECORDS_PER_COMMIT;
    Ok((settled, compacted))
}

/// Writes the recipient records `deliveries` of queued message `id`.
fn write_deliveries<D: std::borrow::Borrow<Delivery>>(
    txn: &redb::WriteTransaction,
    id: SpoolId,
    deliveries: impl IntoIterator<Item = D>,
) -> Result<(), Fault> {
    write_records(txn, id, deliveries)
}

/// A recipient record as written: a [`Delivery`], or the address of a recipient not tried
/// yet (queueing writes one per member without making a record of each first).
trait Record {
    fn address(&self) -> &str;
    /// Appends the value stored for it: [`FRESH`] and the address for a recipient not tried
    /// yet, JSON otherwise.
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), Fault>;
}

impl Record for Delivery {
    fn address(&self) -> &str {
        &self.address
    }

    fn encode(&self, out: &mut Vec<u8>) -> Result<(), Fault> {
        // Every field named: a field added to records must be decided on here, or the short
        // form would drop it.
        let Delivery {
            address,
            state,
            attempts,
            next_attempt,
            last_reply,
        } = self;
        if *state == DeliveryState::Pending
            && *attempts == 0
            && *next_attempt == 0
            && last_reply.is_empty()
        {
            address.as_str().encode(out)
        } else {
            Ok(serde_json::to_writer(out, self)?)
        }
    }
}

impl Record for str {
    fn address(&self) -> &str {
        self
    }

    fn encode(&self, out: &mut Vec<u8>) -> Result<(), Fault> {
        out.extend_from_slice(FRESH.as_bytes());
        out.extend_from_slice(self.as_bytes());
        Ok(())
    }
}

/// What a record of a recipient not tried yet is stored as, before the address. Queueing a
/// post writes one per member and its first round reads them all back: as JSON the five
/// fields took three times the bytes and most of the start's CPU of a large fan-out. A JSON
/// record starts with `{`, so the two cannot be taken for each other.
const FRESH: &str = "p:";

/// The record stored under `key` as `value`: a fresh one ([`FRESH`]) or JSON.
fn decode_record(key: &str, value: &str) -> Result<Delivery, Fault> {
    match value.strip_prefix(FRESH) {
        Some(address) => Ok(Delivery::pending(address)),
        None => serde_json::from_str(value)
            .map_err(|e| Fault::corrupt(format!("corrupt delivery record {key}: {e}"))),
    }
}

/// Writes `records` of post `id` with one key buffer and one value buffer: queueing a
/// million-member post writes a million.
fn write_records<R: Record + ?Sized, D: std::borrow::Borrow<R>>(
    txn: &redb::WriteTransaction,
    id: SpoolId,
    records: impl IntoIterator<Item = D>,
) -> Result<(), Fault> {
    let mut table = txn.open_table(DELIVERIES)?;
    let (mut key, mut value) = (String::new(), Vec::new());
    for record in records {
        let record = record.borrow();
        write_delivery_key(&mut key, id, record.address());
        value.clear();
        record.encode(&mut value)?;
        let value = std::str::from_utf8(&value)
            .map_err(|e| Fault::other(format!("a delivery record is not UTF-8: {e}")))?;
        table.insert(key.as_str(), value)?;
    }
    Ok(())
}

/// Settles every queued post once (the layout-2 upgrade).
fn settle_all(txn: &redb::WriteTransaction, now: u64) -> Result<(), Fault> {
    let ids: Vec<u64> = {
        let queue = txn.open_table(QUEUE)?;
        let mut ids = Vec::new();
        for row in queue.iter()? {
            ids.push(row?.0.value());
        }
        ids
    };
    for id in &ids {
        lifecycle::settle(txn, *id, now)?;
    }
    if !ids.is_empty() {
        tracing::info!(
            posts = ids.len(),
            "store upgraded: finished posts left the hot queue"
        );
    }
    Ok(())
}

/// The spool's group commit; while no message arrives, it flushes what other writes committed
/// without a flush ([`combine`]) every [`combine::FLUSH_AFTER`], and once more at the end.
fn write_loop(
    db: &recovery::Slot,
    path: &str,
    requests: &mpsc::Receiver<Request>,
    combiner: &combine::Combiner,
) {
    let flush = || {
        if combiner.take_unflushed()
            && let Err(e) = db.get().and_then(|d| combine::flush(&d))
        {
            db.saw(&e);
            combiner.mark_unflushed();
            tracing::error!(store = path, error = %e, "cannot flush the store; retrying");
        }
    };
    loop {
        let first = match requests.recv_timeout(combine::FLUSH_AFTER) {
            Ok(first) => first,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                flush();
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                fold_log(db, path);
                flush();
                return;
            }
        };
        // The spool's commit is durable and flushes the rest with it.
        let unflushed = combiner.take_unflushed();
        let mut batch = vec![first];
        batch.extend(requests.try_iter().take(MAX_BATCH - 1));
        let committed = db.get().and_then(|handle| commit_batch(&handle, &batch));
        if let Err(message) = &committed {
            db.saw(message);
            if unflushed {
                combiner.mark_unflushed();
            }
        }
        match committed {
            Ok(ids) => {
                for (req, id) in batch.into_iter().zip(ids) {
                    let _ = req.reply.send(Ok(id));
                }
            }
            Err(message) => {
                tracing::error!(store = path, error = %message, count = batch.len(), "spool commit failed; clients get 451");
                for req in batch {
                    let _ = req.reply.send(Err(message.clone().at(path)));
                }
            }
        }
    }
}

/// Folds every post's logged records into the records table as the store closes
/// ([`record_log::fold_all`]); a failure leaves them for the next start.
fn fold_log(db: &recovery::Slot, path: &str) {
    let folded = db.get().and_then(|d| {
        let txn = d.begin_write()?;
        record_log::fold_all(&txn)?;
        txn.commit()?;
        Ok(())
    });
    if let Err(e) = folded {
        tracing::warn!(store = path, error = %e, "cannot fold the record log at close; the next start does");
    }
}

fn commit_batch(db: &Database, batch: &[Request]) -> Result<Vec<SpoolId>, Fault> {
    let txn = db.begin_write()?;
    let mut ids = Vec::with_capacity(batch.len());
    {
        let mut counters = txn.open_table(COUNTERS)?;
        let mut next = counters.get("next_id")?.map_or(1, |v| v.value());
        let mut meta_table = txn.open_table(META)?;
        let mut data_table = txn.open_table(DATA)?;
        for req in batch {
            let id = next;
            next += 1;
            let meta = SpoolMeta {
                id,
                envelope: req.envelope.clone(),
                state: SpoolState::Received,
                size: req.message.len(),
                auth_results: None,
                attempts: 0,
                note: None,
                facts: Default::default(),
            };
            let json = serde_json::to_string(&meta)?;
            meta_table.insert(id, json.as_str())?;
            data_table.insert(id, req.message.as_slice())?;
            ids.push(id);
        }
        counters.insert("next_id", next)?;
    }
    // Durability::Immediate is redb's default: commit returns after the fsync.
    txn.commit()?;
    Ok(ids)
}

/// The Spool role, synchronous: the async trait methods (`roles.rs`) call these, inline for a
/// read of one record, on the blocking pool for a write or a scan.
impl RedbStore {
    async fn spool_to_writer(
        &self,
        envelope: SpoolEnvelope,
        message: Vec<u8>,
    ) -> Result<SpoolId, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.writer
            .send(Request {
                envelope,
                message,
                reply,
            })
            .map_err(|_| self.err(Fault::unavailable("the writer thread has stopped")))?;
        answer
            .await
            .map_err(|_| self.err(Fault::unavailable("the writer thread dropped the request")))?
    }

    fn list_blocking(&self) -> Result<Vec<SpoolMeta>, StoreError> {
        self.read_all(META, "metadata")
    }

    fn get_blocking(&self, id: SpoolId) -> Result<Option<(SpoolMeta, Vec<u8>)>, StoreError> {
        self.read_pair(META, DATA, id, "metadata")
    }

    fn transition_blocking(&self, meta: &SpoolMeta, from: SpoolState) -> Result<bool, StoreError> {
        self.write(|txn| {
            let mut table = txn.open_table(META)?;
            let current: Option<SpoolMeta> =
                match table.get(meta.id)? {
                    Some(json) => Some(serde_json::from_str(json.value()).map_err(|e| {
                        Fault::corrupt(format!("corrupt metadata {}: {e}", meta.id))
                    })?),
                    None => None,
                };
            if current.is_none_or(|c| c.state != from) {
                return Ok(false);
            }
            let json = serde_json::to_string(meta)?;
            table.insert(meta.id, json.as_str())?;
            Ok(true)
        })
    }

    fn raw_meta_blocking(&self, id: SpoolId) -> Result<Option<(String, usize)>, StoreError> {
        let txn = self.db()?.begin_read().map_err(|e| self.err(e))?;
        let meta = txn.open_table(META).map_err(|e| self.err(e))?;
        let data = txn.open_table(DATA).map_err(|e| self.err(e))?;
        let Some(raw) = meta.get(id).map_err(|e| self.err(e))? else {
            return Ok(None);
        };
        let size = data.get(id).map_err(|e| self.err(e))?;
        Ok(Some((
            raw.value().to_string(),
            size.map_or(0, |d| d.value().len()),
        )))
    }

    fn update_blocking(&self, meta: &SpoolMeta) -> Result<(), StoreError> {
        let txn = self.db()?.begin_write().map_err(|e| self.err(e))?;
        {
            let mut table = txn.open_table(META).map_err(|e| self.err(e))?;
            let json = serde_json::to_string(meta).map_err(|e| self.err(e))?;
            table
                .insert(meta.id, json.as_str())
                .map_err(|e| self.err(e))?;
        }
        txn.commit().map_err(|e| self.err(e))
    }
}

/// The Members role, synchronous: the async trait methods (`roles.rs`) call these, inline for a
/// read of one record, on the blocking pool for a write or a scan.
impl RedbStore {
    fn add_members_blocking(&self, list: &str, members: &[Member]) -> Result<usize, StoreError> {
        self.write(|txn| membership::add(txn, list, members, true))
    }

    fn seed_members_blocking(
        &self,
        list: &str,
        members: &[Member],
        again: bool,
    ) -> Result<Option<usize>, StoreError> {
        let now = crate::auth::unix_now();
        self.write(|txn| membership::seed(txn, list, members, again, now))
    }

    fn departure_blocking(
        &self,
        list: &str,
        address: &str,
    ) -> Result<Option<Departure>, StoreError> {
        let txn = self.db()?.begin_read().map_err(|e| self.err(e))?;
        membership::departure(&txn, list, address).map_err(|e| self.err(e))
    }

    fn put_member_blocking(&self, list: &str, member: &Member) -> Result<(), StoreError> {
        let txn = self.db()?.begin_write().map_err(|e| self.err(e))?;
        {
            let mut table = txn.open_table(MEMBERS).map_err(|e| self.err(e))?;
            let json = serde_json::to_string(member).map_err(|e| self.err(e))?;
            table
                .insert(member_key(list, &member.address).as_str(), json.as_str())
                .map_err(|e| self.err(e))?;
        }
        txn.commit().map_err(|e| self.err(e))
    }

    fn remove_member_blocking(
        &self,
        list: &str,
        address: &str,
        why: Departure,
    ) -> Result<bool, StoreError> {
        self.write(|txn| membership::remove(txn, list, address, why))
    }

    fn put_alias_blocking(&self, alias: &str, targets: &[String]) -> Result<(), StoreError> {
        let txn = self.db()?.begin_write().map_err(|e| self.err(e))?;
        {
            let mut table = txn.open_table(ALIASES).map_err(|e| self.err(e))?;
            let json = serde_json::to_string(targets).map_err(|e| self.err(e))?;
            table
                .insert(alias.to_ascii_lowercase().as_str(), json.as_str())
                .map_err(|e| self.err(e))?;
        }
        txn.commit().map_err(|e| self.err(e))
    }

    fn remove_alias_blocking(&self, alias: &str) -> Result<bool, StoreError> {
        let txn = self.db()?.begin_write().map_err(|e| self.err(e))?;
        let removed = {
            let mut table = txn.open_table(ALIASES).map_err(|e| self.err(e))?;
            table
                .remove(alias.to_ascii_lowercase().as_str())
                .map_err(|e| self.err(e))?
                .is_some()
        };
        txn.commit().map_err(|e| self.err(e))?;
        Ok(removed)
    }

    fn aliases_blocking(&self) -> Result<Vec<(String, Vec<String>)>, StoreError> {
        let txn = self.db()?.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(ALIASES).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in table.iter().map_err(|e| self.err(e))? {
            let (k, v) = row.map_err(|e| self.err(e))?;
            let targets: Vec<String> = serde_json::from_str(v.value()).map_err(|e| {
                self.err(Fault::corrupt(format!("alias record {}: {e}", k.value())))
            })?;
            out.push((k.value().to_string(), targets));
        }
        Ok(out)
    }

    fn members_after_blocking(
        &self,
        list: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<Member>, StoreError> {
        let mut out = Vec::new();
        self.visit_members_after(list, after, limit, |m| out.push(m))?;
        Ok(out)
    }

    /// Hands at most `limit` members of `list` after `after` (`""`: from the first) to
    /// `visit`, in address order, one at a time: a page of a paged read, which costs the page,
    /// not the list, and holds one member at a time. Returns the address of the last one.
    fn visit_members_after(
        &self,
        list: &str,
        after: &str,
        limit: usize,
        mut visit: impl FnMut(Member),
    ) -> Result<Option<String>, StoreError> {
        let (prefix, start) = (member_key(list, ""), member_key(list, after));
        let txn = self.db()?.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(MEMBERS).map_err(|e| self.err(e))?;
        let (mut seen, mut last) = (0, None);
        for row in table.range(start.as_str()..).map_err(|e| self.err(e))? {
            let (k, v) = row.map_err(|e| self.err(e))?;
            if !k.value().starts_with(&prefix) || seen >= limit {
                break;
            }
            if !after.is_empty() && k.value() == start {
                continue;
            }
            self.count_read();
            let member: Member = serde_json::from_str(v.value()).map_err(|e| {
                self.err(Fault::corrupt(format!(
                    "corrupt member record {}: {e}",
                    k.value()
                )))
            })?;
            seen += 1;
            last = Some(k);
            visit(member);
        }
        Ok(last.map(|k| k.value()[prefix.len()..].to_string()))
    }

    fn member_blocking(&self, list: &str, address: &str) -> Result<Option<Member>, StoreError> {
        let txn = self.db()?.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(MEMBERS).map_err(|e| self.err(e))?;
        let Some(json) = table
            .get(member_key(list, address).as_str())
            .map_err(|e| self.err(e))?
        else {
            return Ok(None);
        };
        self.count_read();
        serde_json::from_str(json.value())
            .map(Some)
            .map_err(|e| self.err(Fault::corrupt(format!("corrupt member record: {e}"))))
    }

    fn is_member_blocking(&self, list: &str, address: &str) -> Result<bool, StoreError> {
        let txn = self.db()?.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(MEMBERS).map_err(|e| self.err(e))?;
        Ok(table
            .get(member_key(list, address).as_str())
            .map_err(|e| self.err(e))?
            .is_some())
    }
}

/// The Queue role, synchronous: the async trait methods (`roles.rs`) call these, inline for a
/// read of one record, on the blocking pool for a write or a scan.
impl RedbStore {
    fn queued_seven_bit_blocking(&self, id: SpoolId) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db()?.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(QUEUE_SEVEN_BIT).map_err(|e| self.err(e))?;
        Ok(table
            .get(id)
            .map_err(|e| self.err(e))?
            .map(|v| v.value().to_vec()))
    }

    fn enqueue_local_blocking(
        &self,
        mut meta: SpoolMeta,
        mut entry: QueueEntry,
        signed: &[u8],
    ) -> Result<SpoolId, StoreError> {
        let id = self.write(|txn| {
            let mut counters = txn.open_table(COUNTERS)?;
            let id = counters.get("next_id")?.map_or(1, |v| v.value());
            counters.insert("next_id", id + 1)?;
            drop(counters);
            (meta.id, entry.id, meta.size) = (id, id, signed.len());
            txn.open_table(DATA)?.insert(id, signed)?;
            write_queued(txn, &meta, &entry, signed, true)?;
            Ok(id)
        })?;
        self.inner.queued.notify_one();
        Ok(id)
    }

    fn queue_blocking(&self) -> Result<Vec<QueueEntry>, StoreError> {
        let all: Vec<StoredEntry> = self.read_all(QUEUE, "queue entry")?;
        Ok(all
            .into_iter()
            .map(StoredEntry::without_recipients)
            .collect())
    }

    fn queue_entry_blocking(&self, id: SpoolId) -> Result<Option<QueueEntry>, StoreError> {
        let txn = self.db()?.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(QUEUE).map_err(|e| self.err(e))?;
        let Some(json) = table.get(id).map_err(|e| self.err(e))? else {
            return Ok(None);
        };
        self.count_read();
        serde_json::from_str(json.value())
            .map(Some)
            .map_err(|e| self.err(Fault::corrupt(format!("corrupt queue entry {id}: {e}"))))
    }

    fn active_blocking(&self) -> Result<Vec<QueueHead>, StoreError> {
        self.read_all(ACTIVE, "queue head")
    }

    fn settle_blocking(&self, id: SpoolId) -> Result<Settled, StoreError> {
        let now = crate::auth::unix_now();
        let settled = self.write_shared(false, move |txn| settle_compacting(txn, id, now))?;
        self.compact_if_finished(id, settled)
    }

    /// Removes what is left of the records of post `id` once `settled` says it finished (its
    /// summary holds what they said) and its settling commit could not take them all.
    fn compact_if_finished(
        &self,
        id: SpoolId,
        (settled, compacted): (Settled, bool),
    ) -> Result<Settled, StoreError> {
        if matches!(settled, Settled::Finished(_))
            && !compacted
            && let Err(e) = self.compact_records(id)
        {
            // The round is recorded and settled; what is left goes when the post is pruned.
            tracing::warn!(id, error = %e, "cannot remove a finished post's records yet; they go when it is pruned");
        }
        Ok(settled)
    }

    /// Removes every recipient record of post `id`, [`RECORDS_PER_COMMIT`] a commit, each
    /// shared with other writes and without a flush of its own: a forwarding node finishes a
    /// post per message, and a flush each (redb writing one transaction at a time) held every
    /// other write back. Cut short by a crash, the rest goes with the post when it is pruned.
    fn compact_records(&self, id: SpoolId) -> Result<(), StoreError> {
        while self.write_shared(false, move |txn| {
            remove_records(txn, id, RECORDS_PER_COMMIT)
        })? == RECORDS_PER_COMMIT
        {}
        Ok(())
    }

    fn queued_blocking(&self, id: SpoolId) -> Result<Option<(QueueEntry, Vec<u8>)>, StoreError> {
        let found = self.read_pair::<StoredEntry>(QUEUE, QUEUE_DATA, id, "queue entry")?;
        Ok(found.map(|(entry, data)| (entry.without_recipients(), data)))
    }

    /// At most `limit` recipients of post `id` due at `now` whose address sorts after `after`
    /// (`""`: from the first), in address order: a page of a fan-out, read from where the last
    /// page ended, so a million-member post costs each page, not the list, to find.
    pub(crate) async fn due_after(
        &self,
        id: SpoolId,
        now: u64,
        after: &str,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let after = after.to_ascii_lowercase();
        self.off_thread(move |s| s.due_after_blocking(id, now, &after, limit))
            .await
    }

    fn due_after_blocking(
        &self,
        id: SpoolId,
        now: u64,
        after: &str,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let (prefix, start) = (delivery_key(id, ""), delivery_key(id, after));
        let txn = self.db()?.begin_read().map_err(|e| self.err(e))?;
        let log = txn.open_table(record_log::LOG).map_err(|e| self.err(e))?;
        let logged = record_log::overlay(&log, id, after).map_err(|e| self.err(e))?;
        let table = txn.open_table(DELIVERIES).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in table.range(start.as_str()..).map_err(|e| self.err(e))? {
            let (k, v) = row.map_err(|e| self.err(e))?;
            let key = k.value();
            if !key.starts_with(&prefix) || out.len() >= limit {
                break;
            }
            if !after.is_empty() && key == start {
                continue;
            }
            self.count_read();
            let d =
                record_log::newest(&logged, (&prefix, key), v.value()).map_err(|e| self.err(e))?;
            if matches!(d.state, DeliveryState::Pending | DeliveryState::Deferred)
                && d.next_attempt <= now
            {
                out.push(d);
            }
        }
        Ok(out)
    }

    fn deliveries_blocking(&self, id: SpoolId) -> Result<Vec<Delivery>, StoreError> {
        // One read transaction for both: a fold in between would hide the folded records.
        let txn = self.db()?.begin_read().map_err(|e| self.err(e))?;
        let log = txn.open_table(record_log::LOG).map_err(|e| self.err(e))?;
        let mut logged = record_log::overlay(&log, id, "").map_err(|e| self.err(e))?;
        let table = txn.open_table(DELIVERIES).map_err(|e| self.err(e))?;
        let (prefix, end) = delivery_range(id);
        let mut records = Vec::new();
        for row in (table.range(prefix.as_str()..end.as_str())).map_err(|e| self.err(e))? {
            let (k, v) = row.map_err(|e| self.err(e))?;
            self.count_read();
            let d = record_log::newest(&logged, (&prefix, k.value()), v.value())
                .map_err(|e| self.err(e))?;
            logged.remove(&k.value()[prefix.len()..]);
            records.push(d);
        }
        // Logged addresses without a record (none, normally), in address order as the rest.
        let mut rest: Vec<(String, Delivery)> = logged.into_iter().collect();
        rest.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        records.extend(rest.into_iter().map(|(_, d)| d));
        Ok(records)
    }

    fn record_deliveries_blocking(
        &self,
        id: SpoolId,
        deliveries: &[Delivery],
    ) -> Result<(), StoreError> {
        let deliveries = deliveries.to_vec();
        // Durable: the records of a fan-out made as copies are accepted are what keeps a crash
        // from sending every member the post again. Into the log: see `record_log`.
        self.write_shared(true, move |txn| record_log::append(txn, id, &deliveries))
    }

    fn record_round_blocking(
        &self,
        id: SpoolId,
        deliveries: &[Delivery],
    ) -> Result<Settled, StoreError> {
        let now = crate::auth::unix_now();
        let deliveries = deliveries.to_vec();
        // Lost in a crash, the round's copies go again: what a crash just before it would do.
        let settled = self.write_shared(false, move |txn| {
            // Into the log after what it holds (the round's records are newer), settled with
            // it: see `record_log`.
            record_log::append(txn, id, &deliveries)?;
            settle_compacting(txn, id, now)
        })?;
        self.compact_if_finished(id, settled)
    }
}

/// The Records role, synchronous: the async trait methods (`roles.rs`) call these, inline for a
/// read of one record, on the blocking pool for a write or a scan.
impl RedbStore {
    fn prune_blocking(
        &self,
        now: u64,
        keep: Retention,
        batch: usize,
    ) -> Result<Pruned, StoreError> {
        self.write(|txn| lifecycle::prune(txn, now, keep, batch.max(1)))
    }

    fn distributed_blocking(
        &self,
        list: &str,
        message_id: &str,
        since: u64,
    ) -> Result<Option<SpoolId>, StoreError> {
        let txn = self.db()?.begin_read().map_err(|e| self.err(e))?;
        duplicates::seen(&txn, list, message_id, since).map_err(|e| self.err(e))
    }

    fn count_rates_blocking(&self, keys: Vec<(String, u64)>) -> Result<Vec<u64>, StoreError> {
        // Not flushed on its own: a crash may forget the last counts, which only lets a few
        // more messages through; the next durable commit (the spool's) flushes them.
        self.write_shared(false, move |txn| rates::count(txn, &keys))
    }

    fn forget_rates_blocking(&self, now: u64, batch: usize) -> Result<(usize, bool), StoreError> {
        if !self.any_before(rates::RATES_BY_EXPIRY, &format!("{now:020}"))? {
            return Ok((0, false));
        }
        self.write(|txn| rates::forget(txn, now, batch))
    }

    fn forget_distributed_blocking(
        &self,
        before: u64,
        batch: usize,
    ) -> Result<(usize, bool), StoreError> {
        if !self.any_before(duplicates::SEEN_BY_TIME, &format!("{before:020}"))? {
            return Ok((0, false));
        }
        self.write(|txn| duplicates::forget(txn, before, batch))
    }

    fn put_dmarc_report_blocking(
        &self,
        report: &crate::auth::dmarc_report::AggregateReport,
    ) -> Result<bool, StoreError> {
        let key = format!("{:020}\n{}\n{}", report.begin, report.org, report.report_id);
        let json = serde_json::to_string(report).map_err(|e| self.err(e))?;
        self.write(|txn| {
            let mut table = txn.open_table(DMARC_REPORTS)?;
            if table.get(key.as_str())?.is_some() {
                return Ok(false);
            }
            table.insert(key.as_str(), json.as_str())?;
            Ok(true)
        })
    }

    fn dmarc_reports_blocking(
        &self,
        since: u64,
    ) -> Result<Vec<crate::auth::dmarc_report::AggregateReport>, StoreError> {
        let txn = self.db()?.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(DMARC_REPORTS).map_err(|e| self.err(e))?;
        let start = format!("{since:020}");
        let mut out = Vec::new();
        for row in table.range(start.as_str()..).map_err(|e| self.err(e))? {
            let (_, v) = row.map_err(|e| self.err(e))?;
            self.count_read();
            out.push(serde_json::from_str(v.value()).map_err(|e| {
                self.err(Fault::corrupt(format!("corrupt DMARC report record: {e}")))
            })?);
        }
        Ok(out)
    }

    fn forget_dmarc_reports_blocking(
        &self,
        before: u64,
        batch: usize,
    ) -> Result<(usize, bool), StoreError> {
        let end = format!("{before:020}");
        if !self.any_before(DMARC_REPORTS, &end)? {
            return Ok((0, false));
        }
        self.write(|txn| {
            let mut table = txn.open_table(DMARC_REPORTS)?;
            let mut old = Vec::new();
            for row in table.range(..end.as_str())? {
                if old.len() >= batch {
                    break;
                }
                old.push(row?.0.value().to_string());
            }
            for key in &old {
                table.remove(key.as_str())?;
            }
            Ok((old.len(), old.len() >= batch))
        })
    }

    fn token_secret_blocking(&self) -> Result<Vec<u8>, StoreError> {
        if let Some(secret) = self.inner.token.get() {
            return Ok(secret.clone());
        }
        // Read first: a write transaction waits for the commit under way and makes its own.
        let found = {
            let txn = self.db()?.begin_read().map_err(|e| self.err(e))?;
            match txn.open_table(SECRETS) {
                Ok(table) => table
                    .get("token")
                    .map_err(|e| self.err(e))?
                    .map(|v| v.value().to_vec()),
                Err(redb::TableError::TableDoesNotExist(_)) => None,
                Err(e) => return Err(self.err(e)),
            }
        };
        if let Some(secret) = found {
            return Ok(self.inner.token.get_or_init(|| secret).clone());
        }
        let txn = self.db()?.begin_write().map_err(|e| self.err(e))?;
        let secret = {
            let mut table = txn.open_table(SECRETS).map_err(|e| self.err(e))?;
            let existing = table
                .get("token")
                .map_err(|e| self.err(e))?
                .map(|v| v.value().to_vec());
            match existing {
                Some(s) => s,
                None => {
                    let mut fresh = vec![0u8; 32];
                    aws_lc_rs::rand::fill(&mut fresh).map_err(|_| {
                        self.err(Fault::other("no randomness for the token secret"))
                    })?;
                    table
                        .insert("token", fresh.as_slice())
                        .map_err(|e| self.err(e))?;
                    fresh
                }
            }
        };
        txn.commit().map_err(|e| self.err(e))?;
        Ok(self.inner.token.get_or_init(|| secret).clone())
    }
}

impl RedbStore {
    /// The unfinished messages, and those whose record does not decode: the pipeline sets
    /// those aside ([`crate::state::store::Store::set_aside`]) instead of one of them hiding every other.
    fn take_unfinished_blocking(&self) -> Result<Vec<SpoolId>, StoreError> {
        let txn = self.db()?.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(META).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(|e| self.err(e))? {
            let (k, v) = entry.map_err(|e| self.err(e))?;
            self.count_read();
            let unfinished =
                serde_json::from_str::<SpoolMeta>(v.value()).map_or(true, |m| m.state.unfinished());
            if unfinished {
                out.push(k.value());
            }
        }
        Ok(out)
    }
}

impl Cluster for RedbStore {
    async fn take_unfinished(&self) -> Result<Vec<SpoolId>, StoreError> {
        self.off_thread(|s| s.take_unfinished_blocking()).await
    }

    fn nudge(&self) {
        self.inner.queued.notify_one();
    }

    async fn queued_signal(&self) {
        self.inner.queued.notified().await;
    }
}
