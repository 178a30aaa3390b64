//! A client of rspamd's HTTP protocol (`POST /checkv2`, <https://rspamd.com/doc/developers/protocol.html>):
//! the message as the body, what the SMTP session knows as request headers, a JSON verdict
//! back. One connection per check, under one deadline for all of it: rspamd's normal worker
//! sits on loopback or a private network, where a connection costs less than keeping a pool
//! honest across reloads.

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use std::time::Duration;

/// Most bytes of rspamd's answer read: a verdict with every symbol is a few KiB.
const MAX_REPLY: usize = 1 << 20;

/// Where rspamd's normal worker listens, from `[filter] rspamd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name or address (an IPv6 address without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// The request path: the URL's path with `/checkv2` added.
    pub path: String,
}

/// `[filter] rspamd` is not a URL arclist can reach rspamd at.
#[derive(Debug, thiserror::Error)]
#[error("[filter] rspamd = {url:?}: {why}")]
pub struct EndpointError {
    /// The URL as configured.
    pub url: String,
    /// What is wrong with it.
    pub why: String,
}

impl Endpoint {
    /// Reads `http://HOST[:PORT][/PATH]`; the port defaults to 80, as in any URL.
    pub fn parse(url: &str) -> Result<Endpoint, EndpointError> {
        let bad = |why: &str| EndpointError {
            url: url.to_string(),
            why: why.to_string(),
        };
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| bad("only http:// URLs (rspamd's normal worker speaks plain HTTP)"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| bad("unclosed [ in the address"))?;
            (host, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .map_err(|_| bad(&format!("bad port {p:?}")))?,
            None => 80,
        };
        if host.is_empty() || host.contains('@') {
            return Err(bad("no host"));
        }
        Ok(Endpoint {
            host: host.to_string(),
            port,
            path: format!("{}/checkv2", path.trim_end_matches('/')),
        })
    }
}

/// rspamd's verdict, the parts arclist acts on.
#[derive(Debug, Clone, Deserialize)]
pub struct Reply {
    /// `no action`, `greylist`, `add header`, `rewrite subject`, `soft reject` or `reject`.
    pub action: String,
    /// The message's score.
    #[serde(default)]
    pub score: f64,
    /// The score of `reject`.
    #[serde(default)]
    pub required_score: f64,
    /// The new subject, for `rewrite subject`.
    #[serde(default)]
    pub subject: Option<String>,
    /// Texts for the SMTP reply.
    #[serde(default)]
    pub messages: Messages,
    /// The symbols that matched, by name.
    #[serde(default)]
    pub symbols: std::collections::BTreeMap<String, Symbol>,
}

/// The `messages` object of a verdict.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Messages {
    /// The text rspamd suggests for the SMTP reply (`Gtube pattern`, a virus's name).
    #[serde(default)]
    pub smtp_message: Option<String>,
}

/// One matched symbol.
#[derive(Debug, Clone, Deserialize)]
pub struct Symbol {
    /// What it added to the score.
    #[serde(default)]
    pub score: f64,
}

