//! `arclist check-dns` against the in-process DNS server: a correct zone passes, and each
//! planted fault is found, named, and given a fix. The outbound address is 192.0.2.25 (a
//! documentation address that nothing connects to): resolvers answer every 127/8 PTR query with
//! `localhost` themselves (RFC 6761), so loopback cannot show a real reverse-DNS record.

use crate::support::Dns;
use arclist::auth::dns::{Mx, Zone, ZoneRecord};
use arclist::auth::signing_key::SigningKey;

#[derive(Clone, Copy, PartialEq)]
enum Fault {
    None,
    WrongKey,
    SpfWithoutServer,
    SpfTooManyLookups,
    NoDmarc,
    NoMx,
    /// A BIMI record while DMARC stays p=none.
    BimiAtPNone,
    /// A BIMI record with DMARC p=reject.
    BimiAtReject,
}

const DOMAIN: &str = "lists.arclist.test";

fn zone(key: &SigningKey, fault: Fault) -> Zone {
    let mut z = Zone::new();
    let record = if fault == Fault::WrongKey {
        SigningKey::generate_rsa2048()
            .expect("keygen")
            .0
            .dns_record()
            .expect("record")
    } else {
        key.dns_record().expect("record")
    };
    z.add_txt(&format!("arc1._domainkey.{DOMAIN}"), &record);
    match fault {
        Fault::SpfWithoutServer => z.add_txt(DOMAIN, "v=spf1 ip4:192.0.2.1 -all"),
        Fault::SpfTooManyLookups => {
            let includes: String = (0..11).map(|i| format!("include:s{i}.spf.test ")).collect();
            z.add_txt(DOMAIN, &format!("v=spf1 ip4:192.0.2.25 {includes}-all"));
            for i in 0..11 {
                z.add_txt(&format!("s{i}.spf.test"), "v=spf1 ip4:192.0.2.9 -all");
            }
        }
        _ => z.add_txt(DOMAIN, "v=spf1 ip4:192.0.2.25 -all"),
    }
    if matches!(fault, Fault::BimiAtPNone | Fault::BimiAtReject) {
        z.add_txt(
            &format!("default._bimi.{DOMAIN}"),
            "v=BIMI1; l=https://lists.arclist.test/logo.svg",
        );
    }
    let policy = if fault == Fault::BimiAtReject {
        "reject"
    } else {
        "none"
    };
    if fault != Fault::NoDmarc {
        z.add_txt(
            &format!("_dmarc.{DOMAIN}"),
            &format!("v=DMARC1; p={policy}; rua=mailto:postmaster@lists.arclist.test"),
        );
    }
    if fault != Fault::NoMx {
        z.add(
            DOMAIN,
            ZoneRecord::Mx(Mx {
                preference: 10,
                exchange: "mx.arclist.test".into(),
            }),
        );
    }
    z.add(
        "mx.arclist.test",
        ZoneRecord::A("192.0.2.25".parse().expect("ip")),
    );
    z.add(
        "25.2.0.192.in-addr.arpa",
        ZoneRecord::Ptr("mx.arclist.test".into()),
    );
    z
}

/// Runs check-dns for a folder whose list key is `key_pem`; exit success and output.
async fn check_dns(key_pem: &str, key: &SigningKey, fault: Fault) -> (bool, String) {
    let dns = Dns::start(zone(key, fault)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    crate::smtp_support::write_config(dir.path(), &dns.addr(), "127.0.0.1:0", "");
    std::fs::create_dir_all(dir.path().join("keys")).expect("keys");
    std::fs::write(dir.path().join("keys/arc1.pem"), key_pem).expect("key");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_arclist"))
        // No --dns: the server file's [dns] nameservers (the loopback server) are used.
        .args(["check-dns", "--ip", "192.0.2.25", "--config"])
        .arg(dir.path().join("server.toml"))
        .output()
        .await
        .expect("runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correct_zone_passes_and_each_planted_fault_is_found_with_a_fix() {
    let (key, pem) = SigningKey::generate_rsa2048().expect("keygen");
    let (ok, text) = check_dns(&pem, &key, Fault::None).await;
    assert!(ok, "{text}");
    for check in ["key ", "spf ", "dmarc ", "mx ", "ptr "] {
        assert!(
            text.lines()
                .any(|l| l.starts_with("ok") && l.contains(check)),
            "{check} passes: {text}"
        );
    }
    assert!(!text.contains("FAIL") && !text.contains("WARN"), "{text}");

    for (fault, check, says) in [
        (Fault::WrongKey, "key", "does not publish the key"),
        (Fault::SpfWithoutServer, "spf", "gives fail for 192.0.2.25"),
        (
            Fault::SpfTooManyLookups,
            "spf-lookups",
            "needs 11 DNS lookups",
        ),
        (Fault::NoDmarc, "dmarc", "publishes no DMARC record"),
        (Fault::NoMx, "mx", "posts and bounces cannot reach arclist"),
    ] {
        let (ok, text) = check_dns(&pem, &key, fault).await;
        assert!(!ok, "{check}: exit status says failure: {text}");
        let line = text
            .lines()
            .find(|l| l.starts_with("FAIL") && l.contains(&format!(" {check} ")))
            .unwrap_or_else(|| panic!("{check} fails: {text}"));
        assert!(line.contains(says), "{line}");
        let next = text
            .lines()
            .skip_while(|l| *l != line)
            .nth(1)
            .unwrap_or_default();
        assert!(next.contains("fix:"), "a fix follows: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_1024_bit_key_is_a_warning_not_a_failure() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("short.pem");
    let made = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:1024",
            "-out",
        ])
        .arg(&path)
        .output()
        .expect("openssl runs");
    assert!(made.status.success());
    let pem = std::fs::read_to_string(&path).expect("pem");
    let key = SigningKey::from_pem(&pem).expect("1024-bit key loads");
    let (ok, text) = check_dns(&pem, &key, Fault::None).await;
    assert!(ok, "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("WARN") && l.contains("key-size") && l.contains("1024 bits")),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bimi_record_without_dmarc_at_enforcement_is_named_with_a_fix() {
    let (key, pem) = SigningKey::generate_rsa2048().expect("keygen");
    let (ok, text) = check_dns(&pem, &key, Fault::None).await;
    assert!(ok, "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("ok") && l.contains(" bimi ") && l.contains("no BIMI record")),
        "{text}"
    );

    let (ok, text) = check_dns(&pem, &key, Fault::BimiAtPNone).await;
    assert!(ok, "a warning, not a failure: {text}");
    let line = text
        .lines()
        .find(|l| l.starts_with("WARN") && l.contains(" bimi "))
        .unwrap_or_else(|| panic!("bimi warns: {text}"));
    assert!(
        line.contains("default._bimi.lists.arclist.test") && line.contains("p=none"),
        "{line}"
    );
    let next = text
        .lines()
        .skip_while(|l| *l != line)
        .nth(1)
        .unwrap_or_default();
    assert!(next.contains("fix:") && next.contains("p=reject"), "{text}");

    let (ok, text) = check_dns(&pem, &key, Fault::BimiAtReject).await;
    assert!(ok, "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("ok")
            && l.contains(" bimi ")
            && l.contains("DMARC at enforcement")),
        "{text}"
    );
}
