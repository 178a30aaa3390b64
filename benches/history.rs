//! A server that runs for years, measured.
//!
//! 1. History: a 1,000-member list over 10 domains (VERP), delivered to 10 loopback sinks,
//!    with `arclist serve` as its own process. After 20, 420 and 2,000 posts (or the counts
//!    given as arguments), once every copy is delivered: the CPU the idle server uses over
//!    10 s, its RSS and the store file's size. Idle work must not grow with history.
//! 2. DNS latency: every DNS answer 50 ms late; 4 posts from a domain whose DNS never answers
//!    arrive first, then 200 posts from 200 domains over 10 connections. Time from the last
//!    `250` until all 200 reached the member, with `[pipeline] concurrency = 16` (the default)
//!    and, in the same run, `concurrency = 1` (one message at a time, as arclist did before).
//!
//! `cargo bench --bench history` (both), `-- history 20 420` or `-- dns` for one part.

mod support;

use arclist::auth::dns::{LoopbackDnsServer, Mx, Zone, ZoneRecord};
use arclist_testbed::sink::{Sink, SinkOptions};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::{
    LIST, cpu_time, delivered, four_kb, free_port, import_members, inject, inject_from,
    list_server_files, memory_kib, serve,
};

const DOMAINS: usize = 10;
const MEMBERS: usize = 1_000;
const IDLE: Duration = Duration::from_secs(10);

fn sink_ip(domain: usize) -> String {
    format!("127.0.2.{}", domain + 1)
}

fn post(from: &str, n: usize) -> Vec<u8> {
    four_kb(format!(
        "From: Author <{from}>\r\nTo: {LIST}\r\nSubject: post {n}\r\n\
         Message-ID: <{n}.{from}>\r\nDate: Sun, 22 Nov 2026 10:00:00 +0000\r\n\r\n"
    ))
}

