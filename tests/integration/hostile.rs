//! Hostile input over real sockets: what an attacker sends must not launder a spoof through
//! the list or turn the list's own machinery against its members.

use crate::list_pipeline::{dsn, post, world};
use crate::smtp_support::{Client, LIST, TestServer, until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_without_exactly_one_author_is_refused_before_250() {
    // alice@bank.test is a member; bank.test publishes p=reject and SPF for 127.0.0.21 only.
    let w = world("").await;
    let rest = format!("To: {LIST}\r\nSubject: Pay the invoice\r\n\r\nToday.\r\n");
    let shapes = [
        ("no From field", rest.clone()),
        (
            "a member and another mailbox",
            format!("From: alice@bank.test, boss@evil.test\r\n{rest}"),
        ),
        (
            "two From fields, the member second",
            format!("From: boss@evil.test\r\nFrom: Alice <alice@bank.test>\r\n{rest}"),
        ),
        ("an empty group", format!("From: undisclosed:;\r\n{rest}")),
    ];
    for (shape, message) in shapes {
        let (mut c, _) = Client::connect_from(w.t.smtp(), "127.0.0.66").await;
        assert_eq!(c.cmd("EHLO spoofer.invalid").await.0, 250);
        let (code, text) = c.post("alice@bank.test", LIST, message.as_bytes()).await;
        assert_eq!(code, 550, "{shape}: {text}");
        assert!(text.starts_with("5.6.0"), "{shape}: {text}");
    }
    assert!(w.t.spool().await.is_empty(), "nothing of them was spooled");
    // One author, a member's address, from the wrong server: judged by DMARC as usual.
    let id = w.spoof_of_alice().await;
    assert_eq!(
        w.t.settled(id).await.state,
        arclist::state::store::SpoolState::Rejected
    );
    assert!(w.sink.inbox("reader@elsewhere.test").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_bounces_without_a_verp_token_never_disable_a_member() {
    let w = world("").await;
    let store = w.t.server.store();
    let bounces = "members-bounces@lists.arclist.test";
    for _ in 0..5 {
        let report = dsn(
            bounces,
            "reader@elsewhere.test",
            "5.1.1",
            "550 5.1.1 user unknown",
        );
        let id = w
            .send_to("127.0.0.66", "spoofer.invalid", "", bounces, &report)
            .await;
        let note = w.t.settled(id).await.note.unwrap_or_default();
        assert!(note.contains("not counted"), "{note}");
    }
    let reader = store
        .members(LIST)
        .await
        .expect("members")
        .into_iter()
        .find(|m| m.address == "reader@elsewhere.test")
        .expect("still a member");
    assert_eq!((reader.bounce_score, reader.disabled), (0.0, false));
    // Mail still reaches them.
    let id = w
        .send(
            "127.0.0.22",
            "mx.club.test",
            "bob@club.test",
            &post("Bob <bob@club.test>", "Still here?", "Yes.\r\n"),
        )
        .await;
    w.delivered(id).await;
    until("the member's copy arrives", async || {
        !w.sink.inbox("reader@elsewhere.test").is_empty()
    })
    .await;
    assert_eq!(w.sink.inbox("reader@elsewhere.test").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_robot_never_answers_itself_a_robot_or_a_flood() {
    let w = world("").await;
    let store = w.t.server.store();
    let request = "members-request@lists.arclist.test";
    let help = |from: &str, extra: &str| {
        format!("From: {from}\r\nTo: {request}\r\nSubject: help\r\n{extra}\r\nhelp\r\n")
            .into_bytes()
    };
    // From the robot itself, from an auto-responder, from another list: no answer, no loop.
    let cases = [
        (request, help(request, "")),
        (
            "away@club.test",
            help("away@club.test", "Auto-Submitted: auto-replied\r\n"),
        ),
        (
            "digest@club.test",
            help("digest@club.test", "List-Id: <digest.club.test>\r\n"),
        ),
    ];
    for (from, message) in cases {
        let id = w
            .send_to("127.0.0.22", "mx.club.test", from, request, &message)
            .await;
        let meta = w.t.settled(id).await;
        let note = meta.note.unwrap_or_default();
        assert!(
            note.contains("not carried out or answered"),
            "{from}: {note}"
        );
    }
    // Forged join requests in a victim's name: confirmations are bounded per hour.
    for _ in 0..8 {
        let message = "From: victim@elsewhere.test\r\nTo: members-join@lists.arclist.test\r\nSubject: join\r\n\r\n";
        let id = w
            .send_to(
                "127.0.0.22",
                "mx.club.test",
                "victim@elsewhere.test",
                "members-join@lists.arclist.test",
                message.as_bytes(),
            )
            .await;
        w.t.settled(id).await;
    }
    until("the confirmations are delivered", async || {
        let queued: usize = store
            .active()
            .await
            .expect("active")
            .iter()
            .map(|h| h.pending + h.deferred)
            .sum();
        w.sink.inbox("victim@elsewhere.test").len() >= 5 && queued == 0
    })
    .await;
    let confirmations = w.sink.inbox("victim@elsewhere.test").len();
    assert_eq!(
        confirmations, 5,
        "at most max_replies_per_hour (5) confirmations"
    );
    // Whoever anything was queued for was answered (a reply to the list's own address would
    // not reach the sink: its domain has no MX here).
    let mut answered: Vec<String> = Vec::new();
    for entry in store.queue().await.expect("queue") {
        let full = store.queue_entry(entry.id).await.expect("entry");
        answered.extend(full.map(|e| e.recipients).unwrap_or_default());
    }
    assert!(
        answered.iter().any(|r| r == "victim@elsewhere.test"),
        "the confirmations are among what was queued: {answered:?}"
    );
    for robot in [request, "away@club.test", "digest@club.test"] {
        assert!(!answered.iter().any(|r| r == robot), "{robot} was answered");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plus_tags_and_case_do_not_multiply_the_robots_replies_to_one_mailbox() {
    let w = world("").await;
    let store = w.t.server.store();
    // Forged join requests for victim+1@ .. victim+8@, in mixed case: one mailbox, so at most
    // max_replies_per_hour (5) confirmations reach it in all.
    let spellings: Vec<String> = (1..=8)
        .map(|n| match n % 2 {
            0 => format!("victim+{n}@elsewhere.test"),
            _ => format!("Victim+{n}@ElseWhere.test"),
        })
        .collect();
    for from in &spellings {
        let message =
            format!("From: {from}\r\nTo: members-join@lists.arclist.test\r\nSubject: join\r\n\r\n");
        let id = w
            .send_to(
                "127.0.0.22",
                "mx.club.test",
                from,
                "members-join@lists.arclist.test",
                message.as_bytes(),
            )
            .await;
        w.t.settled(id).await;
    }
    // However the robot spells the address it answers, each copy is counted once.
    let addresses: std::collections::BTreeSet<String> = spellings
        .iter()
        .flat_map(|a| [a.clone(), a.to_ascii_lowercase()])
        .collect();
    let received = || -> usize { addresses.iter().map(|a| w.sink.inbox(a).len()).sum() };
    until("the confirmations are delivered", async || {
        let queued: usize = store
            .active()
            .await
            .expect("active")
            .iter()
            .map(|h| h.pending + h.deferred)
            .sum();
        received() >= 5 && queued == 0
    })
    .await;
    assert_eq!(received(), 5, "at most 5 confirmations to one mailbox");
    // Another mailbox still gets its answer.
    let message = "From: other@elsewhere.test\r\nTo: members-join@lists.arclist.test\r\nSubject: join\r\n\r\n";
    let id = w
        .send_to(
            "127.0.0.22",
            "mx.club.test",
            "other@elsewhere.test",
            "members-join@lists.arclist.test",
            message.as_bytes(),
        )
        .await;
    let note = w.t.settled(id).await.note.unwrap_or_default();
    assert!(note.contains("confirmation sent"), "{note}");
}

/// A session from `ip` (greeting as `helo`) with `MAIL FROM:<bob@club.test>` and the list as
/// its recipient accepted: ready for DATA or BDAT.
async fn bobs_transaction(
    w: &crate::list_pipeline::World,
    ip: &str,
    helo: &str,
) -> Client<tokio::net::TcpStream> {
    let (mut c, _) = Client::connect_from(w.t.smtp(), ip).await;
    assert_eq!(c.cmd(&format!("EHLO {helo}")).await.0, 250);
    assert_eq!(c.cmd("MAIL FROM:<bob@club.test>").await.0, 250);
    assert_eq!(c.cmd(&format!("RCPT TO:<{LIST}>")).await.0, 250);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_crlf_dot_crlf_ends_data_and_bare_line_ends_are_refused() {
    let w = world("").await;
    // A second message with a forged From hidden behind each end-of-data look-alike (SMTP
    // smuggling), sent from 127.0.0.21, a host bank.test's SPF authorises: were the second
    // transaction run, alice's p=reject domain would pass DMARC and the list would sign it.
    let smuggled = format!(
        "MAIL FROM:<alice@bank.test>\r\nRCPT TO:<{LIST}>\r\nDATA\r\n\
         From: Alice <alice@bank.test>\r\nSubject: Pay\r\n\r\nNow.\r\n.\r\n"
    );
    for fake_end in [
        "\r\n.\r\r\n",
        "\n.\r\n",
        "\r\n\n.\r\n",
        "\n.\n",
        "\r.\r\n",
        "\r\n.\n",
        "\r\n.\r\r\n",
        "\r\r\n.\r\r\n",
    ] {
        let mut c = bobs_transaction(&w, "127.0.0.21", "mx.bank.test").await;
        assert_eq!(c.cmd("DATA").await.0, 354);
        let carrier = format!("From: Bob <bob@club.test>\r\nSubject: Hi\r\n\r\nHello.{fake_end}");
        c.send(format!("{carrier}{smuggled}").as_bytes()).await;
        let (code, text) = c.reply().await;
        assert_eq!(
            code, 550,
            "{fake_end:?}: one reply, for one message: {text}"
        );
        assert!(text.contains("bare CR or LF"), "{fake_end:?}: {text}");
        // Nothing else was answered: the next reply is QUIT's.
        assert_eq!(c.cmd("QUIT").await.0, 221, "{fake_end:?}");
        assert!(
            w.t.spool().await.is_empty(),
            "{fake_end:?}: nothing was spooled"
        );
    }
    // BDAT counts its bytes: a chunk carrying a whole transaction is one message, refused.
    let mut c = bobs_transaction(&w, "127.0.0.21", "mx.bank.test").await;
    let chunk = format!("From: Bob <bob@club.test>\r\nSubject: Hi\r\n\r\nHello.\n.\r\n{smuggled}");
    c.send(format!("BDAT {} LAST\r\n{chunk}", chunk.len()).as_bytes())
        .await;
    let (code, text) = c.reply().await;
    assert_eq!(code, 550, "BDAT: one reply, for one message: {text}");
    assert_eq!(c.cmd("QUIT").await.0, 221, "BDAT");
    assert!(w.t.spool().await.is_empty(), "BDAT: nothing was spooled");

    // An empty message (the end right after 354) gets an answer, not a hang.
    let mut c = bobs_transaction(&w, "127.0.0.22", "mx.club.test").await;
    assert_eq!(c.cmd("DATA").await.0, 354);
    let (code, text) = c.cmd(".").await;
    assert_eq!(
        (code, text.contains("empty message")),
        (550, true),
        "{text}"
    );
    assert_eq!(c.cmd("NOOP").await.0, 250);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_one_message_may_cost_is_bounded() {
    let w = world("").await;
    // 1,001 header fields: refused at the end of DATA, before anything parses them.
    let mut many = String::from("From: Bob <bob@club.test>\r\nSubject: fields\r\n");
    for n in 0..1000 {
        many.push_str(&format!("X-Filler-{n}: x\r\n"));
    }
    many.push_str("\r\nbody\r\n");
    let (mut c, _) = Client::connect_from(w.t.smtp(), "127.0.0.22").await;
    assert_eq!(c.cmd("EHLO mx.club.test").await.0, 250);
    let (code, text) = c.post("bob@club.test", LIST, many.as_bytes()).await;
    assert_eq!(code, 552, "{text}");
    assert!(text.contains("header fields"), "{text}");
    assert!(w.t.spool().await.is_empty());
    // Twelve DKIM signatures: only the first ten are looked up and checked.
    let mut signed = String::new();
    for n in 0..12 {
        signed.push_str(&format!(
            "DKIM-Signature: v=1; a=rsa-sha256; d=sig{n}.test; s=k; h=from; bh=AAAA; b=AAAA\r\n"
        ));
    }
    signed.push_str("From: Bob <bob@club.test>\r\nSubject: sigs\r\n\r\nbody\r\n");
    let v =
        w.t.dns
            .authenticator()
            .verify(signed.as_bytes(), None, arclist::auth::unix_now())
            .await;
    assert_eq!(v.dkim.len(), arclist::auth::dkim::MAX_SIGNATURES);
    assert_eq!(v.dkim.last().map(|d| d.domain.as_str()), Some("sig9.test"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postmaster_mail_reaches_the_owners() {
    let w = world("owners = [\"owner@elsewhere.test\"]").await;
    for (n, rcpt) in ["postmaster", "postmaster@lists.arclist.test"]
        .into_iter()
        .enumerate()
    {
        let message = format!(
            "From: Admin <admin@club.test>\r\nTo: {rcpt}\r\nSubject: abuse report {n}\r\n\r\nSee below.\r\n"
        );
        let id = w
            .send_to(
                "127.0.0.22",
                "mx.club.test",
                "admin@club.test",
                rcpt,
                message.as_bytes(),
            )
            .await;
        let meta = w.t.settled(id).await;
        assert!(
            meta.note
                .as_deref()
                .is_some_and(|n| n.contains("owner@elsewhere.test")),
            "{rcpt}: {:?}",
            meta.note
        );
    }
    until("both reach the owner", async || {
        w.sink.inbox("owner@elsewhere.test").len() >= 2
    })
    .await;
    assert_eq!(w.sink.inbox("owner@elsewhere.test").len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_trickling_message_data_is_cut_off_at_the_minimum_rate() {
    let t = TestServer::start("[limits]\ndata_timeout_secs = 2\nmin_data_rate = 500\n").await;
    let (mut slow, _) = Client::connect(t.smtp()).await;
    assert_eq!(slow.cmd("EHLO slow.test").await.0, 250);
    assert_eq!(slow.cmd("MAIL FROM:<a@author.arclist.test>").await.0, 250);
    assert_eq!(slow.cmd(&format!("RCPT TO:<{LIST}>")).await.0, 250);
    assert_eq!(slow.cmd("DATA").await.0, 354);
    // A byte every 200 ms: inside every timeout, far below 500 bytes a second.
    let started = std::time::Instant::now();
    for byte in b"Subject: slow\r\n\r\n".iter().cycle().take(100) {
        assert!(slow.try_send(&[*byte]).await, "closed without a reply");
        if slow
            .heard_within(std::time::Duration::from_millis(200))
            .await
        {
            break;
        }
    }
    let (code, text) = slow.reply().await;
    assert_eq!(code, 421, "{text}");
    assert!(text.contains("too slowly"), "{text}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    // A client sending at an ordinary pace is not affected.
    let (mut fast, _) = Client::connect(t.smtp()).await;
    assert_eq!(fast.cmd("EHLO fast.test").await.0, 250);
    let message = crate::smtp_support::message("fast", 200_000);
    let (code, text) = fast.post("a@author.arclist.test", LIST, &message).await;
    assert_eq!(code, 250, "{text}");
}

/// The From address of `message`'s own header (not of anything attached).
fn top_from(message: &[u8]) -> String {
    arclist::auth::dmarc::single_author(message)
        .map(|(_, a)| a)
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_list_domain_mail_to_the_owners_is_wrapped_not_signed_as_the_list() {
    let w = world("owners = [\"owner@elsewhere.test\"]").await;
    let owner_mail = || w.sink.inbox("owner@elsewhere.test");
    // From a host the list domain's SPF does not name, no DKIM: DMARC fails for it.
    let rcpts = [
        "members-owner@lists.arclist.test",
        "postmaster@lists.arclist.test",
        "postmaster",
    ];
    for (n, rcpt) in rcpts.into_iter().enumerate() {
        let forged = format!(
            "From: List Admin <admin@lists.arclist.test>\r\nTo: {rcpt}\r\n\
             Subject: Forged notice {n}\r\nMessage-ID: <forged{n}@lists.arclist.test>\r\n\r\n\
             Your subscription ends; log in at the link below.\r\n"
        );
        let id = w
            .send_to(
                "127.0.0.66",
                "spoofer.invalid",
                "admin@lists.arclist.test",
                rcpt,
                forged.as_bytes(),
            )
            .await;
        let meta = w.t.settled(id).await;
        assert!(
            meta.note.as_deref().is_some_and(|n| n.contains("wrapped")),
            "{rcpt}: {:?}",
            meta.note
        );
        until("the owner has it", async || owner_mail().len() > n).await;
        let got = owner_mail()[n].clone();
        let text = String::from_utf8_lossy(&got).into_owned();
        // The list signs only its own words: a message from its owner address about what
        // came, with the forged original attached as it arrived.
        assert_eq!(top_from(&got), "members-owner@lists.arclist.test", "{text}");
        assert!(
            text.contains(&format!(
                "Subject: Mail for the owners: Forged notice {n}\r\n"
            )),
            "{text}"
        );
        assert!(text.contains("Content-Type: message/rfc822"), "{text}");
        assert!(text.contains(&forged), "the original is attached whole");
        // What the owner's server sees: DMARC passes for the list's own address, and no
        // list signature covers the forged From as its author.
        let receiver = arclist::auth::Envelope {
            ip: "127.0.0.1".parse().expect("ip"),
            helo: "mx.arclist.test".into(),
            mail_from: "members-bounces@lists.arclist.test".into(),
        };
        let v =
            w.t.dns
                .authenticator()
                .verify(&got, Some(&receiver), arclist::auth::unix_now())
                .await;
        assert_eq!(v.dmarc.verdict.as_str(), "pass", "{}", v.dmarc.reason);
        assert_ne!(top_from(&got), "admin@lists.arclist.test");
    }
    // A genuine message from the list domain (SPF passes for it) still arrives as it came,
    // under the list's signature.
    let genuine = "From: List Admin <admin@lists.arclist.test>\r\nTo: members-owner@lists.arclist.test\r\n\
                   Subject: Genuine\r\nMessage-ID: <genuine@lists.arclist.test>\r\n\r\nReal.\r\n";
    let id = w
        .send_to(
            "127.0.0.1",
            "mx.arclist.test",
            "admin@lists.arclist.test",
            "members-owner@lists.arclist.test",
            genuine.as_bytes(),
        )
        .await;
    assert!(
        w.t.settled(id)
            .await
            .note
            .is_some_and(|n| n.contains("as it came"))
    );
    until("the owner has the genuine one", async || {
        owner_mail().len() > 3
    })
    .await;
    let got = owner_mail()[3].clone();
    assert!(got.starts_with(b"DKIM-Signature:"), "signed by the list");
    assert!(got.ends_with(genuine.as_bytes()), "as it came");
    assert_eq!(top_from(&got), "admin@lists.arclist.test");
}
