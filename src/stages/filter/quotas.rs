//! Quotas: how many posts a list takes in five minutes, how many of them one sender sends in
//! an hour, and how many messages one client address sends in an hour. The counts live in the
//! store, so they survive a restart and every node of a shared store counts into the same
//! ones. Windows are fixed (one counter per window, forgotten when it is over): a burst
//! across a window's edge may pass up to twice a limit, which is what one counter per window
//! costs and what limits published as "per 5 minutes" allow.

use super::Refusal;
use crate::state::store::{Store, StoreError};
use std::net::IpAddr;

/// A list's quotas; 0 means none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListQuota {
    /// Posts the list takes in five minutes (`max_posts_per_5min`).
    pub posts_per_5min: u64,
    /// Posts one sender sends the list in an hour (`max_posts_per_sender_per_hour`).
    pub posts_per_sender_per_hour: u64,
}

const FIVE_MINUTES: u64 = 300;
const HOUR: u64 = 3600;

/// The counter of `subject` for the `len`-second window holding `now`, and when it may go.
fn window(kind: &str, subject: &str, len: u64, now: u64) -> (String, u64) {
    let start = now - now % len;
    (format!("{kind}\n{subject}\n{start}"), start + len)
}

/// Counts a post to `list` from `sender` (its author, lower-case; empty when it has none) at
/// `now`, and says which quota of `quota` it went over, if one.
pub async fn count_post(
    store: &Store,
    list: &str,
    sender: &str,
    quota: ListQuota,
    now: u64,
) -> Result<Option<String>, StoreError> {
    let mut keys = Vec::new();
    let mut limits = Vec::new();
    if quota.posts_per_5min > 0 {
        keys.push(window("list", list, FIVE_MINUTES, now));
        limits.push((
            quota.posts_per_5min,
            format!(
                "list {list} takes at most {} posts in 5 minutes (max_posts_per_5min)",
                quota.posts_per_5min
            ),
        ));
    }
    if quota.posts_per_sender_per_hour > 0 && !sender.is_empty() {
        keys.push(window("sender", &format!("{list}\n{sender}"), HOUR, now));
        limits.push((
            quota.posts_per_sender_per_hour,
            format!(
                "list {list} takes at most {} posts an hour from {sender} (max_posts_per_sender_per_hour)",
                quota.posts_per_sender_per_hour
            ),
        ));
    }
    if keys.is_empty() {
        return Ok(None);
    }
    let counts = store.count_rates(&keys).await?;
    Ok(counts
        .into_iter()
        .zip(limits)
        .find(|(n, (max, _))| n > max)
        .map(|(_, (_, why))| why))
}

/// Counts a message from envelope sender `sender` through forwarding domain `domain` at
/// `now`; the refusal when that is more than `per_hour` this hour (0: no limit, nothing
/// counted). The null sender (bounces) is not counted: its own limits are the SRS returns'.
pub async fn count_forwarded(
    store: &Store,
    domain: &str,
    sender: &str,
    per_hour: u64,
    now: u64,
) -> Result<Option<Refusal>, StoreError> {
    if per_hour == 0 || sender.is_empty() {
        return Ok(None);
    }
    let key = window("forward", &format!("{domain}\n{sender}"), HOUR, now);
    let counts = store.count_rates(&[key]).await?;
    Ok(counts.first().filter(|n| **n > per_hour).map(|_| Refusal {
        code: 452,
        status: "4.7.1",
        text: format!(
            "{domain} forwards at most {per_hour} messages an hour from {sender} (max_messages_per_sender_per_hour); try again later"
        ),
    }))
}

/// Counts a message from client `ip` at `now`; the refusal when that is more than `per_hour`
/// this hour (0: no limit, nothing counted).
pub async fn count_client(
    store: &Store,
    ip: IpAddr,
    per_hour: u64,
    now: u64,
) -> Result<Option<Refusal>, StoreError> {
    if per_hour == 0 {
        return Ok(None);
    }
    let key = window("client", &ip.to_string(), HOUR, now);
    let counts = store.count_rates(&[key]).await?;
    Ok(counts.first().filter(|n| **n > per_hour).map(|_| Refusal {
        code: 452,
        status: "4.7.1",
        text: format!(
            "too many messages from {ip} this hour: at most {per_hour} (max_messages_per_client_per_hour); try again later"
        ),
    }))
}

#[cfg(test)]
mod tests {
    use super::window;

    #[test]
    fn a_window_is_named_by_its_start_and_ends_after_its_length() {
        assert_eq!(
            window("list", "l@x", 300, 1_000),
            ("list\nl@x\n900".to_string(), 1_200)
        );
        assert_eq!(window("list", "l@x", 300, 1_199).0, "list\nl@x\n900");
        assert_eq!(window("list", "l@x", 300, 1_200).0, "list\nl@x\n1200");
    }
}
