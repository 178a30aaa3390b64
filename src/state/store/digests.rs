//! The store's pending digests, on whichever backend it is (the role is `roles/digests.rs`).

use super::roles::Digests;
use super::{DigestIssue, SpoolId, Store, StoreError};

impl Store {
    /// Adds the list's copy of post `id` to `list`'s pending digest; kept until the digest
    /// that carries it is sent ([`Store::digest_sent`]).
    pub async fn add_to_digest(
        &self,
        list: &str,
        id: SpoolId,
        copy: &[u8],
    ) -> Result<(), StoreError> {
        match self {
            Store::Redb(s) => s.add_to_digest(list, id, copy).await,
            Store::Postgres(s) => s.add_to_digest(list, id, copy).await,
        }
    }

    /// The posts pending for `list`'s digest, oldest first: (post id, copy).
    pub async fn digest_pending(&self, list: &str) -> Result<Vec<(SpoolId, Vec<u8>)>, StoreError> {
        match self {
            Store::Redb(s) => s.digest_pending(list).await,
            Store::Postgres(s) => s.digest_pending(list).await,
        }
    }

    /// Removes the posts `ids` a digest carried and records it as `list`'s last `issue`, in
    /// one commit.
    pub async fn digest_sent(
        &self,
        list: &str,
        ids: &[SpoolId],
        issue: DigestIssue,
    ) -> Result<(), StoreError> {
        match self {
            Store::Redb(s) => s.digest_sent(list, ids, issue).await,
            Store::Postgres(s) => s.digest_sent(list, ids, issue).await,
        }
    }

    /// The last digest of `list` sent, if any.
    pub async fn digest_issue(&self, list: &str) -> Result<Option<DigestIssue>, StoreError> {
        match self {
            Store::Redb(s) => s.digest_issue(list).await,
            Store::Postgres(s) => s.digest_issue(list).await,
        }
    }
}
