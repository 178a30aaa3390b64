//! The list archive: posts kept as members got them, with the indexes the pages, the feeds
//! and the search read, and the marks of posts still to archive.

use crate::state::store::archive::{ArchivedPost, ArchivedRow};
use crate::state::store::{SpoolId, StoreError};

/// A backend's archive (see [`crate::state::store::Store::archive_post`] and its neighbours for
/// the contract). Lists come lower-cased.
pub(crate) trait Archive {
    /// Keeps each row's post (its `parent` and `thread` found), its bytes, its search words
    /// and, for the first post of a subject, the subject key's thread, and clears its spool
    /// mark, all in one commit. Each answer is false (and nothing written for it) when the
    /// list has its id already.
    async fn put_archived(&self, rows: &[ArchivedRow]) -> Result<Vec<bool>, StoreError>;
    /// One post's record.
    async fn archived(&self, list: &str, id: &str) -> Result<Option<ArchivedPost>, StoreError>;
    /// One post's bytes.
    async fn archived_raw(&self, list: &str, id: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Posts dated in `from..to`, by (date, id), after `after`, at most `limit`.
    async fn archived_between(
        &self,
        list: &str,
        from: u64,
        to: u64,
        after: Option<(u64, String)>,
        limit: usize,
    ) -> Result<Vec<ArchivedPost>, StoreError>;
    /// The newest `limit` posts, newest first.
    async fn archived_newest(
        &self,
        list: &str,
        limit: usize,
    ) -> Result<Vec<ArchivedPost>, StoreError>;
    /// A thread's posts by date, at most `limit`.
    async fn archived_thread(
        &self,
        list: &str,
        thread: &str,
        limit: usize,
    ) -> Result<Vec<ArchivedPost>, StoreError>;
    /// The thread a subject key started.
    async fn archived_thread_by_subject(
        &self,
        list: &str,
        key: &str,
    ) -> Result<Option<String>, StoreError>;
    /// The months with posts, newest first, with their counts.
    async fn archived_months(&self, list: &str) -> Result<Vec<(String, u64)>, StoreError>;
    /// Posts with every one of `words`, not removed, newest first, at most `limit`.
    async fn archived_search(
        &self,
        list: &str,
        words: &[String],
        limit: usize,
    ) -> Result<Vec<ArchivedPost>, StoreError>;
    /// Removes a post's bytes, words, subject and author, keeping its placeholder.
    async fn remove_archived(&self, list: &str, id: &str) -> Result<bool, StoreError>;
    /// Marks a spooled post as to be archived.
    async fn mark_to_archive(&self, list: &str, spool: SpoolId) -> Result<(), StoreError>;
    /// The marked posts, oldest first, at most `limit`.
    async fn to_archive(&self, limit: usize) -> Result<Vec<(String, SpoolId)>, StoreError>;
    /// Clears a mark.
    async fn archived_done(&self, list: &str, spool: SpoolId) -> Result<(), StoreError>;
}
