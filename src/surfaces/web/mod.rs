//! The HTTP listeners, on hyper ([`serve`]): RFC 8058 one-click unsubscribe (public, behind a
//! web server) here, and the admin listener with the metrics and the admin API ([`admin`]).
//!
//! `POST /unsubscribe/TOKEN` with the form field `List-Unsubscribe=One-Click` (sent as
//! `application/x-www-form-urlencoded` or `multipart/form-data`, chunked or not) removes the
//! member, records that durably, then answers 200, also when they had already left (mailbox
//! providers retry). The token is opaque: it names the list and the member without showing
//! them. `GET` on the same URL only shows a page with a button, because link scanners fetch
//! URLs (RFC 8058 §3.2). Links of the older form `/unsubscribe/LIST/ADDRESS/MAC`, in copies
//! sent before, keep working. Under `/lists/`, the lists' public pages ([`member_pages`]).

pub mod admin;
pub mod api;
pub mod archive;
pub mod body;
pub mod chain_view;
pub mod console;
pub mod form;
pub mod hosts;
pub mod member_pages;
pub mod pages;
pub mod serve;
pub mod write_deadline;

use crate::base::config::{AdminConfig, Limits as ServerLimits};
use crate::base::tasks::Tasks;
use crate::stages::list::{Lists, tokens};
use crate::state::store::{Departure, DepartureReason, Store};
use serve::{Request, Response, html, text};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// The bounds of the public one-click listener, from the server's `[limits]`. The web server
/// in front (`proxies`) is exempt from the per-address limit: every request comes from it.
/// Nothing there needs credentials, so every request is anonymous.
pub fn limits(server: &ServerLimits, proxies: &[std::net::IpAddr]) -> serve::Limits {
    serve::Limits {
        max_connections: 256,
        per_ip: server.http_connections_per_ip,
        exempt: proxies.to_vec(),
        header_timeout: Duration::from_secs(server.http_header_timeout_secs.max(1)),
        request_timeout: Duration::from_secs(10),
        max_body: 8 * 1024,
        anonymous: 256,
        anonymous_per_ip: server.http_connections_per_ip,
        body_timeout: Duration::from_secs(10),
        min_body_rate: crate::base::config::DEFAULT_MIN_BODY_RATE,
    }
}

/// The bounds of the admin listener: bodies up to 64 MiB (a member import) and 10 minutes per
/// request (importing or listing a million members), behind the token, which is checked
/// before any body is read; loopback is limited too (that is where operators are). Requests
/// without the token (the console, the chain viewer) have a share of their own, smaller than
/// the connections, and a deadline for their bodies, so they cannot keep the token holder out.
pub fn admin_limits(server: &ServerLimits, admin: &AdminConfig) -> serve::Limits {
    serve::Limits {
        max_connections: admin.max_connections,
        per_ip: server.http_connections_per_ip,
        exempt: admin.proxies.clone(),
        header_timeout: Duration::from_secs(server.http_header_timeout_secs.max(1)),
        request_timeout: Duration::from_secs(600),
        max_body: 64 << 20,
        anonymous: admin.anonymous_requests,
        anonymous_per_ip: admin.anonymous_requests_per_ip,
        body_timeout: Duration::from_secs(admin.body_timeout_secs.max(1)),
        min_body_rate: admin.min_body_rate,
    }
}

/// The bounds of the local admin socket: as the admin listener's for an operator (large
/// imports, long requests); every request on it is privileged, so the anonymous share is
/// never used.
pub fn local_admin_limits(server: &ServerLimits) -> serve::Limits {
    serve::Limits {
        max_connections: 64,
        per_ip: 64,
        exempt: Vec::new(),
        header_timeout: Duration::from_secs(server.http_header_timeout_secs.max(1)),
        request_timeout: Duration::from_secs(600),
        max_body: 64 << 20,
        anonymous: 1,
        anonymous_per_ip: 1,
        body_timeout: Duration::from_secs(600),
        min_body_rate: 0,
    }
}

/// Starts serving one-click unsubscribe at `addr` until `tasks` stop; returns the bound
/// address.
pub async fn start(
    addr: SocketAddr,
    store: Arc<Store>,
    lists: Lists,
    limits: serve::Limits,
    tasks: &Tasks,
) -> std::io::Result<SocketAddr> {
    let archive = archive::Archive::new(store.clone(), lists.clone());
    let pages = member_pages::MemberPages::new(store.clone(), lists.clone(), tasks.clone());
    let handler = Arc::new(OneClick {
        store,
        lists,
        archive,
        pages,
    });
    serve::start(addr, "one-click unsubscribe", handler, limits, tasks).await
}

