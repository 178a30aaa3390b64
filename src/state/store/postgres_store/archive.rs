//! The list archive in the shared database (migration 2): every node serves the same posts,
//! threads and search, since the index is rows beside the posts, written in the post's own
//! transaction.

use super::{Conn, PgStore, int, parse, pg};
use crate::state::store::archive::{ArchivedPost, ArchivedRow, month_of};
use crate::state::store::roles::Archive;
use crate::state::store::{Fault, SpoolId, StoreError};

/// The records in `rows` (column 0 holds the JSON).
fn records(rows: &[tokio_postgres::Row]) -> Result<Vec<ArchivedPost>, Fault> {
    rows.iter()
        .map(|r| parse(r.get::<_, &str>(0), "archive record"))
        .collect()
}

/// A limit as the database's BIGINT.
fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Writes new posts and their indexes in one transaction; false for each whose id is there
/// already.
async fn insert_all(c: &mut Conn, rows: &[ArchivedRow]) -> Result<Vec<bool>, Fault> {
    let tx = c.transaction().await.map_err(pg)?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(insert(&tx, &r.post, &r.raw, &r.words, &r.subject_key).await?);
    }
    tx.commit().await.map_err(pg)?;
    Ok(out)
}

/// Writes a new post and its indexes in `tx`; false when its id is there already.
async fn insert(
    tx: &deadpool_postgres::Transaction<'_>,
    post: &ArchivedPost,
    raw: &[u8],
    words: &[String],
    subject_key: &str,
) -> Result<bool, Fault> {
    let (list, id, date) = (&post.list, &post.id, int(post.date));
    if let Some(spool) = post.spool_id {
        tx.execute(
            "DELETE FROM archive_pending WHERE spool = $1 AND list = $2",
            &[&int(spool), list],
        )
        .await
        .map_err(pg)?;
    }
    let record = serde_json::to_string(post)?;
    let added = tx
        .execute(
            "INSERT INTO archive_posts (list, id, date, thread, removed, record, raw)
             VALUES ($1, $2, $3, $4, FALSE, $5, $6) ON CONFLICT DO NOTHING",
            &[list, id, &date, &post.thread, &record, &raw],
        )
        .await
        .map_err(pg)?;
    if added == 1 {
        tx.execute(
            "INSERT INTO archive_words (list, word, date, id)
             SELECT $1, w, $3, $4 FROM unnest($2::TEXT[]) AS w ON CONFLICT DO NOTHING",
            &[list, &words, &date, id],
        )
        .await
        .map_err(pg)?;
        if !subject_key.is_empty() {
            tx.execute(
                "INSERT INTO archive_subjects (list, subject, thread) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING",
                &[list, &subject_key, &post.thread],
            )
            .await
            .map_err(pg)?;
        }
        tx.execute(
            "INSERT INTO archive_months (list, month, posts) VALUES ($1, $2, 1)
             ON CONFLICT (list, month) DO UPDATE SET posts = archive_months.posts + 1",
            &[list, &month_of(post.date)],
        )
        .await
        .map_err(pg)?;
    }
    Ok(added == 1)
}

/// Takes a post's bytes, words, subject and author out, keeping its placeholder.
async fn remove(c: &mut Conn, list: &str, id: &str) -> Result<bool, Fault> {
    let tx = c.transaction().await.map_err(pg)?;
    let row = tx
        .query_opt(
            "SELECT record FROM archive_posts WHERE list = $1 AND id = $2 AND NOT removed
             FOR UPDATE",
            &[&list, &id],
        )
        .await
        .map_err(pg)?;
    let Some(row) = row else {
        return Ok(false);
    };
    let mut post: ArchivedPost = parse(row.get(0), "archive record")?;
    post.removed = true;
    post.subject.clear();
    post.author_name.clear();
    post.author_address.clear();
    let record = serde_json::to_string(&post)?;
    tx.execute(
        "UPDATE archive_posts SET removed = TRUE, raw = NULL, record = $3
         WHERE list = $1 AND id = $2",
        &[&list, &id, &record],
    )
    .await
    .map_err(pg)?;
    tx.execute(
        "DELETE FROM archive_words WHERE list = $1 AND id = $2",
        &[&list, &id],
    )
    .await
    .map_err(pg)?;
    tx.commit().await.map_err(pg)?;
    Ok(true)
}

impl PgStore {
    /// The records a query over `archive_posts` (selecting `record` first) finds.
    async fn archive_query(
        &self,
        sql: &'static str,
        params: Vec<Box<dyn tokio_postgres::types::ToSql + Sync + Send>>,
    ) -> Result<Vec<ArchivedPost>, StoreError> {
        let rows = self
            .run(move |c| async move {
                let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
                    .iter()
                    .map(|p| p.as_ref() as &(dyn tokio_postgres::types::ToSql + Sync))
                    .collect();
                c.query(sql, &refs).await.map_err(pg)
            })
            .await?;
        records(&self.counted(rows)).map_err(|e| self.err(e))
    }
}

impl Archive for PgStore {
    async fn put_archived(&self, rows: &[ArchivedRow]) -> Result<Vec<bool>, StoreError> {
        self.run(|mut c| async move { insert_all(&mut c, rows).await })
            .await
    }

    async fn archived(&self, list: &str, id: &str) -> Result<Option<ArchivedPost>, StoreError> {
        let found = self
            .archive_query(
                "SELECT record FROM archive_posts WHERE list = $1 AND id = $2",
                vec![Box::new(list.to_string()), Box::new(id.to_string())],
            )
            .await?;
        Ok(found.into_iter().next())
    }

