//! Stage 8: delivering queued copies to the members' mail servers.
//!
//! [`worker`] picks due recipients and spreads each destination over a bounded number of
//! connections; [`route`] finds where a domain's mail goes (a smarthost, or MX records falling
//! back to A/AAAA); [`connect`] opens a connection (TLS, EHLO, AUTH) and [`pool`] keeps it for
//! the next message; [`client`] runs the transactions, pipelined when offered, reading each
//! RCPT reply on its own so one refused address does not fail the others. A recipient is
//! marked delivered only after the server's 250 for the message data.

pub mod client;
pub mod connect;
pub mod pool;
pub mod route;
pub mod tls;
pub mod worker;

pub use worker::{DeliveryWorker, Limits};
