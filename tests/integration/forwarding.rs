//! Forwarding aliases end to end over real sockets: the listener, the in-process DNS server,
//! loopback sinks for the targets' mail servers, dkimpy as a second opinion, and Debian's
//! postsrsd for SRS.

use crate::smtp_support::{Client, TestServer};
use crate::support::{dkimpy, rsa_key};
use arclist::auth::dkim::DkimSigner;
use arclist::auth::dns::{Mx, ZoneRecord};
use arclist::auth::{Envelope, unix_now};
use arclist::stages::forward::srs::Srs;
use arclist::state::store::SpoolState;
use arclist_testbed::sink::Sink;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

pub(crate) const SECRET: &str = "tops3cret-for-the-tests";
pub(crate) const TARGETS: [&str; 5] = [
    "ann@gmail.test",
    "bob@outlook.test",
    "cat@gmail.test",
    "dan@outlook.test",
    "eve@gmail.test",
];

pub(crate) struct World {
    pub(crate) t: TestServer,
    pub(crate) sink: Sink,
    bank: std::sync::Arc<arclist::auth::signing_key::SigningKey>,
    _keys: tempfile::TempDir,
}

async fn world() -> World {
    world_with("").await
}

/// As `world`, with `extra` among the forwarding file's top-level settings.
async fn world_with(extra: &str) -> World {
    world_files(extra, "").await
}

/// As `world_with`, with `srs_extra` in the forwarding file's `[srs]` table.
pub(crate) async fn world_files(extra: &str, srs_extra: &str) -> World {
    world_server(extra, srs_extra, "").await
}

/// As `world_files`, with `server_extra` (tables) at the end of the server file.
pub(crate) async fn world_server(extra: &str, srs_extra: &str, server_extra: &str) -> World {
    world_top(extra, srs_extra, server_extra, "").await
}

/// As `world_server`, with `top` (top-level settings) at the start of the server file.
pub(crate) async fn world_top(
    extra: &str,
    srs_extra: &str,
    server_extra: &str,
    top: &str,
) -> World {
    let (sink, sink_addr) = Sink::start().await;
    let t = TestServer::start_prepared(
        &format!(
            "[delivery]\nport = {}\ntimeout_secs = 2\n{server_extra}",
            sink_addr.port()
        ),
        "",
        |dir| {
            let server = dir.join("server.toml");
            let text = std::fs::read_to_string(&server).expect("server.toml");
            std::fs::write(&server, format!("{top}forwards_dir = \"forwards\"\n{text}"))
                .expect("server.toml");
            std::fs::create_dir_all(dir.join("forwards")).expect("forwards dir");
            std::fs::create_dir_all(dir.join("keys")).expect("keys dir");
            std::fs::write(dir.join("keys/srs.secret"), format!("{SECRET}\n")).expect("secret");
            std::fs::write(
                dir.join("forwards/corp.toml"),
                format!(
                    "domain = \"corp.test\"\n{extra}\n[aliases]\nsales = {TARGETS:?}\n\
                     small = {{ targets = [\"ann@gmail.test\"], max_size = 2000 }}\n\
                     [signing]\nselector = \"fwd\"\nkey = \"../keys/fwd.pem\"\ncreate_key = true\n\
                     [srs]\nsecret_file = \"../keys/srs.secret\"\n{srs_extra}\n"
                ),
            )
            .expect("forwarding file");
        },
    )
    .await;
    let key =
        arclist::auth::signing_key::SigningKey::from_pem_file(&t.dir.path().join("keys/fwd.pem"))
            .expect("sealing key was created");
    t.dns.publish_key("fwd", "corp.test", &key);
    let keys = tempfile::tempdir().expect("tempdir");
    let (bank, _) = rsa_key(keys.path(), "bank");
    t.dns.publish_key("k", "bank.test", &bank);
    t.dns.server.with_zone(|z| {
        for domain in ["gmail.test", "outlook.test", "bank.test"] {
            z.add(
                domain,
                ZoneRecord::Mx(Mx {
                    preference: 10,
                    exchange: "mx.sink.test".into(),
                }),
            );
        }
        z.add(
            "mx.sink.test",
            ZoneRecord::A("127.0.0.1".parse().expect("ip")),
        );
        z.add_txt("bank.test", "v=spf1 ip4:127.0.0.21 -all");
        z.add_txt("_dmarc.bank.test", "v=DMARC1; p=reject");
        z.add_txt("corp.test", "v=spf1 ip4:127.0.0.1 -all");
    });
    World {
        t,
        sink,
        bank,
        _keys: keys,
    }
}

