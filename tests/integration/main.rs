//! arclist's integration tests: one binary, real sockets, real DNS on loopback, real keys.

mod postgres;
mod smtp_support;
mod support;

mod admin_api;
mod admin_listener;
mod arc_chain_limits;
mod behind_postfix;
mod browser;
mod chain_viewer;
mod check_dns;
mod cli;
mod conformance_suite;
mod console;
mod delivery;
mod dkimpy_interop;
mod dmarc_2026;
mod dmarc_reports;
mod dns_failures;
mod docs_examples;
mod everyday;
mod forwarding;
mod hostile;
mod house_rules;
mod lifecycle;
mod list_pipeline;
mod malformed_input;
mod one_click;
mod operate;
mod operator_guide;
mod real_arc;
mod server_process;
mod smtp_session;
mod spf_dmarc;
mod store_backends;
