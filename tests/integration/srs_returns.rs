//! The SRS return path over real sockets, as an outsider would use it: an SRS address minted
//! for a victim by sending to an alias with the victim as MAIL FROM, then null-sender mail to
//! it. Only delivery reports and auto-replies go back, sealed, within a budget, and every
//! recipient of a transaction is relayed or refused.

use crate::forwarding::{World, world_files};
use crate::list_pipeline::dsn;
use crate::smtp_support::{Client, until};
use arclist::auth::{Envelope, unix_now};

/// An SRS address standing for `victim`, minted as anyone can: mail to the alias
/// `small@corp.test` with the victim as envelope sender (the From names a domain without a
/// DMARC policy, so the gate lets it through). The address is the envelope sender the alias's
/// target saw.
async fn mint(w: &World, victim: &str) -> String {
    let subject = format!("mint for {victim}");
    let message = format!(
        "From: Nobody <nobody@nowhere.test>\r\nTo: small@corp.test\r\nSubject: {subject}\r\n\
         Message-ID: <mint.{victim}>\r\n\r\nhello\r\n"
    );
    let (code, text) = w
        .send("127.0.0.66", victim, "small@corp.test", message.as_bytes())
        .await;
    assert_eq!(code, 250, "{text}");
    let seen = || {
        let got = w.sink.received.lock().expect("lock");
        got.iter()
            .find(|(_, r, d)| {
                r == "ann@gmail.test" && String::from_utf8_lossy(d).contains(&subject)
            })
            .map(|(from, _, _)| from.clone())
    };
    until("the alias's target has the minting message", async || {
        seen().is_some()
    })
    .await;
    let srs = seen().expect("seen");
    assert!(
        srs.starts_with("SRS0=") && srs.ends_with("@corp.test"),
        "{srs}"
    );
    srs
}

/// A vacation notice (RFC 3834) to `to`.
fn auto_reply(to: &str) -> Vec<u8> {
    format!(
        "From: Vacation <away@mx.sink.test>\r\nTo: {to}\r\nSubject: Out of office\r\n\
         Auto-Submitted: auto-replied\r\n\r\nBack on Monday.\r\n"
    )
    .into_bytes()
}

