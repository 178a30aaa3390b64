//! The store's contract, checked on both backends: the embedded redb file and PostgreSQL (a
//! real cluster the harness starts). Then what only a shared store does: two nodes claiming
//! one post's recipients, and taking over a dead node's work once its lease lapses.

use crate::postgres;
use arclist::base::config::ClusterConfig;
use arclist::state::store::{
    Delivery, DeliveryMode, DeliveryState, Departure, DepartureReason, DigestIssue, Enqueued,
    Member, PgStore, QueueEntry, RedbStore, Retention, SeenWindow, Settled, SpoolEnvelope,
    SpoolMeta, SpoolState, Store,
};

fn envelope(received_at: u64) -> SpoolEnvelope {
    SpoolEnvelope {
        mail_from: "author@example.org".into(),
        rcpt_to: vec!["list@lists.example".into()],
        client_ip: std::net::IpAddr::from([127, 0, 0, 1]),
        helo: "client.example".into(),
        protocol: "ESMTP".into(),
        tls: None,
        received_at,
        verdict: None,
        filter: None,
        over_quota: None,
    }
}

fn member(address: &str) -> Member {
    Member {
        address: address.into(),
        name: String::new(),
        joined_at: 1,
        ..Member::default()
    }
}

fn cluster_config(lease_secs: u64, claim_batch: usize) -> ClusterConfig {
    ClusterConfig {
        lease_secs,
        claim_batch,
        pool_size: 4,
    }
}

/// Spools a message and queues it as a post to `recipients`; returns its id.
async fn queue_post(store: &Store, recipients: &[String]) -> u64 {
    let (id, queued) = offer_post(store, recipients, "<m1@example.org>", 0).await;
    assert_eq!(queued, Enqueued::Queued);
    id
}

/// Spools a message and returns its metadata, marked queued, and a queue entry for it as a
/// post of `list` to `recipients`: what a queueing is given.
async fn spooled_post(store: &Store, list: &str, recipients: &[String]) -> (SpoolMeta, QueueEntry) {
    let id = store
        .spool(
            envelope(arclist::auth::unix_now()),
            b"Subject: hi\r\n\r\nbody\r\n".to_vec(),
        )
        .await
        .expect("spool");
    let (mut meta, _) = store.get(id).await.expect("get").expect("spooled");
    meta.state = SpoolState::Queued;
    let entry = QueueEntry {
        id,
        list: list.into(),
        mail_from: "list-bounces@lists.example".into(),
        recipients: recipients.to_vec(),
        queued_at: arclist::auth::unix_now(),
        summary: None,
        plain: false,
    };
    (meta, entry)
}

/// Spools a message and offers it for queueing as a post with `message_id`, whose duplicate
/// window starts at `since`; returns its id and what the queueing did.
async fn offer_post(
    store: &Store,
    recipients: &[String],
    message_id: &str,
    since: u64,
) -> (u64, Enqueued) {
    let (meta, entry) = spooled_post(store, "list@lists.example", recipients).await;
    let id = meta.id;
    let seen = SeenWindow { message_id, since };
    let queued = store
        .enqueue_post(&meta, entry, b"signed", None, Some(seen))
        .await
        .expect("enqueue");
    (id, queued)
}

/// Closes a node the way a crash would: its claims lapse with their lease.
fn abandon(store: Store) {
    if let Some(pg) = store.as_postgres() {
        pg.clone().abandon();
    }
}

fn delivered(d: &Delivery) -> Delivery {
    Delivery {
        state: DeliveryState::Delivered,
        attempts: d.attempts + 1,
        last_reply: "250 ok".into(),
        ..d.clone()
    }
}

/// The spool: a message committed, read back, its state changed only from the state expected.
/// Returns the message, approved.
async fn spool_role(store: &Store) -> u64 {
    // Spool, read back, change state only from the state expected.
    let id = store
        .spool(envelope(1_000), b"raw message".to_vec())
        .await
        .expect("spool");
    let (meta, raw) = store.get(id).await.expect("get").expect("there");
    assert_eq!(
        (meta.id, meta.state, raw.as_slice()),
        (id, SpoolState::Received, &b"raw message"[..])
    );
    let mut held = meta.clone();
    held.state = SpoolState::Held;
    store.update(&held).await.expect("update");
    let mut approved = held.clone();
    approved.state = SpoolState::Approved;
    assert!(
        store
            .transition(&approved, SpoolState::Held)
            .await
            .expect("transition")
    );
    assert!(
        !store
            .transition(&approved, SpoolState::Held)
            .await
            .expect("second decision"),
        "one decision counts"
    );
    assert_eq!(
        store.get(id).await.expect("get").expect("there").0.state,
        SpoolState::Approved
    );
    // A message whose processing failed for good is held with the reason, once.
    let failing = store
        .spool(envelope(1_001), b"bad".to_vec())
        .await
        .expect("spool");
    let aside = store
        .set_aside(failing, "set aside: why")
        .await
        .expect("set aside");
    assert_eq!(
        aside.map(|m| (m.state, m.note)),
        Some((SpoolState::Held, Some("set aside: why".to_string())))
    );
    assert!(
        store
            .set_aside(failing, "again")
            .await
            .expect("again")
            .is_none(),
        "a held message is finished for the pipeline"
    );
    id
}

/// Members, departures and aliases: seeding once, people's choices kept.
async fn members_role(store: &Store) {
    // Members: seeding once, people's choices kept.
    let list = "List@Lists.example";
    let seeded = store
        .seed_members(list, &[member("a@x.example"), member("B@x.example")], false)
        .await
        .expect("seed");
    assert_eq!(seeded, Some(2));
    assert_eq!(
        store
            .seed_members(list, &[member("c@x.example")], false)
            .await
            .expect("seed"),
        None
    );
    assert!(
        store
            .is_member("list@lists.example", "b@X.example")
            .await
            .expect("member")
    );
    assert!(
        store
            .remove_member(
                list,
                "a@x.example",
                Departure::now(DepartureReason::Unsubscribed)
            )
            .await
            .expect("remove")
    );
    assert_eq!(
        store
            .seed_members(list, &[member("a@x.example")], true)
            .await
            .expect("reseed"),
        Some(0),
        "who left stays gone"
    );
    assert_eq!(
        store
            .departure(list, "A@x.example")
            .await
            .expect("departure")
            .map(|d| d.reason),
        Some(DepartureReason::Unsubscribed)
    );
    assert_eq!(
        store
            .add_members(list, &[member("a@x.example"), member("d@x.example")])
            .await
            .expect("import"),
        2
    );
    assert!(
        store
            .departure(list, "a@x.example")
            .await
            .expect("departure")
            .is_none()
    );
    let page: Vec<String> = store
        .members_after(list, "a@x.example", 2)
        .await
        .expect("page")
        .into_iter()
        .map(|m| m.address)
        .collect();
    assert_eq!(
        page,
        vec!["B@x.example".to_string(), "d@x.example".to_string()]
    );
    assert_eq!(store.members(list).await.expect("members").len(), 3);
    // A member's delivery mode, pause and moderation are kept as written.
    let mut d = store
        .member(list, "d@x.example")
        .await
        .expect("member")
        .expect("d");
    assert_eq!(
        d.delivery,
        DeliveryMode::Regular,
        "a new member gets every post"
    );
    d.set_delivery(DeliveryMode::Digest, None, "2027-01-01");
    d.set_delivery(
        DeliveryMode::Nomail,
        Some("2027-01-15".into()),
        "2027-01-01",
    );
    d.moderated = true;
    store.put_member(list, &d).await.expect("put");
    let back = store
        .member(list, "D@x.example")
        .await
        .expect("member")
        .expect("d");
    assert_eq!(back, d);
    assert_eq!(
        (
            back.delivery_on("2027-01-14"),
            back.delivery_on("2027-01-15")
        ),
        (DeliveryMode::Nomail, DeliveryMode::Digest)
    );

    // Aliases and the token secret.
    store
        .put_alias("Sales@corp.example", &["a@out.example".into()])
        .await
        .expect("alias");
    assert_eq!(
        store.aliases().await.expect("aliases"),
        vec![(
            "sales@corp.example".to_string(),
            vec!["a@out.example".to_string()]
        )]
    );
    assert!(
        store
            .remove_alias("sales@corp.example")
            .await
            .expect("remove alias")
    );
}

