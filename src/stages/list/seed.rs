//! A list file's `members` seed the store once; after that the store is the truth, and
//! whoever left stays gone (see [`Store::seed_members`]).

use crate::state::store::{Member, Store};

/// Seeds `list` from its file's `members` (see [`Store::seed_members`]): once per list, or
/// `again` for `arclist member sync`. Returns how many were added, `None` when skipped.
pub async fn seed(
    store: &Store,
    list: &crate::base::config::ListConfig,
    again: bool,
) -> Result<Option<usize>, super::ListError> {
    let members: Vec<Member> = list
        .members
        .iter()
        .map(|entry| Member {
            address: crate::base::config::member_address(entry),
            name: crate::base::config::member_name(entry),
            joined_at: crate::auth::unix_now(),
            ..Default::default()
        })
        .collect();
    let added = store
        .seed_members(&list.address, &members, again)
        .await
        .map_err(|source| super::ListError::Seed {
            list: list.address.clone(),
            source,
        })?;
    if let Some(n) = added {
        tracing::info!(list = %list.address, added = n, named = members.len(), "members seeded from the list file");
    }
    Ok(added)
}
