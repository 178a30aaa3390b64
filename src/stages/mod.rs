//! A message's way through arclist, one folder a stage: SMTP in (`smtp`, with our `trace`
//! field and the `filter` screens before `250`), the `pipeline` that authenticates and routes
//! it, who an address is (`directory`), the `list`'s policy and copy or `forward`ing, the one
//! way out (`outbound`: signing, and the mail arclist writes itself) and `delivery`.

pub mod delivery;
pub mod directory;
pub mod filter;
pub mod forward;
pub mod list;
pub mod outbound;
pub mod pipeline;
pub mod smtp;
pub mod trace;
