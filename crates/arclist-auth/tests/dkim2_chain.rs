//! DKIM2 chains arclist signs itself (the corpus's test keys and DNS records, current
//! timestamps): an author hop and a list hop with a Recipe pass; every tampered field, a
//! Recipe that does not reproduce, a replay to another recipient, a hop out of order and an
//! expired timestamp each fail with their own reason. Then the same chains across Stalwart's
//! mail-auth 0.15.1 (draft -08), both ways, when tests/interop/install.sh built the peer.

use arclist_auth::dkim2::{
    Dkim2Envelope, Dkim2Error, Dkim2Report, Dkim2Signer, Dkim2Verdict, NewInstance, Recipe,
    SignRefusal, TimeCheck, verify_dkim2,
};
use arclist_auth::dns::{LoopbackDnsServer, Resolver, Zone};
use arclist_auth::signing_key::SigningKey;
use std::path::PathBuf;
use std::sync::Arc;

fn data(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/dkim2")
        .join(path)
}

fn zone() -> Zone {
    let mut zone = Zone::new();
    zone.load_file(&data("zone.txt"))
        .expect("the corpus zone loads");
    zone
}

fn signer(n: u8) -> Dkim2Signer {
    let domain = format!("test{n}.dkim2.com");
    let key = SigningKey::from_pem_file(&data(&format!("keys/ed25519._domainkey.{domain}.pem")))
        .expect("corpus key");
    Dkim2Signer::new(&domain, "ed25519", Arc::new(key))
}

fn env(mail_from: &str, rcpt: &str) -> Dkim2Envelope {
    Dkim2Envelope {
        mail_from: mail_from.into(),
        rcpt_to: vec![rcpt.into()],
    }
}

fn now() -> u64 {
    arclist_auth::unix_now()
}

const ORIGINAL: &[u8] = b"From: Author <author@test1.dkim2.com>\r\nTo: list@test2.dkim2.com\r\nSubject: Hello\r\nDate: Sun, 06 Dec 2026 08:00:00 +0000\r\nMessage-ID: <hop@test1.dkim2.com>\r\n\r\nline one\r\nline two\r\n";

fn author_hop() -> Vec<u8> {
    let hop = env("<author@test1.dkim2.com>", "<list@test2.dkim2.com>");
    let signed = signer(1)
        .sign(ORIGINAL, &hop, NewInstance::Unchanged, None, now())
        .expect("hop 1 signs");
    signed.prepend_to(ORIGINAL)
}

/// What a list does to the post: subject tag, List-Id, a header line and footer in the body
/// (the always-wrap layout: the received body is one copy range).
fn decorate(received: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(received).replace(
        "Subject: Hello\r\n",
        "Subject: [list] Hello\r\nList-Id: <list.test2.dkim2.com>\r\n",
    );
    let (head, body) = text.split_once("\r\n\r\n").expect("a body");
    format!("{head}\r\n\r\n[list intro]\r\n{body}-- \r\nlist footer\r\n").into_bytes()
}

const LIST_RECIPE: &[u8] =
    br#"{"h":{"subject":[{"d":[" Hello"]}],"list-id":[]},"b":[{"c":[2,3]}]}"#;

async fn list_hop(recipe: &[u8]) -> Result<Vec<u8>, SignRefusal> {
    let received = author_hop();
    let resolver = Resolver::Zone(Arc::new(zone()));
    let arrived = env("<author@test1.dkim2.com>", "<list@test2.dkim2.com>");
    let report = verify_dkim2(&resolver, &received, Some(&arrived), TimeCheck::At(now())).await;
    assert_eq!(report.verdict, Dkim2Verdict::Pass, "{}", report.reason);
    let decorated = decorate(&received);
    let recipe = Recipe::from_json(recipe).expect("recipe parses");
    let hop = env("<list-bounces@test2.dkim2.com>", "<member@example.net>");
    let signed = signer(2).sign(
        &decorated,
        &hop,
        NewInstance::Changed(recipe),
        Some(&report),
        now(),
    )?;
    Ok(signed.prepend_to(&decorated))
}

fn member() -> Dkim2Envelope {
    env("<list-bounces@test2.dkim2.com>", "<member@example.net>")
}

