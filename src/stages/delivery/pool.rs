//! Idle connections kept for the next message to the same host, as Postfix's connection cache
//! does: a busy list sends post after post to the same few big providers, and a new TCP and
//! TLS handshake for each would cost more than the message.

use super::connect::Conn;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Where a connection goes and where it comes from (`None`: the system's choice): a connection
/// is reused only for mail that would have opened the same one.
pub type Route = (SocketAddr, Option<IpAddr>);

/// Idle connections by route.
pub struct Pool {
    idle: Mutex<HashMap<Route, Vec<(Conn, Instant)>>>,
    keep: Duration,
    per_host: usize,
}

impl Pool {
    /// Keeps up to `per_host` idle connections per route, each for at most `keep`.
    pub fn new(keep: Duration, per_host: usize) -> Self {
        Pool {
            idle: Mutex::new(HashMap::new()),
            keep,
            per_host,
        }
    }

    /// A connection on `route` that still answers, if one is idle. The server may have closed
    /// it since (idle timeouts are short), so it is probed with RSET first.
    pub async fn take(&self, route: Route) -> Option<Conn> {
        loop {
            let candidate = {
                let mut idle = self.idle.lock().ok()?;
                let list = idle.get_mut(&route)?;
                list.retain(|(_, since)| since.elapsed() < self.keep);
                list.pop()
            };
            let (mut conn, _) = candidate?;
            if matches!(conn.command("RSET").await, Ok(r) if r.code == 250) {
                conn.dirty = false;
                return Some(conn);
            }
        }
    }

    /// Keeps `conn` for later, or hands it back when there is no room (the caller says QUIT).
    pub fn put(&self, route: Route, conn: Conn) -> Option<Conn> {
        if self.keep.is_zero() {
            return Some(conn);
        }
        let Ok(mut idle) = self.idle.lock() else {
            return Some(conn);
        };
        let list = idle.entry(route).or_default();
        list.retain(|(_, since)| since.elapsed() < self.keep);
        if list.len() >= self.per_host {
            return Some(conn);
        }
        list.push((conn, Instant::now()));
        None
    }

    /// Whether any connection waits for reuse (and so will need closing).
    pub fn has_idle(&self) -> bool {
        self.idle.lock().map(|i| !i.is_empty()).unwrap_or(false)
    }

    /// Drops connections idle for too long, so they do not hold the remote server's slots.
    pub fn reap(&self) {
        if let Ok(mut idle) = self.idle.lock() {
            for list in idle.values_mut() {
                list.retain(|(_, since)| since.elapsed() < self.keep);
            }
            idle.retain(|_, list| !list.is_empty());
        }
    }
}
