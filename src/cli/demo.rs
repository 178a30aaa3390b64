//! `arclist demo`: arclist's job on built-in sample data, on a machine with no network.
//!
//! It starts a DNS server on loopback with zones for sample senders (one publishing DMARC
//! p=reject, one p=none, one forwarder that seals ARC), makes their keys, starts arclist's SMTP
//! listener, spool and pipeline in a scratch folder, and posts each sample over SMTP from the
//! sender's own loopback address. It prints what the pipeline recorded on arrival, then follows
//! the post through what the list stages do (subject tag and footer, the next ARC set, a DKIM
//! signature as the list) and verifies the copy a subscriber receives.

use crate::auth::arc::ArcSealer;
use crate::auth::dkim::DkimSigner;
use crate::auth::dns::{LiveConfig, LiveResolver, LoopbackDnsServer, Resolver, Zone};
use crate::auth::signing_key::SigningKey;
use crate::auth::spf::SpfEvaluator;
use crate::auth::{Authenticator, Envelope, Verification, unix_now};
use crate::config::Config;
use crate::server::Server;
use crate::smtp::Protocol;
use crate::store::Store;
use std::net::IpAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const LIST: &str = "lists.example.net";

struct Party {
    domain: &'static str,
    key: Arc<SigningKey>,
    pem: String,
}

impl Party {
    fn new(domain: &'static str, dns: &LoopbackDnsServer, selector: &str) -> Result<Self, String> {
        let (key, pem) = SigningKey::generate_rsa2048().map_err(|e| e.to_string())?;
        let record = key.dns_record()?;
        dns.with_zone(|z| z.add_txt(&format!("{selector}._domainkey.{domain}"), &record));
        Ok(Party {
            domain,
            key: Arc::new(key),
            pem,
        })
    }
}

/// Starts `arclist serve`'s machinery in-process, in a scratch folder, with the list's key.
async fn start_server(
    work: &Path,
    dns: std::net::SocketAddr,
    list_pem: &str,
) -> Result<Server, String> {
    std::fs::create_dir_all(work.join("lists")).map_err(|e| e.to_string())?;
    crate::cli::write_private(&work.join("keys/list1.pem"), list_pem)?;
    std::fs::write(
        work.join("server.toml"),
        format!("hostname = \"{LIST}\"\nlisten = [\"127.0.0.1:0\"]\nstore = \"var/demo.redb\"\n[dns]\nnameservers = [\"{dns}\"]\ntimeout_secs = 2\n"),
    )
    .map_err(|e| e.to_string())?;
    std::fs::write(
        work.join("lists/members.toml"),
        format!("address = \"members@{LIST}\"\nname = \"Members\"\nsubject_tag = \"[members] \"\n[signing]\nselector = \"list1\"\nkey = \"../keys/list1.pem\"\n"),
    )
    .map_err(|e| e.to_string())?;
    let config = Config::load(Some(&work.join("server.toml"))).map_err(|e| e.to_string())?;
    Server::start(&config).await
}

/// Posts `message` over SMTP from `source` (an address on 127.0.0.0/8) and returns the spool id.
async fn smtp_post(
    server: std::net::SocketAddr,
    source: IpAddr,
    helo: &str,
    mail_from: &str,
    message: &[u8],
) -> Result<u64, String> {
    let socket = tokio::net::TcpSocket::new_v4().map_err(|e| e.to_string())?;
    socket
        .bind((source, 0).into())
        .map_err(|e| format!("cannot bind {source}: {e}"))?;
    let stream = socket
        .connect(server)
        .await
        .map_err(|e| format!("cannot connect to {server}: {e}"))?;
    let mut io = BufReader::new(stream);
    let mut last = String::new();
    for (send, want) in [
        (Vec::new(), "220"),
        (format!("EHLO {helo}\r\n").into_bytes(), "250"),
        (format!("MAIL FROM:<{mail_from}>\r\n").into_bytes(), "250"),
        (format!("RCPT TO:<members@{LIST}>\r\n").into_bytes(), "250"),
        (b"DATA\r\n".to_vec(), "354"),
        (crate::smtp::wire::dot_stuff(message), "250"),
    ] {
        io.get_mut()
            .write_all(&send)
            .await
            .map_err(|e| e.to_string())?;
        loop {
            last.clear();
            if io.read_line(&mut last).await.map_err(|e| e.to_string())? == 0 {
                return Err("the listener closed the connection".into());
            }
            if last.as_bytes().get(3) != Some(&b'-') {
                break;
            }
        }
        if !last.starts_with(want) {
            return Err(format!("expected {want}, got {}", last.trim_end()));
        }
    }
    let _ = io.get_mut().write_all(b"QUIT\r\n").await;
    last.trim_end()
        .rsplit(' ')
        .next()
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| format!("no queue id in {last:?}"))
}

