//! DMARC as RFC 9989 has it (May 2026): the DNS tree walk instead of the Public Suffix List,
//! `np=`, `psd=`, `t=y`, and records without `p=`; over DNS on loopback, then through a list.

use crate::list_pipeline::{post as list_post, world};
use crate::support::{Dns, post, rsa_key};
use arclist::auth::dkim::DkimSigner;
use arclist::auth::dmarc::{DmarcVerdict, Policy};
use arclist::auth::dns::{Zone, ZoneRecord};
use arclist::auth::{Envelope, Verification, unix_now};
use arclist::state::store::SpoolState;

/// The zone of the cases RFC 9989 changed.
fn add_cases(z: &mut Zone) {
    // np=: a name that does not exist under a domain that asks to reject such names.
    z.add_txt("_dmarc.np.test", "v=DMARC1; p=none; sp=none; np=reject");
    z.add("np.test", ZoneRecord::A("127.0.0.50".parse().expect("ip")));
    // A record only at an intermediate name: the PSL would look at uni.test, the walk finds it.
    z.add_txt("_dmarc.dept.uni.test", "v=DMARC1; p=reject");
    z.add(
        "mail.dept.uni.test",
        ZoneRecord::A("127.0.0.51".parse().expect("ip")),
    );
    // t=y: testing, one step softer.
    z.add_txt("_dmarc.testing.test", "v=DMARC1; p=reject; t=y");
    z.add(
        "testing.test",
        ZoneRecord::A("127.0.0.52".parse().expect("ip")),
    );
    // A public suffix that publishes a policy for the names registered under it.
    z.add_txt("_dmarc.reg.test", "v=DMARC1; p=quarantine; psd=y");
    // A long name whose organization publishes p=reject.
    z.add_txt("_dmarc.example.test", "v=DMARC1; p=reject");
    // Unknown tags, no p=, but rua=: p=none.
    z.add_txt(
        "_dmarc.loose.test",
        "v=DMARC1; rua=mailto:r@loose.test; future=1; pct=5",
    );
    // Plain p=reject.
    z.add_txt("_dmarc.bank2.test", "v=DMARC1; p=reject");
    z.add_txt("corp.test", "v=spf1 -all");
    z.add_txt("_dmarc.corp.test", "v=DMARC1; p=reject");
}

async fn verdict(dns: &Dns, from: &str, signer: Option<(&str, &std::path::Path)>) -> Verification {
    let mut msg = post(from, "hello\r\n");
    if let Some((domain, keys)) = signer {
        let (key, _) = rsa_key(keys, domain);
        dns.publish_key("k", domain, &key);
        let sig = DkimSigner::new(key, domain, "k")
            .sign(&msg, unix_now())
            .expect("sign");
        msg = [sig.as_bytes(), &msg[..]].concat();
    }
    let envelope = Envelope {
        ip: "127.0.0.66".parse().expect("ip"),
        helo: "spoofer.invalid".into(),
        mail_from: from.into(),
    };
    dns.authenticator()
        .verify(&msg, Some(&envelope), unix_now())
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_discovery_and_alignment_follow_the_tree_walk() {
    let mut zone = Zone::new();
    add_cases(&mut zone);
    let dns = Dns::start(zone).await;
    let keys = tempfile::tempdir().expect("tempdir");
    let case = |v: &Verification| (v.dmarc.verdict, v.dmarc.policy);
    // np=reject for a name that does not exist; sp=none for one that does.
    let v = verdict(&dns, "ghost@nx.np.test", None).await;
    assert_eq!(
        case(&v),
        (DmarcVerdict::Fail, Policy::Reject),
        "{:?}",
        v.dmarc.walk
    );
    // The record at dept.uni.test applies to mail.dept.uni.test.
    let v = verdict(&dns, "a@mail.dept.uni.test", None).await;
    assert_eq!(
        case(&v),
        (DmarcVerdict::Fail, Policy::Reject),
        "{:?}",
        v.dmarc.walk
    );
    assert_eq!(
        v.dmarc.record.as_ref().map(|r| r.domain.as_str()),
        Some("dept.uni.test")
    );
    // t=y: reject asked, quarantine applied.
    let v = verdict(&dns, "a@testing.test", None).await;
    assert_eq!(case(&v), (DmarcVerdict::Fail, Policy::Quarantine));
    // psd=y: shop.reg.test is its own organization; a signature of other.reg.test does not
    // align with it, the registry's policy applies.
    let v = verdict(
        &dns,
        "a@shop.reg.test",
        Some(("other.reg.test", keys.path())),
    )
    .await;
    assert_eq!(case(&v), (DmarcVerdict::Fail, Policy::Quarantine));
    assert_eq!(v.dmarc.organizational_domain, "shop.reg.test");
    // Eight labels or more: at most eight names asked, and the organization's record found.
    let v = verdict(&dns, "a@a.b.c.d.e.f.g.example.test", None).await;
    assert_eq!(case(&v), (DmarcVerdict::Fail, Policy::Reject));
    assert!(v.dmarc.walk.len() <= 8, "{:?}", v.dmarc.walk);
    // No p= but rua=, unknown and removed tags ignored: p=none.
    let v = verdict(&dns, "a@loose.test", None).await;
    assert_eq!(case(&v), (DmarcVerdict::Fail, Policy::None));
    // Relaxed alignment by organizational domain: a signature of corp.test passes for
    // sub.corp.test; of another organization, it does not.
    let v = verdict(&dns, "a@sub.corp.test", Some(("corp.test", keys.path()))).await;
    assert_eq!(v.dmarc.verdict, DmarcVerdict::Pass, "{:?}", v.dmarc.walk);
    let v = verdict(&dns, "a@sub.corp.test", Some(("bank2.test", keys.path()))).await;
    assert_eq!(case(&v), (DmarcVerdict::Fail, Policy::Reject));
    // The Authentication-Results name the policy that applied.
    let ar = v.auth_results("mx.arclist.test", None).render();
    assert!(ar.contains("policy.dmarc=reject"), "{ar}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_acts_on_the_2026_rules() {
    let w = world("").await;
    w.t.dns.server.with_zone(add_cases);
    let send = |from: &'static str| {
        let w = &w;
        async move {
            let id = w
                .send(
                    "127.0.0.66",
                    "spoofer.invalid",
                    from,
                    &list_post(&format!("X <{from}>"), "Hi", "Hello.\r\n"),
                )
                .await;
            w.t.settled(id).await
        }
    };
    for refused in ["ghost@nx.np.test", "a@mail.dept.uni.test", "ceo@bank2.test"] {
        let meta = send(refused).await;
        assert_eq!(
            meta.state,
            SpoolState::Rejected,
            "{refused}: {:?}",
            meta.note
        );
    }
    // t=y with p=reject: handled as quarantine: a member's post is distributed, From
    // rewritten.
    w.t.add_member("a@testing.test").await;
    let meta = send("a@testing.test").await;
    assert_eq!(meta.state, SpoolState::Queued, "{:?}", meta.note);
    let (_, copy) =
        w.t.server
            .store()
            .queued(meta.id)
            .await
            .expect("queue")
            .expect("queued");
    let copy = String::from_utf8_lossy(&copy);
    assert!(
        copy.contains("From: \"X via Members\" <members@lists.arclist.test>"),
        "{copy}"
    );
}
