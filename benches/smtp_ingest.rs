//! Accepted messages per second: 4 KB posts from 50 concurrent SMTP clients, every message
//! committed durably before its 250, for arclist and, in the same run, for Postfix's smtpd
//! into its own queue (Debian's postfix, a private instance on loopback set up by
//! benches/postfix-instance.sh; needs root). Prints each round, the medians and the ratio.
//! Each round starts on a settled machine (see `settle`): interleaved back to back, a round
//! paid for the other server's leftover queue work, and the ratio swung from 3.5 to 6.8 on
//! unchanged code.
//!
//! `cargo bench --bench smtp_ingest` (`-- --quick` for fewer messages). Set
//! ARCLIST_BENCH_NO_POSTFIX=1 to measure arclist alone.

use arclist::assembly::server::Server;
use arclist::auth::dns::{LoopbackDnsServer, Zone};
use arclist::base::config::Config;
use arclist::stages::smtp::Protocol;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const CLIENTS: usize = 50;
const RCPT: &str = "members@lists.arclist.test";

fn post(client: usize, seq: usize) -> Vec<u8> {
    let mut m = format!(
        "From: Author <a@author.arclist.test>\r\nTo: {RCPT}\r\nSubject: bench {client}/{seq}\r\n\
         Message-ID: <{client}.{seq}@bench.arclist.test>\r\n\r\n"
    )
    .into_bytes();
    while m.len() < 4096 {
        m.extend_from_slice(b"A line of a four kilobyte post, as lists carry them every day.\r\n");
    }
    m.extend_from_slice(b".\r\n");
    m
}

async fn expect(reader: &mut BufReader<TcpStream>, code: &str) -> Result<(), String> {
    loop {
        let mut line = String::new();
        if reader
            .read_line(&mut line)
            .await
            .map_err(|e| e.to_string())?
            == 0
        {
            return Err("connection closed".into());
        }
        if !line.starts_with(code) {
            return Err(format!("expected {code}, got {line:?}"));
        }
        if line.as_bytes().get(3) == Some(&b' ') {
            return Ok(());
        }
    }
}

async fn client(
    addr: SocketAddr,
    id: usize,
    count: usize,
    accepted: Arc<AtomicUsize>,
) -> Result<(), String> {
    let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut io = BufReader::new(stream);
    expect(&mut io, "220").await?;
    io.get_mut()
        .write_all(b"EHLO bench.arclist.test\r\n")
        .await
        .map_err(|e| e.to_string())?;
    expect(&mut io, "250").await?;
    for seq in 0..count {
        io.get_mut()
            .write_all(b"MAIL FROM:<a@author.arclist.test>\r\n")
            .await
            .map_err(|e| e.to_string())?;
        expect(&mut io, "250").await?;
        io.get_mut()
            .write_all(format!("RCPT TO:<{RCPT}>\r\n").as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        expect(&mut io, "250").await?;
        io.get_mut()
            .write_all(b"DATA\r\n")
            .await
            .map_err(|e| e.to_string())?;
        expect(&mut io, "354").await?;
        io.get_mut()
            .write_all(&post(id, seq))
            .await
            .map_err(|e| e.to_string())?;
        expect(&mut io, "250").await?;
        accepted.fetch_add(1, Ordering::Relaxed);
    }
    let _ = io.get_mut().write_all(b"QUIT\r\n").await;
    Ok(())
}

/// CPU jiffies (busy, all) since boot from /proc/stat; I/O wait counts as busy, since a
/// queue still being written to disk is work left over.
fn cpu_jiffies() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let all: u64 = fields.iter().sum();
    let idle = *fields.get(3)?;
    Some((all - idle, all))
}

/// Waits (at most a minute) until the machine is nearly idle: each server works through what
/// the previous round queued (arclist's pipeline, Postfix's queue manager and bounce daemon),
/// and a round must not pay for the other server's leftovers. Each side's own background work
/// during its round still counts against it.
async fn settle() {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut quiet = 0;
    while quiet < 2 && Instant::now() < deadline {
        let Some((busy0, all0)) = cpu_jiffies() else {
            tokio::time::sleep(Duration::from_secs(2)).await;
            return;
        };
        tokio::time::sleep(Duration::from_millis(250)).await;
        let Some((busy1, all1)) = cpu_jiffies() else {
            return;
        };
        let busy = (busy1 - busy0) as f64 / (all1 - all0).max(1) as f64;
        quiet = if busy < 0.15 { quiet + 1 } else { 0 };
    }
}

