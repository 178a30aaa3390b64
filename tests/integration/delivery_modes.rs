//! Members' delivery modes and the per-member moderation flag, over real SMTP: set through the
//! CLI on a running server (its admin API) and by confirmed email commands; a paused member
//! gets nothing, a pause whose date has passed is over, a moderated member's post is held.

use crate::list_pipeline::{World, post, world, world_prepared};
use crate::smtp_support::LIST;
use arclist::state::store::{DeliveryMode, SpoolState};

const TOKEN: &str = "an-admin-token-of-32-characters!";

/// The test world with an admin listener, so the CLI talks to the running server.
async fn world_with_admin() -> World {
    let admin = "[admin]\nlisten = \"127.0.0.1:0\"\ntoken_file = \"admin.token\"\n";
    world_prepared(admin, "", None, |dir| {
        std::fs::write(dir.join("admin.token"), format!("{TOKEN}\n")).expect("token")
    })
    .await
}

/// `arclist ARGS --config SERVER_FILE`, off the runtime's workers.
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

/// Bob (club.test, whose SPF names 127.0.0.22) posts; the spool id.
async fn bob_posts(w: &World, subject: &str) -> u64 {
    let message = post("Bob <bob@club.test>", subject, "Hello.\r\n");
    w.send("127.0.0.22", "mx.club.test", "bob@club.test", &message)
        .await
}

/// The members post `id` reached, once it was queued and delivered.
async fn queued_for(w: &World, id: u64) -> Vec<String> {
    let meta = w.t.settled(id).await;
    assert_eq!(meta.state, SpoolState::Queued, "post {id}: {:?}", meta.note);
    w.t.delivered_to(&w.sink, id).await
}

