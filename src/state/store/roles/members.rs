//! Members, the departures that keep a seed from bringing anyone back, and forwarding aliases.

use crate::state::store::{Departure, Member, StoreError};

/// Members read at a time to find a post's recipients: a million-member list is read page by
/// page, and only the addresses are kept.
const MEMBER_PAGE: usize = 10_000;

/// Counts `member` for a post distributed on `today`: `digest` set if they take the digest,
/// and their address if they get the post.
pub(crate) fn tally(member: Member, today: &str, digest: &mut bool) -> Option<String> {
    *digest |= !member.disabled && member.delivery_on(today).gets_digest();
    member.gets_posts_on(today).then_some(member.address)
}

/// A backend's members, departures and aliases (see [`crate::state::store::Store::add_member`] and
/// its neighbours for the contract).
pub(crate) trait Members {
    /// Adds every member not already there, in one commit, clearing their departures.
    async fn add_members(&self, list: &str, members: &[Member]) -> Result<usize, StoreError>;
    /// Seeds `list` from its file, unless seeded before (`again`: anyway), never anyone who
    /// left.
    async fn seed_members(
        &self,
        list: &str,
        members: &[Member],
        again: bool,
    ) -> Result<Option<usize>, StoreError>;
    /// Why `address` left `list`.
    async fn departure(&self, list: &str, address: &str) -> Result<Option<Departure>, StoreError>;
    /// Writes a member's record, adding or replacing it.
    async fn put_member(&self, list: &str, member: &Member) -> Result<(), StoreError>;
    /// Removes a member and remembers why.
    async fn remove_member(
        &self,
        list: &str,
        address: &str,
        why: Departure,
    ) -> Result<bool, StoreError>;
    /// Adds or replaces a forwarding alias.
    async fn put_alias(&self, alias: &str, targets: &[String]) -> Result<(), StoreError>;
    /// Removes a forwarding alias.
    async fn remove_alias(&self, alias: &str) -> Result<bool, StoreError>;
    /// Every stored alias, by address.
    async fn aliases(&self) -> Result<Vec<(String, Vec<String>)>, StoreError>;
    /// At most `limit` members of `list` after `after`, by address.
    async fn members_after(
        &self,
        list: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<Member>, StoreError>;
    /// The addresses of `list`'s members who get each post distributed on `today` (not
    /// paused, not stopped by bounces), and whether any of them takes the digest: whom a post
    /// is queued for. Read a page at a time, keeping only the addresses.
    async fn post_recipients(
        &self,
        list: &str,
        today: &str,
    ) -> Result<(Vec<String>, bool), StoreError> {
        let (mut recipients, mut digest) = (Vec::new(), false);
        let mut after = String::new();
        loop {
            let page = self.members_after(list, &after, MEMBER_PAGE).await?;
            let Some(last) = page.last() else {
                break;
            };
            after = last.address.to_ascii_lowercase();
            let full = page.len() >= MEMBER_PAGE;
            for member in page {
                recipients.extend(tally(member, today, &mut digest));
            }
            if !full {
                break;
            }
        }
        Ok((recipients, digest))
    }
    /// `address`'s record on `list`.
    async fn member(&self, list: &str, address: &str) -> Result<Option<Member>, StoreError>;
    /// Whether `address` is a member of `list`.
    async fn is_member(&self, list: &str, address: &str) -> Result<bool, StoreError>;
}
