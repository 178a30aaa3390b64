//! The embedded store on redb, with group commit.
//!
//! Concurrent SMTP sessions hand their messages to one writer thread. While it waits for one
//! commit's fsync, new messages queue up; the next commit takes all of them, so fifty sessions
//! share one fsync instead of paying fifty.

use super::{SpoolEnvelope, SpoolId, SpoolMeta, SpoolState, Store, StoreError};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use tokio::sync::oneshot;

const META: TableDefinition<u64, &str> = TableDefinition::new("spool_meta");
const DATA: TableDefinition<u64, &[u8]> = TableDefinition::new("spool_data");
const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");

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
    db: Arc<Database>,
    path: PathBuf,
    writer: mpsc::Sender<Request>,
}

impl RedbStore {
    /// Opens (or creates) the store at `path`, creating its folder.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let err = |m: String| StoreError {
            path: path.display().to_string(),
            message: m,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| err(format!("cannot create folder: {e}")))?;
        }
        let db = Database::create(path).map_err(|e| err(format!("cannot open: {e}")))?;
        // Create the tables so readers never meet a missing one.
        let txn = db.begin_write().map_err(|e| err(e.to_string()))?;
        {
            txn.open_table(META).map_err(|e| err(e.to_string()))?;
            txn.open_table(DATA).map_err(|e| err(e.to_string()))?;
            txn.open_table(COUNTERS).map_err(|e| err(e.to_string()))?;
        }
        txn.commit().map_err(|e| err(e.to_string()))?;
        let db = Arc::new(db);
        let (writer, requests) = mpsc::channel::<Request>();
        let writer_db = db.clone();
        let writer_path = path.display().to_string();
        std::thread::Builder::new()
            .name("arclist-store-writer".into())
            .spawn(move || write_loop(&writer_db, &writer_path, &requests))
            .map_err(|e| err(format!("cannot start the writer thread: {e}")))?;
        Ok(RedbStore {
            db,
            path: path.to_path_buf(),
            writer,
        })
    }

    fn err(&self, message: impl std::fmt::Display) -> StoreError {
        StoreError {
            path: self.path.display().to_string(),
            message: message.to_string(),
        }
    }
}

fn write_loop(db: &Database, path: &str, requests: &mpsc::Receiver<Request>) {
    while let Ok(first) = requests.recv() {
        let mut batch = vec![first];
        batch.extend(requests.try_iter().take(MAX_BATCH - 1));
        match commit_batch(db, &batch) {
            Ok(ids) => {
                for (req, id) in batch.into_iter().zip(ids) {
                    let _ = req.reply.send(Ok(id));
                }
            }
            Err(message) => {
                tracing::error!(store = path, error = %message, count = batch.len(), "spool commit failed; clients get 451");
                for req in batch {
                    let _ = req.reply.send(Err(StoreError {
                        path: path.to_string(),
                        message: message.clone(),
                    }));
                }
            }
        }
    }
}

fn commit_batch(db: &Database, batch: &[Request]) -> Result<Vec<SpoolId>, String> {
    let txn = db.begin_write().map_err(|e| e.to_string())?;
    let mut ids = Vec::with_capacity(batch.len());
    {
        let mut counters = txn.open_table(COUNTERS).map_err(|e| e.to_string())?;
        let mut next = counters
            .get("next_id")
            .map_err(|e| e.to_string())?
            .map_or(1, |v| v.value());
        let mut meta_table = txn.open_table(META).map_err(|e| e.to_string())?;
        let mut data_table = txn.open_table(DATA).map_err(|e| e.to_string())?;
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
            };
            let json = serde_json::to_string(&meta).map_err(|e| e.to_string())?;
            meta_table
                .insert(id, json.as_str())
                .map_err(|e| e.to_string())?;
            data_table
                .insert(id, req.message.as_slice())
                .map_err(|e| e.to_string())?;
            ids.push(id);
        }
        counters
            .insert("next_id", next)
            .map_err(|e| e.to_string())?;
    }
    // Durability::Immediate is redb's default: commit returns after the fsync.
    txn.commit().map_err(|e| e.to_string())?;
    Ok(ids)
}

impl Store for RedbStore {
    async fn spool(
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
            .map_err(|_| self.err("the writer thread has stopped"))?;
        answer
            .await
            .map_err(|_| self.err("the writer thread dropped the request"))?
    }

    fn list(&self) -> Result<Vec<SpoolMeta>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(META).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(|e| self.err(e))? {
            let (_, v) = entry.map_err(|e| self.err(e))?;
            out.push(
                serde_json::from_str(v.value())
                    .map_err(|e| self.err(format!("corrupt metadata: {e}")))?,
            );
        }
        Ok(out)
    }

    fn get(&self, id: SpoolId) -> Result<Option<(SpoolMeta, Vec<u8>)>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let meta = txn.open_table(META).map_err(|e| self.err(e))?;
        let data = txn.open_table(DATA).map_err(|e| self.err(e))?;
        let (Some(m), Some(d)) = (
            meta.get(id).map_err(|e| self.err(e))?,
            data.get(id).map_err(|e| self.err(e))?,
        ) else {
            return Ok(None);
        };
        let parsed = serde_json::from_str(m.value())
            .map_err(|e| self.err(format!("corrupt metadata for {id}: {e}")))?;
        Ok(Some((parsed, d.value().to_vec())))
    }

    fn update(&self, meta: &SpoolMeta) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
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
