//! The posts waiting for a list's digest, and the digest's issue numbers.

use crate::state::store::{DigestIssue, SpoolId, StoreError};

/// A backend's pending digests (see [`crate::state::store::Store::add_to_digest`] and its
/// neighbours for the contract). A pending post lives until the digest that carries it is
/// sent; nothing else removes it, so a restart loses none.
pub(crate) trait Digests {
    /// Adds the list's copy of post `id` to `list`'s pending digest (again: no change).
    async fn add_to_digest(&self, list: &str, id: SpoolId, copy: &[u8]) -> Result<(), StoreError>;
    /// The posts pending for `list`'s digest, oldest first: (post id, copy).
    async fn digest_pending(&self, list: &str) -> Result<Vec<(SpoolId, Vec<u8>)>, StoreError>;
    /// Removes `ids` from `list`'s pending digest and records `issue` as the last one sent,
    /// in one commit.
    async fn digest_sent(
        &self,
        list: &str,
        ids: &[SpoolId],
        issue: DigestIssue,
    ) -> Result<(), StoreError>;
    /// The last digest of `list` sent, if any.
    async fn digest_issue(&self, list: &str) -> Result<Option<DigestIssue>, StoreError>;
}
