//! List options people ask for, over real SMTP: a per-list maximum message size, refused at
//! the end of DATA with the limit named.

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