impl Reply {
    /// The symbols that weighed most, strongest first, as `NAME(score)`: for the log line.
    pub fn top_symbols(&self, n: usize) -> String {
        let mut symbols: Vec<(&String, f64)> =
            self.symbols.iter().map(|(k, s)| (k, s.score)).collect();
        symbols.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
        symbols
            .iter()
            .take(n)
            .map(|(name, score)| format!("{name}({score:.2})"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Why a check gave no verdict.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The deadline passed.
    #[error("no answer within {0} s")]
    Timeout(u64),
    /// Connecting, sending or reading failed.
    #[error("{0}")]
    Io(String),
    /// An answer other than 200.
    #[error("answered HTTP {0}")]
    Status(u16),
    /// A 200 whose body is not a verdict.
    #[error("answer is not a verdict: {0}")]
    Parse(String),
}

/// A client of one rspamd.
#[derive(Debug, Clone)]
pub struct Rspamd {
    endpoint: Endpoint,
    timeout: Duration,
}

impl Rspamd {
    /// A client of `endpoint`, giving each check at most `timeout`.
    pub fn new(endpoint: Endpoint, timeout: Duration) -> Self {
        Rspamd { endpoint, timeout }
    }

    /// Where this client connects, for log lines.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Asks rspamd about `message`, with `headers` (name, value) as its protocol defines them.
    pub async fn check(
        &self,
        message: &[u8],
        headers: &[(&'static str, String)],
    ) -> Result<Reply, CheckError> {
        let secs = self.timeout.as_secs();
        let body = tokio::time::timeout(self.timeout, self.exchange(message, headers))
            .await
            .map_err(|_| CheckError::Timeout(secs))??;
        serde_json::from_slice(&body).map_err(|e| CheckError::Parse(e.to_string()))
    }

    /// One request and its answer's body.
    async fn exchange(
        &self,
        message: &[u8],
        headers: &[(&'static str, String)],
    ) -> Result<Bytes, CheckError> {
        let io = |e: &dyn std::fmt::Display| CheckError::Io(e.to_string());
        let e = &self.endpoint;
        let stream = tokio::net::TcpStream::connect((e.host.as_str(), e.port))
            .await
            .map_err(|x| io(&x))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|x| io(&x))?;
        let mut request = hyper::Request::post(e.path.as_str())
            .header(hyper::header::HOST, e.host.as_str())
            .header(hyper::header::CONNECTION, "close");
        for (name, value) in headers {
            // A value that cannot travel as a header (a control character) is left out
            // rather than sent garbled; UTF-8 (an SMTPUTF8 address) travels as its bytes.
            if let Ok(value) = hyper::header::HeaderValue::from_bytes(value.as_bytes()) {
                request = request.header(*name, value);
            }
        }
        let request = request
            .body(Full::new(Bytes::copy_from_slice(message)))
            .map_err(|x| io(&x))?;
        let exchange = async move {
            let response = sender.send_request(request).await.map_err(|x| io(&x))?;
            let status = response.status().as_u16();
            let body = Limited::new(response.into_body(), MAX_REPLY)
                .collect()
                .await
                .map_err(|x| io(&x))?
                .to_bytes();
            // Dropping the sender lets the connection end, and `join!` below with it.
            drop(sender);
            if status != 200 {
                return Err(CheckError::Status(status));
            }
            Ok(body)
        };
        let (answer, _) = tokio::join!(exchange, connection);
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let e = Endpoint::parse("http://127.0.0.1:11333").expect("parses");
        assert_eq!(
            (e.host.as_str(), e.port, e.path.as_str()),
            ("127.0.0.1", 11333, "/checkv2")
        );
        let e = Endpoint::parse("http://[::1]:11333/rspamd/").expect("parses");
        assert_eq!(
            (e.host.as_str(), e.port, e.path.as_str()),
            ("::1", 11333, "/rspamd/checkv2")
        );
        let e = Endpoint::parse("http://filter.internal").expect("parses");
        assert_eq!((e.port, e.path.as_str()), (80, "/checkv2"));
        assert!(Endpoint::parse("https://127.0.0.1:11333").is_err());
        assert!(Endpoint::parse("http://127.0.0.1:port").is_err());
        assert!(Endpoint::parse("http://:11333").is_err());
    }

    #[test]
    fn verdicts_read_as_rspamd_writes_them() {
        let body = br#"{"is_skipped":true,"score":15.0,"required_score":15.0,"action":"reject","symbols":{"GTUBE":{"name":"GTUBE","score":0.0}},"messages":{"smtp_message":"Gtube pattern"},"message-id":"undef"}"#;
        let r: Reply = serde_json::from_slice(body).expect("a verdict");
        assert_eq!(r.action, "reject");
        assert_eq!(r.messages.smtp_message.as_deref(), Some("Gtube pattern"));
        assert_eq!(r.top_symbols(3), "GTUBE(0.00)");
    }
}
