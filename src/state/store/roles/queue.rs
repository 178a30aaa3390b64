//! The queue: signed copies, their recipients' records, and the rounds that settle them.

use crate::state::store::{
    Delivery, Enqueued, QueueEntry, QueueHead, SeenWindow, Settled, SpoolId, SpoolMeta, StoreError,
};

/// A backend's queue (see [`crate::state::store::Store::enqueue`] and its neighbours for the
/// contract).
pub(crate) trait Queue {
    /// Queues a signed message and writes its spool metadata, atomically, with a list post's
    /// 7-bit twin and Message-ID (when given) in the same commit; writes nothing when another
    /// post of the list has that Message-ID within the window.
    async fn enqueue_post(
        &self,
        meta: &SpoolMeta,
        entry: QueueEntry,
        signed: &[u8],
        seven_bit: Option<&[u8]>,
        seen: Option<SeenWindow<'_>>,
    ) -> Result<Enqueued, StoreError>;
    /// The 7-bit twin of queued post `id`.
    async fn queued_seven_bit(&self, id: SpoolId) -> Result<Option<Vec<u8>>, StoreError>;
    /// Spools and queues a message arclist wrote itself, in one commit; returns its id.
    async fn enqueue_local(
        &self,
        meta: SpoolMeta,
        entry: QueueEntry,
        signed: &[u8],
    ) -> Result<SpoolId, StoreError>;
    /// Every live recipient record of queued message `id`.
    async fn deliveries(&self, id: SpoolId) -> Result<Vec<Delivery>, StoreError>;
    /// Writes recipient records of queued message `id`.
    async fn record_deliveries(
        &self,
        id: SpoolId,
        deliveries: &[Delivery],
    ) -> Result<(), StoreError>;
    /// Every queued post still kept, without its recipients.
    async fn queue(&self) -> Result<Vec<QueueEntry>, StoreError>;
    /// One queued post's entry, with its recipients, without the signed bytes.
    async fn queue_entry(&self, id: SpoolId) -> Result<Option<QueueEntry>, StoreError>;
    /// The hot queue, oldest first.
    async fn active(&self) -> Result<Vec<QueueHead>, StoreError>;
    /// Recounts post `id`'s waiting recipients, or compacts it once none is left.
    async fn settle(&self, id: SpoolId) -> Result<Settled, StoreError>;
    /// `record_deliveries` and then `settle`, in one commit.
    async fn record_round(
        &self,
        id: SpoolId,
        deliveries: &[Delivery],
    ) -> Result<Settled, StoreError>;
    /// One queued post (without its recipients) and its signed bytes.
    async fn queued(&self, id: SpoolId) -> Result<Option<(QueueEntry, Vec<u8>)>, StoreError>;
}
