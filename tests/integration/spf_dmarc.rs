//! SPF (through mail-auth's evaluator) and DMARC over DNS on loopback.

use crate::support::{Dns, post, rsa_key};
use arclist::auth::dkim::DkimSigner;
use arclist::auth::dmarc::{DmarcVerdict, Policy};
use arclist::auth::dns::Zone;
use arclist::auth::spf::SpfVerdict;
use arclist::auth::{Envelope, unix_now};

fn zone() -> Zone {
    let mut z = Zone::new();
    z.add_txt("strict.arclist.test", "v=spf1 ip4:127.0.0.1 -all");
    z.add_txt(
        "_dmarc.strict.arclist.test",
        "v=DMARC1; p=reject; rua=mailto:d@strict.arclist.test",
    );
    z.add_txt("relaxed.arclist.test", "v=spf1 ?all");
    z.add_txt("_dmarc.relaxed.arclist.test", "v=DMARC1; p=none");
    z.add_txt("_dmarc.parent.test", "v=DMARC1; p=reject; sp=quarantine");
    z.add_txt("helo.arclist.test", "v=spf1 a -all");
    z.add(
        "helo.arclist.test",
        arclist::auth::dns::ZoneRecord::A("127.0.0.1".parse().expect("ip")),
    );
    z
}