async fn check(message: &[u8], envelope: &Dkim2Envelope, time: TimeCheck) -> Dkim2Report {
    verify_dkim2(
        &Resolver::Zone(Arc::new(zone())),
        message,
        Some(envelope),
        time,
    )
    .await
}

#[tokio::test]
async fn a_list_hop_with_a_recipe_verifies_back_to_the_author() {
    let message = list_hop(LIST_RECIPE).await.expect("list signs");
    let report = check(&message, &member(), TimeCheck::At(now())).await;
    assert_eq!(report.verdict, Dkim2Verdict::Pass, "{}", report.reason);
    assert!(report.original_verified);
    let top = &report.hops[0];
    assert_eq!(
        (top.i, top.m, top.domain.as_str()),
        (2, 2, "test2.dkim2.com")
    );
    assert!(top.recipe_applied, "{top:?}");
    assert_eq!(
        top.recipe.as_deref(),
        Some("subject 1 step(s), list-id removed, body 1 step(s)")
    );
}

/// Replaces the first `from` (in a DKIM2 field) with `to`.
fn tamper(message: &[u8], from: &str, to: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(message);
    assert!(text.contains(from), "{from} not in the message");
    text.replacen(from, to, 1).into_bytes()
}

fn tag_of<'a>(message: &'a str, field: &str, tag: &str) -> &'a str {
    let start = message.find(field).expect("field");
    let rest = &message[start..];
    // A tag starts after a space, or after the tab of a folded line.
    let at = [" ", "\t"]
        .iter()
        .filter_map(|sep| rest.find(&format!("{sep}{tag}=")))
        .min()
        .expect("tag")
        + tag.len()
        + 2;
    let end = rest[at..].find(';').expect("end of tag");
    &rest[at..at + end]
}

#[tokio::test]
async fn every_tampered_field_fails_with_its_own_reason() {
    let message = list_hop(LIST_RECIPE).await.expect("list signs");
    let text = String::from_utf8_lossy(&message).into_owned();
    let top_sig = "DKIM2-Signature: i=2";
    let s = tag_of(&text, top_sig, "s").replace("\r\n\t", "");
    let s_value = tag_of(&text, top_sig, "s");
    let mut flipped = s.clone();
    let pos = flipped.len() - 8;
    flipped.replace_range(
        pos..pos + 1,
        if &s[pos..pos + 1] == "A" { "B" } else { "A" },
    );
    let other_rt = arclist_auth::dkim2::encode_path("<someone@example.net>");
    let other_mf = arclist_auth::dkim2::encode_path("<other@test2.dkim2.com>");
    let mi2_h = tag_of(&text, "Message-Instance: m=2", "h").to_string();
    let cases: Vec<(&str, Vec<u8>, Dkim2Error)> = vec![
        (
            "body",
            tamper(&message, "line two", "line 2"),
            Dkim2Error::BodyHashMismatch {
                m: 2,
                algo: "sha256".into(),
            },
        ),
        (
            "signed header",
            tamper(&message, "Subject: [list] Hello", "Subject: [list] Hullo"),
            Dkim2Error::HeaderHashMismatch {
                m: 2,
                algo: "sha256".into(),
            },
        ),
        (
            "s= value",
            tamper(&message, s_value, &flipped),
            Dkim2Error::IncorrectSignature {
                i: 2,
                selector: "ed25519".into(),
            },
        ),
        (
            "i=",
            tamper(&message, "i=2;", "i=3;"),
            Dkim2Error::SequenceGap(2),
        ),
        (
            "m=",
            tamper(&message, "i=2; m=2;", "i=2; m=1;"),
            Dkim2Error::InstanceNotSigned(2),
        ),
        (
            "t=",
            tamper(
                &message,
                &format!("t={};", tag_of(&text, top_sig, "t")),
                &format!("t={};", now() - 5),
            ),
            Dkim2Error::IncorrectSignature {
                i: 2,
                selector: "ed25519".into(),
            },
        ),
        (
            "d=",
            tamper(&message, "d=test2.dkim2.com", "d=test3.dkim2.com"),
            Dkim2Error::MailFromDomainMismatch(2),
        ),
        (
            "mf=",
            tamper(&message, tag_of(&text, top_sig, "mf"), &other_mf),
            Dkim2Error::MailFromMismatch {
                i: 2,
                value: "<list-bounces@test2.dkim2.com>".into(),
            },
        ),
        (
            "rt=",
            tamper(&message, tag_of(&text, top_sig, "rt"), &other_rt),
            Dkim2Error::RcptToMismatch {
                i: 2,
                value: "<member@example.net>".into(),
            },
        ),
        (
            "Message-Instance h=",
            tamper(
                &message,
                &mi2_h,
                &mi2_h
                    .replacen("sha256:", "sha256:A", 1)
                    .replacen("=:", ":", 1),
            ),
            Dkim2Error::HeaderHashMismatch {
                m: 2,
                algo: "sha256".into(),
            },
        ),
        (
            "Message-Instance m=",
            tamper(&message, "Message-Instance: m=2", "Message-Instance: m=3"),
            Dkim2Error::InstanceMissing(2),
        ),
    ];
    for (what, tampered, want) in cases {
        let report = check(&tampered, &member(), TimeCheck::At(now())).await;
        assert_eq!(
            report.error.as_ref(),
            Some(&want),
            "{what}: {}",
            report.reason
        );
        assert_ne!(report.verdict, Dkim2Verdict::Pass, "{what}");
    }
}

