//! A local SMTP server standing in for receivers' mail servers in tests and the demo: it
//! records what each recipient received, can refuse chosen recipients, and can offer STARTTLS.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// (envelope sender, recipient, message bytes) for every recipient of every message.
type Received = Vec<(String, String, Vec<u8>)>;

/// The sink: clone it freely, all clones share the mailbox.
#[derive(Clone, Default)]
pub struct Sink {
    /// Everything received.
    pub received: Arc<Mutex<Received>>,
    /// How many messages arrived over TLS.
    pub over_tls: Arc<AtomicUsize>,
    /// When set, new connections are never greeted (a server that hangs).
    pub silent: Arc<std::sync::atomic::AtomicBool>,
    /// When set, the connection is dropped after the message data, before the reply.
    pub drop_after_data: Arc<std::sync::atomic::AtomicBool>,
    refuse: Arc<Mutex<HashMap<String, String>>>,
}

enum Next<S> {
    Done,
    StartTls(BufReader<S>),
}

impl Sink {
    /// Starts on 127.0.0.1 at a free port.
    pub async fn start() -> (Sink, SocketAddr) {
        Self::start_with(None).await
    }

    /// Starts on 127.0.0.1 at a free port, offering STARTTLS with `tls` when given. Panics
    /// only if loopback cannot be bound (a test or demo setup error, not input).
    pub async fn start_with(tls: Option<TlsAcceptor>) -> (Sink, SocketAddr) {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap_or_else(|e| panic!("sink cannot bind 127.0.0.1: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
        let sink = Sink::default();
        let s = sink.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (s, tls) = (s.clone(), tls.clone());
                tokio::spawn(async move {
                    let _ = stream.set_nodelay(true);
                    if let Next::StartTls(plain) = s
                        .session(BufReader::new(stream), tls.is_some(), false)
                        .await
                        && let Some(acceptor) = tls
                        && let Ok(secured) = acceptor.accept(plain.into_inner()).await
                    {
                        s.session(BufReader::new(secured), false, true).await;
                    }
                });
            }
        });
        (sink, addr)
    }

    /// Answers RCPT for `address` with `reply` (e.g. `550 5.1.1 no such user`).
    pub fn refuse(&self, address: &str, reply: &str) {
        if let Ok(mut r) = self.refuse.lock() {
            r.insert(address.to_string(), reply.to_string());
        }
    }

    /// Accepts `address` again after [`Sink::refuse`].
    pub fn accept(&self, address: &str) {
        if let Ok(mut r) = self.refuse.lock() {
            r.remove(address);
        }
    }

    /// What `address` received (each message's bytes), in order.
    pub fn inbox(&self, address: &str) -> Vec<Vec<u8>> {
        self.received
            .lock()
            .map(|got| {
                got.iter()
                    .filter(|(_, r, _)| r == address)
                    .map(|(_, _, d)| d.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    async fn session<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        mut io: BufReader<S>,
        offer_tls: bool,
        secured: bool,
    ) -> Next<S> {
        if !secured {
            if self.silent.load(Ordering::Relaxed) {
                // Hold the connection open and say nothing.
                let mut sink = Vec::new();
                let _ = io.read_until(0, &mut sink).await;
                return Next::Done;
            }
            let _ = io.get_mut().write_all(b"220 sink.test ESMTP\r\n").await;
        }
        let (mut from, mut rcpts) = (String::new(), Vec::new());
        loop {
            let mut line = String::new();
            if io.read_line(&mut line).await.unwrap_or(0) == 0 {
                return Next::Done;
            }
            let upper = line.to_ascii_uppercase();
            let arg = line
                .split_once(':')
                .map(|(_, a)| a.trim().trim_matches(|c| c == '<' || c == '>').to_string())
                .unwrap_or_default();
            let reply = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                if offer_tls {
                    "250-sink.test\r\n250 STARTTLS".to_string()
                } else {
                    "250 sink.test".to_string()
                }
            } else if upper.starts_with("STARTTLS") && offer_tls {
                let _ = io.get_mut().write_all(b"220 2.0.0 ready\r\n").await;
                return Next::StartTls(io);
            } else if upper.starts_with("MAIL") {
                from = arg;
                rcpts.clear();
                "250 2.1.0 ok".into()
            } else if upper.starts_with("RCPT") {
                match self.refuse.lock().ok().and_then(|r| r.get(&arg).cloned()) {
                    Some(r) => r,
                    None => {
                        rcpts.push(arg);
                        "250 2.1.5 ok".into()
                    }
                }
            } else if upper.starts_with("DATA") {
                let _ = io.get_mut().write_all(b"354 go ahead\r\n").await;
                let mut data = Vec::new();
                loop {
                    let mut l = Vec::new();
                    if io.read_until(b'\n', &mut l).await.unwrap_or(0) == 0 {
                        return Next::Done;
                    }
                    if l == b".\r\n" {
                        break;
                    }
                    data.extend_from_slice(if l.starts_with(b"..") { &l[1..] } else { &l });
                }
                if self.drop_after_data.load(Ordering::Relaxed) {
                    return Next::Done;
                }
                if secured {
                    self.over_tls.fetch_add(1, Ordering::Relaxed);
                }
                if let Ok(mut got) = self.received.lock() {
                    for r in rcpts.drain(..) {
                        got.push((from.clone(), r, data.clone()));
                    }
                }
                "250 2.0.0 queued".into()
            } else if upper.starts_with("QUIT") {
                let _ = io.get_mut().write_all(b"221 bye\r\n").await;
                return Next::Done;
            } else {
                "250 ok".into()
            };
            let _ = io
                .get_mut()
                .write_all(format!("{reply}\r\n").as_bytes())
                .await;
        }
    }
}
