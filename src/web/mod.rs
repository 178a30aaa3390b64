//! The small HTTP listener: RFC 8058 one-click unsubscribe.
//!
//! `POST /unsubscribe/LIST/ADDRESS/TOKEN` with `List-Unsubscribe=One-Click` removes the member
//! and answers 200, also when they had already left (mailbox providers retry). `GET` on the same
//! URL only shows a page with a button, because link scanners fetch URLs (RFC 8058 §3.2).
//! Requests are bounded in size and time; anything else gets 404.

use crate::list::tokens;
use crate::store::Store;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Largest request head and body read.
const MAX_REQUEST: usize = 8 * 1024;
/// Requests served at once; more wait for a slot (each is bounded to 10 s).
const MAX_CONCURRENT: usize = 256;

/// A running HTTP listener.
pub struct WebHandle {
    /// Where it listens.
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl WebHandle {
    /// Stops accepting.
    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// Starts serving at `addr`. `lists` are the posting addresses served.
pub async fn start<S: Store>(
    addr: SocketAddr,
    store: Arc<S>,
    lists: Vec<String>,
) -> std::io::Result<WebHandle> {
    let socket = TcpListener::bind(addr).await.map_err(|e| {
        std::io::Error::new(e.kind(), format!("cannot listen on {addr} (http): {e}"))
    })?;
    let addr = socket.local_addr()?;
    tracing::info!(%addr, "HTTP listening (one-click unsubscribe)");
    let lists = Arc::new(lists);
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT));
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, peer)) = socket.accept().await else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let (store, lists) = (store.clone(), lists.clone());
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            tokio::spawn(async move {
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
    Ok(WebHandle { addr, task })
}

async fn serve<S: Store>(mut stream: TcpStream, store: &S, lists: &[String]) {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_REQUEST {
            return respond(&mut stream, 431, "request too large").await;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.lines();
    let mut request_line = lines.next().unwrap_or_default().split_whitespace();
    let (method, path) = (
        request_line.next().unwrap_or_default(),
        request_line.next().unwrap_or_default(),
    );
    let length: usize = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    if length > MAX_REQUEST {
        return respond(&mut stream, 413, "body too large").await;
    }
    while buf.len() < head_end + length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let body = String::from_utf8_lossy(&buf[head_end..head_end + length]).into_owned();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let ["unsubscribe", list, address, token] = parts.as_slice() else {
        return respond(&mut stream, 404, "not found").await;
    };
    let Some(list) = lists.iter().find(|l| l.eq_ignore_ascii_case(list)) else {
        return respond(&mut stream, 404, "no such list").await;
    };
    let secret = match store.token_secret() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the token secret");
            return respond(&mut stream, 503, "try again later").await;
        }
    };
    if !tokens::check_unsubscribe(&secret, token, list, address) {
        return respond(&mut stream, 403, "this unsubscribe link is not valid").await;
    }
    match method {
        "POST" if body.trim() == "List-Unsubscribe=One-Click" => {
            match store.remove_member(list, address) {
                Ok(removed) => {
                    tracing::info!(%list, %address, removed, "one-click unsubscribe");
                    respond(
                        &mut stream,
                        200,
                        &format!("{address} no longer receives {list}"),
                    )
                    .await
                }
                Err(e) => {
                    tracing::error!(error = %e, %list, %address, "one-click unsubscribe failed");
                    respond(&mut stream, 503, "try again later").await
                }
            }
        }
        "POST" => respond(&mut stream, 400, "expected List-Unsubscribe=One-Click").await,
        "GET" => {
            let page = format!(
                "<!doctype html><title>Unsubscribe</title><form method=post><input type=hidden name=List-Unsubscribe value=One-Click>\
                 <p>Stop sending {list} to {address}?</p><button>Unsubscribe</button></form>"
            );
            respond_html(&mut stream, &page).await
        }
        _ => respond(&mut stream, 405, "method not allowed").await,
    }
}

async fn respond(stream: &mut TcpStream, code: u16, text: &str) {
    let reason = match code {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        _ => "Service Unavailable",
    };
    let body = format!("{text}\n");
    let reply = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(reply.as_bytes()).await;
}

async fn respond_html(stream: &mut TcpStream, page: &str) {
    let reply = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
        page.len()
    );
    let _ = stream.write_all(reply.as_bytes()).await;
}
