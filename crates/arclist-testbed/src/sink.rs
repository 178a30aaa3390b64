//! A local SMTP server standing in for receivers' mail servers in tests and the demo: it
//! records what each recipient received, can refuse chosen recipients, and can offer STARTTLS,
//! SMTPS and AUTH (standing in for a smarthost).

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// What a session reads from the socket at a time: a pipelined group of members' copies
/// (tens of KiB) in a few reads, and its replies sent once it is all read.
const READ_BUFFER: usize = 64 * 1024;

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
    /// Connections accepted so far.
    pub connections: Arc<AtomicUsize>,
    /// Connections open now.
    pub open: Arc<AtomicUsize>,
    /// The most connections ever open at once.
    pub peak: Arc<AtomicUsize>,
    /// MAIL commands that arrived together with the commands after them (PIPELINING).
    pub pipelined: Arc<AtomicUsize>,
    /// Messages whose end of data arrived together with what the client sent next (the next
    /// transaction's envelope, pipelined behind the data: RFC 2920 §3.1).
    pub behind_data: Arc<AtomicUsize>,
    /// Messages so far (one per DATA, however many recipients).
    pub messages: Arc<AtomicUsize>,
    /// The address each connection came from, in order.
    pub peers: Arc<Mutex<Vec<std::net::IpAddr>>>,
    /// The user names that authenticated, one per successful AUTH.
    pub authenticated: Arc<Mutex<Vec<String>>>,
    /// When set, message bytes are not kept (only counted): for benchmarks.
    pub count_only: bool,
    /// Messages that came with BDAT.
    pub chunked: Arc<AtomicUsize>,
    /// When set, CHUNKING is offered and BDAT taken (RFC 3030), as Postfix, Gmail and
    /// Microsoft's servers do; off by default, so a test sees DATA unless it asks.
    pub chunking: Arc<std::sync::atomic::AtomicBool>,
    /// When set, 8BITMIME is not offered (a 7-bit-only receiver).
    pub seven_bit_only: Arc<std::sync::atomic::AtomicBool>,
    /// The MAIL FROM parameters (`BODY=8BITMIME`, ...) of each message, in order (none kept
    /// by a sink that only counts).
    pub mail_params: Arc<Mutex<Vec<String>>>,
    /// Milliseconds each message's reply waits after its data (a slow receiver, so that
    /// connections overlap); 0, the default, answers at once.
    pub data_delay_ms: Arc<std::sync::atomic::AtomicU64>,
    refuse: Arc<Mutex<HashMap<String, String>>>,
    auth: Option<(String, String)>,
}

/// How a sink behaves beyond the defaults.
#[derive(Default, Clone)]
pub struct SinkOptions {
    /// Offer STARTTLS with this acceptor.
    pub starttls: Option<TlsAcceptor>,
    /// Speak TLS from the first byte (SMTPS) with this acceptor.
    pub implicit_tls: Option<TlsAcceptor>,
    /// Offer AUTH PLAIN and LOGIN, accepting only this user name and password, and refuse
    /// MAIL until the client authenticated.
    pub auth: Option<(String, String)>,
    /// Keep no message bytes, only counts.
    pub count_only: bool,
}

