//! RFC 8058 one-click unsubscribe: the URL for one member, and the fields that carry it.
//!
//! The fields name one recipient, so they go into that recipient's copy and must be covered by
//! a DKIM signature made for it (RFC 8058 §3.1); the delivery stage adds them per recipient.

use super::tokens::{self, TokenError};

/// The one-click URL for `address` on `list` under `base_url` (`https://lists.example.org`),
/// for a copy sent at unix time `issued`: an opaque token (see [`tokens::seal_unsubscribe`]),
/// not the address.
pub fn url(
    base_url: &str,
    secret: &[u8],
    list: &str,
    address: &str,
    issued: u64,
) -> Result<String, TokenError> {
    url_with(
        base_url,
        &tokens::TokenKeys::new(secret)?,
        list,
        address,
        issued,
    )
}

/// [`url`] with the secret's keys made already (a fan-out makes them once).
fn url_with(
    base_url: &str,
    keys: &tokens::TokenKeys,
    list: &str,
    address: &str,
    issued: u64,
) -> Result<String, TokenError> {
    Ok(format!(
        "{}/unsubscribe/{}",
        base_url.trim_end_matches('/'),
        keys.seal_unsubscribe(list, address, issued)?
    ))
}

/// The names of the fields [`fields`] makes, in order.
pub const NAMES: [&str; 2] = ["List-Unsubscribe", "List-Unsubscribe-Post"];

/// `List-Unsubscribe` (the one-click URL and the mailto fallback) and `List-Unsubscribe-Post`,
/// for a copy sent at unix time `issued`.
pub fn fields(
    base_url: &str,
    keys: &tokens::TokenKeys,
    list: &crate::base::config::ListConfig,
    address: &str,
    issued: u64,
) -> Result<[(&'static str, String); 2], TokenError> {
    Ok([
        (
            NAMES[0],
            format!(
                "<{}>, <mailto:{}-leave@{}>",
                url_with(base_url, keys, &list.address, address, issued)?,
                list.local_part(),
                list.domain()
            ),
        ),
        (NAMES[1], "List-Unsubscribe=One-Click".to_string()),
    ])
}

/// Whether a one-click link made at `issued` comes from before `member` last joined: a copy
/// from an earlier membership, which must not end the present one (someone who left and
/// joined again, and an old message is forwarded or clicked by mistake). Joining sets
/// `joined_at`; nothing else changes it. A link made in the second of joining counts as
/// current, and a link without a time (the first form) as well: there is no telling.
pub fn stale(issued: Option<u64>, member: Option<&crate::state::store::Member>) -> bool {
    matches!((issued, member), (Some(at), Some(m)) if m.joined_at > at)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_link_from_before_the_member_last_joined_is_stale() {
        let member = crate::state::store::Member {
            address: "ann@a.test".into(),
            joined_at: 1_000,
            ..Default::default()
        };
        assert!(super::stale(Some(999), Some(&member)));
        assert!(!super::stale(Some(1_000), Some(&member)));
        assert!(!super::stale(Some(5_000), Some(&member)));
        assert!(
            !super::stale(None, Some(&member)),
            "the first form: no telling"
        );
        assert!(
            !super::stale(Some(999), None),
            "not a member: nothing to keep"
        );
    }
}
