//! Rows of an embedded store written into the database, for `arclist store copy`
//! ([`crate::state::store::copy`]): each kind into its table, with the columns the database
//! keeps beside a record read out of it, unclaimed by any node.

use super::{PgStore, int, pages, parse, pg, spool::state_name};
use crate::state::store::archive::ArchivedPost;
use crate::state::store::copy::{KINDS, Row};
use crate::state::store::{Fault, SpoolMeta, StoreError, StoredEntry};
use deadpool_postgres::GenericClient;

impl PgStore {
    /// The rows in each table a copy writes, in [`KINDS`] order.
    pub(crate) async fn table_counts(&self) -> Result<Vec<u64>, StoreError> {
        self.run(|c| async move {
            let mut out = Vec::with_capacity(KINDS.len());
            for (_, table) in KINDS {
                // Delivery records are kept in pages: they are counted by the pages' sizes.
                let sql = match *table {
                    "recipient_pages" => {
                        format!("SELECT COALESCE(sum(size), 0)::BIGINT FROM {table}")
                    }
                    _ => format!("SELECT count(*) FROM {table}"),
                };
                let n: i64 = c.query_one(&sql, &[]).await.map_err(pg)?.get(0);
                out.push(n.max(0) as u64);
            }
            Ok(out)
        })
        .await
    }

    /// The posts the database holds recipient records of.
    pub(crate) async fn posts_with_records(
        &self,
    ) -> Result<std::collections::HashSet<u64>, StoreError> {
        self.run(|c| async move {
            let rows = c
                .query("SELECT DISTINCT id FROM recipient_pages", &[])
                .await
                .map_err(pg)?;
            Ok(rows.iter().map(|r| r.get::<_, i64>(0) as u64).collect())
        })
        .await
    }

    /// An error about this database.
    pub(crate) fn refusal(&self, message: String) -> StoreError {
        self.err(Fault::other(message))
    }

    /// Writes `rows` in one transaction; a row whose key is there already is left as the
    /// database has it.
    pub(crate) async fn import(&self, rows: Vec<Row>) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        self.run(|mut c| async move {
            let tx = c.transaction().await.map_err(pg)?;
            // A post's records come in address order: each run of them becomes its pages.
            let mut records: (u64, Vec<(String, String)>) = (0, Vec::new());
            for row in &rows {
                match row {
                    Row::Delivery {
                        id,
                        address,
                        record,
                    } => {
                        if *id != records.0 && !records.1.is_empty() {
                            pages::write_copied(&tx, records.0, &std::mem::take(&mut records.1))
                                .await?;
                        }
                        records.0 = *id;
                        records
                            .1
                            .push((address.to_ascii_lowercase(), record.clone()));
                    }
                    _ => write(&tx, row).await?,
                }
            }
            if !records.1.is_empty() {
                pages::write_copied(&tx, records.0, &records.1).await?;
            }
            tx.commit().await.map_err(pg)
        })
        .await
    }
}

/// One row into its table.
async fn write(c: &impl GenericClient, row: &Row) -> Result<(), Fault> {
    match row {
        Row::Spool { id, meta, data } => {
            let parsed: SpoolMeta = parse(meta, &format!("metadata {id}"))?;
            let sql =
                "INSERT INTO spool (id, state, received_at, meta, data) VALUES ($1, $2, $3, $4, $5)
                       ON CONFLICT DO NOTHING";
            let state = state_name(parsed.state);
            let at = int(parsed.envelope.received_at);
            exec(c, sql, &[&int(*id), &state, &at, meta, data]).await
        }
        Row::Queue {
            id,
            entry,
            data,
            seven_bit,
        } => {
            let mut parsed: StoredEntry = parse(entry, &format!("queue entry {id}"))?;
            let finished = parsed.summary.as_ref().map(|s| int(s.finished_at));
            // The recipients in their own column, as queueing writes them.
            let listed = std::mem::replace(&mut parsed.recipients, StoredEntry::no_recipients());
            let (entry, listed) = (parsed.to_json()?, listed.get().to_string());
            let sql = "INSERT INTO queue (id, entry, data, seven_bit, finished_at, recipients)
                       VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING";
            exec(
                c,
                sql,
                &[&int(*id), &entry, data, seven_bit, &finished, &listed],
            )
            .await
        }
        Row::Active { id, head } => {
            let sql = "INSERT INTO active (id, head) VALUES ($1, $2) ON CONFLICT DO NOTHING";
            exec(c, sql, &[&int(*id), head]).await
        }
        Row::NextId(next) => {
            // The sequence goes on after the highest id the file gave, or holds.
            let sql =
                "SELECT setval('spool_ids', GREATEST($1, (SELECT COALESCE(MAX(id), 1) FROM spool),
                       (SELECT last_value FROM spool_ids)))";
            let last = int(next.saturating_sub(1).max(1));
            c.query_one(sql, &[&last]).await.map_err(pg).map(|_| ())
        }
        other => write_record(c, other).await,
    }
}

