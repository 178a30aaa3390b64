//! The members' digests on schedule: every five minutes, each list whose digest is due
//! ([`crate::stages::list::digest::due`]: its hour has come, or the pending posts are past its
//! size) sends it, on one node of a cluster (the store's once-per-period jobs).

use crate::base::tasks::Tasks;
use crate::stages::list::{Lists, digest};
use crate::state::store::Store;
use std::sync::Arc;
use std::time::Duration;

/// How often due digests are looked for.
const EVERY: u64 = 300;

/// Sends due digests until the server stops.
pub async fn run(store: Arc<Store>, lists: Lists, tasks: Tasks) {
    loop {
        let now = crate::auth::unix_now();
        let next = (now / EVERY + 1) * EVERY;
        tokio::time::sleep(Duration::from_secs(next - now)).await;
        if tasks.is_stopping() {
            return;
        }
        for list in lists.all() {
            let address = list.config.address.clone();
            let (s, l) = (store.clone(), list.clone());
            let due = tasks
                .spawn_blocking(move || digest::due(&s, &l, next))
                .await;
            match due {
                Ok(Ok(true)) => {}
                Ok(Ok(false)) => continue,
                Ok(Err(e)) => {
                    tracing::error!(list = %address, error = %e, "cannot tell whether the digest is due");
                    continue;
                }
                Err(_) => return,
            }
            // On a shared store, one node sends a list's digest in each period.
            match store.once(&format!("digest {address}"), next / EVERY).await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    tracing::error!(list = %address, error = %e, "cannot tell whether this node sends the digest; skipping it this time");
                    continue;
                }
            }
            let s = store.clone();
            match tasks
                .spawn_blocking(move || digest::send(&s, &list, next))
                .await
            {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::error!(list = %address, error = %e, "cannot send the digest")
                }
                Err(_) => return,
            }
        }
    }
}
