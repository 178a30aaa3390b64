//! Per-client-address connection limits, for the SMTP and HTTP listeners: one address may
//! hold only so many of the server's connection slots, so a single host cannot starve the
//! others (slowloris, idle floods).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

/// Connections open per client address, shared by a listener's accept loop and its
/// connections.
#[derive(Default)]
pub struct PerClient(std::sync::Mutex<HashMap<IpAddr, usize>>);

impl PerClient {
    /// A slot for one more session from `ip`, or `None` when it has `max` already.
    pub fn enter(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<ClientSlot> {
        let mut open = self.0.lock().ok()?;
        let n = open.entry(ip).or_default();
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(ClientSlot {
            ip,
            owner: Some(self.clone()),
        })
    }
}

/// One connection's place in [`PerClient`]; given back when dropped.
pub struct ClientSlot {
    ip: IpAddr,
    /// `None` for a session no per-address limit applies to (LMTP).
    owner: Option<Arc<PerClient>>,
}

impl ClientSlot {
    /// A slot that counts nowhere.
    pub fn unlimited() -> Self {
        ClientSlot {
            ip: IpAddr::from([0, 0, 0, 0]),
            owner: None,
        }
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        if let Some(owner) = &self.owner
            && let Ok(mut open) = owner.0.lock()
            && let Some(n) = open.get_mut(&self.ip)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}
