//! What must not get through, checked before `250` (docs/filtering.md): a real rspamd
//! (Debian's, started by the tests on loopback) judging list posts and forwarded mail, mail
//! loops, and forged BIMI fields.

use crate::forwarding::{letter, world_server};
use crate::list_pipeline::{post, world_with};
use crate::rspamd::Rspamd;
use crate::smtp_support::{Client, LIST};
use crate::support::Dns;
use arclist::auth::dns::Zone;
use arclist::state::store::SpoolState;
use std::time::Duration;

/// The GTUBE line: every rspamd rejects a message carrying it.
const GTUBE: &str = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";

/// An rspamd asking a DNS server of its own on loopback (which knows no names), started off
/// the runtime's threads; the DNS server lives as long as the test keeps it.
async fn rspamd() -> (Rspamd, Dns) {
    let dns = Dns::start(Zone::new()).await;
    let addr = dns.addr();
    let rspamd = tokio::task::spawn_blocking(move || Rspamd::start(&addr))
        .await
        .expect("rspamd starts");
    (rspamd, dns)
}

fn filter_section(rspamd: &Rspamd) -> String {
    format!(
        "[filter]\nrspamd = \"{}\"\ntimeout_secs = 10\n",
        rspamd.url()
    )
}

/// Sends `message` to `rcpt` from `source`; the reply to its data.
async fn send(
    smtp: std::net::SocketAddr,
    source: &str,
    mail_from: &str,
    rcpt: &str,
    message: &[u8],
) -> (u16, String) {
    let (mut c, _) = Client::connect_from(smtp, source).await;
    assert_eq!(c.cmd("EHLO mx.sender.test").await.0, 250);
    c.post(mail_from, rcpt, message).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gtube_to_a_list_is_refused_at_data_and_reaches_no_member() {
    let (rspamd, _rdns) = rspamd().await;
    let w = world_with(&filter_section(&rspamd), "").await;
    let spam = w.bank_signed(&post(
        "Alice <alice@bank.test>",
        "Offer",
        &format!("{GTUBE}\r\n"),
    ));
    let (code, text) = send(w.t.smtp(), "127.0.0.21", "alice@bank.test", LIST, &spam).await;
    assert_eq!(code, 554, "{text}");
    assert!(
        text.starts_with("5.7.1 rejected by the spam filter: Gtube pattern"),
        "{text}"
    );
    assert!(w.t.spool().await.is_empty(), "nothing was accepted");
    // A clean post from the same member in the same way goes to every member: the refusal
    // was the filter's, not the path's.
    let clean = w.bank_signed(&post("Alice <alice@bank.test>", "Minutes", "Attached.\r\n"));
    let id = w
        .send("127.0.0.21", "mx.bank.test", "alice@bank.test", &clean)
        .await;
    let copy = w.delivered(id).await;
    let spooled =
        w.t.server
            .store()
            .get(id)
            .await
            .expect("store")
            .expect("spooled")
            .0;
    let mark = spooled
        .envelope
        .filter
        .expect("the filter's verdict is kept");
    assert_eq!(mark.action, "no action", "{mark:?}");
    assert!(!copy.contains("X-Spam"), "a clean post is not flagged");
    for member in ["alice@bank.test", "bob@club.test", "reader@elsewhere.test"] {
        assert!(
            w.sink
                .inbox(member)
                .iter()
                .all(|m| !String::from_utf8_lossy(m).contains(GTUBE)),
            "{member} received the spam"
        );
    }
    drop(rspamd);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_that_holds_spam_holds_gtube_for_the_moderator_with_the_filters_reason() {
    let (rspamd, _rdns) = rspamd().await;
    let w = world_with(&filter_section(&rspamd), "spam_reject = \"hold\"").await;
    let spam = w.bank_signed(&post(
        "Alice <alice@bank.test>",
        "Offer",
        &format!("{GTUBE}\r\n"),
    ));
    let id = w
        .send("127.0.0.21", "mx.bank.test", "alice@bank.test", &spam)
        .await;
    let meta = w.t.settled(id).await;
    assert_eq!(meta.state, SpoolState::Held, "{:?}", meta.note);
    let note = meta.note.unwrap_or_default();
    assert!(
        note.contains("the spam filter says reject") && note.contains("Gtube pattern"),
        "{note}"
    );
    // `arclist report` says what the filter let in, and why it is held.
    let report = arclist::surfaces::operate::report::build(&w.t.server.store(), 0, Some(LIST))
        .await
        .expect("report");
    assert_eq!((report.filtered.checked, report.filtered.held), (1, 1));
    assert!(
        report.filtered.highest_score >= 15.0,
        "{:?}",
        report.filtered
    );
    assert!(
        report.text().contains("1 held for the moderator"),
        "{}",
        report.text()
    );
    drop(rspamd);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gtube_to_an_alias_is_refused_before_250_and_no_dsn_is_sent() {
    let (rspamd, _rdns) = rspamd().await;
    let w = world_server("", "", &filter_section(&rspamd)).await;
    let mut spam = letter("offer");
    spam.extend_from_slice(format!("{GTUBE}\r\n").as_bytes());
    let spam = w.signed(&spam);
    let (code, text) = w
        .send("127.0.0.21", "alice@bank.test", "sales@corp.test", &spam)
        .await;
    assert_eq!(code, 554, "{text}");
    assert!(text.contains("Gtube pattern"), "{text}");
    // Nothing was spooled, so nothing can be forwarded or bounced; and the sink saw nothing.
    assert!(w.t.spool().await.is_empty(), "nothing was accepted");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        w.sink.received.lock().expect("lock").is_empty(),
        "no copy and no DSN left arclist"
    );
    // The same letter without GTUBE is forwarded.
    let clean = w.signed(&letter("quote"));
    let (code, text) = w
        .send("127.0.0.21", "alice@bank.test", "sales@corp.test", &clean)
        .await;
    assert_eq!(code, 250, "{text}");
    assert_eq!(w.inbox("ann@gmail.test", 1).await.len(), 1);
    drop(rspamd);
}

/// A list that accepts anyone's posts, delivering to a recording sink as reader@elsewhere.test's
/// MX, asking `rspamd`, run as its own process (its log read as written); the DNS server (keep
/// it), the sink, the folder and the SMTP address.
async fn served_process(
    rspamd: &Rspamd,
) -> (
    Dns,
    arclist_testbed::sink::Sink,
    tempfile::TempDir,
    std::net::SocketAddr,
) {
    use arclist::auth::dns::{Mx, ZoneRecord};
    let dns = Dns::start(Zone::new()).await;
    dns.server.with_zone(|z| {
        z.add(
            "elsewhere.test",
            ZoneRecord::Mx(Mx {
                preference: 10,
                exchange: "mx.sink.test".into(),
            }),
        );
        z.add(
            "mx.sink.test",
            ZoneRecord::A("127.0.0.1".parse().expect("ip")),
        );
    });
    let (sink, sink_addr) = arclist_testbed::sink::Sink::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let addr = crate::smtp_support::private_listen_addr();
    crate::smtp_support::write_config_with_list(
        dir.path(),
        &dns.addr(),
        &addr.to_string(),
        &format!(
            "[delivery]\nport = {}\ntimeout_secs = 5\n{}",
            sink_addr.port(),
            filter_section(rspamd)
        ),
        "non_member_action = \"accept\"\nmembers = [\"reader@elsewhere.test\"]",
    );
    (dns, sink, dir, addr)
}

fn plain_post(subject: &str) -> Vec<u8> {
    format!(
        "From: Writer <writer@elsewhere.test>\r\nTo: {LIST}\r\nSubject: {subject}\r\n\
         Date: Sun, 06 Dec 2026 07:00:00 +0000\r\nMessage-ID: <{subject}@elsewhere.test>\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         The meeting moves to Thursday at ten.\r\n"
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_post_passes_with_its_score_logged_and_without_rspamd_posts_wait_451_until_it_is_back()
 {
    let (mut rspamd, _rdns) = rspamd().await;
    let (_dns, sink, dir, addr) = served_process(&rspamd).await;
    let server = crate::server_process::ServerProcess::start(dir.path(), addr);
    let (mut c, _) = Client::connect(addr).await;
    assert_eq!(c.cmd("EHLO mx.elsewhere.test").await.0, 250);
    let (code, text) = c
        .post("writer@elsewhere.test", LIST, &plain_post("clean"))
        .await;
    assert_eq!(code, 250, "{text}");
    // The server logs before it replies, but the test reads its log through a pipe on
    // another thread: the line may not be read yet when the reply is.
    crate::smtp_support::until("the verdict is logged", async || {
        server.log_count("spam filter verdict") >= 1
    })
    .await;
    let verdicts = server.log_lines("spam filter verdict");
    assert_eq!(verdicts.len(), 1, "{verdicts:?}");
    let line: serde_json::Value = serde_json::from_str(&verdicts[0]).expect("a JSON log line");
    let fields = &line["fields"];
    assert_eq!(fields["action"], "no action", "{line}");
    assert!(
        fields["score"].is_number(),
        "the score is in the log: {line}"
    );
    assert_eq!(fields["to"], LIST, "{line}");

    // rspamd goes away: the post is deferred, not taken unchecked.
    tokio::task::block_in_place(|| rspamd.stop());
    let (code, text) = c
        .post("writer@elsewhere.test", LIST, &plain_post("later"))
        .await;
    assert_eq!(code, 451, "{text}");
    assert!(
        text.starts_with("4.7.1 the spam filter is not answering"),
        "{text}"
    );
    crate::smtp_support::until("the missing verdict is logged", async || {
        server.log_count("spam filter gave no verdict") >= 1
    })
    .await;
    assert_eq!(server.log_count("spam filter gave no verdict"), 1);
    // Back again: the sender's retry is taken and reaches the member.
    tokio::task::block_in_place(|| rspamd.resume());
    let (code, text) = c
        .post("writer@elsewhere.test", LIST, &plain_post("later"))
        .await;
    assert_eq!(code, 250, "{text}");
    crate::smtp_support::until("both posts reach the member", async || {
        sink.inbox("reader@elsewhere.test").len() == 2
    })
    .await;
    let subjects: Vec<bool> = ["clean", "later"]
        .iter()
        .map(|s| {
            sink.inbox("reader@elsewhere.test")
                .iter()
                .any(|m| String::from_utf8_lossy(m).contains(&format!("Subject: {s}")))
        })
        .collect();
    assert_eq!(subjects, [true, true]);
    drop(server);
}

/// `n` Received fields, as `n` relays before us would have written them.
fn hops(n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "Received: from relay{i}.test by relay{}.test; Sun, 6 Dec 2026 07:00:00 +0000\r\n",
                i + 1
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loops_are_refused_554_before_250_too_many_hops_the_lists_own_list_id_or_seal() {
    let w = world_with("", "").await;
    let signed =
        |subject: &str| w.bank_signed(&post("Alice <alice@bank.test>", subject, "Hello.\r\n"));
    let looping = [hops(26).into_bytes(), signed("loop")].concat();
    let (code, text) = send(w.t.smtp(), "127.0.0.21", "alice@bank.test", LIST, &looping).await;
    assert_eq!(code, 554, "{text}");
    assert!(text.starts_with("5.4.6 26 Received fields"), "{text}");
    // The same message back through the list: it carries the list's List-Id.
    let again = [
        b"List-Id: Members <members.lists.arclist.test>\r\n".as_slice(),
        &signed("again"),
    ]
    .concat();
    let (code, text) = send(w.t.smtp(), "127.0.0.21", "alice@bank.test", LIST, &again).await;
    assert_eq!(code, 554, "{text}");
    assert!(text.starts_with("5.4.6 mail loop"), "{text}");
    // Or with the list's own ARC seal (a copy the list sealed, whose List-Id was stripped).
    let sealed = [
        b"ARC-Seal: i=1; a=rsa-sha256; cv=none; d=lists.arclist.test; s=arc1; t=1; b=AAAA\r\n"
            .as_slice(),
        &signed("sealed"),
    ]
    .concat();
    let (code, text) = send(w.t.smtp(), "127.0.0.21", "alice@bank.test", LIST, &sealed).await;
    assert_eq!(code, 554, "{text}");
    assert!(
        text.contains("ARC seal (d=lists.arclist.test, s=arc1)"),
        "{text}"
    );
    assert!(w.t.spool().await.is_empty(), "none was accepted");
    // 25 hops is a long way, not a loop; another list's List-Id is a nested list's post.
    let far = [
        hops(25).into_bytes(),
        b"List-Id: <national.lists.other.test>\r\n".to_vec(),
        signed("far"),
    ]
    .concat();
    let id = w
        .send("127.0.0.21", "mx.bank.test", "alice@bank.test", &far)
        .await;
    assert!(w.t.settled(id).await.state != SpoolState::Received);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_bimi_fields_never_reach_members_and_a_rewritten_post_drops_its_selector() {
    let w = world_with("", "").await;
    let bimi = "BIMI-Location: v=BIMI1; l=https://evil.test/bank.svg\r\n\
                BIMI-Indicator: PHN2ZyB4bWxucz0iaHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmciLz4=\r\n";
    // alice@bank.test: p=reject, so the list rewrites From; her selector names bank's logo.
    let alice = w.bank_signed(&post("Alice <alice@bank.test>", "Logo", "Hi.\r\n"));
    let alice = [
        format!("{bimi}BIMI-Selector: v=BIMI1; s=brand\r\n").into_bytes(),
        alice,
    ]
    .concat();
    let id = w
        .send("127.0.0.21", "mx.bank.test", "alice@bank.test", &alice)
        .await;
    let copy = w.delivered(id).await;
    let head = copy
        .split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(head.contains("x-original-from"), "the From was rewritten");
    for gone in ["bimi-location", "bimi-indicator", "bimi-selector"] {
        assert!(!head.contains(gone), "{gone} reached the members:\n{copy}");
    }
    // bob@club.test: p=none, From kept, so his selector stays; the forged fields still go.
    let bob = post("Bob <bob@club.test>", "Kept", "Hi.\r\n");
    let bob = [
        format!("{bimi}BIMI-Selector: v=BIMI1; s=club\r\n").into_bytes(),
        bob,
    ]
    .concat();
    let id = w
        .send("127.0.0.22", "mx.club.test", "bob@club.test", &bob)
        .await;
    let copy = w.delivered(id).await;
    let head = copy
        .split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(head.contains("bimi-selector: v=bimi1; s=club"), "{copy}");
    assert!(
        !head.contains("bimi-location") && !head.contains("bimi-indicator"),
        "{copy}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarded_message_loses_unsigned_bimi_fields_and_keeps_its_dkim_signature() {
    let w = world_server("", "", "").await;
    let signed = w.signed(&letter("logo"));
    let forged = [
        b"BIMI-Location: v=BIMI1; l=https://evil.test/bank.svg\r\nBIMI-Indicator: PHN2Zy8+\r\n"
            .as_slice(),
        &signed,
    ]
    .concat();
    let (code, text) = w
        .send("127.0.0.21", "alice@bank.test", "sales@corp.test", &forged)
        .await;
    assert_eq!(code, 250, "{text}");
    let got = w.inbox("ann@gmail.test", 1).await;
    let copy = &got[0].1;
    let text = String::from_utf8_lossy(copy).to_ascii_lowercase();
    assert!(
        !text.contains("bimi-location") && !text.contains("bimi-indicator"),
        "{text}"
    );
    let v =
        w.t.dns
            .authenticator()
            .verify(copy, None, arclist::auth::unix_now())
            .await;
    assert!(
        v.dkim
            .iter()
            .any(|d| d.domain == "bank.test" && d.verdict.as_str() == "pass"),
        "bank.test's signature still verifies: {:?}",
        v.dkim
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_51st_recipient_of_a_message_gets_452_naming_the_limit() {
    let t = crate::smtp_support::TestServer::start("").await;
    let (mut c, _) = Client::connect(t.smtp()).await;
    assert_eq!(c.cmd("EHLO mx.sender.test").await.0, 250);
    assert_eq!(c.cmd("MAIL FROM:<a@sender.test>").await.0, 250);
    for n in 1..=50 {
        assert_eq!(
            c.cmd(&format!("RCPT TO:<{LIST}>")).await.0,
            250,
            "recipient {n}"
        );
    }
    let (code, text) = c.cmd(&format!("RCPT TO:<{LIST}>")).await;
    assert_eq!(code, 452, "{text}");
    assert_eq!(
        text.trim_end(),
        "4.5.3 too many recipients: at most 50 per message (max_recipients)"
    );
}

#[test]
fn an_alias_saved_with_more_targets_than_max_targets_is_refused_naming_the_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    crate::smtp_support::write_config(dir.path(), "127.0.0.1:53", "127.0.0.1:0", "");
    let server = dir.path().join("server.toml");
    let text = std::fs::read_to_string(&server).expect("server.toml");
    std::fs::write(&server, format!("forwards_dir = \"forwards\"\n{text}")).expect("write");
    std::fs::create_dir_all(dir.path().join("forwards")).expect("dir");
    std::fs::write(
        dir.path().join("forwards/corp.toml"),
        "domain = \"corp.test\"\nmax_targets = 2\n[aliases]\nsales = [\"ann@gmail.test\"]\n\
         [signing]\nselector = \"fwd\"\nkey = \"fwd.pem\"\ncreate_key = true\n\
         [srs]\nsecret_file = \"srs.secret\"\ncreate_secret = true\n",
    )
    .expect("forwarding file");
    let run = |args: &[&str]| crate::support::arclist_cli(&server, args);
    let (ok, text) = run(&[
        "forward",
        "add",
        "team@corp.test",
        "a@b.test",
        "b@b.test",
        "c@b.test",
    ]);
    assert!(
        !ok && text.contains("3 targets, more than the forwarding domain's max_targets (2)"),
        "{text}"
    );
    let (ok, text) = run(&["forward", "add", "team@corp.test", "a@b.test", "b@b.test"]);
    assert!(ok, "{text}");
}

/// As `rspamd()`, with `actions` over Debian's action thresholds.
async fn rspamd_with(actions: &'static str) -> (Rspamd, Dns) {
    let dns = Dns::start(Zone::new()).await;
    let addr = dns.addr();
    let rspamd = tokio::task::spawn_blocking(move || Rspamd::start_with(&addr, actions))
        .await
        .expect("rspamd starts");
    (rspamd, dns)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewrite_subject_gives_the_lists_copy_rspamds_subject_and_the_spam_flag() {
    // Every message scores above -50: rspamd says `rewrite subject` to all of them.
    let (rspamd, _rdns) =
        rspamd_with("rewrite_subject = -50;\nsubject = \"***SPAM*** %s\";\n").await;
    let w = world_with(&filter_section(&rspamd), "subject_tag = \"[members] \"").await;
    let p = w.bank_signed(&post("Alice <alice@bank.test>", "Minutes", "Attached.\r\n"));
    let id = w
        .send("127.0.0.21", "mx.bank.test", "alice@bank.test", &p)
        .await;
    let copy = w.delivered(id).await;
    let head = copy.split("\r\n\r\n").next().unwrap_or_default();
    let lines: Vec<&str> = head.split("\r\n").collect();
    assert!(
        lines.contains(&"Subject: [members] ***SPAM*** Minutes"),
        "{head}"
    );
    assert!(lines.contains(&"X-Spam: Yes"), "{head}");
    drop(rspamd);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_header_flags_a_forwarded_message_and_leaves_the_original_untouched() {
    let (rspamd, _rdns) = rspamd_with("add_header = -50;\n").await;
    let w = world_server("", "", &filter_section(&rspamd)).await;
    let original = w.signed(&letter("flagged"));
    let (code, text) = w
        .send(
            "127.0.0.21",
            "alice@bank.test",
            "sales@corp.test",
            &original,
        )
        .await;
    assert_eq!(code, 250, "{text}");
    let got = w.inbox("ann@gmail.test", 1).await;
    let copy = String::from_utf8(got[0].1.clone()).expect("utf-8");
    assert!(copy.contains("\r\nX-Spam: Yes\r\n"), "{copy}");
    assert!(
        copy.ends_with(std::str::from_utf8(&original).expect("utf-8")),
        "the original follows our fields byte for byte"
    );
    drop(rspamd);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_error_accept_takes_posts_unchecked_when_the_filter_is_unreachable() {
    // A port nothing listens on: the private address was bound, read and let go.
    let nobody = crate::smtp_support::private_listen_addr();
    let w = world_with(
        &format!("[filter]\nrspamd = \"http://{nobody}\"\non_error = \"accept\"\n"),
        "",
    )
    .await;
    let p = w.bank_signed(&post("Alice <alice@bank.test>", "Unchecked", "Hi.\r\n"));
    let id = w
        .send("127.0.0.21", "mx.bank.test", "alice@bank.test", &p)
        .await;
    w.delivered(id).await;
    let spooled =
        w.t.server
            .store()
            .get(id)
            .await
            .expect("store")
            .expect("spooled")
            .0;
    assert_eq!(
        spooled.envelope.filter, None,
        "no verdict is kept: none was given"
    );
}
