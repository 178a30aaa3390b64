//! Confirmation tokens for email commands (double opt-in).
//!
//! A token binds the action, the list, the address and the day it was made with an HMAC under
//! a secret kept in the store, so it cannot be guessed, cannot be used for another address, and
//! expires. It fits in an address local part: lower-case letters and digits only.

use crate::state::store::DeliveryMode;
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
    /// Change the member's delivery mode; with nomail, the day (since the Unix epoch) mail
    /// starts again.
    Set(DeliveryMode, Option<u64>),
}

impl Action {
    /// How the token starts: the action, and for a change the mode and its end day, so the
    /// reply carries everything [`check`] needs.
    fn prefix(self) -> String {
        match self {
            Action::Join => "j".into(),
            Action::Leave => "l".into(),
            Action::Set(mode, until) => format!(
                "s{}{}",
                mode_letter(mode),
                until.map(|d| format!("{d:x}u")).unwrap_or_default()
            ),
        }
    }

    /// The word used in mail ("join", "leave", "set").
    pub fn word(self) -> &'static str {
        match self {
            Action::Join => "join",
            Action::Leave => "leave",
            Action::Set(..) => "set",
        }
    }

    /// What the MAC binds: join and leave tokens made before changes existed stay valid.
    fn payload(self) -> String {
        match self {
            Action::Join | Action::Leave => self.word().to_string(),
            Action::Set(mode, until) => format!("set {mode} until {until:?}"),
        }
    }
}

fn mode_letter(mode: DeliveryMode) -> char {
    match mode {
        DeliveryMode::Regular => 'r',
        DeliveryMode::Digest => 'd',
        DeliveryMode::DigestPlain => 'p',
        DeliveryMode::Nomail => 'n',
    }
}

fn letter_mode(letter: char) -> Option<DeliveryMode> {
    DeliveryMode::ALL
        .into_iter()
        .find(|m| mode_letter(*m) == letter)
}

fn mac(secret: &[u8], action: Action, list: &str, address: &str, day: u64) -> String {
    mac_of(
        secret,
        &format!("{}\n{list}\n{address}\n{day}", action.payload()),
    )
}

fn mac_of(secret: &[u8], payload: &str) -> String {
    mac_with(&hmac::Key::new(hmac::HMAC_SHA256, secret), payload)
}

fn mac_with(key: &hmac::Key, payload: &str) -> String {
    let tag = hmac::sign(key, payload.to_ascii_lowercase().as_bytes());
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
        action.prefix(),
        mac(secret, action, list, address, day)
    )
}

/// The action `token` confirms for `address` on `list`, if it is genuine and not expired.
pub fn check(secret: &[u8], token: &str, list: &str, address: &str, today: u64) -> Option<Action> {
    let mut chars = token.chars();
    let (head, tag) = token.split_once('x')?;
    let (action, day) = match chars.next()? {
        'j' => (Action::Join, head.get(1..)?),
        'l' => (Action::Leave, head.get(1..)?),
        's' => {
            let mode = letter_mode(chars.next()?)?;
            let rest = head.get(2..)?;
            match rest.split_once('u') {
                Some((until, day)) if mode == DeliveryMode::Nomail => {
                    let until = u64::from_str_radix(until, 16).ok()?;
                    (Action::Set(mode, Some(until)), day)
                }
                Some(_) => return None,
                None => (Action::Set(mode, None), rest),
            }
        }
        _ => return None,
    };
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

/// What a one-click token names: the list, the member, and when it was made (`None` for a
/// token of the first form, made before tokens carried the time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneClick {
    /// The list's address.
    pub list: String,
    /// The member's address.
    pub address: String,
    /// Unix time the token was made (the copy it came in was sent), if it says.
    pub issued: Option<u64>,
}

/// Why a one-click token could not be sealed: the machine's cryptography failed.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The system gave no random bytes for the nonce.
    #[error("no randomness for a one-click token")]
    Randomness,
    /// AES-GCM refused to seal.
    #[error("cannot seal a one-click token")]
    Seal,
    /// The key could not be made from the store's secret.
    #[error("cannot make the one-click key")]
    Key,
}

