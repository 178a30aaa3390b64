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
//! `cargo bench --bench fanout` (both sizes), or `cargo bench --bench fanout -- 10000` for one
//! (`-- 1000000` for a million members, delivered in rounds of `recipients_per_round`);
//! add `one-click` for the same fan-out with a signed one-click List-Unsubscribe in every
//! member's copy (one DKIM signature per member) beside the all-core RSA-2048 signing rate of
//! aws-lc and OpenSSL measured in the same run; add `dkim2` for a `dkim2 = true` list (one DKIM2
//! signature and one transaction per member) beside the same rate, with when the first copy
//! left and the rate between the 10th and 90th percentile copy. Each arclist row prints the
//! member import time; the PostgreSQL rows print arclist's and the database's CPU per 1,000
//! recipients.
//! The signing rows are made three times (ARCLIST_BENCH_SIGNING_ROUNDS), each beside each
//! library's rate measured just before and just after it (the mean of the two), and their
//! median ratio printed.
//! ARCLIST_BENCH_NO_POSTFIX=1 measures arclist alone. ARCLIST_BENCH_TIMELINE=1 prints under
//! each arclist row when every twentieth of the copies had arrived (how long the start took).
//! ARCLIST_BENCH_PG_STATEMENTS=1 also prints, under each PostgreSQL row, the statements that took the database longest
//! (`pg_stat_statements`, loaded into the bench's cluster when it starts).

#[path = "../tests/integration/postgres.rs"]
mod postgres;
mod support;

use arclist::auth::dns::{LoopbackDnsServer, Mx, Zone, ZoneRecord};
use arclist::auth::signing_key::SigningKey;
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

