//! Bringing a list's history in: the posts of an mbox file (Mailman 2 pipermail, Mailman 3
//! HyperKitty, Google Takeout), each archived once by its Message-ID however often the file
//! is imported.

use super::{mbox, read};
use crate::state::store::{Store, StoreError};
use serde::{Deserialize, Serialize};

/// The most unreadable messages a report names one by one.
const MAX_NAMED: usize = 100;

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportReport {
    /// Messages found in the file.
    pub messages: usize,
    /// Archived now.
    pub added: usize,
    /// Archived before (the same Message-ID on the same list).
    pub already: usize,
    /// Messages that could not be archived, by their place in the file (from 1) and why; at
    /// most [`MAX_NAMED`] are named.
    pub unreadable: Vec<String>,
    /// How many could not be archived in all.
    pub unreadable_count: usize,
}

/// Posts archived in one commit.
const BATCH: usize = 500;

/// Archives for `list` every post of the mbox `file`.
pub async fn import(store: &Store, list: &str, file: &[u8]) -> Result<ImportReport, StoreError> {
    let mut report = ImportReport::default();
    let now = crate::auth::unix_now();
    let mut batch = Vec::with_capacity(BATCH);
    for (n, raw) in mbox::split(file).into_iter().enumerate() {
        report.messages += 1;
        let why = match read::parse(&raw) {
            None => Some("not a message"),
            Some(m) if read::message_id(&m).is_none() => Some("no Message-ID"),
            Some(_) => None,
        };
        let entry = match why {
            None => read::entry(list, raw, None, now),
            Some(_) => None,
        };
        let Some(entry) = entry else {
            report.unreadable_count += 1;
            if report.unreadable.len() < MAX_NAMED {
                report.unreadable.push(format!(
                    "message {}: {}",
                    n + 1,
                    why.unwrap_or("not a message")
                ));
            }
            continue;
        };
        batch.push(entry);
        if batch.len() >= BATCH {
            archive(store, std::mem::take(&mut batch), &mut report).await?;
        }
    }
    archive(store, batch, &mut report).await?;
    Ok(report)
}

/// Archives one batch and counts what it did.
async fn archive(
    store: &Store,
    batch: Vec<crate::state::store::archive::NewArchivedPost>,
    report: &mut ImportReport,
) -> Result<(), StoreError> {
    if batch.is_empty() {
        return Ok(());
    }
    for (_, added) in store.archive_posts(batch).await? {
        match added {
            true => report.added += 1,
            false => report.already += 1,
        }
    }
    Ok(())
}
