//! The database handle, and getting it back after an I/O error. Once a commit fails (a full
//! disk, say), redb refuses every later operation with "Previous I/O error" until the file is
//! closed and opened again. The slot notices the failure, raises the alarm (log and metrics),
//! and reopens the file as soon as no one else holds the old handle, at most once a second,
//! on the next use: when space is back, intake resumes without a restart.

use crate::state::store::{ErrorKind, Fault};
use redb::Database;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// Shortest pause between two attempts to reopen.
const RETRY: Duration = Duration::from_secs(1);

/// The open database, shared by the store's handles and its writer thread.
pub(super) struct Slot {
    db: RwLock<Option<Arc<Database>>>,
    path: PathBuf,
    broken: AtomicBool,
    last_attempt: Mutex<Option<Instant>>,
    open: fn(&std::path::Path) -> Result<Database, Fault>,
}

impl Slot {
    /// A slot holding `db`, reopened with `open` after an I/O error.
    pub(super) fn new(
        db: Database,
        path: PathBuf,
        open: fn(&std::path::Path) -> Result<Database, Fault>,
    ) -> Self {
        Slot {
            db: RwLock::new(Some(Arc::new(db))),
            path,
            broken: AtomicBool::new(false),
            last_attempt: Mutex::new(None),
            open,
        }
    }

    /// The database, reopening it first if an I/O error broke it and it is time to try.
    pub(super) fn get(&self) -> Result<Arc<Database>, Fault> {
        if self.broken.load(Ordering::Acquire) {
            self.reopen();
        }
        let slot = self.db.read().unwrap_or_else(|p| p.into_inner());
        slot.clone()
            .ok_or_else(|| Fault::unavailable("the store is closed after an I/O error and could not be reopened yet (is the disk full?)"))
    }

    /// Looks at a failure: an I/O error marks the database broken (once per episode). redb
    /// says "I/O error" also for what it found broken on disk, so its words count too.
    pub(super) fn saw(&self, fault: &Fault) {
        let io = fault.kind == ErrorKind::Io || fault.message.contains("I/O error");
        if io && !self.broken.swap(true, Ordering::AcqRel) {
            tracing::error!(store = %self.path.display(), error = %fault, "store write failed; refusing writes (451) until it can be reopened");
            crate::base::metrics::store_failed();
        }
    }

    fn reopen(&self) {
        {
            let mut last = self.last_attempt.lock().unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|t| t.elapsed() < RETRY) {
                return;
            }
            *last = Some(Instant::now());
        }
        let mut slot = self.db.write().unwrap_or_else(|p| p.into_inner());
        if !self.broken.load(Ordering::Acquire) {
            return;
        }
        if let Some(db) = slot.take() {
            // Someone is still in a transaction on the old handle; the file (and its lock)
            // must be closed before it can be opened again. Try on a later call.
            if Arc::strong_count(&db) > 1 {
                *slot = Some(db);
                return;
            }
            drop(db);
        }
        match (self.open)(&self.path) {
            Ok(db) => {
                *slot = Some(Arc::new(db));
                self.broken.store(false, Ordering::Release);
                crate::base::metrics::store_reopened();
                tracing::warn!(store = %self.path.display(), "store reopened after an I/O error; accepting again");
            }
            Err(e) => {
                tracing::warn!(store = %self.path.display(), error = %e, "store still cannot be reopened; retrying");
            }
        }
    }
}