/// The opaque token of a one-click URL (RFC 8058): `list`, `address` and the time `issued`,
/// encrypted and authenticated (AES-256-GCM under a key derived from the store's secret), so
/// the URL neither shows the member's address to whoever sees it nor can be made for another
/// address or time. The time tells a link from a copy sent before the member last joined
/// (see [`super::unsubscribe::stale`]). A fresh nonce each time: two copies carry different
/// URLs for the same member.
pub fn seal_unsubscribe(
    secret: &[u8],
    list: &str,
    address: &str,
    issued: u64,
) -> Result<String, TokenError> {
    seal_with(secret, ONE_CLICK_AAD, list, address, issued)
}

/// `list`, `address` and `issued` sealed under the one-click key, bound by `aad` to one use.
fn seal_with(
    secret: &[u8],
    aad: &'static [u8],
    list: &str,
    address: &str,
    issued: u64,
) -> Result<String, TokenError> {
    seal_under(&one_click_key(secret)?, aad, list, address, issued)
}

/// [`seal_with`] under the one-click `key`.
fn seal_under(
    key: &aws_lc_rs::aead::LessSafeKey,
    aad: &'static [u8],
    list: &str,
    address: &str,
    issued: u64,
) -> Result<String, TokenError> {
    use aws_lc_rs::aead::{Aad, NONCE_LEN, Nonce};
    use base64::Engine;
    let mut nonce = [0u8; NONCE_LEN];
    aws_lc_rs::rand::fill(&mut nonce).map_err(|_| TokenError::Randomness)?;
    let mut sealed = format!("{list}\n{address}\n{issued}")
        .to_ascii_lowercase()
        .into_bytes();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad),
        &mut sealed,
    )
    .map_err(|_| TokenError::Seal)?;
    let mut token = nonce.to_vec();
    token.extend_from_slice(&sealed);
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token))
}

/// What a one-click token names, if it is one this store made (either form).
pub fn open_unsubscribe(secret: &[u8], token: &str) -> Option<OneClick> {
    open_with(secret, token, &[ONE_CLICK_AAD, ONE_CLICK_AAD_V1])
}

/// What a token sealed under one of `aads` names; a token of the first one-click form (no
/// time) has `issued` `None`.
fn open_with(secret: &[u8], token: &str, aads: &[&'static [u8]]) -> Option<OneClick> {
    use aws_lc_rs::aead::{Aad, NONCE_LEN, Nonce};
    use base64::Engine;
    // A list, an address and a time fit in far less; longer input is not ours.
    if token.len() > 1024 {
        return None;
    }
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()?;
    if raw.len() < NONCE_LEN {
        return None;
    }
    let (nonce, sealed) = raw.split_at(NONCE_LEN);
    let key = one_click_key(secret).ok()?;
    for &aad in aads {
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut sealed = sealed.to_vec();
        let Ok(plain) = key.open_in_place(nonce, Aad::from(aad), &mut sealed) else {
            continue;
        };
        let text = std::str::from_utf8(plain).ok()?;
        let mut parts = text.split('\n');
        let (list, address) = (parts.next()?, parts.next()?);
        let issued = match aad == ONE_CLICK_AAD_V1 {
            false => Some(parts.next()?.parse().ok()?),
            true => None,
        };
        return Some(OneClick {
            list: list.to_string(),
            address: address.to_string(),
            issued,
        });
    }
    None
}

/// What a link on a list's public pages is for (`docs/members.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkUse {
    /// Confirms a subscription asked for on the list's page.
    Join,
    /// Opens a member's settings page.
    Settings,
}

impl LinkUse {
    fn aad(self) -> &'static [u8] {
        match self {
            LinkUse::Join => b"arclist web join v1",
            LinkUse::Settings => b"arclist web settings v1",
        }
    }
}

/// The opaque token of a link that `use_` of `list` by `address`, made at `now`: sealed as a
/// one-click token is, under the same key, but bound to its use so that no token passes for
/// another kind (a settings link cannot unsubscribe by one-click, nor confirm a join).
pub fn seal_link(
    secret: &[u8],
    use_: LinkUse,
    list: &str,
    address: &str,
    now: u64,
) -> Result<String, TokenError> {
    seal_with(secret, use_.aad(), list, address, now)
}

