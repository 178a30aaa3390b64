//! The small HTTP listeners: RFC 8058 one-click unsubscribe (public, behind a web server)
//! here, and the admin listener with the metrics ([`admin`]).
//!
//! `POST /unsubscribe/LIST/ADDRESS/TOKEN` with `List-Unsubscribe=One-Click` removes the member
//! and answers 200, also when they had already left (mailbox providers retry). `GET` on the same
//! URL only shows a page with a button, because link scanners fetch URLs (RFC 8058 §3.2).
//! Requests are bounded in size and time; anything else gets 404.

pub mod admin;
mod http;

use crate::list::tokens;
use crate::store::Store;
use crate::tasks::Tasks;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

/// Requests served at once; more wait for a slot (each is bounded to 10 s).
const MAX_CONCURRENT: usize = 256;

/// Starts serving at `addr` until `tasks` stop; returns the bound address. `lists` are the
/// posting addresses served.
pub async fn start<S: Store>(
    addr: SocketAddr,
    store: Arc<S>,
    lists: Vec<String>,
    tasks: &Tasks,
) -> std::io::Result<SocketAddr> {
    let socket = TcpListener::bind(addr).await.map_err(|e| {
        std::io::Error::new(e.kind(), format!("cannot listen on {addr} (http): {e}"))
    })?;
    let addr = socket.local_addr()?;
    tracing::info!(%addr, "HTTP listening (one-click unsubscribe)");
    let lists = Arc::new(lists);
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT));
    let connections = tasks.clone();
    tasks.spawn(async move {
        loop {
            let Ok((stream, peer)) = socket.accept().await else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let (store, lists) = (store.clone(), lists.clone());
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            connections.spawn(async move {
                if tokio::time::timeout(Duration::from_secs(10), serve(stream, &*store, &lists))
                    .await
                    .is_err()
                {
                    tracing::debug!(%peer, "HTTP request timed out");
                }
                drop(slot);
            });
        }
    });
    Ok(addr)
}

async fn serve<S: Store>(mut stream: TcpStream, store: &S, lists: &[String]) {
    let Some(http::Request {
        method, path, body, ..
    }) = http::read(&mut stream).await
    else {
        return;
    };
    let method = method.as_str();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let ["unsubscribe", list, address, token] = parts.as_slice() else {
        return http::respond(&mut stream, 404, "not found").await;
    };
    let Some(list) = lists.iter().find(|l| l.eq_ignore_ascii_case(list)) else {
        return http::respond(&mut stream, 404, "no such list").await;
    };
    let secret = match store.token_secret() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the token secret");
            return http::respond(&mut stream, 503, "try again later").await;
        }
    };
    if !tokens::check_unsubscribe(&secret, token, list, address) {
        return http::respond(&mut stream, 403, "this unsubscribe link is not valid").await;
    }
    match method {
        "POST" if body.trim() == "List-Unsubscribe=One-Click" => {
            match store.remove_member(list, address) {
                Ok(removed) => {
                    tracing::info!(%list, %address, removed, "one-click unsubscribe");
                    http::respond(
                        &mut stream,
                        200,
                        &format!("{address} no longer receives {list}"),
                    )
                    .await
                }
                Err(e) => {
                    tracing::error!(error = %e, %list, %address, "one-click unsubscribe failed");
                    http::respond(&mut stream, 503, "try again later").await
                }
            }
        }
        "POST" => http::respond(&mut stream, 400, "expected List-Unsubscribe=One-Click").await,
        "GET" => {
            let page = format!(
                "<!doctype html><title>Unsubscribe</title><form method=post><input type=hidden name=List-Unsubscribe value=One-Click>\
                 <p>Stop sending {list} to {address}?</p><button>Unsubscribe</button></form>"
            );
            http::respond_html(&mut stream, &page).await
        }
        _ => http::respond(&mut stream, 405, "method not allowed").await,
    }
}
