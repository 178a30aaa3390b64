//! Fan-out: one 4 KB post to a list of 10,000 and of 100,000 members spread over 50
//! destination domains, with VERP (one transaction per member), delivered to 50 loopback SMTP
//! sinks (127.0.1.1 to 127.0.1.50) that the in-process DNS server names as the domains' MX
//! hosts. arclist runs as its own `arclist serve` process so its peak RSS is its own.
//!
//! In the same run, Postfix (Debian's, a private instance made by benches/postfix-instance.sh;
//! needs root) does the same fan-out: the same post injected once with every member as a
//! recipient and XVERP, relayed by a transport map to the same sinks. Prints recipients per
//! second for both, the ratio, and arclist's peak RSS.
//!
//! Then the same fan-out on a PostgreSQL store (a private cluster from Debian's `postgresql`,
//! fsync on like the redb file): one node, and two `arclist serve` nodes sharing it, the post
//! injected into one of them and the recipients claimed by both.
//! ARCLIST_BENCH_NO_POSTGRES=1 leaves those rows out.
//!
//! `cargo bench --bench fanout` (both sizes), or `cargo bench --bench fanout -- 10000` for one.
//! ARCLIST_BENCH_NO_POSTFIX=1 measures arclist alone.

#[path = "../tests/integration/postgres.rs"]
mod postgres;
mod support;

use arclist::auth::dns::{LoopbackDnsServer, Mx, Zone, ZoneRecord};
use arclist_testbed::sink::{Sink, SinkOptions};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{
    LIST, delivered, four_kb, free_port, import_members, inject, list_server_files, memory_kib,
    serve,
};

const DOMAINS: usize = 50;
const BOUNCES: &str = "members-bounces@lists.arclist.test";

fn member(i: usize) -> String {
    format!("user{i}@d{}.fanout.test", i % DOMAINS)
}

fn sink_ip(domain: usize) -> String {
    format!("127.0.1.{}", domain + 1)
}

fn post() -> Vec<u8> {
    four_kb(format!(
        "From: Author <author@author.fanout.test>\r\nTo: {LIST}\r\nSubject: fan-out\r\n\
         Message-ID: <fanout@author.fanout.test>\r\nDate: Sun, 22 Nov 2026 10:00:00 +0000\r\n\r\n"
    ))
}

