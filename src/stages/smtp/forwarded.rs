//! XCLIENT and XFORWARD (Postfix's SMTP extensions): a trusted relay in front of arclist says
//! who its client really was, so SPF, the `smtp.remote-ip` arclist seals into its ARC set, and
//! the logs judge the author's server, not the relay's loopback address. Only addresses in
//! the server's `trusted_relays` may use them; anyone else gets `550 5.7.0`.
//!
//! XCLIENT changes the session's client for good and starts the session over (a new `220`,
//! the client says EHLO again). XFORWARD describes the next message only: its attributes
//! are forgotten after the transaction (or at RSET, EHLO).

use std::net::IpAddr;

pub use crate::base::config::Cidrs as Relays;

/// Longest command line read while watching for the extensions.
pub const MAX_LINE: usize = 4096;

/// What a relay said about its client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Client {
    /// `ADDR=`: the client's address.
    pub addr: Option<IpAddr>,
    /// `HELO=`: the name the client gave.
    pub helo: Option<String>,
    /// `NAME=`: the client's verified host name, for the logs.
    pub name: Option<String>,
}

impl Client {
    /// This description with `newer`'s attributes on top.
    fn merged(mut self, newer: Client) -> Client {
        self.addr = newer.addr.or(self.addr);
        self.helo = newer.helo.or(self.helo);
        self.name = newer.name.or(self.name);
        self
    }
}

/// An XCLIENT or XFORWARD command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// XCLIENT: the session's client from now on.
    Xclient(Client),
    /// XFORWARD: the client of the next message.
    Xforward(Client),
    /// One of the two, malformed; the text says what is wrong.
    Bad(String),
}

/// The extension command `line` (with its CRLF) is, if it is one.
pub fn command(line: &[u8]) -> Option<Command> {
    let text = std::str::from_utf8(line)
        .ok()?
        .trim_end_matches(['\r', '\n']);
    let (verb, rest) = text.split_once(' ').unwrap_or((text, ""));
    let xclient = verb.eq_ignore_ascii_case("XCLIENT");
    if !xclient && !verb.eq_ignore_ascii_case("XFORWARD") {
        return None;
    }
    let mut client = Client::default();
    for attr in rest.split_ascii_whitespace() {
        let Some((name, value)) = attr.split_once('=') else {
            return Some(Command::Bad(format!("{attr:?} is not NAME=VALUE")));
        };
        let value = xtext(value);
        // Postfix sends these when it does not know the value.
        let known = !matches!(value.as_str(), "[UNAVAILABLE]" | "[TEMPUNAVAIL]");
        match name.to_ascii_uppercase().as_str() {
            "ADDR" if known => {
                let bare = value
                    .strip_prefix("IPV6:")
                    .or_else(|| value.strip_prefix("ipv6:"))
                    .unwrap_or(&value);
                match bare.parse() {
                    Ok(ip) => client.addr = Some(ip),
                    Err(_) => return Some(Command::Bad(format!("ADDR={value} is not an address"))),
                }
            }
            "HELO" if known => client.helo = Some(value),
            "NAME" if known => client.name = Some(value),
            // PROTO, SOURCE, IDENT, LOGIN, PORT, DESTADDR...: accepted, not used.
            _ => {}
        }
    }
    Some(if xclient {
        Command::Xclient(client)
    } else {
        Command::Xforward(client)
    })
}

/// xtext (RFC 3461 §4): `+XX` stands for a byte. Control characters are dropped, so a value
/// can never add a header line where it is logged or recorded.
fn xtext(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = || {
            let h = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            u8::from_str_radix(h, 16).ok()
        };
        match (bytes[i], hex()) {
            (b'+', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out)
        .chars()
        .filter(|c| !c.is_control())
        .take(255)
        .collect()
}

/// The session state of a trusted relay: the line being read, and what it said.
#[derive(Debug)]
pub struct Relay {
    line: Vec<u8>,
    overlong: bool,
    /// Whether XCLIENT and XFORWARD are still believed: after XCLIENT the session speaks for
    /// the client it names, which may not name another unless it is a trusted relay itself.
    pub trusted: bool,
    /// From XCLIENT: the session's client.
    pub session: Client,
    /// From XFORWARD: the next message's client.
    pub message: Client,
}

/// A command line, read whole.
pub enum Line {
    /// Not yet at CRLF: everything given was taken.
    Partial,
    /// Longer than [`MAX_LINE`]; read past, to be refused.
    TooLong,
    /// A whole line, CRLF included.
    Whole(Vec<u8>),
}

impl Default for Relay {
    fn default() -> Self {
        Relay {
            line: Vec::new(),
            overlong: false,
            trusted: true,
            session: Client::default(),
            message: Client::default(),
        }
    }
}

impl Relay {
    /// Takes bytes up to and including the next LF; what follows stays in `bytes` (a BDAT
    /// chunk, the next pipelined command).
    pub fn take_line(&mut self, bytes: &mut std::slice::Iter<'_, u8>) -> Line {
        for &b in bytes.by_ref() {
            if self.line.len() < MAX_LINE {
                self.line.push(b);
            } else {
                self.overlong = true;
            }
            if b == b'\n' {
                let line = std::mem::take(&mut self.line);
                return if std::mem::take(&mut self.overlong) {
                    Line::TooLong
                } else {
                    Line::Whole(line)
                };
            }
        }
        Line::Partial
    }

    /// The client the current message is from: XFORWARD's, over XCLIENT's.
    pub fn client(&self) -> Client {
        self.session.clone().merged(self.message.clone())
    }

    /// XCLIENT: the session's client from now on.
    pub fn set_session(&mut self, client: Client) {
        self.session = self.session.clone().merged(client);
        self.message = Client::default();
    }

    /// XFORWARD: the next message's client (attributes add up until the transaction ends).
    pub fn set_message(&mut self, client: Client) {
        self.message = std::mem::take(&mut self.message).merged(client);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands() {
        assert_eq!(
            command(
                b"XFORWARD NAME=mx.example ADDR=IPV6:2001:db8::1 HELO=mx+2Eexample PROTO=ESMTP\r\n"
            ),
            Some(Command::Xforward(Client {
                addr: Some("2001:db8::1".parse().unwrap()),
                helo: Some("mx.example".into()),
                name: Some("mx.example".into()),
            }))
        );
        assert_eq!(
            command(b"xclient ADDR=[UNAVAILABLE] HELO=a+0D+0Ab\r\n"),
            Some(Command::Xclient(Client {
                addr: None,
                helo: Some("ab".into()),
                name: None
            }))
        );
        assert!(matches!(
            command(b"XCLIENT ADDR=nonsense\r\n"),
            Some(Command::Bad(_))
        ));
        assert_eq!(command(b"MAIL FROM:<a@b>\r\n"), None);
    }
}
