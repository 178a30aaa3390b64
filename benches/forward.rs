//! Forwarding throughput: 2,000 DKIM-signed messages of 4.7 KB from an author domain
//! publishing DMARC p=reject, sent by 20 concurrent clients to 20 one-target aliases, timed from
//! the first connection until the last copy reached the targets' server (a loopback SMTP sink).
//!
//! arclist runs as its own `arclist serve` process: it authenticates each message (SPF, DKIM,
//! DMARC through the in-process DNS server), seals one ARC set, rewrites the envelope sender
//! with SRS and delivers. In the same run, Postfix (Debian's, a private instance made by
//! benches/postfix-instance.sh; needs root) forwards the same messages with virtual aliases and
//! Debian's postsrsd for SRS (no authentication, no ARC: Postfix does neither), to the same
//! sink. Rounds alternate between the two; the median of each is printed, and the ratio.
//! Every copy's envelope sender is checked to be SRS0, and arclist's to carry one ARC set.
//!
//! `cargo bench --bench forward` (3 rounds), `-- --quick` for one. ARCLIST_BENCH_NO_POSTFIX=1
//! measures arclist alone.

mod support;

use arclist::auth::dkim::DkimSigner;
use arclist::auth::dns::{LoopbackDnsServer, Mx, Zone, ZoneRecord};
use arclist::auth::signing_key::SigningKey;
use arclist_testbed::sink::Sink;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::free_port;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const CLIENTS: usize = 20;
const MESSAGES: usize = 2000;
const SECRET: &str = "bench-srs-secret";

fn alias(client: usize) -> String {
    format!("user{client}@corp.test")
}

fn target(client: usize) -> String {
    format!("t{client}@target.test")
}

/// The messages, DKIM-signed by bank.test before the clock starts: client by client.
fn messages(bank: &Arc<SigningKey>, round: &str) -> Vec<Vec<Vec<u8>>> {
    let signer = DkimSigner::new(bank.clone(), "bank.test", "k");
    let now = arclist::auth::unix_now();
    (0..CLIENTS)
        .map(|c| {
            (0..MESSAGES / CLIENTS)
                .map(|seq| {
                    let mut m = format!(
                        "From: Alice <alice@bank.test>\r\nTo: {}\r\nSubject: statement {c}/{seq}\r\n\
                         Date: Mon, 30 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{round}.{c}.{seq}@bank.test>\r\n\
                         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n",
                        alias(c)
                    )
                    .into_bytes();
                    while m.len() < 4400 {
                        m.extend_from_slice(
                            b"A line of a statement, as a bank sends them to its customers.\r\n",
                        );
                    }
                    let sig = signer.sign(&m, now).expect("DKIM signature");
                    [sig.as_bytes(), &m].concat()
                })
                .collect()
        })
        .collect()
}

/// One client: its messages down one connection, each waiting for its 250.
async fn client(addr: SocketAddr, c: usize, messages: Vec<Vec<u8>>) {
    let stream = TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let mut io = BufReader::new(stream);
    support::expect(&mut io, "220").await;
    io.get_mut()
        .write_all(b"EHLO mx.bank.test\r\n")
        .await
        .expect("write");
    support::expect(&mut io, "250").await;
    for m in messages {
        let head = format!(
            "MAIL FROM:<alice@bank.test>\r\nRCPT TO:<{}>\r\nDATA\r\n",
            alias(c)
        );
        io.get_mut()
            .write_all(head.as_bytes())
            .await
            .expect("write");
        support::expect(&mut io, "250").await;
        support::expect(&mut io, "250").await;
        support::expect(&mut io, "354").await;
        let data = arclist::stages::smtp::wire::dot_stuff(&m);
        io.get_mut().write_all(&data).await.expect("write");
        support::expect(&mut io, "250").await;
    }
    let _ = io.get_mut().write_all(b"QUIT\r\n").await;
}

