//! Opening a delivery connection: TCP, TLS as the route asks, EHLO, and AUTH at a smarthost.
//! What comes out is a [`Conn`] ready for transactions, with what the server offered.

use super::DeliveryError;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;

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

/// How a connection is secured.
#[derive(Clone)]
pub enum Security {
    /// STARTTLS when offered, any certificate (direct delivery, RFC 7435).
    Opportunistic,
    /// STARTTLS required, with this verifying connector.
    StartTls(TlsConnector),
    /// TLS from the first byte (SMTPS, port 465), with this verifying connector.
    Implicit(TlsConnector),
}

impl std::fmt::Debug for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Security::Opportunistic => "opportunistic",
            Security::StartTls(_) => "starttls",
            Security::Implicit(_) => "implicit",
        })
    }
}

/// SMTP AUTH credentials for a smarthost.
#[derive(Clone)]
pub struct Credentials {
    /// The user name.
    pub user: String,
    /// The password.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    // Never the password, not even in a debug log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials {{ user: {:?} }}", self.user)
    }
}

/// One place to connect to, and how.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The address.
    pub addr: SocketAddr,
    /// The name its certificate must carry (a smarthost's host name); none for an MX host.
    pub name: Option<String>,
    /// TLS rules.
    pub security: Security,
    /// AUTH, for a smarthost that wants it.
    pub credentials: Option<Arc<Credentials>>,
    /// The local address to connect from (`[delivery] bind_address`); none: the system's
    /// choice.
    pub source: Option<IpAddr>,
}

impl Endpoint {
    /// An MX host: opportunistic TLS, no AUTH.
    pub fn direct(addr: SocketAddr) -> Self {
        Endpoint {
            addr,
            name: None,
            security: Security::Opportunistic,
            credentials: None,
            source: None,
        }
    }
}

/// Why a connection could not be made ready.
#[derive(Debug)]
pub enum Failure {
    /// Nothing usable was said (connect error, timeout, TLS failure, refused AUTH): try later.
    Transport(DeliveryError),
    /// The server refused us outright with this reply (greeting or EHLO/HELO).
    Refused(Reply),
}

/// Plain TCP or TLS, behind one type so a session can upgrade in the middle.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// A connection after EHLO.
pub struct Conn {
    io: BufReader<Box<dyn Io>>,
    limit: Duration,
    /// The server offered PIPELINING (RFC 2920).
    pub pipelining: bool,
    /// The server offered 8BITMIME (RFC 6152).
    pub eight_bit: bool,
    /// The server offered SMTPUTF8 (RFC 6531).
    pub smtputf8: bool,
    /// The server offered CHUNKING (RFC 3030): BDAT, whose data needs no go-ahead.
    pub chunking: bool,
    /// A transaction was left unfinished: RSET before the next one.
    pub dirty: bool,
}

impl Conn {
    fn new(io: Box<dyn Io>, limit: Duration) -> Self {
        Conn {
            io: BufReader::new(io),
            limit,
            pipelining: false,
            eight_bit: false,
            smtputf8: false,
            chunking: false,
            dirty: false,
        }
    }

