//! The Sender Rewriting Scheme as libsrs2, postsrsd and Postfix setups use it, so addresses
//! made here are read back by postsrsd with the same secret, and the other way round.
//!
//! `SRS0=HHHH=TT=domain=local@forwarder`: HHHH is the first four base64 characters of
//! HMAC-SHA1(secret, lower-case TT + domain + local), TT the day number modulo 1024 in two
//! base32 characters. A sender that is already SRS0 at another forwarder becomes
//! `SRS1=HHHH=thatforwarder==HHHH=TT=domain=local@us`, so the address does not grow with
//! every hop and a bounce goes back through each forwarder in turn.

use aws_lc_rs::hmac;
use base64::Engine;

/// Days are counted modulo this (two base32 characters).
const TIME_SLOTS: u64 = 1024;
const TIME_CHARS: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
/// Hash characters written (postsrsd's `-n`) and the fewest accepted (`-N`).
const HASH_LEN: usize = 4;

/// Why an address does not reverse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SrsError {
    /// Not an SRS0 or SRS1 address at all.
    #[error("not an SRS address")]
    NotSrs,
    /// SRS-shaped but missing parts.
    #[error("malformed SRS address")]
    Malformed,
    /// The hash does not match: forged, or made with another secret.
    #[error("SRS hash does not match (forged, or another forwarder's secret)")]
    BadHash,
    /// Made longer ago than the accepted age.
    #[error("SRS address has expired")]
    Expired,
}

/// An SRS rewriter for one forwarding domain.
#[derive(Clone)]
pub struct Srs {
    /// The first signs; all are accepted when reversing (so a secret can be rotated).
    secrets: Vec<Vec<u8>>,
    domain: String,
    max_age_days: u64,
}

impl std::fmt::Debug for Srs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Srs {{ domain: {:?} }}", self.domain)
    }
}

fn is_sep(c: u8) -> bool {
    matches!(c, b'=' | b'+' | b'-')
}

fn tagged(local: &str, tag: &str) -> bool {
    local.len() > 4
        && local.as_bytes()[..4].eq_ignore_ascii_case(tag.as_bytes())
        && is_sep(local.as_bytes()[4])
}

/// True when `local` is an SRS0 or SRS1 local part.
pub fn is_srs(local: &str) -> bool {
    tagged(local, "SRS0") || tagged(local, "SRS1")
}

impl Srs {
    /// A rewriter for `domain` (the host part of the addresses it makes). `secrets` are the
    /// lines of a postsrsd secrets file: the first signs, every one verifies. Addresses older
    /// than `max_age_days` are refused (postsrsd and libsrs2 default to 21).
    pub fn new(secrets: Vec<Vec<u8>>, domain: &str, max_age_days: u64) -> Self {
        Srs {
            secrets,
            domain: domain.to_ascii_lowercase(),
            max_age_days,
        }
    }

    /// The forwarding domain.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    fn hash_with(secret: &[u8], parts: &[&str]) -> String {
        let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
        let mut ctx = hmac::Context::with_key(&key);
        for part in parts {
            ctx.update(part.to_ascii_lowercase().as_bytes());
        }
        let tag = ctx.sign();
        let mut text = base64::engine::general_purpose::STANDARD.encode(tag.as_ref());
        text.truncate(HASH_LEN);
        text
    }

    fn hash(&self, parts: &[&str]) -> String {
        Self::hash_with(self.secrets.first().map_or(&[][..], |s| s), parts)
    }

    fn check(&self, hash: &str, parts: &[&str]) -> Result<(), SrsError> {
        if hash.len() < HASH_LEN {
            return Err(SrsError::BadHash);
        }
        // Compared without case, as libsrs2 does: some MTAs lower-case whole addresses.
        let good = self.secrets.iter().any(|s| {
            let made = Self::hash_with(s, parts);
            hash.len() <= made.len() && made[..hash.len()].eq_ignore_ascii_case(hash)
        });
        if good { Ok(()) } else { Err(SrsError::BadHash) }
    }

    /// The envelope sender to use when forwarding mail from `sender` at unix time `now`. The
    /// null sender stays null; an address already in our domain is left as it is.
    pub fn forward(&self, sender: &str, now: u64) -> String {
        let Some((local, host)) = sender.rsplit_once('@') else {
            return sender.to_string();
        };
        if sender.is_empty() || host.eq_ignore_ascii_case(&self.domain) {
            return sender.to_string();
        }
        let sep = '=';
        if tagged(local, "SRS1") {
            let rest = &local[5..];
            // Skip the previous hop's hash; keep the first forwarder's host and what follows.
            if let Some((hash_host, user)) = rest
                .split_once(sep)
                .and_then(|(_, after)| after.split_once(sep))
            {
                let hash = self.hash(&[hash_host, user]);
                return format!("SRS1{sep}{hash}{sep}{hash_host}{sep}{user}@{}", self.domain);
            }
        }
        if tagged(local, "SRS0") {
            let user = &local[4..];
            let hash = self.hash(&[host, user]);
            return format!("SRS1{sep}{hash}{sep}{host}{sep}{user}@{}", self.domain);
        }
        let stamp = timestamp(now);
        let hash = self.hash(&[&stamp, host, local]);
        format!(
            "SRS0{sep}{hash}{sep}{stamp}{sep}{host}{sep}{local}@{}",
            self.domain
        )
    }

    /// Where a bounce to `address` must go: the original sender for SRS0, the previous
    /// forwarder's SRS0 address for SRS1. Forged and expired addresses are errors.
    pub fn reverse(&self, address: &str, now: u64) -> Result<String, SrsError> {
        let local = address.rsplit_once('@').map_or(address, |(l, _)| l);
        if tagged(local, "SRS1") {
            let mut parts = local[5..].splitn(3, '=');
            let (Some(hash), Some(host), Some(user)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(SrsError::Malformed);
            };
            if host.is_empty() || user.is_empty() {
                return Err(SrsError::Malformed);
            }
            self.check(hash, &[host, user])?;
            return Ok(format!("SRS0{user}@{host}"));
        }
        if tagged(local, "SRS0") {
            let mut parts = local[5..].splitn(4, '=');
            let (Some(hash), Some(stamp), Some(host), Some(user)) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(SrsError::Malformed);
            };
            if host.is_empty() || user.is_empty() {
                return Err(SrsError::Malformed);
            }
            // The hash first: a forged address says "forged", not "expired".
            self.check(hash, &[stamp, host, user])?;
            self.check_age(stamp, now)?;
            return Ok(format!("{user}@{host}"));
        }
        Err(SrsError::NotSrs)
    }

    fn check_age(&self, stamp: &str, now: u64) -> Result<(), SrsError> {
        let b = stamp.as_bytes();
        if b.len() != 2 {
            return Err(SrsError::Malformed);
        }
        let mut then = 0u64;
        for c in b {
            let pos = TIME_CHARS
                .iter()
                .position(|t| *t == c.to_ascii_uppercase())
                .ok_or(SrsError::Malformed)?;
            then = (then << 5) | pos as u64;
        }
        let mut today = (now / 86_400) % TIME_SLOTS;
        while today < then {
            today += TIME_SLOTS;
        }
        if today <= then + self.max_age_days {
            Ok(())
        } else {
            Err(SrsError::Expired)
        }
    }
}