#[tokio::test]
async fn a_recipe_that_does_not_reproduce_fails_at_the_earlier_instance() {
    // Signed with a Recipe that restores the wrong subject: instance 2 verifies, instance 1
    // does not, and the hop that wrote the Recipe is named.
    let wrong = br#"{"h":{"subject":[{"d":[" Goodbye"]}],"list-id":[]},"b":[{"c":[2,3]}]}"#;
    let message = list_hop(wrong).await.expect("list signs");
    let report = check(&message, &member(), TimeCheck::At(now())).await;
    assert_eq!(
        report.error,
        Some(Dkim2Error::HeaderHashMismatch {
            m: 1,
            algo: "sha256".into()
        })
    );
    assert_eq!(report.verdict, Dkim2Verdict::Fail);
    assert!(!report.original_verified);
    assert!(!report.hops[0].recipe_applied);
    // Body: a copy range that drops a line.
    let short = br#"{"h":{"subject":[{"d":[" Hello"]}],"list-id":[]},"b":[{"c":[2,2]}]}"#;
    let report = check(
        &list_hop(short).await.expect("signs"),
        &member(),
        TimeCheck::At(now()),
    )
    .await;
    assert_eq!(
        report.error,
        Some(Dkim2Error::BodyHashMismatch {
            m: 1,
            algo: "sha256".into()
        })
    );
    // A copy range past the end cannot apply at all: a permanent error.
    let past = br#"{"h":{"subject":[{"d":[" Hello"]}],"list-id":[]},"b":[{"c":[2,30]}]}"#;
    let report = check(
        &list_hop(past).await.expect("signs"),
        &member(),
        TimeCheck::At(now()),
    )
    .await;
    assert!(
        matches!(report.error, Some(Dkim2Error::RecipeInvalid { m: 2, .. })),
        "{}",
        report.reason
    );
    assert_eq!(report.verdict, Dkim2Verdict::Permerror);
    // -09 §13: a null body Recipe is a permanent error (-08 said fail).
    let null = br#"{"h":{"subject":[{"d":[" Hello"]}],"list-id":[]},"b":null}"#;
    let report = check(
        &list_hop(null).await.expect("signs"),
        &member(),
        TimeCheck::At(now()),
    )
    .await;
    assert_eq!(report.error, Some(Dkim2Error::NullBodyRecipe(2)));
    assert_eq!(report.verdict, Dkim2Verdict::Permerror);
}