/// A scratch folder for the demo's store and keys, removed at the end.
fn tempfile_dir() -> Result<std::path::PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("arclist-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}

/// Waits until the pipeline has recorded Authentication-Results for spool entry `id`.
async fn recorded_results(server: &Server, id: u64) -> Result<String, String> {
    for _ in 0..200 {
        let store = server.store();
        if let Some((meta, _)) = tokio::task::spawn_blocking(move || store.get(id))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?
            && let Some(results) = meta.auth_results
        {
            return Ok(results);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    Err(format!("spool entry {id} was not authenticated in time"))
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
    z.add_txt(LIST, "v=spf1 ip4:127.0.0.1 -all");
    z.add_txt(&format!("_dmarc.{LIST}"), "v=DMARC1; p=none");
    z
}

fn post(from: &str, subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: members@{LIST}\r\nSubject: {subject}\r\nDate: Sun, 22 Nov 2026 09:00:00 +0000\r\n\
         Message-ID: <{}.demo@arclist>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}",
        subject.len()
    )
    .into_bytes()
}

/// What the list does to its copy: a subject tag, a List-Id and a footer.
fn list_copy(message: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(message).replacen("Subject: ", "Subject: [members] ", 1);
    format!("List-Id: Members <members.{LIST}>\r\n{text}-- \r\nmembers mailing list\r\n")
        .into_bytes()
}

fn summary(label: &str, v: &Verification) -> String {
    let dkim: Vec<String> = v
        .dkim
        .iter()
        .map(|d| format!("{} (d={})", d.verdict.as_str(), d.domain))
        .collect();
    let mut s = format!(
        "  {label:<24} dkim={} spf={} dmarc={} (p={}) arc={}\n",
        if dkim.is_empty() {
            "none".to_string()
        } else {
            dkim.join(",")
        },
        v.spf.as_ref().map_or("-", |s| s.mail_from.as_str()),
        v.dmarc.verdict.as_str(),
        v.dmarc.policy.as_str(),
        v.arc.verdict.as_str(),
    );
    for hop in &v.arc.hops {
        s.push_str(&format!("  {:<24}   {hop}\n", ""));
    }
    s
}

/// Runs the demo and prints what each step saw.
pub async fn run() -> Result<ExitCode, String> {
    let dns = LoopbackDnsServer::start(sample_zone())
        .await
        .map_err(|e| format!("cannot start loopback DNS: {e}"))?;
    let live = LiveConfig {
        nameservers: vec![dns.addr()],
        timeout: Duration::from_secs(2),
        attempts: 1,
    };
    let resolver = Resolver::Live(Box::new(LiveResolver::new(&live)?));
    let auth = Authenticator::new(resolver, Some(SpfEvaluator::new(&live, LIST)?));
    let bank = Party::new("strict-bank.example", &dns, "s1")?;
    let forwarder = Party::new("alumni-forward.example", &dns, "arc")?;
    let list = Party::new(LIST, &dns, "list1")?;
    let list_sealer = ArcSealer::new(list.key.clone(), LIST, "list1");
    let list_signer = DkimSigner::new(list.key.clone(), LIST, "list1");
    let work = tempfile_dir()?;
    let server = start_server(&work, dns.addr(), &list.pem).await?;
    let smtp = server
        .listeners
        .addr(Protocol::Smtp)
        .ok_or("the listener has no SMTP address")?;
    println!(
        "arclist demo: DNS on {} serving strict-bank.example (DMARC p=reject), relaxed-club.example (p=none),",
        dns.addr()
    );
    println!(
        "alumni-forward.example (an ARC-sealing forwarder) and the list {LIST}; arclist listens on {smtp}.\n"
    );

    let now = unix_now();
    let mut posts: Vec<(&str, Vec<u8>, Envelope)> = Vec::new();
    // 1. A DKIM-signed post from a p=reject domain, straight from its own server.
    let m = post(
        "Alice <alice@strict-bank.example>",
        "Quarterly numbers",
        "Numbers attached.\r\n",
    );
    let sig = DkimSigner::new(bank.key.clone(), bank.domain, "s1").sign(&m, now)?;
    let env = Envelope {
        ip: "127.0.0.10".parse().map_err(|_| "ip")?,
        helo: "mx.strict-bank.example".into(),
        mail_from: "alice@strict-bank.example".into(),
    };
    posts.push(("p=reject author", [sig.as_bytes(), &m].concat(), env));
    // 2. An unsigned post from a p=none domain, forwarded through a sealing forwarder.
    let m = post(
        "Bob <bob@relaxed-club.example>",
        "Meeting on Friday",
        "See you there.\r\n",
    );
    let fwd = ArcSealer::new(forwarder.key.clone(), forwarder.domain, "arc");
    let fwd_env = Envelope {
        ip: "127.0.0.11".parse().map_err(|_| "ip")?,
        helo: "relaxed-club.example".into(),
        mail_from: "bob@relaxed-club.example".into(),
    };
    let at_forwarder = auth.verify(&m, Some(&fwd_env), now).await;
    let set = fwd
        .seal(
            &m,
            &at_forwarder.arc,
            &at_forwarder
                .auth_results(forwarder.domain, Some(&fwd_env))
                .render(),
            now,
        )
        .map_err(|e| e.to_string())?;
    let env = Envelope {
        ip: "127.0.0.12".parse().map_err(|_| "ip")?,
        helo: "mx.alumni-forward.example".into(),
        mail_from: "bob@relaxed-club.example".into(),
    };
    posts.push(("forwarded, ARC-sealed", set.prepend_to(&m), env));
    // 3. A spoofed post claiming the p=reject domain, from an address its SPF does not list.
    let m = post(
        "CEO <ceo@strict-bank.example>",
        "Urgent wire transfer",
        "Please pay the invoice today.\r\n",
    );
    let env = Envelope {
        ip: "127.0.0.66".parse().map_err(|_| "ip")?,
        helo: "spoofer.invalid".into(),
        mail_from: "ceo@strict-bank.example".into(),
    };
    posts.push(("spoofed p=reject", m, env));

    for (label, message, envelope) in posts {
        println!(
            "post: {label}, sent over SMTP from {} as <{}>",
            envelope.ip, envelope.mail_from
        );
        let id = smtp_post(
            smtp,
            envelope.ip,
            &envelope.helo,
            &envelope.mail_from,
            &message,
        )
        .await?;
        let recorded = recorded_results(&server, id).await?;
        println!(
            "  spooled as {id}; the pipeline recorded:\n    Authentication-Results: {}",
            recorded.replace("\r\n\t", "\n      ")
        );
        let arrived = auth.verify(&message, Some(&envelope), now).await;
        print!("{}", summary("on arrival at the list", &arrived));
        if arrived.dmarc.verdict == crate::auth::dmarc::DmarcVerdict::Fail
            && arrived.arc.verdict != crate::auth::arc::ArcVerdict::Pass
        {
            println!(
                "  -> DMARC fails with p={} and no trusted ARC chain vouches for it: the list would refuse it\n",
                arrived.dmarc.policy.as_str()
            );
            continue;
        }
        let copy = list_copy(&message);
        let payload = arrived.auth_results(LIST, Some(&envelope)).render();
        let sealed = list_sealer
            .seal(&copy, &arrived.arc, &payload, now)
            .map_err(|e| e.to_string())?
            .prepend_to(&copy);
        let signed = [list_signer.sign(&sealed, now)?.as_bytes(), &sealed].concat();
        let list_env = Envelope {
            ip: "127.0.0.1".parse().map_err(|_| "ip")?,
            helo: LIST.into(),
            mail_from: format!("members-bounces@{LIST}"),
        };
        let delivered = auth.verify(&signed, Some(&list_env), now).await;
        print!("{}", summary("as a subscriber gets it", &delivered));
        let author_signed = arrived.dkim.iter().any(|d| d.verdict.as_str() == "pass");
        let author_survives = delivered
            .dkim
            .iter()
            .any(|d| d.domain != LIST && d.verdict.as_str() == "pass");
        println!(
            "  -> {}; the list's ARC chain says {}, recording what the list saw on arrival",
            match (author_signed, author_survives) {
                (false, _) => "the author sent no DKIM signature",
                (true, true) => "the author's DKIM survives the list's changes",
                (true, false) => "the author's DKIM breaks under the subject tag and footer",
            },
            delivered.arc.verdict.as_str()
        );
        if delivered.dmarc.verdict == crate::auth::dmarc::DmarcVerdict::Fail
            && delivered.dmarc.policy != crate::auth::dmarc::Policy::None
        {
            println!(
                "  -> DMARC p={} now fails: receivers that do not trust the list's seal would refuse this copy (From rewriting arrives with the list pipeline)",
                delivered.dmarc.policy.as_str()
            );
        }
        println!();
    }
    println!(
        "Verify any message yourself: arclist verify --zone FILE.zone message.eml (see README.md)."
    );
    Ok(ExitCode::SUCCESS)
}