/// Waits until the sinks received `n` copies more than `base`, counting from the 250 (the
/// call is made right after it).
async fn wait_for(sinks: &[Sink], (base, n): (usize, usize), who: &str) -> Pace {
    let start = Instant::now();
    let deadline = start + Duration::from_secs(1800);
    let (tenth, ninetieth) = (n / 10, n - n / 10);
    let mut pace = Pace::default();
    let timeline = std::env::var_os("ARCLIST_BENCH_TIMELINE").is_some();
    loop {
        let got = delivered(sinks).saturating_sub(base);
        let at = start.elapsed().as_secs_f64();
        if got >= 1 && pace.first_secs.is_none() {
            pace.first_secs = Some(at);
        }
        if got >= tenth && pace.tenth.is_none() {
            pace.tenth = Some((got, at));
        }
        if got >= ninetieth && pace.ninetieth.is_none() {
            pace.ninetieth = Some((got, at));
        }
        if timeline && got * 20 / n.max(1) > pace.marks.len() {
            pace.marks.push((got, at));
        }
        if got >= n {
            return pace;
        }
        assert!(
            Instant::now() < deadline,
            "{who}: only {got} of {n} delivered after 30 minutes"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// When a fan-out's copies arrived: the first, and the tenth and ninetieth percentiles
/// (copies received, seconds after the 250), which give the rate between them, where neither
/// the start (members read, records queued) nor the last destinations count.
#[derive(Default)]
struct Pace {
    first_secs: Option<f64>,
    tenth: Option<(usize, f64)>,
    ninetieth: Option<(usize, f64)>,
    /// With ARCLIST_BENCH_TIMELINE: copies received and when, at every twentieth of them.
    marks: Vec<(usize, f64)>,
}

impl Pace {
    /// Copies a second between the tenth and the ninetieth percentile.
    fn middle_rate(&self) -> Option<f64> {
        let ((a, ta), (b, tb)) = (self.tenth?, self.ninetieth?);
        (a > 0 && tb > ta).then(|| (b - a) as f64 / (tb - ta))
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

/// Settings added to every node's files: at the end of the server file, and among the list
/// file's top-level settings.
#[derive(Clone, Copy, Default)]
struct Extra<'a> {
    server: &'a str,
    list: &'a str,
}

/// What one arclist fan-out measured.
struct Run {
    /// Seconds from the post's 250 to the last member's copy.
    secs: f64,
    /// The highest peak RSS of its nodes, KiB.
    peak_kib: u64,
    /// Seconds `arclist member import` took for the members.
    import_secs: f64,
    /// CPU seconds the arclist nodes used during the fan-out, all nodes together.
    cpu_secs: f64,
    /// CPU seconds the database server used during the fan-out (PostgreSQL only).
    db_cpu_secs: Option<f64>,
    /// When the copies arrived.
    pace: Pace,
}

/// arclist's fan-out of the post to `n` members, with `extra` settings. `db`: the database
/// cluster of a PostgreSQL backend, whose CPU time is read.
async fn arclist_fanout(
    n: usize,
    (dns, sink_port): (SocketAddr, u16),
    sinks: &[Sink],
    backend: Backend<'_>,
    extra: Extra<'_>,
    db: Option<&postgres::Cluster>,
) -> Run {
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
        list_server_files(dir.path(), listen, store, dns, sink_port, extra.server);
        let list_file = dir.path().join("lists/members.toml");
        let text = std::fs::read_to_string(&list_file).expect("list file");
        let text = text.replacen("[signing]", &format!("{}\n[signing]", extra.list), 1);
        std::fs::write(&list_file, text).expect("list file");
    }
    let members: Vec<String> = (0..n).map(member).collect();
    let import = Instant::now();
    import_members(dirs[0].path(), &members);
    let import_secs = import.elapsed().as_secs_f64();
    drop(members);
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
    let cpu = |children: &[std::process::Child]| -> f64 {
        children
            .iter()
            .map(|c| support::cpu_time(c.id()).as_secs_f64())
            .sum()
    };
    let db_pid = db.and_then(postgres::Cluster::server_pid);
    let db_cpu = || db_pid.map(|pid| support::tree_cpu_time(pid).as_secs_f64());
    let (cpu_before, db_before) = (cpu(&children), db_cpu());
    let addr: SocketAddr = listens[0].parse().expect("addr");
    inject(
        addr,
        "<author@author.fanout.test>",
        &[LIST.to_string()],
        &post(),
    )
    .await;
    let start = Instant::now();
    let pace = wait_for(sinks, (before, n), "arclist").await;
    let secs = start.elapsed().as_secs_f64();
    if let (Some(db), Backend::Postgres(url, _)) = (db, backend) {
        // The CPU figures include settling the post (its records read and removed), which
        // comes just after its last copy.
        wait_settled(db, url).await;
    }
    let cpu_secs = cpu(&children) - cpu_before;
    let db_cpu_secs = db_cpu()
        .zip(db_before)
        .map(|(after, before)| after - before);
    let mut peak_kib = 0;
    for mut child in children {
        peak_kib = peak_kib.max(memory_kib(child.id(), "VmHWM"));
        let _ = child.kill();
        let _ = child.wait();
    }
    Run {
        secs,
        peak_kib,
        import_secs,
        cpu_secs,
        db_cpu_secs,
        pace,
    }
}

/// Waits (at most a minute) until the store at `url` (a schema of `db`) has no post with work
/// left.
async fn wait_settled(db: &postgres::Cluster, url: &str) {
    let schema = url.rsplit("search_path%3D").next().unwrap_or("public");
    let sql = format!("SELECT count(*) FROM {schema}.active");
    // Each look is a connection, which costs the database a few milliseconds: seldom.
    for _ in 0..300 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if db.sql(&sql).trim() == "0" {
            return;
        }
    }
    println!("  (the post was not settled a minute after its last copy)");
}

/// RSA-2048 signatures a second on every core at once, with the key type arclist signs with
/// (aws-lc): the ceiling for a fan-out that signs each member's copy.
fn aws_lc_all_core_rate() -> f64 {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let (key, _) = SigningKey::generate_rsa2048().expect("key");
    let key = std::sync::Arc::new(key);
    let header_sized = vec![b'x'; 600];
    let per = Duration::from_secs(3);
    let total: usize = std::thread::scope(|s| {
        let workers: Vec<_> = (0..cores)
            .map(|_| {
                let (key, data) = (key.clone(), &header_sized);
                s.spawn(move || {
                    let start = Instant::now();
                    let mut n = 0;
                    while start.elapsed() < per {
                        key.sign(data).expect("sign");
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().expect("worker")).sum()
    });
    total as f64 / per.as_secs_f64()
}

/// OpenSSL's RSA-2048 signatures a second on every core (`openssl speed -multi`), when the
/// `openssl` command is there.
fn openssl_all_core_rate() -> Option<f64> {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let out = Command::new("openssl")
        .args([
            "speed",
            "-seconds",
            "3",
            "-multi",
            &cores.to_string(),
            "rsa2048",
        ])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    // "rsa 2048 bits 0.000209s 0.000006s   4785.0 155333.0": the sign/s column.
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with("rsa 2048 bits") || l.starts_with("rsa  2048 bits"))
        .and_then(|l| l.split_whitespace().nth(5)?.parse().ok())
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
    wait_for(sinks, (before, n), "postfix").await;
    let secs = start.elapsed().as_secs_f64();
    postfix(&["stop", &pf_s, &port_s]);
    Some(secs)
}

/// What the command line asks: the list sizes, and whether to add the one-click rows.
struct Args {
    sizes: Vec<usize>,
    one_click: bool,
    dkim2: bool,
}

fn args() -> Args {
    let words: Vec<String> = std::env::args().skip(1).collect();
    let sizes: Vec<usize> = words.iter().filter_map(|a| a.parse().ok()).collect();
    Args {
        sizes: if sizes.is_empty() {
            vec![10_000, 100_000]
        } else {
            sizes
        },
        one_click: words.iter().any(|w| w == "one-click"),
        dkim2: words.iter().any(|w| w == "dkim2"),
    }
}

fn print_run(label: &str, n: usize, run: &Run) {
    println!(
        "  {label:<32} {:>8.2} s  {:>9.0} recipients/s  peak RSS {:.1} MiB  (import {:.1} s)",
        run.secs,
        n as f64 / run.secs,
        run.peak_kib as f64 / 1024.0,
        run.import_secs
    );
    if !run.pace.marks.is_empty() {
        let marks: Vec<String> = (run.pace.marks.iter())
            .map(|(copies, at)| format!("{copies}@{:.0}", at * 1e3))
            .collect();
        println!("    copies@ms after the 250: {}", marks.join(" "));
    }
}

/// Signing fan-outs of each kind made in a run, each beside the signing rate measured just
/// before it: on a shared machine a neighbour's burst moves one pair of figures by a tenth, so
/// the ratio is given for each pair and as their median. ARCLIST_BENCH_SIGNING_ROUNDS sets it.
fn signing_rounds() -> usize {
    std::env::var("ARCLIST_BENCH_SIGNING_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3)
        .max(1)
}

/// The fan-outs that sign each member's copy, beside the machine's RSA-2048 signing rate on
/// all cores measured around each: every copy with its own signed one-click
/// List-Unsubscribe (one DKIM signature per member), and a `dkim2 = true` list (one DKIM2
/// signature and one transaction per member; `mitigate = "always"` rewrites From into the
/// list's domain, so the list may start the chain, -09 §11).
async fn signing_rows(args: &Args, n: usize, dns: (SocketAddr, u16), sinks: &[Sink]) {
    let http = format!(
        "[http]\nlisten = \"127.0.0.1:{}\"\nbase_url = \"https://lists.arclist.test\"\n",
        free_port("127.0.0.1")
    );
    let rows = [
        (
            args.one_click,
            "one-click per member",
            Extra {
                server: &http,
                list: "",
            },
        ),
        (
            args.dkim2,
            "DKIM2 per member",
            Extra {
                server: "",
                list: "dkim2 = true\nmitigate = \"always\"",
            },
        ),
    ];
    for (wanted, label, extra) in rows {
        if !wanted {
            continue;
        }
        let mut ratios = Vec::new();
        for _ in 0..signing_rounds() {
            ratios.push(signing_row(n, dns, sinks, label, extra).await);
        }
        if ratios.len() > 1 {
            let each: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
            ratios.sort_by(f64::total_cmp);
            println!(
                "  {label}: median copies/s = {:.2} of the faster all-core RSA-2048 rate ({} runs: {})",
                ratios[ratios.len() / 2],
                ratios.len(),
                each.join(", ")
            );
        }
    }
}

/// One signing fan-out beside the all-core RSA-2048 rate of aws-lc and of OpenSSL, each
/// measured just before and just after it; returns its copies a second as a share of the
/// faster library's mean.
///
/// Why both sides and a mean per library: this machine's speed drifts by a tenth within a
/// minute, so one measurement before the run says little about the machine during it; and the
/// two libraries sign at about the same rate here, so taking the larger of two single noisy
/// figures would pick the luckier sample, not the faster library.
async fn signing_row(
    n: usize,
    dns: (SocketAddr, u16),
    sinks: &[Sink],
    label: &str,
    extra: Extra<'_>,
) -> f64 {
    let before = (aws_lc_all_core_rate(), openssl_all_core_rate());
    let run = arclist_fanout(n, dns, sinks, Backend::Redb, extra, None).await;
    let after = (aws_lc_all_core_rate(), openssl_all_core_rate());
    let aws_lc = (before.0 + after.0) / 2.0;
    let openssl = before.1.zip(after.1).map(|(b, a)| (b + a) / 2.0);
    let ceiling = openssl.map_or(aws_lc, |o| o.max(aws_lc));
    println!(
        "  RSA-2048 signatures/s on all cores before / after the run: aws-lc {:.0} / {:.0} (mean {aws_lc:.0}), OpenSSL {}",
        before.0,
        after.0,
        match (before.1, after.1, openssl) {
            (Some(b), Some(a), Some(o)) => format!("{b:.0} / {a:.0} (mean {o:.0})"),
            _ => "not measured".into(),
        },
    );
    print_run(&format!("arclist, {label}"), n, &run);
    let ratio = n as f64 / run.secs / ceiling;
    println!("    copies/s = {ratio:.2} of the faster library's all-core RSA-2048 rate");
    // Where the rest goes: the start (one core's work before the first copy) and the
    // steady middle of the fan-out.
    if let (Some(first), Some(middle)) = (run.pace.first_secs, run.pace.middle_rate()) {
        println!(
            "    first copy {:.0} ms after the 250; between the 10th and 90th percentile {middle:.0} copies/s = {:.2} of it",
            first * 1e3,
            middle / ceiling
        );
    }
    // What is not signing: arclist's own CPU a copy beside one aws-lc signature's (the
    // rest of the machine is the receivers' and the kernel's).
    let cores = std::thread::available_parallelism().map_or(2, |c| c.get()) as f64;
    let (per_copy, per_signature) = (run.cpu_secs / n as f64, cores / aws_lc);
    println!(
        "    arclist's CPU {:.3} ms a copy; one signature {:.3} ms: signing is {:.0}% of it",
        per_copy * 1e3,
        per_signature * 1e3,
        100.0 * per_signature / per_copy
    );
    ratio
}

/// The PostgreSQL rows: one node and two, with arclist's and the database's CPU per 1,000
/// recipients.
async fn postgres_rows(
    n: usize,
    dns: (SocketAddr, u16),
    sinks: &[Sink],
    cluster: &postgres::Cluster,
    redb_secs: f64,
) {
    let statements = std::env::var_os(postgres::STATEMENTS).is_some();
    for nodes in [1, 2] {
        let url = cluster.fresh_store();
        if statements {
            cluster.sql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
            cluster.sql("SELECT pg_stat_statements_reset()");
        }
        let backend = Backend::Postgres(&url, nodes);
        let run = arclist_fanout(n, dns, sinks, backend, Extra::default(), Some(cluster)).await;
        print_run(&format!("arclist on postgresql, {nodes} node(s)"), n, &run);
        let per_k = |cpu: f64| cpu * 1000.0 * 1000.0 / n as f64;
        println!(
            "    ratio to redb {:.2}; CPU per 1,000 recipients: arclist {:.0} ms, PostgreSQL {}",
            redb_secs / run.secs,
            per_k(run.cpu_secs),
            run.db_cpu_secs.map_or("not read".into(), |c| format!(
                "{:.0} ms ({:.2} of arclist's)",
                per_k(c),
                c / run.cpu_secs
            ))
        );
        if statements {
            print_statements(cluster);
        }
    }
}

/// The statements that took the database longest in the run just made (not the schema's,
/// nor the member import's).
fn print_statements(cluster: &postgres::Cluster) {
    let top = cluster.sql(
        "SELECT round(total_exec_time::numeric, 1) || ' ms, ' || calls || ' calls, ' || rows
                || ' rows: ' || left(regexp_replace(query, '\\s+', ' ', 'g'), 100)
         FROM pg_stat_statements
         WHERE query NOT LIKE 'CREATE%' AND query NOT LIKE 'ALTER%'
           AND query NOT LIKE '%INTO members%' AND query NOT LIKE 'VACUUM%'
           AND query NOT LIKE 'ANALYZE%' AND query NOT LIKE '%schema_migrations%'
           AND query NOT LIKE 'DO %' AND query NOT LIKE '--%'
         ORDER BY total_exec_time DESC LIMIT 12",
    );
    println!("    the database's time by statement (pg_stat_statements):");
    for line in top.lines() {
        println!("      {line}");
    }
}

async fn start_sinks(port: u16) -> (Vec<Sink>, Zone) {
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
        // As Postfix, Gmail and Microsoft's servers do.
        sink.chunking
            .store(true, std::sync::atomic::Ordering::Relaxed);
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
    (sinks, zone)
}

fn main() {
    let args = args();
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
        let (sinks, zone) = start_sinks(port).await;
        let dns = LoopbackDnsServer::start(zone).await.expect("dns");
        let to = (dns.addr(), port);
        println!("fan-out of one 4 KB post over {DOMAINS} domains, VERP (one transaction per recipient)");
        for &n in &args.sizes {
            println!("\n{n} recipients");
            let ours = arclist_fanout(n, to, &sinks, Backend::Redb, Extra::default(), None).await;
            print_run("arclist", n, &ours);
            let theirs = if with_postfix {
                postfix_fanout(n, port, &sinks).await
            } else {
                None
            };
            match theirs {
                Some(theirs) => {
                    println!(
                        "  {:<32} {theirs:>8.2} s  {:>9.0} recipients/s",
                        "postfix",
                        n as f64 / theirs
                    );
                    println!("  ratio arclist / postfix (recipients/s)  {:.2}", theirs / ours.secs);
                }
                None => println!(
                    "  postfix: not measured (needs root and Debian's postfix, or ARCLIST_BENCH_NO_POSTFIX is set)"
                ),
            }
            if args.one_click || args.dkim2 {
                signing_rows(&args, n, to, &sinks).await;
            }
            match &cluster {
                Some(cluster) => postgres_rows(n, to, &sinks, cluster, ours.secs).await,
                None => println!("  postgresql: not measured (needs Debian's postgresql, or ARCLIST_BENCH_NO_POSTGRES is set)"),
            }
        }
    });
}