/// Messages per second accepted at `addr` from CLIENTS concurrent clients.
async fn load(addr: SocketAddr, total: usize) -> Result<f64, String> {
    let accepted = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for id in 0..CLIENTS {
        tasks.spawn(client(addr, id, total / CLIENTS, accepted.clone()));
    }
    while let Some(done) = tasks.join_next().await {
        done.map_err(|e| e.to_string())??;
    }
    Ok(accepted.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64())
}

async fn start_arclist(dir: &Path, dns: SocketAddr) -> Result<Server, String> {
    std::fs::create_dir_all(dir.join("lists")).map_err(|e| e.to_string())?;
    std::fs::write(
        dir.join("server.toml"),
        format!("hostname = \"bench.arclist.test\"\nlisten = [\"127.0.0.1:0\"]\nstore = \"var/bench.redb\"\n[dns]\nnameservers = [\"{dns}\"]\ntimeout_secs = 1\n[limits]\n# Every bench client comes from 127.0.0.1.\nmax_connections_per_ip = 1000\n"),
    )
    .map_err(|e| e.to_string())?;
    std::fs::write(
        dir.join("lists/bench.toml"),
        format!("address = \"{RCPT}\"\n# A throughput bench, not a flood to guard against: no quotas.\nmax_posts_per_5min = 0\nmax_posts_per_sender_per_hour = 0\n[signing]\nselector = \"s\"\nkey = \"../keys/s.pem\"\ncreate_key = true\n"),
    )
    .map_err(|e| e.to_string())?;
    let config = Config::load(Some(&dir.join("server.toml"))).map_err(|e| e.to_string())?;
    Server::start(&config).await.map_err(|e| e.to_string())
}

fn postfix_wanted() -> bool {
    std::env::var_os("ARCLIST_BENCH_NO_POSTFIX").is_none()
        && Path::new("/usr/sbin/postfix").exists()
}

fn postfix(action: &str, dir: &Path, port: u16) -> Result<(), String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/postfix-instance.sh");
    let status = std::process::Command::new("bash")
        .arg(script)
        .arg(action)
        .arg(dir)
        .arg(port.to_string())
        .status()
        .map_err(|e| e.to_string())?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("postfix-instance.sh {action} failed"))
    }
}

fn main() -> Result<(), String> {
    let quick = std::env::args().any(|a| a == "--quick");
    let total = if quick { 1000 } else { 5000 };
    let rounds = if quick { 1 } else { 3 };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let dns = LoopbackDnsServer::start(Zone::new()).await.map_err(|e| e.to_string())?;
        let work = tempfile::tempdir().map_err(|e| e.to_string())?;
        let server = start_arclist(&work.path().join("arclist"), dns.addr()).await?;
        let arclist_addr = server.listeners.addr(Protocol::Smtp).ok_or("no SMTP address")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| e.to_string())?.port();
        let pf_dir = work.path().join("postfix");
        let with_postfix = postfix_wanted() && postfix("start", &pf_dir, port).is_ok();
        let pf_addr: SocketAddr = format!("127.0.0.1:{port}").parse().map_err(|e: std::net::AddrParseError| e.to_string())?;
        println!("SMTP ingest: {total} posts of 4 KB from {CLIENTS} concurrent clients, durable before 250, {rounds} round(s), interleaved, each on a settled machine");
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for round in 1..=rounds {
            settle().await;
            let rate = load(arclist_addr, total).await?;
            print!("  round {round}: arclist {rate:>7.0}/s");
            ours.push(rate);
            if with_postfix {
                settle().await;
                let rate = load(pf_addr, total).await?;
                print!("  postfix {rate:>7.0}/s");
                theirs.push(rate);
            }
            println!();
        }
        let median = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let ours = median(ours);
        println!("  arclist serve (redb, group commit) {ours:>9.0} messages/s");
        if with_postfix {
            let theirs = median(theirs);
            println!("  postfix smtpd into its queue       {theirs:>9.0} messages/s");
            println!("  ratio arclist / postfix            {:>9.2}", ours / theirs);
            postfix("stop", &pf_dir, port)?;
        } else {
            println!("  postfix: not measured (needs root and Debian's postfix package, or ARCLIST_BENCH_NO_POSTFIX is set)");
        }
        server.stop(Duration::from_secs(5)).await;
        Ok(())
    })
}
