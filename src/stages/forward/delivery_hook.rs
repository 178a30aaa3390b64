//! What delivery asks a forwarding domain about the mail it forwards: with `dkim2 = true`,
//! each target's copy signed for its own transaction (`rt=` names it) from the one SRS sender;
//! otherwise nothing per recipient (every target gets the one sealed copy). After a round, a
//! delivery status notification to the original sender naming the targets that refused.

use super::{ForwardDomain, Forwarding};
use crate::base::live::Live;
use crate::stages::delivery::{HookError, Outgoing, Owner, OwnerHook, PerRecipient, Queued};
use crate::state::store::{Delivery, Store};
use std::sync::Arc;

/// The forwarding domains' side of delivery, wired in by the server.
pub struct ForwardDelivery {
    forwarding: Live<Forwarding>,
    store: Arc<Store>,
    hostname: String,
}

impl ForwardDelivery {
    /// The hook for mail forwarded by `forwarding`'s domains (whatever a reload makes them);
    /// notifications name `hostname` as the reporting server and are queued in `store`.
    pub fn new(forwarding: Live<Forwarding>, store: Arc<Store>, hostname: &str) -> Self {
        ForwardDelivery {
            forwarding,
            store,
            hostname: hostname.to_string(),
        }
    }
}

impl OwnerHook for ForwardDelivery {
    fn per_recipient(
        &self,
        queued: Queued<'_>,
    ) -> Result<Option<Arc<dyn PerRecipient>>, HookError> {
        let Owner::Forward(domain) = queued.owner else {
            return Ok(None);
        };
        let forwarding = self.forwarding.get();
        let Some(domain) = forwarding.domain(domain).filter(|d| d.config.dkim2) else {
            return Ok(None);
        };
        Ok(Some(Arc::new(TargetCopies {
            domain: domain.clone(),
            mail_from: queued.head.mail_from.clone(),
        })))
    }

    fn before_record(&self, queued: Queued<'_>, round: &[Delivery]) {
        let Owner::Forward(domain) = queued.owner else {
            return;
        };
        let forwarding = self.forwarding.get();
        let (store, head) = (&*self.store, queued.head);
        if let Err(e) = super::dsn::notify(store, &forwarding, &self.hostname, domain, head, round)
        {
            tracing::error!(id = head.id, %domain, error = %e, "no delivery status notification");
        }
    }
}

/// One round's targets' copies of a forwarded message: from the one SRS sender, each signed
/// for its own transaction when the relay marked the copy for DKIM2.
struct TargetCopies {
    domain: Arc<ForwardDomain>,
    mail_from: String,
}

impl PerRecipient for TargetCopies {
    fn envelope_sender(&self, _id: u64, _recipient: &str) -> String {
        self.mail_from.clone()
    }

    fn copy(
        &self,
        recipient: &str,
        mail_from: &str,
        shared: &Arc<[u8]>,
    ) -> Result<Outgoing, HookError> {
        let made = super::dkim2::target_copy(&self.domain, (mail_from, recipient), shared);
        Ok(Outgoing::shared(
            made.map_or_else(|| shared.clone(), Arc::from),
        ))
    }
}
