//! The admin listener: `GET /metrics` for Prometheus and the admin API under `/api/`
//! ([`super::api`]), behind a bearer token. Bind it to loopback or a management network; the
//! token keeps everyone else out even so.

use super::api::Api;
use super::serve::{self, Request, Response, respond, text};
use crate::store::Store;
use crate::tasks::Tasks;
use std::net::SocketAddr;
use std::sync::Arc;

/// Starts serving at `addr` until `tasks` stop; requests must carry
/// `Authorization: Bearer TOKEN`. Returns the bound address.
pub async fn start<S: Store>(
    addr: SocketAddr,
    token: String,
    api: Api<S>,
    limits: serve::Limits,
    tasks: &Tasks,
) -> std::io::Result<SocketAddr> {
    let handler = Arc::new(Admin {
        token,
        api: Arc::new(api),
        tasks: tasks.clone(),
    });
    serve::start(addr, "admin", handler, limits, tasks).await
}

struct Admin<S> {
    token: String,
    api: Arc<Api<S>>,
    tasks: Tasks,
}

impl<S: Store> serve::Handler for Admin<S> {
    /// The token is checked on the head: a request without it never gets its body read.
    fn screen(&self, head: &hyper::http::request::Parts) -> Option<Response> {
        let presented = head
            .headers
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default()
            .trim();
        let good = aws_lc_rs::constant_time::verify_slices_are_equal(
            presented.as_bytes(),
            self.token.as_bytes(),
        )
        .is_ok();
        if good {
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

    async fn handle(&self, request: Request) -> Response {
        if request.method == hyper::Method::GET && request.path == "/metrics" {
            return respond(200, crate::metrics::CONTENT_TYPE, crate::metrics::render());
        }
        if !request.path.starts_with("/api/") {
            return text(404, "not found");
        }
        let api = self.api.clone();
        let peer = request.peer;
        let done = self
            .tasks
            .spawn_blocking(move || {
                api.call(
                    request.method.as_str(),
                    &request.path,
                    request.query.as_deref(),
                    &request.body,
                )
            })
            .await;
        match done {
            Ok(reply) => {
                if reply.status >= 400 {
                    tracing::info!(%peer, status = reply.status, error = %reply.error_text(), "admin API request refused");
                }
                respond(reply.status, reply.content_type, reply.body)
            }
            Err(_) => text(503, "try again later"),
        }
    }
}