/// The list and address a `use_` link names, if this store made it for that use less than
/// [`VALID_DAYS`] days before `now`.
pub fn open_link(secret: &[u8], use_: LinkUse, token: &str, now: u64) -> Option<OneClick> {
    let link = open_with(secret, token, &[use_.aad()])?;
    let issued = link.issued?;
    (issued <= now + 60 && now.saturating_sub(issued) < VALID_DAYS * 86_400).then_some(link)
}

/// Binds one-click tokens to their use and form, so no other sealed value could pass for one.
const ONE_CLICK_AAD: &[u8] = b"arclist one-click v2";
/// The first form, without the time: still opened, for copies sent before.
const ONE_CLICK_AAD_V1: &[u8] = b"arclist one-click v1";

fn one_click_key(secret: &[u8]) -> Result<aws_lc_rs::aead::LessSafeKey, TokenError> {
    let derive = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let material = hmac::sign(&derive, b"arclist one-click key");
    let key = aws_lc_rs::aead::UnboundKey::new(&aws_lc_rs::aead::AES_256_GCM, material.as_ref())
        .map_err(|_| TokenError::Key)?;
    Ok(aws_lc_rs::aead::LessSafeKey::new(key))
}

/// The token that lets a moderator of `list` decide held post `id` by mail: `{id:x}-{mac}`.
/// Only the moderators' notice carries it.
pub fn moderation(secret: &[u8], list: &str, id: u64) -> String {
    format!(
        "{id:x}-{}",
        mac_of(secret, &format!("moderate\n{list}\n{id}"))
    )
}

/// The held post a moderation token of `list` names, if the token is good.
pub fn check_moderation(secret: &[u8], token: &str, list: &str) -> Option<u64> {
    let id = verp_id(token)?;
    same(&moderation(secret, list, id), token).then_some(id)
}

/// The VERP token for `address`'s copy of queued message `id`: `{id:x}-{mac}`. A bounce to
/// `LIST-bounces+TOKEN@` names the member and the message, and cannot be forged.
pub fn verp(secret: &[u8], id: u64, address: &str) -> String {
    verp_with(&hmac::Key::new(hmac::HMAC_SHA256, secret), id, address)
}

fn verp_with(key: &hmac::Key, id: u64, address: &str) -> String {
    format!(
        "{id:x}-{}",
        mac_with(key, &format!("verp\n{id}\n{address}"))
    )
}

/// The keys the tokens of a fan-out's copies are made with (VERP's HMAC key and the one-click
/// key), derived from the store's secret once a round instead of once a copy: a
/// 100,000-member round would otherwise set up 200,000 keys.
pub struct TokenKeys {
    mac: hmac::Key,
    one_click: aws_lc_rs::aead::LessSafeKey,
}

impl TokenKeys {
    /// The keys of `secret`.
    pub fn new(secret: &[u8]) -> Result<TokenKeys, TokenError> {
        Ok(TokenKeys {
            mac: hmac::Key::new(hmac::HMAC_SHA256, secret),
            one_click: one_click_key(secret)?,
        })
    }

    /// [`verp`] under these keys.
    pub fn verp(&self, id: u64, address: &str) -> String {
        verp_with(&self.mac, id, address)
    }

