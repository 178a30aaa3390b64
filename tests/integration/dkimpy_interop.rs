//! Interoperation with dkimpy, both ways, over DNS on loopback.

use crate::support::{Dns, arclist_seal_changed, dkimpy, post, rsa_key};
use arclist::auth::arc::{ArcSealer, ArcVerdict};
use arclist::auth::dkim::{DkimSigner, DkimVerdict};
use arclist::auth::dns::Zone;
use arclist::auth::signing_key::SigningKey;
use arclist::auth::unix_now;
use std::path::Path;
use std::sync::Arc;

struct Hops {
    dns: Dns,
    keys: Vec<(String, Arc<SigningKey>, std::path::PathBuf)>,
}

impl Hops {
    async fn new(dir: &Path) -> Hops {
        let dns = Dns::start(Zone::new()).await;
        let mut keys = Vec::new();
        for i in 1..=3 {
            let domain = format!("hop{i}.arclist.test");
            let (key, path) = rsa_key(dir, &format!("hop{i}"));
            dns.publish_key("arc", &domain, &key);
            keys.push((domain, key, path));
        }
        Hops { dns, keys }
    }

    /// Hop `hop` receives `received`, changes it as a list does (from the second hop on), and
    /// dkimpy seals the changed copy with its verdict on the received one.
    async fn dkimpy_seal(&self, hop: usize, received: &[u8]) -> Vec<u8> {
        let (domain, _, path) = &self.keys[hop];
        let received_path = path.with_extension(format!("received{hop}"));
        std::fs::write(&received_path, received).expect("write received copy");
        let args = [
            "arc-seal",
            "--key",
            path.to_str().expect("utf-8"),
            "--domain",
            domain,
            "--selector",
            "arc",
            "--srv-id",
            domain,
            "--received",
            received_path.to_str().expect("utf-8"),
        ];
        dkimpy(&self.dns, &args, &list_changes(received, hop)).await
    }

    /// As `dkimpy_seal`, with arclist sealing.
    async fn arclist_seal(&self, hop: usize, received: &[u8]) -> Vec<u8> {
        let (domain, key, _) = &self.keys[hop];
        let sealer = ArcSealer::new(key.clone(), domain, "arc");
        arclist_seal_changed(
            &self.dns.authenticator(),
            &sealer,
            domain,
            received,
            &list_changes(received, hop),
        )
        .await
        .expect("arclist seals")
    }

    async fn dkimpy_cv(&self, message: &[u8]) -> String {
        let out = dkimpy(&self.dns, &["arc-verify"], message).await;
        let v: serde_json::Value = serde_json::from_slice(&out).expect("json");
        v["cv"].as_str().unwrap_or_default().to_string()
    }

    async fn arclist_cv(&self, message: &[u8]) -> String {
        let v = self
            .dns
            .authenticator()
            .verify(message, None, unix_now())
            .await;
        v.arc.verdict.as_str().to_string()
    }
}

