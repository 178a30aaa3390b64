//! The database's tables, made and brought up to date by arclist itself (addresses sort
//! byte by byte, `COLLATE "C"`, as in the embedded store, whatever the database's locale): each migration runs
//! once, in order, in one transaction, under an advisory lock so nodes starting together do
//! not race, and is recorded in `schema_migrations`.

use crate::state::store::Fault;
use deadpool_postgres::GenericClient;

/// The advisory lock every node takes while it migrates ("arcl").
const MIGRATION_LOCK: i64 = 0x6172_636c;

/// The migrations, oldest first: (version, what it does, SQL). Never edit one that shipped;
/// add the next.
pub(super) const MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "spool, members, queue, deliveries with leases, duplicates, reports, once-per-cluster jobs",
        r#"
CREATE TABLE spool (
    id BIGINT PRIMARY KEY,
    state TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    meta TEXT NOT NULL,
    data BYTEA,
    node TEXT,
    lease_until BIGINT NOT NULL DEFAULT 0
);
CREATE SEQUENCE spool_ids;
CREATE INDEX spool_unfinished ON spool (lease_until)
    WHERE state IN ('received', 'authenticated', 'approved');
CREATE INDEX spool_leased ON spool (node) WHERE lease_until > 0;
CREATE INDEX spool_finished ON spool (received_at)
    WHERE state IN ('done', 'rejected', 'discarded');
CREATE INDEX spool_finished_raw ON spool (received_at)
    WHERE state IN ('done', 'rejected', 'discarded') AND data IS NOT NULL;
