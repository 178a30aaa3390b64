//! One accept loop for arclist's HTTP listeners, on hyper (HTTP/1.1): connection slots,
//! per-client-address limits, a header-read timeout, a time limit per request and a bounded
//! body, so that idle or slow clients cannot starve the listener (the admin listener's
//! `/metrics` must answer while someone holds connections open).
//!
//! Requests without the listener's credentials ([`Handler::privileged`]) share a smaller pool
//! of turns ([`Limits::anonymous`], per client address [`Limits::anonymous_per_ip`]); one that
//! finds the pool full is answered 503 at once, so slow anonymous requests can never take the
//! turns of the token holder, whose requests need none. Bodies are read within a deadline and
//! at a minimum average rate ([`super::body`]).

use super::body::{self, Pace};
use crate::base::per_client::{ClientSlot, PerClient};
use crate::base::tasks::Tasks;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// A response body: always whole, always small.
pub type Body = Full<Bytes>;
/// A response.
pub type Response = hyper::Response<Body>;

/// A request read whole (body within [`Limits::max_body`]).
pub struct Request {
    /// `GET`, `POST`, ...
    pub method: hyper::Method,
    /// The path, still percent-encoded.
    pub path: String,
    /// The query string, if any.
    pub query: Option<String>,
    /// The header fields.
    pub headers: hyper::HeaderMap,
    /// The body, de-chunked.
    pub body: Bytes,
    /// The connection's far end.
    pub peer: SocketAddr,
    /// The client: `peer`'s address, or, when `peer` is one of the listener's proxies
    /// ([`Limits::exempt`]), the address its `X-Forwarded-For` names last.
    pub client: IpAddr,
}

impl Request {
    /// Header `name` as text, when present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// What a listener serves.
pub trait Handler: Send + Sync + 'static {
    /// Whether the head carries the listener's credentials (the admin bearer token): such a
    /// request needs none of the anonymous turns and has no body deadline but the request's.
    fn privileged(&self, _head: &hyper::http::request::Parts) -> bool {
        false
    }

    /// Looks at a request's head before its body is read: an answer here (401, say) is sent
    /// without reading the body, so nobody without the right to ask makes the server read
    /// what they send.
    fn screen(&self, _head: &hyper::http::request::Parts) -> Option<Response> {
        None
    }

    /// The largest body this request may have, within the listener's [`Limits::max_body`]:
    /// pages open to anyone take far less than an operator's import.
    fn body_limit(&self, _head: &hyper::http::request::Parts) -> Option<usize> {
        None
    }

    /// Answers one request.
    fn handle(&self, request: Request) -> impl Future<Output = Response> + Send;
}

/// A listener's bounds.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections served at once; more wait for a slot.
    pub max_connections: usize,
    /// Connections one client address may hold; more are closed at once.
    pub per_ip: usize,
    /// Client addresses exempt from `per_ip`: a web server in front of the listener brings
    /// every client from its own address (the client is then the one its `X-Forwarded-For`
    /// names last).
    pub exempt: Vec<IpAddr>,
    /// Time to send a request's header fields (also between requests on a kept connection).
    pub header_timeout: Duration,
    /// Time for a whole request: body and answer.
    pub request_timeout: Duration,
    /// Largest body read; a larger one gets 413.
    pub max_body: usize,
    /// Requests without credentials served at once; one more gets 503 at once.
    pub anonymous: usize,
    /// Requests without credentials served at once for one client; one more gets 503.
    pub anonymous_per_ip: usize,
    /// Time to send the body of a request without credentials; 408 beyond.
    pub body_timeout: Duration,
    /// Bytes per second every body must average once `header_timeout` has passed; 408
    /// below (0: no minimum).
    pub min_body_rate: u64,
}

/// The turns of requests without credentials: in all and per client address.
struct Anonymous {
    turns: Arc<tokio::sync::Semaphore>,
    per_client: Arc<PerClient>,
    per_ip: usize,
}

impl Anonymous {
    fn new(limits: &Limits) -> Self {
        Anonymous {
            turns: Arc::new(tokio::sync::Semaphore::new(limits.anonymous.max(1))),
            per_client: Arc::new(PerClient::default()),
            per_ip: limits.anonymous_per_ip.max(1),
        }
    }

