//! The spool: messages committed before `250`, and their metadata as they go through.

use crate::state::store::{SpoolEnvelope, SpoolId, SpoolMeta, SpoolState, StoreError};
use std::future::Future;

/// A backend's spool (see [`crate::state::store::Store::spool`] and its neighbours for the contract).
pub(crate) trait Spool {
    /// Commits the message and its envelope durably and returns its id.
    fn spool(
        &self,
        envelope: SpoolEnvelope,
        message: Vec<u8>,
    ) -> impl Future<Output = Result<SpoolId, StoreError>> + Send;
    /// Every spooled message's metadata, oldest first.
    async fn list(&self) -> Result<Vec<SpoolMeta>, StoreError>;
    /// One message's metadata and raw bytes.
    async fn get(&self, id: SpoolId) -> Result<Option<(SpoolMeta, Vec<u8>)>, StoreError>;
    /// Replaces a message's metadata.
    async fn update(&self, meta: &SpoolMeta) -> Result<(), StoreError>;
    /// Message `id`'s metadata as stored, not decoded, and the size of its bytes.
    async fn raw_meta(&self, id: SpoolId) -> Result<Option<(String, usize)>, StoreError>;
    /// Replaces a message's metadata only if its stored state is still `from`.
    async fn transition(&self, meta: &SpoolMeta, from: SpoolState) -> Result<bool, StoreError>;
}
