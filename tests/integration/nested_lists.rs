//! A list subscribed to another (`[[nested_from]]`): the parent's posts go out without
//! moderation when the parent's ARC seal or DKIM signature vouches for them, one ARC set
//! longer, as dkimpy sees it; a post that only claims the parent's List-Id is held.

use crate::list_pipeline::world;
use crate::support::forwarded_by;
use arclist::state::store::SpoolState;

const NESTED: &str =
    "[[nested_from]]\nlist_id = \"national.relay.test\"\ndomain = \"relay.test\"\n";

/// The parent list's copy of a non-member's post, as relay.test's list sends it to its member
/// (our list): its List-Id and Precedence, a footer, and its ARC set made by dkimpy.
async fn parents_copy(w: &crate::list_pipeline::World, n: u32) -> Vec<u8> {
    let copy = format!(
        "From: Carol <carol@club.test>\r\nTo: national@relay.test\r\nSubject: [national] Agenda {n}\r\n\
         Date: Sun, 22 Nov 2026 10:00:00 +0000\r\nMessage-ID: <nested-{n}@club.test>\r\n\
         List-Id: National <national.relay.test>\r\nPrecedence: list\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nThe agenda for the meeting.\r\n"
    );
    forwarded_by(&w.t.dns, w.keys_dir(), "relay", copy.as_bytes()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parent_lists_post_goes_out_one_arc_set_longer_and_a_broken_one_is_held() {
    let w = world(NESTED).await;
    let sealed = parents_copy(&w, 1).await;
    let id = w
        .send(
            "127.0.0.23",
            "mx.relay.test",
            "national-bounces@relay.test",
            &sealed,
        )
        .await;
    // delivered() checks the copy went to every member and that arclist and dkimpy both
    // verify its ARC chain and the list's DKIM signature.
    let copy = w.delivered(id).await;
    assert!(
        copy.contains("ARC-Seal: i=2;"),
        "our set follows the parent's"
    );
    assert!(copy.contains("ARC-Seal: i=1;"), "the parent's set is kept");

    // The same kind of post changed after the parent sealed it: nothing vouches for it.
    let sealed = parents_copy(&w, 2).await;
    let broken = String::from_utf8(sealed)
        .expect("utf-8")
        .replace("The agenda for the meeting.", "The agenda for the meeting!");
    let id = w
        .send(
            "127.0.0.23",
            "mx.relay.test",
            "national-bounces@relay.test",
            broken.as_bytes(),
        )
        .await;
    let meta = w.t.settled(id).await;
    assert_eq!(meta.state, SpoolState::Held, "{:?}", meta.note);
    let note = meta.note.unwrap_or_default();
    assert!(
        note.contains("parent list national.relay.test") && note.contains("relay.test"),
        "the moderator reads why: {note}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_nested_from_the_parents_post_waits_for_a_moderator() {
    let w = world("").await;
    let sealed = parents_copy(&w, 3).await;
    let id = w
        .send(
            "127.0.0.23",
            "mx.relay.test",
            "national-bounces@relay.test",
            &sealed,
        )
        .await;
    let meta = w.t.settled(id).await;
    assert_eq!(meta.state, SpoolState::Held, "{:?}", meta.note);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nested_from_entry_without_a_domain_is_refused_at_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    crate::smtp_support::write_config_with_list(
        dir.path(),
        "127.0.0.1:53",
        "127.0.0.1:0",
        "",
        "[[nested_from]]\nlist_id = \"national.relay.test\"\ndomain = \"\"\n",
    );
    let err = arclist::base::config::Config::load(Some(&dir.path().join("server.toml")))
        .expect_err("refused");
    assert!(err.to_string().contains("nested_from"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parent_lists_post_with_its_dkim_signature_goes_out_without_moderation() {
    let w = world(NESTED).await;
    let copy = "From: Carol <carol@club.test>\r\nTo: national@relay.test\r\nSubject: [national] Minutes\r\n\
                Date: Sun, 22 Nov 2026 10:00:00 +0000\r\nMessage-ID: <nested-dkim@club.test>\r\n\
                List-Id: National <national.relay.test>\r\nPrecedence: list\r\nMIME-Version: 1.0\r\n\
                Content-Type: text/plain; charset=utf-8\r\n\r\nThe minutes.\r\n";
    // The parent signs its copy with DKIM as relay.test (the key the world publishes).
    let key =
        arclist::auth::signing_key::SigningKey::from_pem_file(&w.keys_dir().join("relay.pem"))
            .expect("relay.test's key");
    let sig = arclist::auth::dkim::DkimSigner::new(std::sync::Arc::new(key), "relay.test", "arc")
        .sign(copy.as_bytes(), arclist::auth::unix_now())
        .expect("sign");
    let signed = [sig.as_bytes(), copy.as_bytes()].concat();
    let id = w
        .send(
            "127.0.0.23",
            "mx.relay.test",
            "national-bounces@relay.test",
            &signed,
        )
        .await;
    // Distributed (not held), and arclist and dkimpy verify the list's ARC set and DKIM.
    let copy = w.delivered(id).await;
    assert!(copy.contains("ARC-Seal: i=1;"), "{copy}");
}