async fn wait_for(sinks: &[Sink], target: usize, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while delivered(sinks) < target {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    true
}

async fn history(counts: &[usize], dns: SocketAddr, sink_port: u16, sinks: &[Sink]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let listen = format!("127.0.0.1:{}", free_port("127.0.0.1"));
    list_server_files(dir.path(), &listen, "var/store.redb", dns, sink_port, "");
    let members: Vec<String> = (0..MEMBERS)
        .map(|i| format!("user{i}@d{}.history.test", i % DOMAINS))
        .collect();
    import_members(dir.path(), &members);
    let addr: SocketAddr = listen.parse().expect("addr");
    let mut child = serve(&dir.path().join("server.toml"), addr).await;
    let pid = child.id();
    println!("history: {MEMBERS} members over {DOMAINS} domains, VERP, idle CPU over {IDLE:?}");
    println!(
        "  posts   idle CPU      share of a core   RSS                                  store file"
    );
    let (mut sent, start) = (0, delivered(sinks));
    let mut first_idle = None;
    for &count in counts {
        while sent < count {
            let from = "author@author.history.test";
            inject(
                addr,
                &format!("<{from}>"),
                &[LIST.to_string()],
                &post(from, sent),
            )
            .await;
            sent += 1;
        }
        let all = start + sent * MEMBERS;
        assert!(
            wait_for(sinks, all, Duration::from_secs(1800)).await,
            "not every copy was delivered"
        );
        // Let the last records and summaries be written, then measure doing nothing.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let before = cpu_time(pid);
        tokio::time::sleep(IDLE).await;
        let idle = cpu_time(pid).saturating_sub(before);
        let share = idle.as_secs_f64() / IDLE.as_secs_f64() * 100.0;
        first_idle.get_or_insert(idle);
        let store = std::fs::metadata(dir.path().join("var/store.redb")).map_or(0, |m| m.len());
        let mib = |field| memory_kib(pid, field) as f64 / 1024.0;
        println!(
            "  {count:>5}   {:>7.2} s     {share:>6.2} %          {:>6.1} MiB ({:.1} anonymous, {:.1} file)  {:>6.1} MB",
            idle.as_secs_f64(),
            mib("VmRSS"),
            mib("RssAnon"),
            mib("RssFile"),
            store as f64 / 1e6
        );
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Seconds from the last 250 until the 200 posts from 200 domains reached the member.
async fn dns_latency(
    concurrency: usize,
    dns: &LoopbackDnsServer,
    sink_port: u16,
    sinks: &[Sink],
) -> Option<f64> {
    let dir = tempfile::tempdir().expect("tempdir");
    let listen = format!("127.0.0.1:{}", free_port("127.0.0.1"));
    let extra = format!("[pipeline]\nconcurrency = {concurrency}\n");
    list_server_files(
        dir.path(),
        &listen,
        "var/store.redb",
        dns.addr(),
        sink_port,
        &extra,
    );
    import_members(dir.path(), &["reader@d0.history.test".to_string()]);
    let addr: SocketAddr = listen.parse().expect("addr");
    let mut child = serve(&dir.path().join("server.toml"), addr).await;
    let start = delivered(sinks);
    for n in 0..4 {
        inject(
            addr,
            "<dee@dead.history.test>",
            &[LIST.to_string()],
            &post("dee@dead.history.test", n),
        )
        .await;
    }
    let mut clients = tokio::task::JoinSet::new();
    for c in 0..10 {
        clients.spawn(async move {
            for n in (c..200).step_by(10) {
                let from = format!("author@s{n}.pipe.test");
                inject_from(
                    addr,
                    Some("127.0.0.1"),
                    &format!("<{from}>"),
                    &[LIST.to_string()],
                    &post(&from, n),
                )
                .await;
            }
        });
    }
    while clients.join_next().await.is_some() {}
    let last_250 = Instant::now();
    let done = wait_for(sinks, start + 200, Duration::from_secs(300)).await;
    let secs = last_250.elapsed().as_secs_f64();
    let _ = child.kill();
    let _ = child.wait();
    done.then_some(secs)
}

fn zone() -> Zone {
    let mut zone = Zone::new();
    for d in 0..DOMAINS {
        zone.add(
            &format!("d{d}.history.test"),
            ZoneRecord::Mx(Mx {
                preference: 10,
                exchange: format!("mx.d{d}.history.test"),
            }),
        );
        zone.add(
            &format!("mx.d{d}.history.test"),
            ZoneRecord::A(sink_ip(d).parse().expect("ip")),
        );
    }
    for n in 0..200 {
        zone.add_txt(&format!("s{n}.pipe.test"), "v=spf1 ip4:127.0.0.1 -all");
        zone.add_txt(&format!("_dmarc.s{n}.pipe.test"), "v=DMARC1; p=none");
    }
    zone
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let counts: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let counts = if counts.is_empty() {
        vec![20, 420, 2_000]
    } else {
        counts
    };
    let part = |name: &str| {
        !args.iter().any(|a| a == "history" || a == "dns") || args.iter().any(|a| a == name)
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let port = free_port(&sink_ip(0));
        let mut sinks = Vec::new();
        for d in 0..DOMAINS {
            let (sink, _) = Sink::start_on(
                format!("{}:{port}", sink_ip(d)).parse().expect("sink addr"),
                SinkOptions {
                    count_only: true,
                    ..Default::default()
                },
            )
            .await;
            sinks.push(sink);
        }
        let dns = LoopbackDnsServer::start(zone()).await.expect("dns");
        if part("history") {
            history(&counts, dns.addr(), port, &sinks).await;
        }
        if part("dns") {
            for name in ["dead.history.test", "_dmarc.dead.history.test"] {
                dns.hang(name);
            }
            dns.set_delay(Duration::from_millis(50));
            println!("\nDNS answers 50 ms late; 4 posts whose sender's DNS never answers come first, then 200 posts from 200 domains over 10 connections");
            let concurrent = dns_latency(16, &dns, port, &sinks).await;
            let single = dns_latency(1, &dns, port, &sinks).await;
            let show = |s: Option<f64>| s.map_or("not all within 300 s".to_string(), |s| format!("{s:.2} s ({:.0} posts/s)", 200.0 / s));
            println!("  concurrency 16 (default): last 250 to the 200th delivery {}", show(concurrent));
            println!("  concurrency 1 (one at a time, as before): {}", show(single));
            if let (Some(c), Some(s)) = (concurrent, single) {
                println!("  ratio one-at-a-time / concurrent: {:.1}x", s / c);
            }
        }
    });
}
