//! What went wrong with a list's own identity and members: its key, its signature, the
//! one-click tokens it seals, the seeding of its members.

use crate::auth::signing_key::KeyLoadError;
use crate::state::store::StoreError;

/// Why a list could not load, sign or seed, naming the list where the caller may not know it.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    /// The list's signing key does not load.
    #[error("list {list}: {source}")]
    Key {
        /// The list's posting address.
        list: String,
        /// Why the key does not load.
        #[source]
        source: KeyLoadError,
    },
    /// DKIM signing failed (the engine says why in words).
    #[error("{0}")]
    Sign(String),
    /// A member's one-click token could not be sealed.
    #[error(transparent)]
    Token(#[from] super::tokens::TokenError),
    /// The members the list file names could not be stored.
    #[error("list {list}: cannot seed members: {source}")]
    Seed {
        /// The list's posting address.
        list: String,
        /// Why.
        #[source]
        source: StoreError,
    },
}
