//! A small SMTP client for delivery.

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

/// What happened to one recipient in a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted with 250 after the data.
    Delivered(Reply),
    /// Refused with 4xx, or the connection failed: try again later.
    Deferred(String),
    /// Refused with 5xx.
    Bounced(Reply),
}

struct Conn {
    io: BufReader<TcpStream>,
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

/// Delivers `message` from `mail_from` to `recipients` at `addr`. A transport failure before
/// the data was accepted defers every recipient not yet refused.
pub async fn deliver(
    addr: SocketAddr,
    helo: &str,
    mail_from: &str,
    recipients: &[String],
    message: &[u8],
    limit: Duration,
) -> Vec<(String, Outcome)> {
    match transaction(addr, helo, mail_from, recipients, message, limit).await {
        Ok(done) => done,
        Err((mut done, why)) => {
            for r in recipients {
                if !done.iter().any(|(a, _)| a == r) {
                    done.push((r.clone(), Outcome::Deferred(format!("{addr}: {why}"))));
                }
            }
            done
        }
    }
}

type Partial = (Vec<(String, Outcome)>, String);

async fn transaction(
    addr: SocketAddr,
    helo: &str,
    mail_from: &str,
    recipients: &[String],
    message: &[u8],
    limit: Duration,
) -> Result<Vec<(String, Outcome)>, Partial> {
    let fail = |why: String| (Vec::new(), why);
    let stream = tokio::time::timeout(limit, TcpStream::connect(addr))
        .await
        .map_err(|_| fail("connection timed out".into()))?
        .map_err(|e| fail(format!("cannot connect: {e}")))?;
    let _ = stream.set_nodelay(true);
    let mut c = Conn {
        io: BufReader::new(stream),
        limit,
    };
    let greeting = c.reply().await.map_err(fail)?;
    if greeting.code != 220 {
        return Ok(all(recipients, &greeting));
    }
    let mut hello = c.command(&format!("EHLO {helo}")).await.map_err(fail)?;
    if hello.code >= 500 {
        hello = c.command(&format!("HELO {helo}")).await.map_err(fail)?;
    }
    if hello.code != 250 {
        return Ok(all(recipients, &hello));
    }
    let mail = c
        .command(&format!("MAIL FROM:<{mail_from}>"))
        .await
        .map_err(fail)?;
    if mail.code != 250 {
        let _ = c.command("QUIT").await;
        return Ok(all(recipients, &mail));
    }
    let mut done = Vec::new();
    let mut accepted = Vec::new();
    for r in recipients {
        match c.command(&format!("RCPT TO:<{r}>")).await {
            Ok(reply) if reply.code == 250 || reply.code == 251 => accepted.push(r.clone()),
            Ok(reply) => done.push((r.clone(), refused(&reply))),
            Err(why) => return Err((done, why)),
        }
    }
    if accepted.is_empty() {
        let _ = c.command("QUIT").await;
        return Ok(done);
    }
    let data = match c.command("DATA").await {
        Ok(r) => r,
        Err(why) => return Err((done, why)),
    };
    if data.code != 354 {
        for r in accepted {
            done.push((r, refused(&data)));
        }
        return Ok(done);
    }
    if let Err(why) = c.send(&crate::smtp::wire::dot_stuff(message)).await {
        return Err((done, why));
    }
    // If the connection drops here, the server may or may not have the message: SMTP's rule
    // is to try again, which can duplicate but never loses.
    let end = match c.reply().await {
        Ok(r) => r,
        Err(why) => return Err((done, format!("{why} after the message data"))),
    };
    for r in accepted {
        let outcome = if end.code == 250 {
            Outcome::Delivered(end.clone())
        } else {
            refused(&end)
        };
        done.push((r, outcome));
    }
    let _ = c.command("QUIT").await;
    Ok(done)
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
