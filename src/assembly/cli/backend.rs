//! Where the store commands go: the admin API of the running server, found from the server
//! file (its local admin socket in the state folder first, else its `[admin]` listener with
//! the token), or, when no server runs, the admin service ([`crate::surfaces::admin`]) in process on the store
//! opened directly. Both answer with the same structs ([`super::service`] has the typed
//! calls), so the commands print the same either way.

use super::CliError;
use crate::base::config::Config;
use crate::base::live::Live;
use crate::state::store::{ErrorKind, Store};
use crate::surfaces::web::api::{Api, Reply};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The server file loaded, and where its API is.
pub struct Backend {
    /// The configuration as the server file says now.
    pub config: Config,
    target: Target,
}

enum Target {
    /// A server runs: its local admin socket, or its admin listener and token.
    Remote(Endpoint),
    /// No server runs: the store, opened here.
    Local(Box<Api>),
}

/// Where a running server's admin API answers.
enum Endpoint {
    /// The local admin socket: its file permissions let us in.
    Local(PathBuf),
    /// The admin listener, with the token.
    Tcp(SocketAddr, String),
}

impl Endpoint {
    /// The endpoint as errors name it.
    fn name(&self) -> String {
        match self {
            Endpoint::Local(path) => format!("the local admin socket {}", path.display()),
            Endpoint::Tcp(addr, _) => format!("the admin listener {addr}"),
        }
    }
}

impl Backend {
    /// Loads the server file and finds the API: a running server's local admin socket when
    /// it answers; else the store opened directly when it can be (no server holds it); else
    /// the running server's admin listener.
    pub async fn connect(config: Option<&Path>) -> Result<Backend, CliError> {
        let config = Config::load(config)?;
        let socket = crate::assembly::server::admin_socket(&config);
        let refused = match local_socket(&socket).await {
            Ok(true) => {
                let target = Target::Remote(Endpoint::Local(socket));
                return Ok(Backend { config, target });
            }
            Ok(false) => None,
            Err(e) => Some(e),
        };
        // A shared database opens any time, but a running node must hear of changes (a list
        // created, a post approved): ask it when one answers.
        if config.server.store_url().is_some()
            && let Some(admin) = &config.server.admin
        {
            let addr = admin_addr(&config, admin);
            let answers =
                tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(addr))
                    .await
                    .is_ok_and(|connected| connected.is_ok());
            if answers {
                let token = crate::base::config::read_token(&admin.token_file)?;
                let target = Target::Remote(Endpoint::Tcp(addr, token));
                return Ok(Backend { config, target });
            }
        }
        let target = match Store::open(&config.server).await {
            Ok(store) => Target::Local(Box::new(local_api(&config, store))),
            Err(e) if e.kind() == ErrorKind::AlreadyOpen => {
                let Some(admin) = &config.server.admin else {
                    return Err(match refused {
                        Some(source) => CliError::SocketRefused { socket, source },
                        None => CliError::NoAdminListener(e),
                    });
                };
                let token = crate::base::config::read_token(&admin.token_file)?;
                Target::Remote(Endpoint::Tcp(admin_addr(&config, admin), token))
            }
            Err(e) => return Err(e.into()),
        };
        Ok(Backend { config, target })
    }

    /// Whether a running server answers (else the store was opened here).
    pub fn is_live(&self) -> bool {
        matches!(self.target, Target::Remote(..))
    }

    /// `local` on the service opened here; or, while a server runs, `method path` with `body`
    /// on its admin API, the JSON answer decoded into the same type. A refusal is an error
    /// with the service's message either way.
    pub(super) async fn ask<T: serde::de::DeserializeOwned>(
        &self,
        (method, path): (&str, &str),
        body: Vec<u8>,
        local: impl AsyncFnOnce(&Api) -> crate::surfaces::admin::Result<T>,
    ) -> Result<T, CliError> {
        match &self.target {
            Target::Local(api) => Ok(local(api).await?),
            Target::Remote(endpoint) => {
                let reply = answered(remote(endpoint, method, path, body).await?)?;
                serde_json::from_slice(&reply.body).map_err(CliError::Answer)
            }
        }
    }

    /// As [`Backend::ask`], for an answer that is a message, not JSON.
    pub(super) async fn ask_bytes(
        &self,
        path: &str,
        local: impl AsyncFnOnce(&Api) -> crate::surfaces::admin::Result<Vec<u8>>,
    ) -> Result<Vec<u8>, CliError> {
        match &self.target {
            Target::Local(api) => Ok(local(api).await?),
            Target::Remote(endpoint) => {
                Ok(answered(remote(endpoint, "GET", path, Vec::new()).await?)?.body)
            }
        }
    }

    /// The posting address of `list` as configured, or `list` itself (the API decides).
    pub fn list_address(&self, list: &str) -> String {
        self.config
            .list(list)
            .map_or_else(|| list.to_string(), |l| l.address.clone())
    }
}

/// `reply`, or its error text when the API refused (status 400 or more).
fn answered(reply: Reply) -> Result<Reply, CliError> {
    if reply.status >= 400 {
        return Err(CliError::Refused {
            status: reply.status,
            message: reply.error_text(),
        });
    }
    Ok(reply)
}

