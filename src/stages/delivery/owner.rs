//! Who queued mail belongs to, and what delivery asks them.
//!
//! Delivery moves bytes; the policy of what it moves lives with whoever queued them. A list
//! wants each member's own envelope sender (VERP) and copy (one-click unsubscribe), and counts
//! members' refusals against their bounce score; a forwarding domain tells the original sender
//! of targets that refused. Delivery reads the owner once from the queue ([`Owner::parse`]),
//! asks that owner's [`OwnerHook`] (the assembly wires one per kind into [`Hooks`]), and knows
//! nothing of lists or forwarding itself.

use crate::state::store::{Delivery, QueueHead};
use std::fmt;
use std::sync::Arc;

/// The prefix of a forwarded message's owner in the queue: `forward:DOMAIN`.
const FORWARD: &str = "forward:";
/// The prefix of a forwarding domain's delivery status notification: `dsn:DOMAIN`.
const DSN: &str = "dsn:";
/// A bounce returned to an original sender through an SRS address.
const SRS: &str = "srs";

/// Who a queued message belongs to. Stored as a string in the queue (the `list` field of
/// [`QueueHead`] and `QueueEntry`, and the PostgreSQL column of that name); that string's
/// format is written and read only here, so existing queues keep working.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Owner {
    /// A list's post, notice or mail for its owners: the list's posting address, stored as is.
    List(String),
    /// Mail forwarded for an alias of this forwarding domain (`forward:DOMAIN`).
    Forward(String),
    /// A delivery status notification this forwarding domain sends to a forwarded message's
    /// original sender (`dsn:DOMAIN`).
    Dsn(String),
    /// A bounce returned to an original sender through an SRS address (`srs`).
    SrsReturn,
}

impl Owner {
    /// The owner stored as `stored`. Anything that is not one of the forwarding forms is a
    /// list's address (list addresses always carry an `@`, which the other forms never do).
    pub fn parse(stored: &str) -> Owner {
        if let Some(domain) = stored.strip_prefix(FORWARD) {
            Owner::Forward(domain.to_string())
        } else if let Some(domain) = stored.strip_prefix(DSN) {
            Owner::Dsn(domain.to_string())
        } else if stored == SRS {
            Owner::SrsReturn
        } else {
            Owner::List(stored.to_string())
        }
    }
}

impl fmt::Display for Owner {
    /// The owner as the queue stores it; [`Owner::parse`] reads it back unchanged.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Owner::List(address) => f.write_str(address),
            Owner::Forward(domain) => write!(f, "{FORWARD}{domain}"),
            Owner::Dsn(domain) => write!(f, "{DSN}{domain}"),
            Owner::SrsReturn => f.write_str(SRS),
        }
    }
}

/// Why an owner could not make what a round's recipients need.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// The store could not give what the copies are made with (the token secret).
    #[error(transparent)]
    Store(#[from] crate::state::store::StoreError),
    /// A recipient's own copy could not be made (its signature, its one-click link): the
    /// owner's error, which delivery cannot name, is the source.
    #[error("{0}")]
    Copy(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// The queued message a hook is asked about.
#[derive(Debug, Clone, Copy)]
pub struct Queued<'a> {
    /// Its owner, as parsed from `head.list`.
    pub owner: &'a Owner,
    /// Its queue head (spool id, envelope sender, when it was queued).
    pub head: &'a QueueHead,
    /// A message its owner wrote itself (a notice, mail for the owners): everyone gets the
    /// same bytes, and its readers need not be members.
    pub plain: bool,
}

/// Each recipient's envelope sender and copy for one round of one message. Made once per
/// round by [`OwnerHook::per_recipient`], then asked once per recipient on the fan-out's hot
/// path: implementations keep their per-round work (keys, secrets) in `self`.
pub trait PerRecipient: Send + Sync {
    /// The envelope sender for `recipient`'s copy of queued message `id`.
    fn envelope_sender(&self, id: u64, recipient: &str) -> String;

    /// `recipient`'s copy of the `shared` one (the queued copy, or its 7-bit twin), sent from
    /// `mail_from` (what [`PerRecipient::envelope_sender`] gave for them: worked out once, as
    /// a VERP address costs a keyed hash): fields of their own in front of the shared bytes
    /// (a reference count, no copy of them), or the shared bytes alone when the recipient
    /// needs nothing of their own.
    fn copy(
        &self,
        recipient: &str,
        mail_from: &str,
        shared: &Arc<[u8]>,
    ) -> Result<super::Outgoing, HookError>;
}

/// What delivery asks the owner of a queued message. Every method is called on the blocking
/// pool, so it may use the store. An owner that does not override a method gets the default:
/// the queued envelope sender and one shared copy for everyone, and nothing after a round.
pub trait OwnerHook: Send + Sync {
    /// Per-recipient envelope senders and copies for this round of `queued`, or `None` when
    /// every recipient shares the queued envelope sender and copy (and so may share a
    /// transaction). Never asked for a plain message. An error defers the round.
    fn per_recipient(
        &self,
        queued: Queued<'_>,
    ) -> Result<Option<Arc<dyn PerRecipient>>, HookError> {
        let _ = queued;
        Ok(None)
    }

    /// A round's outcomes, before they are recorded: for what must happen at least once (a
    /// crash before the record repeats it), such as telling a sender. Failures are the
    /// hook's to log; the round is recorded regardless.
    fn before_record(&self, queued: Queued<'_>, round: &[Delivery]) {
        let _ = (queued, round);
    }

    /// A round's outcomes, after they are recorded: for what must happen at most once, such
    /// as counting refusals against a member's bounce score. Failures are the hook's to log.
    fn after_record(&self, queued: Queued<'_>, round: &[Delivery]) {
        let _ = (queued, round);
    }
}

/// The hooks delivery asks, one per kind of owner. An owner with none (an SRS return, a
/// delivery status notification, or a kind the assembly wired nothing for) gets the default
/// of [`OwnerHook`].
#[derive(Clone, Default)]
pub struct Hooks {
    /// Asked for [`Owner::List`].
    pub list: Option<Arc<dyn OwnerHook>>,
    /// Asked for [`Owner::Forward`].
    pub forward: Option<Arc<dyn OwnerHook>>,
}

impl Hooks {
    /// The hook for `owner`, if one was wired.
    pub fn of(&self, owner: &Owner) -> Option<&Arc<dyn OwnerHook>> {
        match owner {
            Owner::List(_) => self.list.as_ref(),
            Owner::Forward(_) => self.forward.as_ref(),
            Owner::Dsn(_) | Owner::SrsReturn => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Owner;

    #[test]
    fn the_stored_forms_read_back_unchanged() {
        for (stored, owner) in [
            (
                "members@lists.test",
                Owner::List("members@lists.test".into()),
            ),
            (
                "Members@Lists.Test",
                Owner::List("Members@Lists.Test".into()),
            ),
            ("forward:fwd.test", Owner::Forward("fwd.test".into())),
            ("dsn:fwd.test", Owner::Dsn("fwd.test".into())),
            ("srs", Owner::SrsReturn),
        ] {
            assert_eq!(Owner::parse(stored), owner, "{stored}");
            assert_eq!(owner.to_string(), stored);
        }
    }
}
