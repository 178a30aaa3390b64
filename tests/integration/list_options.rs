//! List options people ask for, over real SMTP: a per-list maximum message size, refused at
//! the end of DATA with the limit named, and Mailman's moderation lists (addresses or
//! patterns whose posts are always accepted, held, rejected with a reason, or discarded).

use crate::list_pipeline::{post, world};
use crate::smtp_support::{Client, LIST};
use arclist::state::store::SpoolState;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_over_the_lists_size_is_refused_at_data_naming_the_limit() {
    let w = world("max_message_size = 4000").await;
    let big = post("Bob <bob@club.test>", "Big", &"x".repeat(78).repeat(60));
    let (mut c, _) = Client::connect_from(w.t.smtp(), "127.0.0.22").await;
    assert_eq!(c.cmd("EHLO mx.club.test").await.0, 250);
    let (code, text) = c.post("bob@club.test", LIST, &big).await;
    assert_eq!(code, 552, "{text}");
    assert!(
        text.contains("5.3.4") && text.contains("4000 byte limit") && text.contains(LIST),
        "{text}"
    );
    assert!(w.t.spool().await.is_empty(), "nothing of it was spooled");
    // A post within the limit goes out as ever.
    let small = post("Bob <bob@club.test>", "Small", "Short.\r\n");
    let id = w
        .send("127.0.0.22", "mx.club.test", "bob@club.test", &small)
        .await;
    assert_eq!(w.t.settled(id).await.state, SpoolState::Queued);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_moderation_lists_accept_hold_reject_and_discard_by_address_or_pattern() {
    let w = world(
        "accept_posts_from = [\"Carol@Club.test\"]\nhold_posts_from = [\"dave@*\"]\n\
         reject_posts_from = [\"eve@club.test\"]\ndiscard_posts_from = [\"*spam*@club.test\"]\n\
         reject_reason = \"Eve, this list is not for you\"",
    )
    .await;
    let from = async |who: &str| {
        let message = post(&format!("<{who}>"), "Hello", "Hi all.\r\n");
        let id = w.send("127.0.0.22", "mx.club.test", who, &message).await;
        w.t.settled(id).await
    };
    let carol = from("carol@club.test").await;
    assert_eq!(
        carol.state,
        SpoolState::Queued,
        "a non-member on accept_posts_from posts: {:?}",
        carol.note
    );
    let dave = from("dave@club.test").await;
    assert_eq!(
        (dave.state, dave.note.as_deref()),
        (
            SpoolState::Held,
            Some("the poster is on the list's hold_posts_from")
        )
    );
    let eve = from("eve@club.test").await;
    assert_eq!(
        (eve.state, eve.note.as_deref()),
        (SpoolState::Rejected, Some("Eve, this list is not for you"))
    );
    let spam = from("bigspammer@club.test").await;
    assert_eq!(spam.state, SpoolState::Discarded, "{:?}", spam.note);
    let stranger = from("frank@club.test").await;
    assert_eq!(
        (stranger.state, stranger.note.as_deref()),
        (SpoolState::Held, Some("the poster is not a member")),
        "anyone else is a non-member as before"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_sets_the_moderation_lists_through_the_admin_api() {
    const TOKEN: &str = "an-admin-token-of-32-characters!";
    let admin = "[admin]\nlisten = \"127.0.0.1:0\"\ntoken_file = \"admin.token\"\n";
    let w = crate::list_pipeline::world_prepared(admin, "", None, |dir| {
        std::fs::write(dir.join("admin.token"), format!("{TOKEN}\n")).expect("token")
    })
    .await;
    let url = format!(
        "http://{}/api/lists/{LIST}/settings",
        w.t.server.admin_addr().expect("admin listener")
    );
    let curl = async |args: &[&str]| {
        let out = tokio::process::Command::new("curl")
            .args(["-s", "-S", "-H", &format!("Authorization: Bearer {TOKEN}")])
            .args(args)
            .arg(&url)
            .output()
            .await
            .expect("curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let body = r#"{"accept_posts_from": ["carol@club.test"], "reject_posts_from": ["eve@*"], "reject_reason": "No."}"#;
    let answer = curl(&["-X", "PUT", "-d", body]).await;
    assert!(answer.contains("carol@club.test"), "{answer}");
    let settings: serde_json::Value = serde_json::from_str(&curl(&[]).await).expect("json");
    assert_eq!(
        settings["accept_posts_from"],
        serde_json::json!(["carol@club.test"])
    );
    assert_eq!(settings["reject_reason"], "No.");
    let bad = curl(&[
        "-X",
        "PUT",
        "-d",
        r#"{"hold_posts_from": ["not an address"]}"#,
    ])
    .await;
    assert!(
        bad.contains("hold_posts_from"),
        "a bad pattern is refused: {bad}"
    );
    let message = post("<carol@club.test>", "Hello", "Hi.\r\n");
    let id = w
        .send("127.0.0.22", "mx.club.test", "carol@club.test", &message)
        .await;
    assert_eq!(w.t.settled(id).await.state, SpoolState::Queued);
    let message = post("<eve@club.test>", "Hello", "Hi.\r\n");
    let id = w
        .send("127.0.0.22", "mx.club.test", "eve@club.test", &message)
        .await;
    let eve = w.t.settled(id).await;
    assert_eq!(
        (eve.state, eve.note.as_deref()),
        (SpoolState::Rejected, Some("No."))
    );

    // The CLI, on the running server: a flag replaces its list, a bare flag empties it.
    let config = w.t.dir.path().join("server.toml");
    let (ok, text) = tokio::task::spawn_blocking(move || {
        crate::support::arclist_cli(
            &config,
            &[
                "list",
                "posters",
                LIST,
                "--hold",
                "dave@*,frank@club.test",
                "--reject",
            ],
        )
    })
    .await
    .expect("cli");
    assert!(ok, "{text}");
    assert!(
        text.contains(&format!("{LIST}\thold\tdave@*,frank@club.test\n")),
        "{text}"
    );
    assert!(text.contains(&format!("{LIST}\treject\t\n")), "{text}");
    assert!(
        text.contains(&format!("{LIST}\taccept\tcarol@club.test\n")),
        "{text}"
    );
    let message = post("<dave@club.test>", "Hello", "Hi.\r\n");
    let id = w
        .send("127.0.0.22", "mx.club.test", "dave@club.test", &message)
        .await;
    assert_eq!(w.t.settled(id).await.state, SpoolState::Held);
    let message = post("<eve@club.test>", "Hello", "Hi.\r\n");
    let id = w
        .send("127.0.0.22", "mx.club.test", "eve@club.test", &message)
        .await;
    let eve = w.t.settled(id).await;
    assert_eq!(
        (eve.state, eve.note.as_deref()),
        (SpoolState::Held, Some("the poster is not a member")),
        "off the reject list, eve is a non-member again"
    );

    // A moderator approves eve's post and always accepts her from now on, in one action.
    let config = w.t.dir.path().join("server.toml");
    let held = id.to_string();
    let (ok, text) = tokio::task::spawn_blocking(move || {
        crate::support::arclist_cli(&config, &["held", "approve", &held, "--accept-sender"])
    })
    .await
    .expect("cli");
    assert!(ok && text.contains("always accepted"), "{text}");
    crate::smtp_support::until("the approved post is queued", async || {
        w.t.server
            .store()
            .get(id)
            .await
            .ok()
            .flatten()
            .is_some_and(|(m, _)| m.state == SpoolState::Queued)
    })
    .await;
    let settings: serde_json::Value = serde_json::from_str(&curl(&[]).await).expect("json");
    assert_eq!(
        settings["accept_posts_from"],
        serde_json::json!(["carol@club.test", "eve@club.test"])
    );
    let message = post("<eve@club.test>", "Again", "Hi.\r\n");
    let id = w
        .send("127.0.0.22", "mx.club.test", "eve@club.test", &message)
        .await;
    assert_eq!(w.t.settled(id).await.state, SpoolState::Queued);
}

/// The values of `name` in `copy`'s header, unfolded.
fn values(copy: &str, name: &str) -> Vec<String> {
    let head = copy.split("\r\n\r\n").next().unwrap_or_default();
    let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
    unfolded
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{name}: ")))
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_to_the_list_keeps_the_posters_own_and_a_rewritten_author_reachable() {
    let w = world("reply_to = \"list\"").await;
    // A p=reject author: From is rewritten, replies go to the list, the author stays in Cc.
    let message = w.bank_signed(&post("Alice <alice@bank.test>", "Numbers", "Attached.\r\n"));
    let id = w
        .send("127.0.0.21", "mx.bank.test", "alice@bank.test", &message)
        .await;
    let copy = w.delivered(id).await;
    assert_eq!(values(&copy, "Reply-To"), vec![format!("<{LIST}>")]);
    assert_eq!(values(&copy, "Cc"), vec!["\"Alice\" <alice@bank.test>"]);
    // A poster who chose a Reply-To keeps it beside the list's.
    let own = String::from_utf8(post("Bob <bob@club.test>", "Meeting", "Thursday.\r\n"))
        .expect("utf-8")
        .replacen("\r\n\r\n", "\r\nReply-To: <bob.home@club.test>\r\n\r\n", 1);
    let id = w
        .send(
            "127.0.0.22",
            "mx.club.test",
            "bob@club.test",
            own.as_bytes(),
        )
        .await;
    let copy = w.delivered(id).await;
    assert_eq!(
        values(&copy, "Reply-To"),
        vec![format!("<{LIST}>, <bob.home@club.test>")]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_to_that_is_neither_a_policy_nor_an_address_is_refused_at_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    crate::smtp_support::write_config_with_list(
        dir.path(),
        "127.0.0.1:53",
        "127.0.0.1:0",
        "",
        "reply_to = \"everyone\"\n",
    );
    let err = arclist::base::config::Config::load(Some(&dir.path().join("server.toml")))
        .expect_err("refused");
    assert!(err.to_string().contains("reply_to"), "{err}");
}
