//! Two `arclist serve` nodes on one PostgreSQL whose database restarts, or goes away for a
//! while, in the middle of a big fan-out (issue 30): every member gets the post, hardly anyone
//! twice, the nodes reconnect by themselves, intake answers `451` while the database is away,
//! and the post finishes. Each test has a PostgreSQL cluster of its own (it stops and restarts
//! it; the shared one serves other tests), and runs only on the PostgreSQL run of the suite
//! (`ARCLIST_TEST_STORE=postgresql`): the redb run skips it, saying so.
//!
//! `ARCLIST_DB_TEST_MEMBERS` sets the list's size (default [`MEMBERS`]) and
//! `ARCLIST_DB_AWAY_SECS` how long the database stays away (default [`AWAY_SECS`]); the issue's
//! figures are `ARCLIST_DB_TEST_MEMBERS=100000 ARCLIST_DB_AWAY_SECS=60`.

use crate::server_process::{ServerProcess, list_delivering_to, second_node, send_one};
use crate::smtp_support::{Client, LIST, dot_stuffed, message};
use arclist::state::store::Store;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The list's size in CI: big enough that the database goes while both nodes are in the
/// middle of several claim batches, small enough for the test to take well under a minute on
/// two cores in a debug build.
const MEMBERS: usize = 50_000;
/// How long the database stays away in CI: longer than the nodes' lease (5 s here), so every
/// claim has lapsed by the time it is back, which is the hard case; shorter than the issue's
/// 60 s only to keep CI quick (the behaviour does not change with the length: nothing the
/// nodes do while it is away depends on how long it has been).
const AWAY_SECS: u64 = 12;
/// Destination domains the members are spread over (one sink behind all of them).
const DOMAINS: usize = 4;
/// The nodes' lease: short, so an outage outlasts it.
const LEASE_SECS: u64 = 5;

fn from_env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Two nodes serving one list of `members` on a PostgreSQL cluster of their own, `name`.
struct Bed {
    a: ServerProcess,
    b: ServerProcess,
    a_addr: SocketAddr,
    b_addr: SocketAddr,
    sink: arclist_testbed::sink::Sink,
    cluster: crate::postgres::Cluster,
    members: usize,
    b_dir: tempfile::TempDir,
    _a_dir: tempfile::TempDir,
    _dns: crate::support::Dns,
}

async fn two_nodes(name: &str) -> Bed {
    use arclist::auth::dns::{Mx, ZoneRecord};
    let members = from_env("ARCLIST_DB_TEST_MEMBERS", MEMBERS);
    let (a_dir, b_dir) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
    );
    // The sink counts and keeps no copies: 100,000 of them would be hundreds of megabytes.
    let options = arclist_testbed::sink::SinkOptions {
        count_only: true,
        ..Default::default()
    };
    let (dns, sink, a_addr) = list_delivering_to(a_dir.path(), "d0.fan.test", "", options).await;
    for d in 1..DOMAINS {
        let mx = ZoneRecord::Mx(Mx {
            preference: 10,
            exchange: "mx.sink.test".into(),
        });
        dns.server
            .with_zone(|z| z.add(&format!("d{d}.fan.test"), mx));
    }
    let cluster = crate::postgres::start(name, false);
    crate::smtp_support::set_store(a_dir.path(), &cluster.fresh_store());
    let path = a_dir.path().join("server.toml");
    let mut text = std::fs::read_to_string(&path).expect("server.toml");
    text.push_str(&format!(
        "[cluster]\nlease_secs = {LEASE_SECS}\nclaim_batch = 2000\n"
    ));
    std::fs::write(&path, text).expect("server.toml");
    let list: String = (0..members)
        .map(|i| format!("user{i}@d{}.fan.test\n", i % DOMAINS))
        .collect();
    let file = a_dir.path().join("members.txt");
    std::fs::write(&file, list).expect("members file");
    let (ok, text) =
        crate::support::arclist_cli(&path, &["member", "import", LIST, &file.to_string_lossy()]);
    assert!(ok, "{text}");
    let a = ServerProcess::start(a_dir.path(), a_addr);
    let b_addr = crate::smtp_support::private_listen_addr();
    second_node(a_dir.path(), b_dir.path(), b_addr);
    let b = ServerProcess::start(b_dir.path(), b_addr);
    Bed {
        a,
        b,
        a_addr,
        b_addr,
        sink,
        cluster,
        members,
        b_dir,
        _a_dir: a_dir,
        _dns: dns,
    }
}

