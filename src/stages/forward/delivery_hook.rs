//! What delivery asks a forwarding domain about the mail it forwards: nothing per recipient
//! (every target gets the one sealed copy, from the one SRS sender), and after a round, a
//! delivery status notification to the original sender naming the targets that refused.

use super::Forwarding;
use crate::base::live::Live;
use crate::stages::delivery::{Owner, OwnerHook, Queued};
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
