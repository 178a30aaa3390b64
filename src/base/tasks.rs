//! The background work of one running server, so that stopping it is a fact, not a hope.
//!
//! Every task that holds a piece of the server (the store above all) is started through
//! [`Tasks`]. [`Tasks::stop`] cancels them and returns only once each one has been dropped,
//! including tasks inside a `JoinSet` (wrapped with [`Tasks::track`]) and blocking closures
//! already running on tokio's blocking pool ([`Tasks::spawn_blocking`]). Aborting a
//! `JoinHandle` does not give that guarantee: the aborted future is dropped later, on the
//! runtime's schedule, and a running blocking closure is never aborted at all. A stopped
//! server that still held the redb file made the next open fail with "Database already open".

use std::future::Future;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The tracked, cancellable tasks of one server. Clones share the same set.
#[derive(Clone, Default)]
pub struct Tasks {
    tracker: TaskTracker,
    stop: CancellationToken,
}

impl Tasks {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// `work`, made to end when the server stops and counted until it has been dropped. Use it
    /// for futures handed to a `JoinSet` or another executor; [`Tasks::spawn`] uses it too.
    pub fn track<T: Send + 'static>(
        &self,
        work: impl Future<Output = T> + Send + 'static,
    ) -> impl Future<Output = Option<T>> + Send + 'static {
        let stop = self.stop.clone();
        self.tracker.track_future(async move {
            tokio::select! {
                biased;
                () = stop.cancelled() => None,
                out = work => Some(out),
            }
        })
    }

    /// Runs `work` on the runtime until it ends or the server stops (then it yields `None`).
    pub fn spawn<T: Send + 'static>(
        &self,
        work: impl Future<Output = T> + Send + 'static,
    ) -> JoinHandle<Option<T>> {
        tokio::spawn(self.track(work))
    }

    /// Runs `work` to its end even when the server stops, and makes [`Tasks::stop`] wait for
    /// it. Only for work that ends by itself once the tasks feeding it are gone: the recorder
    /// of accepted recipients, say, whose last records would otherwise be lost at a graceful
    /// stop and those members sent the post twice.
    pub fn spawn_to_end<T: Send + 'static>(
        &self,
        work: impl Future<Output = T> + Send + 'static,
    ) -> JoinHandle<T> {
        self.tracker.spawn(work)
    }

    /// Runs blocking `work` (a store transaction, say) on the blocking pool; [`Tasks::stop`]
    /// waits for it to finish, since a running closure cannot be cut short.
    pub fn spawn_blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> JoinHandle<T> {
        self.tracker.spawn_blocking(work)
    }

    /// Whether [`Tasks::stop`] has been called.
    pub fn is_stopping(&self) -> bool {
        self.stop.is_cancelled()
    }

    /// Resolves when [`Tasks::stop`] is called.
    pub async fn stopping(&self) {
        self.stop.cancelled().await;
    }

    /// Cancels every task and waits until each has been dropped (and each blocking closure
    /// has returned), so that whatever they held is released when this returns.
    pub async fn stop(&self) {
        self.stop.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn stop_returns_only_after_every_holder_let_go() {
        let tasks = Tasks::new();
        let held = Arc::new(());
        // A task parked forever, one in a JoinSet, and a blocking closure still running.
        let h = held.clone();
        tasks.spawn(async move {
            let _h = h;
            std::future::pending::<()>().await;
        });
        let mut set = tokio::task::JoinSet::new();
        let h = held.clone();
        set.spawn(tasks.track(async move {
            let _h = h;
            std::future::pending::<()>().await;
        }));
        let h = held.clone();
        let (started, running) = std::sync::mpsc::channel();
        tasks.spawn_blocking(move || {
            let _h = h;
            let _ = started.send(());
            std::thread::sleep(Duration::from_millis(50));
        });
        let _ = running.recv();
        drop(set);
        tasks.stop().await;
        assert_eq!(Arc::strong_count(&held), 1, "every task dropped its handle");
        assert!(tasks.is_stopping());
    }
}