impl Bed {
    /// Copies received so far.
    fn received(&self) -> usize {
        self.sink.received.lock().map_or(0, |r| r.len())
    }

    /// Posts once, through node A, and waits until about a quarter of the members have it.
    async fn post_and_wait_for_a_quarter(&self) {
        let (mut c, _) = Client::connect(self.a_addr).await;
        assert_eq!(c.cmd("EHLO a").await.0, 250);
        assert_eq!(send_one(&mut c, &message("fanout", 2000)).await, Some(true));
        let deadline = Instant::now() + Duration::from_secs(120);
        while self.received() < self.members / 4 {
            assert!(
                Instant::now() < deadline,
                "fan-out too slow: {}",
                self.received()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits until a node says the post finished.
    async fn wait_until_finished(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.a.log_count("post finished") + self.b.log_count("post finished") == 0 {
            assert!(
                Instant::now() < deadline,
                "the post never finished: {} of {} copies; node A: {:?}; node B: {:?}",
                self.received(),
                self.members,
                self.a.log_lines("\"ERROR\""),
                self.b.log_lines("\"ERROR\""),
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Every member got the post, duplicates stayed under 1%, and the store holds the post as
    /// finished with every member delivered; returns the duplicates.
    async fn every_member_served_once_or_nearly(&self) -> usize {
        let mut copies: HashMap<String, usize> = HashMap::new();
        for (_, rcpt, _) in self.sink.received.lock().expect("lock").iter() {
            *copies.entry(rcpt.clone()).or_insert(0) += 1;
        }
        assert_eq!(copies.len(), self.members, "every member received the post");
        let duplicates: usize = copies.values().map(|n| n - 1).sum();
        assert!(
            duplicates * 100 < self.members,
            "{duplicates} duplicates of {}: under 1% expected",
            self.members
        );
        let store: Store = crate::smtp_support::open_store(self.b_dir.path()).await;
        let queue = store.queue().await.expect("queue");
        assert_eq!(queue.len(), 1, "one post queued, nothing else accepted");
        let summary = queue[0].summary.clone().expect("the post is finished");
        assert_eq!(
            summary.delivered.values().sum::<u64>(),
            self.members as u64,
            "every member recorded as delivered: {summary:?}"
        );
        assert!(summary.bounced.is_empty(), "{:?}", summary.bounced);
        assert!(
            store.active().await.expect("hot queue").is_empty(),
            "the post left the hot queue"
        );
        duplicates
    }

    fn stop(self) {
        self.a.signal("TERM");
        self.b.signal("TERM");
        assert!(self.a.wait_exit(Duration::from_secs(20)).success());
        assert!(self.b.wait_exit(Duration::from_secs(20)).success());
    }
}

/// Whether this run is on PostgreSQL; says so when it skips.
pub(crate) fn on_postgresql() -> bool {
    let yes = crate::postgres::tests_use_postgres();
    if !yes {
        eprintln!("skipped: a PostgreSQL test (ARCLIST_TEST_STORE=postgresql runs it)");
    }
    yes
}

/// Posts to `addr` once; the final reply's code (of MAIL, RCPT, DATA or the end of data,
/// whichever refused first), or 0 when the connection was cut.
async fn try_to_post(addr: SocketAddr, tag: &str) -> u16 {
    let (mut c, _) = Client::connect(addr).await;
    for command in [
        "EHLO a",
        "MAIL FROM:<a@author.arclist.test>",
        &format!("RCPT TO:<{LIST}>"),
    ] {
        let code = c.cmd(command).await.0;
        if code != 250 {
            return code;
        }
    }
    let code = c.cmd("DATA").await.0;
    if code != 354 {
        return code;
    }
    c.send(&dot_stuffed(&message(tag, 1000))).await;
    c.reply().await.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fan_out_survives_its_database_restarting() {
    if !on_postgresql() {
        return;
    }
    let started = Instant::now();
    let bed = two_nodes("db-restart").await;
    bed.post_and_wait_for_a_quarter().await;
    let at_restart = bed.received();
    let delivering = "delivery to destination";
    let before = (bed.a.log_count(delivering), bed.b.log_count(delivering));
    let (a_pid, b_pid) = (bed.a.pid(), bed.b.pid());
    let restarting = Instant::now();
    bed.cluster.restart();
    let restart_took = restarting.elapsed();
    bed.wait_until_finished(Duration::from_secs(240)).await;
    let duplicates = bed.every_member_served_once_or_nearly().await;
    // Both nodes reconnected by themselves: each claimed and delivered after the restart,
    // and each is the process it was.
    assert!(
        bed.a.log_count(delivering) > before.0 && bed.b.log_count(delivering) > before.1,
        "both nodes delivered after the restart"
    );
    assert_eq!((bed.a.pid(), bed.b.pid()), (a_pid, b_pid));
    let kept =
        bed.a.log_count("keeping them in this node") + bed.b.log_count("keeping them in this node");
    // What the nodes felt of it: store calls that failed, each logged and retried.
    let felt = bed.a.log_count("\"ERROR\"") + bed.b.log_count("\"ERROR\"");
    eprintln!(
        "database restart: {} members over {DOMAINS} domains, restarted at {at_restart} copies \
         (pg_ctl restart took {restart_took:?}); {felt} error(s) logged by the nodes, {kept} \
         round(s) kept while it was away; {duplicates} duplicate(s); test took {:?}",
        bed.members,
        started.elapsed()
    );
    bed.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fan_out_survives_its_database_going_away_and_intake_answers_451_meanwhile() {
    if !on_postgresql() {
        return;
    }
    let away = Duration::from_secs(from_env("ARCLIST_DB_AWAY_SECS", AWAY_SECS));
    let started = Instant::now();
    let bed = two_nodes("db-away").await;
    bed.post_and_wait_for_a_quarter().await;
    let at_stop = bed.received();
    bed.cluster.stop();
    let gone = Instant::now();
    // While it is away, intake on either node refuses for now, never `250` without a commit.
    let mut codes = Vec::new();
    let mut round = 0;
    while gone.elapsed() + Duration::from_secs(2) < away || round < 2 {
        for addr in [bed.a_addr, bed.b_addr] {
            codes.push(try_to_post(addr, &format!("while-away-{round}")).await);
        }
        round += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        codes.iter().all(|c| *c == 451),
        "intake while the database is away: {codes:?}"
    );
    tokio::time::sleep(away.saturating_sub(gone.elapsed())).await;
    let during = bed.received() - at_stop;
    bed.cluster.start_again();
    let was_away = gone.elapsed();
    bed.wait_until_finished(Duration::from_secs(240)).await;
    let duplicates = bed.every_member_served_once_or_nearly().await;
    let kept =
        bed.a.log_count("keeping them in this node") + bed.b.log_count("keeping them in this node");
    let written = bed.a.log_count("kept while the store was away")
        + bed.b.log_count("kept while the store was away");
    eprintln!(
        "database away: {} members over {DOMAINS} domains, stopped at {at_stop} copies, away \
         {was_away:?} (lease {LEASE_SECS} s), {during} copies delivered meanwhile; {} post(s) \
         tried meanwhile, all answered 451; {kept} round(s) kept, {written} written on its \
         return; {duplicates} duplicate(s); test took {:?}",
        bed.members,
        codes.len(),
        started.elapsed()
    );
    bed.stop();
}
