//! Stage 8: delivering queued copies to the members' mail servers.
//!
//! [`worker`] picks due recipients and spreads each destination over a bounded number of
//! connections; [`route`] finds where a domain's mail goes (a smarthost, or MX records falling
//! back to A/AAAA); [`connect`] opens a connection (TLS, EHLO, AUTH) and [`pool`] keeps it for
//! the next message, and [`slots`] bounds the connections to one destination (over the whole
//! cluster on a shared store); [`client`] runs the transactions, pipelined when offered,
//! reading each RCPT reply on its own so one refused address does not fail the others. A
//! recipient is marked delivered only after the server's 250 for the message data; [`wire`]
//! dot-stuffs it. A copy goes out as [`outgoing`]: fields of its recipient's own in front of
//! the bytes every recipient shares, written with one vectored write.
//!
//! Delivery holds no policy: [`owner`] says who a queued message belongs to (a list, a
//! forwarding domain, an SRS return) and what delivery asks them through [`OwnerHook`] (each
//! recipient's envelope sender and copy, and what follows a round). The hooks live with their
//! policy, in `list` and `forward`, which sit above delivery; the server wires them in.

pub mod client;
pub mod connect;
mod cpu_pool;
mod error;
pub mod outgoing;
pub mod owner;
pub mod pool;
pub mod route;
pub mod slots;
pub mod tls;
mod unrecorded;
pub mod wire;
pub mod worker;

pub use error::DeliveryError;
pub use outgoing::Outgoing;
pub use owner::{HookError, Hooks, Owner, OwnerHook, PerRecipient, Queued};
pub use worker::{BindAddresses, DeliveryWorker, Limits};
