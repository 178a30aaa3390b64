//! Malformed input never panics: property tests over random bytes for every parser that
//! reads network or file input. CI runs them with a bounded number of cases.

use arclist::auth::dkim::SignatureHeader;
use arclist::auth::dns::Zone;
use arclist::auth::key_lookup::KeyStore;
use arclist::auth::key_record::KeyRecord;
use arclist::auth::message::{RawMessage, to_crlf};
use arclist::auth::results::AuthResults;
use arclist::auth::tags::TagList;
use arclist::auth::verify_with_keys;
use proptest::prelude::*;

/// Fragments that steer random input toward the interesting paths.
fn mail_like() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"ARC-Seal: i=1; a=rsa-sha256; cv=none; d=x; s=y; b=AAAA\r\n".to_vec()),
        Just(b"ARC-Message-Signature: i=1; a=rsa-sha256; c=relaxed/relaxed; d=x; s=y; h=from; bh=AAAA; b=AAAA\r\n".to_vec()),
        Just(b"ARC-Authentication-Results: i=1; x; dkim=pass\r\n".to_vec()),
        Just(b"DKIM-Signature: v=1; a=rsa-sha256; d=x; s=y; h=from; bh=AAAA; b=AAAA; l=3\r\n".to_vec()),
        Just(b"From: a@b\r\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b" \t".to_vec()),
        Just(b";=;:".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..40),
    ];
    proptest::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn message_and_signature_parsers_never_panic(data in mail_like()) {
        let wire = to_crlf(&data);
        let parsed = RawMessage::parse(&wire);
        // Every key lookup answers "no key": the parsers and checks run, the crypto does not.
        let _ = verify_with_keys(&parsed, &KeyStore::default(), 0);
        for h in &parsed.headers {
            let v = h.unfolded_value();
            let _ = SignatureHeader::parse(&v, true);
            let _ = SignatureHeader::parse(&v, false);
            let _ = AuthResults::parse(&v);
        }
    }

    #[test]
    fn tag_lists_key_records_and_results_never_panic(s in "\\PC{0,200}", bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = TagList::parse(&s);
        let _ = KeyRecord::parse(s.as_bytes());
        let _ = KeyRecord::parse(&bytes);
        let _ = KeyRecord::parse(format!("v=DKIM1; k=rsa; p={s}").as_bytes());
        let _ = AuthResults::parse(&s);
        let _ = Zone::new().load_str(&s, "random");
    }
}

/// Lines of text (dots, spaces and `.` alone among them), each ending in CRLF.
fn crlf_lines() -> impl Strategy<Value = Vec<u8>> {
    let line = prop_oneof![
        Just(".".to_string()),
        Just("..".to_string()),
        Just(String::new()),
        "[ .a-z:]{0,20}",
    ];
    proptest::collection::vec(line, 0..12).prop_map(|lines| {
        lines
            .iter()
            .map(|l| format!("{l}\r\n"))
            .collect::<String>()
            .into_bytes()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn data_round_trips_through_stuffing_and_ends_exactly_after_the_dot(
        body in crlf_lines(),
        split in 1usize..40,
    ) {
        use arclist::stages::smtp::data::DataReader;
        let mut wire = arclist::stages::smtp::wire::dot_stuff(&body);
        wire.extend_from_slice(b"NEXT");
        let mut reader = DataReader::new();
        let mut got = Vec::new();
        let mut rest = None;
        for (n, chunk) in wire.chunks(split).enumerate() {
            let mut it = chunk.iter();
            if reader.ingest(&mut it, Some(&mut got)) {
                let mut after = it.as_slice().to_vec();
                for later in wire.chunks(split).skip(n + 1) {
                    after.extend_from_slice(later);
                }
                rest = Some(after);
                break;
            }
        }
        prop_assert_eq!(got, body);
        prop_assert_eq!(rest, Some(b"NEXT".to_vec()));
    }

    #[test]
    fn authors_bounces_srs_dmarc_and_commands_never_panic(
        data in mail_like(),
        s in "\\PC{0,120}",
    ) {
        let wire = to_crlf(&data);
        let _ = arclist::auth::dmarc::single_author(&wire);
        let _ = arclist::stages::list::bounces::classify(&wire);
        let _ = arclist::stages::smtp::data::has_bare_newline(&data);
        let srs = arclist::stages::forward::srs::Srs::new(vec![b"secret".to_vec()], "corp.test", 21);
        let _ = srs.reverse(&s, 0);
        let _ = srs.reverse(&format!("SRS0={s}@corp.test"), 0);
        let _ = arclist::auth::dmarc::DmarcRecord::parse("x.test", &s);
        let _ = arclist::stages::list::commands::request_for(&arclist::stages::directory::Role::Request, &s);
        let mut reader = arclist::stages::smtp::data::DataReader::new();
        let _ = reader.ingest(&mut data.iter(), None);
    }
}

/// Pieces of HTTP form bodies: boundaries, dispositions, escapes.
fn form_like() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"--b\r\n".to_vec()),
        Just(b"--b--\r\n".to_vec()),
        Just(b"Content-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\n".to_vec()),
        Just(b"One-Click\r\n".to_vec()),
        Just(b"List-Unsubscribe=One-Click".to_vec()),
        Just(b"%".to_vec()),
        Just(b"%4".to_vec()),
        Just(b"&=+".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..30),
    ];
    proptest::collection::vec(piece, 0..16).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn http_forms_and_one_click_tokens_never_panic(body in form_like(), ctype in "\\PC{0,80}", token in "\\PC{0,200}") {
        use arclist::surfaces::web::form;
        for content_type in [ctype.as_str(), "multipart/form-data; boundary=b", "application/x-www-form-urlencoded"] {
            let _ = form::fields(content_type, &body);
        }
        let _ = form::decode(&body, true);
        let secret = [7u8; 32];
        prop_assert!(arclist::stages::list::tokens::open_unsubscribe(&secret, &token).is_none());
    }

    #[test]
    fn urlencoded_fields_round_trip(name in "[A-Za-z-]{1,20}", value in "\\PC{0,40}") {
        let escape = |s: &str| s.bytes().map(|b| format!("%{b:02X}")).collect::<String>();
        let body = format!("{}={}&x=1", escape(&name), escape(&value));
        let fields = arclist::surfaces::web::form::urlencoded(body.as_bytes());
        prop_assert_eq!(&fields[0], &(name.clone(), value.clone()));
        prop_assert_eq!(fields.len(), 2);
    }

    #[test]
    fn one_click_tokens_round_trip(local in "[a-z0-9.+_-]{1,30}", domain in "[a-z0-9-]{1,20}\\.test") {
        let secret = [9u8; 32];
        let address = format!("{local}@{domain}");
        let token = arclist::stages::list::tokens::seal_unsubscribe(&secret, "members@lists.test", &address, 1_800_000_000).expect("seal");
        prop_assert_eq!(
            arclist::stages::list::tokens::open_unsubscribe(&secret, &token),
            Some(arclist::stages::list::tokens::OneClick {
                list: "members@lists.test".to_string(),
                address,
                issued: Some(1_800_000_000),
            })
        );
    }
}
