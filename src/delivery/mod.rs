//! Stage 8: delivering queued copies to the members' mail servers.
//!
//! [`worker`] picks due recipients, [`route`] finds where a domain's mail goes (a smarthost, or
//! MX records falling back to A/AAAA), and [`client`] speaks SMTP to it, one transaction per
//! destination with every recipient of that domain, reading each RCPT reply on its own so one
//! refused address does not fail the others. A recipient is marked delivered only after the
//! server's 250 for the message data.

pub mod client;
pub mod opportunistic_tls;
pub mod route;
pub mod worker;

pub use worker::DeliveryWorker;
