//! Operating a running server: the CLI (a separate process) goes through the admin API while
//! the server runs; held posts reach the moderators, who decide them with the CLI or by
//! replying; a closed pipe does not make the CLI panic.

use crate::list_pipeline::{post, world_prepared};
use crate::smtp_support::{LIST, until};
use arclist::state::store::SpoolState;

const ADMIN: &str = "[admin]\nlisten = \"127.0.0.1:0\"\ntoken_file = \"admin.token\"\n";
const MODERATED: &str = "owners = [\"owner@elsewhere.test\"]\nmoderators = [\"mod@club.test\"]\n";
/// With one robot reply an hour: a moderator's decisions by mail must all count regardless.
const STRICT: &str = "max_replies_per_hour = 1\n";

/// Runs `arclist ARGS --config CONFIG` as its own process; success and all it printed.
pub async fn cli(config: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_arclist"))
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .await
        .expect("arclist runs");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

fn write_token(dir: &std::path::Path) {
    std::fs::write(
        dir.join("admin.token"),
        "an-admin-token-of-32-characters!\n",
    )
    .expect("token");
}

/// A moderation token in the notices `inbox` holds for post `id`.
fn token_for(inbox: &[Vec<u8>], id: u64) -> Option<String> {
    inbox.iter().find_map(|m| {
        let text = String::from_utf8_lossy(m);
        let subject = text.lines().find(|l| l.starts_with("Subject: approve "))?;
        let token = subject
            .trim_start_matches("Subject: approve ")
            .split(':')
            .next()?;
        token
            .starts_with(&format!("{id:x}-"))
            .then(|| token.to_string())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_server_is_administered_with_the_cli_and_by_mail() {
    let w = world_prepared(ADMIN, &format!("{MODERATED}{STRICT}"), None, write_token).await;
    let config = w.t.dir.path().join("server.toml");
    // A member added while the server runs gets the next post.
    let (ok, text) = cli(&config, &["member", "add", LIST, "carol@elsewhere.test"]).await;
    assert!(ok, "{text}");
    assert!(
        text.contains("carol@elsewhere.test joined members@lists.arclist.test"),
        "{text}"
    );
    let id = w
        .send(
            "127.0.0.22",
            "mx.club.test",
            "bob@club.test",
            &post("Bob <bob@club.test>", "Hello", "Hi.\r\n"),
        )
        .await;
    assert_eq!(w.t.settled(id).await.state, SpoolState::Queued);
    until("carol gets the post", async || {
        !w.sink.inbox("carol@elsewhere.test").is_empty()
    })
    .await;

    // A non-member's post is held; the moderators hear of it, the CLI lists it.
    let stranger = |subject: &str| post("Dan <dan@club.test>", subject, "From outside.\r\n");
    let held = w
        .send(
            "127.0.0.22",
            "mx.club.test",
            "dan@club.test",
            &stranger("First"),
        )
        .await;
    assert_eq!(w.t.settled(held).await.state, SpoolState::Held);
    until("the moderator's notice arrives", async || {
        token_for(&w.sink.inbox("mod@club.test"), held).is_some()
    })
    .await;
    until("the owner's notice arrives", async || {
        token_for(&w.sink.inbox("owner@elsewhere.test"), held).is_some()
    })
    .await;
    let notice = String::from_utf8_lossy(&w.sink.inbox("mod@club.test")[0]).into_owned();
    assert!(
        notice.contains("not a member") && notice.contains("dmarc=pass"),
        "reason and checks: {notice}"
    );
    let (ok, text) = cli(&config, &["held", "ls"]).await;
    assert!(
        ok && text.contains(&format!("{held}\tfrom <dan@club.test>")),
        "{text}"
    );
    assert!(
        text.contains("\tFrom: Dan <dan@club.test>\tSubject: First"),
        "held ls shows the author and subject: {text}"
    );
    // Approved with the CLI: distributed at once, no restart.
    let (ok, text) = cli(&config, &["held", "approve", &held.to_string()]).await;
    assert!(ok && text.contains("being distributed"), "{text}");
    until("the approved post is queued", async || {
        w.t.server
            .store()
            .get(held)
            .await
            .ok()
            .flatten()
            .is_some_and(|(m, _)| m.state == SpoolState::Queued)
    })
    .await;
    until("members get it", async || {
        w.sink.inbox("reader@elsewhere.test").len() >= 2
    })
    .await;
    // Decided once: a second decision is refused and changes nothing.
    let (ok, text) = cli(&config, &["held", "reject", &held.to_string()]).await;
    assert!(!ok && text.contains("not held"), "{text}");
    // The notices went out as plain notices, not as list posts with per-member fields.
    let notice = String::from_utf8_lossy(&w.sink.inbox("mod@club.test")[0]).into_owned();
    assert!(!notice.contains("List-Unsubscribe"), "{notice}");

    // Approved by the moderator's reply.
    let second = w
        .send(
            "127.0.0.22",
            "mx.club.test",
            "dan@club.test",
            &stranger("Second"),
        )
        .await;
    assert_eq!(w.t.settled(second).await.state, SpoolState::Held);
    let mut token = None;
    until("the second notice arrives", async || {
        token = token_for(&w.sink.inbox("mod@club.test"), second);
        token.is_some()
    })
    .await;
    let token = token.expect("token");
    let reply = format!(
        "From: Mod <mod@club.test>\r\nTo: members-request@lists.arclist.test\r\nSubject: Re: approve {token}: held post to {LIST}\r\n\
         Date: Sun, 29 Nov 2026 10:00:00 +0000\r\nMessage-ID: <reply-1@club.test>\r\n\r\nFine by me.\r\n"
    );
    w.send_to(
        "127.0.0.22",
        "mx.club.test",
        "mod@club.test",
        "members-request@lists.arclist.test",
        reply.as_bytes(),
    )
    .await;
    until("the post approved by reply is queued", async || {
        w.t.server
            .store()
            .get(second)
            .await
            .ok()
            .flatten()
            .is_some_and(|(m, _)| m.state == SpoolState::Queued)
    })
    .await;

    // A reply from someone who does not moderate, or with a forged token, changes nothing.
    let third = w
        .send(
            "127.0.0.22",
            "mx.club.test",
            "dan@club.test",
            &stranger("Third"),
        )
        .await;
    assert_eq!(w.t.settled(third).await.state, SpoolState::Held);
    let mut token = None;
    until("the third notice arrives", async || {
        token = token_for(&w.sink.inbox("mod@club.test"), third);
        token.is_some()
    })
    .await;
    let token = token.expect("token");
    let command = |from: &str, subject: &str| {
        format!(
            "From: {from}\r\nTo: members-request@lists.arclist.test\r\nSubject: {subject}\r\n\
             Date: Sun, 29 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{}@club.test>\r\n\r\nOk.\r\n",
            subject.len() + from.len()
        )
    };
    let request = "members-request@lists.arclist.test";
    let not_a_moderator = command("Dan <dan@club.test>", &format!("approve {token}"));
    let forged = command(
        "Mod <mod@club.test>",
        &format!("approve {third:x}-aaaaaaaaaaaaaaaa"),
    );
    for (sender, message) in [
        ("dan@club.test", not_a_moderator),
        ("mod@club.test", forged),
    ] {
        let id = w
            .send_to(
                "127.0.0.22",
                "mx.club.test",
                sender,
                request,
                message.as_bytes(),
            )
            .await;
        w.t.settled(id).await;
    }
    assert_eq!(
        w.t.server
            .store()
            .get(third)
            .await
            .expect("get")
            .expect("held")
            .0
            .state,
        SpoolState::Held
    );
    // The moderators' daily digest lists what still waits.
    let config_now = arclist::base::config::Config::load(Some(&config)).expect("config");
    let lists = arclist::stages::list::Lists::new([arclist::stages::list::ListRuntime::load(
        &config_now.lists[0],
    )
    .expect("list")]);
    let digests =
        arclist::assembly::server::reports::digests(&w.t.server.store(), &lists).expect("digest");
    assert_eq!(digests, 1);
    until("the digest arrives", async || {
        w.sink
            .inbox("mod@club.test")
            .iter()
            .any(|m| String::from_utf8_lossy(m).contains(&format!("{third}  token {third:x}-")))
    })
    .await;
    // Rejected by the moderator's reply, with a reason recorded.
    let reject = format!(
        "From: Mod <mod@club.test>\r\nTo: members-request@lists.arclist.test\r\nSubject: reject {token}\r\n\
         Date: Sun, 29 Nov 2026 10:00:00 +0000\r\nMessage-ID: <reply-2@club.test>\r\n\r\nOff topic here.\r\n\r\n> quoted\r\n"
    );
    w.send_to(
        "127.0.0.22",
        "mx.club.test",
        "mod@club.test",
        "members-request@lists.arclist.test",
        reject.as_bytes(),
    )
    .await;
    until("the post is rejected", async || {
        w.t.server
            .store()
            .get(third)
            .await
            .ok()
            .flatten()
            .is_some_and(|(m, _)| {
                m.state == SpoolState::Rejected
                    && m.note
                        .as_deref()
                        .is_some_and(|n| n.contains("Off topic here."))
            })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_commands_over_the_api_survive_a_closed_pipe_and_departures_stick() {
    let w = world_prepared(ADMIN, MODERATED, None, write_token).await;
    let dir = w.t.dir.path();
    let config = dir.join("server.toml");
    let file = dir.join("many.txt");
    let lines: String = (0..5000)
        .map(|i| format!("Member {i} <m{i}@elsewhere.test>\n"))
        .collect();
    std::fs::write(&file, lines).expect("write");
    let (ok, text) = cli(
        &config,
        &["member", "import", LIST, file.to_str().expect("utf-8")],
    )
    .await;
    assert!(
        ok && text.contains("5000 added, 0 already members"),
        "{text}"
    );
    // `member ls | head -1`: the CLI stops quietly when its reader goes away.
    let out = tokio::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -o pipefail; '{}' member ls {LIST} --config '{}' | head -1",
            env!("CARGO_BIN_EXE_arclist"),
            config.display()
        ))
        .output()
        .await
        .expect("bash");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !stderr.contains("panicked"),
        "{stderr}"
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
    // Removed with the CLI while running; not brought back by a sync of the list file.
    let (ok, text) = cli(&config, &["member", "remove", LIST, "m7@elsewhere.test"]).await;
    assert!(ok && text.contains("left"), "{text}");
    let store = w.t.server.store();
    assert!(
        !store
            .is_member(LIST, "m7@elsewhere.test")
            .await
            .expect("store")
    );
    let departure = store
        .departure(LIST, "m7@elsewhere.test")
        .await
        .expect("store")
        .expect("kept");
    assert_eq!(
        departure.reason,
        arclist::state::store::DepartureReason::Removed
    );
    // A bad import names the file and line and changes nothing.
    std::fs::write(&file, "ok@elsewhere.test\nnot an address\n").expect("write");
    let (ok, text) = cli(
        &config,
        &["member", "import", LIST, file.to_str().expect("utf-8")],
    )
    .await;
    assert!(!ok && text.contains("many.txt:2"), "{text}");
    assert!(
        !store
            .is_member(LIST, "ok@elsewhere.test")
            .await
            .expect("store")
    );
    // Lists are created on a running server and served at once; a name that would leave
    // lists/ is refused; a failed creation leaves no file behind.
    let (ok, text) = cli(&config, &["list", "create", "../x@lists.arclist.test"]).await;
    assert!(!ok && text.contains("not a list address"), "{text}");
    let (ok, text) = cli(
        &config,
        &[
            "list",
            "create",
            "news@lists.arclist.test",
            "--selector",
            "n1",
        ],
    )
    .await;
    assert!(ok && text.contains("reloaded"), "{text}");
    let (ok, text) = cli(&config, &["list", "show", "news@lists.arclist.test"]).await;
    assert!(ok && text.contains("served             yes"), "{text}");
    let (ok, text) = cli(
        &config,
        &[
            "list",
            "create",
            "other@lists.arclist.test",
            "--selector",
            "n1",
        ],
    )
    .await;
    assert!(!ok && text.contains("selector"), "{text}");
    assert!(!dir.join("lists/other.toml").exists());
    // The report and the queue answer too.
    let (ok, text) = cli(&config, &["report", "--json"]).await;
    assert!(ok && text.contains("\"senders\""), "{text}");
    let (ok, text) = cli(&config, &["queue", "ls"]).await;
    assert!(ok, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_whose_post_is_rejected_is_told_why() {
    let w = world_prepared(
        ADMIN,
        &format!("{MODERATED}moderated = true\n"),
        None,
        write_token,
    )
    .await;
    let config = w.t.dir.path().join("server.toml");
    let id = w
        .send(
            "127.0.0.22",
            "mx.club.test",
            "bob@club.test",
            &post("Bob <bob@club.test>", "Sale", "Buy.\r\n"),
        )
        .await;
    assert_eq!(w.t.settled(id).await.state, SpoolState::Held);
    let (ok, text) = cli(
        &config,
        &[
            "held",
            "reject",
            &id.to_string(),
            "--reason",
            "no adverts here",
        ],
    )
    .await;
    assert!(ok, "{text}");
    until("Bob is told", async || {
        !w.sink.inbox("bob@club.test").is_empty()
    })
    .await;
    let notice = String::from_utf8_lossy(&w.sink.inbox("bob@club.test")[0]).into_owned();
    assert!(
        notice.contains("was not distributed") && notice.contains("no adverts here"),
        "{notice}"
    );
}

/// Spools `message` from bob@club.test to the list with the server stopped (the store opened
/// as the CLI would), so the pipeline meets it after the restart; returns its id.
async fn spool_offline(dir: &std::path::Path, message: &[u8]) -> u64 {
    let store = crate::smtp_support::open_store(dir).await;
    let envelope = arclist::state::store::SpoolEnvelope {
        mail_from: "bob@club.test".into(),
        rcpt_to: vec![LIST.into()],
        client_ip: "127.0.0.22".parse().expect("ip"),
        helo: "mx.club.test".into(),
        protocol: "ESMTP".into(),
        tls: None,
        received_at: arclist::auth::unix_now(),
        verdict: None,
        filter: None,
        over_quota: None,
    };
    let spooled = tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current().block_on(store.spool(envelope, message.to_vec()))
    });
    spooled.expect("spooled")
}

/// Rewrites spooled message `id`'s record, in the store's own file or database, as a newer
/// arclist might have written it: with a state this one does not know, so it does not decode.
fn corrupt_record(dir: &std::path::Path, id: u64) {
    const FROM: &str = r#""state":"received""#;
    const TO: &str = r#""state":"archived""#;
    if crate::postgres::tests_use_postgres() {
        let config = std::fs::read_to_string(dir.join("server.toml")).expect("server.toml");
        let schema = config
            .split("search_path%3D")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("the test schema in the store URL");
        let changed = crate::postgres::cluster().sql(&format!(
            "UPDATE {schema}.spool SET meta = replace(meta, '{FROM}', '{TO}') WHERE id = {id} RETURNING id"
        ));
        assert_eq!(changed.trim(), id.to_string());
        return;
    }
    use redb::ReadableTable;
    const META: redb::TableDefinition<u64, &str> = redb::TableDefinition::new("spool_meta");
    let db = redb::Database::open(dir.join("var/store.redb")).expect("store file");
    let txn = db.begin_write().expect("write");
    {
        let mut table = txn.open_table(META).expect("spool_meta");
        let json = table
            .get(id)
            .expect("read")
            .expect("the record")
            .value()
            .to_string();
        assert!(json.contains(FROM), "{json}");
        table
            .insert(id, json.replace(FROM, TO).as_str())
            .expect("rewrite");
    }
    txn.commit().expect("commit");
}

/// A message whose record does not decode fails at every try, for good: it is held for the
/// moderator with the reason (seen by `arclist held ls` and in the moderator's notice) instead
/// of being retried for ever, and the list's next post is delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_fails_for_good_is_held_with_the_reason_and_the_list_goes_on() {
    let w = world_prepared(ADMIN, MODERATED, None, write_token).await;
    let mut broken = 0;
    let w = w
        .restart_after(async |config| {
            let dir = config.parent().expect("dir");
            broken = spool_offline(dir, &post("Bob <bob@club.test>", "Broken", "Hm.\r\n")).await;
            corrupt_record(dir, broken);
        })
        .await;
    // Until it is set aside, every read of it fails.
    until("the broken message is set aside", async || {
        w.t.server
            .store()
            .get(broken)
            .await
            .is_ok_and(|m| m.is_some())
    })
    .await;
    let meta = w.t.settled(broken).await;
    assert_eq!(meta.state, SpoolState::Held, "{:?}", meta.note);
    let note = meta.note.unwrap_or_default();
    assert!(
        note.contains("set aside") && note.contains(&format!("corrupt metadata {broken}")),
        "{note}"
    );
    let config = w.t.dir.path().join("server.toml");
    let (ok, text) = cli(&config, &["held", "ls"]).await;
    assert!(
        ok && text.contains(&format!("{broken}\tfrom <bob@club.test>\tset aside")),
        "{text}"
    );
    until("the moderator is told", async || {
        token_for(&w.sink.inbox("mod@club.test"), broken).is_some()
    })
    .await;
    let notice = String::from_utf8_lossy(&w.sink.inbox("mod@club.test")[0]).into_owned();
    assert!(notice.contains("corrupt metadata"), "{notice}");
    // The list goes on: a member's next post reaches the members.
    let next = w
        .send(
            "127.0.0.22",
            "mx.club.test",
            "bob@club.test",
            &post("Bob <bob@club.test>", "Next", "Still here.\r\n"),
        )
        .await;
    assert_eq!(w.t.settled(next).await.state, SpoolState::Queued);
    until("a member gets the next post", async || {
        w.sink
            .inbox("alice@bank.test")
            .iter()
            .any(|m| String::from_utf8_lossy(m).contains("Subject: Next"))
    })
    .await;
}
