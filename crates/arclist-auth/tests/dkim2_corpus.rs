//! The dkim2wg interop corpus (`tests/data/dkim2`, draft -06) through arclist's DKIM2 engine
//! (draft -09): every message parses, every Recipe decodes to what the corpus says, every
//! instance's hashes match the content recreated for it, and the verdict is the one -09 gives.
//! Where -09 differs from the corpus's "pass", the case names the draft change. The Python
//! single-hop messages are also signed again from their parameters and must come out the
//! same (Ed25519 and RSA PKCS#1 v1.5 are deterministic). DNS: the corpus's own records.

use arclist_auth::dkim2::{
    Dkim2Envelope, Dkim2Error, Dkim2Signer, Dkim2Verdict, InstanceField, NewInstance,
    SignatureField, TimeCheck, verify_dkim2,
};
use arclist_auth::dns::{Resolver, Zone};
use arclist_auth::message::{RawMessage, to_crlf};
use arclist_auth::signing_key::SigningKey;
use std::path::PathBuf;
use std::sync::Arc;

fn data(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/dkim2")
        .join(path)
}

fn resolver() -> Resolver {
    let mut zone = Zone::new();
    zone.load_file(&data("zone.txt"))
        .expect("the corpus zone loads");
    Resolver::Zone(Arc::new(zone))
}

/// The wire form: CRLF, and a final line end where the generator dropped the last LF.
fn message(file: &str) -> Vec<u8> {
    let mut m = to_crlf(&std::fs::read(data(file)).expect("corpus file"));
    if !m.ends_with(b"\r\n") {
        m.extend_from_slice(b"\r\n");
    }
    m
}

struct Case {
    name: &'static str,
    dir: &'static str,
    mail_from: &'static str,
    rcpt_to: &'static [&'static str],
    /// The decoded Recipe of each instance, m=1 first, as canonical JSON ("" for none).
    recipes: &'static [&'static str],
    /// The -09 verdict when it is not the corpus's pass, and the draft change behind it.
    differs: Option<(Dkim2Error, &'static str)>,
}

const RCPT: &[&str] = &["<recipient@example.com>"];

fn single(name: &'static str, mail_from: &'static str) -> Case {
    Case {
        name,
        dir: "python",
        mail_from,
        rcpt_to: RCPT,
        recipes: &[""],
        differs: None,
    }
}

