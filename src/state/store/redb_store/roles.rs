//! The roles' async surface over the synchronous redb calls: a read of one record takes
//! microseconds and runs inline; a write commits (and may flush), and a scan reads as many
//! rows as there are (every member, every record of a fan-out), so both run on the blocking
//! pool and no caller on the runtime waits for a disk or a long loop.

use super::RedbStore;
use super::queueing::Queueing;
use crate::auth::dmarc_report::AggregateReport;
use crate::state::store::roles::{Members, Queue, Rates, Records, Spool};
use crate::state::store::{
    Delivery, Departure, Enqueued, Fault, Member, Pruned, QueueEntry, QueueHead, Retention,
    SeenWindow, Settled, SpoolEnvelope, SpoolId, SpoolMeta, SpoolState, StoreError,
};

impl RedbStore {
    /// Runs the write `work` on the blocking pool; inline on a thread that may block already
    /// (a synchronous caller waiting in [`crate::state::store::wait`]) or when no runtime runs.
    pub(super) async fn off_thread<T: Send + 'static>(
        &self,
        work: impl FnOnce(&RedbStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        if crate::state::store::blocking::may_block() {
            // A synchronous caller already on a thread that may block: no second hop.
            return work(self);
        }
        let store = self.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => self
                .writes
                .spawn_blocking_on(move || work(&store), &runtime)
                .await
                .map_err(|e| self.err(Fault::other(format!("a store write stopped: {e}"))))?,
            Err(_) => work(&store),
        }
    }
}

impl Spool for RedbStore {
    async fn spool(
        &self,
        envelope: SpoolEnvelope,
        message: Vec<u8>,
    ) -> Result<SpoolId, StoreError> {
        self.spool_to_writer(envelope, message).await
    }

    async fn list(&self) -> Result<Vec<SpoolMeta>, StoreError> {
        self.off_thread(|s| s.list_blocking()).await
    }

    async fn get(&self, id: SpoolId) -> Result<Option<(SpoolMeta, Vec<u8>)>, StoreError> {
        self.get_blocking(id)
    }

    async fn update(&self, meta: &SpoolMeta) -> Result<(), StoreError> {
        let meta = meta.clone();
        self.off_thread(move |s| s.update_blocking(&meta)).await
    }

    async fn raw_meta(&self, id: SpoolId) -> Result<Option<(String, usize)>, StoreError> {
        self.raw_meta_blocking(id)
    }

    async fn transition(&self, meta: &SpoolMeta, from: SpoolState) -> Result<bool, StoreError> {
        let meta = meta.clone();
        self.off_thread(move |s| s.transition_blocking(&meta, from))
            .await
    }
}

impl Members for RedbStore {
    async fn add_members(&self, list: &str, members: &[Member]) -> Result<usize, StoreError> {
        let (list, members) = (list.to_string(), members.to_vec());
        self.off_thread(move |s| s.add_members_blocking(&list, &members))
            .await
    }

    async fn seed_members(
        &self,
        list: &str,
        members: &[Member],
        again: bool,
    ) -> Result<Option<usize>, StoreError> {
        let (list, members) = (list.to_string(), members.to_vec());
        self.off_thread(move |s| s.seed_members_blocking(&list, &members, again))
            .await
    }

    async fn departure(&self, list: &str, address: &str) -> Result<Option<Departure>, StoreError> {
        self.departure_blocking(list, address)
    }

    async fn put_member(&self, list: &str, member: &Member) -> Result<(), StoreError> {
        let (list, member) = (list.to_string(), member.clone());
        self.off_thread(move |s| s.put_member_blocking(&list, &member))
            .await
    }

    async fn remove_member(
        &self,
        list: &str,
        address: &str,
        why: Departure,
    ) -> Result<bool, StoreError> {
        let (list, address) = (list.to_string(), address.to_string());
        self.off_thread(move |s| s.remove_member_blocking(&list, &address, why))
            .await
    }

    async fn put_alias(&self, alias: &str, targets: &[String]) -> Result<(), StoreError> {
        let (alias, targets) = (alias.to_string(), targets.to_vec());
        self.off_thread(move |s| s.put_alias_blocking(&alias, &targets))
            .await
    }

    async fn remove_alias(&self, alias: &str) -> Result<bool, StoreError> {
        let alias = alias.to_string();
        self.off_thread(move |s| s.remove_alias_blocking(&alias))
            .await
    }

    async fn aliases(&self) -> Result<Vec<(String, Vec<String>)>, StoreError> {
        self.off_thread(|s| s.aliases_blocking()).await
    }