/// Pending digests: kept oldest first per list until sent, then gone; the issue recorded.
async fn digests_role(store: &Store) {
    let list = "List@Lists.example";
    for id in [7, 3, 12] {
        store
            .add_to_digest(list, id, format!("post {id}").as_bytes())
            .await
            .expect("add");
    }
    store
        .add_to_digest("other@lists.example", 5, b"elsewhere")
        .await
        .expect("add");
    store
        .add_to_digest(list, 3, b"post 3")
        .await
        .expect("again");
    let pending = store
        .digest_pending("list@lists.example")
        .await
        .expect("pending");
    assert_eq!(
        pending,
        vec![
            (3, b"post 3".to_vec()),
            (7, b"post 7".to_vec()),
            (12, b"post 12".to_vec())
        ]
    );
    assert_eq!(store.digest_issue(list).await.expect("issue"), None);
    let issue = DigestIssue {
        volume: 2027,
        issue: 1,
        sent_at: 42,
    };
    store.digest_sent(list, &[3, 7], issue).await.expect("sent");
    let left: Vec<u64> = store
        .digest_pending(list)
        .await
        .expect("pending")
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(left, vec![12], "a post that came while sending stays");
    assert_eq!(store.digest_issue(list).await.expect("issue"), Some(issue));
    assert_eq!(
        store
            .digest_pending("other@lists.example")
            .await
            .expect("pending")
            .len(),
        1
    );
}

/// The queue: a post queued, claimed, delivered in two rounds and summarized.
async fn queue_role(store: &Store) {
    // A post: queued, claimed, delivered in two rounds, summarized, pruned. Two recipients
    // at big mailbox providers, whose deliveries the summary counts apart.
    let recipients: Vec<String> = ["m0@Gmail.com", "m1@y.example", "m2@hotmail.co.uk"]
        .into_iter()
        .map(String::from)
        .chain((3..5).map(|n| format!("m{n}@y.example")))
        .collect();
    let post = queue_post(store, &recipients).await;
    assert_eq!(
        store
            .distributed("list@lists.example", "<M1@example.org>", 0)
            .await
            .expect("seen"),
        Some(post)
    );
    let now = arclist::auth::unix_now();
    let due = store.claim_due(post, now).await.expect("claim");
    assert_eq!(due.len(), 5);
    let mut round: Vec<Delivery> = due.iter().take(3).map(delivered).collect();
    round.push(Delivery {
        state: DeliveryState::Deferred,
        next_attempt: now + 60,
        last_reply: "451 later".into(),
        ..due[3].clone()
    });
    round.push(Delivery {
        state: DeliveryState::Bounced,
        last_reply: "550 no".into(),
        ..due[4].clone()
    });
    match store.record_round(post, &round).await.expect("round") {
        Settled::Waiting(head) => assert_eq!(
            (head.pending, head.deferred, head.next_due),
            (0, 1, now + 60)
        ),
        other => panic!("one recipient waits: {other:?}"),
    }
    assert!(
        store.claim_due(post, now).await.expect("claim").is_empty(),
        "the deferred one is not due yet"
    );
    assert_eq!(store.active().await.expect("active").len(), 1);
    let later = store.claim_due(post, now + 61).await.expect("claim later");
    assert_eq!(later.len(), 1);
    let Settled::Finished(summary) = store
        .record_round(post, &[delivered(&later[0])])
        .await
        .expect("round")
    else {
        panic!("every recipient settled");
    };
    let by_class: Vec<(&str, u64)> = (summary.delivered.iter())
        .map(|(class, n)| (class.as_str(), *n))
        .collect();
    assert_eq!(
        by_class,
        [("google", 1), ("microsoft", 1), ("other", 2)],
        "deliveries by destination class"
    );
    assert_eq!(summary.bounced.len(), 1);
    assert_eq!(summary.bounced[0].last_reply, "550 no");
    assert!(
        store.active().await.expect("active").is_empty(),
        "a finished post leaves the hot queue"
    );
    // Settling it again (another node that looked a moment earlier) keeps its summary.
    match store.settle(post).await.expect("settle again") {
        Settled::Finished(again) => assert_eq!(again, summary),
        other => panic!("still finished: {other:?}"),
    }
    assert_eq!(store.outcomes(post).await.expect("outcomes").len(), 5);
    // The same Message-ID again, within the window: nothing is queued; after it, a new post.
    let (again, queued) = offer_post(store, &recipients, "<m1@EXAMPLE.org>", 0).await;
    assert_eq!(queued, Enqueued::DuplicateOf(post));
    assert!(store.queue_entry(again).await.expect("entry").is_none());
    assert!(store.deliveries(again).await.expect("records").is_empty());
    let later = arclist::auth::unix_now() + 1;
    let (fresh, queued) = offer_post(store, &recipients, "<m1@example.org>", later).await;
    assert_eq!(
        queued,
        Enqueued::Queued,
        "outside the window it is a new post"
    );
    assert_eq!(
        store
            .distributed("list@lists.example", "<m1@example.org>", 0)
            .await
            .expect("seen"),
        Some(fresh)
    );
}

/// The records beside the mail: the token secret, pruning after retention (never an unfinished
/// message), distributed Message-IDs forgotten in batches.
async fn records_role(store: &Store) {
    // The token secret is made once.
    assert_eq!(
        store.token_secret().await.expect("secret"),
        store.token_secret().await.expect("same secret")
    );

    let id = spool_role(store).await;
    let post = queue_post(store, &["m@y.example".to_string()]).await;
    let due = store
        .claim_due(post, arclist::auth::unix_now())
        .await
        .expect("claim");
    let Settled::Finished(summary) = store
        .record_round(post, &due.iter().map(delivered).collect::<Vec<_>>())
        .await
        .expect("round")
    else {
        panic!("every recipient settled");
    };
    let keep = Retention {
        records: 10,
        raw: 5,
    };
    let far = summary.finished_at + 100;
    while store.prune(far, keep, 1).await.expect("prune").more {}
    assert!(
        store.queue_entry(post).await.expect("entry").is_none(),
        "finished work leaves after its retention"
    );
    assert!(
        store.get(id).await.expect("get").is_some(),
        "an approved message is never pruned"
    );

    // Duplicates and DMARC reports are forgotten in batches.
    assert_eq!(
        store
            .forget_distributed(u64::MAX, 10)
            .await
            .expect("forget"),
        (1, false)
    );
}

