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