/// Counts a connection as closed when its task ends, however it ends.
struct Open(Arc<AtomicUsize>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
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

    /// Starts on 127.0.0.1 at a free port, offering STARTTLS with `tls` when given.
    pub async fn start_with(tls: Option<TlsAcceptor>) -> (Sink, SocketAddr) {
        Self::start_opts(SinkOptions {
            starttls: tls,
            ..Default::default()
        })
        .await
    }

    /// Starts on 127.0.0.1 at a free port, behaving as `options` says.
    pub async fn start_opts(options: SinkOptions) -> (Sink, SocketAddr) {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), options).await
    }

    /// Starts on `addr`, behaving as `options` says. Panics only if the address cannot be
    /// bound (a test or demo setup error, not input).
    pub async fn start_on(addr: SocketAddr, options: SinkOptions) -> (Sink, SocketAddr) {
        let listener = TcpListener::bind(addr)
            .await
            .unwrap_or_else(|e| panic!("sink cannot bind {addr}: {e}"));
        let addr = listener.local_addr().unwrap_or(addr);
        let sink = Sink {
            auth: options.auth.clone(),
            count_only: options.count_only,
            ..Sink::default()
        };
        let s = sink.clone();
        tokio::spawn(async move {
            while let Ok((stream, peer)) = listener.accept().await {
                let (s, options) = (s.clone(), options.clone());
                if let Ok(mut peers) = s.peers.lock() {
                    peers.push(peer.ip());
                }
                s.connections.fetch_add(1, Ordering::Relaxed);
                let now = s.open.fetch_add(1, Ordering::Relaxed) + 1;
                s.peak.fetch_max(now, Ordering::Relaxed);
                tokio::spawn(async move {
                    let _open = Open(s.open.clone());
                    let _ = stream.set_nodelay(true);
                    if let Some(acceptor) = options.implicit_tls {
                        if let Ok(secured) = acceptor.accept(stream).await {
                            s.session(
                                BufReader::with_capacity(READ_BUFFER, secured),
                                false,
                                true,
                                true,
                            )
                            .await;
                        }
                        return;
                    }
                    let tls = options.starttls;
                    if let Next::StartTls(plain) = s
                        .session(
                            BufReader::with_capacity(READ_BUFFER, stream),
                            tls.is_some(),
                            false,
                            true,
                        )
                        .await
                        && let Some(acceptor) = tls
                        && let Ok(secured) = acceptor.accept(plain.into_inner()).await
                    {
                        s.session(
                            BufReader::with_capacity(READ_BUFFER, secured),
                            false,
                            true,
                            false,
                        )
                        .await;
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
        greet: bool,
    ) -> Next<S> {
        if greet {
            if self.silent.load(Ordering::Relaxed) {
                // Hold the connection open and say nothing.
                let mut sink = Vec::new();
                let _ = io.read_until(0, &mut sink).await;
                return Next::Done;
            }
            let _ = io.get_mut().write_all(b"220 sink.test ESMTP\r\n").await;
        }
        let (mut from, mut rcpts) = (String::new(), Vec::new());
        let mut user: Option<String> = None;
        // Replies wait here while more of a pipelined group is already read (RFC 2920 §3.2:
        // a server answers a group as a unit), so a group costs one write, as with Postfix.
        let mut replies = Vec::new();
        let mut line = String::new();
        // A BDAT message's chunks so far.
        let mut chunks = Vec::new();
        loop {
            line.clear();
            flush_when_idle(&mut io, &mut replies).await;
            if io.read_line(&mut line).await.unwrap_or(0) == 0 {
                return Next::Done;
            }
            let is = |verb: &str| is_verb(&line, verb);
            let arg = || address_arg(&line);
            let reply: Cow<'static, str> = if is("EHLO") || is("HELO") {
                self.ehlo(offer_tls, secured).into()
            } else if is("STARTTLS") && offer_tls {
                replies.extend_from_slice(b"220 2.0.0 ready\r\n");
                flush(&mut io, &mut replies).await;
                return Next::StartTls(io);
            } else if is("AUTH ") && self.auth.is_some() && secured {
                flush(&mut io, &mut replies).await;
                match self.authenticate(&mut io, line.trim_end()).await {
                    Some(name) => {
                        if let Ok(mut a) = self.authenticated.lock() {
                            a.push(name.clone());
                        }
                        user = Some(name);
                        "235 2.7.0 authenticated".into()
                    }
                    None => "535 5.7.8 bad credentials".into(),
                }
            } else if is("MAIL") && self.auth.is_some() && user.is_none() {
                "530 5.7.0 authentication required".into()
            } else if is("MAIL") {
                if !io.buffer().is_empty() {
                    self.pipelined.fetch_add(1, Ordering::Relaxed);
                }
                from = self.mail(&arg());
                rcpts.clear();
                chunks.clear();
                "250 2.1.0 ok".into()
            } else if is("RCPT") {
                let arg = arg();
                match self.refuse.lock().ok().and_then(|r| r.get(&arg).cloned()) {
                    Some(r) => r.into(),
                    None => {
                        rcpts.push(arg);
                        "250 2.1.5 ok".into()
                    }
                }
            } else if is("DATA") {
                match (self.data(&mut io, &mut replies, &from, &mut rcpts, secured)).await {
                    Some(reply) => reply.into(),
                    None => return Next::Done,
                }
            } else if is("BDAT") && self.chunking.load(Ordering::Relaxed) {
                match (self.bdat(&mut io, (&from, &mut rcpts), &mut chunks, &line, secured)).await {
                    Some(reply) => reply.into(),
                    None => return Next::Done,
                }
            } else if is("RSET") {
                chunks.clear();
                rcpts.clear();
                "250 2.0.0 ok".into()
            } else if is("QUIT") {
                replies.extend_from_slice(b"221 bye\r\n");
                flush(&mut io, &mut replies).await;
                return Next::Done;
            } else {
                "250 ok".into()
            };
            replies.extend_from_slice(reply.as_bytes());
            replies.extend_from_slice(b"\r\n");
        }
    }

    /// MAIL's argument (`<address> PARAM=...`): the sender, with the parameters recorded
    /// (unless the sink only counts).
    fn mail(&self, arg: &str) -> String {
        let (address, params) = arg.split_once(' ').unwrap_or((arg, ""));
        if !self.count_only
            && let Ok(mut p) = self.mail_params.lock()
        {
            p.push(params.trim().to_string());
        }
        address.trim_end_matches('>').to_string()
    }

    /// The EHLO reply: what this sink offers.
    fn ehlo(&self, offer_tls: bool, secured: bool) -> String {
        let mut lines = vec!["sink.test", "PIPELINING"];
        if self.chunking.load(Ordering::Relaxed) {
            lines.push("CHUNKING");
        }
        if !self.seven_bit_only.load(Ordering::Relaxed) {
            lines.push("8BITMIME");
            lines.push("SMTPUTF8");
        }
        if offer_tls {
            lines.push("STARTTLS");
        }
        if self.auth.is_some() && secured {
            lines.push("AUTH PLAIN LOGIN");
        }
        let last = lines.len() - 1;
        lines
            .iter()
            .enumerate()
            .map(|(i, l)| format!("250{}{l}", if i == last { ' ' } else { '-' }))
            .collect::<Vec<_>>()
            .join("\r\n")
    }

    /// DATA: reads the message and records it for each recipient; the reply, or `None` when
    /// the connection is to end without one.
    async fn data<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        io: &mut BufReader<S>,
        replies: &mut Vec<u8>,
        from: &str,
        rcpts: &mut Vec<String>,
        secured: bool,
    ) -> Option<String> {
        if rcpts.is_empty() {
            Some("554 5.5.1 no valid recipients".to_string())
        } else {
            replies.extend_from_slice(b"354 go ahead\r\n");
            let (mut data, mut l) = (Vec::new(), Vec::new());
            loop {
                l.clear();
                flush_when_idle(io, replies).await;
                if io.read_until(b'\n', &mut l).await.unwrap_or(0) == 0 {
                    return None;
                }
                if l == b".\r\n" {
                    if !io.buffer().is_empty() {
                        self.behind_data.fetch_add(1, Ordering::Relaxed);
                    }
                    break;
                }
                if !self.count_only {
                    data.extend_from_slice(if l.starts_with(b"..") { &l[1..] } else { &l });
                }
            }
            self.take(from, rcpts, data, secured).await
        }
    }

    /// BDAT (RFC 3030) with the `size` and `LAST` of its command line: reads the chunk (also
    /// when refused, as the RFC asks) into `chunks`, and at the last one records the message.
    async fn bdat<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        io: &mut BufReader<S>,
        (from, rcpts): (&str, &mut Vec<String>),
        chunks: &mut Vec<u8>,
        command: &str,
        secured: bool,
    ) -> Option<String> {
        let mut words = command.split_whitespace().skip(1);
        let size: usize = words.next().and_then(|n| n.parse().ok())?;
        let last = words.next().is_some_and(|w| w.eq_ignore_ascii_case("LAST"));
        let start = chunks.len();
        chunks.resize(start + size, 0);
        io.read_exact(&mut chunks[start..]).await.ok()?;
        if self.count_only {
            chunks.clear();
        }
        if rcpts.is_empty() {
            chunks.clear();
            return Some("554 5.5.1 no valid recipients".into());
        }
        if !last {
            return Some("250 2.0.0 chunk taken".into());
        }
        if !io.buffer().is_empty() {
            self.behind_data.fetch_add(1, Ordering::Relaxed);
        }
        // Counting only, the buffer (empty) keeps its room for the next message.
        let data = match self.count_only {
            true => Vec::new(),
            false => std::mem::take(chunks),
        };
        self.chunked.fetch_add(1, Ordering::Relaxed);
        self.take(from, rcpts, data, secured).await
    }

    /// Records a whole message for each of `rcpts`; the reply, or `None` when the connection
    /// is to end without one.
    async fn take(
        &self,
        from: &str,
        rcpts: &mut Vec<String>,
        data: Vec<u8>,
        secured: bool,
    ) -> Option<String> {
        if self.drop_after_data.load(Ordering::Relaxed) {
            return None;
        }
        if secured {
            self.over_tls.fetch_add(1, Ordering::Relaxed);
        }
        let delay = self.data_delay_ms.load(Ordering::Relaxed);
        if delay > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
        }
        self.messages.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut got) = self.received.lock() {
            for r in rcpts.drain(..) {
                got.push((from.to_string(), r, data.clone()));
            }
        }
        Some("250 2.0.0 queued".into())
    }

    /// Runs AUTH PLAIN or LOGIN; the user name when the credentials match.
    async fn authenticate<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        io: &mut BufReader<S>,
        command: &str,
    ) -> Option<String> {
        use base64::Engine;
        let b64 = &base64::engine::general_purpose::STANDARD;
        let (want_user, want_pass) = self.auth.clone()?;
        let mut words = command.split_whitespace().skip(1);
        let mechanism = words.next()?.to_ascii_uppercase();
        let (user, pass) = if mechanism == "PLAIN" {
            let decoded = b64.decode(words.next()?).ok()?;
            let parts: Vec<&[u8]> = decoded.split(|&b| b == 0).collect();
            let [_, user, pass] = parts.as_slice() else {
                return None;
            };
            (user.to_vec(), pass.to_vec())
        } else if mechanism == "LOGIN" {
            let mut ask = async |prompt: &[u8]| {
                let _ = io.get_mut().write_all(prompt).await;
                let mut l = String::new();
                io.read_line(&mut l).await.ok()?;
                b64.decode(l.trim()).ok()
            };
            let user = ask(b"334 VXNlcm5hbWU6\r\n").await?;
            let pass = ask(b"334 UGFzc3dvcmQ6\r\n").await?;
            (user, pass)
        } else {
            return None;
        };
        (user == want_user.as_bytes() && pass == want_pass.as_bytes()).then_some(want_user)
    }
}

/// Whether command `line` starts with `verb`, in any case.
fn is_verb(line: &str, verb: &str) -> bool {
    line.get(..verb.len())
        .is_some_and(|start| start.eq_ignore_ascii_case(verb))
}

/// The address argument of a MAIL or RCPT `line`, without its angle brackets (MAIL's
/// parameters stay after it).
fn address_arg(line: &str) -> String {
    line.split_once(':')
        .map(|(_, a)| a.trim().trim_matches(|c| c == '<' || c == '>').to_string())
        .unwrap_or_default()
}

/// Sends the replies waiting in `replies` once nothing more of the client's group is read.
async fn flush_when_idle<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut BufReader<S>,
    replies: &mut Vec<u8>,
) {
    if io.buffer().is_empty() {
        flush(io, replies).await;
    }
}

/// Sends the replies waiting in `replies`.
async fn flush<S: AsyncRead + AsyncWrite + Unpin>(io: &mut BufReader<S>, replies: &mut Vec<u8>) {
    if !replies.is_empty() {
        let _ = io.get_mut().write_all(replies).await;
        replies.clear();
    }
}