/// The messages `address` received so far.
fn inbox(w: &World, address: &str) -> Vec<Vec<u8>> {
    w.sink.inbox(address)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_null_sender_spoof_to_a_minted_srs_address_is_refused_and_a_report_is_relayed_sealed() {
    let w = world_files("", "").await;
    let srs = mint(&w, "victim@outlook.test").await;

    // A p=reject author's name on plain mail: refused at DATA, so nothing is spooled.
    let spoof =
        b"From: CEO <ceo@bank.test>\r\nTo: victim@outlook.test\r\nSubject: Wire 40,000 today\r\n\
                  Message-ID: <spoof@bank.test>\r\n\r\nUse the new account.\r\n";
    let (code, text) = w.send("127.0.0.66", "", &srs, spoof).await;
    assert_eq!(code, 550, "{text}");
    assert!(
        text.starts_with("5.7.1") && text.contains("delivery reports and auto-replies"),
        "{text}"
    );
    // Dressed as a delivery report, the p=reject From still fails DMARC: refused as well.
    let report = dsn(&srs, "ann@gmail.test", "5.1.1", "550 5.1.1 no such user");
    let dressed = String::from_utf8(report.clone()).expect("ascii").replace(
        "From: Mail Delivery System <MAILER-DAEMON@mx.sink.test>",
        "From: CEO <ceo@bank.test>",
    );
    let (code, text) = w.send("127.0.0.66", "", &srs, dressed.as_bytes()).await;
    assert_eq!(code, 550, "{text}");
    assert!(text.contains("p=reject"), "{text}");
    let spooled = (w.t.server.store().list().await.expect("spool").into_iter())
        .filter(|m| {
            m.envelope
                .rcpt_to
                .iter()
                .any(|r| r.eq_ignore_ascii_case(&srs))
        })
        .count();
    assert_eq!(spooled, 0, "neither was spooled");

    // A genuine delivery report goes back, under our Received field and ARC set.
    let (code, text) = w.send("127.0.0.9", "", &srs, &report).await;
    assert_eq!(code, 250, "{text}");
    until("the report reaches the victim", async || {
        !inbox(&w, "victim@outlook.test").is_empty()
    })
    .await;
    let got = inbox(&w, "victim@outlook.test");
    assert_eq!(got.len(), 1, "the report and nothing else");
    let copy = &got[0];
    let text = String::from_utf8_lossy(copy);
    assert!(copy.ends_with(&report), "the report itself is unchanged");
    assert!(
        text.contains("Received: from ") && text.contains("(arclist)"),
        "{text}"
    );
    assert!(text.starts_with("ARC-Seal: i=1;"), "{text}");
    // The victim's server checks the seal: it verifies.
    let receiver = Envelope {
        ip: "127.0.0.1".parse().expect("ip"),
        helo: "mx.arclist.test".into(),
        mail_from: String::new(),
    };
    let v =
        w.t.dns
            .authenticator()
            .verify(copy, Some(&receiver), unix_now())
            .await;
    assert_eq!(v.arc.verdict.as_str(), "pass", "{}", v.arc.reason);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_return_budget_per_original_sender_trips_with_450() {
    let w = world_files("", "returns_per_hour = 2").await;
    let srs = mint(&w, "victim@outlook.test").await;
    for n in 0..2 {
        let report = dsn(
            &srs,
            "ann@gmail.test",
            "5.1.1",
            &format!("550 5.1.1 try {n}"),
        );
        let (code, text) = w.send("127.0.0.9", "", &srs, &report).await;
        assert_eq!(code, 250, "report {n}: {text}");
    }
    let (code, text) = w.send("127.0.0.9", "", &srs, &auto_reply(&srs)).await;
    assert_eq!(code, 450, "{text}");
    assert!(
        text.starts_with("4.7.1") && text.contains("this hour"),
        "{text}"
    );
    // Another sender's budget is its own: an auto-reply to it goes back.
    let other = mint(&w, "second@outlook.test").await;
    let (code, text) = w.send("127.0.0.9", "", &other, &auto_reply(&other)).await;
    assert_eq!(code, 250, "{text}");
    until("the auto-reply reaches the second sender", async || {
        !inbox(&w, "second@outlook.test").is_empty()
    })
    .await;
    until("both reports reach the victim", async || {
        inbox(&w, "victim@outlook.test").len() >= 2
    })
    .await;
    assert_eq!(inbox(&w, "victim@outlook.test").len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_srs_recipient_waits_for_its_own_transaction_and_is_relayed() {
    let w = world_files("", "").await;
    let first = mint(&w, "first@outlook.test").await;
    let second = mint(&w, "second@outlook.test").await;
    let (mut c, _) = Client::connect_from(w.t.smtp(), "127.0.0.9").await;
    assert_eq!(c.cmd("EHLO mx.sink.test").await.0, 250);
    assert_eq!(c.cmd("MAIL FROM:<>").await.0, 250);
    assert_eq!(c.cmd(&format!("RCPT TO:<{first}>")).await.0, 250);
    let (code, text) = c.cmd(&format!("RCPT TO:<{second}>")).await;
    assert_eq!(code, 452, "{text}");
    assert!(text.starts_with("4.5.3"), "{text}");
    assert_eq!(c.cmd("DATA").await.0, 354);
    c.send(&crate::smtp_support::dot_stuffed(&auto_reply(&first)))
        .await;
    assert_eq!(c.reply().await.0, 250);
    // The client sends the deferred recipient again, in a transaction of its own.
    let (code, text) = c.post("", &second, &auto_reply(&second)).await;
    assert_eq!(code, 250, "{text}");
    until("each sender has its auto-reply", async || {
        inbox(&w, "first@outlook.test").len() == 1 && inbox(&w, "second@outlook.test").len() == 1
    })
    .await;
}
