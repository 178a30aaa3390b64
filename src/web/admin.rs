//! The admin listener: `GET /metrics` for Prometheus, behind a bearer token. Bind it to
//! loopback or a management network; the token keeps everyone else out even so.

use super::http;
use crate::tasks::Tasks;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

/// Starts serving at `addr` until `tasks` stop; requests must carry
/// `Authorization: Bearer TOKEN`. Returns the bound address.
pub async fn start(addr: SocketAddr, token: String, tasks: &Tasks) -> std::io::Result<SocketAddr> {
    let socket = TcpListener::bind(addr).await.map_err(|e| {
        std::io::Error::new(e.kind(), format!("cannot listen on {addr} (admin): {e}"))
    })?;
    let addr = socket.local_addr()?;
    tracing::info!(%addr, "admin HTTP listening (metrics)");
    let token = Arc::new(token);
    let slots = Arc::new(tokio::sync::Semaphore::new(16));
    let connections = tasks.clone();
    tasks.spawn(async move {
        loop {
            let Ok((stream, _)) = socket.accept().await else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let token = token.clone();
            connections.spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(10), serve(stream, &token)).await;
                drop(slot);
            });
        }
    });
    Ok(addr)
}

async fn serve(mut stream: TcpStream, token: &str) {
    let Some(request) = http::read(&mut stream).await else {
        return;
    };
    let presented = request
        .header("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .trim();
    let good =
        aws_lc_rs::constant_time::verify_slices_are_equal(presented.as_bytes(), token.as_bytes())
            .is_ok();
    if !good {
        return http::respond_typed(
            &mut stream,
            401,
            "text/plain; charset=utf-8",
            "a bearer token is required\n",
            &["WWW-Authenticate: Bearer realm=\"arclist\""],
        )
        .await;
    }
    match (request.method.as_str(), request.path.as_str()) {
        ("GET", "/metrics") => {
            http::respond_typed(
                &mut stream,
                200,
                crate::metrics::CONTENT_TYPE,
                &crate::metrics::render(),
                &[],
            )
            .await
        }
        ("GET", _) => http::respond(&mut stream, 404, "not found").await,
        _ => http::respond(&mut stream, 405, "method not allowed").await,
    }
}
