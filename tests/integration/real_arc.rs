//! Real messages sealed by Microsoft 365, Google, Zoho and kernel.org, verified over DNS on
//! loopback serving the keys as they were published.

use crate::support::{Dns, conformance_data};
use arclist::auth::arc::Check;
use arclist::auth::dns::Zone;
use arclist::auth::message::to_crlf;
use arclist::auth::unix_now;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_messages_give_the_expected_chain_and_hop_verdicts() {
    let dir = conformance_data();
    let dir = dir.join("real-arc");
    let mut zone = Zone::new();
    zone.load_file(&dir.join("keys.zone"))
        .expect("keys.zone parses");
    let dns = Dns::start(zone).await;
    let auth = dns.authenticator();
    let expected = std::fs::read_to_string(dir.join("expected.txt")).expect("expected.txt");
    let mut checked = 0;
    for line in expected
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let mut cols = line.split_whitespace();
        let (file, chain) = (cols.next().expect("file"), cols.next().expect("verdict"));
        let rest = line
            .split_whitespace()
            .skip(2)
            .collect::<Vec<_>>()
            .join(" ");
        let hops: Vec<String> = rest.split(';').map(|h| h.trim().to_string()).collect();
        let message = to_crlf(&std::fs::read(dir.join(file)).expect("message"));
        let v = auth.verify(&message, None, unix_now()).await;
        assert_eq!(v.arc.verdict.as_str(), chain, "{file}: {}", v.arc.reason);
        assert_eq!(v.arc.hops.len(), hops.len(), "{file}: hop count");
        for (hop, want) in v.arc.hops.iter().zip(&hops) {
            // "i=3 broken subspace.kernel.org" / "i=1 valid google.com"
            let parts: Vec<&str> = want.split_whitespace().collect();
            assert_eq!(
                format!("i={}", hop.instance),
                parts[0],
                "{file}: hop order is newest first"
            );
            assert_eq!(hop.domain, parts[2], "{file} {}: sealer", parts[0]);
            let valid = hop.seal == Check::Pass && (hop.cv == "pass" || hop.cv == "none");
            assert_eq!(
                if valid { "valid" } else { "broken" },
                parts[1],
                "{file} {}: {hop}",
                parts[0]
            );
        }
        checked += 1;
    }
    assert_eq!(checked, 9, "all nine real messages were checked");
}