/// Members, aliases, records and the archive: rows keyed by name.
async fn write_record(c: &impl GenericClient, row: &Row) -> Result<(), Fault> {
    const CONFLICT: &str = "ON CONFLICT DO NOTHING";
    match row {
        Row::Member {
            list,
            address,
            record,
        } => {
            let sql = format!(
                "INSERT INTO members (list, address, record) VALUES ($1, $2, $3) {CONFLICT}"
            );
            exec(c, &sql, &[list, address, record]).await
        }
        Row::Departure {
            list,
            address,
            record,
        } => {
            let sql = format!(
                "INSERT INTO departed (list, address, record) VALUES ($1, $2, $3) {CONFLICT}"
            );
            exec(c, &sql, &[list, address, record]).await
        }
        Row::Seeded { list, at } => {
            let sql = format!("INSERT INTO seeded (list, at) VALUES ($1, $2) {CONFLICT}");
            exec(c, &sql, &[list, &int(*at)]).await
        }
        Row::Alias { alias, targets } => {
            let sql = format!("INSERT INTO aliases (alias, targets) VALUES ($1, $2) {CONFLICT}");
            exec(c, &sql, &[alias, targets]).await
        }
        Row::Secret { name, value } => {
            let sql = format!("INSERT INTO secrets (name, value) VALUES ($1, $2) {CONFLICT}");
            exec(c, &sql, &[name, value]).await
        }
        Row::Seen {
            list,
            message_id,
            post,
            at,
        } => {
            let sql = format!(
                "INSERT INTO seen (list, message_id, post, at) VALUES ($1, $2, $3, $4) {CONFLICT}"
            );
            exec(c, &sql, &[list, message_id, &int(*post), &int(*at)]).await
        }
        Row::DmarcReport { record } => {
            let report: crate::auth::dmarc_report::AggregateReport = parse(record, "DMARC report")?;
            let sql = format!(
                "INSERT INTO dmarc_reports (begin_at, org, report_id, record) VALUES ($1, $2, $3, $4) {CONFLICT}"
            );
            exec(
                c,
                &sql,
                &[&int(report.begin), &report.org, &report.report_id, record],
            )
            .await
        }
        Row::Rate {
            key,
            count,
            expires,
        } => {
            let sql = format!(
                "INSERT INTO rate_counters (key, count, expires) VALUES ($1, $2, $3) {CONFLICT}"
            );
            exec(c, &sql, &[key, &int(*count), &int(*expires)]).await
        }
        Row::DigestPending { list, id, message } => {
            let sql = format!(
                "INSERT INTO digest_pending (list, id, message) VALUES ($1, $2, $3) {CONFLICT}"
            );
            exec(c, &sql, &[list, &int(*id), message]).await
        }
        Row::DigestIssue { list, record } => {
            let sql =
                format!("INSERT INTO digest_issues (list, record) VALUES ($1, $2) {CONFLICT}");
            exec(c, &sql, &[list, record]).await
        }
        other => write_archive(c, other).await,
    }
}

/// The archive's rows.
async fn write_archive(c: &impl GenericClient, row: &Row) -> Result<(), Fault> {
    const CONFLICT: &str = "ON CONFLICT DO NOTHING";
    match row {
        Row::ArchivePost { list, record, raw } => {
            let post: ArchivedPost = parse(record, &format!("archived post of {list}"))?;
            let sql = format!(
                "INSERT INTO archive_posts (list, id, date, thread, removed, record, raw)
                       VALUES ($1, $2, $3, $4, $5, $6, $7) {CONFLICT}"
            );
            let date = int(post.date);
            exec(
                c,
                &sql,
                &[
                    list,
                    &post.id,
                    &date,
                    &post.thread,
                    &post.removed,
                    record,
                    raw,
                ],
            )
            .await
        }
        Row::ArchiveWord {
            list,
            word,
            date,
            id,
        } => {
            let sql = format!(
                "INSERT INTO archive_words (list, word, date, id) VALUES ($1, $2, $3, $4) {CONFLICT}"
            );
            exec(c, &sql, &[list, word, &int(*date), id]).await
        }
        Row::ArchiveSubject {
            list,
            subject,
            thread,
        } => {
            let sql = format!(
                "INSERT INTO archive_subjects (list, subject, thread) VALUES ($1, $2, $3) {CONFLICT}"
            );
            exec(c, &sql, &[list, subject, thread]).await
        }
        Row::ArchiveMonth { list, month, posts } => {
            let sql = format!(
                "INSERT INTO archive_months (list, month, posts) VALUES ($1, $2, $3) {CONFLICT}"
            );
            exec(c, &sql, &[list, month, &int(*posts)]).await
        }
        Row::ArchivePending { spool, list } => {
            let sql =
                format!("INSERT INTO archive_pending (spool, list) VALUES ($1, $2) {CONFLICT}");
            exec(c, &sql, &[&int(*spool), list]).await
        }
        // Every other kind was written by `write` or `write_record`.
        _ => Ok(()),
    }
}

/// Runs one prepared (and cached) statement.
async fn exec(
    c: &impl GenericClient,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<(), Fault> {
    let stmt = c.prepare_cached(sql).await.map_err(pg)?;
    c.execute(&stmt, params).await.map_err(pg).map(|_| ())
}
