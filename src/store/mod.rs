//! Stage 2 (spool) and, later, the outbound queue: everything arclist must not lose.
//!
//! A message is committed durably before the SMTP `250`; from then on a crash may delay it,
//! never lose it. The store sits behind the [`Store`] trait so a shared PostgreSQL backend can
//! come later; [`RedbStore`] is the embedded one.

mod redb_store;

pub use redb_store::RedbStore;

use serde::{Deserialize, Serialize};
use std::future::Future;
use std::net::IpAddr;

/// Identifies a spooled message.
pub type SpoolId = u64;

/// How a message arrived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpoolEnvelope {
    /// MAIL FROM (empty for the null sender).
    pub mail_from: String,
    /// Accepted RCPT TO addresses.
    pub rcpt_to: Vec<String>,
    /// The client's address.
    pub client_ip: IpAddr,
    /// The client's EHLO/HELO/LHLO name.
    pub helo: String,
    /// `SMTP`, `ESMTP`, `ESMTPS` (TLS) or `LMTP`.
    pub protocol: String,
    /// The TLS version and cipher, when the session used TLS.
    pub tls: Option<String>,
    /// Unix time of acceptance.
    pub received_at: u64,
}

/// Where a spooled message is on its way through arclist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpoolState {
    /// Accepted, not yet authenticated.
    Received,
    /// Authenticated; its results are recorded.
    Authenticated,
}

/// A spooled message's metadata.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpoolMeta {
    /// Its id.
    pub id: SpoolId,
    /// The envelope.
    pub envelope: SpoolEnvelope,
    /// Where it stands.
    pub state: SpoolState,
    /// Size of the raw message in bytes.
    pub size: usize,
    /// Our Authentication-Results, once authenticated.
    pub auth_results: Option<String>,
    /// Temporary failures so far (DNS), for backoff.
    pub attempts: u32,
}

/// Why the store could not do something.
#[derive(Debug, thiserror::Error)]
#[error("store {path}: {message}")]
pub struct StoreError {
    /// The store file.
    pub path: String,
    /// What failed.
    pub message: String,
}

/// The durable store.
pub trait Store: Send + Sync + 'static {
    /// Commits the message and its envelope durably and returns its id. Only after this
    /// returns `Ok` may the listener answer `250`.
    fn spool(
        &self,
        envelope: SpoolEnvelope,
        message: Vec<u8>,
    ) -> impl Future<Output = Result<SpoolId, StoreError>> + Send;
    /// Every spooled message's metadata, oldest first.
    fn list(&self) -> Result<Vec<SpoolMeta>, StoreError>;
    /// One message's metadata and raw bytes.
    fn get(&self, id: SpoolId) -> Result<Option<(SpoolMeta, Vec<u8>)>, StoreError>;
    /// Replaces a message's metadata (state, results, attempts).
    fn update(&self, meta: &SpoolMeta) -> Result<(), StoreError>;
}