    /// Reads one reply, its lines kept apart.
    async fn reply_lines(&mut self) -> Result<(u16, Vec<String>), DeliveryError> {
        let mut lines = Vec::new();
        loop {
            let line = match self.buffered_line() {
                Some(line) => line,
                None => {
                    let mut line = String::new();
                    let n = tokio::time::timeout(self.limit, self.io.read_line(&mut line))
                        .await
                        .map_err(|_| DeliveryError::ReadTimeout)?
                        .map_err(DeliveryError::Io)?;
                    if n == 0 {
                        return Err(DeliveryError::Closed);
                    }
                    line
                }
            };
            let code = line
                .get(..3)
                .and_then(|c| c.parse::<u16>().ok())
                .ok_or_else(|| DeliveryError::MalformedReply(line.clone()))?;
            lines.push(line.get(4..).unwrap_or_default().trim_end().to_string());
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok((code, lines));
            }
        }
    }

    /// A whole line an earlier read already brought, taken without waiting: the replies to a
    /// pipelined group arrive together, and reading each through the timed path armed a timer
    /// per reply. `None` when no whole line (of UTF-8) is buffered.
    fn buffered_line(&mut self) -> Option<String> {
        let buffered = self.io.buffer();
        let end = memchr::memchr(b'\n', buffered)? + 1;
        let line = std::str::from_utf8(&buffered[..end]).ok()?.to_string();
        self.io.consume(end);
        Some(line)
    }

    /// Reads one reply.
    pub async fn reply(&mut self) -> Result<Reply, DeliveryError> {
        let (code, mut lines) = self.reply_lines().await?;
        let text = match lines.len() {
            1 => lines.pop().unwrap_or_default(),
            _ => lines.join(" "),
        };
        Ok(Reply { code, text })
    }

    /// Writes bytes as they are.
    pub async fn send(&mut self, bytes: &[u8]) -> Result<(), DeliveryError> {
        let io = self.io.get_mut();
        // Flushed: a TLS stream may keep the end of a write to itself until asked, and the
        // reply waited for next would never come.
        let write = async {
            io.write_all(bytes).await?;
            io.flush().await
        };
        within(self.limit, write).await
    }

    /// Sends `parts` one after the other, as one write where the connection takes a list of
    /// buffers (plain TCP: `writev`), so a group of copies goes out without first being
    /// copied into one buffer; else joined into one.
    pub async fn send_parts(&mut self, parts: &[&[u8]]) -> Result<(), DeliveryError> {
        let io = self.io.get_mut();
        if !io.is_write_vectored() {
            return self.send(&parts.concat()).await;
        }
        let mut slices: Vec<std::io::IoSlice<'_>> =
            parts.iter().map(|p| std::io::IoSlice::new(p)).collect();
        let write = async {
            let mut rest = &mut slices[..];
            while !rest.is_empty() {
                let n = io.write_vectored(rest).await?;
                if n == 0 {
                    return Err(std::io::ErrorKind::WriteZero.into());
                }
                std::io::IoSlice::advance_slices(&mut rest, n);
            }
            io.flush().await
        };
        within(self.limit, write).await
    }

    /// Sends one command line and reads its reply.
    pub async fn command(&mut self, line: &str) -> Result<Reply, DeliveryError> {
        self.send(format!("{line}\r\n").as_bytes()).await?;
        self.reply().await
    }

    /// Says goodbye, not waiting long for the answer.
    pub async fn quit(mut self) {
        self.limit = self.limit.min(Duration::from_secs(2));
        let _ = self.command("QUIT").await;
    }
}

/// A write (and its flush) that must end within `limit`.
async fn within(
    limit: Duration,
    write: impl std::future::Future<Output = std::io::Result<()>>,
) -> Result<(), DeliveryError> {
    tokio::time::timeout(limit, write)
        .await
        .map_err(|_| DeliveryError::SendTimeout)?
        .map_err(DeliveryError::Io)
}

/// What EHLO offered that delivery uses.
#[derive(Debug, Default)]
struct Offer {
    starttls: bool,
    pipelining: bool,
    eight_bit: bool,
    smtputf8: bool,
    chunking: bool,
    plain: bool,
    login: bool,
}

fn offer(lines: &[String]) -> Offer {
    let mut o = Offer::default();
    // The first line is the server's name; each further line is one extension.
    for line in lines.iter().skip(1) {
        let mut words = line.split_whitespace();
        match words.next().map(str::to_ascii_uppercase).as_deref() {
            Some("STARTTLS") => o.starttls = true,
            Some("PIPELINING") => o.pipelining = true,
            Some("8BITMIME") => o.eight_bit = true,
            Some("SMTPUTF8") => o.smtputf8 = true,
            Some("CHUNKING") => o.chunking = true,
            Some("AUTH") => {
                for mechanism in words {
                    o.plain |= mechanism.eq_ignore_ascii_case("PLAIN");
                    o.login |= mechanism.eq_ignore_ascii_case("LOGIN");
                }
            }
            _ => {}
        }
    }
    o
}

async fn ehlo(c: &mut Conn, helo: &str) -> Result<Result<Offer, Reply>, DeliveryError> {
    c.send(format!("EHLO {helo}\r\n").as_bytes()).await?;
    let (code, lines) = c.reply_lines().await?;
    if code == 250 {
        return Ok(Ok(offer(&lines)));
    }
    if code >= 500 {
        // An old server without ESMTP: HELO, and no extensions.
        let hello = c.command(&format!("HELO {helo}")).await?;
        if hello.code == 250 {
            return Ok(Ok(Offer::default()));
        }
        return Ok(Err(hello));
    }
    Ok(Err(Reply {
        code,
        text: lines.join(" "),
    }))
}

async fn handshake(
    connector: &TlsConnector,
    endpoint: &Endpoint,
    plain: Box<dyn Io>,
    limit: Duration,
) -> Result<Box<dyn Io>, DeliveryError> {
    let name = match &endpoint.name {
        Some(host) => {
            ServerName::try_from(host.clone()).map_err(|source| DeliveryError::HostName {
                host: host.clone(),
                source,
            })?
        }
        None => ServerName::IpAddress(endpoint.addr.ip().into()),
    };
    let tls = tokio::time::timeout(limit, connector.connect(name, plain))
        .await
        .map_err(|_| DeliveryError::HandshakeTimeout)?
        .map_err(DeliveryError::Handshake)?;
    Ok(Box::new(tls))
}

