//! ARC (RFC 8617): finding the sets in a message, verifying the chain with a report for every
//! hop, and adding the next set.

mod chain;
mod seal;
mod verify;

pub use chain::{ArcSet, MAX_SETS, SealTags, collect_sets};
pub use seal::{ArcSealer, SealRefusal, SealedSet};
pub use verify::{ArcReport, ArcVerdict, Check, HopReport, verify_arc, wanted_keys};

use super::canon::{self, Canon};

/// The data an ARC-Seal of instance `upto` signs: every set from 1 to `upto` (or only its own
/// when it says cv=fail) as AAR, AMS, AS, relaxed; the seal itself last with `b=` emptied
/// (RFC 8617 §5.1.1).
pub(crate) fn seal_data(
    sets: &[ArcSet<'_>],
    upto: usize,
    own_seal_raw: &[u8],
    only_own: bool,
) -> Vec<u8> {
    let mut data = Vec::with_capacity(2048);
    let first = if only_own { upto } else { 1 };
    for set in sets
        .iter()
        .filter(|s| (first..=upto).contains(&(s.instance as usize)))
    {
        canon::header(Canon::Relaxed, set.aar.raw, &mut data);
        canon::header(Canon::Relaxed, set.ams.raw, &mut data);
        if (set.instance as usize) < upto {
            canon::header(Canon::Relaxed, set.seal.raw, &mut data);
        }
    }
    super::dkim::append_self(Canon::Relaxed, own_seal_raw, &mut data);
    data
}