fn envelope(ip: &str, mail_from: &str) -> Envelope {
    Envelope {
        ip: ip.parse().expect("ip"),
        helo: "helo.arclist.test".into(),
        mail_from: mail_from.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spf_pass_fail_and_temperror() {
    let dns = Dns::start(zone()).await;
    let auth = dns.authenticator();
    let msg = post("a@strict.arclist.test", "x\r\n");
    let v = auth
        .verify(
            &msg,
            Some(&envelope("127.0.0.1", "a@strict.arclist.test")),
            unix_now(),
        )
        .await;
    let spf = v.spf.expect("spf ran");
    assert_eq!(
        (spf.mail_from, spf.helo),
        (SpfVerdict::Pass, SpfVerdict::Pass)
    );
    let v = auth
        .verify(
            &msg,
            Some(&envelope("127.0.0.2", "a@strict.arclist.test")),
            unix_now(),
        )
        .await;
    assert_eq!(v.spf.expect("spf").mail_from, SpfVerdict::Fail);
    // Null sender: the HELO identity stands in (RFC 7208 §2.4).
    let v = auth
        .verify(&msg, Some(&envelope("127.0.0.1", "")), unix_now())
        .await;
    assert_eq!(v.spf.as_ref().map(|s| s.mail_from), Some(SpfVerdict::Pass));
    dns.server.hang("slow.arclist.test");
    let v = auth
        .verify(
            &msg,
            Some(&envelope("127.0.0.1", "a@slow.arclist.test")),
            unix_now(),
        )
        .await;
    assert_eq!(v.spf.expect("spf").mail_from, SpfVerdict::Temperror);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dmarc_policy_alignment_and_organizational_fallback() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dns = Dns::start(zone()).await;
    let auth = dns.authenticator();

    // Spoofed p=reject author: nothing aligned, the policy is data for the list stage.
    let spoof = post("ceo@strict.arclist.test", "wire money\r\n");
    let v = auth
        .verify(
            &spoof,
            Some(&envelope("127.0.0.9", "x@relaxed.arclist.test")),
            unix_now(),
        )
        .await;
    assert_eq!(v.dmarc.verdict, DmarcVerdict::Fail, "{}", v.dmarc.reason);
    assert_eq!(
        (v.dmarc.policy, v.dmarc.disposition),
        (Policy::Reject, Policy::Reject)
    );

    // Aligned SPF pass.
    let v = auth
        .verify(
            &spoof,
            Some(&envelope("127.0.0.1", "bounce@strict.arclist.test")),
            unix_now(),
        )
        .await;
    assert_eq!(v.dmarc.verdict, DmarcVerdict::Pass);
    assert!(v.dmarc.spf_aligned);

    // Aligned DKIM pass from a subdomain signer (relaxed alignment); sp= applies to a
    // subdomain author found through the organizational domain.
    let (key, _) = rsa_key(dir.path(), "k");
    dns.publish_key("k", "mail.parent.test", &key);
    let msg = post("a@news.parent.test", "x\r\n");
    let sig = DkimSigner::new(key, "mail.parent.test", "k")
        .sign(&msg, unix_now())
        .expect("sign");
    let signed = [sig.as_bytes(), &msg].concat();
    let v = auth.verify(&signed, None, unix_now()).await;
    assert_eq!(v.dmarc.verdict, DmarcVerdict::Pass, "{}", v.dmarc.reason);
    assert_eq!(v.dmarc.dkim_aligned.as_deref(), Some("mail.parent.test"));
    assert_eq!(
        v.dmarc.policy,
        Policy::Quarantine,
        "sp= of the organizational domain"
    );
    assert_eq!(
        v.dmarc.record.as_ref().map(|r| r.domain.as_str()),
        Some("parent.test")
    );

    // No record at all.
    let v = auth
        .verify(&post("a@nodmarc.arclist.test", "x\r\n"), None, unix_now())
        .await;
    assert_eq!(v.dmarc.verdict, DmarcVerdict::None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_temporary_error_that_could_change_dmarc_defers_the_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dns = Dns::start(zone()).await;
    let auth = dns.authenticator();
    let (good, _) = rsa_key(dir.path(), "good");
    dns.publish_key("good", "strict.arclist.test", &good);
    dns.server.servfail("flaky._domainkey.other.test");
    dns.server.servfail("flaky._domainkey.strict.arclist.test");
    let (any, _) = rsa_key(dir.path(), "any");
    let sign = |key, domain: &str, selector: &str, message: &[u8]| {
        let field = DkimSigner::new(key, domain, selector)
            .sign(message, unix_now())
            .expect("sign");
        [field.as_bytes(), message].concat()
    };
    let msg = post("a@strict.arclist.test", "hi\r\n");
    // An aligned signature passes; an unrelated one cannot be checked: DMARC is settled.
    let both = sign(good.clone(), "strict.arclist.test", "good", &msg);
    let both = sign(any.clone(), "other.test", "flaky", &both);
    let from_elsewhere = envelope("127.0.0.9", "a@strict.arclist.test");
    let v = auth.verify(&both, Some(&from_elsewhere), unix_now()).await;
    assert!(
        v.dkim
            .iter()
            .any(|d| d.verdict == arclist::auth::dkim::DkimVerdict::Temperror)
    );
    assert_eq!(v.dmarc.verdict, DmarcVerdict::Pass, "{}", v.dmarc.reason);
    assert!(
        !v.has_temporary_error(),
        "the unrelated temperror is recorded, not waited on"
    );
    let results = v
        .auth_results("mx.arclist.test", Some(&from_elsewhere))
        .render();
    assert!(results.contains("dkim=temperror"), "{results}");
    // Only an unrelated signature fails temporarily and SPF fails: DMARC fails for good.
    let unrelated = sign(any.clone(), "other.test", "flaky", &msg);
    let v = auth
        .verify(&unrelated, Some(&from_elsewhere), unix_now())
        .await;
    assert_eq!(v.dmarc.verdict, DmarcVerdict::Fail);
    assert!(!v.has_temporary_error());
    // The aligned signature itself cannot be checked: DMARC might still pass, so it waits.
    let aligned = sign(any, "strict.arclist.test", "flaky", &msg);
    let v = auth
        .verify(&aligned, Some(&from_elsewhere), unix_now())
        .await;
    assert_eq!(
        v.dmarc.verdict,
        DmarcVerdict::Temperror,
        "{}",
        v.dmarc.reason
    );
    assert!(v.has_temporary_error());
}