/// `value` as a JSON request body.
pub(super) fn json_body(value: &impl serde::Serialize) -> Vec<u8> {
    // Plain structs of strings and numbers: encoding them cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

/// Where this host's running server has its admin listener: what it wrote at start, else
/// what the server file says (an unspecified address as loopback).
fn admin_addr(config: &Config, admin: &crate::base::config::AdminConfig) -> SocketAddr {
    let file = crate::assembly::server::admin_addr_file(config);
    let mut addr = std::fs::read_to_string(&file)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(admin.listen);
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    addr
}

/// The API on a store opened here: lists whose key does not load are left out (only
/// decisions on held posts need a key, to sign the notice to the poster).
fn local_api(config: &Config, store: Store) -> Api {
    let runtimes = config
        .lists
        .iter()
        .filter_map(|l| crate::stages::list::ListRuntime::load(l).ok());
    Api {
        store: std::sync::Arc::new(store),
        lists: crate::stages::list::Lists::new(runtimes),
        config: Live::new(config.clone()),
        feed: None,
        reload: None,
        aliases_changed: None,
        tasks: crate::base::tasks::Tasks::new(),
    }
}

/// Whether a server answers on the local admin socket `path`: `Ok(false)` when there is no
/// socket or nobody listens on it (a server that is gone); an error when we may not connect
/// (not in the service user's group), which is worth saying if nothing else answers.
async fn local_socket(path: &Path) -> Result<bool, std::io::Error> {
    let connect = tokio::net::UnixStream::connect(path);
    match tokio::time::timeout(Duration::from_secs(1), connect).await {
        Ok(Ok(_)) => Ok(true),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::PermissionDenied => Err(e),
        Ok(Err(_)) | Err(_) => Ok(false),
    }
}

/// One request to a running server's admin API.
async fn remote(
    endpoint: &Endpoint,
    method: &str,
    path: &str,
    body: Vec<u8>,
) -> Result<Reply, CliError> {
    let exchange = async {
        match endpoint {
            Endpoint::Local(socket) => {
                let stream = tokio::net::UnixStream::connect(socket)
                    .await
                    .map_err(|e| unreachable(endpoint, e.into()))?;
                let request = request((method, path), "localhost", None, body)?;
                exchange(endpoint, TokioIo::new(stream), request).await
            }
            Endpoint::Tcp(addr, token) => {
                let stream = tokio::net::TcpStream::connect(addr)
                    .await
                    .map_err(|e| unreachable(endpoint, e.into()))?;
                let host = addr.to_string();
                let request = request((method, path), &host, Some(token), body)?;
                exchange(endpoint, TokioIo::new(stream), request).await
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(600), exchange)
        .await
        .map_err(|_| CliError::ApiTimeout {
            endpoint: endpoint.name(),
        })?
}

/// The API could not be reached at `endpoint`, or broke off.
fn unreachable(endpoint: &Endpoint, source: Box<dyn std::error::Error + Send + Sync>) -> CliError {
    CliError::Unreachable {
        endpoint: endpoint.name(),
        source,
    }
}

/// The request `method path` with `body`, naming `host`, with the bearer `token` if any.
fn request(
    (method, path): (&str, &str),
    host: &str,
    token: Option<&str>,
    body: Vec<u8>,
) -> Result<hyper::Request<Full<Bytes>>, CliError> {
    let mut request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, host)
        .header(hyper::header::CONTENT_TYPE, "application/json");
    if let Some(token) = token {
        request = request.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    request
        .body(Full::new(Bytes::from(body)))
        .map_err(CliError::Request)
}

/// Sends `request` on `io` and reads the whole answer.
async fn exchange<I>(
    endpoint: &Endpoint,
    io: I,
    request: hyper::Request<Full<Bytes>>,
) -> Result<Reply, CliError>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| unreachable(endpoint, e.into()))?;
    tokio::spawn(connection);
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| unreachable(endpoint, e.into()))?;
    let status = response.status().as_u16();
    let content_type = match response.headers().get(hyper::header::CONTENT_TYPE) {
        Some(v) if v.as_bytes().starts_with(b"message/") => "message/rfc822",
        _ => crate::surfaces::web::api::JSON,
    };
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| unreachable(endpoint, e.into()))?
        .to_bytes()
        .to_vec();
    if status == 401 {
        return Err(CliError::TokenRefused {
            endpoint: endpoint.name(),
        });
    }
    Ok(Reply {
        status,
        content_type,
        body,
    })
}

/// `text` made safe as one path segment.
pub fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Prints `text` to standard output; a reader that went away (`| head`) ends the output
/// quietly instead of a panic.
pub fn print(text: &str) -> Result<(), CliError> {
    print_bytes(text.as_bytes())
}

/// Prints `bytes` exactly as they are (a message: 8-bit text stays as it was signed).
pub fn print_bytes(bytes: &[u8]) -> Result<(), CliError> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(CliError::OutputClosed),
        Err(e) => Err(CliError::Output(e)),
    }
}
