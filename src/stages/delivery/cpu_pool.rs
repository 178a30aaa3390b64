//! One thread per core for delivery's CPU work: making and signing each member's copy.
//!
//! On tokio's blocking pool every connection's batch had a thread of its own: a fan-out ran a
//! hundred signing threads on two cores. The kernel then left a core idle a twentieth of the
//! time while threads waited on the other core's queue, and every batch finished late because
//! all of them shared the cores at once. Here batches wait in order and each core works
//! through one at a time, so the earliest batch is ready first and no core waits while
//! there is signing to do.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

type Job = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    /// The pool is gone: threads finish what is queued, then end.
    closed: bool,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    ready: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // Jobs run outside the lock, so a panicking job cannot leave the queue half-changed.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A fixed set of threads running CPU-bound jobs in the order they were submitted.
pub struct CpuPool {
    shared: Arc<Shared>,
    threads: usize,
}

impl CpuPool {
    /// One thread per core the process may use.
    pub fn per_core() -> Self {
        Self::new(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    /// `threads` threads (at least one is tried). Should none start, jobs run where they are
    /// submitted: slower, but nothing waits for ever.
    pub fn new(threads: usize) -> Self {
        let shared = Arc::new(Shared::default());
        let mut started = 0;
        for i in 0..threads.max(1) {
            let s = shared.clone();
            match std::thread::Builder::new()
                .name(format!("arclist-cpu-{i}"))
                .spawn(move || work(&s))
            {
                Ok(_) => started += 1,
                Err(e) => tracing::error!(error = %e, "cannot start a delivery CPU thread"),
            }
        }
        CpuPool {
            shared,
            threads: started,
        }
    }

    /// Queues `f` at once and returns its result when it has run; `None` if it panicked.
    /// The work starts whether or not the returned future is awaited yet (so a connection can
    /// have its next batch made while it sends this one); it is skipped if the future was
    /// dropped before its turn.
    pub fn submit<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> impl Future<Output = Option<T>> + Send + 'static {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            // Nobody waits for it any more (the server stopped, the connection failed).
            if tx.is_closed() {
                return;
            }
            let _ = tx.send(f());
        });
        if self.threads == 0 {
            run(job);
        } else {
            self.shared.lock().jobs.push_back(job);
            self.shared.ready.notify_one();
        }
        async move { rx.await.ok() }
    }
}

impl Drop for CpuPool {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.ready.notify_all();
    }
}

fn work(shared: &Shared) {
    loop {
        let job = {
            let mut queue = shared.lock();
            loop {
                if let Some(job) = queue.jobs.pop_front() {
                    break job;
                }
                if queue.closed {
                    return;
                }
                queue = shared
                    .ready
                    .wait(queue)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        };
        run(job);
    }
}

/// Runs `job`; a panic loses only that job's result (its submitter sees `None`).
fn run(job: Job) {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
}

#[cfg(test)]
mod tests {
    use super::CpuPool;

    #[tokio::test]
    async fn jobs_run_in_order_and_a_panic_loses_only_its_own_result() {
        let pool = CpuPool::new(1);
        let order = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut pending = Vec::new();
        for i in 0..5 {
            let order = order.clone();
            pending.push(pool.submit(move || {
                order.lock().expect("lock").push(i);
                i * 2
            }));
        }
        let bad = pool.submit(|| -> u32 { panic!("a job that fails") });
        let after = pool.submit(|| 7);
        let mut got = Vec::new();
        for p in pending {
            got.push(p.await);
        }
        assert_eq!(got, vec![Some(0), Some(2), Some(4), Some(6), Some(8)]);
        assert_eq!(*order.lock().expect("lock"), vec![0, 1, 2, 3, 4]);
        assert_eq!(bad.await, None);
        assert_eq!(after.await, Some(7), "the thread survives a panicking job");
    }

    #[tokio::test]
    async fn work_starts_before_it_is_awaited() {
        let pool = CpuPool::new(2);
        let (tx, rx) = std::sync::mpsc::channel();
        let result = pool.submit(move || tx.send(()).is_ok());
        // Not awaited yet: the job runs anyway.
        assert!(
            rx.recv_timeout(std::time::Duration::from_secs(10)).is_ok(),
            "the job ran before its future was polled"
        );
        assert_eq!(result.await, Some(true));
    }
}
