//! What arclist must not lose: the store (spool, queue, members, records) with its two backends.

pub mod store;
