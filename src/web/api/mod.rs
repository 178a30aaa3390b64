//! The admin API: JSON over HTTP on the admin listener, behind its bearer token, so that an
//! operator never stops the server to change it. `arclist member|held|queue|list|report|
//! forward` call the same routes: over HTTP while a server runs, in-process on the opened store
//! when none does ([`Api::call`]), so both give the same answers. Routes and examples:
//! `docs/admin-api.md`.

pub mod held;
pub mod lists;
pub mod members;
pub mod queue;

use crate::config::Config;
use crate::list::Lists;
use crate::live::Live;
use crate::store::{SpoolId, Store};
use serde::Serialize;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Re-reads the configuration of a running server; says what changed, or why nothing did.
pub type Reload = Arc<dyn Fn() -> Result<String, String> + Send + Sync>;

/// What the API works on.
pub struct Api<S> {
    /// The store.
    pub store: Arc<S>,
    /// The lists served (their signing keys, for notices); may lack a list whose key did not
    /// load, when the CLI works on a stopped server's store.
    pub lists: Lists,
    /// The configuration in force.
    pub config: Live<Config>,
    /// The pipeline's feed, to distribute approved posts at once (none when no server runs:
    /// they go out at the next start).
    pub feed: Option<mpsc::UnboundedSender<SpoolId>>,
    /// How to reload, when a server runs.
    pub reload: Option<Reload>,
    /// How a running server takes changed aliases (forwarding only, not the list files).
    pub aliases_changed: Option<Reload>,
}

/// An answer: status, content type and body.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// The body's type: JSON, except for raw messages.
    pub content_type: &'static str,
    /// The body.
    pub body: Vec<u8>,
}

/// The JSON type.
pub const JSON: &str = "application/json";

impl Reply {
    /// `value` as JSON with `status`.
    pub fn json(status: u16, value: &impl Serialize) -> Reply {
        match serde_json::to_vec_pretty(value) {
            Ok(body) => Reply {
                status,
                content_type: JSON,
                body,
            },
            Err(e) => Reply::error(500, &format!("cannot encode the answer: {e}")),
        }
    }

    /// `{"error": message}` with `status`.
    pub fn error(status: u16, message: &str) -> Reply {
        Reply {
            status,
            content_type: JSON,
            body: serde_json::json!({ "error": message })
                .to_string()
                .into_bytes(),
        }
    }

    /// A raw message.
    pub fn message(bytes: Vec<u8>) -> Reply {
        Reply {
            status: 200,
            content_type: "message/rfc822",
            body: bytes,
        }
    }

    /// The error text of a failed answer.
    pub fn error_text(&self) -> String {
        serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&self.body).into_owned())
    }
}

/// A failed request: its status and a message for the operator.
pub(super) struct Failure(u16, String);

impl Failure {
    fn not_found(what: impl Into<String>) -> Self {
        Failure(404, what.into())
    }
    fn invalid(what: impl Into<String>) -> Self {
        Failure(400, what.into())
    }
}

impl From<crate::store::StoreError> for Failure {
    fn from(e: crate::store::StoreError) -> Self {
        Failure(503, e.to_string())
    }
}

type Answer = Result<Reply, Failure>;

/// One request, split for the routes.
pub(super) struct Call<'a> {
    method: &'a str,
    /// The path's segments after `/api/`, percent-decoded.
    segments: Vec<String>,
    query: Vec<(String, String)>,
    body: &'a [u8],
}

impl Call<'_> {
    fn param(&self, name: &str) -> Option<&str> {
        crate::web::form::value(&self.query, name)
    }

    fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, Failure> {
        serde_json::from_slice(self.body)
            .map_err(|e| Failure::invalid(format!("the body is not the JSON expected: {e}")))
    }
}

impl<S: Store> Api<S> {
    /// Answers `method path?query` with `body`. Blocking (store transactions): the listener
    /// runs it on the blocking pool.
    pub fn call(&self, method: &str, path: &str, query: Option<&str>, body: &[u8]) -> Reply {
        let Some(rest) = path.strip_prefix("/api/") else {
            return Reply::error(404, "not found");
        };
        let call = Call {
            method,
            segments: rest
                .split('/')
                .filter(|s| !s.is_empty())
                .map(|s| super::form::decode(s.as_bytes(), false))
                .collect(),
            query: super::form::urlencoded(query.unwrap_or_default().as_bytes()),
            body,
        };
        match self.route(&call) {
            Ok(reply) => reply,
            Err(Failure(status, message)) => Reply::error(status, &message),
        }
    }

    fn route(&self, call: &Call<'_>) -> Answer {
        let segments: Vec<&str> = call.segments.iter().map(String::as_str).collect();
        match (call.method, segments.as_slice()) {
            (_, ["lists", ..]) => self.lists_route(call, &segments[1..]),
            (_, ["held", ..]) => self.held_route(call, &segments[1..]),
            (_, ["queue", ..]) => self.queue_route(call, &segments[1..]),
            (_, ["aliases", ..]) => self.aliases_route(call, &segments[1..]),
            ("GET", ["report"]) => self.report(call),
            ("POST", ["reload"]) => self.do_reload(),
            _ => Err(Failure::not_found(format!(
                "no route {} /api/{}",
                call.method,
                segments.join("/")
            ))),
        }
    }

    /// The posting address of a configured list, or 404 naming the lists folder.
    fn known_list(&self, list: &str) -> Result<String, Failure> {
        let config = self.config.get();
        config.list(list).map(|l| l.address.clone()).ok_or_else(|| {
            Failure::not_found(format!(
                "no list {list} in {}",
                config.server.lists_dir.display()
            ))
        })
    }

    fn report(&self, call: &Call<'_>) -> Answer {
        let since = crate::operate::report::parse_duration(call.param("since").unwrap_or("24h"))
            .map_err(Failure::invalid)?;
        let list = match call.param("list") {
            Some(l) => Some(self.known_list(l)?),
            None => None,
        };
        let from = crate::auth::unix_now().saturating_sub(since);
        let report = crate::operate::report::build(&*self.store, from, list.as_deref())?;
        Ok(Reply::json(200, &report))
    }

    fn do_reload(&self) -> Answer {
        let Some(reload) = &self.reload else {
            return Err(Failure(409, "no server runs; nothing to reload".into()));
        };
        match reload() {
            Ok(what) => Ok(Reply::json(200, &serde_json::json!({ "reloaded": what }))),
            Err(e) => Err(Failure(422, e)),
        }
    }
}
