//! The one way out: what every message leaving as one of our identities passes through on
//! its last step. [`signer`] adds the ARC set and the DKIM signature (and, later, DKIM2) for
//! lists and forwarding alike; [`compose`] writes the mail arclist composes itself (notices,
//! mail for the owners, delivery status notifications, DMARC reports), so header encoding,
//! MIME boundaries and line ends are decided in one place.

pub mod compose;
pub mod signer;

pub use compose::{Body, Mail, Multipart, Part};

pub use signer::{Arrival, SignError, Signer, Unsigned};
