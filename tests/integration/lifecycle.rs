//! A server that runs for years: finished posts leave the hot queue, an idle server reads
//! nothing that grows with history, finished work is pruned after its retention, and one
//! sender's silent DNS holds up only that sender's posts.

use crate::list_pipeline::{World, post, world_prepared, world_with};
use crate::smtp_support::until;
use arclist::state::store::SpoolState;
use std::time::Duration;

/// A post from bob@club.test (a member; club.test publishes p=none and SPF for 127.0.0.22).
async fn member_post(w: &World, subject: &str) -> u64 {
    w.send(
        "127.0.0.22",
        "mx.club.test",
        "bob@club.test",
        &post("Bob <bob@club.test>", subject, "Hello.\r\n"),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_posts_leave_the_hot_queue_and_an_idle_server_reads_nothing() {
    let w = world_with("", "").await;
    let store = w.t.server.store();
    let mut ids = Vec::new();
    for n in 0..12 {
        ids.push(member_post(&w, &format!("Post {n}")).await);
    }
    until("every post is delivered and finished", async || {
        store.active().await.expect("active").is_empty()
            && store.queue().await.expect("queue").len() == ids.len()
            && store
                .queue()
                .await
                .expect("queue")
                .iter()
                .all(|e| e.summary.is_some())
    })
    .await;
    for entry in store.queue().await.expect("queue") {
        let summary = entry.summary.expect("summary");
        assert_eq!(summary.delivered.values().sum::<u64>(), 3, "{summary:?}");
        assert!(summary.bounced.is_empty());
        assert!(
            store
                .deliveries(entry.id)
                .await
                .expect("records")
                .is_empty(),
            "per-recipient records were compacted"
        );
    }
    assert_eq!(w.sink.inbox("reader@elsewhere.test").len(), ids.len());
    // Idle: the worker sleeps until something is queued; it rereads no finished post.
    let before = store.rows_read();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let read = store.rows_read() - before;
    assert!(
        read <= 2,
        "an idle server read {read} rows in 2 s with {} finished posts in the store",
        ids.len()
    );
    // A new post still goes out at once: queueing wakes the worker.
    let next = member_post(&w, "After the quiet").await;
    until("the new post is delivered", async || {
        w.sink.inbox("reader@elsewhere.test").len() == ids.len() + 1
    })
    .await;
    assert_eq!(w.t.settled(next).await.state, SpoolState::Queued);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_work_is_pruned_after_its_retention_and_held_posts_stay() {
    let w = world_with(
        "[retention]\nrecords_days = 0\nraw_days = 0\nprune_every_secs = 1\n",
        "",
    )
    .await;
    let store = w.t.server.store();
    let delivered = member_post(&w, "Short-lived").await;
    // A non-member's post waits for the moderator, however old it gets.
    let held = w
        .send(
            "127.0.0.22",
            "mx.club.test",
            "carol@club.test",
            &post("Carol <carol@club.test>", "May I?", "Please.\r\n"),
        )
        .await;
    assert_eq!(w.t.settled(held).await.state, SpoolState::Held);
    until("the delivered post is pruned", async || {
        let gone_from_queue = store
            .queue()
            .await
            .expect("queue")
            .iter()
            .all(|e| e.id != delivered);
        let gone_from_spool = store
            .list()
            .await
            .expect("spool")
            .iter()
            .all(|m| m.id != delivered);
        gone_from_queue && gone_from_spool
    })
    .await;
    assert!(store.get(delivered).await.expect("get").is_none());
    assert_eq!(w.sink.inbox("reader@elsewhere.test").len(), 1);
    let (meta, bytes) = store
        .get(held)
        .await
        .expect("get")
        .expect("the held post is kept");
    assert_eq!(meta.state, SpoolState::Held);
    assert!(String::from_utf8_lossy(&bytes).contains("May I?"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_messages_go_before_the_records_reports_are_made_of() {
    let w = world_with(
        "[retention]\nrecords_days = 30\nraw_days = 0\nprune_every_secs = 1\n",
        "",
    )
    .await;
    let store = w.t.server.store();
    let id = member_post(&w, "Counted, not kept").await;
    until("the raw message is pruned", async || {
        store.get(id).await.expect("get").is_none()
            && store
                .queue()
                .await
                .expect("queue")
                .iter()
                .any(|e| e.id == id && e.summary.is_some())
    })
    .await;
    let meta = store
        .list()
        .await
        .expect("spool")
        .into_iter()
        .find(|m| m.id == id)
        .expect("the metadata stays");
    assert_eq!(meta.state, SpoolState::Queued);
    assert!(
        store.queued(id).await.expect("queued").is_none(),
        "signed copy gone"
    );
    let report = arclist::surfaces::operate::report::build(&store, 0, None)
        .await
        .expect("report");
    let other = report
        .receivers
        .iter()
        .find(|r| r.destination == "other")
        .expect("a row for other receivers");
    assert_eq!(other.delivered, 3, "{other:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_senders_silent_dns_holds_up_only_its_own_posts() {
    // Lookups time out after 10 s, so a silent domain's post needs many seconds per try: the
    // five other posts go through well within its first try even on a loaded machine.
    let w = world_prepared("", "", None, |dir| {
        let file = dir.join("server.toml");
        let text = std::fs::read_to_string(&file).expect("server.toml");
        std::fs::write(
            &file,
            text.replace("timeout_secs = 1\n", "timeout_secs = 10\n"),
        )
        .expect("server.toml");
    })
    .await;
    for name in ["dead.test", "_dmarc.dead.test", "k._domainkey.dead.test"] {
        w.t.dns.server.hang(name);
    }
    let store = w.t.server.store();
    let mut stuck = Vec::new();
    for n in 0..2 {
        let message = post("Dee <dee@dead.test>", &format!("Stuck {n}"), "Hm.\r\n");
        let signed = [
            b"DKIM-Signature: v=1; a=rsa-sha256; d=dead.test; s=k; h=from; bh=AAAA; b=AAAA\r\n"
                .as_slice(),
            &message,
        ]
        .concat();
        stuck.push(
            w.send("127.0.0.25", "mx.dead.test", "dee@dead.test", &signed)
                .await,
        );
    }
    let mut flowing = Vec::new();
    for n in 0..5 {
        flowing.push(member_post(&w, &format!("Flowing {n}")).await);
    }
    for id in &flowing {
        assert_eq!(w.t.settled(*id).await.state, SpoolState::Queued);
    }
    // Every later post went through while the silent domain's first try was still waiting.
    for id in &stuck {
        let (meta, _) = store.get(*id).await.expect("get").expect("spooled");
        assert_eq!(
            (meta.state, meta.attempts),
            (SpoolState::Received, 0),
            "post {id} from the silent domain is still on its first try"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retrying_ends_in_a_hold_with_the_reason_never_in_silence() {
    use crate::smtp_support::{Client, LIST, TestServer};
    let t = TestServer::start("").await;
    for name in ["dead.test", "_dmarc.dead.test", "k._domainkey.dead.test"] {
        t.dns.server.hang(name);
    }
    let message = post("Dee <dee@dead.test>", "Waiting", "Hm.\r\n");
    let signed = [
        b"DKIM-Signature: v=1; a=rsa-sha256; d=dead.test; s=k; h=from; bh=AAAA; b=AAAA\r\n"
            .as_slice(),
        &message,
    ]
    .concat();
    let (mut c, _) = Client::connect_from(t.smtp(), "127.0.0.25").await;
    assert_eq!(c.cmd("EHLO mx.dead.test").await.0, 250);
    let (code, text) = c.post("dee@dead.test", LIST, &signed).await;
    assert_eq!(code, 250, "{text}");
    let id: u64 = text
        .trim()
        .rsplit(' ')
        .next()
        .and_then(|id| id.parse().ok())
        .expect("queue id");
    let store = t.server.store();
    until("the first try ended in a temporary error", async || {
        store
            .get(id)
            .await
            .ok()
            .flatten()
            .is_some_and(|(m, _)| m.attempts >= 1 && m.state == SpoolState::Received)
    })
    .await;
    drop(store);
    // As if it had been retried for a day: the next try is the last.
    let t = t
        .restart_after(async |server_toml| {
            let store = crate::smtp_support::open_store(server_toml.parent().expect("dir")).await;
            let (mut meta, _) = store.get(id).await.expect("get").expect("spooled");
            meta.envelope.received_at -= 25 * 3600;
            store.update(&meta).await.expect("update");
        })
        .await;
    let meta = t.settled(id).await;
    assert_eq!(meta.state, SpoolState::Held);
    let note = meta.note.unwrap_or_default();
    assert!(
        note.contains("temporary DNS failures") && note.contains("dead.test"),
        "{note}"
    );
}
