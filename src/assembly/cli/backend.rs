//! Where the store commands go: the admin API of the running server, found from the server
//! file, or, when no server runs, the admin service ([`crate::surfaces::admin`]) in process on the store
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
use std::path::Path;
use std::time::Duration;

/// The server file loaded, and where its API is.
pub struct Backend {
    /// The configuration as the server file says now.
    pub config: Config,
    target: Target,
}

enum Target {
    /// A server runs: its admin listener and token.
    Remote(SocketAddr, String),
    /// No server runs: the store, opened here.
    Local(Box<Api>),
}

impl Backend {
    /// Loads the server file and finds the API: the store is opened directly when it can be
    /// (no server holds it); else the running server's admin listener is used.
    pub async fn connect(config: Option<&Path>) -> Result<Backend, CliError> {
        let config = Config::load(config)?;
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
                let target = Target::Remote(addr, token);
                return Ok(Backend { config, target });
            }
        }
        let target = match Store::open(&config.server).await {
            Ok(store) => Target::Local(Box::new(local_api(&config, store))),
            Err(e) if e.kind() == ErrorKind::AlreadyOpen => {
                let Some(admin) = &config.server.admin else {
                    return Err(CliError::NoAdminListener(e));
                };
                let token = crate::base::config::read_token(&admin.token_file)?;
                Target::Remote(admin_addr(&config, admin), token)
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
            Target::Remote(addr, token) => {
                let reply = answered(remote(*addr, token, method, path, body).await?)?;
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
            Target::Remote(addr, token) => {
                Ok(answered(remote(*addr, token, "GET", path, Vec::new()).await?)?.body)
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

/// One request to a running server's admin listener.
async fn remote(
    addr: SocketAddr,
    token: &str,
    method: &str,
    path: &str,
    body: Vec<u8>,
) -> Result<Reply, CliError> {
    let unreachable =
        |e: Box<dyn std::error::Error + Send + Sync>| CliError::Unreachable { addr, source: e };
    let exchange = async {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| unreachable(e.into()))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| unreachable(e.into()))?;
        tokio::spawn(connection);
        let request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, addr.to_string())
            .header(hyper::header::AUTHORIZATION, format!("Bearer {token}"))
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(CliError::Request)?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| unreachable(e.into()))?;
        let status = response.status().as_u16();
        let content_type = match response.headers().get(hyper::header::CONTENT_TYPE) {
            Some(v) if v.as_bytes().starts_with(b"message/") => "message/rfc822",
            _ => crate::surfaces::web::api::JSON,
        };
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| unreachable(e.into()))?
            .to_bytes()
            .to_vec();
        if status == 401 {
            return Err(CliError::TokenRefused { addr });
        }
        Ok(Reply {
            status,
            content_type,
            body,
        })
    };
    tokio::time::timeout(Duration::from_secs(600), exchange)
        .await
        .map_err(|_| CliError::ApiTimeout { addr })?
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