/// Rate counters: each key counts on from where it was, concurrent counts of one key each get
/// their own number, and expired counters are forgotten in batches (then count from one).
async fn rates_role(store: &Store) {
    let keys = vec![
        ("list:a@x:100".to_string(), 1_000),
        ("sender:a@x:b@y:100".to_string(), 2_000),
    ];
    assert_eq!(store.count_rates(&keys).await.expect("count"), vec![1, 1]);
    assert_eq!(store.count_rates(&keys).await.expect("count"), vec![2, 2]);
    assert_eq!(store.count_rates(&keys[..1]).await.expect("count"), vec![3]);
    let one = vec![("client:192.0.2.1:7".to_string(), 3_000)];
    let at_once = futures_util::future::join_all((0..20).map(|_| store.count_rates(&one))).await;
    let mut seen: Vec<u64> = at_once.into_iter().map(|c| c.expect("count")[0]).collect();
    seen.sort_unstable();
    assert_eq!(
        seen,
        (1..=20).collect::<Vec<u64>>(),
        "no count is lost or given twice"
    );

    assert_eq!(
        store.forget_rates(1_000, 10).await.expect("forget"),
        (0, false)
    );
    assert_eq!(
        store.forget_rates(1_500, 10).await.expect("forget"),
        (1, false)
    );
    assert_eq!(
        store.count_rates(&keys).await.expect("count"),
        vec![1, 3],
        "the expired counter starts again, the other counts on"
    );
    let many: Vec<_> = (0..5)
        .map(|i| (format!("client:198.51.100.{i}:1"), 10))
        .collect();
    store.count_rates(&many).await.expect("count");
    assert_eq!(store.forget_rates(11, 2).await.expect("forget"), (2, true));
    assert_eq!(store.forget_rates(11, 2).await.expect("forget"), (2, true));
    assert_eq!(store.forget_rates(11, 2).await.expect("forget"), (1, false));
    assert_eq!(store.count_rates(&many[..1]).await.expect("count"), vec![1]);
}

/// Working beside others: the one node there is does every job, and a message left
/// unfinished is taken up again.
async fn cluster_role(store: &Store) -> u64 {
    assert!(store.once("prune", 7).await.expect("once"));
    spool_role(store).await
}

/// A post of `list@lists.example` to archive, dated `date`, answering `answers`.
fn archived_post(
    mid: &str,
    date: u64,
    subject: &str,
    answers: &[&str],
    body: &str,
) -> arclist::state::store::archive::NewArchivedPost {
    use arclist::state::store::archive::{ArchivedPost, NewArchivedPost, archive_id};
    NewArchivedPost {
        post: ArchivedPost {
            list: "list@lists.example".into(),
            id: archive_id("list@lists.example", mid),
            message_id: mid.into(),
            date,
            subject: subject.into(),
            author_name: "Ann".into(),
            author_address: "ann@example.org".into(),
            parent: None,
            thread: String::new(),
            size: body.len(),
            removed: false,
            spool_id: None,
        },
        answers: answers.iter().map(|a| a.to_string()).collect(),
        raw: format!("Message-ID: {mid}\r\nSubject: {subject}\r\n\r\n{body}\r\n").into_bytes(),
        text: format!("{subject}\nAnn\n{body}"),
    }
}

/// The archive: posts kept once by id, threaded by what they answer (the subject when they
/// name nothing archived), paged by date, by month and by thread, found by their words, and
/// removed for good leaving a placeholder; marks of posts to archive.
async fn archive_role(store: &Store) {
    const L: &str = "List@Lists.example";
    let dec = 1_796_083_200; // 2026-12-01
    let (first, added) = store
        .archive_post(archived_post(
            "<a@x>",
            dec + 10,
            "Plans",
            &[],
            "apples and pears",
        ))
        .await
        .expect("archive");
    assert!(added);
    assert_eq!(
        first.thread, first.id,
        "a post answering nothing starts a thread"
    );
    let (again, added) = store
        .archive_post(archived_post("<a@x>", dec + 10, "Plans", &[], "changed"))
        .await
        .expect("archive again");
    assert!(!added, "the same Message-ID is kept once");
    assert_eq!(again.subject, "Plans");
    let (reply, _) = store
        .archive_post(archived_post(
            "<b@x>",
            dec + 20,
            "Re: Plans",
            &["<zz@x>", "<a@x>"],
            "pears only",
        ))
        .await
        .expect("reply");
    assert_eq!(
        (reply.parent.as_deref(), reply.thread.as_str()),
        (Some(first.id.as_str()), first.id.as_str())
    );
    let (by_subject, _) = store
        .archive_post(archived_post(
            "<c@x>",
            dec + 30,
            "Re: [list] plans",
            &["<gone@x>"],
            "late",
        ))
        .await
        .expect("by subject");
    assert_eq!(
        by_subject.thread, first.id,
        "a reply naming nothing archived joins its subject's thread"
    );
    let (other, _) = store
        .archive_post(archived_post(
            "<d@x>",
            dec - 100,
            "Other",
            &[],
            "november apples",
        ))
        .await
        .expect("other");
    assert_eq!(other.thread, other.id);

    let bytes = store
        .archived_raw(L, &first.id)
        .await
        .expect("raw")
        .expect("kept");
    assert!(bytes.ends_with(b"apples and pears\r\n"));
    let months = store.archived_months(L).await.expect("months");
    assert_eq!(
        months,
        vec![("2026-12".to_string(), 3), ("2026-11".to_string(), 1)]
    );
    let bounds = arclist::state::store::archive::month_bounds("2026-12").expect("month");
    let page = store
        .archived_between(L, bounds, None, 2)
        .await
        .expect("page");
    assert_eq!(
        page.iter().map(|p| &p.message_id).collect::<Vec<_>>(),
        ["<a@x>", "<b@x>"]
    );
    let last = page.last().map(|p| (p.date, p.id.clone()));
    let next = store
        .archived_between(L, bounds, last, 2)
        .await
        .expect("next page");
    assert_eq!(
        next.iter().map(|p| &p.message_id).collect::<Vec<_>>(),
        ["<c@x>"]
    );
    let newest = store.archived_newest(L, 2).await.expect("newest");
    assert_eq!(
        newest.iter().map(|p| &p.message_id).collect::<Vec<_>>(),
        ["<c@x>", "<b@x>"]
    );
    let thread = store
        .archived_thread(L, &first.id, 10)
        .await
        .expect("thread");
    assert_eq!(thread.len(), 3);

    let found = store
        .archived_search(L, "APPLES", 10)
        .await
        .expect("search");
    assert_eq!(
        found.iter().map(|p| &p.message_id).collect::<Vec<_>>(),
        ["<a@x>", "<d@x>"],
        "newest first"
    );
    let found = store
        .archived_search(L, "pears apples", 10)
        .await
        .expect("search");
    assert_eq!(
        found.iter().map(|p| &p.message_id).collect::<Vec<_>>(),
        ["<a@x>"],
        "every word"
    );
    assert!(
        store
            .archived_search(L, "!!", 10)
            .await
            .expect("search")
            .is_empty()
    );

    assert!(store.remove_archived(L, &first.id).await.expect("remove"));
    assert!(
        !store
            .remove_archived(L, &first.id)
            .await
            .expect("remove again")
    );
    let placeholder = store
        .archived(L, &first.id)
        .await
        .expect("get")
        .expect("placeholder");
    assert!(
        placeholder.removed
            && placeholder.subject.is_empty()
            && placeholder.author_address.is_empty()
    );
    assert!(
        store
            .archived_raw(L, &first.id)
            .await
            .expect("raw")
            .is_none()
    );
    let found = store
        .archived_search(L, "apples", 10)
        .await
        .expect("search");
    assert_eq!(
        found.iter().map(|p| &p.message_id).collect::<Vec<_>>(),
        ["<d@x>"]
    );
    let (_, added) = store
        .archive_post(archived_post("<a@x>", dec + 10, "Plans", &[], "apples"))
        .await
        .expect("import again");
    assert!(!added, "a removed post is not brought back");

    store.mark_to_archive(L, 7).await.expect("mark");
    store.mark_to_archive(L, 3).await.expect("mark");
    assert_eq!(
        store.to_archive(10).await.expect("marks"),
        vec![
            ("list@lists.example".to_string(), 3),
            ("list@lists.example".to_string(), 7)
        ]
    );
    let mut marked = archived_post("<e@x>", dec + 40, "New", &[], "x");
    marked.post.spool_id = Some(7);
    store.archive_post(marked).await.expect("archive marked");
    store.archived_done(L, 3).await.expect("done");
    assert!(
        store.to_archive(10).await.expect("marks").is_empty(),
        "archiving clears the mark"
    );
}

