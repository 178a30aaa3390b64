//! RFC 8058 one-click unsubscribe: the URL for one member, and the fields that carry it.
//!
//! The fields name one recipient, so they go into that recipient's copy and must be covered by
//! a DKIM signature made for it (RFC 8058 §3.1); the delivery stage adds them per recipient.

use super::tokens;

/// The one-click URL for `address` on `list` under `base_url` (`https://lists.example.org`):
/// an opaque token (see [`tokens::seal_unsubscribe`]), not the address.
pub fn url(base_url: &str, secret: &[u8], list: &str, address: &str) -> Result<String, String> {
    Ok(format!(
        "{}/unsubscribe/{}",
        base_url.trim_end_matches('/'),
        tokens::seal_unsubscribe(secret, list, address)?
    ))
}

/// `List-Unsubscribe` (the one-click URL and the mailto fallback) and `List-Unsubscribe-Post`.
pub fn fields(
    base_url: &str,
    secret: &[u8],
    list: &crate::config::ListConfig,
    address: &str,
) -> Result<[(&'static str, String); 2], String> {
    Ok([
        (
            "List-Unsubscribe",
            format!(
                "<{}>, <mailto:{}-leave@{}>",
                url(base_url, secret, &list.address, address)?,
                list.local_part(),
                list.domain()
            ),
        ),
        (
            "List-Unsubscribe-Post",
            "List-Unsubscribe=One-Click".to_string(),
        ),
    ])
}