    /// A turn for one request of `client`, or `None` when its share or the pool is taken.
    fn enter(&self, client: IpAddr) -> Option<(ClientSlot, tokio::sync::OwnedSemaphorePermit)> {
        let mine = self.per_client.enter(client, self.per_ip)?;
        let turn = self.turns.clone().try_acquire_owned().ok()?;
        Some((mine, turn))
    }
}

/// Binds `addr` and serves `handler` until `tasks` stop; `what` names the listener in logs
/// and errors. Returns the bound address.
pub async fn start<H: Handler>(
    addr: SocketAddr,
    what: &'static str,
    handler: Arc<H>,
    limits: Limits,
    tasks: &Tasks,
) -> std::io::Result<SocketAddr> {
    let socket = TcpListener::bind(addr).await.map_err(|e| {
        std::io::Error::new(e.kind(), format!("cannot listen on {addr} ({what}): {e}"))
    })?;
    let addr = socket.local_addr()?;
    tracing::info!(%addr, "{what} HTTP listening");
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let per_client = Arc::new(PerClient::default());
    let anonymous = Arc::new(Anonymous::new(&limits));
    let connections = tasks.clone();
    tasks.spawn(async move {
        loop {
            let Ok((stream, peer)) = socket.accept().await else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            // IPv4-mapped (a dual-stack socket) compares as the IPv4 address it is.
            let client = if limits.exempt.contains(&peer.ip().to_canonical()) {
                Some(crate::base::per_client::ClientSlot::unlimited())
            } else {
                per_client.enter(peer.ip(), limits.per_ip.max(1))
            };
            let Some(client) = client else {
                tracing::info!(%peer, "{what}: too many connections from this address; closed");
                continue;
            };
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let (handler, limits) = (handler.clone(), limits.clone());
            let anonymous = anonymous.clone();
            // A stopping server drops the connection with the task.
            connections.spawn(async move {
                serve(stream, peer, handler, limits, anonymous, what).await;
                drop((client, slot));
            });
        }
    });
    Ok(addr)
}

/// The peer of a connection on a local (Unix) socket, as requests and logs name it: the
/// socket's file permissions decide who connects, not an address.
pub const LOCAL_PEER: SocketAddr = SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

/// Serves `handler` on the Unix socket `socket` (bound by [`bind_unix`]) until `tasks`
/// stop: the listener's connection slots apply, no per-address limit (every peer is local).
pub fn start_unix<H: Handler>(
    socket: tokio::net::UnixListener,
    what: &'static str,
    handler: Arc<H>,
    limits: Limits,
    tasks: &Tasks,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let anonymous = Arc::new(Anonymous::new(&limits));
    let connections = tasks.clone();
    tasks.spawn(async move {
        loop {
            let Ok((stream, _)) = socket.accept().await else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let (handler, limits) = (handler.clone(), limits.clone());
            let anonymous = anonymous.clone();
            connections.spawn(async move {
                serve(stream, LOCAL_PEER, handler, limits, anonymous, what).await;
                drop(slot);
            });
        }
    });
}

/// Binds a Unix socket at `path` with `mode` (0660: its owner and group connect): bound
/// under a temporary name, given its mode, then renamed into place, so it is never reachable
/// with the umask's mode. A socket left by a server that is gone is replaced; one that
/// answers is another server's, and an error.
pub fn bind_unix(path: &std::path::Path, mode: u32) -> std::io::Result<tokio::net::UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    let named = |what: &str, e: std::io::Error| {
        std::io::Error::new(
            e.kind(),
            format!(
                "cannot {what} the local admin socket {}: {e}",
                path.display()
            ),
        )
    };
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            format!(
                "the local admin socket {} answers: another arclist serve runs with this state_dir",
                path.display()
            ),
        ));
    }
    let file_name = path.file_name().unwrap_or_default().to_string_lossy();
    let temporary = path.with_file_name(format!(".{file_name}.{}", std::process::id()));
    let _ = std::fs::remove_file(&temporary);
    let socket = tokio::net::UnixListener::bind(&temporary).map_err(|e| named("bind", e))?;
    let placed = std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(mode))
        .and_then(|()| crate::base::config::owner::adopt(&temporary))
        .and_then(|()| std::fs::rename(&temporary, path));
    if let Err(e) = placed {
        let _ = std::fs::remove_file(&temporary);
        return Err(named("place", e));
    }
    Ok(socket)
}

