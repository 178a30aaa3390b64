//! What delivery asks a list about its queued mail: each member's envelope sender (VERP) and
//! copy (one-click unsubscribe, signed for that member), and, after a round, the members'
//! refusals counted against their bounce score.

use super::{ListRuntime, Lists};
use crate::stages::delivery::client::MESSAGE_REFUSED;
use crate::stages::delivery::{HookError, Outgoing, Owner, OwnerHook, PerRecipient, Queued};
use crate::state::store::{Delivery, DeliveryState, Store};
use std::sync::Arc;

/// The lists' side of delivery, wired in by the server.
pub struct ListDelivery {
    lists: Lists,
    store: Arc<Store>,
}

impl ListDelivery {
    /// The hook for the posts of `lists`, reading members and the token secret from `store`.
    pub fn new(lists: Lists, store: Arc<Store>) -> Self {
        ListDelivery { lists, store }
    }

    /// The list that owns `queued`, if it is still served.
    fn list(&self, queued: Queued<'_>) -> Option<Arc<ListRuntime>> {
        match queued.owner {
            Owner::List(address) => self.lists.get(address),
            _ => None,
        }
    }
}

impl OwnerHook for ListDelivery {
    fn per_recipient(
        &self,
        queued: Queued<'_>,
    ) -> Result<Option<Arc<dyn PerRecipient>>, HookError> {
        let Some(list) = self
            .list(queued)
            .filter(|l| l.personalized() || l.config.verp || l.config.dkim2)
        else {
            return Ok(None);
        };
        let secret = crate::state::store::wait(self.store.token_secret())?;
        let keys = super::tokens::TokenKeys::new(&secret)
            .map_err(|e| HookError::Copy(Box::new(super::ListError::Token(e))))?;
        Ok(Some(Arc::new(MemberCopies {
            list,
            keys,
            shared: std::sync::Mutex::new(Vec::new()),
        })))
    }

    fn after_record(&self, queued: Queued<'_>, round: &[Delivery]) {
        // A member's server that refused their copy outright sends no report later: the
        // refusal counts toward the member's bounce score here (not for notices, whose
        // readers need not be members).
        if queued.plain {
            return;
        }
        if let Some(list) = self.list(queued) {
            score_refusals(&self.store, &list, queued.head.id, round);
        }
    }
}

/// One round's members' envelope senders and copies: the list, the token keys and what the members' copies of each shared copy (the post and its 7-bit
/// twin, whose bodies differ) have in common, worked out for the first member and used for
/// every other: the members' copies differ in their header only.
struct MemberCopies {
    list: Arc<ListRuntime>,
    keys: super::tokens::TokenKeys,
    shared: std::sync::Mutex<Vec<Arc<Shared>>>,
}

/// What every member's copy of one shared copy has in common.
struct Shared {
    of: Arc<[u8]>,
    /// What its members' one-click copies share, when the list has one-click.
    one_click: Option<super::MemberSigning>,
    /// What its members' DKIM2 signatures share, when the list signs DKIM2.
    dkim2: Option<Result<crate::auth::dkim2::Dkim2Fanout, String>>,
}

impl MemberCopies {
    /// What the members' copies of `of` share (the same bytes for the whole round).
    fn shared(&self, of: &Arc<[u8]>) -> Arc<Shared> {
        let work = || {
            Arc::new(Shared {
                of: of.clone(),
                one_click: self.list.one_click_signing(of),
                dkim2: self.list.dkim2_fan_out(of),
            })
        };
        let Ok(mut known) = self.shared.lock() else {
            return work();
        };
        if let Some(found) = known.iter().find(|s| Arc::ptr_eq(&s.of, of)) {
            return found.clone();
        }
        let made = work();
        known.push(made.clone());
        made
    }
}

impl PerRecipient for MemberCopies {
    fn envelope_sender(&self, id: u64, recipient: &str) -> String {
        self.list.envelope_sender(&self.keys, id, recipient)
    }

    fn copy(
        &self,
        recipient: &str,
        mail_from: &str,
        shared: &Arc<[u8]>,
    ) -> Result<Outgoing, HookError> {
        if self.list.personalized() || self.list.config.dkim2 {
            // DKIM2's `rt=` names this member: the copy is signed for their transaction.
            let common = self.shared(shared);
            (self.list)
                .member_copy(
                    &self.keys,
                    (mail_from, recipient),
                    (shared, common.one_click.as_ref()),
                    common.dkim2.as_ref(),
                )
                .map_err(|e| HookError::Copy(Box::new(e)))
        } else {
            Ok(Outgoing::shared(shared.clone()))
        }
    }
}

/// Counts each recipient of post `id` refused for good in this round against their bounce
/// score ([`super::bounces::refused_in_delivery`]); failures are logged, the delivery record
/// stands.
fn score_refusals(store: &Store, list: &ListRuntime, id: u64, round: &[Delivery]) {
    for d in round.iter().filter(|d| d.state == DeliveryState::Bounced) {
        let gave_up = d.last_reply.starts_with("gave up after");
        // A refusal of the whole message (MAIL, DATA) says nothing about the address.
        let whole = d.last_reply.contains(MESSAGE_REFUSED);
        match super::bounces::refused_in_delivery(
            store,
            list,
            &d.address,
            &d.last_reply,
            gave_up,
            whole,
        ) {
            Ok(Some(note)) => tracing::info!(id, rcpt = %d.address, %note, "refused in delivery"),
            Ok(None) => {}
            Err(e) => {
                let list = &list.config.address;
                tracing::error!(id, %list, rcpt = %d.address, error = %e, "cannot score a refusal");
            }
        }
    }
}
