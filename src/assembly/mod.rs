//! Puts a running server together from its configuration (`server`) and the `arclist` command
//! that starts it and talks to it (`cli`).

pub mod cli;
pub mod server;
