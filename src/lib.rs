//! arclist: an ARC-aware mailing-list forwarder.
//!
//! The code is a house of six layers, bottom first; a layer imports only layers below it (and,
//! inside a layer, modules on lower floors), which `tests/integration/house_rules.rs` checks:
//!
//! 1. the engine, [`auth`]: SPF, DKIM, DMARC, ARC and DKIM2 verification and signing, and DNS;
//!    the `arclist-auth` crate (`crates/arclist-auth/`), re-exported here. It uses nothing of
//!    arclist's and reports its counts through an observer that [`base::metrics`] implements;
//! 2. [`base`]: configuration, metrics, tasks, live values, per-client counts, TLS roots and the
//!    one header encoder: leaves every layer may use;
//! 3. [`state`]: the store, what arclist must not lose (the spool committed before `250`, the
//!    queue, members, records);
//! 4. [`stages`]: a post's way, one folder a stage: [`stages::smtp`] in, the screens before
//!    `250` ([`stages::filter`]), the [`stages::pipeline`] that authenticates and routes it, the
//!    [`stages::list`]'s policy and copy or [`stages::forward`]ing, the one way out
//!    ([`stages::outbound`]: signing and the mail arclist writes) and [`stages::delivery`];
//! 5. [`surfaces`]: what people run it with: the typed admin service, the HTTP listeners
//!    (one-click, admin API, console, chain viewer), reports and DNS checks;
//! 6. [`assembly`]: a running server put together ([`assembly::server`]) and the `arclist`
//!    command ([`assembly::cli`]).
//!
//! The open ARC test suite runner and the recording SMTP sink of the demo and tests live in the
//! `arclist-testbed` crate (`crates/arclist-testbed/`). `docs/architecture.md` explains the
//! layers, `docs/code-map.md` maps every module.

// Every public item says why it exists; keep it so.
#![warn(missing_docs)]

/// The authentication engine, a crate of its own; `crate::auth::...` paths keep working.
pub use arclist_auth as auth;

pub mod assembly;
pub mod base;
pub mod stages;
pub mod state;
pub mod surfaces;