/// Today's two-character day stamp.
fn timestamp(now: u64) -> String {
    let day = now / 86_400;
    let chars = [
        TIME_CHARS[((day >> 5) & 31) as usize],
        TIME_CHARS[(day & 31) as usize],
    ];
    String::from_utf8_lossy(&chars).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_795_392_000; // 2026-11-22

    fn srs() -> Srs {
        Srs::new(vec![b"tops3cret".to_vec()], "fwd.example", 21)
    }

    #[test]
    fn srs0_round_trip_and_shape() {
        let s = srs();
        let a = s.forward("Alice@Author.example", NOW);
        let parts: Vec<&str> = a.split(['=', '@']).collect();
        assert_eq!(parts[0], "SRS0");
        assert_eq!(parts[1].len(), 4);
        assert_eq!(parts[2].len(), 2);
        assert_eq!(&parts[3..], &["Author.example", "Alice", "fwd.example"]);
        assert_eq!(s.reverse(&a, NOW), Ok("Alice@Author.example".into()));
        // Lower-cased on the way back by some MTA: still good.
        assert_eq!(
            s.reverse(&a.to_ascii_lowercase(), NOW),
            Ok("alice@author.example".into())
        );
    }

    #[test]
    fn forged_expired_and_foreign_addresses_are_refused() {
        let s = srs();
        let a = s.forward("alice@author.example", NOW);
        let forged = a
            .replacen("alice@", "mallory@", 1)
            .replacen("=alice", "=mallory", 1);
        assert_eq!(s.reverse(&forged, NOW), Err(SrsError::BadHash));
        assert_eq!(
            s.reverse(&a, NOW + 21 * 86_400),
            Ok("alice@author.example".into())
        );
        assert_eq!(s.reverse(&a, NOW + 22 * 86_400), Err(SrsError::Expired));
        let other = Srs::new(vec![b"another".to_vec()], "fwd.example", 21);
        assert_eq!(other.reverse(&a, NOW), Err(SrsError::BadHash));
        assert_eq!(s.reverse("alice@fwd.example", NOW), Err(SrsError::NotSrs));
        assert_eq!(
            s.reverse("SRS0=abcd@fwd.example", NOW),
            Err(SrsError::Malformed)
        );
    }

    #[test]
    fn rotated_secrets_still_reverse() {
        let old = srs();
        let a = old.forward("alice@author.example", NOW);
        let rotated = Srs::new(
            vec![b"new".to_vec(), b"tops3cret".to_vec()],
            "fwd.example",
            21,
        );
        assert_eq!(rotated.reverse(&a, NOW), Ok("alice@author.example".into()));
    }

    #[test]
    fn a_second_forwarder_makes_srs1_and_bounces_unwind_hop_by_hop() {
        let first = srs();
        let second = Srs::new(vec![b"other".to_vec()], "relay.example", 21);
        let srs0 = first.forward("alice@author.example", NOW);
        let srs1 = second.forward(&srs0, NOW);
        assert!(srs1.starts_with("SRS1="), "{srs1}");
        assert!(srs1.contains("=fwd.example=="), "{srs1}");
        // A third forwarder keeps SRS1 flat, naming the first forwarder still.
        let third = Srs::new(vec![b"third".to_vec()], "third.example", 21);
        let again = third.forward(&srs1, NOW);
        assert!(again.contains("=fwd.example=="), "{again}");
        let back = second.reverse(&srs1, NOW).expect("srs1 reverses");
        assert_eq!(back.to_ascii_lowercase(), srs0.to_ascii_lowercase());
        assert_eq!(first.reverse(&back, NOW), Ok("alice@author.example".into()));
    }

    #[test]
    fn null_and_local_senders_are_kept() {
        let s = srs();
        assert_eq!(s.forward("", NOW), "");
        assert_eq!(
            s.forward("postmaster@FWD.example", NOW),
            "postmaster@FWD.example"
        );
    }

    #[test]
    fn day_stamps_wrap_every_1024_days() {
        let s = srs();
        let a = s.forward("a@b.example", 1023 * 86_400);
        assert_eq!(
            s.reverse(&a, 1024 * 86_400 + 3 * 86_400),
            Ok("a@b.example".into())
        );
    }
}