#[tokio::test]
async fn a_replay_to_another_recipient_fails() {
    let message = list_hop(LIST_RECIPE).await.expect("list signs");
    let replay = env("<list-bounces@test2.dkim2.com>", "<victim@example.org>");
    let report = check(&message, &replay, TimeCheck::At(now())).await;
    assert_eq!(
        report.error,
        Some(Dkim2Error::RcptToMismatch {
            i: 2,
            value: "<victim@example.org>".into()
        })
    );
    assert_eq!(report.verdict, Dkim2Verdict::Fail);
    assert_eq!(report.hops[0].verdict, Dkim2Verdict::Fail);
    assert_eq!(
        report.hops[1].verdict,
        Dkim2Verdict::Pass,
        "hop 1 is not to blame"
    );
}

#[tokio::test]
async fn a_hop_out_of_order_fails() {
    let message = list_hop(LIST_RECIPE).await.expect("list signs");
    let text = String::from_utf8_lossy(&message).into_owned();
    // Hop 1's signature removed: hop 2 is no longer preceded by hop 1.
    let start = text.find("DKIM2-Signature: i=1").expect("hop 1");
    let end = start
        + text[start..]
            .find("\r\nMessage-Instance")
            .expect("next field")
        + 2;
    let without = format!("{}{}", &text[..start], &text[end..]);
    let report = check(without.as_bytes(), &member(), TimeCheck::At(now())).await;
    assert_eq!(report.error, Some(Dkim2Error::SequenceGap(1)));
    assert_eq!(report.verdict, Dkim2Verdict::Permerror);
    // The two hops' numbers swapped: the hop now numbered 2 signed an older instance than
    // the hop numbered 1.
    let swapped = text
        .replacen("DKIM2-Signature: i=2;", "DKIM2-Signature: i=X;", 1)
        .replacen("DKIM2-Signature: i=1;", "DKIM2-Signature: i=2;", 1)
        .replacen("DKIM2-Signature: i=X;", "DKIM2-Signature: i=1;", 1);
    let report = check(swapped.as_bytes(), &member(), TimeCheck::At(now())).await;
    assert_eq!(
        report.error,
        Some(Dkim2Error::InstanceOrder {
            i: 2,
            m: 1,
            previous: 1
        })
    );
    assert_eq!(report.verdict, Dkim2Verdict::Permerror);
    assert!(
        report
            .hops
            .iter()
            .all(|h| h.reason.starts_with("chain not evaluated"))
    );
    // A chain of custody broken: hop 2 claims to send from a domain hop 1 did not send to.
    let received = author_hop();
    let resolver = Resolver::Zone(Arc::new(zone()));
    let arrived = env("<author@test1.dkim2.com>", "<list@test2.dkim2.com>");
    let report = verify_dkim2(&resolver, &received, Some(&arrived), TimeCheck::At(now())).await;
    let refused = signer(3)
        .sign(
            &received,
            &env("<relay@test3.dkim2.com>", "<x@example.net>"),
            NewInstance::Unchanged,
            Some(&report),
            now(),
        )
        .expect_err("custody");
    assert_eq!(
        refused,
        SignRefusal::WouldFail(Dkim2Error::CustodyMailFrom { i: 2, previous: 1 })
    );
}

#[tokio::test]
async fn an_expired_or_future_timestamp_fails() {
    let message = list_hop(LIST_RECIPE).await.expect("list signs");
    let later = TimeCheck::At(now() + 15 * 86_400);
    let report = check(&message, &member(), later).await;
    assert_eq!(report.error, Some(Dkim2Error::Expired(1)));
    assert_eq!(report.verdict, Dkim2Verdict::Fail);
    let earlier = TimeCheck::At(now() - 2 * 86_400);
    let report = check(&message, &member(), earlier).await;
    assert_eq!(report.error, Some(Dkim2Error::FromFuture(1)));
}

#[tokio::test]
async fn the_first_hop_must_sign_its_own_from() {
    let foreign = tamper(
        ORIGINAL,
        "author@test1.dkim2.com",
        "author@elsewhere.example",
    );
    let refused = signer(1)
        .sign(
            &foreign,
            &env("<author@test1.dkim2.com>", "<l@test2.dkim2.com>"),
            NewInstance::Unchanged,
            None,
            now(),
        )
        .expect_err("-09 §11");
    assert_eq!(
        refused,
        SignRefusal::WouldFail(Dkim2Error::FromNotAuthentic(1))
    );
}