/// Messages per second from the first connection to the last copy at the sink.
async fn round(addr: SocketAddr, sink: &Sink, messages: Vec<Vec<Vec<u8>>>, who: &str) -> f64 {
    let before = sink.messages.load(std::sync::atomic::Ordering::Relaxed);
    let start = Instant::now();
    let mut clients = tokio::task::JoinSet::new();
    for (c, m) in messages.into_iter().enumerate() {
        clients.spawn(client(addr, c, m));
    }
    while let Some(done) = clients.join_next().await {
        done.expect("client");
    }
    let deadline = Instant::now() + Duration::from_secs(600);
    while sink.messages.load(std::sync::atomic::Ordering::Relaxed) < before + MESSAGES {
        assert!(
            Instant::now() < deadline,
            "{who}: not every copy arrived in 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    MESSAGES as f64 / start.elapsed().as_secs_f64()
}

/// Checks what the sink got since `from`: every envelope sender SRS0 at corp.test and, for
/// arclist, one ARC set in every copy.
fn check(sink: &Sink, from: usize, sealed: bool, who: &str) {
    let got = sink.received.lock().expect("sink");
    for (mail_from, _, data) in got.iter().skip(from) {
        assert!(
            mail_from.starts_with("SRS0=") && mail_from.ends_with("=bank.test=alice@corp.test"),
            "{who}: envelope sender {mail_from}"
        );
        if sealed {
            let text = String::from_utf8_lossy(data);
            assert_eq!(text.matches("ARC-Seal:").count(), 1, "{who}: one ARC set");
        }
    }
}

/// arclist's files: the server, one forwarding domain with 20 aliases, its key and secret.
fn arclist_files(dir: &Path, dns: SocketAddr, listen: &str, sink_port: u16, fwd_pem: &str) {
    std::fs::create_dir_all(dir.join("forwards")).expect("forwards dir");
    std::fs::create_dir_all(dir.join("keys")).expect("keys dir");
    std::fs::write(
        dir.join("server.toml"),
        format!(
            "hostname = \"mx.corp.test\"\nlisten = [\"{listen}\"]\nstore = \"var/store.redb\"\n\
             forwards_dir = \"forwards\"\n[dns]\nnameservers = [\"{dns}\"]\ntimeout_secs = 5\n\
             [limits]\nmax_connections_per_ip = 1000\n[delivery]\nport = {sink_port}\ntimeout_secs = 30\n"
        ),
    )
    .expect("server.toml");
    let aliases: String = (0..CLIENTS)
        .map(|c| format!("user{c} = [\"{}\"]\n", target(c)))
        .collect();
    std::fs::write(
        dir.join("forwards/corp.toml"),
        format!(
            "domain = \"corp.test\"\n# A throughput bench: no sender quota.\nmax_messages_per_sender_per_hour = 0\n[aliases]\n{aliases}[signing]\nselector = \"fwd\"\n\
             key = \"../keys/fwd.pem\"\n[srs]\nsecret_file = \"../keys/srs.secret\"\n"
        ),
    )
    .expect("forwarding file");
    private_file(&dir.join("keys/fwd.pem"), fwd_pem);
    private_file(&dir.join("keys/srs.secret"), &format!("{SECRET}\n"));
}

fn private_file(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).expect("write");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

/// Postfix forwarding the same aliases with postsrsd: the instance and postsrsd, or `None`
/// when Postfix cannot run here.
struct PostfixPeer {
    dir: tempfile::TempDir,
    port: u16,
    postsrsd: Child,
}

impl PostfixPeer {
    fn start(sink_port: u16) -> Option<PostfixPeer> {
        let dir = tempfile::tempdir().expect("tempdir");
        let secret = dir.path().join("srs.secret");
        private_file(&secret, &format!("{SECRET}\n"));
        let (forward, reverse) = (free_port("127.0.0.1"), free_port("127.0.0.1"));
        let postsrsd = Command::new("/usr/sbin/postsrsd")
            .arg(format!("-s{}", secret.display()))
            .args(["-dcorp.test", "-l127.0.0.1", "-4"])
            .arg(format!("-f{forward}"))
            .arg(format!("-r{reverse}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let transport = dir.path().join("transport");
        std::fs::write(
            &transport,
            format!("target.test smtp:[127.0.0.1]:{sink_port}\n"),
        )
        .expect("transport");
        let virtual_map = dir.path().join("virtual");
        let aliases: String = (0..CLIENTS)
            .map(|c| format!("{} {}\n", alias(c), target(c)))
            .collect();
        std::fs::write(&virtual_map, aliases).expect("virtual");
        let extra = format!(
            "virtual_alias_domains = corp.test\nvirtual_alias_maps = texthash:{}\n\
             sender_canonical_maps = tcp:127.0.0.1:{forward}\nsender_canonical_classes = envelope_sender\n\
             recipient_canonical_maps = tcp:127.0.0.1:{reverse}\nrecipient_canonical_classes = envelope_recipient\n",
            virtual_map.display()
        );
        let port = free_port("127.0.0.1");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/postfix-instance.sh");
        let started = Command::new("bash")
            .arg(script)
            .arg("start")
            .arg(dir.path().join("postfix"))
            .arg(port.to_string())
            .arg(&transport)
            .env("POSTFIX_EXTRA", extra)
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        let mut peer = PostfixPeer {
            dir,
            port,
            postsrsd,
        };
        if !started {
            peer.stop();
            return None;
        }
        Some(peer)
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn stop(&mut self) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/postfix-instance.sh");
        let _ = Command::new("bash")
            .arg(script)
            .arg("stop")
            .arg(self.dir.path().join("postfix"))
            .arg(self.port.to_string())
            .stdout(Stdio::null())
            .status();
        let _ = self.postsrsd.kill();
        let _ = self.postsrsd.wait();
    }
}

/// The zone: bank.test signs with DKIM, passes SPF from loopback and publishes p=reject;
/// corp.test's sealing key; target.test's MX is the sink.
fn zone(bank: &SigningKey, fwd: &SigningKey) -> Zone {
    let mut z = Zone::new();
    z.add_txt(
        "k._domainkey.bank.test",
        &bank.dns_record().expect("record"),
    );
    z.add_txt(
        "fwd._domainkey.corp.test",
        &fwd.dns_record().expect("record"),
    );
    z.add_txt("bank.test", "v=spf1 ip4:127.0.0.0/8 -all");
    z.add_txt("_dmarc.bank.test", "v=DMARC1; p=reject");
    z.add_txt("corp.test", "v=spf1 ip4:127.0.0.1 -all");
    z.add(
        "target.test",
        ZoneRecord::Mx(Mx {
            preference: 10,
            exchange: "mx.target.test".into(),
        }),
    );
    z.add(
        "mx.target.test",
        ZoneRecord::A("127.0.0.1".parse().expect("ip")),
    );
    z
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let rounds = if std::env::args().any(|a| a == "--quick") {
        1
    } else {
        3
    };
    let with_postfix = std::env::var_os("ARCLIST_BENCH_NO_POSTFIX").is_none()
        && Path::new("/usr/sbin/postfix").exists()
        && Path::new("/usr/sbin/postsrsd").exists();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let (bank, _) = SigningKey::generate_rsa2048().expect("key");
        let bank = Arc::new(bank);
        let (fwd, fwd_pem) = SigningKey::generate_rsa2048().expect("key");
        let dns = LoopbackDnsServer::start(zone(&bank, &fwd)).await.expect("dns");
        let (sink, sink_addr) = Sink::start().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let listen = format!("127.0.0.1:{}", free_port("127.0.0.1"));
        arclist_files(dir.path(), dns.addr(), &listen, sink_addr.port(), &fwd_pem);
        let addr: SocketAddr = listen.parse().expect("addr");
        let mut arclist = support::serve(&dir.path().join("server.toml"), addr).await;
        let mut postfix = if with_postfix { PostfixPeer::start(sink_addr.port()) } else { None };
        println!(
            "Forwarding: {MESSAGES} DKIM-signed messages of 4.7 KB (author domain p=reject) from \
             {CLIENTS} clients to {CLIENTS} one-target aliases, until the last copy arrived; {rounds} round(s), alternating"
        );
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        let mut cpu_per_message = Vec::new();
        for r in 0..rounds {
            let from = sink.received.lock().expect("sink").len();
            let cpu = support::cpu_time(arclist.id());
            ours.push(round(addr, &sink, messages(&bank, &format!("a{r}")), "arclist").await);
            cpu_per_message.push(
                (support::cpu_time(arclist.id()) - cpu).as_secs_f64() * 1e3 / MESSAGES as f64,
            );
            check(&sink, from, true, "arclist");
            if let Some(peer) = &postfix {
                let from = sink.received.lock().expect("sink").len();
                theirs.push(round(peer.addr(), &sink, messages(&bank, &format!("p{r}")), "postfix").await);
                check(&sink, from, false, "postfix");
            }
        }
        let peak = support::memory_kib(arclist.id(), "VmHWM");
        let ours = median(ours);
        println!(
            "  arclist serve (verify, ARC seal, SRS, deliver) {ours:>7.0} messages/s, {:.2} ms CPU a message, peak RSS {} MiB",
            median(cpu_per_message),
            peak / 1024
        );
        match (postfix.as_mut(), theirs.is_empty()) {
            (Some(peer), false) => {
                let theirs = median(theirs);
                println!("  postfix + postsrsd (virtual alias, SRS)        {theirs:>7.0} messages/s");
                println!("  ratio arclist / postfix                        {:>7.2}", ours / theirs);
                peer.stop();
            }
            _ => println!(
                "  postfix: not measured (needs root, Debian's postfix and postsrsd, or ARCLIST_BENCH_NO_POSTFIX is set)"
            ),
        }
        let _ = arclist.kill();
        let _ = arclist.wait();
    });
}
