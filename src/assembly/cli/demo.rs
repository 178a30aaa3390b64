//! `arclist demo`: arclist's whole job on built-in sample data, on a machine with no network.
//!
//! It starts a DNS server on loopback with zones for sample senders (one publishing DMARC
//! p=reject, one p=none, a forwarder the list trusts to seal ARC), a recording SMTP sink that
//! stands in for the members' mail servers (their MX records point at it), and arclist itself:
//! listener, spool, pipeline and delivery, in a scratch folder. It posts each sample over SMTP
//! from the sender's own loopback address and prints what the list decided and what a member's
//! server received, verified hop by hop.

use super::CliError;
use crate::assembly::server::Server;
use crate::auth::arc::ArcSealer;
use crate::auth::dkim::DkimSigner;
use crate::auth::dns::{
    LiveConfig, LiveResolver, LoopbackDnsServer, Mx, Resolver, Zone, ZoneRecord,
};
use crate::auth::signing_key::SigningKey;
use crate::auth::spf::SpfEvaluator;
use crate::auth::{Authenticator, Envelope, unix_now};
use crate::base::config::Config;
use crate::stages::smtp::Protocol;
use crate::state::store::{SpoolMeta, SpoolState};
use arclist_testbed::sink::Sink;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// What went wrong in the demo: its own servers, the sample posts, or arclist's handling.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// A sample address in the code does not parse.
    #[error("bad address {0}")]
    Address(String),
    /// A sample key could not be made.
    #[error("cannot make a sample key: {0}")]
    Key(#[source] crate::auth::signing_key::KeyLoadError),
    /// The engine refused (a DNS record, a signature, the resolver): its words.
    #[error("{0}")]
    Engine(String),
    /// A sample forwarder's ARC set could not be added.
    #[error(transparent)]
    Seal(#[from] crate::auth::arc::SealRefusal),
    /// The scratch folder could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file or folder.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The demo's key file could not be written.
    #[error(transparent)]
    SecretFile(#[from] crate::base::config::PrivateFileError),
    /// The demo's server file does not load.
    #[error(transparent)]
    Config(#[from] crate::base::config::ConfigError),
    /// arclist did not start.
    #[error(transparent)]
    Start(#[from] crate::assembly::server::StartError),
    /// The loopback DNS server did not start.
    #[error("cannot start loopback DNS: {0}")]
    Dns(#[source] std::io::Error),
    /// arclist's SMTP listener has no address.
    #[error("the listener has no SMTP address")]
    NoListener,
    /// Posting a sample over SMTP failed at the socket.
    #[error("{what} {addr}: {source}")]
    Socket {
        /// What was being done ("cannot bind", "cannot connect to", "SMTP with").
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The listener closed the connection in the middle of a post.
    #[error("the listener closed the connection")]
    Closed,
    /// The listener answered something else than the step expects.
    #[error("expected {want}, got {got}")]
    Unexpected {
        /// The reply code wanted.
        want: &'static str,
        /// The reply line received.
        got: String,
    },
    /// The final reply names no queue id.
    #[error("no queue id in {0:?}")]
    NoQueueId(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::state::store::StoreError),
    /// A blocking task failed.
    #[error("a blocking task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// arclist did not finish with a post in time.
    #[error("post {id} was not processed in time")]
    NotProcessed {
        /// The post's id.
        id: u64,
    },
    /// The member's server received nothing in time.
    #[error("{READER} received nothing in time")]
    NothingReceived,
}

const LIST_DOMAIN: &str = "lists.example.net";
const LIST: &str = "members@lists.example.net";
const READER: &str = "reader@inbox.example";

fn ip(s: &str) -> Result<IpAddr, DemoError> {
    s.parse().map_err(|_| DemoError::Address(s.to_string()))
}

fn sample_zone() -> Zone {
    let mut z = Zone::new();
    z.add_txt("strict-bank.example", "v=spf1 ip4:127.0.0.10 -all");
    z.add_txt(
        "_dmarc.strict-bank.example",
        "v=DMARC1; p=reject; rua=mailto:dmarc@strict-bank.example",
    );
    z.add_txt("relaxed-club.example", "v=spf1 ip4:127.0.0.11 ~all");
    z.add_txt("_dmarc.relaxed-club.example", "v=DMARC1; p=none");
    z.add_txt("alumni-forward.example", "v=spf1 ip4:127.0.0.12 -all");
    z.add_txt(LIST_DOMAIN, "v=spf1 ip4:127.0.0.1 -all");
    z.add_txt(&format!("_dmarc.{LIST_DOMAIN}"), "v=DMARC1; p=none");
    // Every member's mail goes to the sink on 127.0.0.1.
    for domain in [
        "inbox.example",
        "strict-bank.example",
        "relaxed-club.example",
    ] {
        z.add(
            domain,
            ZoneRecord::Mx(Mx {
                preference: 10,
                exchange: "mx.sink.example".into(),
            }),
        );
    }
    z.add("mx.sink.example", ZoneRecord::A([127, 0, 0, 1].into()));
    z
}

fn post(from: &str, subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: {LIST}\r\nSubject: {subject}\r\nDate: Sun, 22 Nov 2026 09:00:00 +0000\r\n\
         Message-ID: <{}.demo@arclist>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}",
        subject.len()
    )
    .into_bytes()
}

fn keypair(
    dns: &LoopbackDnsServer,
    selector: &str,
    domain: &str,
) -> Result<(Arc<SigningKey>, String), DemoError> {
    let (key, pem) = SigningKey::generate_rsa2048().map_err(DemoError::Key)?;
    let record = key.dns_record().map_err(DemoError::Engine)?;
    dns.with_zone(|z| z.add_txt(&format!("{selector}._domainkey.{domain}"), &record));
    Ok((Arc::new(key), pem))
}

async fn start_server(
    work: &Path,
    dns: SocketAddr,
    sink_port: u16,
    list_pem: &str,
) -> Result<Server, DemoError> {
    let write = |path: std::path::PathBuf, text: String| {
        std::fs::write(&path, text).map_err(|source| DemoError::Write { path, source })
    };
    let lists = work.join("lists");
    std::fs::create_dir_all(&lists).map_err(|source| DemoError::Write {
        path: lists,
        source,
    })?;
    crate::base::config::write_private(&work.join("keys/list1.pem"), list_pem)?;
    write(
        work.join("server.toml"),
        format!(
            "hostname = \"mx.{LIST_DOMAIN}\"\nlisten = [\"127.0.0.1:0\"]\nstore = \"var/demo.redb\"\n\
             [dns]\nnameservers = [\"{dns}\"]\ntimeout_secs = 2\n[delivery]\nport = {sink_port}\ntimeout_secs = 5\n"
        ),
    )?;
    write(
        work.join("lists/members.toml"),
        format!(
            "address = \"{LIST}\"\nname = \"Members\"\nsubject_tag = \"[members] \"\nfooter = \"members mailing list\"\n\
             trusted_sealers = [\"alumni-forward.example\"]\n\
             members = [\"Alice <alice@strict-bank.example>\", \"bob@relaxed-club.example\", \"Reader <{READER}>\"]\n\
             [signing]\nselector = \"list1\"\nkey = \"../keys/list1.pem\"\n"
        ),
    )?;
    let config = Config::load(Some(&work.join("server.toml")))?;
    Ok(Server::start(&config).await?)
}

/// Posts `message` over SMTP from `source` (an address on 127.0.0.0/8) and returns the spool id.
async fn smtp_post(
    server: SocketAddr,
    source: IpAddr,
    helo: &str,
    mail_from: &str,
    message: &[u8],
) -> Result<u64, DemoError> {
    let failed = |what, addr| move |source| DemoError::Socket { what, addr, source };
    let from = SocketAddr::new(source, 0);
    let socket = tokio::net::TcpSocket::new_v4().map_err(failed("cannot bind", from))?;
    socket.bind(from).map_err(failed("cannot bind", from))?;
    let stream = socket
        .connect(server)
        .await
        .map_err(failed("cannot connect to", server))?;
    let mut io = BufReader::new(stream);
    let mut last = String::new();
    for (send, want) in [
        (Vec::new(), "220"),
        (format!("EHLO {helo}\r\n").into_bytes(), "250"),
        (format!("MAIL FROM:<{mail_from}>\r\n").into_bytes(), "250"),
        (format!("RCPT TO:<{LIST}>\r\n").into_bytes(), "250"),
        (b"DATA\r\n".to_vec(), "354"),
        (crate::stages::smtp::wire::dot_stuff(message), "250"),
    ] {
        io.get_mut()
            .write_all(&send)
            .await
            .map_err(failed("SMTP with", server))?;
        loop {
            last.clear();
            let read = io.read_line(&mut last).await;
            if read.map_err(failed("SMTP with", server))? == 0 {
                return Err(DemoError::Closed);
            }
            if last.as_bytes().get(3) != Some(&b'-') {
                break;
            }
        }
        if !last.starts_with(want) {
            return Err(DemoError::Unexpected {
                want,
                got: last.trim_end().to_string(),
            });
        }
    }
    let _ = io.get_mut().write_all(b"QUIT\r\n").await;
    last.trim_end()
        .rsplit(' ')
        .next()
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| DemoError::NoQueueId(last.clone()))
}

/// Waits until the pipeline has finished with spool entry `id`.
async fn settled(server: &Server, id: u64) -> Result<SpoolMeta, DemoError> {
    for _ in 0..400 {
        let found = server.store().get(id).await?;
        if let Some((meta, _)) = found
            && !matches!(
                meta.state,
                SpoolState::Received | SpoolState::Authenticated | SpoolState::Approved
            )
        {
            return Ok(meta);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    Err(DemoError::NotProcessed { id })
}

async fn received_copy(sink: &Sink, before: usize) -> Result<Vec<u8>, DemoError> {
    for _ in 0..400 {
        let inbox = sink.inbox(READER);
        if inbox.len() > before
            && let Some(copy) = inbox.into_iter().last()
        {
            return Ok(copy);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    Err(DemoError::NothingReceived)
}

fn header_lines(message: &[u8], names: &[&str]) -> Vec<String> {
    let parsed = crate::auth::message::RawMessage::parse(message);
    parsed
        .headers
        .iter()
        .filter(|h| names.iter().any(|n| h.is(n)))
        .map(|h| {
            let text = String::from_utf8_lossy(h.raw)
                .replace("\r\n\t", " ")
                .replace("\r\n ", " ");
            let text = text.trim_end().to_string();
            // Cut on characters, not bytes: a header may hold UTF-8.
            if text.chars().count() > 110 {
                format!("{}...", text.chars().take(107).collect::<String>())
            } else {
                text
            }
        })
        .collect()
}

/// Runs the demo and prints what each step saw.
pub async fn run() -> Result<ExitCode, CliError> {
    Ok(demo().await?)
}

async fn demo() -> Result<ExitCode, DemoError> {
    let dns = LoopbackDnsServer::start(sample_zone())
        .await
        .map_err(DemoError::Dns)?;
    let (sink, sink_addr) = Sink::start().await;
    let (bank_key, _) = keypair(&dns, "s1", "strict-bank.example")?;
    let (forwarder_key, _) = keypair(&dns, "arc", "alumni-forward.example")?;
    let (_, list_pem) = keypair(&dns, "list1", LIST_DOMAIN)?;
    let work = std::env::temp_dir().join(format!("arclist-demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    let server = start_server(&work, dns.addr(), sink_addr.port(), &list_pem).await?;
    let smtp = server
        .listeners
        .addr(Protocol::Smtp)
        .ok_or(DemoError::NoListener)?;
    let live = LiveConfig {
        nameservers: vec![dns.addr()],
        timeout: Duration::from_secs(2),
        attempts: 1,
        ..LiveConfig::default()
    };
    let auth = Authenticator::new(
        Resolver::Live(Box::new(
            LiveResolver::new(&live).map_err(DemoError::Engine)?,
        )),
        Some(SpfEvaluator::new(&live, "mx.inbox.example").map_err(DemoError::Engine)?),
    );
    println!(
        "arclist demo, offline: DNS on {}, arclist on {smtp}, members' mail servers (a sink) on {sink_addr}.",
        dns.addr()
    );
    println!(
        "The list {LIST} trusts ARC seals by alumni-forward.example; its members include {READER}.\n"
    );

    let now = unix_now();
    for (n, (label, message, envelope)) in sample_posts(&auth, bank_key, forwarder_key, now)
        .await?
        .into_iter()
        .enumerate()
    {
        println!(
            "{}. {label}: SMTP from {} as <{}>",
            n + 1,
            envelope.ip,
            envelope.mail_from
        );
        let sent = Sent { message, envelope };
        show(&server, smtp, &sink, &auth, sent, now).await?;
    }
    server.stop(Duration::from_secs(5)).await;
    let _ = std::fs::remove_dir_all(&work);
    println!(
        "Verify any message yourself: arclist verify --zone FILE.zone message.eml (see README.md)."
    );
    Ok(ExitCode::SUCCESS)
}

/// The three sample posts: a label, the message, and the envelope it is sent with.
async fn sample_posts(
    auth: &Authenticator,
    bank_key: Arc<SigningKey>,
    forwarder_key: Arc<SigningKey>,
    now: u64,
) -> Result<Vec<(&'static str, Vec<u8>, Envelope)>, DemoError> {
    let mut posts: Vec<(&'static str, Vec<u8>, Envelope)> = Vec::new();
    // 1. A DKIM-signed post from a p=reject domain, straight from its own server.
    let m = post(
        "Alice <alice@strict-bank.example>",
        "Quarterly numbers",
        "Numbers attached.\r\n",
    );
    let sig = DkimSigner::new(bank_key.clone(), "strict-bank.example", "s1")
        .sign(&m, now)
        .map_err(DemoError::Engine)?;
    posts.push((
        "from a DMARC p=reject domain, DKIM-signed",
        [sig.as_bytes(), &m].concat(),
        Envelope {
            ip: ip("127.0.0.10")?,
            helo: "mx.strict-bank.example".into(),
            mail_from: "alice@strict-bank.example".into(),
        },
    ));
    // 2. The same author, through an alumni forwarder that adds a footer (breaking her DKIM)
    //    and seals what it saw with ARC.
    let m = post(
        "Alice <alice@strict-bank.example>",
        "Reunion dinner",
        "Who is coming?\r\n",
    );
    let signed = [
        DkimSigner::new(bank_key, "strict-bank.example", "s1")
            .sign(&m, now)
            .map_err(DemoError::Engine)?
            .as_bytes(),
        &m,
    ]
    .concat();
    let at_forwarder = Envelope {
        ip: ip("127.0.0.10")?,
        helo: "mx.strict-bank.example".into(),
        mail_from: "alice@strict-bank.example".into(),
    };
    let seen = auth.verify(&signed, Some(&at_forwarder), now).await;
    let changed = [
        signed.as_slice(),
        b"-- \r\nsent via the alumni forwarding service\r\n",
    ]
    .concat();
    let set = ArcSealer::new(forwarder_key, "alumni-forward.example", "arc").seal(
        &changed,
        &seen.arc,
        &seen
            .auth_results("alumni-forward.example", Some(&at_forwarder))
            .render(),
        now,
    )?;
    posts.push((
        "the same author via a trusted forwarder that broke her DKIM",
        set.prepend_to(&changed),
        Envelope {
            ip: ip("127.0.0.12")?,
            helo: "mx.alumni-forward.example".into(),
            mail_from: "srs@alumni-forward.example".into(),
        },
    ));
    // 3. A spoof of the p=reject domain.
    posts.push((
        "a spoof of the p=reject domain",
        post(
            "CEO <ceo@strict-bank.example>",
            "Urgent wire transfer",
            "Please pay the invoice today.\r\n",
        ),
        Envelope {
            ip: ip("127.0.0.66")?,
            helo: "spoofer.invalid".into(),
            mail_from: "ceo@strict-bank.example".into(),
        },
    ));
    Ok(posts)
}

/// A sample post and the envelope it is sent with.
struct Sent {
    message: Vec<u8>,
    envelope: Envelope,
}

/// Posts one sample and prints what arclist recorded, decided, and what a member received.
async fn show(
    server: &Server,
    smtp: SocketAddr,
    sink: &Sink,
    auth: &Authenticator,
    sent: Sent,
    now: u64,
) -> Result<(), DemoError> {
    let Sent { message, envelope } = sent;
    let before = sink.inbox(READER).len();
    let id = smtp_post(
        smtp,
        envelope.ip,
        &envelope.helo,
        &envelope.mail_from,
        &message,
    )
    .await?;
    let meta = settled(server, id).await?;
    if let Some(results) = &meta.auth_results {
        println!(
            "   arclist on arrival: {}",
            results.replace(";\r\n\t", "; ")
        );
    }
    if meta.state != SpoolState::Queued {
        println!(
            "   -> {:?}: {}\n",
            meta.state,
            meta.note.unwrap_or_default()
        );
        return Ok(());
    }
    let members = server
        .store()
        .queue_entry(id)
        .await?
        .map_or(0, |entry| entry.recipients.len());
    match &meta.note {
        Some(note) => println!("   -> queued for the {members} members ({note})"),
        None => println!("   -> queued for the {members} members"),
    }
    let copy = received_copy(sink, before).await?;
    println!("   {READER}'s server received:");
    for line in header_lines(
        &copy,
        &["From", "Reply-To", "Subject", "List-Id", "ARC-Seal"],
    ) {
        println!("     {line}");
    }
    let at_reader = Envelope {
        ip: ip("127.0.0.1")?,
        helo: format!("mx.{LIST_DOMAIN}"),
        mail_from: format!("members-bounces@{LIST_DOMAIN}"),
    };
    let v = auth.verify(&copy, Some(&at_reader), now).await;
    println!(
        "   and verifies it as: {}\n",
        crate::assembly::cli::verify::render_text(&v)
            .trim_end()
            .replace('\n', "\n     ")
    );
    Ok(())
}
