//! The ground every layer stands on: configuration, metrics, tasks, live values, per-client
//! counts, TLS roots and the one header encoder. Nothing here knows a message's way.

pub mod config;
pub mod header;
pub mod live;
pub mod memory;
pub mod metrics;
pub mod per_client;
pub mod tasks;
pub mod tls_roots;