// ---- Interop with mail-auth 0.15.1 (draft -08) through tests/interop/dkim2-peer ----

/// The peer binary tests/interop/install.sh builds. A missing peer fails the test, like every
/// other interop peer's: a skipped interop test must never count as passed.
fn peer() -> PathBuf {
    let path = std::env::var_os("DKIM2_PEER")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../tests/interop/dkim2-peer/target/release/dkim2-peer")
        });
    assert!(
        path.is_file(),
        "the mail-auth 0.15.1 peer is not built at {}: run tests/interop/install.sh",
        path.display()
    );
    path
}

fn run_peer(peer: &PathBuf, args: &[&str], input: &[u8]) -> Vec<u8> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(peer)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the peer starts");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("writes");
    let out = child.wait_with_output().expect("the peer ends");
    assert!(
        out.status.success(),
        "peer {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn key_path(n: u8) -> String {
    data(&format!("keys/ed25519._domainkey.test{n}.dkim2.com.pem"))
        .display()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_auth_accepts_arclist_and_arclist_accepts_mail_auth() {
    let peer = peer();
    let dns = LoopbackDnsServer::start(zone())
        .await
        .expect("loopback DNS");
    let addr = dns.addr().to_string();
    let verify_args = |mf: &'static str, rcpt: &'static str| {
        vec![
            "verify",
            "--dns",
            addr.as_str(),
            "--mail-from",
            mf,
            "--rcpt",
            rcpt,
        ]
    };
    // arclist → mail-auth: one hop, then two hops with a list Recipe.
    let one = author_hop();
    let said = run_peer(
        &peer,
        &verify_args("<author@test1.dkim2.com>", "<list@test2.dkim2.com>"),
        &one,
    );
    assert_eq!(
        String::from_utf8_lossy(&said).trim(),
        "result=pass",
        "one hop"
    );
    let two = list_hop(LIST_RECIPE).await.expect("list signs");
    let said = run_peer(
        &peer,
        &verify_args("<list-bounces@test2.dkim2.com>", "<member@example.net>"),
        &two,
    );
    assert_eq!(
        String::from_utf8_lossy(&said).trim(),
        "result=pass",
        "two hops with a Recipe"
    );
    // mail-auth → arclist: mail-auth signs the first hop, arclist verifies, mail-auth
    // forwards it unchanged as the second hop, arclist verifies again.
    let k1 = key_path(1);
    let first = run_peer(
        &peer,
        &[
            "sign",
            "--dns",
            &addr,
            "--key",
            &k1,
            "--domain",
            "test1.dkim2.com",
            "--selector",
            "ed25519",
            "--mail-from",
            "<author@test1.dkim2.com>",
            "--rcpt",
            "<list@test2.dkim2.com>",
        ],
        ORIGINAL,
    );
    let resolver = Resolver::Zone(Arc::new(zone()));
    let arrived = env("<author@test1.dkim2.com>", "<list@test2.dkim2.com>");
    let report = verify_dkim2(&resolver, &first, Some(&arrived), TimeCheck::At(now())).await;
    assert_eq!(
        report.verdict,
        Dkim2Verdict::Pass,
        "mail-auth's hop 1: {}",
        report.reason
    );
    let k2 = key_path(2);
    let second = run_peer(
        &peer,
        &[
            "sign",
            "--dns",
            &addr,
            "--key",
            &k2,
            "--domain",
            "test2.dkim2.com",
            "--selector",
            "ed25519",
            "--mail-from",
            "<fwd@test2.dkim2.com>",
            "--rcpt",
            "<member@example.net>",
            "--arrived-from",
            "<author@test1.dkim2.com>",
            "--arrived-rcpt",
            "<list@test2.dkim2.com>",
        ],
        &first,
    );
    let report = check(
        &second,
        &env("<fwd@test2.dkim2.com>", "<member@example.net>"),
        TimeCheck::At(now()),
    )
    .await;
    assert_eq!(
        report.verdict,
        Dkim2Verdict::Pass,
        "mail-auth's two hops: {}",
        report.reason
    );
    assert_eq!(report.hops.len(), 2);
    // mail-auth as the list: it decorates mail-auth's hop 1 the way arclist does and writes
    // the Recipe itself (its `sign_revised`); arclist undoes it back to the author.
    let received_file = std::env::temp_dir().join(format!("dkim2-peer-{}.eml", std::process::id()));
    std::fs::write(&received_file, &first).expect("temp file");
    let received_path = received_file.display().to_string();
    let listed = run_peer(
        &peer,
        &[
            "sign",
            "--dns",
            &addr,
            "--key",
            &k2,
            "--domain",
            "test2.dkim2.com",
            "--selector",
            "ed25519",
            "--mail-from",
            "<list-bounces@test2.dkim2.com>",
            "--rcpt",
            "<member@example.net>",
            "--arrived-from",
            "<author@test1.dkim2.com>",
            "--arrived-rcpt",
            "<list@test2.dkim2.com>",
            "--received",
            &received_path,
        ],
        &decorate(&first),
    );
    let _ = std::fs::remove_file(&received_file);
    let report = check(&listed, &member(), TimeCheck::At(now())).await;
    assert_eq!(
        report.verdict,
        Dkim2Verdict::Pass,
        "mail-auth's list hop: {}",
        report.reason
    );
    assert!(
        report.original_verified && report.hops[0].recipe_applied,
        "{:?}",
        report.hops[0]
    );
    // Mixed: arclist's author hop, mail-auth's forwarding hop, arclist verifies.
    let mixed = run_peer(
        &peer,
        &[
            "sign",
            "--dns",
            &addr,
            "--key",
            &k2,
            "--domain",
            "test2.dkim2.com",
            "--selector",
            "ed25519",
            "--mail-from",
            "<fwd@test2.dkim2.com>",
            "--rcpt",
            "<member@example.net>",
            "--arrived-from",
            "<author@test1.dkim2.com>",
            "--arrived-rcpt",
            "<list@test2.dkim2.com>",
        ],
        &one,
    );
    let report = check(
        &mixed,
        &env("<fwd@test2.dkim2.com>", "<member@example.net>"),
        TimeCheck::At(now()),
    )
    .await;
    assert_eq!(
        report.verdict,
        Dkim2Verdict::Pass,
        "arclist then mail-auth: {}",
        report.reason
    );
    // Where -08 and -09 disagree: a null body Recipe is `fail` in -08 (mail-auth) and
    // `permerror` in -09 §13 (arclist); both refuse the chain, naming the same instance.
    let null = br#"{"h":{"subject":[{"d":[" Hello"]}],"list-id":[]},"b":null}"#;
    let nulled = list_hop(null).await.expect("list signs");
    let said = run_peer(
        &peer,
        &verify_args("<list-bounces@test2.dkim2.com>", "<member@example.net>"),
        &nulled,
    );
    let said = String::from_utf8_lossy(&said);
    assert!(
        said.starts_with("result=fail") && said.contains("m=2"),
        "{said}"
    );
    let report = check(&nulled, &member(), TimeCheck::At(now())).await;
    assert_eq!(report.verdict, Dkim2Verdict::Permerror);
    assert_eq!(report.error, Some(Dkim2Error::NullBodyRecipe(2)));
    // A replay is refused by both.
    let said = run_peer(
        &peer,
        &verify_args("<list-bounces@test2.dkim2.com>", "<victim@example.org>"),
        &two,
    );
    assert!(
        String::from_utf8_lossy(&said).starts_with("result=fail"),
        "{}",
        String::from_utf8_lossy(&said)
    );
    drop(dns);
}

#[tokio::test]
async fn keys_and_hashes_beyond_the_simple_case() {
    let key = || {
        Arc::new(
            SigningKey::from_pem_file(&data("keys/ed25519._domainkey.test1.dkim2.com.pem"))
                .expect("corpus key"),
        )
    };
    let hop = env("<author@test1.dkim2.com>", "<list@test2.dkim2.com>");
    let sign = |signer: Dkim2Signer| {
        signer
            .sign(ORIGINAL, &hop, NewInstance::Unchanged, None, now())
            .expect("signs")
            .prepend_to(ORIGINAL)
    };
    // SHA-256 and SHA-512 in one group: both must match (-09 `,`), and do.
    let both = sign(
        Dkim2Signer::new("test1.dkim2.com", "ed25519", key()).with_hashes(vec![
            arclist_auth::dkim2::HashAlgo::Sha256,
            arclist_auth::dkim2::HashAlgo::Sha512,
        ]),
    );
    assert!(String::from_utf8_lossy(&both).contains(",sha512:"));
    let report = check(&both, &hop, TimeCheck::At(now())).await;
    assert_eq!(report.verdict, Dkim2Verdict::Pass, "{}", report.reason);
    // An Ed25519 signature under a selector that publishes an RSA key: the key's fault.
    let wrong_type = sign(Dkim2Signer::new("test1.dkim2.com", "sel1", key()));
    let report = check(&wrong_type, &hop, TimeCheck::At(now())).await;
    assert!(
        matches!(&report.error, Some(Dkim2Error::KeyUnusable { i: 1, selector, .. }) if selector == "sel1"),
        "{}",
        report.reason
    );
    assert_eq!(report.verdict, Dkim2Verdict::Permerror);
    // A selector with no record.
    let missing = sign(Dkim2Signer::new("test1.dkim2.com", "gone", key()));
    let report = check(&missing, &hop, TimeCheck::At(now())).await;
    assert_eq!(
        report.error,
        Some(Dkim2Error::KeyMissing {
            i: 1,
            selector: "gone".into()
        })
    );
}

/// A list's fan-out: the instance prepared once with the always-wrap Recipe, then each
/// member's copy (one with a field of its own on top, as one-click adds) signed for that
/// member alone. Both verify back to the author; a copy checked against the other member's
/// envelope fails (a replay).
#[tokio::test]
async fn a_prepared_instance_signs_each_members_copy_for_that_member() {
    let received = author_hop();
    let arrived = env("<author@test1.dkim2.com>", "<list@test2.dkim2.com>");
    let report = check(&received, &arrived, TimeCheck::At(now())).await;
    assert_eq!(report.verdict, Dkim2Verdict::Pass, "{}", report.reason);
    let decorated = decorate(&received);
    let recipe = arclist_auth::dkim2::wrap_recipe(&received, &decorated, &["List-Unsubscribe"])
        .expect("recipe");
    let instance = signer(2)
        .prepare(&decorated, recipe, Some(&report))
        .expect("prepared");
    let ann = env("<list-bounces+a@test2.dkim2.com>", "<ann@example.net>");
    let bob = env("<list-bounces+b@test2.dkim2.com>", "<bob@example.org>");
    let own = [
        b"List-Unsubscribe: <https://test2.dkim2.com/u/bob>\r\n",
        &decorated[..],
    ]
    .concat();
    let mut copies = Vec::new();
    for (copy, hop) in [(&decorated, &ann), (&own, &bob)] {
        let signed = (signer(2).sign_prepared(instance.as_bytes(), copy, hop, now()))
            .expect("signed for the member");
        assert_eq!((signed.i, signed.m), (2, 2));
        copies.push(signed.prepend_to(copy));
    }
    for (copy, hop) in copies.iter().zip([&ann, &bob]) {
        let report = check(copy, hop, TimeCheck::At(now())).await;
        assert_eq!(report.verdict, Dkim2Verdict::Pass, "{}", report.reason);
        assert!(report.original_verified, "{report:?}");
    }
    let replay = check(&copies[0], &bob, TimeCheck::At(now())).await;
    assert_eq!(replay.verdict, Dkim2Verdict::Fail, "{}", replay.reason);
    assert!(
        matches!(replay.error, Some(Dkim2Error::MailFromMismatch { .. })),
        "{replay:?}"
    );
    // An unverified chain is not prepared.
    let mut failed = report.clone();
    failed.verdict = Dkim2Verdict::Fail;
    failed.reason = "broken".into();
    let recipe = arclist_auth::dkim2::wrap_recipe(&received, &decorated, &[]).expect("recipe");
    assert!(matches!(
        signer(2).prepare(&decorated, recipe, Some(&failed)),
        Err(SignRefusal::NotVerified(_))
    ));
}
