//! A small SMTP client for delivery: one connection, one or more transactions.

use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// A server reply: code and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit code.
    pub code: u16,
    /// The text, lines joined by spaces.
    pub text: String,
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code, self.text)
    }
}

/// What happened to one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted with 250 after the data.
    Delivered(Reply),
    /// Refused with 4xx, or the connection failed: try again later.
    Deferred(String),
    /// Refused with 5xx.
    Bounced(Reply),
}

/// One SMTP transaction: an envelope and the bytes to send.
#[derive(Debug, Clone)]
pub struct Transaction<'a> {
    /// MAIL FROM.
    pub mail_from: String,
    /// RCPT TO, in order.
    pub recipients: Vec<String>,
    /// The message (CRLF, not yet dot-stuffed).
    pub message: &'a [u8],
}

/// Plain TCP or TLS, behind one type so a session can upgrade in the middle.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

struct Conn {
    io: BufReader<Box<dyn Io>>,
    limit: Duration,
}

impl Conn {
    async fn reply(&mut self) -> Result<Reply, String> {
        let mut text = Vec::new();
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(self.limit, self.io.read_line(&mut line))
                .await
                .map_err(|_| "timed out waiting for the server".to_string())?
                .map_err(|e| format!("connection error: {e}"))?;
            if n == 0 {
                return Err("the server closed the connection".into());
            }
            let code = line
                .get(..3)
                .and_then(|c| c.parse::<u16>().ok())
                .ok_or_else(|| format!("malformed reply {line:?}"))?;
            text.push(line.get(4..).unwrap_or_default().trim_end().to_string());
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(Reply {
                    code,
                    text: text.join(" "),
                });
            }
        }
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        tokio::time::timeout(self.limit, self.io.get_mut().write_all(bytes))
            .await
            .map_err(|_| "timed out sending".to_string())?
            .map_err(|e| format!("connection error: {e}"))
    }

    async fn command(&mut self, line: &str) -> Result<Reply, String> {
        self.send(format!("{line}\r\n").as_bytes()).await?;
        self.reply().await
    }
}

