//! `arclist store copy`: an embedded store's every row moved into an empty PostgreSQL
//! database, then counted on both sides. The rows travel as they are kept (JSON records,
//! bytes), so nothing is lost to a decode and re-encode; only the columns the database keeps
//! beside a record (a state, a time) are read out of it on the way in.

use super::{PgStore, RedbStore, StoreError};

/// One row of the embedded store, by what it is.
#[derive(Debug)]
pub(crate) enum Row {
    /// A spooled message: metadata JSON and its bytes (gone once pruned).
    Spool {
        id: u64,
        meta: String,
        data: Option<Vec<u8>>,
    },
    /// A list member's record (delivery mode and options in the JSON).
    Member {
        list: String,
        address: String,
        record: String,
    },
    /// Why an address left a list.
    Departure {
        list: String,
        address: String,
        record: String,
    },
    /// When a list was seeded from its file.
    Seeded { list: String, at: u64 },
    /// A forwarding alias added from the CLI: JSON targets.
    Alias { alias: String, targets: String },
    /// A queued post's entry, signed copy and 7-bit twin.
    Queue {
        id: u64,
        entry: String,
        data: Option<Vec<u8>>,
        seven_bit: Option<Vec<u8>>,
    },
    /// A hot-queue head.
    Active { id: u64, head: String },
    /// A recipient's record of a queued post.
    Delivery {
        id: u64,
        address: String,
        record: String,
    },
    /// A named secret (the token secret).
    Secret { name: String, value: Vec<u8> },
    /// A distributed Message-ID.
    Seen {
        list: String,
        message_id: String,
        post: u64,
        at: u64,
    },
    /// A receiver's DMARC aggregate report.
    DmarcReport { record: String },
    /// A quota counter.
    Rate {
        key: String,
        count: u64,
        expires: u64,
    },
    /// An archived post's record and bytes (gone once removed).
    ArchivePost {
        list: String,
        record: String,
        raw: Option<Vec<u8>>,
    },
    /// One search word of an archived post.
    ArchiveWord {
        list: String,
        word: String,
        date: u64,
        id: String,
    },
    /// The thread a subject key started.
    ArchiveSubject {
        list: String,
        subject: String,
        thread: String,
    },
    /// A month's post count.
    ArchiveMonth {
        list: String,
        month: String,
        posts: u64,
    },
    /// A post marked to archive.
    ArchivePending { spool: u64, list: String },
    /// A post waiting for its list's digest.
    DigestPending {
        list: String,
        id: u64,
        message: Vec<u8>,
    },
    /// A list's last digest issue.
    DigestIssue { list: String, record: String },
    /// The next spool id the embedded store would give.
    NextId(u64),
}

/// What each kind of row is called in the counts, in the order they are printed, with the
/// table that holds it in the database.
pub(crate) const KINDS: &[(&str, &str)] = &[
    ("spooled messages", "spool"),
    ("members", "members"),
    ("departures", "departed"),
    ("seeded lists", "seeded"),
    ("aliases", "aliases"),
    ("queued posts", "queue"),
    ("queue heads", "active"),
    ("delivery records", "recipient_pages"),
    ("secrets", "secrets"),
    ("distributed message-ids", "seen"),
    ("dmarc reports", "dmarc_reports"),
    ("rate counters", "rate_counters"),
    ("archived posts", "archive_posts"),
    ("archive search words", "archive_words"),
    ("archive subjects", "archive_subjects"),
    ("archive months", "archive_months"),
    ("posts to archive", "archive_pending"),
    ("posts pending for digests", "digest_pending"),
    ("digest issues", "digest_issues"),
];

impl Row {
    /// Its index in [`KINDS`]; `None` for what is not counted.
    pub(crate) fn kind(&self) -> Option<usize> {
        Some(match self {
            Row::Spool { .. } => 0,
            Row::Member { .. } => 1,
            Row::Departure { .. } => 2,
            Row::Seeded { .. } => 3,
            Row::Alias { .. } => 4,
            Row::Queue { .. } => 5,
            Row::Active { .. } => 6,
            Row::Delivery { .. } => 7,
            Row::Secret { .. } => 8,
            Row::Seen { .. } => 9,
            Row::DmarcReport { .. } => 10,
            Row::Rate { .. } => 11,
            Row::ArchivePost { .. } => 12,
            Row::ArchiveWord { .. } => 13,
            Row::ArchiveSubject { .. } => 14,
            Row::ArchiveMonth { .. } => 15,
            Row::ArchivePending { .. } => 16,
            Row::DigestPending { .. } => 17,
            Row::DigestIssue { .. } => 18,
            Row::NextId(_) => return None,
        })
    }

