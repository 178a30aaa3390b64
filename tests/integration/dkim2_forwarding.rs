//! A forwarding domain that signs DKIM2 (`dkim2 = true`), over real sockets and DNS on
//! loopback: the author signs DKIM2 for the alias, intake verifies that chain, and each
//! target's copy gets the forwarder's hop for its own transaction (`mf=` the SRS sender,
//! `rt=` that target). `arclist verify` checks what each target received; one target's copy
//! replayed to another fails.

use crate::dkim2_lists::{author_signed, count, verify};
use crate::forwarding::{id_of, letter, world_files};
use arclist::state::store::SpoolState;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_target_gets_the_forwarders_dkim2_hop_for_its_own_transaction() {
    let w = world_files("dkim2 = true", "").await;
    let message = author_signed(
        &w.t.dns,
        "alice@bank.test",
        "sales@corp.test",
        &w.signed(&letter("d2fwd")),
    );
    let (code, text) = (w.send("127.0.0.21", "alice@bank.test", "sales@corp.test", &message)).await;
    assert_eq!(code, 250, "{text}");
    let meta = w.t.settled(id_of(&text)).await;
    assert_eq!(meta.state, SpoolState::Queued, "{:?}", meta.note);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut copies = Vec::new();
    for target in ["ann@gmail.test", "bob@outlook.test"] {
        let (sender, copy) = w.inbox(target, 1).await.remove(0);
        assert!(sender.starts_with("SRS0="), "{sender}");
        let text = String::from_utf8_lossy(&copy).into_owned();
        assert_eq!(count(&text, "DKIM2-Signature:"), 2, "one per hop: {text}");
        // Forwarding changes no signed field: no instance of its own.
        assert_eq!(count(&text, "Message-Instance:"), 1, "{text}");
        assert!(text.starts_with("DKIM2-Signature: i=2; m=1;"), "{text}");
        assert!(
            !text.contains("X-Arclist-DKIM2"),
            "the relay's mark is taken off"
        );
        assert_eq!(
            count(&text, "ARC-Seal: i=1"),
            1,
            "ARC goes on beside: {text}"
        );
        let said = verify(&w.t.dns, dir.path(), &copy, &sender, target);
        assert!(said.contains("dkim2=pass (2 hops"), "{target}: {said}");
        assert!(said.contains("d=corp.test"), "{said}");
        copies.push((sender, copy));
    }
    assert_ne!(copies[0].1, copies[1].1, "each target's copy is its own");
    // Ann's copy, claimed to have been sent to Bob: a replay, refused.
    let said = verify(
        &w.t.dns,
        dir.path(),
        &copies[0].1,
        &copies[1].0,
        "bob@outlook.test",
    );
    assert!(said.contains("dkim2=fail"), "{said}");
    assert!(said.contains("did not match"), "{said}");
}

/// A message that arrives without DKIM2 and whose From is not within the forwarding domain
/// cannot start a chain there (-09 §11): it is forwarded, sealed, without DKIM2, and the
/// message's note says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_hop_from_another_domain_is_forwarded_without_dkim2_and_says_why() {
    let w = world_files("dkim2 = true", "").await;
    let message = w.signed(&letter("nod2"));
    let (code, text) = (w.send("127.0.0.21", "alice@bank.test", "sales@corp.test", &message)).await;
    assert_eq!(code, 250, "{text}");
    let note = w.t.settled(id_of(&text)).await.note.unwrap_or_default();
    assert!(note.contains("not signing DKIM2"), "{note}");
    assert!(note.contains("From"), "{note}");
    let (_, copy) = w.inbox("ann@gmail.test", 1).await.remove(0);
    let text = String::from_utf8_lossy(&copy).into_owned();
    assert_eq!(count(&text, "DKIM2-Signature:"), 0, "{text}");
    assert!(!text.contains("X-Arclist-DKIM2"), "{text}");
    assert_eq!(count(&text, "ARC-Seal: i=1"), 1, "{text}");
}

/// A target that refuses makes the domain tell the original sender: the notification (From
/// the domain's own MAILER-DAEMON) starts a DKIM2 chain of its own, signed for the one
/// transaction it goes in, from the null sender to the author.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_domains_delivery_status_notification_is_a_first_dkim2_hop() {
    let w = world_files("dkim2 = true", "").await;
    w.sink.refuse(
        "bob@outlook.test",
        "550 5.1.1 <bob@outlook.test>: no such user",
    );
    let message = author_signed(
        &w.t.dns,
        "alice@bank.test",
        "sales@corp.test",
        &w.signed(&letter("refused")),
    );
    let (code, text) = (w.send("127.0.0.21", "alice@bank.test", "sales@corp.test", &message)).await;
    assert_eq!(code, 250, "{text}");
    let (sender, dsn) = w.inbox("alice@bank.test", 1).await.remove(0);
    assert_eq!(sender, "", "from the null sender");
    let text = String::from_utf8_lossy(&dsn).into_owned();
    assert!(text.starts_with("DKIM2-Signature: i=1; m=1;"), "{text}");
    assert_eq!(count(&text, "Message-Instance:"), 1, "{text}");
    assert!(!text.contains("X-Arclist-DKIM2"), "{text}");
    let dir = tempfile::tempdir().expect("tempdir");
    let said = verify(&w.t.dns, dir.path(), &dsn, "<>", "alice@bank.test");
    assert!(said.contains("dkim2=pass (1 hop"), "{said}");
    assert!(said.contains("d=corp.test"), "{said}");
    let said = verify(&w.t.dns, dir.path(), &dsn, "<>", "eve@gmail.test");
    assert!(said.contains("dkim2=fail"), "a replay: {said}");
}