pub(crate) fn letter(subject: &str) -> Vec<u8> {
    format!(
        "From: Alice <alice@bank.test>\r\nTo: sales@corp.test\r\nSubject: {subject}\r\n\
         Date: Sun, 22 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{subject}@bank.test>\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nPlease quote 40 units.\r\n"
    )
    .into_bytes()
}

impl World {
    pub(crate) fn signed(&self, message: &[u8]) -> Vec<u8> {
        let sig = DkimSigner::new(self.bank.clone(), "bank.test", "k")
            .sign(message, unix_now())
            .expect("sign");
        [sig.as_bytes(), message].concat()
    }

    /// Sends over SMTP from `source`; the reply to the data.
    pub(crate) async fn send(
        &self,
        source: &str,
        mail_from: &str,
        rcpt: &str,
        message: &[u8],
    ) -> (u16, String) {
        let (mut c, _) = Client::connect_from(self.t.smtp(), source).await;
        assert_eq!(c.cmd("EHLO mx.sender.test").await.0, 250);
        c.post(mail_from, rcpt, message).await
    }

    /// Waits for `address`'s inbox to hold `n` messages; their (envelope sender, bytes).
    pub(crate) async fn inbox(&self, address: &str, n: usize) -> Vec<(String, Vec<u8>)> {
        // 20 s, as `until` waits: a forward, a refusal and its notice may come one after another.
        for _ in 0..800 {
            let got: Vec<(String, Vec<u8>)> = self
                .sink
                .received
                .lock()
                .expect("lock")
                .iter()
                .filter(|(_, r, _)| r == address)
                .map(|(f, _, d)| (f.clone(), d.clone()))
                .collect();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("{address} did not receive {n} message(s)");
    }
}

pub(crate) fn id_of(reply: &str) -> u64 {
    reply
        .trim()
        .rsplit(' ')
        .next()
        .and_then(|id| id.parse().ok())
        .expect("queue id")
}

/// postsrsd (Debian's) on loopback with our secret and forwarding domain.
struct PostSrsd {
    child: std::process::Child,
    forward: u16,
    reverse: u16,
}

impl PostSrsd {
    fn start(secret_file: &std::path::Path) -> PostSrsd {
        let port = crate::postgres::free_port;
        let (forward, reverse) = (port(), port());
        // Debian puts it in /usr/sbin, which a non-root PATH may lack.
        let program = if std::path::Path::new("/usr/sbin/postsrsd").exists() {
            "/usr/sbin/postsrsd"
        } else {
            "postsrsd"
        };
        let mut child = std::process::Command::new(program)
            .arg(format!("-s{}", secret_file.display()))
            .args(["-dcorp.test", "-l127.0.0.1", "-4"])
            .arg(format!("-f{forward}"))
            .arg(format!("-r{reverse}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("postsrsd runs (CI installs Debian's postsrsd)");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", reverse)).is_ok() {
                return PostSrsd {
                    child,
                    forward,
                    reverse,
                };
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("postsrsd did not start");
    }

    /// One Postfix tcp_table lookup: `get KEY` answered `200 VALUE` or an error code.
    async fn lookup(port: u16, key: &str) -> String {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        let mut io = BufReader::new(stream);
        io.get_mut()
            .write_all(format!("get {key}\n").as_bytes())
            .await
            .expect("write");
        let mut line = String::new();
        io.read_line(&mut line).await.expect("read");
        line.trim_end().replace("%40", "@").replace("%3D", "=")
    }
}

impl Drop for PostSrsd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_p_reject_author_reaches_five_targets_untouched_sealed_once_with_srs() {
    let w = world().await;
    let original = w.signed(&letter("quote"));
    let (code, text) = w
        .send(
            "127.0.0.21",
            "alice@bank.test",
            "sales@corp.test",
            &original,
        )
        .await;
    assert_eq!(code, 250, "{text}");
    let meta = w.t.settled(id_of(&text)).await;
    assert_eq!(meta.state, SpoolState::Queued, "{:?}", meta.note);

    let mut copies = Vec::new();
    for target in TARGETS {
        let got = w.inbox(target, 1).await;
        assert_eq!(got.len(), 1, "{target} got it once");
        copies.push(got.into_iter().next().expect("one"));
    }
    let (sender, copy) = copies[0].clone();
    // One seal for five targets: every copy is the same bytes, carrying one ARC set.
    assert!(copies.iter().all(|(s, c)| *s == sender && *c == copy));
    let text_copy = String::from_utf8(copy.clone()).expect("utf-8");
    assert_eq!(text_copy.matches("ARC-Seal:").count(), 1, "{text_copy}");
    // Untouched: the original is the copy's tail, byte for byte (From, Subject, body).
    assert!(copy.ends_with(&original), "the message itself is unchanged");
    assert!(text_copy.contains("Delivered-To: sales@corp.test\r\n"));
    // SRS0 in the forwarding domain, reversible to the author.
    assert!(
        sender.starts_with("SRS0=") && sender.ends_with("=bank.test=alice@corp.test"),
        "{sender}"
    );
    let srs = Srs::new(vec![SECRET.as_bytes().to_vec()], "corp.test", 21);
    assert_eq!(
        srs.reverse(&sender, unix_now()),
        Ok("alice@bank.test".into())
    );

    // What Gmail would see: our IP, the SRS sender. SPF passes for corp.test, the author's
    // DKIM still verifies so DMARC passes, and the ARC chain we started passes.
    let receiver = Envelope {
        ip: "127.0.0.1".parse().expect("ip"),
        helo: "mx.arclist.test".into(),
        mail_from: sender.clone(),
    };
    let v =
        w.t.dns
            .authenticator()
            .verify(&copy, Some(&receiver), unix_now())
            .await;
    assert_eq!(v.arc.verdict.as_str(), "pass", "{}", v.arc.reason);
    assert_eq!(v.dmarc.verdict.as_str(), "pass", "{}", v.dmarc.reason);
    assert_eq!(v.spf.as_ref().map(|s| s.mail_from.as_str()), Some("pass"));
    let arc: serde_json::Value =
        serde_json::from_slice(&dkimpy(&w.t.dns, &["arc-verify"], &copy).await).expect("json");
    assert_eq!(arc["cv"], "pass", "dkimpy ARC: {}", arc["detail"]);
    let dkim: serde_json::Value =
        serde_json::from_slice(&dkimpy(&w.t.dns, &["dkim-verify"], &copy).await).expect("json");
    assert_eq!(
        dkim["pass"], true,
        "dkimpy: the author's DKIM still verifies"
    );
    // The AAR records what we saw on arrival: the author's DKIM and DMARC passed.
    assert!(
        text_copy.contains("dkim=pass") && text_copy.contains("dmarc=pass"),
        "{text_copy}"
    );

    // A bounce to the SRS address goes back to the author, as it came under our trace and seal.
    let dsn = crate::list_pipeline::dsn(
        &sender,
        "ann@gmail.test",
        "5.1.1",
        "550 5.1.1 ann: no such user",
    );
    let (code, text) = w.send("127.0.0.1", "", &sender, &dsn).await;
    assert_eq!(code, 250, "{text}");
    let back = w.inbox("alice@bank.test", 1).await;
    assert_eq!(back[0].0, "", "returned with the null sender");
    assert!(back[0].1.ends_with(&dsn), "the report itself is unchanged");

    // Anything but a bounce to the SRS address is refused: a spoof is never relayed unsealed.
    let (mut c, _) = Client::connect_from(w.t.smtp(), "127.0.0.66").await;
    assert_eq!(c.cmd("EHLO spoofer.invalid").await.0, 250);
    assert_eq!(c.cmd("MAIL FROM:<ceo@bank.test>").await.0, 250);
    let (code, text) = c.cmd(&format!("RCPT TO:<{sender}>")).await;
    assert_eq!(code, 550, "{text}");
    assert!(text.contains("only bounces"), "{text}");
    drop(c);

    // Forged and expired SRS addresses are refused at RCPT, never relayed.
    let forged = sender.replacen("=alice@", "=mallory@", 1);
    let (mut c, _) = Client::connect(w.t.smtp()).await;
    assert_eq!(c.cmd("EHLO x").await.0, 250);
    assert_eq!(c.cmd("MAIL FROM:<>").await.0, 250);
    let (code, text) = c.cmd(&format!("RCPT TO:<{forged}>")).await;
    assert_eq!(code, 550, "{text}");
    assert!(text.contains("hash"), "{text}");
    let old = srs.forward("alice@bank.test", unix_now() - 30 * 86_400);
    let (code, text) = c.cmd(&format!("RCPT TO:<{old}>")).await;
    assert_eq!(code, 550, "{text}");
    assert!(text.contains("expired"), "{text}");
    // And a recipient of another kind waits for its own transaction.
    assert_eq!(c.cmd("RSET").await.0, 250);
    assert_eq!(c.cmd("MAIL FROM:<alice@bank.test>").await.0, 250);
    assert_eq!(c.cmd("RCPT TO:<sales@corp.test>").await.0, 250);
    let (code, text) = c
        .cmd(&format!("RCPT TO:<{}>", crate::smtp_support::LIST))
        .await;
    assert_eq!(code, 452, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spoofs_oversize_mail_and_loops_are_refused_before_250() {
    let w = world().await;
    // Not signed, from an IP outside bank.test's SPF: DMARC fails, and bank.test says reject.
    let (code, text) = w
        .send(
            "127.0.0.66",
            "alice@bank.test",
            "sales@corp.test",
            &letter("spoof"),
        )
        .await;
    assert_eq!(code, 550, "{text}");
    assert!(
        text.contains("5.7.1") && text.contains("bank.test"),
        "{text}"
    );
    // Over the alias's own size limit.
    let big = w.signed(&[letter("big"), vec![b'x'; 3000], b"\r\n".to_vec()].concat());
    let (code, text) = w
        .send("127.0.0.21", "alice@bank.test", "small@corp.test", &big)
        .await;
    assert_eq!(code, 552, "{text}");
    // Already forwarded by us for this alias (it came back round).
    let looped = w.signed(
        &[
            b"Delivered-To: sales@corp.test\r\n".to_vec(),
            letter("loop"),
        ]
        .concat(),
    );
    let (code, text) = w
        .send("127.0.0.21", "alice@bank.test", "sales@corp.test", &looped)
        .await;
    assert_eq!(code, 554, "{text}");
    assert!(text.contains("loop"), "{text}");
    // Nothing of it was spooled, so nothing can leak out later.
    assert!(w.t.spool().await.is_empty());
    assert!(w.sink.received.lock().expect("lock").is_empty());
    // An unknown alias is not served at all.
    let (mut c, _) = Client::connect(w.t.smtp()).await;
    assert_eq!(c.cmd("EHLO x").await.0, 250);
    assert_eq!(c.cmd("MAIL FROM:<alice@bank.test>").await.0, 250);
    assert_eq!(c.cmd("RCPT TO:<nobody@corp.test>").await.0, 550);
    let store = w.t.server.store();
    assert!(store.queue().await.expect("queue").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn srs_addresses_agree_with_postsrsd_both_ways() {
    let dir = tempfile::tempdir().expect("tempdir");
    let secret_file = dir.path().join("srs.secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).expect("secret");
    let postsrsd = PostSrsd::start(&secret_file);
    let ours = Srs::new(vec![SECRET.as_bytes().to_vec()], "corp.test", 21);
    let now = unix_now();
    for sender in [
        "alice@bank.test",
        "Bob.Smith@Example.ORG",
        "x+tag@sub.domain.test",
    ] {
        let mine = ours.forward(sender, now);
        let theirs = PostSrsd::lookup(postsrsd.forward, sender).await;
        assert_eq!(theirs, format!("200 {mine}"), "forward of {sender}");
        let back = PostSrsd::lookup(postsrsd.reverse, &mine).await;
        assert_eq!(back, format!("200 {sender}"), "postsrsd reverses ours");
    }
    // SRS1: a sender already rewritten by another forwarder.
    let other = Srs::new(vec![b"elsewhere".to_vec()], "relay.test", 21);
    let srs0 = other.forward("alice@bank.test", now);
    let mine = ours.forward(&srs0, now);
    assert!(mine.starts_with("SRS1="), "{mine}");
    assert_eq!(
        PostSrsd::lookup(postsrsd.forward, &srs0).await,
        format!("200 {mine}")
    );
    let back = PostSrsd::lookup(postsrsd.reverse, &mine).await;
    assert_eq!(
        back.to_ascii_lowercase(),
        format!("200 {}", srs0.to_ascii_lowercase())
    );
    // A forged one is refused by both.
    let forged = ours
        .forward("alice@bank.test", now)
        .replacen("=alice@", "=eve@", 1);
    assert!(ours.reverse(&forged, now).is_err());
    assert!(
        !PostSrsd::lookup(postsrsd.reverse, &forged)
            .await
            .starts_with("200")
    );
}

#[test]
fn forward_add_ls_remove_from_the_command_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    crate::smtp_support::write_config(dir.path(), "127.0.0.1:53", "127.0.0.1:0", "");
    let server = dir.path().join("server.toml");
    let text = std::fs::read_to_string(&server).expect("server.toml");
    std::fs::write(&server, format!("forwards_dir = \"forwards\"\n{text}")).expect("write");
    std::fs::create_dir_all(dir.path().join("forwards")).expect("dir");
    std::fs::write(
        dir.path().join("forwards/corp.toml"),
        "domain = \"corp.test\"\n[aliases]\nsales = [\"ann@gmail.test\"]\n[signing]\nselector = \"fwd\"\n\
         key = \"fwd.pem\"\ncreate_key = true\n[srs]\nsecret_file = \"srs.secret\"\ncreate_secret = true\n",
    )
    .expect("forwarding file");
    let run = |args: &[&str]| crate::support::arclist_cli(&server, args);
    let (ok, text) = run(&["forward", "add", "Alice@corp.test", "alice@home.test"]);
    assert!(ok, "{text}");
    let (ok, text) = run(&["forward", "add", "x@elsewhere.test", "a@b.test"]);
    assert!(!ok && text.contains("not a forwarding domain"), "{text}");
    let (ok, text) = run(&["forward", "add", "y@corp.test", "not an address"]);
    assert!(!ok && text.contains("not an email address"), "{text}");
    // The file's alias wins; adding one of the same name to the store would have no effect.
    let (ok, text) = run(&["forward", "add", "Sales@corp.test", "eve@evil.test"]);
    assert!(
        !ok && text.contains("is set in") && text.contains("corp.toml"),
        "{text}"
    );
    let (ok, text) = run(&["forward", "ls"]);
    assert!(ok, "{text}");
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        vec![
            "sales@corp.test\tann@gmail.test\t(file)",
            "alice@corp.test\talice@home.test\t(store)"
        ]
    );
    let (ok, text) = run(&["check-config"]);
    assert!(ok && text.contains("forwarding corp.test"), "{text}");
    // A store alias that a file came to set later is listed as unused.
    std::fs::write(
        dir.path().join("forwards/corp.toml"),
        "domain = \"corp.test\"\n[aliases]\nsales = [\"ann@gmail.test\"]\nalice = [\"al@work.test\"]\n\
         [signing]\nselector = \"fwd\"\nkey = \"fwd.pem\"\ncreate_key = true\n[srs]\nsecret_file = \"srs.secret\"\ncreate_secret = true\n",
    )
    .expect("forwarding file");
    let (ok, text) = run(&["forward", "ls"]);
    assert!(ok, "{text}");
    assert!(
        text.contains("alice@corp.test\talice@home.test\t(store, unused: ")
            && text.contains("corp.toml sets it)"),
        "{text}"
    );
    // Unknown keys are errors naming the file and line, at the top and in an alias.
    let good = std::fs::read_to_string(dir.path().join("forwards/corp.toml")).expect("read");
    for (bad, key, line) in [
        (
            good.replacen("[aliases]", "max_hop = 3\n[aliases]", 1),
            "max_hop",
            2,
        ),
        (
            good.replacen(
                "sales = [\"ann@gmail.test\"]",
                "sales = { targets = [\"ann@gmail.test\"], max_sise = 5 }",
                1,
            ),
            "max_sise",
            3,
        ),
    ] {
        std::fs::write(dir.path().join("forwards/corp.toml"), bad).expect("write");
        let (ok, text) = run(&["check-config"]);
        assert!(!ok, "{text}");
        assert!(
            text.contains(&format!("corp.toml:{line}")) && text.contains(key),
            "{text}"
        );
    }
    std::fs::write(dir.path().join("forwards/corp.toml"), good).expect("restore");
    let (ok, _) = run(&["forward", "remove", "alice@corp.test"]);
    assert!(ok);
    let (ok, text) = run(&["forward", "remove", "alice@corp.test"]);
    assert!(!ok && text.contains("not an alias"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_forwarders_arc_chain_lets_a_broken_signature_through_and_an_untrusted_one_does_not()
 {
    let w = world_with("trusted_sealers = [\"relay.test\"]").await;
    let keys = tempfile::tempdir().expect("tempdir");
    for sealer in ["relay", "shady"] {
        let (key, _) = rsa_key(keys.path(), sealer);
        w.t.dns.publish_key("arc", &format!("{sealer}.test"), &key);
    }
    w.t.dns.server.with_zone(|z| {
        z.add_txt("relay.test", "v=spf1 ip4:127.0.0.23 -all");
        z.add_txt("shady.test", "v=spf1 ip4:127.0.0.24 -all");
    });
    let sealed =
        crate::support::forwarded_by(&w.t.dns, keys.path(), "relay", &w.signed(&letter("relay")))
            .await;
    let (code, text) = w
        .send("127.0.0.23", "fwd@relay.test", "sales@corp.test", &sealed)
        .await;
    assert_eq!(code, 250, "a trusted sealer vouches: {text}");
    let (_, copy) = w.inbox("ann@gmail.test", 1).await.remove(0);
    let copy = String::from_utf8(copy).expect("utf-8");
    assert!(
        copy.contains("policy.arc-override=\"relay.test:arc\"") && copy.contains("dmarc=fail"),
        "our AAR keeps the failure and names who vouched: {copy}"
    );
    assert_eq!(copy.matches("ARC-Seal:").count(), 2, "our set is i=2");
    let sealed =
        crate::support::forwarded_by(&w.t.dns, keys.path(), "shady", &w.signed(&letter("shady")))
            .await;
    let (code, text) = w
        .send("127.0.0.24", "fwd@shady.test", "sales@corp.test", &sealed)
        .await;
    assert_eq!(code, 550, "an untrusted sealer changes nothing: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipeline_forwards_on_the_sessions_verdict_without_verifying_again() {
    let w = world().await;
    let message = w.signed(&letter("Verified once"));
    let sender = Envelope {
        ip: "127.0.0.21".parse().expect("ip"),
        helo: "mx.bank.test".into(),
        mail_from: "alice@bank.test".into(),
    };
    // What the SMTP session's screen found, spooled with the message as the session does.
    let verdict =
        w.t.dns
            .authenticator()
            .verify(&message, Some(&sender), unix_now())
            .await;
    assert_eq!(
        verdict.dmarc.verdict,
        arclist::auth::dmarc::DmarcVerdict::Pass
    );
    let World { t, sink, .. } = w;
    let TestServer { dir, server, dns } = t;
    server.stop(Duration::from_secs(5)).await;
    let store = crate::smtp_support::open_store(dir.path()).await;
    let envelope = arclist::state::store::SpoolEnvelope {
        mail_from: sender.mail_from.clone(),
        rcpt_to: vec!["sales@corp.test".into()],
        client_ip: sender.ip,
        helo: sender.helo.clone(),
        protocol: "ESMTP".into(),
        tls: None,
        received_at: unix_now(),
        verdict: Some(Box::new(verdict)),
        filter: None,
        over_quota: None,
    };
    let id = store.spool(envelope, message).await.expect("spooled");
    drop(store);
    // From now on bank.test's DNS never answers: verifying again could only defer the message.
    for name in ["bank.test", "_dmarc.bank.test", "k._domainkey.bank.test"] {
        dns.server.hang(name);
    }
    let config =
        arclist::base::config::Config::load(Some(&dir.path().join("server.toml"))).expect("config");
    let server = arclist::assembly::server::Server::start(&config)
        .await
        .expect("restarts");
    let t = TestServer { dir, server, dns };
    let meta = t.settled(id).await;
    assert_eq!(meta.state, SpoolState::Queued, "{:?}", meta.note);
    assert!(
        meta.auth_results
            .as_deref()
            .is_some_and(|r| r.contains("dmarc=pass")),
        "{:?}",
        meta.auth_results
    );
    assert!(meta.envelope.verdict.is_none(), "dropped once used");
    crate::smtp_support::until("every target has its copy", async || {
        TARGETS.iter().all(|a| !sink.inbox(a).is_empty())
    })
    .await;
    assert!(TARGETS.iter().all(|a| sink.inbox(a).len() == 1));
}

impl World {
    /// Waits until every target of forwarded message `id` is settled (delivered or bounced).
    pub(crate) async fn finished(&self, id: u64) {
        let store = self.t.server.store();
        for _ in 0..800 {
            let entry = store.queue_entry(id).await.expect("queue entry");
            if entry.is_some_and(|e| e.summary.is_some()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("forwarded message {id} never finished");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_refuses_sends_the_original_sender_one_dsn_and_the_report_shows_it() {
    let w = world().await;
    w.sink.refuse(
        "bob@outlook.test",
        "550 5.1.1 <bob@outlook.test>: no such user",
    );
    w.sink
        .refuse("dan@outlook.test", "554 5.7.1 rejected by policy");
    let original = w.signed(&letter("refused"));
    let (code, text) = w
        .send(
            "127.0.0.21",
            "alice@bank.test",
            "sales@corp.test",
            &original,
        )
        .await;
    assert_eq!(code, 250, "{text}");
    let forwarded = id_of(&text);

    // One notification for the message, naming both targets, from the null sender.
    let back = w.inbox("alice@bank.test", 1).await;
    assert_eq!(back.len(), 1);
    let (sender, dsn) = &back[0];
    assert_eq!(sender, "", "a notification goes from the null sender");
    let dsn_text = String::from_utf8(dsn.clone()).expect("ascii");
    for needle in [
        "From: Mail Delivery System <MAILER-DAEMON@corp.test>",
        "To: <alice@bank.test>",
        "Auto-Submitted: auto-replied",
        "multipart/report; report-type=delivery-status",
        "Content-Type: message/delivery-status",
        "Reporting-MTA: dns; mx.arclist.test",
        "Final-Recipient: rfc822; bob@outlook.test\r\nAction: failed\r\nStatus: 5.1.1\r\n",
        "Diagnostic-Code: smtp; 550 5.1.1 <bob@outlook.test>: no such user",
        "Final-Recipient: rfc822; dan@outlook.test\r\nAction: failed\r\nStatus: 5.7.1\r\n",
        "Content-Type: text/rfc822-headers\r\n\r\nARC-Seal: i=1;",
        "\r\nDelivered-To: sales@corp.test\r\n",
        "Subject: refused\r\n",
    ] {
        assert!(
            dsn_text.contains(needle),
            "{needle:?} missing from:\n{dsn_text}"
        );
    }
    assert!(
        !dsn_text.contains("Please quote 40 units"),
        "only the header goes back"
    );
    // Signed by the forwarding domain, so the sender's DMARC check of it can pass; dkimpy agrees.
    let dkim: serde_json::Value =
        serde_json::from_slice(&dkimpy(&w.t.dns, &["dkim-verify"], dsn).await).expect("json");
    assert_eq!(dkim["pass"], true, "dkimpy on the notification: {dkim}");
    // The other three targets got the message.
    for target in ["ann@gmail.test", "cat@gmail.test", "eve@gmail.test"] {
        assert_eq!(w.inbox(target, 1).await.len(), 1);
    }

    // A bounce (null sender) to the alias that a target refuses is never answered.
    let bounce = b"From: MAILER-DAEMON@mx.other.test\r\nTo: sales@corp.test\r\nSubject: Undelivered\r\nMessage-ID: <b1@mx.other.test>\r\n\r\nyour mail failed\r\n";
    let (code, text) = w.send("127.0.0.21", "", "sales@corp.test", bounce).await;
    assert_eq!(code, 250, "{text}");
    w.finished(id_of(&text)).await;
    w.finished(forwarded).await;
    assert_eq!(
        w.inbox("alice@bank.test", 1).await.len(),
        1,
        "no notification for a null-sender message"
    );

    // The operator sees it: forwarded mail, who sent it, the bounces and the notification.
    let report = arclist::surfaces::operate::report::build(&w.t.server.store(), 0, None)
        .await
        .expect("report");
    let f = &report.forwarded;
    assert_eq!(f.domains.len(), 1, "{f:?}");
    let corp = &f.domains[0];
    assert_eq!(
        (
            corp.domain.as_str(),
            corp.messages,
            corp.forwarded,
            corp.dsns
        ),
        ("corp.test", 2, 2, 1),
        "{corp:?}"
    );
    let bank = f
        .senders
        .iter()
        .find(|s| s.domain == "bank.test")
        .expect("bank.test row");
    assert_eq!(bank.posts, 1, "{bank:?}");
    assert_eq!(bank.dmarc_policy, vec!["reject".to_string()]);
    let delivered: u64 = f.receivers.iter().map(|r| r.delivered).sum();
    let bounced: u64 = f.receivers.iter().map(|r| r.bounced).sum();
    let policy: u64 = f.receivers.iter().map(|r| r.policy_rejections).sum();
    assert_eq!((delivered, bounced, policy), (6, 4, 2), "{:?}", f.receivers);
    assert!(
        report.senders.is_empty(),
        "forwarded mail is not the lists' mail: {:?}",
        report.senders
    );
    let text = report.text();
    assert!(text.contains("Forwarded mail\n"), "{text}");
    assert!(text.contains("corp.test"), "{text}");

    // A sender nobody vouched for (no SPF pass, no DKIM signature of its domain) may be
    // forged: no notification goes to it, though its domain takes mail.
    w.t.dns.server.with_zone(|z| {
        z.add(
            "other.test",
            ZoneRecord::Mx(Mx {
                preference: 10,
                exchange: "mx.sink.test".into(),
            }),
        )
    });
    let unsigned = b"From: Someone <someone@other.test>\r\nTo: sales@corp.test\r\nSubject: unverified\r\nMessage-ID: <u1@other.test>\r\n\r\nhello\r\n";
    let (code, text) = w
        .send(
            "127.0.0.50",
            "someone@other.test",
            "sales@corp.test",
            unsigned,
        )
        .await;
    assert_eq!(code, 250, "{text}");
    w.finished(id_of(&text)).await;
    let dsns =
        w.t.server
            .store()
            .list()
            .await
            .expect("spool")
            .into_iter()
            .filter(|m| m.facts.bounce.as_deref() == Some("dsn"))
            .count();
    assert_eq!(dsns, 1, "no notification to an unverified sender");
    assert!(
        w.sink
            .received
            .lock()
            .expect("lock")
            .iter()
            .all(|(_, r, _)| r != "someone@other.test")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_signature_of_the_senders_domain_aims_no_dsn_at_another_local_part() {
    let w = world().await;
    w.sink
        .refuse("ann@gmail.test", "550 5.1.1 <ann@gmail.test>: no such user");
    // One genuine signature of bank.test (From alice@, i= the domain), replayed from a host
    // bank.test's SPF does not name, with another local part of bank.test as the envelope
    // sender: DMARC passes on the signature, so the alias forwards it, and its target refuses.
    let replayed = w.signed(&letter("replayed"));
    let (code, text) = w
        .send(
            "127.0.0.50",
            "victim@bank.test",
            "small@corp.test",
            &replayed,
        )
        .await;
    assert_eq!(code, 250, "{text}");
    let id = id_of(&text);
    w.finished(id).await;
    // The same signature with its own author as the envelope sender: the From is the sender
    // and DMARC passed for it, so that sender is told.
    let (code, text) = w
        .send(
            "127.0.0.50",
            "alice@bank.test",
            "small@corp.test",
            &replayed,
        )
        .await;
    assert_eq!(code, 250, "{text}");
    w.finished(id_of(&text)).await;
    let back = w.inbox("alice@bank.test", 1).await;
    assert!(
        String::from_utf8_lossy(&back[0].1).contains("report-type=delivery-status"),
        "the author's own notification"
    );
    let store = w.t.server.store();
    assert!(
        !store
            .get(id)
            .await
            .expect("spool")
            .expect("kept")
            .0
            .facts
            .sender_verified,
        "the domain's signature does not vouch for victim@"
    );
    let dsns: Vec<_> = (store.list().await.expect("spool").into_iter())
        .filter(|m| m.facts.bounce.as_deref() == Some("dsn"))
        .map(|m| m.envelope.rcpt_to)
        .collect();
    assert_eq!(dsns, vec![vec!["alice@bank.test".to_string()]], "{dsns:?}");
    assert!(
        w.sink
            .received
            .lock()
            .expect("lock")
            .iter()
            .all(|(_, r, _)| r != "victim@bank.test")
    );
}

/// `[delivery] forward_bind_address`: forwarded mail leaves from its own address while the
/// lists' keep `bind_address` (their test: `delivery::mail_leaves_from_the_bind_address`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_mail_leaves_from_the_forward_bind_address() {
    let w = world_server(
        "",
        "",
        "bind_address = \"127.0.0.2\"\nforward_bind_address = \"127.0.0.3\"\n",
    )
    .await;
    let (code, text) = w
        .send(
            "127.0.0.21",
            "alice@bank.test",
            "sales@corp.test",
            &w.signed(&letter("bound")),
        )
        .await;
    assert_eq!(code, 250, "{text}");
    for target in TARGETS {
        assert_eq!(w.inbox(target, 1).await.len(), 1, "{target} got it");
    }
    let peers = w.sink.peers.lock().expect("peers").clone();
    let from: std::net::IpAddr = "127.0.0.3".parse().expect("ip");
    assert!(
        !peers.is_empty() && peers.iter().all(|p| *p == from),
        "every forwarding connection from 127.0.0.3: {peers:?}"
    );
}
