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