/// The one-click handler, which hands the lists' public pages to [`member_pages`].
struct OneClick {
    store: Arc<Store>,
    lists: Lists,
    /// The list archives' pages (`/archive/`).
    archive: archive::Archive,
    /// The lists' public pages (`/lists/`): joining, a member's settings.
    pages: member_pages::MemberPages,
}

impl serve::Handler for OneClick {
    async fn handle(&self, request: Request) -> Response {
        if archive::Archive::serves(&request.path) {
            return self.archive.handle(&request).await;
        }
        let secret = match self.store.token_secret().await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the token secret");
                return text(503, "try again later");
            }
        };
        if member_pages::serves(&request.path) {
            return self.pages.handle(&request, &secret).await;
        }
        let Some(link) = member_of(&request.path, &secret) else {
            return match request.path.starts_with("/unsubscribe/") {
                true => text(403, "this unsubscribe link is not valid"),
                false => text(404, "not found"),
            };
        };
        if !self.lists.contains(&link.list) {
            return text(404, "no such list");
        }
        if let Some(refused) = self.stale(&link).await {
            return refused;
        }
        let tokens::OneClick { list, address, .. } = link;
        match request.method.as_str() {
            "POST" if asks_one_click(&request) => self.unsubscribe(list, address).await,
            "POST" => text(400, "expected the form field List-Unsubscribe=One-Click"),
            "GET" | "HEAD" => html(format!(
                "<!doctype html><title>Unsubscribe</title><form method=post>\
                 <input type=hidden name=List-Unsubscribe value=One-Click>\
                 <p>Stop sending {} to {}?</p><button>Unsubscribe</button></form>",
                escape(&list),
                escape(&address)
            )),
            _ => text(405, "method not allowed"),
        }
    }
}

impl OneClick {
    /// The answer to a link from a copy sent before the member last joined (410, nothing
    /// changed; see [`crate::stages::list::unsubscribe::stale`]), or to a store that cannot say.
    async fn stale(&self, link: &tokens::OneClick) -> Option<Response> {
        link.issued?;
        let member = match self.store.member(&link.list, &link.address).await {
            Ok(member) => member,
            Err(e) => {
                tracing::error!(error = %e, list = %link.list, address = %link.address, "cannot read the member for a one-click link");
                return Some(text(503, "try again later"));
            }
        };
        if !crate::stages::list::unsubscribe::stale(link.issued, member.as_ref()) {
            return None;
        }
        tracing::info!(list = %link.list, address = %link.address, issued = ?link.issued, "one-click link from before the member joined again; nothing changed");
        Some(serve::respond(
            410,
            "text/html; charset=utf-8",
            format!(
                "<!doctype html><title>Link expired</title><p>This unsubscribe link comes from \
                 a message sent before {} joined {} again, so it no longer works and nothing \
                 was changed. To leave, use the link in a recent message from the list.",
                escape(&link.address),
                escape(&link.list)
            ),
        ))
    }

    /// Removes the member; the departure is committed before the 200.
    async fn unsubscribe(&self, list: String, address: String) -> Response {
        let why = Departure::now(DepartureReason::Unsubscribed);
        match self.store.remove_member(&list, &address, why).await {
            Ok(removed) => {
                tracing::info!(%list, %address, removed, "one-click unsubscribe");
                text(200, &format!("{address} no longer receives {list}"))
            }
            Err(e) => {
                tracing::error!(error = %e, %list, %address, "one-click unsubscribe failed");
                text(503, "try again later")
            }
        }
    }
}

/// The list and member a one-click path names, and when its link was made, if its token is
/// good.
fn member_of(path: &str, secret: &[u8]) -> Option<tokens::OneClick> {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["unsubscribe", token] => tokens::open_unsubscribe(secret, token),
        ["unsubscribe", list, address, mac] => {
            let list = form::decode(list.as_bytes(), false).to_ascii_lowercase();
            let address = form::decode(address.as_bytes(), false).to_ascii_lowercase();
            tokens::check_unsubscribe(secret, mac, &list, &address).then_some(tokens::OneClick {
                list,
                address,
                issued: None,
            })
        }
        _ => None,
    }
}

/// Whether the body carries `List-Unsubscribe=One-Click` as a form field.
fn asks_one_click(request: &Request) -> bool {
    let content_type = request.header("content-type").unwrap_or_default();
    let fields = form::fields(content_type, &request.body);
    if fields.is_empty() {
        // Some senders omit the content type; the exact body is unambiguous.
        return request.body.trim_ascii() == b"List-Unsubscribe=One-Click";
    }
    fields
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("List-Unsubscribe") && v.trim() == "One-Click")
}

/// Text made safe for HTML.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
