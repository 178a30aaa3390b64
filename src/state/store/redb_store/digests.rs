//! Pending digests in the redb store: each post's list copy under `list\nID` (the id zero
//! padded, so a list's posts sort oldest first), and each list's last issue.

use super::RedbStore;
use crate::state::store::roles::Digests;
use crate::state::store::{DigestIssue, Fault, SpoolId, StoreError};
use redb::{ReadableDatabase, TableDefinition};

/// A post's list copy waiting for its list's digest, by `list\nID`.
pub(super) const PENDING: TableDefinition<&str, &[u8]> = TableDefinition::new("digest_pending");
/// Each list's last digest issue sent, as JSON.
pub(super) const ISSUES: TableDefinition<&str, &str> = TableDefinition::new("digest_issues");

fn key(list: &str, id: SpoolId) -> String {
    format!("{}\n{id:020}", list.to_ascii_lowercase())
}

/// Adds post `id`'s list copy to `list`'s pending digest, in `txn`.
pub(super) fn add_in(
    txn: &redb::WriteTransaction,
    list: &str,
    id: SpoolId,
    copy: &[u8],
) -> Result<(), Fault> {
    txn.open_table(PENDING)?
        .insert(key(list, id).as_str(), copy)?;
    Ok(())
}

impl Digests for RedbStore {
    async fn add_to_digest(&self, list: &str, id: SpoolId, copy: &[u8]) -> Result<(), StoreError> {
        let (list, copy) = (list.to_string(), copy.to_vec());
        self.off_thread(move |s| s.write(|txn| add_in(txn, &list, id, &copy)))
            .await
    }

    async fn digest_pending(&self, list: &str) -> Result<Vec<(SpoolId, Vec<u8>)>, StoreError> {
        let prefix = format!("{}\n", list.to_ascii_lowercase());
        self.off_thread(move |s| {
            let txn = s.db()?.begin_read().map_err(|e| s.err(e))?;
            let table = txn.open_table(PENDING).map_err(|e| s.err(e))?;
            let mut out = Vec::new();
            for row in table.range(prefix.as_str()..).map_err(|e| s.err(e))? {
                let (k, v) = row.map_err(|e| s.err(e))?;
                let Some(id) = k.value().strip_prefix(prefix.as_str()) else {
                    break;
                };
                let id = id
                    .parse()
                    .map_err(|_| s.err(Fault::corrupt(format!("digest key {:?}", k.value()))))?;
                out.push((id, v.value().to_vec()));
            }
            Ok(out)
        })
        .await
    }

    async fn digest_sent(
        &self,
        list: &str,
        ids: &[SpoolId],
        issue: DigestIssue,
    ) -> Result<(), StoreError> {
        let keys: Vec<String> = ids.iter().map(|id| key(list, *id)).collect();
        let list = list.to_ascii_lowercase();
        let json = serde_json::to_string(&issue).map_err(|e| self.err(e))?;
        self.off_thread(move |s| {
            s.write(|txn| {
                let mut pending = txn.open_table(PENDING)?;
                for k in &keys {
                    pending.remove(k.as_str())?;
                }
                txn.open_table(ISSUES)?
                    .insert(list.as_str(), json.as_str())?;
                Ok(())
            })
        })
        .await
    }

    async fn digest_issue(&self, list: &str) -> Result<Option<DigestIssue>, StoreError> {
        let txn = self.db()?.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(ISSUES).map_err(|e| self.err(e))?;
        let Some(json) = table
            .get(list.to_ascii_lowercase().as_str())
            .map_err(|e| self.err(e))?
        else {
            return Ok(None);
        };
        serde_json::from_str(json.value())
            .map(Some)
            .map_err(|e| self.err(Fault::corrupt(format!("corrupt digest issue record: {e}"))))
    }
}
