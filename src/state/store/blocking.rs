//! The one bridge from synchronous code to the async store, for the callers not converted yet
//! (the list stages, forwarding and the server's reload run on the blocking pool, partly
//! because signing does). `grep -rn store::wait src` lists what is left to convert.

use std::cell::Cell;
use std::future::Future;

thread_local! {
    /// Set while this thread waits in [`wait`]: it may block, so the redb backend runs its
    /// writes here instead of handing them to another thread of the pool.
    static WAITING: Cell<bool> = const { Cell::new(false) };
}

/// Whether the current thread is one that may block (it waits in [`wait`]).
pub(crate) fn may_block() -> bool {
    WAITING.with(Cell::get)
}

/// Clears the flag again when [`wait`] returns or unwinds.
struct Waiting(bool);

impl Drop for Waiting {
    fn drop(&mut self) {
        WAITING.with(|w| w.set(self.0));
    }
}

/// Waits for a store call from synchronous code: a thread of the blocking pool
/// (`spawn_blocking`), a multi-thread runtime's worker (the CLI), or a thread outside any
/// runtime. Never call it from async code on a current-thread runtime: `.await` there.
pub fn wait<F: Future>(work: F) -> F::Output {
    let _was = Waiting(WAITING.with(|w| w.replace(true)));
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => match runtime.runtime_flavor() {
            // On a worker thread the runtime moves its other tasks away while this blocks;
            // on a thread of the blocking pool this only runs the closure.
            tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| runtime.block_on(work))
            }
            _ => runtime.block_on(work),
        },
        // No runtime (a synchronous test, a tool): a short one of its own.
        Err(_) => match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime.block_on(work),
            Err(e) => panic!("cannot start a runtime to wait for the store: {e}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::wait;
    use crate::state::store::{RedbStore, Store};

    fn store(dir: &tempfile::TempDir) -> Store {
        Store::from(RedbStore::open(&dir.path().join("store.redb")).expect("open"))
    }

    #[tokio::test]
    async fn a_synchronous_caller_on_the_blocking_pool_waits_for_the_store() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = store(&dir);
        // A current-thread runtime, as in the tests: the bridge must not need a second worker.
        let aliases = tokio::task::spawn_blocking(move || {
            wait(s.put_alias("a@x.example", &["b@y.example".into()])).expect("write");
            wait(s.aliases()).expect("read")
        })
        .await
        .expect("blocking task");
        assert_eq!(
            aliases,
            vec![("a@x.example".to_string(), vec!["b@y.example".to_string()])]
        );
    }

    #[test]
    fn a_caller_outside_any_runtime_waits_for_the_store() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = store(&dir);
        wait(s.put_alias("a@x.example", &["b@y.example".into()])).expect("write");
        assert!(wait(s.remove_alias("a@x.example")).expect("remove"));
        assert!(wait(s.aliases()).expect("read").is_empty());
    }
}