fn cases() -> Vec<Case> {
    const FROM_RULE: &str = "-08/-09 §11: the From of instance 1 (brong@fastmailteam.com) must be within d= of the hop that introduced it (test1.dkim2.com); -06 had no From rule";
    let milter = |name: &'static str, recipes: &'static [&'static str]| Case {
        name,
        dir: "perl",
        mail_from: "<forwarder@test2.dkim2.com>",
        rcpt_to: &["<recipient@test2.dkim2.com>"],
        recipes,
        differs: Some((Dkim2Error::FromNotAuthentic(1), FROM_RULE)),
    };
    let hop =
        |name: &'static str, mail_from: &'static str, recipes: &'static [&'static str]| Case {
            name,
            dir: "python",
            mail_from,
            rcpt_to: RCPT,
            recipes,
            differs: None,
        };
    vec![
        single("dsn-ed25519", "<>"),
        single("dupheaders-ed25519", "<sender@test1.dkim2.com>"),
        single("emptybody-ed25519", "<sender@test4.dkim2.com>"),
        single("multiheader-ed25519", "<sender@test2.dkim2.com>"),
        Case {
            rcpt_to: &[
                "<alice@example.com>",
                "<bob@example.com>",
                "<charlie@example.com>",
            ],
            ..single("multirecipient-ed25519", "<sender@test5.dkim2.com>")
        },
        single("simple-ed25519", "<sender@test1.dkim2.com>"),
        single("simple-rsa1024", "<sender@test1.dkim2.com>"),
        single("simple-rsa2048", "<sender@test1.dkim2.com>"),
        single("simple-sel2", "<sender@test1.dkim2.com>"),
        single("simple-sel3", "<sender@test1.dkim2.com>"),
        single("trailingblank-ed25519", "<sender@test3.dkim2.com>"),
        hop(
            "multihop-3hop-dup-headers",
            "<mx@test3.dkim2.com>",
            &[
                "",
                r#"{"h":{"authentication-results":[{"c":[1,3]}]}}"#,
                r#"{"h":{"authentication-results":[{"c":[1,5]}]}}"#,
            ],
        ),
        hop(
            "multihop-body-footer",
            "<relay@test2.dkim2.com>",
            &["", r#"{"b":[{"c":[1,1]}]}"#],
        ),
        hop(
            "multihop-dup-headers",
            "<relay@test2.dkim2.com>",
            &["", r#"{"h":{"authentication-results":[{"c":[1,3]}]}}"#],
        ),
        hop(
            "multihop-header-add",
            "<relay@test2.dkim2.com>",
            &["", r#"{"h":{"list-unsubscribe":[]}}"#],
        ),
        hop(
            "multihop-header-replace",
            "<relay@test3.dkim2.com>",
            &["", r#"{"h":{"subject":[{"d":[" Simple test message"]}]}}"#],
        ),
        milter("milter-case1-unchanged-forward", &[""]),
        milter(
            "milter-case3-modified-with-intermediate-mi",
            &["", r#"{"h":{"list-id":[]}}"#],
        ),
        milter(
            "milter-case4-broken-mi-stripped",
            &["", r#"{"h":{"list-id":[]}}"#],
        ),
    ]
}

#[tokio::test]
async fn every_corpus_message_gets_the_draft_09_verdict() {
    let resolver = resolver();
    let all = cases();
    assert_eq!(all.len(), 19, "the corpus has 19 messages");
    for case in all {
        let raw = message(&format!("messages/{}/{}.eml", case.dir, case.name));
        let parsed = RawMessage::parse(&raw);
        // Parse and decode every field and Recipe.
        let mut recipes: Vec<(u32, String)> = parsed
            .fields("Message-Instance")
            .map(|h| {
                let mi = InstanceField::parse(&h.unfolded_value())
                    .unwrap_or_else(|e| panic!("{}: {e}", case.name));
                let json = mi
                    .recipe
                    .map(|r| String::from_utf8_lossy(&r.to_json()).into_owned());
                (mi.m, json.unwrap_or_default())
            })
            .collect();
        recipes.sort();
        let got: Vec<&str> = recipes.iter().map(|(_, r)| r.as_str()).collect();
        assert_eq!(got, case.recipes, "{}: decoded Recipes", case.name);
        for h in parsed.fields("DKIM2-Signature") {
            SignatureField::parse(&h.unfolded_value())
                .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        }
        // The corpus's signatures are older than the 14-day window (its README: check off).
        let envelope = Dkim2Envelope {
            mail_from: case.mail_from.into(),
            rcpt_to: case.rcpt_to.iter().map(|r| r.to_string()).collect(),
        };
        let report = verify_dkim2(&resolver, &raw, Some(&envelope), TimeCheck::Off).await;
        // Hashes: every instance matched the content recreated for it, whatever the verdict.
        for mi in &report.instances {
            assert!(
                mi.verdict == Dkim2Verdict::Pass || mi.reason.contains("From is not authentic"),
                "{}: m={} {}",
                case.name,
                mi.m,
                mi.reason
            );
        }
        assert_eq!(report.instances.len(), case.recipes.len(), "{}", case.name);
        match &case.differs {
            None => {
                assert_eq!(
                    report.verdict,
                    Dkim2Verdict::Pass,
                    "{}: {}",
                    case.name,
                    report.reason
                );
                assert!(report.original_verified, "{}", case.name);
                assert!(report.hops.iter().all(|h| h.verdict == Dkim2Verdict::Pass));
            }
            Some((error, rule)) => {
                assert_eq!(report.error.as_ref(), Some(error), "{}: {rule}", case.name);
                assert_eq!(report.verdict, Dkim2Verdict::Fail, "{}: {rule}", case.name);
                // The signatures themselves still verify: only the -09 rule fails them.
                let hop1 = report.hops.iter().find(|h| h.i == 1).expect("hop 1");
                assert_eq!(hop1.reason, error.to_string(), "{}", case.name);
                let others_pass = report
                    .hops
                    .iter()
                    .filter(|h| h.i > 1)
                    .all(|h| h.verdict == Dkim2Verdict::Pass);
                assert!(others_pass, "{}: {:?}", case.name, report.hops);
            }
        }
        // Hops that introduced an instance with a Recipe say it was applied.
        for hop in &report.hops {
            if hop.recipe.is_some() && case.differs.is_none() {
                assert!(hop.recipe_applied, "{}: i={}", case.name, hop.i);
            }
        }
    }
}

/// The single-hop Python messages, signed again from their parameters, come out the same.
#[test]
fn python_single_hop_messages_sign_again_byte_for_byte() {
    let signed = [
        ("dsn-ed25519", "test1", "ed25519"),
        ("dupheaders-ed25519", "test1", "ed25519"),
        ("emptybody-ed25519", "test4", "ed25519"),
        ("multiheader-ed25519", "test2", "ed25519"),
        ("multirecipient-ed25519", "test5", "ed25519"),
        ("simple-ed25519", "test1", "ed25519"),
        ("simple-rsa1024", "test1", "rsa1024"),
        ("simple-rsa2048", "test1", "sel1"),
        ("simple-sel2", "test1", "sel2"),
        ("simple-sel3", "test1", "sel3"),
        ("trailingblank-ed25519", "test3", "ed25519"),
    ];
    let by_name = cases();
    for (name, domain, selector) in signed {
        let case = by_name.iter().find(|c| c.name == name).expect("case");
        let raw = message(&format!("messages/python/{name}.eml"));
        let parsed = RawMessage::parse(&raw);
        let (sig_field, mi_field) = (&parsed.headers[0], &parsed.headers[1]);
        let unsigned = &raw[sig_field.raw.len() + mi_field.raw.len()..];
        let domain = format!("{domain}.dkim2.com");
        let key =
            SigningKey::from_pem_file(&data(&format!("keys/{selector}._domainkey.{domain}.pem")))
                .expect("corpus key");
        let hop = Dkim2Envelope {
            mail_from: case.mail_from.into(),
            rcpt_to: case.rcpt_to.iter().map(|r| r.to_string()).collect(),
        };
        let out = Dkim2Signer::new(&domain, selector, Arc::new(key))
            .sign(unsigned, &hop, NewInstance::Unchanged, None, 1_740_000_000)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let ours = SignatureField::parse(
            out.signature
                .split_once(':')
                .map(|(_, v)| v)
                .unwrap_or_default(),
        )
        .expect("ours parses");
        let theirs = SignatureField::parse(&sig_field.unfolded_value()).expect("theirs parses");
        assert_eq!(ours, theirs, "{name}: the same DKIM2-Signature");
        let mi = out.instance.expect("a first hop adds m=1");
        let ours = InstanceField::parse(mi.split_once(':').map(|(_, v)| v).unwrap_or_default())
            .expect("parses");
        let theirs = InstanceField::parse(&mi_field.unfolded_value()).expect("parses");
        assert_eq!(ours, theirs, "{name}: the same Message-Instance hashes");
    }
}