CREATE TABLE members (
    list TEXT COLLATE "C" NOT NULL,
    address TEXT COLLATE "C" NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (list, address)
);
CREATE TABLE departed (
    list TEXT COLLATE "C" NOT NULL,
    address TEXT COLLATE "C" NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (list, address)
);
CREATE TABLE seeded (list TEXT PRIMARY KEY, at BIGINT NOT NULL);
CREATE TABLE aliases (alias TEXT PRIMARY KEY, targets TEXT NOT NULL);
CREATE TABLE queue (
    id BIGINT PRIMARY KEY,
    entry TEXT NOT NULL,
    data BYTEA,
    seven_bit BYTEA,
    finished_at BIGINT
);
CREATE INDEX queue_finished ON queue (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX queue_finished_raw ON queue (finished_at)
    WHERE finished_at IS NOT NULL AND data IS NOT NULL;
CREATE TABLE active (id BIGINT PRIMARY KEY, head TEXT NOT NULL);
CREATE TABLE deliveries (
    id BIGINT NOT NULL,
    address TEXT COLLATE "C" NOT NULL,
    record TEXT NOT NULL,
    state TEXT NOT NULL,
    next_attempt BIGINT NOT NULL,
    node TEXT,
    lease_until BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (id, address)
);
CREATE INDEX deliveries_leased ON deliveries (node) WHERE lease_until > 0;
-- The recipients still waiting: what claiming and settling read, so a post's delivered
-- recipients are not read again at every round of a big fan-out.
CREATE INDEX deliveries_waiting ON deliveries (id, address) WHERE state IN ('pending', 'deferred');
CREATE TABLE secrets (name TEXT PRIMARY KEY, value BYTEA NOT NULL);
CREATE TABLE seen (
    list TEXT NOT NULL,
    message_id TEXT NOT NULL,
    post BIGINT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (list, message_id)
);
CREATE INDEX seen_at ON seen (at);
CREATE TABLE dmarc_reports (
    begin_at BIGINT NOT NULL,
    org TEXT NOT NULL,
    report_id TEXT NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (begin_at, org, report_id)
);
CREATE TABLE once_per_cluster (
    job TEXT NOT NULL,
    period BIGINT NOT NULL,
    node TEXT NOT NULL,
    PRIMARY KEY (job, period)
);
"#,
    ),
    (
        2,
        "rate counters for quotas",
        r#"
CREATE TABLE rate_counters (
    key TEXT PRIMARY KEY,
    count BIGINT NOT NULL,
    expires BIGINT NOT NULL
);
CREATE INDEX rate_counters_expires ON rate_counters (expires);
"#,
    ),
    (
        3,
        "the list archive: posts, their threads, months and search words; posts to archive",
        r#"
CREATE TABLE archive_posts (
    list TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    date BIGINT NOT NULL,
    thread TEXT COLLATE "C" NOT NULL,
    removed BOOLEAN NOT NULL,
    record TEXT NOT NULL,
    raw BYTEA,
    PRIMARY KEY (list, id)
);
CREATE INDEX archive_posts_date ON archive_posts (list, date, id);
CREATE INDEX archive_posts_thread ON archive_posts (list, thread, date, id);
CREATE TABLE archive_words (
    list TEXT COLLATE "C" NOT NULL,
    word TEXT COLLATE "C" NOT NULL,
    date BIGINT NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (list, word, date, id)
);
CREATE INDEX archive_words_post ON archive_words (list, id);
CREATE TABLE archive_subjects (
    list TEXT COLLATE "C" NOT NULL,
    subject TEXT COLLATE "C" NOT NULL,
    thread TEXT NOT NULL,
    PRIMARY KEY (list, subject)
);
CREATE TABLE archive_months (
    list TEXT COLLATE "C" NOT NULL,
    month TEXT COLLATE "C" NOT NULL,
    posts BIGINT NOT NULL,
    PRIMARY KEY (list, month)
);
CREATE TABLE archive_pending (
    spool BIGINT NOT NULL,
    list TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (spool, list)
);
"#,
    ),
    (
        4,
        "pending digests and their issue numbers",
        r#"
CREATE TABLE digest_pending (
    list TEXT COLLATE "C" NOT NULL,
    id BIGINT NOT NULL,
    message BYTEA NOT NULL,
    PRIMARY KEY (list, id)
);
CREATE TABLE digest_issues (
    list TEXT COLLATE "C" PRIMARY KEY,
    record TEXT NOT NULL
);
"#,
    ),
    (
        5,
        "connection slots per destination, leased by the node holding each",
        r#"
CREATE TABLE destination_slots (
    destination TEXT COLLATE "C" NOT NULL,
    slot INTEGER NOT NULL,
    node TEXT NOT NULL,
    lease_until BIGINT NOT NULL,
    PRIMARY KEY (destination, slot)
);
CREATE INDEX destination_slots_lease ON destination_slots (lease_until);
"#,
    ),
    (
        6,
        "claims on recipients written in place: no index on the claim's columns, room left in each page",
        // A claim sets only `node` and `lease_until`: with no index naming them (in its columns
        // or its predicate) and room in the page, PostgreSQL writes the new row version beside
        // the old one without touching any index (a HOT update). A page half full has room
        // for a new version of each of its rows (claims take runs of rows in address order,
        // so every row of a page); at 70% four in ten claims found room. The index on `node`
        // made each claim three index insertions. Claiming and recording 100,000 recipients
        // took 2.0 s of the database's time before, 1.4 s after. A node finds its claims
        // through `deliveries_waiting` instead (claimed rows are waiting ones): a heartbeat reads
        // every waiting recipient's row, a few hundred milliseconds a third of a lease for a
        // million, where the index read only the node's own claims.
        r#"
DROP INDEX IF EXISTS deliveries_leased;
ALTER TABLE deliveries SET (fillfactor = 50);
"#,
    ),
    (
        7,
        "recipient records in pages of up to 500 with a log of what rounds recorded since; a queued post's list of recipients apart from its entry",
        // `pages.rs` says why. Pages, logs and lists of recipients are compressed with lz4
        // where the server has it (PostgreSQL 14 and newer, built with it, as Debian's is):
        // the default compression took the database longer than storing them uncompressed,
        // lz4 a third less (a 100,000-member fan-out's logs: 54 ms of the database's time,
        // 30 with lz4). A queued post's entry (what a fan-out reads and settling rewrites)
        // no longer carries its list of recipients, which only `queue_entry` reads. Claims on
        // pages are written in place, as in migration 6. The claims of the row-per-recipient
        // table are not carried over: every node restarts to run this migration.
        r#"
CREATE TABLE recipient_pages (
    id BIGINT NOT NULL,
    first TEXT COLLATE "C" NOT NULL,
    records BYTEA NOT NULL,
    size INTEGER NOT NULL,
    pending INTEGER NOT NULL,
    deferred INTEGER NOT NULL,
    next_due BIGINT NOT NULL,
    node TEXT,
    lease_until BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (id, first)
) WITH (fillfactor = 70);
CREATE TABLE recipient_log (
    id BIGINT NOT NULL,
    first TEXT COLLATE "C" NOT NULL,
    seq BIGINT GENERATED ALWAYS AS IDENTITY,
    records BYTEA NOT NULL,
    PRIMARY KEY (id, first, seq)
);
ALTER TABLE queue ADD COLUMN recipients TEXT;
DO $$
BEGIN
    EXECUTE 'ALTER TABLE recipient_pages ALTER COLUMN records SET COMPRESSION lz4';
    EXECUTE 'ALTER TABLE recipient_log ALTER COLUMN records SET COMPRESSION lz4';
    EXECUTE 'ALTER TABLE queue ALTER COLUMN recipients SET COMPRESSION lz4';
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'lz4 compression not available (%): the default is kept', SQLERRM;
END $$;
UPDATE queue SET recipients = (entry::jsonb -> 'recipients')::text,
                 entry = (entry::jsonb - 'recipients')::text
WHERE entry::jsonb ? 'recipients';
INSERT INTO recipient_pages (id, first, records, size, pending, deferred, next_due)
SELECT id, min(address),
       convert_to('{"records":[' || string_agg(record, ',' ORDER BY address) || ']}', 'UTF8'),
       count(*),
       count(*) FILTER (WHERE state = 'pending'),
       count(*) FILTER (WHERE state = 'deferred'),
       COALESCE(min(next_attempt) FILTER (WHERE state IN ('pending', 'deferred')), 0)
FROM (SELECT id, address, record, state, next_attempt,
             (row_number() OVER (PARTITION BY id ORDER BY address) - 1) / 500 AS page
      FROM deliveries) d
GROUP BY id, page;
DROP TABLE deliveries;
"#,
    ),
    (
        8,
        "members who get each post as it comes marked in an index of their own, read without their records",
        // A post's recipients were every member's record, read and parsed: most of what the
        // database spent on a fan-out (a million members: 1.2 of its 2 seconds). `plain`
        // says, from the record itself (computed by the database on every write, so no write
        // path can leave it stale), that the member gets each post whatever the date: not
        // stopped by bounces, in regular delivery, and keyed by the record's own address.
        // Their addresses come from an index-only scan of `members_plain`; everyone else
        // (paused, digests, stopped) is read whole from `members_other` and judged by the
        // node, as before. A record holding `\u0000` (a NUL in a display name, which the
        // admin API accepts) is never parsed: PostgreSQL's JSON functions refuse that escape,
        // which would fail the migration and every later write of the member; it counts as
        // not plain, and the node reads it.
        r#"
ALTER TABLE members ADD COLUMN plain BOOLEAN NOT NULL GENERATED ALWAYS AS (COALESCE(
    CASE WHEN strpos(record, '\u0000') > 0 THEN false ELSE
        (record::json ->> 'disabled') IS DISTINCT FROM 'true'
        AND COALESCE(record::json ->> 'delivery', 'regular') = 'regular'
        AND record::json ->> 'address' = address
    END, false)) STORED;
CREATE INDEX members_plain ON members (list, address) WHERE plain;
CREATE INDEX members_other ON members (list, address) WHERE NOT plain;
ANALYZE members;
"#,
    ),
];

