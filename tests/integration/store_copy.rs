//! `arclist store copy --to postgresql://…`: a store file filled by a running server and the
//! CLI (members with their delivery modes, a held post, an alias) moved into a PostgreSQL
//! database, where a server started on it finds them all.

use crate::server_process::ServerProcess;
use crate::smtp_support::{Client, LIST, message, set_store, use_embedded_store, write_config};
use crate::support::{Dns, arclist_cli};
use arclist::auth::dns::Zone;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

/// A server file with a forwarding domain (`corp.test`) beside the test list.
fn configure(dir: &Path, dns: &str, addr: SocketAddr) {
    write_config(dir, dns, &addr.to_string(), "");
    let server = dir.join("server.toml");
    let text = std::fs::read_to_string(&server).expect("server.toml");
    std::fs::write(&server, format!("forwards_dir = \"forwards\"\n{text}")).expect("write");
    std::fs::create_dir_all(dir.join("forwards")).expect("dir");
    std::fs::write(
        dir.join("forwards/corp.toml"),
        "domain = \"corp.test\"\n[signing]\nselector = \"fwd\"\nkey = \"fwd.pem\"\ncreate_key = true\n\
         [srs]\nsecret_file = \"srs.secret\"\ncreate_secret = true\n",
    )
    .expect("forwarding file");
}

