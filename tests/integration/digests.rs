//! Members' digests over real SMTP: five posts, then `arclist digest send`; the MIME digest
//! is one DKIM-signed message (dkimpy verifies it) that Python's `email` reads as five
//! `message/rfc822` parts, the plain one has RFC 1153's separators, each member's copy comes
//! from their own VERP address with their own one-click unsubscribe; a regular member got
//! the five posts, a paused one nothing.

use crate::list_pipeline::{World, post, world_prepared};
use crate::smtp_support::LIST;
use crate::support::dkimpy;
use arclist::state::store::{DeliveryMode, SpoolState};

const TOKEN: &str = "an-admin-token-of-32-characters!";

async fn cli(w: &World, args: &[&str]) -> (bool, String) {
    let config = w.t.dir.path().join("server.toml");
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        crate::support::arclist_cli(&config, &args)
    })
    .await
    .expect("cli")
}

/// The mail to `member` whose text holds `needle`, once it came.
async fn mail_to(w: &World, member: &str, needle: &str) -> Vec<u8> {
    let mut found = None;
    crate::smtp_support::until(&format!("{member} gets {needle:?}"), async || {
        found = w
            .sink
            .received
            .lock()
            .ok()
            .and_then(|r| {
                r.iter()
                    .find(|(_, rcpt, data)| {
                        rcpt == member && String::from_utf8_lossy(data).contains(needle)
                    })
                    .map(|(from, _, data)| (from.clone(), data.clone()))
            })
            .map(|(from, data)| {
                assert!(
                    from.starts_with("members-bounces+"),
                    "{member}'s copy comes from its VERP address: {from}"
                );
                data
            });
        found.is_some()
    })
    .await;
    found.expect("mail")
}

/// Python's `email` package on `message`: the content types of its parts, in walk order.
async fn python_parts(message: &[u8]) -> Vec<String> {
    use tokio::io::AsyncWriteExt;
    let script = "import sys, email\n\
                  m = email.message_from_bytes(sys.stdin.buffer.read())\n\
                  print('\\n'.join(p.get_content_type() for p in m.walk()))\n";
    let mut child = tokio::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(message).await.expect("write");
    drop(input);
    let out = child.wait_with_output().await.expect("python3");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_posts_make_one_mime_digest_and_one_plain_digest() {
    let admin = "[admin]\nlisten = \"127.0.0.1:0\"\ntoken_file = \"admin.token\"\n";
    let http = "[http]\nlisten = \"127.0.0.1:0\"\nbase_url = \"https://lists.arclist.test\"\n";
    let w = world_prepared(&format!("{admin}{http}"), "", None, |dir| {
        std::fs::write(dir.join("admin.token"), format!("{TOKEN}\n")).expect("token")
    })
    .await;
    let store = w.t.server.store();
    w.t.add_member("paused@club.test").await;
    let today = arclist::state::store::modes::date_of(arclist::auth::unix_now());
    for (address, mode) in [
        ("bob@club.test", DeliveryMode::Digest),
        ("reader@elsewhere.test", DeliveryMode::DigestPlain),
        ("paused@club.test", DeliveryMode::Nomail),
    ] {
        let mut m = store
            .member(LIST, address)
            .await
            .expect("store")
            .expect("member");
        m.set_delivery(mode, None, &today);
        store.put_member(LIST, &m).await.expect("put");
    }
    let (ok, text) = cli(&w, &["digest", "send", LIST]).await;
    assert!(ok && text.contains("nothing pending"), "{text}");
    for n in 1..=5 {
        let message = post(
            "Bob <bob@club.test>",
            &format!("Topic number {n}"),
            "Hello.\r\n",
        );
        let id = w
            .send("127.0.0.22", "mx.club.test", "bob@club.test", &message)
            .await;
        let meta = w.t.settled(id).await;
        assert_eq!(meta.state, SpoolState::Queued, "{:?}", meta.note);
        assert_eq!(
            w.t.delivered_to(&w.sink, id).await,
            vec!["alice@bank.test".to_string()],
            "only the regular member gets each post"
        );
    }
    assert_eq!(store.digest_pending(LIST).await.expect("pending").len(), 5);

    let (ok, text) = cli(&w, &["digest", "send", LIST]).await;
    assert!(ok, "{text}");
    let volume = &today[..4];
    assert!(
        text.contains(&format!(
            "volume {volume}, issue 1 sent: 5 post(s) to 1 MIME and 1 plain-text"
        )),
        "{text}"
    );
    assert!(
        store
            .digest_pending(LIST)
            .await
            .expect("pending")
            .is_empty(),
        "sent posts leave the pending digest"
    );

    let subject = format!("Members Digest, Vol {volume}, Issue 1");
    let mime = mail_to(&w, "bob@club.test", &subject).await;
    let dkim: serde_json::Value =
        serde_json::from_slice(&dkimpy(&w.t.dns, &["dkim-verify"], &mime).await).expect("json");
    assert_eq!(dkim["pass"], true, "dkimpy verifies the digest: {dkim}");
    let text = String::from_utf8_lossy(&mime);
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    assert!(
        head.contains("List-Unsubscribe: <https://lists.arclist.test/unsubscribe/"),
        "{head}"
    );
    assert!(
        head.contains("List-Id: ") && !head.contains("ARC-Seal"),
        "{head}"
    );
    let parts = python_parts(&mime).await;
    assert_eq!(
        &parts[..3],
        ["multipart/mixed", "text/plain", "multipart/digest"],
        "{parts:?}"
    );
    assert_eq!(
        parts.iter().filter(|p| *p == "message/rfc822").count(),
        5,
        "{parts:?}"
    );
    for n in 1..=5 {
        assert!(
            text.contains(&format!("{n}. Topic number {n}")),
            "the table of contents names post {n}"
        );
    }

    let plain = mail_to(&w, "reader@elsewhere.test", &subject).await;
    let plain = String::from_utf8_lossy(&plain);
    let dashes = |n: usize| format!("\r\n{}\r\n", "-".repeat(n));
    assert_eq!(plain.matches(&dashes(70)).count(), 1, "{plain}");
    assert_eq!(
        plain.matches(&dashes(30)).count(),
        5,
        "between the posts and after the last: {plain}"
    );
    assert!(plain.contains(&format!("End of {subject}\r\n*")), "{plain}");

    crate::smtp_support::until("alice gets the five posts", async || {
        w.sink
            .inbox("alice@bank.test")
            .iter()
            .filter(|m| String::from_utf8_lossy(m).contains("Topic number"))
            .count()
            == 5
    })
    .await;
    assert!(
        w.sink.inbox("paused@club.test").is_empty(),
        "a paused member got nothing"
    );
    assert_eq!(
        w.sink.inbox("bob@club.test").len(),
        1,
        "the digest member got the digest alone"
    );
    let (ok, text) = cli(&w, &["digest", "send", LIST]).await;
    assert!(ok && text.contains("nothing pending"), "{text}");
}
