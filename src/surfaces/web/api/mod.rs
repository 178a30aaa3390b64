//! The admin API: JSON over HTTP on the admin listener, behind its bearer token, so that an
//! operator never stops the server to change it. A thin serde adapter over the admin service
//! ([`crate::surfaces::admin`]): routes decode the request, call one typed method and encode its
//! answer; the service's errors become statuses in [`status`]. `arclist member|held|queue|
//! list|report|forward` call the same service (over these routes while a server runs), so
//! both give the same answers. Routes and examples: `docs/admin-api.md`.

pub mod archive;
pub mod held;
pub mod lists;
pub mod members;
pub mod queue;

use crate::surfaces::admin::AdminError;
use serde::Serialize;

/// The service the API serves, under its older name (the server builds it as `Api`).
pub use crate::surfaces::admin::{Admin as Api, Reload};

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

/// The HTTP status of a refusal: the one place the service's errors become statuses.
pub fn status(e: &AdminError) -> u16 {
    match e {
        AdminError::BadRequest { .. } => 400,
        AdminError::NotFound(_) => 404,
        AdminError::Conflict(_) => 409,
        AdminError::NotApplied(_) => 422,
        AdminError::Store(_) | AdminError::Unavailable(_) => 503,
    }
}

type Answer = Result<Reply, AdminError>;

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
        crate::surfaces::web::form::value(&self.query, name)
    }

    fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, AdminError> {
        serde_json::from_slice(self.body)
            .map_err(|e| AdminError::bad("body", format!("the body is not the JSON expected: {e}")))
    }

    fn not_found(&self) -> AdminError {
        AdminError::NotFound(format!(
            "no route {} /api/{}",
            self.method,
            self.segments.join("/")
        ))
    }
}

/// `value` as JSON with 200.
fn ok(value: &impl Serialize) -> Answer {
    Ok(Reply::json(200, value))
}

/// Answers `method path?query` with `body` from `api`.
pub async fn answer(
    api: &Api,
    method: &str,
    path: &str,
    query: Option<&str>,
    body: &[u8],
) -> Reply {
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
    match route(api, &call).await {
        Ok(reply) => reply,
        Err(e) => Reply::error(status(&e), &e.to_string()),
    }
}

async fn route(api: &Api, call: &Call<'_>) -> Answer {
    let segments: Vec<&str> = call.segments.iter().map(String::as_str).collect();
    match (call.method, segments.as_slice()) {
        (_, ["lists", ..]) => lists::route(api, call, &segments[1..]).await,
        (_, ["held", ..]) => held::route(api, call, &segments[1..]).await,
        (_, ["queue", ..]) => queue::route(api, call, &segments[1..]).await,
        (_, ["aliases", ..]) => lists::aliases_route(api, call, &segments[1..]).await,
        (_, ["archive", ..]) => archive::route(api, call, &segments[1..]).await,
        ("GET", ["report"]) => ok(&api
            .report(call.param("since").unwrap_or("24h"), call.param("list"))
            .await?),
        ("POST", ["reload"]) => ok(&api.reload().await?),
        ("POST", ["store", "backup"]) => {
            let backup: crate::surfaces::admin::Backup = call.json()?;
            ok(&api.backup(&backup.file).await?)
        }
        _ => Err(call.not_found()),
    }
}
