//! Group commit for the writes every message makes after its spool commit: queueing it and
//! ending its delivery rounds. Each commit waits for a disk flush, and redb writes one
//! transaction at a time, so with one commit per write the flushes, not the CPU, bounded
//! throughput. Here whoever finds no commit under way commits every write queued meanwhile in
//! one transaction (flat combining); the others wait for their result.
//!
//! Most of these writes need no flush of their own: a queued copy lost in a crash is made again
//! from the spool (whose commit before `250` is durable), a lost delivery record means a copy
//! goes twice, as it would after a crash just before the record, and a lost settling of a post
//! (its summary, the removal of its records) is made again by the next round that settles it,
//! or its records go when it is pruned. Commits keep their order, so a crash never keeps a
//! later one without the ones before. Those commit without a flush and are made durable by the
//! next durable commit: the spool's, which under load come every few milliseconds, or the
//! writer thread's once things are quiet ([`FLUSH_AFTER`]).
//!
//! A write that fails must not take the others down with it, and redb cannot undo part of a
//! transaction: when the shared transaction fails, each write is run again alone, so the
//! failing one gets its own error and the rest are committed. That is why the work is `Fn`.

use crate::state::store::Fault;
use redb::{Database, Durability, WriteTransaction};
use std::any::Any;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};

/// The longest a write committed without a flush waits for one while the store is quiet.
pub(super) const FLUSH_AFTER: std::time::Duration = std::time::Duration::from_millis(500);

/// What a write returns, before the caller takes its own type back out.
pub(super) type Output = Box<dyn Any + Send>;
/// A write: run inside someone's transaction, perhaps again alone (see the module docs).
pub(super) type Work = Box<dyn Fn(&WriteTransaction) -> Result<Output, Fault> + Send>;

struct Job {
    work: Work,
    /// Committed with a flush before the caller hears back.
    durable: bool,
    done: mpsc::SyncSender<Result<Output, Fault>>,
}

