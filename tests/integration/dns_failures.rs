//! A DNS failure is a temporary error all the way up: never `fail`, never a seal.

use crate::support::{Dns, arclist_seal, post, rsa_key};
use arclist::auth::arc::{ArcSealer, ArcVerdict, SealRefusal};
use arclist::auth::dkim::DkimVerdict;
use arclist::auth::dns::{DnsError, Zone};
use arclist::auth::unix_now;

async fn sealed_chain(dns: &Dns, dir: &std::path::Path) -> (ArcSealer, Vec<u8>) {
    let (key, _) = rsa_key(dir, "hop");
    dns.publish_key("hop", "relay.arclist.test", &key);
    let sealer = ArcSealer::new(key, "relay.arclist.test", "hop");
    let msg = arclist_seal(
        &dns.authenticator(),
        &sealer,
        "relay.arclist.test",
        &post("a@author.arclist.test", "hi\r\n"),
    )
    .await
    .expect("first seal");
    (sealer, msg)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_lookup_timeout_is_temperror_and_blocks_sealing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dns = Dns::start(Zone::new()).await;
    let (sealer, message) = sealed_chain(&dns, dir.path()).await;
    dns.server.hang("hop._domainkey.relay.arclist.test");
    let auth = dns.authenticator();
    let v = auth.verify(&message, None, unix_now()).await;
    assert_eq!(v.arc.verdict, ArcVerdict::Temperror, "{}", v.arc.reason);
    assert!(v.has_temporary_error());
    assert!(
        v.arc.reason.contains("hop._domainkey.relay.arclist.test"),
        "names the DNS name: {}",
        v.arc.reason
    );
    let refused = arclist_seal(&auth, &sealer, "relay.arclist.test", &message).await;
    assert!(
        matches!(refused, Err(SealRefusal::Temporary(_))),
        "{refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servfail_is_temporary_but_nxdomain_is_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dns = Dns::start(Zone::new()).await;
    dns.server.servfail("broken.arclist.test");
    let err = dns
        .resolver
        .txt("broken.arclist.test")
        .await
        .expect_err("servfail");
    assert!(err.is_temporary(), "{err}");
    let err = dns
        .resolver
        .txt("absent.arclist.test")
        .await
        .expect_err("nxdomain");
    assert!(matches!(err, DnsError::NotFound { .. }), "{err}");

    // A DKIM key that does not exist is a permanent error, not a temporary one.
    let (_, message) = sealed_chain(&dns, dir.path()).await;
    let (key, _) = rsa_key(dir.path(), "author");
    let signer = arclist::auth::dkim::DkimSigner::new(key, "author.arclist.test", "nokey");
    let sig = signer.sign(&message, unix_now()).expect("sign");
    let signed = [sig.as_bytes(), &message].concat();
    let v = dns.authenticator().verify(&signed, None, unix_now()).await;
    assert_eq!(
        v.dkim[0].verdict,
        DkimVerdict::Permerror,
        "{}",
        v.dkim[0].reason
    );
    // A different selector, so no cached NXDOMAIN answers for it.
    dns.server.servfail("flaky._domainkey.author.arclist.test");
    let (key, _) = rsa_key(dir.path(), "author2");
    let sig = arclist::auth::dkim::DkimSigner::new(key, "author.arclist.test", "flaky")
        .sign(&message, unix_now())
        .expect("sign");
    let signed = [sig.as_bytes(), &message].concat();
    let v = dns.authenticator().verify(&signed, None, unix_now()).await;
    assert_eq!(v.dkim[0].verdict, DkimVerdict::Temperror);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_posts_signed_with_a_silent_key_cost_one_lookup_not_one_each() {
    use crate::list_pipeline::{post, world};
    use arclist::state::store::SpoolState;
    let w = world("").await;
    // Posts in the name of alice@bank.test go one at a time; a forger signs with a key of
    // their own whose nameserver never answers.
    let silent = "silent._domainkey.evil.test";
    w.t.dns.server.hang(silent);
    let (key, _) = rsa_key(w.keys_dir(), "evil");
    let signer = arclist::auth::dkim::DkimSigner::new(key, "evil.test", "silent");
    let forged = |n: usize| {
        let message = post("Alice <alice@bank.test>", &format!("Pay {n}"), "Now.\r\n");
        let sig = signer.sign(&message, unix_now()).expect("sign");
        [sig.as_bytes(), &message].concat()
    };
    let first = w
        .send(
            "127.0.0.66",
            "spoofer.invalid",
            "alice@bank.test",
            &forged(1),
        )
        .await;
    assert_eq!(w.t.settled(first).await.state, SpoolState::Rejected);
    let asked = w.t.dns.server.asked(silent);
    assert!(asked > 0, "the first forgery asked for the key");
    // Three more forgeries, then alice's genuine post from her own server, right behind them.
    let mut ids = Vec::new();
    for n in 2..=4 {
        ids.push(
            w.send(
                "127.0.0.66",
                "spoofer.invalid",
                "alice@bank.test",
                &forged(n),
            )
            .await,
        );
    }
    let genuine = w
        .send(
            "127.0.0.21",
            "mx.bank.test",
            "alice@bank.test",
            &post("Alice <alice@bank.test>", "Minutes", "Attached.\r\n"),
        )
        .await;
    for id in ids {
        let meta = w.t.settled(id).await;
        assert_eq!(meta.state, SpoolState::Rejected, "{:?}", meta.note);
    }
    w.delivered(genuine).await;
    assert_eq!(
        w.t.dns.server.asked(silent),
        asked,
        "the silent key was not asked again: the genuine post waited for no lookup"
    );
}