/// One connection: requests until the client closes or a limit is hit.
async fn serve<H: Handler, S>(
    stream: S,
    peer: SocketAddr,
    handler: Arc<H>,
    limits: Limits,
    anonymous: Arc<Anonymous>,
    what: &'static str,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let header_timeout = limits.header_timeout;
    // A write that makes no progress for as long as a whole answer may take ends the
    // connection.
    let write_limit = limits.request_timeout;
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let (handler, limits, anonymous) = (handler.clone(), limits.clone(), anonymous.clone());
        async move {
            let answer = tokio::time::timeout(
                limits.request_timeout,
                answer(request, peer, (&limits, &anonymous), &*handler, what),
            )
            .await
            .unwrap_or_else(|_| closing(text(408, "request timed out")));
            Ok::<_, std::convert::Infallible>(answer)
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(16 * 1024);
    if let Err(e) = builder
        .serve_connection(
            TokioIo::new(super::write_deadline::WriteDeadline::new(
                stream,
                write_limit,
            )),
            service,
        )
        .await
    {
        tracing::debug!(%peer, error = %e, "HTTP connection ended with an error");
    }
}

/// One request: an anonymous turn unless it is privileged, the handler's screen, the body
/// within its bounds, then the handler's answer. The turn is held until the answer is made.
async fn answer<H: Handler>(
    request: hyper::Request<Incoming>,
    peer: SocketAddr,
    (limits, anonymous): (&Limits, &Anonymous),
    handler: &H,
    what: &'static str,
) -> Response {
    let (parts, body) = request.into_parts();
    let client = client_of(&parts.headers, peer, &limits.exempt);
    let privileged = handler.privileged(&parts);
    let _turn = match privileged {
        true => None,
        false => match anonymous.enter(client) {
            Some(turn) => Some(turn),
            None => {
                tracing::info!(%client, path = %parts.uri.path(), "{what}: all turns for requests without the token are taken; answered 503");
                let mut busy = closing(text(503, "busy; try again in a moment"));
                busy.headers_mut()
                    .insert(hyper::header::RETRY_AFTER, HeaderValue::from_static("5"));
                return busy;
            }
        },
    };
    if let Some(answer) = handler.screen(&parts) {
        return answer;
    }
    let max_body = handler
        .body_limit(&parts)
        .map_or(limits.max_body, |own| own.min(limits.max_body));
    let pace = Pace {
        max: max_body,
        grace: limits.header_timeout,
        min_rate: limits.min_body_rate,
        deadline: (!privileged).then_some(limits.body_timeout),
    };
    let body = match body::read(body, &pace).await {
        Ok(body) => body,
        Err(refused) => {
            if refused.status == 408 {
                tracing::info!(%client, path = %parts.uri.path(), "{what}: {}; cut", refused.why);
            }
            return closing(text(refused.status, refused.why));
        }
    };
    let request = Request {
        method: parts.method,
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(str::to_string),
        headers: parts.headers,
        body,
        peer,
        client,
    };
    handler.handle(request).await
}

/// The client of a request from `peer`: a proxy's (`proxies`) last `X-Forwarded-For`
/// entry, which the proxy itself wrote (entries before it are the client's own word).
pub fn client_of(headers: &hyper::HeaderMap, peer: SocketAddr, proxies: &[IpAddr]) -> IpAddr {
    let peer_ip = peer.ip().to_canonical();
    if !proxies.contains(&peer_ip) {
        return peer_ip;
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .next_back()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|last| last.trim().parse::<IpAddr>().ok())
        .map_or(peer_ip, |ip| ip.to_canonical())
}

/// `answer` with `Connection: close`: after a refusal the rest of the request is not read, and
/// the connection's slot goes back at once.
fn closing(mut answer: Response) -> Response {
    answer
        .headers_mut()
        .insert(hyper::header::CONNECTION, HeaderValue::from_static("close"));
    answer
}

/// A response with `status` and `body` of `content_type`.
pub fn respond(status: u16, content_type: &str, body: impl Into<Bytes>) -> Response {
    let mut response = hyper::Response::new(Full::new(body.into()));
    *response.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = HeaderValue::from_str(content_type) {
        response.headers_mut().insert(CONTENT_TYPE, v);
    }
    response
}

/// A plain-text response (a line of text for a person).
pub fn text(status: u16, body: &str) -> Response {
    respond(status, "text/plain; charset=utf-8", format!("{body}\n"))
}

/// An HTML page with 200.
pub fn html(page: String) -> Response {
    respond(200, "text/html; charset=utf-8", page)
}
