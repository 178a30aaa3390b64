//! A list's archived posts as an mboxrd file: a month's (the pages link it) or all of them
//! (`arclist archive export`). Removed posts are not in it.

use super::mbox;
use crate::state::store::{Store, StoreError};

/// Posts read from the store at a time.
const PAGE: usize = 500;

/// The posts of `list` dated in `from..to`, at most `max`, as mboxrd; and how many.
pub async fn mbox_between(
    store: &Store,
    list: &str,
    (from, to): (u64, u64),
    max: usize,
) -> Result<(Vec<u8>, usize), StoreError> {
    let mut out = Vec::new();
    let mut count = 0;
    let mut after = None;
    while count < max {
        let page = store
            .archived_between(list, (from, to), after.take(), PAGE)
            .await?;
        let full = page.len() == PAGE;
        for post in &page {
            if post.removed || count >= max {
                continue;
            }
            // Removed between the two reads: left out as well.
            let Some(raw) = store.archived_raw(list, &post.id).await? else {
                continue;
            };
            mbox::append(&mut out, &post.author_address, post.date, &raw);
            count += 1;
        }
        match page.last() {
            Some(last) if full => after = Some((last.date, last.id.clone())),
            _ => break,
        }
    }
    Ok((out, count))
}
