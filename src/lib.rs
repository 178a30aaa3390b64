//! arclist: an ARC-aware mailing-list forwarder.
//!
//! A post travels `smtp → store → auth → list → auth (sign) → store (queue) → delivery`; each
//! stage has its own module. This crate so far holds the authentication engine ([`auth`]) and
//! the test-bed commands built on it ([`cli`]).

pub mod auth;
pub mod cli;
pub mod conformance;