/// Runs `transactions` over one connection to `addr`. Every recipient gets an outcome: a
/// transport failure defers every recipient not yet settled.
///
/// Each recipient the server accepts is also sent to `accepted` at once, before the session
/// goes on, so the caller can make it durable right away: after a crash, only the copies whose
/// 250 arrived in the last moments can go out twice.
pub async fn deliver(
    addr: SocketAddr,
    helo: &str,
    transactions: &[Transaction<'_>],
    limit: Duration,
    accepted: Option<&tokio::sync::mpsc::UnboundedSender<String>>,
) -> Vec<(String, Outcome)> {
    let mut done = Settled {
        list: Vec::new(),
        accepted,
    };
    let result = session(addr, helo, transactions, limit, &mut done).await;
    let mut done = done.list;
    if let Err(why) = result {
        for t in transactions {
            for r in &t.recipients {
                if !done.iter().any(|(a, _)| a == r) {
                    done.push((r.clone(), Outcome::Deferred(format!("{addr}: {why}"))));
                }
            }
        }
    }
    done
}

async fn session(
    addr: SocketAddr,
    helo: &str,
    transactions: &[Transaction<'_>],
    limit: Duration,
    done: &mut Settled<'_>,
) -> Result<(), String> {
    let stream = tokio::time::timeout(limit, TcpStream::connect(addr))
        .await
        .map_err(|_| "connection timed out".to_string())?
        .map_err(|e| format!("cannot connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let mut c = Conn {
        io: BufReader::new(Box::new(stream) as Box<dyn Io>),
        limit,
    };
    let greeting = c.reply().await?;
    let mut hello = greeting.clone();
    if greeting.code == 220 {
        hello = c.command(&format!("EHLO {helo}")).await?;
        if hello.code >= 500 {
            hello = c.command(&format!("HELO {helo}")).await?;
        } else if hello.code == 250
            && hello
                .text
                .split_whitespace()
                .any(|w| w.eq_ignore_ascii_case("STARTTLS"))
        {
            // Offered: use it. A failed handshake defers the mail rather than falling back to
            // plain text, which an attacker could otherwise force by breaking the handshake.
            let ready = c.command("STARTTLS").await?;
            if ready.code == 220 {
                let connector = super::opportunistic_tls::connector()?;
                let name = tokio_rustls::rustls::pki_types::ServerName::IpAddress(addr.ip().into());
                let plain = c.io.into_inner();
                let tls = tokio::time::timeout(limit, connector.connect(name, plain))
                    .await
                    .map_err(|_| "TLS handshake timed out".to_string())?
                    .map_err(|e| format!("TLS handshake failed: {e}"))?;
                c = Conn {
                    io: BufReader::new(Box::new(tls) as Box<dyn Io>),
                    limit,
                };
                hello = c.command(&format!("EHLO {helo}")).await?;
            }
        }
    }
    if hello.code != 250 {
        for t in transactions {
            done.extend(all(&t.recipients, &hello));
        }
        return Ok(());
    }
    for (i, t) in transactions.iter().enumerate() {
        if i > 0 {
            // Start each further transaction clean, whatever the last one left behind.
            c.command("RSET").await?;
        }
        transaction(&mut c, t, done).await?;
    }
    let _ = c.command("QUIT").await;
    Ok(())
}

async fn transaction(
    c: &mut Conn,
    t: &Transaction<'_>,
    done: &mut Settled<'_>,
) -> Result<(), String> {
    let mail = c.command(&format!("MAIL FROM:<{}>", t.mail_from)).await?;
    if mail.code != 250 {
        done.extend(all(&t.recipients, &mail));
        return Ok(());
    }
    let mut accepted = Vec::new();
    for r in &t.recipients {
        let reply = c.command(&format!("RCPT TO:<{r}>")).await?;
        if reply.code == 250 || reply.code == 251 {
            accepted.push(r.clone());
        } else {
            done.push((r.clone(), refused(&reply)));
        }
    }
    if accepted.is_empty() {
        return Ok(());
    }
    let data = c.command("DATA").await?;
    if data.code != 354 {
        done.extend(accepted.into_iter().map(|r| (r, refused(&data))));
        return Ok(());
    }
    c.send(&crate::smtp::wire::dot_stuff(t.message)).await?;
    // If the connection drops here, the server may or may not have the message: SMTP's rule
    // is to try again, which can duplicate but never loses.
    let end = c
        .reply()
        .await
        .map_err(|why| format!("{why} after the message data"))?;
    for r in accepted {
        let outcome = if end.code == 250 {
            Outcome::Delivered(end.clone())
        } else {
            refused(&end)
        };
        done.push((r, outcome));
    }
    Ok(())
}

/// Outcomes so far, with accepted recipients reported as they come.
struct Settled<'a> {
    list: Vec<(String, Outcome)>,
    accepted: Option<&'a tokio::sync::mpsc::UnboundedSender<String>>,
}

impl Settled<'_> {
    fn push(&mut self, item: (String, Outcome)) {
        if let (Outcome::Delivered(_), Some(tx)) = (&item.1, self.accepted) {
            let _ = tx.send(item.0.clone());
        }
        self.list.push(item);
    }

    fn extend(&mut self, items: impl IntoIterator<Item = (String, Outcome)>) {
        for item in items {
            self.push(item);
        }
    }
}

fn refused(reply: &Reply) -> Outcome {
    if reply.code >= 500 {
        Outcome::Bounced(reply.clone())
    } else {
        Outcome::Deferred(reply.to_string())
    }
}

fn all(recipients: &[String], reply: &Reply) -> Vec<(String, Outcome)> {
    recipients
        .iter()
        .map(|r| (r.clone(), refused(reply)))
        .collect()
}
