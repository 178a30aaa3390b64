//! A list's archive for its owner: taking a post out for good, exporting the archive as
//! mboxrd, and importing a list's history from an mbox file (`docs/archive.md`).

use super::{Admin, AdminError, Result};
use crate::stages::list::archive::{export, import};
use crate::state::store::archive::{archive_id, is_archive_id, month_bounds};
use serde::{Deserialize, Serialize};

pub use import::ImportReport;

/// What a removal did.
#[derive(Debug, Serialize, Deserialize)]
pub struct ArchiveRemoved {
    /// The list.
    pub list: String,
    /// The post's archive id.
    pub id: String,
    /// False when it had been removed already.
    pub removed: bool,
}

impl Admin {
    /// Removes post `post` (its archive id, or its Message-ID) from `list`'s archive for
    /// good: its thread keeps a placeholder; the pages, the mbox and the search lose it.
    pub async fn archive_remove(&self, list: &str, post: &str) -> Result<ArchiveRemoved> {
        let list = self.known_list(list)?;
        let id = match is_archive_id(post) {
            true => post.to_string(),
            false if post.contains('@') => {
                let mid = post.trim().trim_start_matches('<').trim_end_matches('>');
                archive_id(&list, &format!("<{mid}>"))
            }
            false => {
                return Err(AdminError::bad(
                    "id",
                    format!("{post:?} is neither an archive id (16 hex digits) nor a Message-ID"),
                ));
            }
        };
        if self.store.archived(&list, &id).await?.is_none() {
            return Err(AdminError::NotFound(format!(
                "no post {post} in the archive of {list}"
            )));
        }
        let removed = self.store.remove_archived(&list, &id).await?;
        tracing::info!(%list, %id, removed, "post removed from the archive");
        Ok(ArchiveRemoved { list, id, removed })
    }

    /// `list`'s archive, or its month `YYYY-MM`, as mboxrd (removed posts left out).
    pub async fn archive_export(&self, list: &str, month: Option<&str>) -> Result<Vec<u8>> {
        let list = self.known_list(list)?;
        let bounds = match month {
            Some(m) => month_bounds(m).ok_or_else(|| {
                AdminError::bad("month", format!("{m:?} is not a month (YYYY-MM)"))
            })?,
            None => (0, u64::MAX),
        };
        let (file, _) = export::mbox_between(&self.store, &list, bounds, usize::MAX).await?;
        Ok(file)
    }

    /// Archives for `list` every post of the mbox `file`, each once by its Message-ID.
    pub async fn archive_import(&self, list: &str, file: &[u8]) -> Result<ImportReport> {
        let list = self.known_list(list)?;
        let report = import::import(&self.store, &list, file).await?;
        tracing::info!(%list, messages = report.messages, added = report.added, already = report.already, unreadable = report.unreadable_count, "archive import");
        Ok(report)
    }
}