    /// [`seal_unsubscribe`] under these keys.
    pub fn seal_unsubscribe(
        &self,
        list: &str,
        address: &str,
        issued: u64,
    ) -> Result<String, TokenError> {
        seal_under(&self.one_click, ONE_CLICK_AAD, list, address, issued)
    }
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
    fn a_rounds_keys_make_the_tokens_the_secret_makes() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let keys = TokenKeys::new(secret).expect("keys");
        assert_eq!(keys.verp(42, "Ann@A.Test"), verp(secret, 42, "Ann@A.Test"));
        assert!(check_verp(
            secret,
            &keys.verp(42, "ann@a.test"),
            42,
            "ann@a.test"
        ));
        let sealed = keys
            .seal_unsubscribe("m@l.test", "Ann@A.Test", 1_800_000_000)
            .expect("seal");
        let opened = open_unsubscribe(secret, &sealed).expect("opens with the secret");
        assert_eq!(
            (opened.list.as_str(), opened.address.as_str(), opened.issued),
            ("m@l.test", "ann@a.test", Some(1_800_000_000))
        );
        assert!(open_unsubscribe(b"another secret of 32 bytes......", &sealed).is_none());
    }

    #[test]
    fn one_click_tokens_hide_the_address_and_open_only_with_the_secret() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let token =
            seal_unsubscribe(secret, "Members@Lists.Test", "Ann@A.Test", 1_800_000_000).unwrap();
        assert!(!token.to_ascii_lowercase().contains("ann"), "{token}");
        assert_eq!(
            open_unsubscribe(secret, &token),
            Some(OneClick {
                list: "members@lists.test".into(),
                address: "ann@a.test".into(),
                issued: Some(1_800_000_000),
            })
        );
        assert_eq!(
            open_unsubscribe(b"another secret of 32 bytes......", &token),
            None
        );
        let mut forged = token.into_bytes();
        forged[20] = if forged[20] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            open_unsubscribe(secret, &String::from_utf8(forged).unwrap()),
            None
        );
    }

    /// A token of the first form (list and address, no time), as copies sent before carry.
    fn v1_token(secret: &[u8], list: &str, address: &str) -> String {
        use aws_lc_rs::aead::{Aad, NONCE_LEN, Nonce};
        use base64::Engine;
        let nonce = [3u8; NONCE_LEN];
        let mut sealed = format!("{list}\n{address}").into_bytes();
        one_click_key(secret)
            .unwrap()
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(ONE_CLICK_AAD_V1),
                &mut sealed,
            )
            .unwrap();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([&nonce[..], &sealed].concat())
    }

    #[test]
    fn first_form_one_click_tokens_still_open_without_a_time() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let token = v1_token(secret, "members@lists.test", "ann@a.test");
        assert_eq!(
            open_unsubscribe(secret, &token),
            Some(OneClick {
                list: "members@lists.test".into(),
                address: "ann@a.test".into(),
                issued: None,
            })
        );
    }

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

    #[test]
    fn a_change_token_carries_its_mode_and_end_day() {
        let secret = b"0123456789abcdef0123456789abcdef";
        for action in [
            Action::Set(DeliveryMode::Nomail, Some(20_833)),
            Action::Set(DeliveryMode::Nomail, None),
            Action::Set(DeliveryMode::DigestPlain, None),
            Action::Set(DeliveryMode::Regular, None),
        ] {
            let t = make(secret, action, "m@l.test", "a@x.test", 20_000);
            assert!(
                t.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
                "{t}"
            );
            assert_eq!(
                check(secret, &t, "m@l.test", "a@x.test", 20_001),
                Some(action)
            );
        }
        let t = make(
            secret,
            Action::Set(DeliveryMode::Nomail, Some(20_833)),
            "m@l.test",
            "a@x.test",
            20_000,
        );
        for forged in [
            t.replacen("5161u", "5162u", 1),
            t.replacen("sn", "sr", 1),
            t.replacen("5161u", "", 1),
        ] {
            assert_ne!(forged, t);
            assert_eq!(
                check(secret, &forged, "m@l.test", "a@x.test", 20_001),
                None,
                "{forged}"
            );
        }
    }

    #[test]
    fn a_link_opens_only_for_its_use_and_expires() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let now = 1_800_000_000;
        let join = seal_link(secret, LinkUse::Join, "m@l.test", "a@x.test", now).expect("seal");
        let opened = open_link(secret, LinkUse::Join, &join, now + 3600).expect("opens");
        assert_eq!(
            (opened.list.as_str(), opened.address.as_str()),
            ("m@l.test", "a@x.test")
        );
        assert_eq!(
            open_link(secret, LinkUse::Settings, &join, now),
            None,
            "another use"
        );
        assert_eq!(
            open_unsubscribe(secret, &join),
            None,
            "not a one-click token"
        );
        let one_click = seal_unsubscribe(secret, "m@l.test", "a@x.test", now).expect("seal");
        assert_eq!(open_link(secret, LinkUse::Join, &one_click, now), None);
        let late = now + VALID_DAYS * 86_400;
        assert_eq!(
            open_link(secret, LinkUse::Join, &join, late),
            None,
            "expired"
        );
        assert_eq!(
            open_link(b"another secret", LinkUse::Join, &join, now),
            None
        );
    }
}
