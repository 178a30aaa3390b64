//! Confirmation tokens for email commands (double opt-in).
//!
//! A token binds the action, the list, the address and the day it was made with an HMAC under
//! a secret kept in the store, so it cannot be guessed, cannot be used for another address, and
//! expires. It fits in an address local part: lower-case letters and digits only.

use aws_lc_rs::hmac;

/// How many days a token stays valid.
pub const VALID_DAYS: u64 = 3;

/// What a token confirms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Subscribe.
    Join,
    /// Unsubscribe.
    Leave,
}

impl Action {
    fn letter(self) -> char {
        match self {
            Action::Join => 'j',
            Action::Leave => 'l',
        }
    }

    /// The word used in mail ("join", "leave").
    pub fn word(self) -> &'static str {
        match self {
            Action::Join => "join",
            Action::Leave => "leave",
        }
    }
}

fn mac(secret: &[u8], action: Action, list: &str, address: &str, day: u64) -> String {
    mac_of(
        secret,
        &format!("{}\n{list}\n{address}\n{day}", action.word()),
    )
}

fn mac_of(secret: &[u8], payload: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let tag = hmac::sign(&key, payload.to_ascii_lowercase().as_bytes());
    // 80 bits of the HMAC, base32 without padding, lower-case.
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let bytes = &tag.as_ref()[..10];
    let mut out = String::with_capacity(16);
    let mut acc = 0u32;
    let mut bits = 0;
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((acc >> bits) & 31) as usize] as char);
        }
    }
    out
}

/// A token for `action` on `list` by `address`, made on `day` (days since the Unix epoch).
pub fn make(secret: &[u8], action: Action, list: &str, address: &str, day: u64) -> String {
    format!(
        "{}{day:x}x{}",
        action.letter(),
        mac(secret, action, list, address, day)
    )
}

/// The action `token` confirms for `address` on `list`, if it is genuine and not expired.
pub fn check(secret: &[u8], token: &str, list: &str, address: &str, today: u64) -> Option<Action> {
    let action = match token.chars().next()? {
        'j' => Action::Join,
        'l' => Action::Leave,
        _ => return None,
    };
    let (day, tag) = token.get(1..)?.split_once('x')?;
    let day = u64::from_str_radix(day, 16).ok()?;
    if day > today || today - day >= VALID_DAYS {
        return None;
    }
    same(&mac(secret, action, list, address, day), tag).then_some(action)
}

/// Compares two tokens in constant time: a token is a secret until it is sent.
fn same(expected: &str, given: &str) -> bool {
    expected.len() == given.len()
        && expected
            .bytes()
            .zip(given.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// The token in a member's one-click unsubscribe URL (RFC 8058). It does not expire: the URL
/// must keep working for as long as old posts sit in mailboxes.
pub fn unsubscribe(secret: &[u8], list: &str, address: &str) -> String {
    mac_of(secret, &format!("one-click\n{list}\n{address}"))
}

/// Whether `token` is `address`'s unsubscribe token for `list`.
pub fn check_unsubscribe(secret: &[u8], token: &str, list: &str, address: &str) -> bool {
    let expected = unsubscribe(secret, list, address);
    same(&expected, token)
}

/// The VERP token for `address`'s copy of queued message `id`: `{id:x}-{mac}`. A bounce to
/// `LIST-bounces+TOKEN@` names the member and the message, and cannot be forged.
pub fn verp(secret: &[u8], id: u64, address: &str) -> String {
    format!(
        "{id:x}-{}",
        mac_of(secret, &format!("verp\n{id}\n{address}"))
    )
}

/// The message id a VERP token names, before checking it against a member.
pub fn verp_id(token: &str) -> Option<u64> {
    let (id, _) = token.split_once('-')?;
    u64::from_str_radix(id, 16).ok()
}

/// Whether `token` is the VERP token of `address` for message `id`.
pub fn check_verp(secret: &[u8], token: &str, id: u64, address: &str) -> bool {
    let expected = verp(secret, id, address);
    same(&expected, token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_bind_address_and_expire() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let t = make(secret, Action::Join, "m@l.test", "a@x.test", 20_000);
        assert!(
            t.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
            "{t}"
        );
        assert_eq!(
            check(secret, &t, "m@l.test", "A@X.test", 20_002),
            Some(Action::Join)
        );
        assert_eq!(
            check(secret, &t, "m@l.test", "b@x.test", 20_000),
            None,
            "another address"
        );
        assert_eq!(
            check(secret, &t, "other@l.test", "a@x.test", 20_000),
            None,
            "another list"
        );
        assert_eq!(
            check(secret, &t, "m@l.test", "a@x.test", 20_003),
            None,
            "expired"
        );
        assert_eq!(
            check(b"another secret", &t, "m@l.test", "a@x.test", 20_000),
            None
        );
        let forged = t.replacen('j', "l", 1);
        assert_eq!(
            check(secret, &forged, "m@l.test", "a@x.test", 20_000),
            None,
            "the action is bound too"
        );
    }
}