    async fn members_after(
        &self,
        list: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<Member>, StoreError> {
        let (list, after) = (list.to_string(), after.to_string());
        self.off_thread(move |s| s.members_after_blocking(&list, &after, limit))
            .await
    }

    async fn member(&self, list: &str, address: &str) -> Result<Option<Member>, StoreError> {
        self.member_blocking(list, address)
    }

    async fn is_member(&self, list: &str, address: &str) -> Result<bool, StoreError> {
        self.is_member_blocking(list, address)
    }
}

impl Queue for RedbStore {
    async fn enqueue_post(
        &self,
        meta: &SpoolMeta,
        entry: QueueEntry,
        signed: &[u8],
        seven_bit: Option<&[u8]>,
        seen: Option<SeenWindow<'_>>,
    ) -> Result<Enqueued, StoreError> {
        let q = Queueing::new(meta, entry, signed, seven_bit, seen);
        self.off_thread(move |s| s.enqueue_post_blocking(q)).await
    }

    async fn queued_seven_bit(&self, id: SpoolId) -> Result<Option<Vec<u8>>, StoreError> {
        self.queued_seven_bit_blocking(id)
    }

    async fn enqueue_local(
        &self,
        meta: SpoolMeta,
        entry: QueueEntry,
        signed: &[u8],
    ) -> Result<SpoolId, StoreError> {
        let signed = signed.to_vec();
        self.off_thread(move |s| s.enqueue_local_blocking(meta, entry, &signed))
            .await
    }

    async fn deliveries(&self, id: SpoolId) -> Result<Vec<Delivery>, StoreError> {
        self.off_thread(move |s| s.deliveries_blocking(id)).await
    }

    async fn record_deliveries(
        &self,
        id: SpoolId,
        deliveries: &[Delivery],
    ) -> Result<(), StoreError> {
        let deliveries = deliveries.to_vec();
        self.off_thread(move |s| s.record_deliveries_blocking(id, &deliveries))
            .await
    }

    async fn queue(&self) -> Result<Vec<QueueEntry>, StoreError> {
        self.off_thread(|s| s.queue_blocking()).await
    }

    async fn queue_entry(&self, id: SpoolId) -> Result<Option<QueueEntry>, StoreError> {
        self.queue_entry_blocking(id)
    }

    async fn active(&self) -> Result<Vec<QueueHead>, StoreError> {
        self.active_blocking()
    }

    async fn settle(&self, id: SpoolId) -> Result<Settled, StoreError> {
        self.off_thread(move |s| s.settle_blocking(id)).await
    }

    async fn record_round(
        &self,
        id: SpoolId,
        deliveries: &[Delivery],
    ) -> Result<Settled, StoreError> {
        let deliveries = deliveries.to_vec();
        self.off_thread(move |s| s.record_round_blocking(id, &deliveries))
            .await
    }

    async fn queued(&self, id: SpoolId) -> Result<Option<(QueueEntry, Vec<u8>)>, StoreError> {
        self.queued_blocking(id)
    }
}

impl Records for RedbStore {
    async fn distributed(
        &self,
        list: &str,
        message_id: &str,
        since: u64,
    ) -> Result<Option<SpoolId>, StoreError> {
        self.distributed_blocking(list, message_id, since)
    }

    async fn forget_distributed(
        &self,
        before: u64,
        batch: usize,
    ) -> Result<(usize, bool), StoreError> {
        self.off_thread(move |s| s.forget_distributed_blocking(before, batch))
            .await
    }

    async fn put_dmarc_report(&self, report: &AggregateReport) -> Result<bool, StoreError> {
        let report = report.clone();
        self.off_thread(move |s| s.put_dmarc_report_blocking(&report))
            .await
    }

    async fn dmarc_reports(&self, since: u64) -> Result<Vec<AggregateReport>, StoreError> {
        self.off_thread(move |s| s.dmarc_reports_blocking(since))
            .await
    }

    async fn forget_dmarc_reports(
        &self,
        before: u64,
        batch: usize,
    ) -> Result<(usize, bool), StoreError> {
        self.off_thread(move |s| s.forget_dmarc_reports_blocking(before, batch))
            .await
    }

    async fn prune(&self, now: u64, keep: Retention, batch: usize) -> Result<Pruned, StoreError> {
        self.off_thread(move |s| s.prune_blocking(now, keep, batch))
            .await
    }

    async fn token_secret(&self) -> Result<Vec<u8>, StoreError> {
        if let Some(secret) = self.inner.token.get() {
            return Ok(secret.clone());
        }
        self.off_thread(|s| s.token_secret_blocking()).await
    }
}

impl Rates for RedbStore {
    async fn count_rates(&self, keys: &[(String, u64)]) -> Result<Vec<u64>, StoreError> {
        let keys = keys.to_vec();
        self.off_thread(move |s| s.count_rates_blocking(keys)).await
    }

    async fn forget_rates(&self, now: u64, batch: usize) -> Result<(usize, bool), StoreError> {
        self.off_thread(move |s| s.forget_rates_blocking(now, batch))
            .await
    }
}