/// What a list does: tag the subject and add a footer, changing the body. The first hop
/// (the author's own relay) changes nothing.
fn list_changes(message: &[u8], hop: usize) -> Vec<u8> {
    if hop == 0 {
        return message.to_vec();
    }
    let text = String::from_utf8(message.to_vec()).expect("ascii");
    let text = text.replacen("Subject: ", &format!("Subject: [hop{hop}] "), 1);
    format!("{text}-- \r\nfooter added by hop {hop}\r\n").into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chains_sealed_by_dkimpy_verify_in_arclist_with_dkimpys_verdict() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hops = Hops::new(dir.path()).await;
    let mut message = post("author@origin.arclist.test", "Hello list.\r\n");
    for hop in 0..3 {
        message = hops.dkimpy_seal(hop, &message).await;
        let (theirs, ours) = (
            hops.dkimpy_cv(&message).await,
            hops.arclist_cv(&message).await,
        );
        assert_eq!(
            theirs,
            "pass",
            "dkimpy judges its own {}-hop chain",
            hop + 1
        );
        assert_eq!(
            ours,
            theirs,
            "arclist agrees with dkimpy after {} hops",
            hop + 1
        );
    }
    // Break the newest AMS by changing the body after the last seal: both must say fail.
    let broken = [message.as_slice(), b"appended after sealing\r\n"].concat();
    assert_eq!(hops.dkimpy_cv(&broken).await, "fail");
    assert_eq!(hops.arclist_cv(&broken).await, "fail");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chains_sealed_by_arclist_pass_in_dkimpy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hops = Hops::new(dir.path()).await;
    let mut message = post("author@origin.arclist.test", "Hello list.\r\n");
    for hop in 0..3 {
        message = hops.arclist_seal(hop, &message).await;
        assert_eq!(hops.arclist_cv(&message).await, "pass");
        assert_eq!(
            hops.dkimpy_cv(&message).await,
            "pass",
            "dkimpy accepts arclist's {}-hop chain",
            hop + 1
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_chain_dkimpy_then_arclist_then_dkimpy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hops = Hops::new(dir.path()).await;
    let mut message = post("author@origin.arclist.test", "Mixed.\r\n");
    message = hops.dkimpy_seal(0, &message).await;
    message = hops.arclist_seal(1, &message).await;
    message = hops.dkimpy_seal(2, &message).await;
    assert_eq!(hops.dkimpy_cv(&message).await, "pass");
    let v = hops
        .dns
        .authenticator()
        .verify(&message, None, unix_now())
        .await;
    assert_eq!(v.arc.verdict, ArcVerdict::Pass, "{}", v.arc.reason);
    // Older AMSs no longer verify after the body changed; the report says so, the chain passes.
    assert_eq!(v.arc.oldest_pass, Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dkim_signatures_cross_verify() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dns = Dns::start(Zone::new()).await;
    let message = post("author@origin.arclist.test", "Signed twice.\r\n\r\n");
    // arclist signs (RSA and Ed25519), dkimpy verifies.
    let (rsa, rsa_path) = rsa_key(dir.path(), "author");
    dns.publish_key("rsa", "origin.arclist.test", &rsa);
    let (ed, _) = SigningKey::generate_ed25519().expect("ed25519");
    dns.publish_key("ed", "origin.arclist.test", &ed);
    for (key, sel) in [(rsa.clone(), "rsa"), (Arc::new(ed), "ed")] {
        let field = DkimSigner::new(key, "origin.arclist.test", sel)
            .sign(&message, unix_now())
            .expect("sign");
        let signed = [field.as_bytes(), &message].concat();
        let out = dkimpy(&dns, &["dkim-verify"], &signed).await;
        assert_eq!(
            String::from_utf8_lossy(&out).trim(),
            r#"{"pass": true}"#,
            "dkimpy verifies arclist's {sel} signature"
        );
        let v = dns.authenticator().verify(&signed, None, unix_now()).await;
        assert_eq!(v.dkim[0].verdict, DkimVerdict::Pass, "{}", v.dkim[0].reason);
    }
    // dkimpy signs (relaxed and simple), arclist verifies; a changed body then fails.
    let path = rsa_path.to_str().expect("utf-8");
    for extra in [&[][..], &["--simple"][..]] {
        let mut args = vec![
            "dkim-sign",
            "--key",
            path,
            "--domain",
            "origin.arclist.test",
            "--selector",
            "rsa",
        ];
        args.extend_from_slice(extra);
        let signed = dkimpy(&dns, &args, &message).await;
        let v = dns.authenticator().verify(&signed, None, unix_now()).await;
        assert_eq!(
            v.dkim[0].verdict,
            DkimVerdict::Pass,
            "{extra:?}: {}",
            v.dkim[0].reason
        );
        let changed = [signed.as_slice(), b"tampered\r\n"].concat();
        let v = dns.authenticator().verify(&changed, None, unix_now()).await;
        assert_eq!(v.dkim[0].verdict, DkimVerdict::Fail);
        assert!(
            v.dkim[0].reason.contains("body hash"),
            "{}",
            v.dkim[0].reason
        );
    }
}
