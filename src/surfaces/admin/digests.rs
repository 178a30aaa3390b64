//! Sending a list's digest now (`arclist digest send LIST`).

use super::{Admin, AdminError, Result};
use crate::stages::list::digest::{self, Sent};

impl Admin {
    /// Sends what is pending for `list`'s digest now, to its digest members.
    pub async fn send_digest(&self, list: &str) -> Result<Sent> {
        let list = self.known_list(list)?;
        let runtime = self.lists.get(&list).ok_or_else(|| {
            AdminError::Unavailable(format!("{list} is not served (its key did not load)"))
        })?;
        let store = self.store.clone();
        let now = crate::auth::unix_now();
        let sent = self
            .blocking(move || digest::send(&store, &runtime, now))
            .await?
            .map_err(AdminError::Unavailable)?;
        tracing::info!(%list, posts = sent.posts, issue = ?sent.issue, "digest sent by an operator");
        Ok(sent)
    }
}