/// Runs `arclist ARGS --config` until its output holds `needle` (bounded).
fn until_cli_shows(config: &Path, args: &[&str], needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (ok, text) = arclist_cli(config, args);
        if ok && text.contains(needle) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{args:?} never showed {needle:?}: {text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Starts the server of `dir` and waits for its local admin socket.
fn start(dir: &Path, addr: SocketAddr) -> ServerProcess {
    let server = ServerProcess::start(dir, addr);
    until_cli_shows(&dir.join("server.toml"), &["report"], "");
    server
}

fn stop(server: ServerProcess) {
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(20)).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_copy_moves_members_held_posts_and_aliases_to_postgresql() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dns = Dns::start(Zone::new()).await;
    let addr: SocketAddr = crate::smtp_support::private_listen_addr();
    configure(dir.path(), &dns.addr(), addr);
    use_embedded_store(dir.path());
    let config = dir.path().join("server.toml");
    let run = |args: &[&str]| arclist_cli(&config, args);

    let server = start(dir.path(), addr);
    for m in ["ann@a.test", "bob@b.test"] {
        let (ok, text) = run(&["member", "add", LIST, m]);
        assert!(ok, "{text}");
    }
    let (ok, text) = run(&["member", "set", LIST, "bob@b.test", "--delivery", "digest"]);
    assert!(ok, "{text}");
    let (ok, text) = run(&["forward", "add", "alice@corp.test", "alice@home.test"]);
    assert!(ok, "{text}");
    // A stranger's post is held for the moderator.
    let (mut c, _) = Client::connect(addr).await;
    assert_eq!(c.cmd("EHLO author.arclist.test").await.0, 250);
    let (code, text) = c
        .post(
            "a@author.arclist.test",
            LIST,
            &message("copied-held", 1_000),
        )
        .await;
    assert_eq!(code, 250, "{text}");
    drop(c);
    let held = until_cli_shows(&config, &["held", "ls"], "Subject: copied-held");
    let (_, members) = run(&["member", "ls", LIST]);
    stop(server);

    let url = crate::postgres::cluster().fresh_store();
    let (ok, text) = run(&["store", "copy", "--to", &url]);
    assert!(ok, "store copy: {text}");
    for line in [
        "members\t2 read\t2 in the database",
        "aliases\t1 read\t1 in the database",
        "spooled messages\t1 read\t1 in the database",
        "copied:",
    ] {
        assert!(text.contains(line), "{line:?} in: {text}");
    }
    assert!(!text.contains("MISSING"), "{text}");
    // Once there, never again into the same database unless told.
    let (ok, again) = run(&["store", "copy", "--to", &url]);
    assert!(!ok && again.contains("not empty"), "{again}");

    set_store(dir.path(), &url);
    let server = start(dir.path(), addr);
    let (ok, text) = run(&["member", "ls", LIST]);
    assert!(ok, "{text}");
    assert_eq!(text, members, "the members, with their delivery modes");
    assert!(
        text.contains("bob@b.test") && text.contains("digest"),
        "{text}"
    );
    let (ok, text) = run(&["held", "ls"]);
    assert!(ok && text == held, "the held post: {text}\nwas: {held}");
    let (ok, text) = run(&["forward", "ls"]);
    assert!(
        ok && text.contains("alice@corp.test\talice@home.test\t(store)"),
        "{text}"
    );
    stop(server);
}

/// One receiver's DMARC aggregate report.
fn dmarc_report() -> arclist::auth::dmarc_report::AggregateReport {
    let xml = "<?xml version=\"1.0\"?><feedback><version>1.0</version><report_metadata>\
        <org_name>rx.test</org_name><email>noreply@rx.test</email><report_id>r-1</report_id>\
        <date_range><begin>1795910400</begin><end>1795996799</end></date_range></report_metadata>\
        <policy_published><domain>lists.example</domain><p>none</p></policy_published>\
        <record><row><source_ip>192.0.2.25</source_ip><count>3</count><policy_evaluated>\
        <disposition>none</disposition><dkim>pass</dkim><spf>pass</spf></policy_evaluated></row>\
        <identifiers><header_from>lists.example</header_from></identifiers></record></feedback>";
    arclist::auth::dmarc_report::parse(xml.as_bytes()).expect("report")
}

/// Fills a store file with a row of every kind it keeps; returns the queued post's id.
async fn fill(store: &arclist::state::store::Store) -> u64 {
    use arclist::state::store::{
        Delivery, DeliveryState, Departure, DepartureReason, DigestIssue, Member, QueueEntry,
        SpoolState,
    };
    const L: &str = "list@lists.example";
    let member = |address: &str| Member {
        address: address.into(),
        joined_at: 1,
        ..Member::default()
    };
    store
        .seed_members(L, &[member("ann@a.test"), member("bob@b.test")], false)
        .await
        .expect("seed");
    let why = Departure {
        reason: DepartureReason::Unsubscribed,
        at: 2,
    };
    assert!(store.remove_member(L, "bob@b.test", why).await.expect("rm"));
    store
        .put_alias("al@corp.test", &["al@home.test".to_string()])
        .await
        .expect("alias");
    store.token_secret().await.expect("secret");
    let now = arclist::auth::unix_now();
    store
        .count_rates(&[("sender:ann@a.test:60".to_string(), now + 600)])
        .await
        .expect("rates");
    assert!(
        store
            .put_dmarc_report(&dmarc_report())
            .await
            .expect("report")
    );
    // A post queued to two members, one of them delivered, with its 7-bit twin.
    let envelope = arclist::state::store::SpoolEnvelope {
        mail_from: "ann@a.test".into(),
        rcpt_to: vec![L.into()],
        client_ip: std::net::IpAddr::from([127, 0, 0, 1]),
        helo: "a.test".into(),
        protocol: "ESMTP".into(),
        tls: None,
        received_at: now,
        verdict: None,
        filter: None,
        over_quota: None,
    };
    let id = store
        .spool(envelope, b"Subject: hi\r\n\r\nbody\r\n".to_vec())
        .await
        .expect("spool");
    let (mut meta, _) = store.get(id).await.expect("get").expect("spooled");
    meta.state = SpoolState::Queued;
    let entry = QueueEntry {
        id,
        list: L.into(),
        mail_from: "list-bounces@lists.example".into(),
        recipients: vec!["ann@a.test".into(), "cy@c.test".into()],
        queued_at: now,
        summary: None,
        plain: false,
    };
    store
        .enqueue_post(
            &meta,
            entry,
            b"signed",
            Some(b"seven"),
            Some(arclist::state::store::SeenWindow {
                message_id: "<m1@a.test>",
                since: 0,
            }),
        )
        .await
        .expect("enqueue");
    let delivered = Delivery {
        address: "ann@a.test".into(),
        state: DeliveryState::Delivered,
        attempts: 1,
        next_attempt: 0,
        last_reply: "250 ok".into(),
    };
    store
        .record_deliveries(id, &[delivered])
        .await
        .expect("record");
    store.mark_to_archive(L, id).await.expect("mark");
    store.add_to_digest(L, id, b"copy").await.expect("digest");
    store
        .add_to_digest(L, id + 1, b"next")
        .await
        .expect("digest");
    let issue = DigestIssue {
        volume: 2026,
        issue: 3,
        sent_at: now,
    };
    store.digest_sent(L, &[id + 1], issue).await.expect("sent");
    let post = arclist::state::store::archive::NewArchivedPost {
        post: arclist::state::store::archive::ArchivedPost {
            list: L.into(),
            id: arclist::state::store::archive::archive_id(L, "<m0@a.test>"),
            message_id: "<m0@a.test>".into(),
            date: now,
            subject: "Copied words".into(),
            author_name: "Ann".into(),
            author_address: "ann@a.test".into(),
            parent: None,
            thread: String::new(),
            size: 10,
            removed: false,
            spool_id: None,
        },
        answers: Vec::new(),
        raw: b"Subject: Copied words\r\n\r\nbody\r\n".to_vec(),
        text: "Copied words\nAnn\nbody".into(),
    };
    store.archive_post(post).await.expect("archive");
    id
}

/// What a store answers, as text, for comparing two stores.
async fn answers(store: &arclist::state::store::Store, id: u64) -> Vec<String> {
    const L: &str = "list@lists.example";
    let json = |v: &dyn erased::Json| v.json();
    let archive_id = arclist::state::store::archive::archive_id(L, "<m0@a.test>");
    vec![
        json(&store.members(L).await.expect("members")),
        format!(
            "{:?}",
            store.departure(L, "bob@b.test").await.expect("departure")
        ),
        json(&store.aliases().await.expect("aliases")),
        json(&store.list().await.expect("spool")),
        json(&store.get(id).await.expect("get")),
        json(&store.queued(id).await.expect("queued")),
        json(
            &store
                .queue_entry(id)
                .await
                .expect("entry with its recipients"),
        ),
        json(&store.queued_seven_bit(id).await.expect("7bit")),
        json(&store.active().await.expect("active")),
        json(&store.deliveries(id).await.expect("deliveries")),
        json(&store.token_secret().await.expect("secret")),
        format!(
            "{:?}",
            store.distributed(L, "<m1@a.test>", 0).await.expect("seen")
        ),
        json(&store.dmarc_reports(0).await.expect("reports")),
        json(&store.digest_pending(L).await.expect("digest")),
        format!("{:?}", store.digest_issue(L).await.expect("issue")),
        json(&store.archived(L, &archive_id).await.expect("archived")),
        json(&store.archived_raw(L, &archive_id).await.expect("raw")),
        json(&store.archived_months(L).await.expect("months")),
        json(
            &store
                .archived_search(L, "copied", 10)
                .await
                .expect("search"),
        ),
        json(&store.to_archive(10).await.expect("to archive")),
    ]
}

/// Serializing what stores answer, whatever its type.
mod erased {
    pub trait Json {
        fn json(&self) -> String;
    }
    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> String {
            serde_json::to_string(self).expect("json")
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_row_a_store_file_holds_arrives_in_the_database() {
    use arclist::state::store::{PgStore, RedbStore, Store};
    let dir = tempfile::tempdir().expect("tempdir");
    let file = Store::from(RedbStore::open(&dir.path().join("store.redb")).expect("open"));
    let id = fill(&file).await;
    let before = answers(&file, id).await;
    let url = crate::postgres::cluster().fresh_store();
    let cluster = arclist::base::config::ClusterConfig::default();
    let target = PgStore::open(&url, "node-a", &cluster).await.expect("pg");
    let redb = file.as_redb().expect("redb").clone();
    let counts = arclist::state::store::copy::copy(redb, &target, false)
        .await
        .expect("copy");
    for c in &counts {
        assert!(c.complete() && c.source > 0, "every kind, all of it: {c:?}");
    }
    let shared = Store::from(target);
    assert_eq!(answers(&shared, id).await, before);
    // The rate counter counts on; a new message gets an id after the copied ones.
    let now = arclist::auth::unix_now();
    let key = [("sender:ann@a.test:60".to_string(), now + 600)];
    assert_eq!(shared.count_rates(&key).await.expect("rates"), vec![2]);
    let envelope = shared
        .get(id)
        .await
        .expect("get")
        .expect("there")
        .0
        .envelope;
    let next = shared.spool(envelope, b"x".to_vec()).await.expect("spool");
    assert!(next > id, "new id {next} after {id}");
    // Into a database that holds rows now, only when told.
    let err = arclist::state::store::copy::copy(
        file.as_redb().expect("redb").clone(),
        shared.as_postgres().expect("pg"),
        false,
    )
    .await
    .expect_err("not empty");
    assert!(err.to_string().contains("not empty"), "{err}");
}
