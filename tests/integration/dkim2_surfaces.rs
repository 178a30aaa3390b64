//! DKIM2 where people see it: the result arclist records at intake (Authentication-Results,
//! and the AAR of the list's ARC set in every member's copy), checked against the SMTP
//! envelope the post arrived with.

use crate::list_pipeline::{post, world};
use crate::smtp_support::LIST;
use crate::support::rsa_key;
use arclist::auth::dkim2::{Dkim2Envelope, Dkim2Signer, NewInstance};
use arclist::auth::unix_now;

/// One header field of `copy`, unfolded (the AAR is written over several lines).
fn field(copy: &str, name: &str) -> String {
    let head = copy.split("\r\n\r\n").next().unwrap_or_default();
    let start = head
        .find(&format!("{name}: "))
        .unwrap_or_else(|| panic!("no {name} in {head}"));
    let rest = &head[start..];
    let end = rest
        .match_indices("\r\n")
        .map(|(at, _)| at)
        .find(|&at| !rest[at + 2..].starts_with([' ', '\t']))
        .unwrap_or(rest.len());
    rest[..end].replace("\r\n", "")
}

/// Alice's post, DKIM2-signed by bank.test for the transaction `mail_from` → `rcpt`.
fn dkim2_signed(signer: &Dkim2Signer, message: &[u8], mail_from: &str, rcpt: &str) -> Vec<u8> {
    let hop = Dkim2Envelope {
        mail_from: mail_from.into(),
        rcpt_to: vec![rcpt.into()],
    };
    signer
        .sign(message, &hop, NewInstance::Unchanged, None, unix_now())
        .expect("bank.test signs its hop")
        .prepend_to(message)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dkim2_result_is_in_the_intake_results_and_the_members_aar() {
    let w = world("").await;
    let (key, _) = rsa_key(w.keys_dir(), "bank-dkim2");
    w.t.dns.publish_key("d2", "bank.test", &key);
    let signer = Dkim2Signer::new("bank.test", "d2", key);
    let alice = "alice@bank.test";
    let send = async |message: &[u8]| {
        let id = w.send("127.0.0.21", "mx.bank.test", alice, message).await;
        let intake = w.t.settled(id).await.auth_results.unwrap_or_default();
        let copy = w.delivered(id).await;
        (intake, field(&copy, "ARC-Authentication-Results"))
    };

    let signed = dkim2_signed(
        &signer,
        &post("Alice <alice@bank.test>", "Numbers", "Attached.\r\n"),
        alice,
        LIST,
    );
    let (intake, aar) = send(&signed).await;
    for results in [&intake, &aar] {
        assert!(
            results.contains("dkim2=pass (1 hop, original verified) header.d=bank.test header.i=1"),
            "{results}"
        );
    }

    // Changed on the way: the body no longer matches bank.test's instance.
    let tampered = dkim2_signed(
        &signer,
        &post("Alice <alice@bank.test>", "Numbers", "Attached.\r\n"),
        alice,
        LIST,
    );
    let tampered = String::from_utf8(tampered)
        .expect("utf-8")
        .replace("Attached.", "Pay now.");
    let (intake, aar) = send(tampered.as_bytes()).await;
    for results in [&intake, &aar] {
        assert!(
            results.contains("dkim2=fail (Message-Instance m=1 body hash sha256 mismatch; 1 hop) header.d=bank.test header.i=1"),
            "{results}"
        );
    }

    // Signed for another recipient and replayed to the list: the envelope it arrived with
    // is not the one bank.test signed for.
    let replayed = dkim2_signed(
        &signer,
        &post("Alice <alice@bank.test>", "Replayed", "Hello.\r\n"),
        alice,
        "someone@elsewhere.test",
    );
    let (_, aar) = send(&replayed).await;
    assert!(
        aar.contains(
            "dkim2=fail (DKIM2-Signature i=1 RCPT TO <members@lists.arclist.test> did not match"
        ),
        "{aar}"
    );

    // Without DKIM2 fields, no dkim2 statement at all.
    let (intake, aar) = send(&post("Alice <alice@bank.test>", "Plain", "Hi.\r\n")).await;
    assert!(!intake.contains("dkim2") && !aar.contains("dkim2"), "{aar}");
}