/// Waits until `member`'s server received a copy with `subject`.
async fn received(w: &World, member: &str, subject: &str) {
    crate::smtp_support::until(&format!("{member} receives {subject:?}"), async || {
        w.sink
            .inbox(member)
            .iter()
            .any(|m| String::from_utf8_lossy(m).contains(subject))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nomail_members_get_nothing_until_their_date_and_moderated_members_are_held() {
    let w = world_with_admin().await;
    // Bob pauses; the reader paused until a date that has passed; Alice stays regular.
    let (ok, text) = cli(
        &w,
        &[
            "member",
            "set",
            LIST,
            "Bob@club.test",
            "--delivery",
            "nomail",
        ],
    )
    .await;
    assert!(
        ok && text.contains("bob@club.test") && text.contains("\tnomail"),
        "{text}"
    );
    let args = [
        "member",
        "set",
        LIST,
        "reader@elsewhere.test",
        "--delivery",
        "nomail",
        "--until",
        "2020-01-15",
    ];
    let (ok, text) = cli(&w, &args).await;
    assert!(
        ok && text.contains("regular (nomail ended 2020-01-15)"),
        "{text}"
    );

    let id = bob_posts(&w, "While Bob is away").await;
    assert_eq!(
        queued_for(&w, id).await,
        vec!["alice@bank.test", "reader@elsewhere.test"],
        "a paused member is left out; a pause whose date passed is over"
    );
    received(&w, "alice@bank.test", "While Bob is away").await;
    received(&w, "reader@elsewhere.test", "While Bob is away").await;
    assert!(w.sink.inbox("bob@club.test").is_empty(), "bob got nothing");

    // A pause until a date to come keeps the member out, and says when it ends.
    let until = ["--delivery", "nomail", "--until", "2099-12-31"];
    let (ok, text) = cli(
        &w,
        &[
            &["member", "set", LIST, "reader@elsewhere.test"][..],
            &until,
        ]
        .concat(),
    )
    .await;
    assert!(
        ok && text.contains("nomail until 2099-12-31 (then regular)"),
        "{text}"
    );
    let id = bob_posts(&w, "Nobody but Alice").await;
    assert_eq!(queued_for(&w, id).await, vec!["alice@bank.test"]);
    let (_, text) = cli(&w, &["member", "ls", LIST]).await;
    assert!(
        text.contains("\tnomail until 2099-12-31 (then regular)"),
        "{text}"
    );

    // Refusals name what is wrong.
    let bad_date = [
        "member",
        "set",
        LIST,
        "bob@club.test",
        "--delivery",
        "nomail",
        "--until",
        "2027-02-30",
    ];
    let (ok, text) = cli(&w, &bad_date).await;
    assert!(
        !ok && text.contains("until") && text.contains("2027-02-30"),
        "{text}"
    );
    let (ok, text) = cli(
        &w,
        &[
            "member",
            "set",
            LIST,
            "bob@club.test",
            "--until",
            "2099-01-01",
        ],
    )
    .await;
    assert!(!ok && text.contains("--delivery"), "{text}");
    let (ok, text) = cli(
        &w,
        &[
            "member",
            "set",
            LIST,
            "nobody@club.test",
            "--moderated",
            "true",
        ],
    )
    .await;
    assert!(!ok && text.contains("not a member"), "{text}");

    // A moderated member's post is held; once the flag is off it goes out.
    let (ok, text) = cli(
        &w,
        &[
            "member",
            "set",
            LIST,
            "bob@club.test",
            "--moderated",
            "true",
        ],
    )
    .await;
    assert!(ok && text.contains("\tmoderated"), "{text}");
    let id = bob_posts(&w, "Moderate me").await;
    let meta = w.t.settled(id).await;
    assert_eq!(meta.state, SpoolState::Held);
    assert_eq!(
        meta.note.as_deref(),
        Some("the poster is a moderated member")
    );
    let (ok, _) = cli(
        &w,
        &[
            "member",
            "set",
            LIST,
            "bob@club.test",
            "--moderated",
            "false",
            "--delivery",
            "regular",
        ],
    )
    .await;
    assert!(ok);
    let id = bob_posts(&w, "Free again").await;
    assert_eq!(
        queued_for(&w, id).await,
        vec!["alice@bank.test", "bob@club.test"]
    );
    received(&w, "bob@club.test", "Free again").await;
}

/// The confirmation address in the reply queued for command `id`.
async fn confirmation_address(w: &World, id: u64) -> String {
    w.t.settled(id).await;
    let (_, reply) =
        w.t.server
            .store()
            .queued(id)
            .await
            .expect("queue")
            .expect("a reply is queued");
    assert_eq!(
        w.t.delivered_to(&w.sink, id).await,
        vec!["bob@club.test".to_string()]
    );
    let reply = String::from_utf8(reply).expect("utf-8");
    let head = reply.split("\r\n\r\n").next().unwrap_or_default();
    head.lines()
        .find_map(|l| l.strip_prefix("Reply-To: "))
        .map(|v| v.trim_matches(['<', '>']).to_string())
        .unwrap_or_else(|| panic!("a Reply-To: {reply}"))
}

/// The body of the reply queued for command `id`.
async fn reply_body(w: &World, id: u64) -> String {
    w.t.settled(id).await;
    let (_, reply) =
        w.t.server
            .store()
            .queued(id)
            .await
            .expect("queue")
            .expect("a reply is queued");
    String::from_utf8_lossy(&reply).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_commands_by_email_change_the_mode_once_confirmed() {
    let w = world("max_replies_per_hour = 20").await;
    let store = w.t.server.store();
    let from_bob = |subject: &str| post("Bob <bob@club.test>", subject, "Thanks\r\n");
    let send = async |rcpt: &str, from: &str, message: Vec<u8>| {
        w.send_to("127.0.0.22", "mx.club.test", from, rcpt, &message)
            .await
    };
    let request = "members-request@lists.arclist.test";
    let mode = async || {
        let m = store
            .member(LIST, "bob@club.test")
            .await
            .expect("store")
            .expect("member");
        (m.delivery, m.nomail_until)
    };

    // Help describes the set commands.
    let id = send(request, "bob@club.test", from_bob("help")).await;
    let body = reply_body(&w, id).await;
    for line in [
        "set digest plain",
        "set nomail until 2027-01-15",
        "set regular",
    ] {
        assert!(body.contains(line), "help names {line:?}: {body}");
    }

    // 1. Asking changes nothing yet; a confirmation goes to Bob.
    let id = send(
        request,
        "bob@club.test",
        from_bob("set nomail until 2099-01-15"),
    )
    .await;
    let confirm = confirmation_address(&w, id).await;
    assert!(confirm.starts_with("members-confirm+sn"), "{confirm}");
    assert_eq!(mode().await, (DeliveryMode::Regular, None));
    // 2. Someone else using Bob's token changes nothing.
    let forged = post("Mallory <mallory@club.test>", "Re: confirm", "yes\r\n");
    let id = send(&confirm, "mallory@club.test", forged).await;
    assert!(
        w.t.settled(id)
            .await
            .note
            .is_some_and(|n| n.contains("invalid or expired")),
    );
    assert_eq!(mode().await, (DeliveryMode::Regular, None));
    // 3. Bob confirms: paused until the date, and a post skips him.
    let id = send(&confirm, "bob@club.test", from_bob("Re: confirm")).await;
    let body = reply_body(&w, id).await;
    assert!(body.contains("no mail until 2099-01-15"), "{body}");
    assert_eq!(
        mode().await,
        (DeliveryMode::Nomail, Some("2099-01-15".to_string()))
    );
    let id = send(LIST, "bob@club.test", from_bob("Bob is away")).await;
    assert_eq!(
        queued_for(&w, id).await,
        vec!["alice@bank.test", "reader@elsewhere.test"]
    );

    // 4. The plain digest, then back to every post, each confirmed.
    for (subject, expected) in [
        ("set digest plain", DeliveryMode::DigestPlain),
        ("Re: SET Regular", DeliveryMode::Regular),
    ] {
        let id = send(request, "bob@club.test", from_bob(subject)).await;
        let confirm = confirmation_address(&w, id).await;
        let id = send(&confirm, "bob@club.test", from_bob("Re: confirm")).await;
        w.t.settled(id).await;
        assert_eq!(mode().await, (expected, None), "{subject}");
    }
}
