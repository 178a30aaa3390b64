//! The store the server file names: a redb file, or a PostgreSQL database shared by nodes.

use super::{
    Delivery, Departure, Member, PgStore, Pruned, QueueEntry, QueueHead, RedbStore, Retention,
    Settled, SpoolEnvelope, SpoolId, SpoolMeta, SpoolState, Store, StoreError,
};
use crate::config::ServerConfig;

/// Either backend, behind one [`Store`].
#[derive(Clone)]
pub enum AnyStore {
    /// One embedded file, one process.
    Redb(RedbStore),
    /// A database several nodes share.
    Postgres(PgStore),
}

/// Runs `$call` on whichever backend `$store` is.
macro_rules! each {
    ($store:expr, $s:ident => $call:expr) => {
        match $store {
            AnyStore::Redb($s) => $call,
            AnyStore::Postgres($s) => $call,
        }
    };
}

impl AnyStore {
    /// Opens the store `server.store` names (a `postgresql://` URL or a file), bringing a
    /// database's schema up to date.
    pub fn open(server: &ServerConfig) -> Result<AnyStore, StoreError> {
        match server.store_url() {
            Some(url) => PgStore::open(url, &server.hostname, &server.cluster).map(Self::Postgres),
            None => RedbStore::open(&server.store).map(Self::Redb),
        }
    }

    /// Rows read since the store was opened (spool, queue, delivery records): what tests and
    /// benchmarks use to show that idle work does not grow with history.
    pub fn rows_read(&self) -> u64 {
        each!(self, s => s.rows_read())
    }

    /// The embedded store, when that is the one.
    pub fn as_redb(&self) -> Option<&RedbStore> {
        match self {
            AnyStore::Redb(s) => Some(s),
            AnyStore::Postgres(_) => None,
        }
    }
}