async fn wait_for(sinks: &[Sink], target: usize, who: &str) {
    let deadline = Instant::now() + Duration::from_secs(1800);
    while delivered(sinks) < target {
        assert!(
            Instant::now() < deadline,
            "{who}: only {} of {target} delivered after 30 minutes",
            delivered(sinks)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Where arclist keeps its store in a run.
#[derive(Clone, Copy)]
enum Backend<'a> {
    /// The embedded redb file.
    Redb,
    /// A PostgreSQL database (its URL), shared by this many nodes.
    Postgres(&'a str, usize),
}

/// arclist: seconds from the post's 250 to the last member's copy, and the highest peak RSS
/// of its nodes in KiB.
async fn arclist_fanout(
    n: usize,
    dns: SocketAddr,
    sink_port: u16,
    sinks: &[Sink],
    backend: Backend<'_>,
) -> (f64, u64) {
    let (store, nodes) = match backend {
        Backend::Redb => ("var/store.redb", 1),
        Backend::Postgres(url, nodes) => (url, nodes),
    };
    let dirs: Vec<tempfile::TempDir> = (0..nodes)
        .map(|_| tempfile::tempdir().expect("tempdir"))
        .collect();
    let listens: Vec<String> = (0..nodes)
        .map(|_| format!("127.0.0.1:{}", free_port("127.0.0.1")))
        .collect();
    for (dir, listen) in dirs.iter().zip(&listens) {
        list_server_files(dir.path(), listen, store, dns, sink_port, "");
    }
    let members: Vec<String> = (0..n).map(member).collect();
    import_members(dirs[0].path(), &members);
    let mut children = Vec::new();
    for (i, (dir, listen)) in dirs.iter().zip(&listens).enumerate() {
        if i > 0 {
            // The same list key on every node.
            let keys = dirs[0].path().join("keys");
            std::fs::create_dir_all(dir.path().join("keys")).expect("keys");
            for key in std::fs::read_dir(keys).expect("keys").flatten() {
                std::fs::copy(key.path(), dir.path().join("keys").join(key.file_name()))
                    .expect("key");
            }
        }
        let addr: SocketAddr = listen.parse().expect("addr");
        children.push(serve(&dir.path().join("server.toml"), addr).await);
    }
    let before = delivered(sinks);
    let addr: SocketAddr = listens[0].parse().expect("addr");
    inject(
        addr,
        "<author@author.fanout.test>",
        &[LIST.to_string()],
        &post(),
    )
    .await;
    let start = Instant::now();
    wait_for(sinks, before + n, "arclist").await;
    let secs = start.elapsed().as_secs_f64();
    let mut peak = 0;
    for mut child in children {
        peak = peak.max(memory_kib(child.id(), "VmHWM"));
        let _ = child.kill();
        let _ = child.wait();
    }
    (secs, peak)
}

fn postfix(args: &[&str]) -> bool {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/postfix-instance.sh");
    Command::new("bash")
        .arg(script)
        .args(args)
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Postfix: seconds from the injected message's 250 to the last member's copy.
async fn postfix_fanout(n: usize, sink_port: u16, sinks: &[Sink]) -> Option<f64> {
    let dir = tempfile::tempdir().expect("tempdir");
    let transport = dir.path().join("transport");
    let map: String = (0..DOMAINS)
        .map(|d| format!("d{d}.fanout.test smtp:[{}]:{sink_port}\n", sink_ip(d)))
        .collect();
    std::fs::write(&transport, map).expect("transport map");
    let port = free_port("127.0.0.1");
    let pf = dir.path().join("postfix");
    let (pf_s, port_s, map_s) = (
        pf.to_string_lossy().into_owned(),
        port.to_string(),
        transport.to_string_lossy().into_owned(),
    );
    if !postfix(&["start", &pf_s, &port_s, &map_s]) {
        return None;
    }
    let rcpts: Vec<String> = (0..n).map(member).collect();
    let before = delivered(sinks);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    // XVERP: one envelope sender per recipient, as arclist's VERP.
    inject(addr, &format!("<{BOUNCES}> XVERP"), &rcpts, &post()).await;
    let start = Instant::now();
    wait_for(sinks, before + n, "postfix").await;
    let secs = start.elapsed().as_secs_f64();
    postfix(&["stop", &pf_s, &port_s]);
    Some(secs)
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![10_000, 100_000]
    } else {
        sizes
    };
    let with_postfix = std::env::var_os("ARCLIST_BENCH_NO_POSTFIX").is_none()
        && Path::new("/usr/sbin/postfix").exists();
    let cluster = (std::env::var_os("ARCLIST_BENCH_NO_POSTGRES").is_none()
        && Path::new("/usr/lib/postgresql").exists())
    .then(|| postgres::start("bench", true));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let port = free_port(&sink_ip(0));
        let mut sinks = Vec::new();
        let mut zone = Zone::new();
        for d in 0..DOMAINS {
            let ip = sink_ip(d);
            let (sink, _) = Sink::start_on(
                format!("{ip}:{port}").parse().expect("sink addr"),
                SinkOptions {
                    count_only: true,
                    ..Default::default()
                },
            )
            .await;
            sinks.push(sink);
            zone.add(
                &format!("d{d}.fanout.test"),
                ZoneRecord::Mx(Mx {
                    preference: 10,
                    exchange: format!("mx.d{d}.fanout.test"),
                }),
            );
            zone.add(
                &format!("mx.d{d}.fanout.test"),
                ZoneRecord::A(ip.parse().expect("ip")),
            );
        }
        let dns = LoopbackDnsServer::start(zone).await.expect("dns");
        println!("fan-out of one 4 KB post over {DOMAINS} domains, VERP (one transaction per recipient)");
        for n in sizes {
            let (ours, rss) = arclist_fanout(n, dns.addr(), port, &sinks, Backend::Redb).await;
            println!("\n{n} recipients");
            println!(
                "  arclist   {ours:>8.2} s  {:>9.0} recipients/s  peak RSS {:.1} MiB",
                n as f64 / ours,
                rss as f64 / 1024.0
            );
            let theirs = if with_postfix {
                postfix_fanout(n, port, &sinks).await
            } else {
                None
            };
            match theirs {
                Some(theirs) => {
                    println!(
                        "  postfix   {theirs:>8.2} s  {:>9.0} recipients/s",
                        n as f64 / theirs
                    );
                    println!("  ratio arclist / postfix (recipients/s)  {:.2}", theirs / ours);
                }
                None => println!(
                    "  postfix: not measured (needs root and Debian's postfix, or ARCLIST_BENCH_NO_POSTFIX is set)"
                ),
            }
            let Some(cluster) = &cluster else {
                println!("  postgresql: not measured (needs Debian's postgresql, or ARCLIST_BENCH_NO_POSTGRES is set)");
                continue;
            };
            for nodes in [1, 2] {
                let url = cluster.fresh_store();
                let backend = Backend::Postgres(&url, nodes);
                let (secs, rss) = arclist_fanout(n, dns.addr(), port, &sinks, backend).await;
                println!(
                    "  arclist on postgresql, {nodes} node(s) {secs:>8.2} s  {:>9.0} recipients/s  peak RSS {:.1} MiB (largest node)  ratio to redb {:.2}",
                    n as f64 / secs,
                    rss as f64 / 1024.0,
                    ours / secs
                );
            }
        }
    });
}