/// Brings the database to the newest schema this arclist knows, or to version `last` if that
/// is older; returns the versions it applied. Refuses a database a newer arclist migrated,
/// whose tables this one may misread.
pub(super) async fn migrate(
    client: &mut deadpool_postgres::Object,
    last: i32,
) -> Result<Vec<i32>, Fault> {
    let tx = client.transaction().await.map_err(super::pg)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(super::pg)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY,
            applied_at BIGINT NOT NULL,
            what TEXT NOT NULL)",
    )
    .await
    .map_err(super::pg)?;
    let current: i32 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            &[],
        )
        .await
        .map_err(super::pg)?
        .get(0);
    let newest = MIGRATIONS.last().map_or(0, |m| m.0);
    if current > newest {
        return Err(Fault::unavailable(format!(
            "the database is at schema version {current}, newer than this arclist knows ({newest}): upgrade arclist on this node"
        )));
    }
    let now = crate::auth::unix_now() as i64;
    let mut applied = Vec::new();
    for (version, what, sql) in MIGRATIONS.iter().filter(|m| m.0 > current && m.0 <= last) {
        tx.batch_execute(sql)
            .await
            .map_err(|e| super::pg(e).context(format_args!("migration {version} ({what})")))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at, what) VALUES ($1, $2, $3)",
            &[version, &now, what],
        )
        .await
        .map_err(super::pg)?;
        applied.push(*version);
    }
    tx.commit().await.map_err(super::pg)?;
    Ok(applied)
}

/// The schema version the database is at (0: never migrated).
pub(super) async fn version(client: &impl GenericClient) -> Result<i32, Fault> {
    let exists: bool = client
        .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])
        .await
        .map_err(super::pg)?
        .get(0);
    if !exists {
        return Ok(0);
    }
    Ok(client
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            &[],
        )
        .await
        .map_err(super::pg)?
        .get(0))
}
