//! What a backend must provide, by role: each trait is one narrow surface, and each backend
//! implements only the roles it has. The semantics both backends share (setting a message
//! aside, a finished post's outcomes, a single node's claims) are written once, above them, on
//! [`super::Store`]; callers never see these traits.

mod archive;
mod cluster;
mod digests;
mod members;
mod queue;
mod rates;
mod records;
mod slots;
mod spool;

pub(crate) use archive::Archive;
pub(crate) use cluster::{Cluster, Leases};
pub(crate) use digests::Digests;
pub(crate) use members::{Members, tally};
pub(crate) use queue::Queue;
pub(crate) use rates::Rates;
pub(crate) use records::Records;
pub(crate) use slots::Slots;
pub(crate) use spool::Spool;
