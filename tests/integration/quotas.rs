//! Quotas before `250` (`docs/filtering.md`): a list's posts in five minutes (Google Groups'
//! 300 by default), and one client address's messages in an hour. Counted in the store: the
//! count survives a restart.

use crate::smtp_support::{Client, LIST, TestServer};
use arclist::state::store::SpoolState;

/// Waits for the next window when fewer than `margin` seconds of this one are left, so the
/// test's messages are all counted in one window of `len` seconds.
async fn within_one_window(len: u64, margin: u64) {
    let now = arclist::auth::unix_now();
    let left = len - now % len;
    if left < margin {
        tokio::time::sleep(std::time::Duration::from_secs(left + 1)).await;
    }
}

fn post(from: &str, n: usize) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: {LIST}\r\nSubject: post {n}\r\nMessage-ID: <quota-{n}@club.test>\r\n\r\nBody {n}.\r\n"
    )
    .into_bytes()
}

/// Sends `message` from `from` to the list on an open session: the reply to its end.
async fn send(c: &mut Client<tokio::net::TcpStream>, from: &str, message: &[u8]) -> (u16, String) {
    c.post(from, LIST, message).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_301st_post_in_five_minutes_is_refused_or_held_and_the_count_survives_a_restart() {
    within_one_window(300, 60).await;
    let t = TestServer::start("").await;
    t.add_member("member@club.test").await;
    let (mut c, _) = Client::connect_from(t.smtp(), "127.0.0.41").await;
    assert_eq!(c.cmd("EHLO mx.club.test").await.0, 250);
    for n in 1..=300 {
        let (code, text) = send(&mut c, "outsider@club.test", &post("outsider@club.test", n)).await;
        assert_eq!(code, 250, "post {n}: {text}");
    }
    // The 301st from a non-member: refused for now, with the limit named.
    let (code, text) = send(
        &mut c,
        "outsider@club.test",
        &post("outsider@club.test", 301),
    )
    .await;
    assert_eq!(code, 452, "{text}");
    assert!(text.contains("4.7.1"), "{text}");
    assert!(
        text.contains("at most 300 posts in 5 minutes (max_posts_per_5min)"),
        "{text}"
    );
    // A member's post over the quota is taken and held for a moderator, with the reason.
    let (code, text) = send(&mut c, "member@club.test", &post("member@club.test", 302)).await;
    assert_eq!(code, 250, "{text}");
    let id: u64 = text
        .trim()
        .rsplit(' ')
        .next()
        .and_then(|i| i.parse().ok())
        .expect("id");
    let meta = t.settled(id).await;
    assert_eq!(meta.state, SpoolState::Held, "{:?}", meta.note);
    assert!(
        meta.note
            .as_deref()
            .is_some_and(|n| n.contains("over a quota") && n.contains("max_posts_per_5min")),
        "{:?}",
        meta.note
    );
    drop(c);

    // Counted in the store: a restart does not reset the count.
    let t = t.restart_after(async |_| {}).await;
    let (mut c, _) = Client::connect_from(t.smtp(), "127.0.0.41").await;
    assert_eq!(c.cmd("EHLO mx.club.test").await.0, 250);
    let (code, text) = send(
        &mut c,
        "outsider@club.test",
        &post("outsider@club.test", 303),
    )
    .await;
    assert_eq!(code, 452, "after a restart too: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_over_its_hourly_quota_gets_452_and_another_client_does_not() {
    within_one_window(3600, 30).await;
    let t = TestServer::start_with_list(
        "[limits]\nmax_messages_per_client_per_hour = 2\n",
        "max_posts_per_5min = 0\nmax_posts_per_sender_per_hour = 0\n",
    )
    .await;
    let (mut c, _) = Client::connect_from(t.smtp(), "127.0.0.42").await;
    assert_eq!(c.cmd("EHLO mx.club.test").await.0, 250);
    for n in 1..=2 {
        let (code, text) = send(&mut c, "a@club.test", &post("a@club.test", 400 + n)).await;
        assert_eq!(code, 250, "{text}");
    }
    let (code, text) = send(&mut c, "a@club.test", &post("a@club.test", 403)).await;
    assert_eq!(code, 452, "{text}");
    assert!(
        text.contains("too many messages from 127.0.0.42 this hour: at most 2"),
        "{text}"
    );
    let (mut other, _) = Client::connect_from(t.smtp(), "127.0.0.43").await;
    assert_eq!(other.cmd("EHLO mx.club.test").await.0, 250);
    let (code, text) = send(&mut other, "b@club.test", &post("b@club.test", 404)).await;
    assert_eq!(code, 250, "another client has its own count: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_sender_over_its_hourly_quota_is_refused_while_another_posts() {
    within_one_window(3600, 30).await;
    let t = TestServer::start_with_list("", "max_posts_per_sender_per_hour = 2\n").await;
    let (mut c, _) = Client::connect_from(t.smtp(), "127.0.0.44").await;
    assert_eq!(c.cmd("EHLO mx.club.test").await.0, 250);
    for n in 1..=2 {
        let (code, text) = send(&mut c, "loud@club.test", &post("loud@club.test", 500 + n)).await;
        assert_eq!(code, 250, "{text}");
    }
    let (code, text) = send(&mut c, "loud@club.test", &post("loud@club.test", 503)).await;
    assert_eq!(code, 452, "{text}");
    assert!(
        text.contains("at most 2 posts an hour from loud@club.test"),
        "{text}"
    );
    let (code, text) = send(&mut c, "quiet@club.test", &post("quiet@club.test", 504)).await;
    assert_eq!(code, 250, "another sender posts: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_over_a_forwarding_domains_hourly_quota_gets_452_and_nothing_is_forwarded() {
    within_one_window(3600, 30).await;
    let w = crate::forwarding::world_files("max_messages_per_sender_per_hour = 2", "").await;
    for n in 1..=2 {
        let letter = w.signed(&crate::forwarding::letter(&format!("quota {n}")));
        let (code, text) = w
            .send("127.0.0.21", "alice@bank.test", "sales@corp.test", &letter)
            .await;
        assert_eq!(code, 250, "{text}");
    }
    let letter = w.signed(&crate::forwarding::letter("quota 3"));
    let (code, text) = w
        .send("127.0.0.21", "alice@bank.test", "sales@corp.test", &letter)
        .await;
    assert_eq!(code, 452, "{text}");
    assert!(
        text.contains(
            "corp.test forwards at most 2 messages an hour from alice@bank.test (max_messages_per_sender_per_hour)"
        ),
        "{text}"
    );
    assert_eq!(w.t.spool().await.len(), 2, "the third was never spooled");
}
