//! Pending digests in PostgreSQL (tables `digest_pending` and `digest_issues`, migration 2).

use super::{PgStore, int, parse, pg};
use crate::state::store::roles::Digests;
use crate::state::store::{DigestIssue, SpoolId, StoreError};

impl Digests for PgStore {
    async fn add_to_digest(&self, list: &str, id: SpoolId, copy: &[u8]) -> Result<(), StoreError> {
        let (list, id, copy) = (list.to_ascii_lowercase(), int(id), copy.to_vec());
        self.run(move |c| async move {
            c.execute(
                "INSERT INTO digest_pending (list, id, message) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING",
                &[&list, &id, &copy],
            )
            .await
            .map_err(pg)
            .map(drop)
        })
        .await
    }

    async fn digest_pending(&self, list: &str) -> Result<Vec<(SpoolId, Vec<u8>)>, StoreError> {
        let list = list.to_ascii_lowercase();
        self.run(move |c| async move {
            let rows = c
                .query(
                    "SELECT id, message FROM digest_pending WHERE list = $1 ORDER BY id",
                    &[&list],
                )
                .await
                .map_err(pg)?;
            Ok(rows
                .iter()
                .map(|r| (r.get::<_, i64>(0) as SpoolId, r.get::<_, Vec<u8>>(1)))
                .collect())
        })
        .await
    }

    async fn digest_sent(
        &self,
        list: &str,
        ids: &[SpoolId],
        issue: DigestIssue,
    ) -> Result<(), StoreError> {
        let list = list.to_ascii_lowercase();
        let ids: Vec<i64> = ids.iter().map(|id| int(*id)).collect();
        let json = serde_json::to_string(&issue).map_err(|e| self.err(e))?;
        self.run(move |mut c| async move {
            let tx = c.transaction().await.map_err(pg)?;
            tx.execute(
                "DELETE FROM digest_pending WHERE list = $1 AND id = ANY($2)",
                &[&list, &ids],
            )
            .await
            .map_err(pg)?;
            tx.execute(
                "INSERT INTO digest_issues (list, record) VALUES ($1, $2)
                 ON CONFLICT (list) DO UPDATE SET record = EXCLUDED.record",
                &[&list, &json],
            )
            .await
            .map_err(pg)?;
            tx.commit().await.map_err(pg)
        })
        .await
    }

    async fn digest_issue(&self, list: &str) -> Result<Option<DigestIssue>, StoreError> {
        let list = list.to_ascii_lowercase();
        self.run(move |c| async move {
            let row = c
                .query_opt("SELECT record FROM digest_issues WHERE list = $1", &[&list])
                .await
                .map_err(pg)?;
            row.map(|r| parse(r.get(0), "digest issue record"))
                .transpose()
        })
        .await
    }
}
