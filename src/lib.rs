//! arclist: an ARC-aware mailing-list forwarder.
//!
//! A post travels `smtp → store → auth → list → auth (sign) → store (queue) → delivery`;
//! each stage has its own module, and [`pipeline`] assembles them in one place:
//!
//! - [`smtp`]: the listener (stage 1), accepting only addresses arclist serves;
//! - [`store`]: the durable spool (stage 2), committed before `250`;
//! - [`auth`]: SPF, DKIM, DMARC and ARC verification (stage 3) and signing (stage 7);
//! - [`list`]: trust, policy and the list's copy (stages 4 to 6);
//! - [`pipeline`]: what happens to a spooled post;
//! - [`config`], [`server`], [`cli`]: configuration, assembly, the command line;
//! - [`conformance`]: the open ARC test suite runner.

// Every public item says why it exists; keep it so.
#![warn(missing_docs)]

pub mod auth;
pub mod cli;
pub mod config;
pub mod conformance;
pub mod delivery;
pub mod directory;
pub mod forward;
pub mod list;
pub mod metrics;
pub mod operate;
pub mod pipeline;
pub mod server;
pub mod smtp;
pub mod store;
pub mod tasks;
pub mod testbed;
pub mod trace;
pub mod web;
