//! Parts for test beds and the demo: a recording SMTP sink. (The loopback DNS server lives with
//! the resolver in [`crate::auth::dns`].)

pub mod sink;
