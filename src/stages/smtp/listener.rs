//! The accept loops: connection limits, TLS upgrades, graceful shutdown.

use super::session::{Next, Session, SessionContext};
use crate::base::per_client::{ClientSlot, PerClient};
use crate::base::tasks::Tasks;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinHandle;

/// Which protocol a socket speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// SMTP (RFC 5321) for MTAs on the network.
    Smtp,
    /// LMTP (RFC 2033) for a local MTA in front of arclist.
    Lmtp,
}

/// Starts listeners.
pub struct Listener;

/// Running listeners: their addresses, and the way to stop them.
pub struct ListenerHandle {
    /// Bound addresses with their protocol, in the order given.
    pub addrs: Vec<(SocketAddr, Protocol)>,
    shutdown: watch::Sender<bool>,
    sessions: Arc<Semaphore>,
    max_sessions: u32,
    accept_tasks: Vec<JoinHandle<Option<()>>>,
}

impl Listener {
    /// Binds every address and starts accepting. Port 0 picks a free port.
    pub async fn start(
        ctx: SessionContext,
        shutdown: watch::Sender<bool>,
        binds: &[(SocketAddr, Protocol)],
        tasks: &Tasks,
    ) -> std::io::Result<ListenerHandle> {
        let max_sessions =
            u32::try_from(ctx.limits.max_connections.max(1)).unwrap_or(u32::MAX >> 4);
        let sessions = Arc::new(Semaphore::new(max_sessions as usize));
        let ctx = Arc::new(ctx);
        let mut addrs = Vec::new();
        let mut accept_tasks = Vec::new();
        for (addr, protocol) in binds {
            let socket = TcpListener::bind(addr).await.map_err(|e| {
                std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}"))
            })?;
            let bound = socket.local_addr()?;
            tracing::info!(addr = %bound, ?protocol, "listening");
            addrs.push((bound, *protocol));
            accept_tasks.push(tasks.spawn(accept_loop(
                socket,
                *protocol,
                ctx.clone(),
                sessions.clone(),
                tasks.clone(),
            )));
        }
        Ok(ListenerHandle {
            addrs,
            shutdown,
            sessions,
            max_sessions,
            accept_tasks,
        })
    }
}

impl ListenerHandle {
    /// The first address speaking `protocol`.
    pub fn addr(&self, protocol: Protocol) -> Option<SocketAddr> {
        self.addrs
            .iter()
            .find(|(_, p)| *p == protocol)
            .map(|(a, _)| *a)
    }

    /// Stops gracefully: idle sessions get 421, sessions inside a message finish it, new
    /// connections get 421 until every session has ended (or `grace` runs out). Sessions still
    /// open then are ended by stopping the server's [`Tasks`].
    pub async fn shutdown(self, grace: Duration) {
        let _ = self.shutdown.send(true);
        let drained =
            tokio::time::timeout(grace, self.sessions.acquire_many(self.max_sessions)).await;
        if drained.is_err() {
            tracing::warn!("shutdown: sessions still open after {grace:?}; closing them");
        }
        for task in &self.accept_tasks {
            task.abort();
        }
        for task in self.accept_tasks {
            let _ = task.await;
        }
    }
}

async fn accept_loop(
    socket: TcpListener,
    protocol: Protocol,
    ctx: Arc<SessionContext>,
    sessions: Arc<Semaphore>,
    tasks: Tasks,
) {
    let per_client = Arc::new(PerClient::default());
    loop {
        let (stream, peer) = match socket.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors or similar: keep serving the sessions we have.
                tracing::warn!(error = %e, "accept failed; pausing briefly");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let stopping = *ctx.shutdown.borrow();
        // A local MTA speaking LMTP is one client with many sessions: only SMTP is limited.
        let slot = match protocol {
            Protocol::Smtp => per_client.enter(peer.ip(), ctx.limits.max_connections_per_ip),
            Protocol::Lmtp => Some(ClientSlot::unlimited()),
        };
        match (sessions.clone().try_acquire_owned(), slot) {
            (Ok(permit), Some(slot)) if !stopping => {
                tasks.spawn(serve(stream, peer, protocol, ctx.clone(), (permit, slot)));
            }
            (_, slot) => {
                let text = if stopping {
                    format!(
                        "421 4.3.2 {} shutting down, try again later\r\n",
                        ctx.hostname
                    )
                } else if slot.is_none() {
                    tracing::warn!(%peer, "connection limit for one address reached; refusing with 421");
                    format!(
                        "421 4.7.0 {} too many connections from your address, try again later\r\n",
                        ctx.hostname
                    )
                } else {
                    tracing::warn!(%peer, "connection limit reached; refusing with 421");
                    format!(
                        "421 4.3.2 {} too many connections, try again later\r\n",
                        ctx.hostname
                    )
                };
                tasks.spawn(async move {
                    let mut stream = stream;
                    let _ = tokio::time::timeout(
                        Duration::from_secs(5),
                        stream.write_all(text.as_bytes()),
                    )
                    .await;
                });
            }
        }
    }
}

async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    protocol: Protocol,
    ctx: Arc<SessionContext>,
    (permit, slot): (OwnedSemaphorePermit, ClientSlot),
) {
    let lifetime = Duration::from_secs(ctx.limits.max_session_secs.max(1));
    if tokio::time::timeout(lifetime, session(stream, peer, protocol, &ctx))
        .await
        .is_err()
    {
        tracing::info!(%peer, "session lifetime reached; connection closed");
    }
    drop(slot);
    // The context (and the store in it) goes before the permit: once shutdown has collected
    // every permit, no session still holds the store.
    drop(ctx);
    drop(permit);
}

async fn session(
    stream: TcpStream,
    peer: SocketAddr,
    protocol: Protocol,
    ctx: &Arc<SessionContext>,
) {
    let lmtp = protocol == Protocol::Lmtp;
    let plain = Session::new(ctx, peer, lmtp, None).run(stream, true).await;
    let stream = match plain {
        Ok(Next::StartTls(stream)) => stream,
        Ok(Next::Close) => return,
        Err(e) => {
            tracing::debug!(%peer, error = %e, "session ended with an I/O error");
            return;
        }
    };
    let Some(acceptor) = ctx.tls.clone() else {
        return;
    };
    let handshake = Duration::from_secs(ctx.limits.command_timeout_secs.min(60));
    let tls = match tokio::time::timeout(handshake, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::info!(%peer, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::info!(%peer, "TLS handshake timed out");
            return;
        }
    };
    let (_, conn) = tls.get_ref();
    let desc = format!(
        "{} {}",
        conn.protocol_version()
            .map_or("TLS".to_string(), |v| format!("{v:?}")),
        conn.negotiated_cipher_suite()
            .map_or(String::new(), |c| format!("{:?}", c.suite()))
    );
    // RFC 3207 §4.2: after TLS the session starts over, with no greeting.
    if let Err(e) = Session::new(ctx, peer, lmtp, Some(desc))
        .run(tls, false)
        .await
    {
        tracing::debug!(%peer, error = %e, "TLS session ended with an I/O error");
    }
}