/// An embedded store in a fresh file (kept while the directory lives).
fn embedded() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::from(RedbStore::open(&dir.path().join("store.redb")).expect("open"));
    (store, dir)
}

/// Node `name` of the cluster whose store is at `url`.
async fn node(url: &str, name: &str, config: ClusterConfig) -> Store {
    let opened = PgStore::open(url, name, &config).await;
    Store::from(opened.unwrap_or_else(|e| panic!("{name}: {e}")))
}

/// A store on a fresh schema of the test cluster, as node `node-a`.
async fn shared() -> Store {
    let url = postgres::cluster().fresh_store();
    Store::from(
        PgStore::open(&url, "node-a", &cluster_config(60, 1000))
            .await
            .expect("open"),
    )
}

/// Each role's contract, as a test on each backend: `ROLE::on_redb` and `ROLE::on_postgresql`.
macro_rules! on_both_backends {
    ($($role:ident),*) => {$(
        mod $role {
            #[tokio::test]
            async fn on_redb() {
                let (store, _dir) = super::embedded();
                super::$role(&store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_postgresql() {
                super::$role(&super::shared().await).await;
            }
        }
    )*};
}

on_both_backends!(
    spool_role,
    members_role,
    queue_role,
    records_role,
    rates_role,
    archive_role,
    digests_role,
    slots_role,
    post_recipients_role,
    queue_for_members_role,
    large_post_role
);

/// Whom a post goes to: members in regular delivery (whatever the case of their address),
/// those whose pause ended by today, not those paused, taking a digest or stopped by bounces;
/// in address order. A member's record rewritten (paused, back to regular) counts at once.
async fn post_recipients_role(store: &Store) {
    let list = "modes@lists.example";
    let today = "2026-12-07";
    let with = |address: &str, change: &dyn Fn(&mut Member)| {
        let mut m = member(address);
        change(&mut m);
        m
    };
    let members = [
        member("a@x.example"),
        member("B@x.example"),
        with("c@x.example", &|m| m.delivery = DeliveryMode::Digest),
        with("d@x.example", &|m| m.disabled = true),
        with("e@x.example", &|m| {
            m.set_delivery(
                DeliveryMode::Nomail,
                Some("2026-12-01".into()),
                "2026-11-01",
            )
        }),
        with("f@x.example", &|m| {
            m.set_delivery(
                DeliveryMode::Nomail,
                Some("2027-01-01".into()),
                "2026-11-01",
            )
        }),
        with("g@x.example", &|m| m.delivery = DeliveryMode::DigestPlain),
        member("h@x.example"),
        // A NUL in a name (the admin API takes any string) is stored and read like any other.
        with("i@x.example", &|m| m.name = "a\u{0}b".into()),
    ];
    store.add_members(list, &members).await.expect("add");
    let (recipients, digest) = store.post_recipients(list, today).await.expect("read");
    assert_eq!(
        recipients,
        [
            "a@x.example",
            "B@x.example",
            "e@x.example",
            "h@x.example",
            "i@x.example"
        ]
    );
    assert!(digest, "c and g take the digest");
    // h pauses, f's pause is lifted, c leaves the digest: the next post knows.
    let h = with("h@x.example", &|m| {
        m.set_delivery(DeliveryMode::Nomail, None, today)
    });
    store.put_member(list, &h).await.expect("pause");
    let f = with("f@x.example", &|m| m.delivery = DeliveryMode::Regular);
    store.put_member(list, &f).await.expect("back");
    for address in ["c@x.example", "g@x.example"] {
        store
            .put_member(list, &member(address))
            .await
            .expect("regular");
    }
    let (recipients, digest) = store.post_recipients(list, today).await.expect("read");
    assert_eq!(
        recipients,
        [
            "a@x.example",
            "B@x.example",
            "c@x.example",
            "e@x.example",
            "f@x.example",
            "g@x.example",
            "i@x.example"
        ]
    );
    assert!(!digest, "nobody takes the digest any more");
}

/// Queueing a post for a list's members, as the list stage does: more members than one page
/// of reading and one commit of records (the embedded store reads and writes them side by
/// side): a pending record for each member who gets posts, in address order in the entry,
/// none for the paused and the stopped, the post in the digest in the same commit as the
/// queueing; a second post with its Message-ID queues nothing and joins no digest. A small
/// list (one page) is queued the same way.
async fn queue_for_members_role(store: &Store) {
    let (list, today) = ("many@lists.example", "2026-12-07");
    let mut members: Vec<Member> = (0..2_500)
        .map(|i| member(&format!("m{i:05}@x.example")))
        .collect();
    for (i, m) in members.iter_mut().enumerate() {
        match i % 500 {
            7 => m.disabled = true,
            8 => m.set_delivery(DeliveryMode::Nomail, None, today),
            9 => m.delivery = DeliveryMode::Digest,
            _ => {}
        }
    }
    store.add_members(list, &members).await.expect("add");
    let expected: Vec<String> = members
        .iter()
        .filter(|m| m.gets_posts_on(today))
        .map(|m| m.address.clone())
        .collect();
    assert_eq!(expected.len(), 2_485);
    let (id, done) = offer_to_members(store, list, today, "<many@example.org>").await;
    assert_eq!(done, (Enqueued::Queued, expected.len()));
    let records = store.deliveries(id).await.expect("records");
    let mut addresses: Vec<String> = records.iter().map(|d| d.address.clone()).collect();
    addresses.sort();
    assert_eq!(addresses, expected);
    assert!(records.iter().all(|d| d.state == DeliveryState::Pending));
    let entry = store.queue_entry(id).await.expect("entry").expect("queued");
    assert_eq!(entry.recipients, expected);
    let digest = store.digest_pending(list).await.expect("digest");
    assert_eq!(digest.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [id]);
    let (again, done) = offer_to_members(store, list, today, "<many@example.org>").await;
    assert_eq!(done, (Enqueued::DuplicateOf(id), 0));
    assert!(store.deliveries(again).await.expect("records").is_empty());
    assert_eq!(store.digest_pending(list).await.expect("digest").len(), 1);
    // One page of members, nobody on the digest.
    let small = "few@lists.example";
    store
        .add_members(small, &[member("a@x.example"), member("b@x.example")])
        .await
        .expect("add");
    let (id, done) = offer_to_members(store, small, today, "<few@example.org>").await;
    assert_eq!(done, (Enqueued::Queued, 2));
    assert_eq!(store.deliveries(id).await.expect("records").len(), 2);
    assert!(
        store
            .digest_pending(small)
            .await
            .expect("digest")
            .is_empty()
    );
}

/// Spools a message and queues it for the members of `list` on `today` as a post with
/// `message_id`; returns its id and what the queueing did (with the recipients counted).
async fn offer_to_members(
    store: &Store,
    list: &str,
    today: &str,
    message_id: &str,
) -> (u64, (Enqueued, usize)) {
    let (meta, entry) = spooled_post(store, list, &[]).await;
    let id = meta.id;
    let seen = SeenWindow {
        message_id,
        since: 0,
    };
    let done = store
        .enqueue_for_members(&meta, entry, today, b"signed", None, Some(seen))
        .await
        .expect("queue");
    (id, done)
}

/// A post to more members than one commit writes (the embedded store writes and removes a
/// large post's records 50,000 a commit, so other mail's commits go in between): every member
/// has a pending record, the post's Message-ID still keeps a second post with it out, and once
/// all are delivered the post finishes with every member counted and its records removed.
async fn large_post_role(store: &Store) {
    const N: usize = 50_001;
    let recipients: Vec<String> = (0..N).map(|i| format!("m{i}@big.example")).collect();
    let (id, queued) = offer_post(store, &recipients, "<big@example.org>", 0).await;
    assert_eq!(queued, Enqueued::Queued);
    let records = store.deliveries(id).await.expect("records");
    assert_eq!(records.len(), N);
    assert!(records.iter().all(|d| d.state == DeliveryState::Pending));
    let (again, refused) = offer_post(store, &recipients, "<big@example.org>", 0).await;
    assert_eq!(refused, Enqueued::DuplicateOf(id));
    assert!(
        store.deliveries(again).await.expect("records").is_empty(),
        "the duplicate left no records"
    );
    let done: Vec<Delivery> = records.iter().map(delivered).collect();
    match store.record_round(id, &done).await.expect("round") {
        Settled::Finished(summary) => {
            assert_eq!(summary.delivered.values().sum::<u64>(), N as u64);
        }
        other => panic!("not finished: {other:?}"),
    }
    assert!(
        store.deliveries(id).await.expect("records").is_empty(),
        "compacted"
    );
    assert_eq!(store.outcomes(id).await.expect("outcomes").len(), N);
}

/// Connection slots per destination: a slot taken is below the limit, and free again once
/// given back. (On the embedded store every ask is granted: one process is the cluster.)
async fn slots_role(store: &Store) {
    let now = arclist::auth::unix_now();
    let free = |slots: &[(&str, u32)]| {
        let slots: Vec<(String, u32)> = slots.iter().map(|(d, s)| (d.to_string(), *s)).collect();
        async move { store.free_destination_slots(&slots).await.expect("free") }
    };
    let slot = store.take_destination_slots("fan.example", 1, 1, now).await;
    assert_eq!(slot.expect("take"), vec![0]);
    free(&[("fan.example", 0)]).await;
    let again = store.take_destination_slots("Fan.Example", 1, 1, now).await;
    assert_eq!(again.expect("take again"), vec![0]);
    free(&[("fan.example", 0)]).await;
    // Freeing a slot not held does nothing.
    free(&[("never.example", 3)]).await;
}

/// A fan-out's records as its copies are accepted, a few hundred at a time (the embedded store
/// appends them to a log and folds it into the records later): each is read back at once, a
/// later record of an address replaces an earlier one, no recorded member is due again, also
/// after the file is closed and opened again (a restart), and the round's record settles the
/// post with every member counted.
#[tokio::test]
async fn the_embedded_stores_fan_out_records_count_at_once_and_outlive_a_restart() {
    // More than the log holds before it is folded (16,384), so both are read together.
    const N: usize = 17_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("store.redb");
    let store = Store::from(RedbStore::open(&file).expect("open"));
    let recipients: Vec<String> = (0..N)
        .map(|n| format!("M{n:05}@d{}.example", n % 7))
        .collect();
    let post = queue_post(&store, &recipients).await;
    let now = arclist::auth::unix_now();
    let later = |address: &str| Delivery {
        state: DeliveryState::Deferred,
        next_attempt: now + 3600,
        last_reply: "451 later".into(),
        ..Delivery::pending(address)
    };
    // The first member refused for now, then (below) delivered; the last refused for now.
    let refused = [later(&recipients[0]), later(&recipients[N - 1])];
    store
        .record_deliveries(post, &refused)
        .await
        .expect("record");
    let count = |records: &[Delivery], state| records.iter().filter(|d| d.state == state).count();
    for (i, chunk) in recipients[..16_500].chunks(500).enumerate() {
        let round: Vec<Delivery> = chunk
            .iter()
            .map(|a| delivered(&Delivery::pending(a)))
            .collect();
        store.record_deliveries(post, &round).await.expect("record");
        let records = store.deliveries(post).await.expect("records");
        assert_eq!(records.len(), N, "one record a member");
        assert_eq!(count(&records, DeliveryState::Delivered), (i + 1) * 500);
    }
    drop(store);
    let store = Store::from(RedbStore::open(&file).expect("open again"));
    let records = store.deliveries(post).await.expect("records");
    assert_eq!(
        (
            count(&records, DeliveryState::Delivered),
            count(&records, DeliveryState::Deferred),
            count(&records, DeliveryState::Pending)
        ),
        (16_500, 1, N - 16_501),
        "after a restart"
    );
    let due = store.claim_due(post, now).await.expect("claim");
    assert_eq!(
        due.len(),
        N - 16_501,
        "only the members not tried yet are due"
    );
    assert!(due.iter().all(|d| d.state == DeliveryState::Pending));
    let mut round: Vec<Delivery> = due.iter().map(delivered).collect();
    round.push(delivered(&refused[1]));
    let Settled::Finished(summary) = store.record_round(post, &round).await.expect("round") else {
        panic!("every member settled");
    };
    assert_eq!(summary.delivered.values().sum::<u64>(), N as u64);
    assert!(summary.bounced.is_empty());
}

#[tokio::test]
async fn the_embedded_store_keeps_the_cluster_contract() {
    let (store, _dir) = embedded();
    let id = cluster_role(&store).await;
    // One process: at startup everything unfinished is its own.
    assert_eq!(store.take_unfinished().await.expect("unfinished"), vec![id]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgresql_store_keeps_the_cluster_contract() {
    let store = shared().await;
    cluster_role(&store).await;
    assert!(
        !store.once("prune", 7).await.expect("once"),
        "once per cluster: the second asker is told no"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgresql_schema_is_migrated_once() {
    // Migrations: a fresh database is at version 0, migrated once, then left alone.
    let fresh = postgres::cluster().fresh_store();
    let bare = PgStore::connect(&fresh, "node-m", &cluster_config(60, 1000)).expect("connect");
    let (at, newest) = bare.schema_version().await.expect("version");
    assert_eq!(at, 0);
    assert_eq!(
        bare.migrate().await.expect("migrate"),
        (1..=newest).collect::<Vec<_>>()
    );
    assert_eq!(
        bare.schema_version().await.expect("version"),
        (newest, newest)
    );
    assert!(
        bare.migrate().await.expect("migrate").is_empty(),
        "migrations run once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_with_a_record_per_recipient_is_upgraded_to_pages_with_every_record() {
    // A post an arclist before migration 7 queued: 1,201 recipients with a row each (one
    // delivered, one deferred, the rest pending), its list of recipients in its entry.
    let cluster = postgres::cluster();
    let url = cluster.fresh_store();
    let schema = url.rsplit("search_path%3D").next().expect("schema");
    let old = PgStore::connect(&url, "node-old", &cluster_config(60, 5000)).expect("connect");
    assert_eq!(
        old.migrate_to(6).await.expect("migrate"),
        (1..=6).collect::<Vec<_>>()
    );
    // Made in the database (a statement this big does not fit a command line), as the
    // older arclist wrote them.
    cluster.sql(&format!(
        "SET search_path = {schema};
         CREATE TEMP TABLE r AS SELECT n, 'M' || lpad(n::text, 4, '0') || '@y.example' AS a,
           CASE n WHEN 0 THEN 'delivered' WHEN 1 THEN 'deferred' ELSE 'pending' END AS st,
           CASE WHEN n < 2 THEN 1 ELSE 0 END AS tries,
           CASE n WHEN 1 THEN 9999999999 ELSE 0 END AS next,
           CASE n WHEN 0 THEN '250 ok' ELSE '' END AS reply
         FROM generate_series(0, 1200) AS n;
         INSERT INTO queue (id, entry) SELECT 7, json_build_object('id', 7,
           'list', 'list@lists.example', 'mail_from', 'list-bounces@lists.example',
           'recipients', (SELECT json_agg(a ORDER BY n) FROM r), 'queued_at', 1700000000,
           'summary', NULL, 'plain', false)::text;
         INSERT INTO active (id, head) VALUES (7, '{{}}');
         INSERT INTO deliveries (id, address, record, state, next_attempt)
         SELECT 7, lower(a), json_build_object('address', a, 'state', st, 'attempts', tries,
           'next_attempt', next, 'last_reply', reply)::text, st, next FROM r;"
    ));
    let recipients: Vec<String> = (0..1201).map(|n| format!("M{n:04}@y.example")).collect();
    let record = |n: usize| {
        let mut d = Delivery::pending(&recipients[n]);
        match n {
            0 => {
                (d.state, d.attempts, d.last_reply) = (DeliveryState::Delivered, 1, "250 ok".into())
            }
            1 => {
                (d.state, d.attempts, d.next_attempt) = (DeliveryState::Deferred, 1, 9_999_999_999)
            }
            _ => {}
        }
        d
    };
    drop(old);
    // The next arclist opens it: the records are in pages, the list beside the entry.
    let store = node(&url, "node-new", cluster_config(60, 5000)).await;
    let mut kept = store.deliveries(7).await.expect("records");
    kept.sort_by(|a, b| a.address.cmp(&b.address));
    assert_eq!(kept, (0..1201).map(record).collect::<Vec<_>>());
    assert_eq!(
        store
            .queue_entry(7)
            .await
            .expect("entry")
            .expect("queued")
            .recipients,
        recipients
    );
    let pages = cluster.sql(&format!(
        "SELECT count(*), sum(size), sum(pending), sum(deferred) FROM {schema}.recipient_pages"
    ));
    assert_eq!(pages.trim(), "3|1201|1199|1");
    let due = store
        .claim_due(7, arclist::auth::unix_now())
        .await
        .expect("claim");
    assert_eq!(
        due.len(),
        1199,
        "the pending ones, not the delivered or deferred one"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_queued_in_several_statements_keeps_each_recipient_once() {
    let url = postgres::cluster().fresh_store();
    // Pages of 10 (a node claiming 10 at a time): 700 recipients make 70 pages, written 64
    // to a statement.
    let a = node(&url, "node-a", cluster_config(60, 10)).await;
    let mut recipients: Vec<String> = (0..700).map(|n| format!("M{n:04}@Y.example")).collect();
    // Other spellings of addresses on both sides of the statements' boundary (640).
    recipients.extend([638, 639, 640, 641].map(|n| format!("m{n:04}@y.EXAMPLE")));
    let post = queue_post(&a, &recipients).await;
    let records = a.deliveries(post).await.expect("records");
    let distinct: std::collections::BTreeSet<String> = records
        .iter()
        .map(|d| d.address.to_ascii_lowercase())
        .collect();
    assert_eq!((records.len(), distinct.len()), (700, 700));
    assert!(
        records.iter().any(|d| d.address == "M0640@Y.example"),
        "the first spelling is kept"
    );
    let (now, mut claimed) = (arclist::auth::unix_now(), Vec::new());
    loop {
        let due = a.claim_due(post, now).await.expect("claim");
        if due.is_empty() {
            break;
        }
        claimed.extend(due.into_iter().map(|d| d.address.to_ascii_lowercase()));
    }
    claimed.sort();
    assert_eq!(
        claimed,
        distinct.into_iter().collect::<Vec<_>>(),
        "the claims go through every page once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recipient_due_again_by_the_end_of_its_round_is_tried_again() {
    let url = postgres::cluster().fresh_store();
    let a = node(&url, "node-a", cluster_config(60, 10)).await;
    let recipients: Vec<String> = (0..2).map(|n| format!("m{n}@y.example")).collect();
    let post = queue_post(&a, &recipients).await;
    let now = arclist::auth::unix_now();
    let mine = a.claim_due(post, now).await.expect("claim");
    assert_eq!(mine.len(), 2);
    // A long round: one recipient was deferred early, and its retry time came before the end.
    let round = [
        delivered(&mine[0]),
        Delivery {
            state: DeliveryState::Deferred,
            attempts: 1,
            next_attempt: now,
            last_reply: "451 later".into(),
            ..mine[1].clone()
        },
    ];
    match a.record_last_round(post, &round).await.expect("round") {
        Settled::Waiting(head) => assert_eq!((head.deferred, head.next_due), (1, now)),
        other => panic!("one recipient waits: {other:?}"),
    }
    let again = a.claim_due(post, arclist::auth::unix_now()).await;
    assert_eq!(
        again.expect("claim again").len(),
        1,
        "the deferred recipient is tried again, its page not left claimed by the round"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_claim_lapsed_cannot_undo_what_the_node_that_took_over_recorded() {
    let url = postgres::cluster().fresh_store();
    let a = node(&url, "node-a", cluster_config(3, 10)).await;
    let b = node(&url, "node-b", cluster_config(3, 10)).await;
    let recipients: Vec<String> = (0..10).map(|n| format!("m{n}@y.example")).collect();
    let post = queue_post(&a, &recipients).await;
    let now = arclist::auth::unix_now();
    let mine = a.claim_due(post, now).await.expect("a claims");
    assert_eq!(mine.len(), 10);
    // Claimed, they are nobody else's, nor this node's again (it may run several rounds).
    assert!(a.claim_due(post, now).await.expect("a again").is_empty());
    // A round that failed hands its claims back; the next round takes them.
    let addresses: Vec<String> = mine.iter().map(|d| d.address.clone()).collect();
    a.release_claims(post, &addresses).await.expect("release");
    assert_eq!(a.claim_due(post, now).await.expect("a again").len(), 10);
    // Node a stalls past its lease (its heartbeat stopped); b takes over and delivers.
    let later = now + 10;
    let taken = b.claim_due(post, later).await.expect("b takes over");
    assert_eq!(taken.len(), 10);
    b.record_deliveries(post, &taken.iter().map(delivered).collect::<Vec<_>>())
        .await
        .expect("b records");
    // Node a wakes and records what it saw: a refusal to retry later.
    let late: Vec<Delivery> = mine
        .iter()
        .map(|d| Delivery {
            state: DeliveryState::Deferred,
            next_attempt: later + 60,
            last_reply: "451 try later".into(),
            ..d.clone()
        })
        .collect();
    a.record_deliveries(post, &late)
        .await
        .expect("a's late records");
    let records = b.deliveries(post).await.expect("records");
    assert!(
        records.iter().all(|d| d.state == DeliveryState::Delivered),
        "delivered stays delivered: {records:?}"
    );
    abandon(a);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_a_post_and_take_over_a_dead_nodes_claims() {
    let url = postgres::cluster().fresh_store();
    let a = node(&url, "node-a", cluster_config(3, 40)).await;
    let b = node(&url, "node-b", cluster_config(3, 40)).await;
    let recipients: Vec<String> = (0..100).map(|n| format!("m{n:03}@y.example")).collect();
    let post = queue_post(&a, &recipients).await;
    let now = arclist::auth::unix_now();
    let mine = a.claim_due(post, now).await.expect("a claims");
    let theirs = b.claim_due(post, now).await.expect("b claims");
    assert_eq!(
        (mine.len(), theirs.len()),
        (40, 40),
        "each node takes a batch"
    );
    let overlap = mine
        .iter()
        .filter(|d| theirs.iter().any(|t| t.address == d.address))
        .count();
    assert_eq!(overlap, 0, "no recipient is claimed twice");
    // Node b finishes its batch; node a dies holding its claims, with 10 recorded.
    b.record_round(post, &theirs.iter().map(delivered).collect::<Vec<_>>())
        .await
        .expect("b records");
    a.record_deliveries(
        post,
        &mine.iter().take(10).map(delivered).collect::<Vec<_>>(),
    )
    .await
    .expect("a records some");
    abandon(a);
    let rest = b
        .claim_due(post, now)
        .await
        .expect("b claims the unclaimed");
    assert_eq!(rest.len(), 20);
    b.record_round(post, &rest.iter().map(delivered).collect::<Vec<_>>())
        .await
        .expect("b records");
    assert!(
        b.claim_due(post, arclist::auth::unix_now())
            .await
            .expect("nothing yet")
            .is_empty(),
        "a's claims hold until they lapse"
    );
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    let orphans = b
        .claim_due(post, arclist::auth::unix_now())
        .await
        .expect("after the lease");
    assert_eq!(
        orphans.len(),
        30,
        "a's unrecorded recipients, and only those"
    );
    let Settled::Finished(summary) = b
        .record_round(post, &orphans.iter().map(delivered).collect::<Vec<_>>())
        .await
        .expect("b finishes")
    else {
        panic!("the post is finished");
    };
    assert_eq!(summary.delivered.values().sum::<u64>(), 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_share_a_destinations_slots_which_lapse_when_a_node_dies() {
    let url = postgres::cluster().fresh_store();
    let a = node(&url, "node-a", cluster_config(3, 10)).await;
    let b = node(&url, "node-b", cluster_config(3, 10)).await;
    let now = arclist::auth::unix_now();
    let take = |s: &Store, d: &'static str, want: u32| {
        let s = s.clone();
        async move {
            s.take_destination_slots(d, 2, want, now)
                .await
                .expect("take")
        }
    };
    let free = |s: &Store, d: &'static str, slot: u32| {
        let s = s.clone();
        async move {
            s.free_destination_slots(&[(d.to_string(), slot)])
                .await
                .expect("free")
        }
    };
    // Two slots for the cluster, whichever node asks; case does not make a new destination.
    assert_eq!(take(&a, "fan.example", 1).await, vec![0]);
    assert_eq!(take(&b, "FAN.example", 1).await, vec![1]);
    assert_eq!(take(&a, "fan.example", 1).await, Vec::<u32>::new());
    assert_eq!(take(&b, "fan.example", 2).await, Vec::<u32>::new());
    assert_eq!(
        take(&b, "other.example", 1).await,
        vec![0],
        "each destination has its own"
    );
    // Given back, a slot is the next asker's.
    free(&a, "fan.example", 0).await;
    assert_eq!(take(&b, "fan.example", 1).await, vec![0]);
    free(&b, "fan.example", 0).await;
    free(&b, "fan.example", 1).await;
    // One ask takes several, never more than the limit, lowest first.
    assert_eq!(take(&a, "fan.example", 5).await, vec![0, 1]);
    free(&a, "fan.example", 1).await;
    assert_eq!(take(&b, "fan.example", 1).await, vec![1]);
    // Held slots are renewed with the node's claims: past a lease, still held.
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    let later = arclist::auth::unix_now();
    assert_eq!(
        b.take_destination_slots("fan.example", 2, 1, later)
            .await
            .expect("take"),
        Vec::<u32>::new(),
        "renewed while held"
    );
    // Node b stops on purpose: its slots are free at once.
    drop(b);
    let c = node(&url, "node-c", cluster_config(3, 10)).await;
    assert_eq!(
        c.take_destination_slots("fan.example", 2, 1, later)
            .await
            .expect("take"),
        vec![1],
        "a stopped node's slot"
    );
    // Node a dies holding slot 0: it lapses with the lease, and not before.
    abandon(a);
    assert_eq!(
        c.take_destination_slots("fan.example", 2, 1, later)
            .await
            .expect("take"),
        Vec::<u32>::new()
    );
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    assert_eq!(
        c.take_destination_slots("fan.example", 2, 1, arclist::auth::unix_now())
            .await
            .expect("take"),
        vec![0],
        "a dead node's slot lapsed"
    );
    // The pruning pass removes lapsed slots only: the ones node c holds stay its own.
    let keep = Retention {
        records: 86_400,
        raw: 86_400,
    };
    let now = arclist::auth::unix_now();
    c.prune(now, keep, 100).await.expect("prune");
    assert_eq!(
        c.take_destination_slots("fan.example", 2, 1, now)
            .await
            .expect("take"),
        Vec::<u32>::new(),
        "held slots outlive the pruning"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_post_given_to_two_nodes_at_once_is_queued_once() {
    let url = postgres::cluster().fresh_store();
    let a = node(&url, "node-a", cluster_config(60, 1000)).await;
    let b = node(&url, "node-b", cluster_config(60, 1000)).await;
    let recipients: Vec<String> = (0..50).map(|n| format!("m{n:02}@y.example")).collect();
    for round in 0..10 {
        let mid = format!("<race{round}@example.org>");
        let ((id_a, on_a), (id_b, on_b)) = tokio::join!(
            offer_post(&a, &recipients, &mid, 0),
            offer_post(&b, &recipients, &mid, 0)
        );
        let outcomes = [(id_a, on_a, id_b), (id_b, on_b, id_a)];
        let queued: Vec<_> = outcomes
            .iter()
            .filter(|(_, on, _)| *on == Enqueued::Queued)
            .collect();
        assert_eq!(queued.len(), 1, "round {round}: one node queues it");
        let (winner, _, _) = queued[0];
        let (loser, on, _) = outcomes
            .iter()
            .find(|(id, _, _)| id != winner)
            .expect("the other");
        assert_eq!(*on, Enqueued::DuplicateOf(*winner), "round {round}");
        assert!(a.deliveries(*loser).await.expect("records").is_empty());
        assert_eq!(
            a.deliveries(*winner).await.expect("records").len(),
            recipients.len()
        );
    }
    abandon(a);
    abandon(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_a_dead_node_spooled_is_taken_over_after_its_lease() {
    let url = postgres::cluster().fresh_store();
    let a = node(&url, "node-a", cluster_config(3, 40)).await;
    let b = node(&url, "node-b", cluster_config(3, 40)).await;
    let id = a.spool(envelope(1), b"m".to_vec()).await.expect("spool");
    assert!(
        b.take_unfinished().await.expect("take").is_empty(),
        "a live node's message is its own"
    );
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert!(
        b.take_unfinished().await.expect("take").is_empty(),
        "renewed while a lives"
    );
    abandon(a);
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    assert_eq!(b.take_unfinished().await.expect("take"), vec![id]);
    let (meta, _): (SpoolMeta, _) = b.get(id).await.expect("get").expect("there");
    assert_eq!(meta.state, SpoolState::Received);
    // A node that stops on purpose hands its work back at once.
    let second = b.spool(envelope(2), b"n".to_vec()).await.expect("spool");
    let c = node(&url, "node-c", cluster_config(3, 40)).await;
    assert!(c.take_unfinished().await.expect("take").is_empty());
    drop(b);
    let mut taken = c.take_unfinished().await.expect("take");
    taken.sort_unstable();
    assert_eq!(
        taken,
        vec![id, second],
        "no lease to wait for after a graceful stop"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_is_reached_over_verified_tls_when_the_url_asks() {
    let cluster = postgres::cluster();
    let plain = cluster.fresh_store();
    let schema = plain
        .rsplit("search_path%3D")
        .next()
        .expect("schema")
        .to_string();
    // The role may log in over TLS only (pg_hba.conf rejects it in clear).
    let url = |tls: &str| {
        format!(
            "postgresql://tls_only:secret@127.0.0.1:{}/postgres?{tls}&options=-c%20search_path%3D{schema}",
            cluster.port
        )
    };
    let config = cluster_config(60, 100);
    let verified = url(&format!(
        "sslmode=require&sslrootcert={}",
        cluster.ca.display()
    ));
    let store = Store::from(
        PgStore::open(&verified, "node-tls", &config)
            .await
            .expect("TLS with the cluster's CA"),
    );
    store
        .add_member("list@lists.example", &member("a@x.example"))
        .await
        .expect("a write over TLS");
    assert!(
        store
            .is_member("list@lists.example", "a@x.example")
            .await
            .expect("read")
    );
    let clear = PgStore::open(&url("sslmode=disable"), "node-clear", &config).await;
    let refused = clear.err().expect("refused in clear").to_string();
    assert!(
        refused.contains("no encryption"),
        "the role is refused in clear, so the TLS connection was TLS: {refused}"
    );
    // A certificate from a CA the URL does not name is refused by libpq's verifying mode, with
    // the reason (`require` alone encrypts without checking, as in libpq: below).
    let unknown = PgStore::open(&url("sslmode=verify-full"), "node-untrusted", &config)
        .await
        .err()
        .expect("an unknown CA is refused");
    assert!(
        unknown.to_string().contains("certificate")
            && unknown.store().contains("tls_only@127.0.0.1"),
        "{unknown}"
    );
    assert!(!unknown.to_string().contains("secret"));
}

/// `sslmode` as libpq reads it, against a cluster whose certificate names 127.0.0.1 and comes
/// from a CA of its own; the role `tls_only` may log in over TLS only, so every connection that
/// works was encrypted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sslmode_has_libpqs_meanings() {
    let cluster = postgres::cluster();
    let plain = cluster.fresh_store();
    let schema = plain
        .rsplit("search_path%3D")
        .next()
        .expect("schema")
        .to_string();
    // `host` is the name the certificate is checked against; `hostaddr` where to connect.
    let url = |host: &str, tls: &str| {
        let sep = if tls.is_empty() { "" } else { "&" };
        format!(
            "postgresql://tls_only:secret@{host}:{}/postgres?hostaddr=127.0.0.1{sep}{tls}&options=-c%20search_path%3D{schema}",
            cluster.port
        )
    };
    let ca = format!("sslrootcert={}", cluster.ca.display());
    let config = cluster_config(60, 100);
    let reaches = async |url: String| match PgStore::open(&url, "node-mode", &config).await {
        Ok(store) => Store::from(store)
            .is_member("l@x", "a@x")
            .await
            .map(drop)
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    // The default (no sslmode) is libpq's prefer: TLS, as the server offers it.
    reaches(url("127.0.0.1", ""))
        .await
        .expect("no sslmode: TLS when offered");
    reaches(url("127.0.0.1", "sslmode=prefer"))
        .await
        .expect("prefer");
    reaches(url("127.0.0.1", "sslmode=require"))
        .await
        .expect("require checks no certificate");
    // verify-ca checks the chain only: a host name the certificate does not carry passes.
    reaches(url("localhost", &format!("sslmode=verify-ca&{ca}")))
        .await
        .expect("verify-ca");
    reaches(url("localhost", &format!("sslmode=require&{ca}")))
        .await
        .expect("require with a CA file is verify-ca");
    let unknown = reaches(url("127.0.0.1", "sslmode=verify-ca"))
        .await
        .expect_err("an unknown CA");
    assert!(unknown.contains("UnknownIssuer"), "{unknown}");
    // verify-full checks the name too.
    reaches(url("127.0.0.1", &format!("sslmode=verify-full&{ca}")))
        .await
        .expect("verify-full");
    let wrong_name = reaches(url("localhost", &format!("sslmode=verify-full&{ca}")))
        .await
        .expect_err("wrong name");
    assert!(wrong_name.contains("not valid for name"), "{wrong_name}");
    let refused = reaches(url("127.0.0.1", "sslmode=disable"))
        .await
        .expect_err("in clear");
    assert!(refused.contains("no encryption"), "{refused}");
    let unknown_mode = reaches(url("127.0.0.1", "sslmode=allow"))
        .await
        .expect_err("allow");
    assert!(unknown_mode.contains("sslmode=allow"), "{unknown_mode}");
}

/// A restarted database lets no claim lapse for a lease: while it was down no node could
/// renew anything, and the holder may have delivered those recipients and be waiting to
/// record them (`delivery/unrecorded.rs`). On a cluster of its own, which it restarts; only on
/// the PostgreSQL run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_database_lets_no_claim_lapse_for_a_lease() {
    if !crate::database_away::on_postgresql() {
        return;
    }
    // Long enough that node b opens and looks well within a lease of the restart.
    const LEASE: u64 = 5;
    let cluster = postgres::start("db-lease", false);
    let url = cluster.fresh_store();
    let a = node(&url, "node-a", cluster_config(LEASE, 10)).await;
    let recipients: Vec<String> = (0..10).map(|n| format!("m{n}@y.example")).collect();
    let post = queue_post(&a, &recipients).await;
    let mine = a.claim_due(post, arclist::auth::unix_now()).await;
    assert_eq!(mine.expect("a claims").len(), 10);
    // Node a stops renewing (as if cut off), and its claims lapse.
    abandon(a);
    tokio::time::sleep(std::time::Duration::from_secs(LEASE + 1)).await;
    cluster.restart();
    let b = node(&url, "node-b", cluster_config(LEASE, 10)).await;
    let now = arclist::auth::unix_now();
    assert!(
        b.claim_due(post, now).await.expect("b looks").is_empty(),
        "within a lease of the restart, node a's lapsed claims are not taken"
    );
    tokio::time::sleep(std::time::Duration::from_secs(LEASE + 1)).await;
    let taken = b.claim_due(post, arclist::auth::unix_now()).await;
    assert_eq!(
        taken.expect("b takes over").len(),
        10,
        "a lease after the restart they are"
    );
}