    async fn archived_raw(&self, list: &str, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.run(|c| async move {
            let row = c
                .query_opt(
                    "SELECT raw FROM archive_posts WHERE list = $1 AND id = $2",
                    &[&list, &id],
                )
                .await
                .map_err(pg)?;
            Ok(row.and_then(|r| r.get::<_, Option<Vec<u8>>>(0)))
        })
        .await
    }

    async fn archived_between(
        &self,
        list: &str,
        from: u64,
        to: u64,
        after: Option<(u64, String)>,
        n: usize,
    ) -> Result<Vec<ArchivedPost>, StoreError> {
        let (after_date, after_id) = after.map_or((-1, String::new()), |(d, i)| (int(d), i));
        self.archive_query(
            "SELECT record FROM archive_posts WHERE list = $1 AND date >= $2 AND date < $3
               AND (date, id) > ($4, $5)
             ORDER BY date, id LIMIT $6",
            vec![
                Box::new(list.to_string()),
                Box::new(int(from)),
                Box::new(int(to)),
                Box::new(after_date),
                Box::new(after_id),
                Box::new(limit(n)),
            ],
        )
        .await
    }

    async fn archived_newest(&self, list: &str, n: usize) -> Result<Vec<ArchivedPost>, StoreError> {
        self.archive_query(
            "SELECT record FROM archive_posts WHERE list = $1 ORDER BY date DESC, id DESC LIMIT $2",
            vec![Box::new(list.to_string()), Box::new(limit(n))],
        )
        .await
    }

    async fn archived_thread(
        &self,
        list: &str,
        thread: &str,
        n: usize,
    ) -> Result<Vec<ArchivedPost>, StoreError> {
        self.archive_query(
            "SELECT record FROM archive_posts WHERE list = $1 AND thread = $2
             ORDER BY date, id LIMIT $3",
            vec![
                Box::new(list.to_string()),
                Box::new(thread.to_string()),
                Box::new(limit(n)),
            ],
        )
        .await
    }

    async fn archived_thread_by_subject(
        &self,
        list: &str,
        key: &str,
    ) -> Result<Option<String>, StoreError> {
        self.run(|c| async move {
            let row = c
                .query_opt(
                    "SELECT thread FROM archive_subjects WHERE list = $1 AND subject = $2",
                    &[&list, &key],
                )
                .await
                .map_err(pg)?;
            Ok(row.map(|r| r.get(0)))
        })
        .await
    }

    async fn archived_months(&self, list: &str) -> Result<Vec<(String, u64)>, StoreError> {
        self.run(|c| async move {
            let rows = c
                .query(
                    "SELECT month, posts FROM archive_months WHERE list = $1 ORDER BY month DESC",
                    &[&list],
                )
                .await
                .map_err(pg)?;
            Ok(rows
                .iter()
                .map(|r| (r.get(0), r.get::<_, i64>(1).max(0) as u64))
                .collect())
        })
        .await
    }

    async fn archived_search(
        &self,
        list: &str,
        words: &[String],
        n: usize,
    ) -> Result<Vec<ArchivedPost>, StoreError> {
        let Some((first, rest)) = words.split_first() else {
            return Ok(Vec::new());
        };
        // The first word's postings from the newest, each also under every other word.
        self.archive_query(
            "SELECT p.record FROM archive_words w
             JOIN archive_posts p ON p.list = w.list AND p.id = w.id
             WHERE w.list = $1 AND w.word = $2 AND NOT p.removed
               AND NOT EXISTS (SELECT 1 FROM unnest($3::TEXT[]) AS x(word)
                   WHERE NOT EXISTS (SELECT 1 FROM archive_words o WHERE o.list = w.list
                       AND o.word = x.word AND o.date = w.date AND o.id = w.id))
             ORDER BY w.date DESC, w.id DESC LIMIT $4",
            vec![
                Box::new(list.to_string()),
                Box::new(first.clone()),
                Box::new(rest.to_vec()),
                Box::new(limit(n)),
            ],
        )
        .await
    }

    async fn remove_archived(&self, list: &str, id: &str) -> Result<bool, StoreError> {
        self.run(|mut c| async move { remove(&mut c, list, id).await })
            .await
    }

    async fn mark_to_archive(&self, list: &str, spool: SpoolId) -> Result<(), StoreError> {
        self.run(|c| async move {
            c.execute(
                "INSERT INTO archive_pending (spool, list) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&int(spool), &list],
            )
            .await
            .map_err(pg)
            .map(|_| ())
        })
        .await
    }

    async fn to_archive(&self, n: usize) -> Result<Vec<(String, SpoolId)>, StoreError> {
        self.run(|c| async move {
            let rows = c
                .query(
                    "SELECT list, spool FROM archive_pending ORDER BY spool LIMIT $1",
                    &[&limit(n)],
                )
                .await
                .map_err(pg)?;
            Ok(rows
                .iter()
                .map(|r| (r.get(0), r.get::<_, i64>(1).max(0) as u64))
                .collect())
        })
        .await
    }

    async fn archived_done(&self, list: &str, spool: SpoolId) -> Result<(), StoreError> {
        self.run(|c| async move {
            c.execute(
                "DELETE FROM archive_pending WHERE spool = $1 AND list = $2",
                &[&int(spool), &list],
            )
            .await
            .map_err(pg)
            .map(|_| ())
        })
        .await
    }
}
