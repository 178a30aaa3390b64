//! arclist: an ARC-aware mailing-list forwarder.
//!
//! A post travels `smtp → store → auth → list → auth (sign) → store (queue) → delivery`;
//! each stage has its own module, and [`pipeline`] assembles them in one place:
//!
//! - [`smtp`]: the listener (stage 1), accepting only addresses [`directory`] knows;
//! - [`store`]: the durable spool (stage 2), committed before `250`, and the queue;
//! - [`auth`]: SPF, DKIM, DMARC and ARC verification (stage 3), trusted sealers (stage 4) and
//!   signing (stage 7): the `arclist-auth` crate (`crates/arclist-auth/`), re-exported here;
//! - [`list`]: policy and the list's copy (stages 5 and 6); [`forward`]: aliases with SRS;
//! - [`pipeline`]: what happens to a spooled message; [`delivery`]: stage 8;
//! - [`operate`], [`admin`], [`web`]: reports, DNS checks, the typed admin service, one-click
//!   unsubscribe, the admin listener;
//! - [`config`], [`server`], [`cli`]: configuration, assembly, the command line;
//! - [`metrics`], [`memory`], [`tasks`], [`live`], [`per_client`], [`tls_roots`], [`header`],
//!   [`trace`]: leaves every stage may use;
//! - the open ARC test suite runner and the recording SMTP sink of the demo and tests live in
//!   the `arclist-testbed` crate (`crates/arclist-testbed/`).
//!
//! Imports only go down that list's floors (`tests/integration/house_rules.rs`,
//! `docs/code-map.md`): [`auth`] uses nothing of arclist's at all; it reports its counts
//! through an observer that [`metrics`] implements.

// Every public item says why it exists; keep it so.
#![warn(missing_docs)]

pub mod admin;
/// The authentication engine, a crate of its own; `crate::auth::...` paths keep working.
pub use arclist_auth as auth;
pub mod cli;
pub mod config;
pub mod delivery;
pub mod directory;
pub mod filter;
pub mod forward;
pub mod header;
pub mod list;
pub mod live;
pub mod memory;
pub mod metrics;
pub mod operate;
pub mod outbound;
pub mod per_client;
pub mod pipeline;
pub mod server;
pub mod smtp;
pub mod store;
pub mod tasks;
pub mod tls_roots;
pub mod trace;
pub mod web;
