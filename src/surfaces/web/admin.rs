//! The admin listener: `GET /metrics` for Prometheus and the admin API under `/api/`
//! ([`super::api`]), behind a bearer token. Bind it to loopback or a management network; the
//! token keeps everyone else out even so. With `chain_viewer`, `/arc` ([`super::chain_view`])
//! is served without the token: it shows what DNS says of a message and changes nothing.
//! Every request must name the listener in its `Host` ([`super::hosts`]), or it gets 421.
//!
//! The local admin socket ([`start_local`]) serves the same API and metrics on a Unix socket
//! in the state folder, always: who may connect is what the socket file's mode and group
//! say (the service user and its group), so it asks for no token and no host name.

use super::api::Api;
use super::chain_view;
use super::chain_view::http::Viewer;
use super::console::Console;
use super::hosts::Hosts;
use super::serve::{self, Request, Response, respond, text};
use crate::base::tasks::Tasks;
use std::net::SocketAddr;
use std::sync::Arc;

/// Starts serving at `addr` until `tasks` stop; requests must carry
/// `Authorization: Bearer TOKEN`. Returns the bound address.
pub async fn start(
    (addr, hosts): (SocketAddr, Hosts),
    token: String,
    api: Api,
    (viewer, console): (Option<Arc<Viewer>>, Option<Console>),
    limits: serve::Limits,
    tasks: &Tasks,
) -> std::io::Result<SocketAddr> {
    let handler = Arc::new(Admin {
        hosts,
        token,
        api,
        viewer,
        console,
        tasks: tasks.clone(),
    });
    serve::start(addr, "admin", handler, limits, tasks).await
}

/// Starts serving the admin API and `/metrics` on the Unix socket `socket` (bound by
/// [`serve::bind_unix`]) until `tasks` stop.
pub fn start_local(
    socket: tokio::net::UnixListener,
    api: Api,
    limits: serve::Limits,
    tasks: &Tasks,
) {
    serve::start_unix(
        socket,
        "local admin",
        Arc::new(Local { api }),
        limits,
        tasks,
    );
}

/// The local admin socket's handler: whoever the file permissions let connect is an
/// operator.
struct Local {
    api: Api,
}

impl serve::Handler for Local {
    fn privileged(&self, _head: &hyper::http::request::Parts) -> bool {
        true
    }

    async fn handle(&self, request: Request) -> Response {
        api_or_metrics(&self.api, request).await
    }
}

/// `GET /metrics`, or the admin API under `/api/`; 404 for anything else.
async fn api_or_metrics(api: &Api, request: Request) -> Response {
    if request.method == hyper::Method::GET && request.path == "/metrics" {
        return respond(
            200,
            crate::base::metrics::CONTENT_TYPE,
            crate::base::metrics::render(),
        );
    }
    if !request.path.starts_with("/api/") {
        return text(404, "not found");
    }
    let reply = super::api::answer(
        api,
        request.method.as_str(),
        &request.path,
        request.query.as_deref(),
        &request.body,
    )
    .await;
    if reply.status >= 400 {
        tracing::info!(peer = %request.peer, status = reply.status, error = %reply.error_text(), "admin API request refused");
    }
    respond(reply.status, reply.content_type, reply.body)
}

/// The largest console form: a few fields.
const CONSOLE_FORM: usize = 64 * 1024;

/// Whether `path` is one of the console's.
fn is_console(path: &str) -> bool {
    path == "/console" || path.starts_with("/console/")
}

struct Admin {
    /// The names the listener answers to.
    hosts: Hosts,
    token: String,
    api: Api,
    /// The chain viewer, when it is on.
    viewer: Option<Arc<Viewer>>,
    /// The web console, when it has people.
    console: Option<Console>,
    tasks: Tasks,
}

impl Admin {
    /// Whether the head carries `Authorization: Bearer TOKEN` (compared in constant time).
    fn has_token(&self, head: &hyper::http::request::Parts) -> bool {
        let presented = head
            .headers
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default()
            .trim();
        aws_lc_rs::constant_time::verify_slices_are_equal(
            presented.as_bytes(),
            self.token.as_bytes(),
        )
        .is_ok()
    }
}

impl serve::Handler for Admin {
    fn privileged(&self, head: &hyper::http::request::Parts) -> bool {
        self.has_token(head)
            || (is_console(head.uri.path())
                && self.console.as_ref().is_some_and(|c| c.signed_in(head)))
    }

    /// The `Host` and then the token are checked on the head: a request without them never
    /// gets its body read.
    fn screen(&self, head: &hyper::http::request::Parts) -> Option<Response> {
        let host = head
            .headers
            .get(hyper::header::HOST)
            .map(|v| v.to_str().unwrap_or_default());
        if !self.hosts.allows(host) {
            // 421 (RFC 9110 §15.5.20): this listener is not the server for that name, which
            // is what a rebound name is; nothing is served under it.
            tracing::info!(host = ?host.unwrap_or_default(), path = %head.uri.path(), "admin request for a host name this listener does not answer to; refused (421)");
            return Some(text(
                421,
                "this listener does not answer to that host name ([admin] hosts)",
            ));
        }
        // The console has logins of its own; its forms are small (`body_limit`).
        if self.console.is_some() && is_console(head.uri.path()) {
            return None;
        }
        if self.viewer.is_some() && head.uri.path() == "/arc" {
            // Open to whoever reaches the listener: a body larger than the viewer takes is
            // refused before it is read.
            let declared = head
                .headers
                .get(hyper::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            if declared > chain_view::MAX_MESSAGE + 64 * 1024 {
                return Some(text(
                    413,
                    "the message is larger than the viewer takes (4 MiB)",
                ));
            }
            return None;
        }
        if self.has_token(head) {
            return None;
        }
        tracing::info!(path = %head.uri.path(), "admin request without the right token");
        let mut answer = text(401, "a bearer token is required");
        answer.headers_mut().insert(
            hyper::header::WWW_AUTHENTICATE,
            hyper::header::HeaderValue::from_static("Bearer realm=\"arclist\""),
        );
        Some(answer)
    }

    /// What the pages open without the token take: a console form, or one message to view.
    fn body_limit(&self, head: &hyper::http::request::Parts) -> Option<usize> {
        let path = head.uri.path();
        if self.console.is_some() && is_console(path) {
            return Some(CONSOLE_FORM);
        }
        (self.viewer.is_some() && path == "/arc").then_some(chain_view::MAX_MESSAGE + 64 * 1024)
    }

    async fn handle(&self, request: Request) -> Response {
        if let (Some(viewer), "/arc") = (&self.viewer, request.path.as_str()) {
            return viewer.answer(&request, &self.tasks).await;
        }
        if let Some(console) = &self.console
            && is_console(&request.path)
        {
            return console.handle(&self.api, &request).await;
        }
        api_or_metrics(&self.api, request).await
    }
}
