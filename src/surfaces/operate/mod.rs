//! Tools for the people who run arclist: [`check_dns`] (what receivers will check),
//! and [`report`] (what happened to whose mail). The Prometheus counters are [`crate::base::metrics`].

pub mod check_dns;
pub mod dmarc_out;
pub mod report;
