//! Message data as it travels inside SMTP's DATA command. Delivery writes it
//! ([`crate::stages::delivery::wire`]); kept here too for the tools that speak SMTP to the listeners
//! (the demo, tests, benches).

pub use crate::stages::delivery::wire::dot_stuff;
