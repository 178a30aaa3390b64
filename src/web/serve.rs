//! One accept loop for arclist's HTTP listeners, on hyper (HTTP/1.1): connection slots,
//! per-client-address limits, a header-read timeout, a time limit per request and a bounded
//! body, so that idle or slow clients cannot starve the listener (the admin listener's
//! `/metrics` must answer while someone holds connections open).

use crate::per_client::PerClient;
use crate::tasks::Tasks;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::net::SocketAddr;
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
    /// The client.
    pub peer: SocketAddr,
}

impl Request {
    /// Header `name` as text, when present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// What a listener serves.
pub trait Handler: Send + Sync + 'static {
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
    /// every client from its own address.
    pub exempt: Vec<std::net::IpAddr>,
    /// Time to send a request's header fields (also between requests on a kept connection).
    pub header_timeout: Duration,
    /// Time for a whole request: body and answer.
    pub request_timeout: Duration,
    /// Largest body read; a larger one gets 413.
    pub max_body: usize,
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
    let connections = tasks.clone();
    tasks.spawn(async move {
        loop {
            let Ok((stream, peer)) = socket.accept().await else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let client = if limits.exempt.contains(&peer.ip()) {
                Some(crate::per_client::ClientSlot::unlimited())
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
            // A stopping server drops the connection with the task.
            connections.spawn(async move {
                serve(stream, peer, handler, limits).await;
                drop((client, slot));
            });
        }
    });
    Ok(addr)
}

/// One connection: requests until the client closes or a limit is hit.
async fn serve<H: Handler>(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    handler: Arc<H>,
    limits: Limits,
) {
    let header_timeout = limits.header_timeout;
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let (handler, limits) = (handler.clone(), limits.clone());
        async move {
            let answer = tokio::time::timeout(limits.request_timeout, async {
                match read(request, peer, limits.max_body, &*handler).await {
                    Ok(request) => handler.handle(request).await,
                    Err(response) => response,
                }
            })
            .await
            .unwrap_or_else(|_| text(408, "request timed out"));
            Ok::<_, std::convert::Infallible>(answer)
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(16 * 1024);
    if let Err(e) = builder
        .serve_connection(TokioIo::new(stream), service)
        .await
    {
        tracing::debug!(%peer, error = %e, "HTTP connection ended with an error");
    }
}

/// Reads the body within `max_body` once the handler let the head through; a larger one is
/// answered with 413.
async fn read<H: Handler>(
    request: hyper::Request<Incoming>,
    peer: SocketAddr,
    max_body: usize,
    handler: &H,
) -> Result<Request, Response> {
    let (parts, body) = request.into_parts();
    if let Some(answer) = handler.screen(&parts) {
        return Err(answer);
    }
    let max_body = handler
        .body_limit(&parts)
        .map_or(max_body, |own| own.min(max_body));
    let body = match Limited::new(body, max_body).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return Err(text(413, "request body too large"));
        }
        Err(_) => return Err(text(400, "unreadable request body")),
    };
    Ok(Request {
        method: parts.method,
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(str::to_string),
        headers: parts.headers,
        body,
        peer,
    })
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