/// A TCP connection to `endpoint`, from its source address when it has one.
async fn tcp(endpoint: &Endpoint) -> std::io::Result<TcpStream> {
    let Some(source) = endpoint.source else {
        return TcpStream::connect(endpoint.addr).await;
    };
    let socket = match endpoint.addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.bind(SocketAddr::new(source, 0)).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot connect from {source} ([delivery] bind_address): {e}"),
        )
    })?;
    socket.connect(endpoint.addr).await
}

/// Connects to `endpoint`, secures and greets it, and authenticates when it has credentials.
pub async fn open(endpoint: &Endpoint, helo: &str, limit: Duration) -> Result<Conn, Failure> {
    let t = Failure::Transport;
    let stream = tokio::time::timeout(limit, tcp(endpoint))
        .await
        .map_err(|_| t(DeliveryError::ConnectTimeout))?
        .map_err(|e| t(DeliveryError::Connect(e)))?;
    let _ = stream.set_nodelay(true);
    let mut io: Box<dyn Io> = Box::new(stream);
    let mut secured = false;
    if let Security::Implicit(connector) = &endpoint.security {
        io = handshake(connector, endpoint, io, limit).await.map_err(t)?;
        secured = true;
    }
    let mut c = Conn::new(io, limit);
    let greeting = c.reply().await.map_err(t)?;
    if greeting.code != 220 {
        return Err(Failure::Refused(greeting));
    }
    let mut offered = ehlo(&mut c, helo)
        .await
        .map_err(t)?
        .map_err(Failure::Refused)?;
    let connector = match &endpoint.security {
        Security::Opportunistic if offered.starttls => {
            Some(super::tls::opportunistic().map_err(t)?)
        }
        Security::StartTls(connector) if offered.starttls => Some(connector.clone()),
        Security::StartTls(_) => {
            return Err(t(DeliveryError::StartTlsNotOffered));
        }
        _ => None,
    };
    if let Some(connector) = connector {
        // A failed handshake defers the mail rather than falling back to plain text, which an
        // attacker could otherwise force by breaking the handshake.
        let ready = c.command("STARTTLS").await.map_err(t)?;
        if ready.code != 220 {
            return Err(t(DeliveryError::StartTlsRefused(ready)));
        }
        let io = handshake(&connector, endpoint, c.io.into_inner(), limit)
            .await
            .map_err(t)?;
        c = Conn::new(io, limit);
        secured = true;
        offered = ehlo(&mut c, helo)
            .await
            .map_err(t)?
            .map_err(Failure::Refused)?;
    }
    if let Some(credentials) = &endpoint.credentials {
        if !secured {
            return Err(t(DeliveryError::PasswordWithoutTls));
        }
        authenticate(&mut c, &offered, credentials)
            .await
            .map_err(t)?;
    }
    c.pipelining = offered.pipelining;
    c.eight_bit = offered.eight_bit;
    c.smtputf8 = offered.smtputf8;
    c.chunking = offered.chunking;
    Ok(c)
}

/// AUTH PLAIN (RFC 4616) when offered, else AUTH LOGIN.
async fn authenticate(
    c: &mut Conn,
    offered: &Offer,
    who: &Credentials,
) -> Result<(), DeliveryError> {
    use base64::Engine;
    let b64 = |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(s);
    let done = if offered.plain {
        let token = b64(format!("\0{}\0{}", who.user, who.password).as_bytes());
        c.command(&format!("AUTH PLAIN {token}")).await?
    } else if offered.login {
        let step = c.command("AUTH LOGIN").await?;
        if step.code != 334 {
            return Err(DeliveryError::AuthLoginRefused(step));
        }
        let step = c.command(&b64(who.user.as_bytes())).await?;
        if step.code != 334 {
            return Err(DeliveryError::UserRefused(step));
        }
        c.command(&b64(who.password.as_bytes())).await?
    } else {
        return Err(DeliveryError::NoAuthMechanism);
    };
    if done.code != 235 {
        return Err(DeliveryError::AuthRefused {
            user: who.user.clone(),
            reply: done,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_extensions_from_ehlo_lines_not_from_the_greeting_name() {
        let lines: Vec<String> = [
            "mx.pipelining.example",
            "PIPELINING",
            "AUTH LOGIN",
            "SIZE 10",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let o = offer(&lines);
        assert!(o.pipelining && o.login && !o.plain && !o.starttls);
        let only_name = offer(&["STARTTLS.example".to_string()]);
        assert!(!only_name.starttls);
    }

    #[test]
    fn debug_output_never_shows_the_password() {
        let c = Credentials {
            user: "lists".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
