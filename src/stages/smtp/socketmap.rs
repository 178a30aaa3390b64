//! Postfix's socketmap protocol (socketmap_table(5)), so that a Postfix in front can ask
//! arclist which recipients exist (`relay_recipient_maps`) and refuse the rest at `RCPT`,
//! instead of accepting mail for any address at a list domain and bouncing it afterwards to
//! a sender that is often forged (backscatter). The answer is the [`Directory`]'s, the same one
//! arclist's own SMTP session uses: lists and their companions, `+TOKEN` forms, forwarding
//! aliases and live SRS addresses, as the configuration and store say now (a reload and an
//! alias added through the admin API count at once).
//!
//! A request is a netstring `LEN:NAME KEY,`; the answer `OK ours`, `NOTFOUND `, or
//! `PERM reason` for a request that is not one. The map name is not looked at: every map
//! asks the same question.

use crate::base::tasks::Tasks;
use crate::stages::directory::Directory;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// The longest request read: a map name and an address (RFC 5321's path is 256 octets).
pub const MAX_REQUEST: usize = 1024;
/// Connections served at once; Postfix keeps a few open per process that asks.
pub const MAX_CONNECTIONS: usize = 64;
/// How long a connection may be idle before it is closed (Postfix opens a new one).
pub const IDLE: Duration = Duration::from_secs(300);

/// Binds `addr` and answers lookups from `directory` until `tasks` stop. Returns the bound
/// address. Bind it to loopback: anyone who reaches it learns which addresses exist.
pub async fn start(
    addr: SocketAddr,
    directory: Directory,
    tasks: &Tasks,
) -> std::io::Result<SocketAddr> {
    let socket = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot listen on {addr} (socketmap): {e}"),
        )
    })?;
    let bound = socket.local_addr()?;
    tracing::info!(addr = %bound, "Postfix socketmap listening");
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let connections = tasks.clone();
    tasks.spawn(async move {
        loop {
            let Ok((stream, peer)) = socket.accept().await else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                tracing::info!(%peer, "socketmap: {MAX_CONNECTIONS} connections already; closed");
                continue;
            };
            let directory = directory.clone();
            connections.spawn(async move {
                serve(stream, peer, &directory).await;
                drop(slot);
            });
        }
    });
    Ok(bound)
}

/// One connection: requests until the client closes, stays idle too long, or sends
/// something that is not a request.
async fn serve(stream: tokio::net::TcpStream, peer: SocketAddr, directory: &Directory) {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    loop {
        let request = match tokio::time::timeout(IDLE, netstring(&mut read)).await {
            Ok(Ok(Some(request))) => request,
            Ok(Ok(None)) | Err(_) => return,
            Ok(Err(why)) => {
                tracing::info!(%peer, why, "socketmap: not a request; closing");
                let _ = write.write_all(&encode(&format!("PERM {why}"))).await;
                return;
            }
        };
        let answer = answer(directory, &request);
        if write.write_all(&encode(&answer)).await.is_err() {
            return;
        }
    }
}

/// The answer to `NAME KEY`.
fn answer(directory: &Directory, request: &str) -> String {
    let Some((_, key)) = request.split_once(' ') else {
        return "PERM the request is NAME KEY".to_string();
    };
    match directory.resolve(key.trim()) {
        Some(_) => "OK ours".to_string(),
        None => "NOTFOUND ".to_string(),
    }
}

/// Reads one netstring; `None` at a clean end of the stream.
async fn netstring<R: tokio::io::AsyncBufRead + Unpin>(
    read: &mut R,
) -> Result<Option<String>, &'static str> {
    let mut length = Vec::new();
    let got = read
        .take(8)
        .read_until(b':', &mut length)
        .await
        .map_err(|_| "the connection failed")?;
    if got == 0 {
        return Ok(None);
    }
    let digits = length.strip_suffix(b":").ok_or("a netstring starts LEN:")?;
    let len: usize = std::str::from_utf8(digits)
        .ok()
        .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|d| d.parse().ok())
        .ok_or("a netstring starts LEN:")?;
    if len > MAX_REQUEST {
        return Err("the request is longer than 1024 bytes");
    }
    let mut body = vec![0; len + 1];
    read.read_exact(&mut body)
        .await
        .map_err(|_| "the netstring ended early")?;
    if body.pop() != Some(b',') {
        return Err("a netstring ends with ,");
    }
    String::from_utf8(body)
        .map(Some)
        .map_err(|_| "the request is not UTF-8")
}

/// `text` as a netstring.
fn encode(text: &str) -> Vec<u8> {
    format!("{}:{text},", text.len()).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read(bytes: &[u8]) -> Result<Option<String>, &'static str> {
        netstring(&mut BufReader::new(bytes)).await
    }

    #[tokio::test]
    async fn netstrings_are_read_within_bounds() {
        assert_eq!(
            read(b"19:recipients a@b.test,").await,
            Ok(Some("recipients a@b.test".to_string()))
        );
        assert_eq!(read(b"").await, Ok(None));
        assert!(read(b"5:abc,").await.is_err(), "ended early");
        assert!(read(b"3:abcd").await.is_err(), "no comma");
        assert!(read(b"x:abc,").await.is_err());
        assert!(read(b"99999999:").await.is_err(), "too long a length");
        assert!(read(b"2000:").await.is_err(), "over the limit");
        assert_eq!(encode("NOTFOUND "), b"9:NOTFOUND ,".to_vec());
    }
}
