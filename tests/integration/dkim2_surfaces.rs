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

/// A corpus key (tests/data/dkim2/keys), with the corpus zone publishing its public half.
fn corpus_key(domain: &str) -> std::sync::Arc<arclist::auth::signing_key::SigningKey> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!(
        "tests/data/dkim2/keys/ed25519._domainkey.{domain}.pem"
    ));
    std::sync::Arc::new(
        arclist::auth::signing_key::SigningKey::from_pem_file(&path).expect("corpus key"),
    )
}

/// Two hops signed now: the author's (test1.dkim2.com) verifies; the list's claims
/// test2.dkim2.com but is signed with test1's key, so its signature cannot verify.
fn broken_second_hop() -> Vec<u8> {
    let message = b"From: Sender <sender@test1.dkim2.com>\r\nTo: list@test2.dkim2.com\r\n\
        Subject: Numbers\r\nDate: Sun, 22 Nov 2026 10:00:00 +0000\r\nMessage-ID: <d2-view@test>\r\n\
        \r\nAttached.\r\n";
    let author = Dkim2Signer::new("test1.dkim2.com", "ed25519", corpus_key("test1.dkim2.com"));
    let hop1 = Dkim2Envelope {
        mail_from: "<sender@test1.dkim2.com>".into(),
        rcpt_to: vec!["<list@test2.dkim2.com>".into()],
    };
    let once = author
        .sign(message, &hop1, NewInstance::Unchanged, None, unix_now())
        .expect("hop 1")
        .prepend_to(message);
    let list = Dkim2Signer::new("test2.dkim2.com", "ed25519", corpus_key("test1.dkim2.com"))
        .with_out_of_band_arrangement();
    let hop2 = Dkim2Envelope {
        mail_from: "<list-bounces@test2.dkim2.com>".into(),
        rcpt_to: vec!["<member@example.com>".into()],
    };
    list.sign(&once, &hop2, NewInstance::Unchanged, None, unix_now())
        .expect("hop 2")
        .prepend_to(&once)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chain_viewer_marks_a_broken_dkim2_hop_with_its_reason_in_a_real_browser() {
    use crate::chain_viewer::{TOKEN, chromium, submitting_page};
    let admin =
        "[admin]\nlisten = \"127.0.0.1:0\"\ntoken_file = \"admin.token\"\nchain_viewer = true\n";
    let t = crate::smtp_support::TestServer::start_prepared(admin, "", |dir| {
        std::fs::write(dir.join("admin.token"), format!("{TOKEN}\n")).expect("token")
    })
    .await;
    let zone = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/dkim2/zone.txt");
    t.dns
        .server
        .with_zone(|z| z.load_file(&zone))
        .expect("zone")
        .expect("zone.txt parses");
    let addr = t.server.admin_addr().expect("admin listener");
    let profile = tempfile::tempdir().expect("profile");
    let raw = String::from_utf8(broken_second_hop()).expect("utf-8");
    let page = submitting_page(profile.path(), &format!("http://{addr}/arc"), &raw);
    let result = chromium(
        profile.path(),
        &["--dump-dom".into(), format!("file://{}", page.display())],
    )
    .await;
    let reason = "DKIM2-Signature i=2 selector ed25519 incorrect signature";
    assert!(
        result.contains(&format!(
            "<span class=\"fail\" id=\"dkim2-verdict\">dkim2=fail</span> <span id=\"dkim2-reason\">{reason}</span>"
        )),
        "{result}"
    );
    assert_eq!(
        result.matches("<tr class=\"dkim2-hop\">").count(),
        2,
        "{result}"
    );
    for row in [
        format!(
            "<th scope=\"row\">2</th>\n<td>test2.dkim2.com / ed25519:ed25519-sha256</td>\n<td>1</td>\n\
                 <td><code>mf=&lt;list-bounces@test2.dkim2.com&gt; rt=&lt;member@example.com&gt;</code></td>\n\
                 <td>none</td>\n<td class=\"fail\">fail: {reason}</td>"
        ),
        "<th scope=\"row\">1</th>\n<td>test1.dkim2.com / ed25519:ed25519-sha256</td>\n<td>1</td>\n\
         <td><code>mf=&lt;sender@test1.dkim2.com&gt; rt=&lt;list@test2.dkim2.com&gt;</code></td>\n\
         <td>none</td>\n<td class=\"pass\">pass</td>"
            .to_string(),
    ] {
        assert!(result.contains(&row), "{row} missing:\n{result}");
    }
}

/// Alice's unsigned-by-DKIM post, DKIM2-signed by bank.test for `intermediary`, which signs
/// its own hop and hands it to the list: DMARC fails (no DKIM, SPF is the intermediary's).
async fn via_dkim2_intermediary(w: &crate::list_pipeline::World, name: &str, ip: &str) -> u64 {
    // A selector of bank.test's own per test: two keys under one name would be two records.
    let (bank, _) = rsa_key(w.keys_dir(), &format!("bank-for-{name}"));
    let bank_selector = format!("d2-{name}");
    w.t.dns.publish_key(&bank_selector, "bank.test", &bank);
    let domain = format!("{name}.test");
    let (key, _) = rsa_key(w.keys_dir(), &format!("{name}-dkim2"));
    w.t.dns.publish_key("d2", &domain, &key);
    let forwarder = format!("fwd@{domain}");
    let authored = dkim2_signed(
        &Dkim2Signer::new("bank.test", &bank_selector, bank),
        &post("Alice <alice@bank.test>", "Numbers", "Attached.\r\n"),
        "alice@bank.test",
        &forwarder,
    );
    let handed_on = dkim2_signed(
        &Dkim2Signer::new(&domain, "d2", key).with_out_of_band_arrangement(),
        &authored,
        &forwarder,
        LIST,
    );
    w.send(ip, &format!("mx.{domain}"), &forwarder, &handed_on)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dkim2_chain_handed_over_by_a_trusted_hop_stands_in_for_dmarc() {
    let w = world("trusted_sealers = [\"relay.test\"]").await;
    let id = via_dkim2_intermediary(&w, "relay", "127.0.0.23").await;
    let copy = w.delivered(id).await;
    let aar = field(&copy, "ARC-Authentication-Results");
    assert!(aar.contains("dmarc=fail"), "the failure is recorded: {aar}");
    assert!(
        aar.contains("policy.dkim2-override=\"bank.test:d2-relay,relay.test:d2\""),
        "and the override, naming the signers: {aar}"
    );
    assert!(aar.contains("dkim2=pass"), "{aar}");

    // The same chain handed over by a hop the list does not trust: DMARC's p=reject stands.
    let id = via_dkim2_intermediary(&w, "shady", "127.0.0.24").await;
    let meta = w.t.settled(id).await;
    assert_eq!(meta.state, arclist::state::store::SpoolState::Rejected);
    assert!(
        meta.note.as_deref().is_some_and(|n| n.contains(
            "no DKIM2 override: the hop that handed it to us, i=2 shady.test, is not trusted"
        )),
        "{:?}",
        meta.note
    );
}

/// `arclist conformance tests/data/dkim2`: a line per corpus message, and where -09's verdict
/// differs from the corpus's (-06), the reason and the draft change.
#[test]
fn conformance_prints_the_dkim2_corpus_with_the_draft_changes() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_arclist"))
        .args(["conformance", "tests/data/dkim2"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.starts_with(
            "dkim2 corpus (draft-ietf-dkim-dkim2-spec-06) under draft-ietf-dkim-dkim2-spec-09: \
             19 messages  16 agree  3 differ by a draft change  0 failed\n"
        ),
        "{text}"
    );
    let rows: Vec<&str> = text.lines().skip(2).collect();
    assert_eq!(rows.len(), 19, "{text}");
    let differ: Vec<&str> = rows
        .iter()
        .copied()
        .filter(|l| l.contains("  fail  "))
        .collect();
    assert_eq!(differ.len(), 3, "{text}");
    for line in differ {
        assert!(line.trim_start().starts_with("milter-"), "{line}");
        assert!(
            line.contains("DKIM2-Signature i=1 matching From is not authentic; -09 §11"),
            "{line}"
        );
    }
}