impl Store for AnyStore {
    async fn spool(
        &self,
        envelope: SpoolEnvelope,
        message: Vec<u8>,
    ) -> Result<SpoolId, StoreError> {
        each!(self, s => s.spool(envelope, message).await)
    }
    fn list(&self) -> Result<Vec<SpoolMeta>, StoreError> {
        each!(self, s => s.list())
    }
    fn get(&self, id: SpoolId) -> Result<Option<(SpoolMeta, Vec<u8>)>, StoreError> {
        each!(self, s => s.get(id))
    }
    fn raw_meta(&self, id: SpoolId) -> Result<Option<(String, usize)>, StoreError> {
        each!(self, s => s.raw_meta(id))
    }
    fn update(&self, meta: &SpoolMeta) -> Result<(), StoreError> {
        each!(self, s => s.update(meta))
    }
    fn transition(&self, meta: &SpoolMeta, from: SpoolState) -> Result<bool, StoreError> {
        each!(self, s => s.transition(meta, from))
    }
    fn add_member(&self, list: &str, member: &Member) -> Result<bool, StoreError> {
        each!(self, s => s.add_member(list, member))
    }
    fn add_members(&self, list: &str, members: &[Member]) -> Result<usize, StoreError> {
        each!(self, s => s.add_members(list, members))
    }
    fn seed_members(
        &self,
        list: &str,
        members: &[Member],
        again: bool,
    ) -> Result<Option<usize>, StoreError> {
        each!(self, s => s.seed_members(list, members, again))
    }
    fn departure(&self, list: &str, address: &str) -> Result<Option<Departure>, StoreError> {
        each!(self, s => s.departure(list, address))
    }
    fn put_member(&self, list: &str, member: &Member) -> Result<(), StoreError> {
        each!(self, s => s.put_member(list, member))
    }
    fn remove_member(&self, list: &str, address: &str, why: Departure) -> Result<bool, StoreError> {
        each!(self, s => s.remove_member(list, address, why))
    }
    fn put_alias(&self, alias: &str, targets: &[String]) -> Result<(), StoreError> {
        each!(self, s => s.put_alias(alias, targets))
    }
    fn remove_alias(&self, alias: &str) -> Result<bool, StoreError> {
        each!(self, s => s.remove_alias(alias))
    }
    fn aliases(&self) -> Result<Vec<(String, Vec<String>)>, StoreError> {
        each!(self, s => s.aliases())
    }
    fn members(&self, list: &str) -> Result<Vec<Member>, StoreError> {
        each!(self, s => s.members(list))
    }
    fn members_after(
        &self,
        list: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<Member>, StoreError> {
        each!(self, s => s.members_after(list, after, limit))
    }
    fn member(&self, list: &str, address: &str) -> Result<Option<Member>, StoreError> {
        each!(self, s => s.member(list, address))
    }
    fn is_member(&self, list: &str, address: &str) -> Result<bool, StoreError> {
        each!(self, s => s.is_member(list, address))
    }
    fn enqueue(
        &self,
        meta: &SpoolMeta,
        entry: &QueueEntry,
        signed: &[u8],
    ) -> Result<(), StoreError> {
        each!(self, s => s.enqueue(meta, entry, signed))
    }
    fn enqueue_post(
        &self,
        meta: &SpoolMeta,
        entry: &QueueEntry,
        signed: &[u8],
        seven_bit: Option<&[u8]>,
        message_id: Option<&str>,
    ) -> Result<(), StoreError> {
        each!(self, s => s.enqueue_post(meta, entry, signed, seven_bit, message_id))
    }
    fn queued_seven_bit(&self, id: SpoolId) -> Result<Option<Vec<u8>>, StoreError> {
        each!(self, s => s.queued_seven_bit(id))
    }
    fn enqueue_local(
        &self,
        meta: SpoolMeta,
        entry: QueueEntry,
        signed: &[u8],
    ) -> Result<SpoolId, StoreError> {
        each!(self, s => s.enqueue_local(meta, entry, signed))
    }
    fn deliveries(&self, id: SpoolId) -> Result<Vec<Delivery>, StoreError> {
        each!(self, s => s.deliveries(id))
    }
    fn record_deliveries(&self, id: SpoolId, deliveries: &[Delivery]) -> Result<(), StoreError> {
        each!(self, s => s.record_deliveries(id, deliveries))
    }
    fn token_secret(&self) -> Result<Vec<u8>, StoreError> {
        each!(self, s => s.token_secret())
    }
    fn queue(&self) -> Result<Vec<QueueEntry>, StoreError> {
        each!(self, s => s.queue())
    }
    fn queue_entry(&self, id: SpoolId) -> Result<Option<QueueEntry>, StoreError> {
        each!(self, s => s.queue_entry(id))
    }
    fn outcomes(&self, id: SpoolId) -> Result<Vec<Delivery>, StoreError> {
        each!(self, s => s.outcomes(id))
    }
    fn active(&self) -> Result<Vec<QueueHead>, StoreError> {
        each!(self, s => s.active())
    }
    fn settle(&self, id: SpoolId) -> Result<Settled, StoreError> {
        each!(self, s => s.settle(id))
    }
    fn record_round(&self, id: SpoolId, deliveries: &[Delivery]) -> Result<Settled, StoreError> {
        each!(self, s => s.record_round(id, deliveries))
    }
    fn prune(&self, now: u64, keep: Retention, batch: usize) -> Result<Pruned, StoreError> {
        each!(self, s => s.prune(now, keep, batch))
    }
    async fn queued_signal(&self) {
        each!(self, s => s.queued_signal().await)
    }
    fn distributed(
        &self,
        list: &str,
        message_id: &str,
        since: u64,
    ) -> Result<Option<SpoolId>, StoreError> {
        each!(self, s => s.distributed(list, message_id, since))
    }
    fn forget_distributed(&self, before: u64, batch: usize) -> Result<(usize, bool), StoreError> {
        each!(self, s => s.forget_distributed(before, batch))
    }
    fn put_dmarc_report(
        &self,
        report: &crate::auth::dmarc_report::AggregateReport,
    ) -> Result<bool, StoreError> {
        each!(self, s => s.put_dmarc_report(report))
    }
    fn dmarc_reports(
        &self,
        since: u64,
    ) -> Result<Vec<crate::auth::dmarc_report::AggregateReport>, StoreError> {
        each!(self, s => s.dmarc_reports(since))
    }
    fn forget_dmarc_reports(&self, before: u64, batch: usize) -> Result<(usize, bool), StoreError> {
        each!(self, s => s.forget_dmarc_reports(before, batch))
    }
    fn nudge(&self) {
        each!(self, s => s.nudge())
    }
    fn queued(&self, id: SpoolId) -> Result<Option<(QueueEntry, Vec<u8>)>, StoreError> {
        each!(self, s => s.queued(id))
    }
    fn claim_due(&self, id: SpoolId, now: u64) -> Result<Vec<Delivery>, StoreError> {
        each!(self, s => s.claim_due(id, now))
    }
    fn release_claims(&self, id: SpoolId, addresses: &[String]) -> Result<(), StoreError> {
        each!(self, s => s.release_claims(id, addresses))
    }
    fn take_unfinished(&self) -> Result<Vec<SpoolId>, StoreError> {
        each!(self, s => s.take_unfinished())
    }
    fn shared(&self) -> Option<std::time::Duration> {
        each!(self, s => s.shared())
    }
    fn once(&self, job: &str, period: u64) -> Result<bool, StoreError> {
        each!(self, s => s.once(job, period))
    }
}
