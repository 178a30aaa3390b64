//! Everyday mail a list must get right: auto-replies are not posts and not bounces, the same
//! post twice goes out once, and a member's server refusing their copy counts like a bounce.

use crate::list_pipeline::{post, world};
use crate::smtp_support::{LIST, until};
use arclist::state::store::SpoolState;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_replies_are_neither_posts_nor_bounces() {
    let w = world("").await;
    let store = w.t.server.store();
    // An out-of-office reply to the list address goes to nobody.
    let mut reply = post("Bob <bob@club.test>", "Out of office: Hi", "I am away.\r\n");
    reply.splice(0..0, b"Auto-Submitted: auto-replied\r\n".iter().copied());
    let id = w
        .send("127.0.0.22", "mx.club.test", "bob@club.test", &reply)
        .await;
    let meta = w.t.settled(id).await;
    assert_eq!(meta.state, SpoolState::Discarded, "{:?}", meta.note);
    assert!(meta.note.unwrap_or_default().contains("Auto-Submitted"));
    // A post goes out with a VERP sender per member...
    let id = w
        .send(
            "127.0.0.22",
            "mx.club.test",
            "bob@club.test",
            &post("Bob <bob@club.test>", "Hi", "All.\r\n"),
        )
        .await;
    w.delivered(id).await;
    let verp = {
        let mut sender = None;
        until("the reader's copy arrives", async || {
            sender = w.sink.received.lock().ok().and_then(|r| {
                r.iter()
                    .find(|(_, rcpt, _)| rcpt == "reader@elsewhere.test")
                    .map(|(f, _, _)| f.clone())
            });
            sender.is_some()
        })
        .await;
        sender.expect("verp")
    };
    // ...and five out-of-office replies to it leave the member's mail flowing.
    for n in 0..5 {
        let vacation = format!(
            "From: Reader <reader@elsewhere.test>\r\nTo: {verp}\r\nSubject: Automatic reply: Hi\r\n\
             Auto-Submitted: auto-replied\r\nMessage-ID: <away{n}@elsewhere.test>\r\n\r\nBack on Monday.\r\n"
        );
        let id = w
            .send_to("127.0.0.1", "mx.sink.test", "", &verp, vacation.as_bytes())
            .await;
        let note = w.t.settled(id).await.note.unwrap_or_default();
        assert!(note.contains("automatic reply"), "{note}");
    }
    let reader = store
        .member(LIST, "reader@elsewhere.test")
        .await
        .expect("store")
        .expect("member");
    assert_eq!((reader.bounce_score, reader.disabled), (0.0, false));
    // A person's post about being out of office is a post.
    let note = post(
        "Bob <bob@club.test>",
        "Out of office next week: who covers?",
        "Me?\r\n",
    );
    let id = w
        .send("127.0.0.22", "mx.club.test", "bob@club.test", &note)
        .await;
    w.delivered(id).await;
    // Mail a program sent on purpose (a cron job, another list) waits for a moderator.
    let mut generated = post("Bob <bob@club.test>", "Nightly build", "Green.\r\n");
    generated.splice(0..0, b"Auto-Submitted: auto-generated\r\n".iter().copied());
    let id = w
        .send("127.0.0.22", "mx.club.test", "bob@club.test", &generated)
        .await;
    let meta = w.t.settled(id).await;
    assert_eq!(meta.state, SpoolState::Held, "{:?}", meta.note);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_post_twice_goes_out_once() {
    let w = world("").await;
    let message = post(
        "Bob <bob@club.test>",
        "Twice",
        "Sent twice by a client that never saw the 250.\r\n",
    );
    let first = w
        .send("127.0.0.22", "mx.club.test", "bob@club.test", &message)
        .await;
    w.delivered(first).await;
    let second = w
        .send("127.0.0.22", "mx.club.test", "bob@club.test", &message)
        .await;
    let meta = w.t.settled(second).await;
    assert_eq!(meta.state, SpoolState::Discarded, "{:?}", meta.note);
    assert!(
        meta.note
            .unwrap_or_default()
            .contains(&format!("duplicate of post {first}"))
    );
    until("the first copy arrives", async || {
        !w.sink.inbox("reader@elsewhere.test").is_empty()
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(w.sink.inbox("reader@elsewhere.test").len(), 1, "one copy");
    // A different post (another Message-ID) is not a duplicate.
    let other = post("Bob <bob@club.test>", "Another", "Different words.\r\n");
    let id = w
        .send("127.0.0.22", "mx.club.test", "bob@club.test", &other)
        .await;
    w.delivered(id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_during_delivery_counts_like_a_bounce_unless_it_is_policy() {
    let w = world("").await;
    let store = w.t.server.store();
    w.sink
        .refuse("reader@elsewhere.test", "550 5.1.1 no such user");
    w.sink.refuse(
        "alice@bank.test",
        // About the sender, not the address, and no DMARC or spam word in it: x.7.x.
        "550 5.7.606 Access denied, banned sending IP",
    );
    let id = w
        .send(
            "127.0.0.22",
            "mx.club.test",
            "bob@club.test",
            &post("Bob <bob@club.test>", "Hi", "All.\r\n"),
        )
        .await;
    w.t.settled(id).await;
    let member = async |a: &str| store.member(LIST, a).await.ok().flatten().expect("member");
    until("the refusals are counted", async || {
        member("reader@elsewhere.test").await.bounce_score >= 1.0
            && member("alice@bank.test").await.policy_rejections >= 1
    })
    .await;
    let alice = store
        .member(LIST, "alice@bank.test")
        .await
        .expect("store")
        .expect("member");
    assert_eq!(
        (alice.bounce_score, alice.policy_rejections),
        (0.0, 1),
        "policy: counted, not scored"
    );
}

/// A post from Bob (club.test, p=none) with `head` (Content-Type and friends) and `body`.
fn mime_post(subject: &str, head: &str, body: &str) -> Vec<u8> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!(
        "From: Bob <bob@club.test>\r\nTo: {LIST}\r\nSubject: {subject}\r\nDate: Sun, 29 Nov 2026 10:00:00 +0000\r\n\
         Message-ID: <mime-{n}@club.test>\r\nMIME-Version: 1.0\r\n{head}\r\n{body}"
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_footer_reaches_readers_of_everyday_mime_and_signatures_verify() {
    let footer = "Members list \u{2014} leave: members-leave@lists.arclist.test";
    let w = world(&format!("footer = \"{footer}\"")).await;
    let pdf = "JVBERi0xLjQKJcfsj6IKNSAwIG9iago8PC9MZW5ndGggNiAwIFI+PgpzdHJlYW0K";
    let posts = [
        (
            "qp",
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n",
            "Gr=C3=BC=C3=9Fe aus K=C3=B6ln, a long line that wraps softly here =\r\nand continues.\r\n".to_string(),
        ),
        (
            "alternative",
            "Content-Type: multipart/alternative; boundary=\"alt\"\r\n",
            "--alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nPlain words.\r\n--alt\r\n\
             Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
             <html><body><p>Rich words.</p></body></html>\r\n--alt--\r\n".to_string(),
        ),
        (
            "mixed",
            "Content-Type: multipart/mixed; boundary=\"mix\"\r\n",
            format!(
                "--mix\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n\
                 SGVsbG8gd29ybGQK\r\n--mix\r\nContent-Type: application/pdf; name=\"a.pdf\"\r\n\
                 Content-Disposition: attachment; filename=\"a.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{pdf}\r\n--mix--\r\n"
            ),
        ),
    ];
    for (subject, head, body) in posts {
        let id = w
            .send(
                "127.0.0.22",
                "mx.club.test",
                "bob@club.test",
                &mime_post(subject, head, &body),
            )
            .await;
        // Checked by arclist and by dkimpy: the list's DKIM signature and ARC set verify.
        let copy = w.delivered(id).await;
        let parsed = mail_parser::MessageParser::default()
            .parse(copy.as_bytes())
            .expect("parses");
        let shown: String = (0..parsed.text_body.len())
            .filter_map(|i| parsed.body_text(i))
            .chain((0..parsed.html_body.len()).filter_map(|i| parsed.body_html(i)))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            shown.contains("Members list \u{2014} leave"),
            "{subject}: {shown}"
        );
        if subject == "alternative" {
            let html = parsed.body_html(0).expect("html");
            assert!(html.contains("<hr>Members list &#8212; leave"), "{html}");
            let text = parsed.body_text(0).expect("text");
            assert!(
                text.contains("Plain words.") && text.contains("Members list"),
                "{text}"
            );
        }
        if subject == "mixed" {
            // Inside the first part, where every client shows it, not a part of its own.
            let text = parsed.body_text(0).expect("text");
            assert!(
                text.contains("Hello world") && text.contains("Members list"),
                "{text}"
            );
            assert_eq!(copy.matches("\r\n--mix\r\n").count(), 2, "two parts still");
            assert!(
                copy.contains(&format!(
                    "Content-Transfer-Encoding: base64\r\n\r\n{pdf}\r\n--mix"
                )),
                "the attachment is byte-identical"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_bit_posts_go_as_8bitmime_where_offered_and_as_signed_7bit_elsewhere() {
    // Connections are not reused: the sink changes what it offers between the two posts.
    let w = crate::list_pipeline::world_with("connection_reuse_secs = 0\n", "").await;
    let eight = |subject: &str| {
        mime_post(
            subject,
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n",
            "Gr\u{fc}\u{df}e aus K\u{f6}ln.\r\n",
        )
    };
    // A receiver that offers 8BITMIME gets the 8-bit copy, announced as such.
    let id = w
        .send(
            "127.0.0.22",
            "mx.club.test",
            "bob@club.test",
            &eight("8-bit"),
        )
        .await;
    w.delivered(id).await;
    until("the copy arrives", async || {
        !w.sink.inbox("reader@elsewhere.test").is_empty()
    })
    .await;
    let got = w.sink.inbox("reader@elsewhere.test").remove(0);
    assert!(!got.is_ascii(), "8-bit as sent");
    let params = w.sink.mail_params.lock().expect("lock").clone();
    assert!(params.iter().all(|p| p == "BODY=8BITMIME"), "{params:?}");
    // A UTF-8 header field (RFC 6532) goes with SMTPUTF8 where offered.
    w.sink.mail_params.lock().expect("lock").clear();
    let utf8 = mime_post(
        "Gr\u{fc}\u{df}e",
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n",
        "K\u{f6}ln.\r\n",
    );
    let id = w
        .send("127.0.0.22", "mx.club.test", "bob@club.test", &utf8)
        .await;
    // Every member's copy settled, not only the reader's: a copy still on its way when the
    // sink stops offering 8BITMIME below would leave its MAIL parameters among the next post's.
    let to = w.t.delivered_to(&w.sink, id).await;
    assert_eq!(to.len(), 3, "every member gets the UTF-8 post: {to:?}");
    assert_eq!(w.sink.inbox("reader@elsewhere.test").len(), 2);
    let params = w.sink.mail_params.lock().expect("lock").clone();
    assert!(
        params.iter().all(|p| p == "BODY=8BITMIME SMTPUTF8"),
        "{params:?}"
    );
    // A 7-bit-only receiver gets valid 7-bit MIME whose own signatures verify.
    w.sink
        .seven_bit_only
        .store(true, std::sync::atomic::Ordering::Relaxed);
    w.sink.mail_params.lock().expect("lock").clear();
    let id = w
        .send(
            "127.0.0.22",
            "mx.club.test",
            "bob@club.test",
            &eight("7-bit"),
        )
        .await;
    let to = w.t.delivered_to(&w.sink, id).await;
    assert_eq!(to.len(), 3, "every member gets the 7-bit copy: {to:?}");
    assert_eq!(w.sink.inbox("reader@elsewhere.test").len(), 3);
    let got = w.sink.inbox("reader@elsewhere.test").remove(2);
    assert!(got.is_ascii(), "{}", String::from_utf8_lossy(&got));
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.contains("Content-Transfer-Encoding: quoted-printable")
            && text.contains("Gr=C3=BC=C3=9Fe"),
        "{text}"
    );
    assert!(
        w.sink
            .mail_params
            .lock()
            .expect("lock")
            .iter()
            .all(|p| p.is_empty())
    );
    let arc: serde_json::Value =
        serde_json::from_slice(&crate::support::dkimpy(&w.t.dns, &["arc-verify"], &got).await)
            .expect("json");
    assert_eq!(
        arc["cv"], "pass",
        "dkimpy ARC on the 7-bit copy: {}",
        arc["detail"]
    );
    let dkim: serde_json::Value =
        serde_json::from_slice(&crate::support::dkimpy(&w.t.dns, &["dkim-verify"], &got).await)
            .expect("json");
    assert_eq!(dkim["pass"], true, "dkimpy DKIM on the 7-bit copy");
}