    /// About how many bytes it carries, so a batch stays small.
    fn weight(&self) -> usize {
        match self {
            Row::Spool { meta, data, .. } => meta.len() + data.as_ref().map_or(0, Vec::len),
            Row::Queue {
                entry,
                data,
                seven_bit,
                ..
            } => {
                entry.len()
                    + data.as_ref().map_or(0, Vec::len)
                    + seven_bit.as_ref().map_or(0, Vec::len)
            }
            Row::ArchivePost { record, raw, .. } => record.len() + raw.as_ref().map_or(0, Vec::len),
            Row::DigestPending { message, .. } => message.len(),
            _ => 100,
        }
    }
}

/// One kind's rows: read from the embedded store, and found in the database after the copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindCount {
    /// What the rows are (`members`, `spooled messages`, …).
    pub kind: &'static str,
    /// Rows read from the embedded store.
    pub source: u64,
    /// Rows in the database after the copy.
    pub target: u64,
    /// Rows the database held before (0 unless copied into a non-empty one).
    pub before: u64,
}

impl KindCount {
    /// Whether every row read is in the database (each kind's rows have keys of their own,
    /// so into an empty database the counts are equal).
    pub fn complete(&self) -> bool {
        self.target == self.before + self.source
    }
}

/// The most rows (or about the most bytes) one transaction of the copy writes.
const BATCH_ROWS: usize = 1_000;
const BATCH_BYTES: usize = 16 << 20;

/// Copies every row of `from` into the database `to` and counts both sides. Refuses a
/// database that holds anything already unless `into_non_empty` (then a row whose key is
/// there already keeps the database's, and the counts say so). An error names the database,
/// the embedded file, or the row.
pub async fn copy(
    from: RedbStore,
    to: &PgStore,
    into_non_empty: bool,
) -> Result<Vec<KindCount>, StoreError> {
    let before = to.table_counts().await?;
    let held: u64 = before.iter().sum();
    if held > 0 && !into_non_empty {
        let what: Vec<String> = KINDS
            .iter()
            .zip(&before)
            .filter(|(_, n)| **n > 0)
            .map(|((kind, _), n)| format!("{n} {kind}"))
            .collect();
        return Err(to.refusal(format!(
            "the database is not empty ({}); copy into an empty one, or pass --into-non-empty",
            what.join(", ")
        )));
    }
    // A post the database has records of keeps them: copied ones would make pages that
    // overlap its own.
    let had = match held {
        0 => std::collections::HashSet::new(),
        _ => to.posts_with_records().await?,
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Row>(256);
    // redb reads block: they run on the blocking pool in one read transaction (a consistent
    // snapshot), handing rows over as the database takes them.
    let reader = tokio::task::spawn_blocking(move || from.export(&tx));
    let mut source = vec![0u64; KINDS.len()];
    let mut batch = Vec::new();
    let mut bytes = 0;
    while let Some(row) = rx.recv().await {
        if let Some(k) = row.kind() {
            source[k] += 1;
        }
        if let Row::Delivery { id, .. } = &row
            && had.contains(id)
        {
            continue;
        }
        bytes += row.weight();
        batch.push(row);
        if batch.len() >= BATCH_ROWS || bytes >= BATCH_BYTES {
            to.import(std::mem::take(&mut batch)).await?;
            bytes = 0;
        }
    }
    // The reader's error (a corrupt record) comes before the last batch is written.
    reader
        .await
        .map_err(|e| to.refusal(format!("the reader of the embedded store stopped: {e}")))??;
    to.import(batch).await?;
    let after = to.table_counts().await?;
    Ok(KINDS
        .iter()
        .zip(source.iter().zip(after.into_iter().zip(before)))
        .map(|((kind, _), (source, (target, before)))| KindCount {
            kind,
            source: *source,
            target,
            before,
        })
        .collect())
}
