//! A running arclist with a test list, and a small SMTP client that reads replies exactly.

use crate::support::Dns;
use arclist::assembly::server::Server;
use arclist::auth::dns::Zone;
use arclist::base::config::Config;
use arclist::stages::smtp::Protocol;
use arclist::state::store::SpoolMeta;
use std::net::SocketAddr;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

pub const LIST: &str = "members@lists.arclist.test";

pub struct TestServer {
    pub dir: tempfile::TempDir,
    pub server: Server,
    pub dns: Dns,
}

impl TestServer {
    /// A server with a list at LIST; `extra` is appended to server.toml (e.g. `[limits]`).
    pub async fn start(extra: &str) -> TestServer {
        Self::start_with_list(extra, "").await
    }

    /// As `start`, with `list_extra` added to the list file's top level.
    pub async fn start_with_list(extra: &str, list_extra: &str) -> TestServer {
        Self::start_prepared(extra, list_extra, |_| {}).await
    }

    /// As `start_with_list`, letting `prepare` change the folder before the server starts.
    pub async fn start_prepared(
        extra: &str,
        list_extra: &str,
        prepare: impl FnOnce(&std::path::Path),
    ) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let dns = Dns::start(Zone::new()).await;
        write_config_with_list(dir.path(), &dns.addr(), "127.0.0.1:0", extra, list_extra);
        prepare(dir.path());
        let config = Config::load(Some(&dir.path().join("server.toml"))).expect("config loads");
        let server = Server::start(&config).await.expect("server starts");
        TestServer { dir, server, dns }
    }

    /// Stops the server (so the CLI may open the store), runs `f`, starts it again.
    pub async fn restart_after(self, f: impl AsyncFnOnce(&std::path::Path)) -> TestServer {
        let TestServer { dir, server, dns } = self;
        server.stop(std::time::Duration::from_secs(5)).await;
        f(&dir.path().join("server.toml")).await;
        let config = Config::load(Some(&dir.path().join("server.toml"))).expect("config loads");
        let server = Server::start(&config).await.expect("server restarts");
        TestServer { dir, server, dns }
    }

    /// Publishes the list's signing key (made by create_key) in the test DNS.
    pub fn publish_list_key(&self) {
        let key = arclist::auth::signing_key::SigningKey::from_pem_file(
            &self.dir.path().join("keys/arc1.pem"),
        )
        .expect("list key");
        self.dns.publish_key("arc1", "lists.arclist.test", &key);
    }

    pub async fn add_member(&self, address: &str) {
        let member = arclist::state::store::Member {
            address: address.into(),
            name: String::new(),
            joined_at: 0,
            ..Default::default()
        };
        self.server
            .store()
            .add_member(LIST, &member)
            .await
            .expect("add member");
    }

    /// Waits until spool entry `id` has left the pipeline's unfinished states.
    pub async fn settled(&self, id: u64) -> SpoolMeta {
        for _ in 0..800 {
            if let Some((meta, _)) = self.server.store().get(id).await.expect("get") {
                use arclist::state::store::SpoolState::*;
                if matches!(meta.state, Held | Queued | Rejected | Discarded | Done) {
                    return meta;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("post {id} did not settle");
    }

    /// Who queued post (or notice) `id` reached, as their servers saw it: once every
    /// recipient is settled, `sink`'s recipients of a copy with the queued copy's
    /// Message-ID, sorted. The queue keeps no list of recipients (records while they wait,
    /// then a summary), so this is how a test learns who got a post.
    pub async fn delivered_to(&self, sink: &arclist_testbed::sink::Sink, id: u64) -> Vec<String> {
        let store = self.server.store();
        until(&format!("post {id} is delivered to everyone"), async || {
            let entry = store.queue_entry(id).await.expect("queue entry");
            entry.is_some_and(|e| e.summary.is_some())
        })
        .await;
        let (_, copy) = store.queued(id).await.expect("queue").expect("queued");
        let wanted = message_id(&copy).expect("the queued copy has a Message-ID");
        let received = sink.received.lock().expect("sink");
        let mut to: Vec<String> = received
            .iter()
            .filter(|(_, _, data)| message_id(data).as_deref() == Some(wanted.as_str()))
            .map(|(_, rcpt, _)| rcpt.clone())
            .collect();
        to.sort();
        to
    }

    pub fn smtp(&self) -> SocketAddr {
        self.server
            .listeners
            .addr(Protocol::Smtp)
            .expect("smtp addr")
    }

    pub fn lmtp(&self) -> SocketAddr {
        self.server
            .listeners
            .addr(Protocol::Lmtp)
            .expect("lmtp addr")
    }

    pub async fn spool(&self) -> Vec<(SpoolMeta, Vec<u8>)> {
        let store = self.server.store();
        let mut out = Vec::new();
        for m in store.list().await.expect("list") {
            out.push(store.get(m.id).await.expect("get").expect("present"));
        }
        out
    }
}

/// The store `dir/server.toml` names, opened as a CLI would (the embedded file only while no
/// server holds it; a shared database any time).
pub async fn open_store(dir: &std::path::Path) -> arclist::state::store::Store {
    let config = Config::load(Some(&dir.join("server.toml"))).expect("config loads");
    arclist::state::store::Store::open(&config.server)
        .await
        .expect("store opens")
}

/// Points `dir/server.toml` at the embedded store file `var/store.redb`, for the tests of what
/// only a file does (a full disk), whichever backend the rest run on.
pub fn use_embedded_store(dir: &std::path::Path) {
    set_store(dir, "var/store.redb");
}

/// Sets `store = …` in `dir/server.toml`.
pub fn set_store(dir: &std::path::Path, store: &str) {
    set_server_key(dir, "store", &format!("\"{store}\""));
}

/// Sets the top-level `key` of `dir/server.toml` (the one before any `[table]`) to the TOML
/// `value`.
pub fn set_server_key(dir: &std::path::Path, key: &str, value: &str) {
    let path = dir.join("server.toml");
    let text = std::fs::read_to_string(&path).expect("server.toml");
    let prefix = format!("{key} = ");
    let mut top = true;
    let text: Vec<String> = text
        .lines()
        .map(|l| {
            top &= !l.starts_with('[');
            match top && l.starts_with(&prefix) {
                true => format!("{prefix}{value}"),
                false => l.to_string(),
            }
        })
        .collect();
    std::fs::write(&path, text.join("\n") + "\n").expect("server.toml");
}

/// server.toml and lists/test.toml under `dir`.
pub fn write_config(dir: &std::path::Path, dns: &str, listen: &str, extra: &str) {
    write_config_with_list(dir, dns, listen, extra, "");
}

/// As `write_config`, with `list_extra` at the list file's top level.
pub fn write_config_with_list(
    dir: &std::path::Path,
    dns: &str,
    listen: &str,
    extra: &str,
    list_extra: &str,
) {
    std::fs::create_dir_all(dir.join("lists")).expect("lists dir");
    let store = crate::postgres::store_for_test();
    std::fs::write(
        dir.join("server.toml"),
        format!(
            "hostname = \"mx.arclist.test\"\nlisten = [\"{listen}\"]\nlmtp_listen = [\"127.0.0.1:0\"]\n\
             store = \"{store}\"\nlists_dir = \"lists\"\n[dns]\nnameservers = [\"{dns}\"]\ntimeout_secs = 1\n{extra}"
        ),
    )
    .expect("server.toml");
    std::fs::write(
        dir.join("lists/test.toml"),
        format!("address = \"{LIST}\"\nname = \"Members\"\n{list_extra}\n[signing]\nselector = \"arc1\"\nkey = \"../keys/arc1.pem\"\ncreate_key = true\n"),
    )
    .expect("list file");
}

/// An SMTP client over any stream.
pub struct Client<S> {
    io: BufReader<S>,
}

impl Client<TcpStream> {
    pub async fn connect(addr: SocketAddr) -> (Self, (u16, String)) {
        Self::connect_from(addr, "127.0.0.1").await
    }

    /// Connects from `source`, an address on 127.0.0.0/8, as a sender's own server would.
    pub async fn connect_from(addr: SocketAddr, source: &str) -> (Self, (u16, String)) {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind(format!("{source}:0").parse().expect("source"))
            .expect("bind source");
        let stream = socket.connect(addr).await.expect("connect");
        let mut c = Client {
            io: BufReader::new(stream),
        };
        let greeting = c.reply().await;
        (c, greeting)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    pub fn new(stream: S) -> Self {
        Client {
            io: BufReader::new(stream),
        }
    }

    pub fn into_inner(self) -> S {
        self.io.into_inner()
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.io.get_mut().write_all(bytes).await.expect("write");
    }

    /// One whole reply (all `NNN-` lines and the final `NNN `): code and joined text.
    /// Code 0 means the server closed the connection.
    pub async fn reply(&mut self) -> (u16, String) {
        let mut text = String::new();
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(
                std::time::Duration::from_secs(30),
                self.io.read_line(&mut line),
            )
            .await
            .expect("reply within 30 s")
            .unwrap_or(0);
            if n == 0 {
                return (0, text);
            }
            let code: u16 = line
                .get(..3)
                .and_then(|c| c.parse().ok())
                .expect("reply code");
            text.push_str(line.get(4..).unwrap_or_default());
            if line.as_bytes().get(3) != Some(&b'-') {
                return (code, text);
            }
        }
    }

    /// MAIL, RCPT and DATA for one message; returns the final reply.
    pub async fn post(&mut self, mail_from: &str, rcpt: &str, message: &[u8]) -> (u16, String) {
        assert_eq!(self.cmd(&format!("MAIL FROM:<{mail_from}>")).await.0, 250);
        assert_eq!(self.cmd(&format!("RCPT TO:<{rcpt}>")).await.0, 250);
        assert_eq!(self.cmd("DATA").await.0, 354);
        self.send(&dot_stuffed(message)).await;
        self.reply().await
    }

    /// Writes `bytes`; false when the server has closed the connection.
    pub async fn try_send(&mut self, bytes: &[u8]) -> bool {
        self.io.get_mut().write_all(bytes).await.is_ok()
    }

    /// Waits up to `wait` for the server to say something (or close); true when it did. The
    /// reply stays buffered for [`Client::reply`].
    pub async fn heard_within(&mut self, wait: std::time::Duration) -> bool {
        use tokio::io::AsyncBufReadExt as _;
        tokio::time::timeout(wait, self.io.fill_buf()).await.is_ok()
    }

    pub async fn cmd(&mut self, line: &str) -> (u16, String) {
        self.send(format!("{line}\r\n").as_bytes()).await;
        self.reply().await
    }
}

/// A post of about `size` bytes whose body has lines starting with dots (to exercise stuffing).
pub fn message(tag: &str, size: usize) -> Vec<u8> {
    let mut m = format!(
        "From: A <a@author.arclist.test>\r\nTo: {LIST}\r\nSubject: {tag}\r\nMessage-ID: <{tag}@arclist.test>\r\n\r\n.leading dot\r\n..two dots\r\n"
    )
    .into_bytes();
    while m.len() < size {
        m.extend_from_slice(format!("{tag} line of text to reach the size wanted.\r\n").as_bytes());
    }
    m
}

/// Dot-stuffs `message` and ends it with CRLF.CRLF, as DATA requires.
pub fn dot_stuffed(message: &[u8]) -> Vec<u8> {
    arclist::stages::smtp::wire::dot_stuff(message)
}

/// A free port on a loopback address of this test process's own (127.P.Q.N from its pid and a
/// counter), for servers started as separate processes: a port picked on 127.0.0.1 and then
/// released can be taken by another test's listener before the server binds it, and the test
/// would then talk to the wrong server.
pub fn private_listen_addr() -> SocketAddr {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let pid = std::process::id();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let ip = std::net::Ipv4Addr::new(
        127,
        100 + (pid % 100) as u8,
        ((pid / 100) % 250) as u8 + 1,
        (n % 250) as u8 + 1,
    );
    let port = std::net::TcpListener::bind((ip, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port on a private loopback address");
    SocketAddr::new(ip.into(), port)
}

/// Waits (20 s at most) until `done` holds, and fails the test naming `what` if it never does.
pub async fn until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !done().await {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

/// The Message-ID field's value of `message`, unfolded and trimmed.
pub fn message_id(message: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(message);
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
    unfolded.split("\r\n").find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("Message-ID")
            .then(|| value.trim().to_string())
    })
}
