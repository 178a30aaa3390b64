//! Stage 1 of a post's way: the SMTP (and LMTP) listener.
//!
//! A tokio accept loop hands each connection to a [`session`], which drives smtp-proto's
//! parser, accepts only the addresses arclist serves ([`crate::stages::directory`]), and spools each message
//! durably before answering `250`.

pub mod body;
pub mod data;
pub mod forwarded;
pub mod listener;
mod reply;
pub mod screen;
pub mod session;
pub mod socketmap;
pub mod tls;
pub mod wire;

pub use listener::{Listener, ListenerHandle, Protocol};
