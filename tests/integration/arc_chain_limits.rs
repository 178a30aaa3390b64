//! RFC 8617's limit of 50 sets, and chains across many hops.

use crate::support::{Dns, arclist_seal, post, rsa_key};
use arclist::auth::arc::{ArcSealer, ArcVerdict, SealRefusal};
use arclist::auth::dns::Zone;
use arclist::auth::unix_now;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_sets_pass_and_a_fifty_first_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dns = Dns::start(Zone::new()).await;
    let (key, _) = rsa_key(dir.path(), "hop");
    dns.publish_key("hop", "relay.arclist.test", &key);
    let auth = dns.authenticator();
    let sealer = ArcSealer::new(key, "relay.arclist.test", "hop");
    let mut message = post("a@author.arclist.test", "fifty hops\r\n");
    for hop in 1..=50 {
        message = arclist_seal(&auth, &sealer, "relay.arclist.test", &message)
            .await
            .unwrap_or_else(|e| panic!("hop {hop} seals: {e}"));
    }
    let v = auth.verify(&message, None, unix_now()).await;
    assert_eq!(v.arc.verdict, ArcVerdict::Pass, "{}", v.arc.reason);
    assert_eq!(v.arc.instances, 50);
    assert_eq!(
        v.arc.hops.first().map(|h| h.instance),
        Some(50),
        "newest hop first"
    );

    // arclist never writes a 51st set...
    let refused = arclist_seal(&auth, &sealer, "relay.arclist.test", &message).await;
    assert_eq!(refused.err(), Some(SealRefusal::TooManySets));

    // ...and a chain that has one fails on the count, whatever its signatures say.
    let text = String::from_utf8(message).expect("ascii");
    let fifty_first: String = text
        .split_inclusive("\r\n")
        .take_while(|l| !l.starts_with("ARC-Authentication-Results: i=50"))
        .collect::<String>()
        .replace("i=50;", "i=51;");
    let with_51 = format!(
        "{fifty_first}ARC-Authentication-Results: i=51; relay.arclist.test; arc=pass\r\n{text}"
    );
    let v = auth.verify(with_51.as_bytes(), None, unix_now()).await;
    assert_eq!(v.arc.verdict, ArcVerdict::Fail);
    assert!(
        v.arc.reason.contains("outside 1..=50"),
        "reason names the limit: {}",
        v.arc.reason
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_chain_is_never_extended() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dns = Dns::start(Zone::new()).await;
    let (key, _) = rsa_key(dir.path(), "hop");
    dns.publish_key("hop", "relay.arclist.test", &key);
    let auth = dns.authenticator();
    let sealer = ArcSealer::new(key, "relay.arclist.test", "hop");
    let sealed = arclist_seal(
        &auth,
        &sealer,
        "relay.arclist.test",
        &post("a@author.arclist.test", "x\r\n"),
    )
    .await
    .expect("seal");
    // Tamper with the AAR, which the seal covers: the chain now fails.
    let tampered = String::from_utf8(sealed)
        .expect("ascii")
        .replace("arc=none", "arc=pass");
    let v = auth.verify(tampered.as_bytes(), None, unix_now()).await;
    assert_eq!(v.arc.verdict, ArcVerdict::Fail);
    assert!(
        v.arc.hops[0].reason.contains("seal"),
        "hop report says the seal broke: {}",
        v.arc.hops[0].reason
    );
    // The next sealer records cv=fail, covering only its own set...
    let failed = arclist_seal(&auth, &sealer, "relay.arclist.test", tampered.as_bytes())
        .await
        .expect("cv=fail seal");
    let text = String::from_utf8(failed.clone()).expect("ascii");
    assert!(
        text.starts_with("ARC-Seal: i=2; a=rsa-sha256;")
            && text.lines().next().is_some_and(|l| l.contains("cv=fail")),
        "{text}"
    );
    let v = auth.verify(&failed, None, unix_now()).await;
    assert_eq!(v.arc.verdict, ArcVerdict::Fail);
    assert_eq!(
        v.arc.hops[0].seal,
        arclist::auth::arc::Check::Pass,
        "its own seal verifies over its own set"
    );
    // ...and nobody extends that.
    let refused = arclist_seal(&auth, &sealer, "relay.arclist.test", &failed).await;
    assert_eq!(refused.err(), Some(SealRefusal::ChainAlreadyFailed));
}