/// The writes waiting for a commit, and the right to commit them.
#[derive(Default)]
pub(super) struct Combiner {
    pending: Mutex<Vec<Job>>,
    leader: Mutex<()>,
    /// Something was committed without a flush since the last durable commit.
    unflushed: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic in another write leaves nothing half-done here: the data is a list of jobs.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Combiner {
    /// Runs `work` in a committed transaction of `db`, shared with the writes queued beside it;
    /// returns when that transaction is on disk.
    /// `durable`: the commit is flushed to disk before this returns; otherwise it may wait for
    /// the next durable commit (see the module docs).
    pub(super) fn run(
        &self,
        db: &dyn Fn() -> Result<Arc<Database>, Fault>,
        work: Work,
        durable: bool,
    ) -> Result<Output, Fault> {
        let (done, result) = mpsc::sync_channel(1);
        lock(&self.pending).push(Job {
            work,
            durable,
            done,
        });
        loop {
            let _leader = lock(&self.leader);
            match result.try_recv() {
                Ok(out) => return out,
                // Every job is answered, even one that panics (see `transaction`); this is a
                // last guard against waiting for ever.
                Err(mpsc::TryRecvError::Disconnected) => {
                    return Err(Fault::other(
                        "a shared write was lost before it was committed",
                    ));
                }
                Err(mpsc::TryRecvError::Empty) => {}
            }
            // Not done and we lead: our job is still pending, so this batch includes it.
            let batch = std::mem::take(&mut *lock(&self.pending));
            self.commit(db, batch);
        }
    }

    /// True (and cleared) when a commit without a flush happened since the last call: the
    /// caller is about to commit durably, which flushes it.
    pub(super) fn take_unflushed(&self) -> bool {
        self.unflushed.swap(false, Ordering::AcqRel)
    }

    /// Says a durable commit that was to flush earlier writes failed: they still need one.
    pub(super) fn mark_unflushed(&self) {
        self.unflushed.store(true, Ordering::Release);
    }

    /// Commits `batch` as one transaction, or each job alone when that fails; tells every job.
    fn commit(&self, db: &dyn Fn() -> Result<Arc<Database>, Fault>, batch: Vec<Job>) {
        let durable = batch.iter().any(|j| j.durable);
        match self.transaction(db, &batch, durable) {
            Ok(outs) => {
                for (job, out) in batch.iter().zip(outs) {
                    let _ = job.done.send(Ok(out));
                }
            }
            Err(e) if batch.len() == 1 => {
                let _ = batch[0].done.send(Err(e));
            }
            Err(_) => {
                for job in &batch {
                    let alone = self.transaction(db, std::slice::from_ref(job), job.durable);
                    let _ = job.done.send(alone.map(|mut outs| outs.remove(0)));
                }
            }
        }
    }

    /// Runs `jobs` in one transaction and commits it, flushed when `durable`.
    fn transaction(
        &self,
        db: &dyn Fn() -> Result<Arc<Database>, Fault>,
        jobs: &[Job],
        durable: bool,
    ) -> Result<Vec<Output>, Fault> {
        // A durable commit flushes whatever went before it; if it fails, that still waits.
        let earlier = durable && self.take_unflushed();
        let result = Self::commit_jobs(db, jobs, durable);
        if (result.is_ok() && !durable) || (result.is_err() && earlier) {
            self.mark_unflushed();
        }
        result
    }

    fn commit_jobs(
        db: &dyn Fn() -> Result<Arc<Database>, Fault>,
        jobs: &[Job],
        durable: bool,
    ) -> Result<Vec<Output>, Fault> {
        let mut txn = db()?.begin_write()?;
        if !durable {
            txn.set_durability(Durability::None)?;
        }
        let outs = jobs
            .iter()
            .map(|job| {
                // A write that panics fails alone, like one that returns an error, instead of
                // leaving the writers it shares the commit with waiting.
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (job.work)(&txn)))
                    .unwrap_or_else(|_| {
                        Err(Fault::other(
                            "a write panicked; nothing of it was committed",
                        ))
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        txn.commit()?;
        Ok(outs)
    }
}

/// Makes every commit so far durable: an empty commit with a flush.
pub(super) fn flush(db: &Database) -> Result<(), Fault> {
    let txn = db.begin_write()?;
    Ok(txn.commit()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::{ReadableDatabase, TableDefinition};

    const T: TableDefinition<u64, u64> = TableDefinition::new("t");

    fn put(key: u64, fail: bool) -> Work {
        Box::new(move |txn| {
            txn.open_table(T)?.insert(key, key * 10)?;
            if fail {
                return Err(Fault::other(format!("write {key} refused")));
            }
            Ok(Box::new(key) as Output)
        })
    }

    #[test]
    fn concurrent_writes_share_commits_and_one_failure_spares_the_rest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Arc::new(Database::create(dir.path().join("c.redb")).expect("db"));
        let combiner = Arc::new(Combiner::default());
        let threads: Vec<_> = (0..16u64)
            .map(|key| {
                let (db, combiner) = (db.clone(), combiner.clone());
                std::thread::spawn(move || {
                    let open = move || Ok(db.clone());
                    combiner.run(&open, put(key, key == 7), key % 2 == 0)
                })
            })
            .collect();
        for (key, t) in threads.into_iter().enumerate() {
            let out = t.join().expect("thread");
            match key {
                7 => assert_eq!(out.err().map(|f| f.message), Some("write 7 refused".into())),
                _ => assert_eq!(
                    out.ok().and_then(|o| o.downcast::<u64>().ok()).map(|b| *b),
                    Some(key as u64)
                ),
            }
        }
        let txn = db.begin_read().expect("read");
        let table = txn.open_table(T).expect("table");
        for key in 0..16u64 {
            let got = table.get(key).expect("get").map(|v| v.value());
            assert_eq!(got, (key != 7).then_some(key * 10), "key {key}");
        }
    }
}
