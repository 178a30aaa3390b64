//! Parts for test beds and the demo, kept out of the server's library: a recording SMTP sink
//! standing in for receivers' mail servers ([`sink`]), and the runner of the open ARC test suite
//! against the engine ([`conformance`]). (The loopback DNS server lives with the resolver in
//! `arclist_auth::dns`.)

pub mod conformance;
pub mod sink;
