//! Tools for the people who run arclist: [`check_dns`] (what receivers will check),
//! [`metrics`] (Prometheus counters on the admin listener) and [`report`] (what happened to
//! whose mail).

pub mod check_dns;
pub mod metrics;
pub mod report;
