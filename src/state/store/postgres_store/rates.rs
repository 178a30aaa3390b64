//! Rate counters in the shared database: one row a key, counted up in one statement so two
//! nodes counting the same key at once both see it (the row lock orders them).

use super::{PgStore, int, pg};
use crate::state::store::StoreError;
use crate::state::store::roles::Rates;

impl Rates for PgStore {
    async fn count_rates(&self, keys: &[(String, u64)]) -> Result<Vec<u64>, StoreError> {
        let names: Vec<String> = keys.iter().map(|(k, _)| k.clone()).collect();
        let expiries: Vec<i64> = keys.iter().map(|(_, e)| int(*e)).collect();
        let rows = self
            .run(move |c| async move {
                c.query(
                    "INSERT INTO rate_counters (key, count, expires)
                     SELECT k, 1, e FROM unnest($1::text[], $2::bigint[]) AS t(k, e)
                     ON CONFLICT (key) DO UPDATE SET count = rate_counters.count + 1
                     RETURNING key, count",
                    &[&names, &expiries],
                )
                .await
                .map_err(pg)
            })
            .await?;
        let counted: std::collections::HashMap<String, i64> = rows
            .iter()
            .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1)))
            .collect();
        Ok(keys
            .iter()
            .map(|(k, _)| counted.get(k).map_or(0, |n| u64::try_from(*n).unwrap_or(0)))
            .collect())
    }

    async fn forget_rates(&self, now: u64, batch: usize) -> Result<(usize, bool), StoreError> {
        self.forget_before("rate_counters", "expires", now, batch)
            .await
    }
}
