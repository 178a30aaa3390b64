//! The engine tells an installed observer what it counts: live DNS lookups (through a real
//! resolver asking a DNS server on loopback), ARC sets added and ARC overrides.

use arclist_auth::arc::{ArcReport, ArcSealer, ArcVerdict};
use arclist_auth::dns::{LiveConfig, LiveResolver, LoopbackDnsServer, Resolver, Zone};
use arclist_auth::observe::{DnsOutcome, Observer, install};
use arclist_auth::results::{AuthResults, MethodResult};
use arclist_auth::signing_key::SigningKey;
use arclist_auth::trust::TrustDecision;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Counts what the engine reports; one per test process, shared by its tests.
struct Counts {
    answers: AtomicUsize,
    not_found: AtomicUsize,
    errors: AtomicUsize,
    seals: AtomicUsize,
    overrides: AtomicUsize,
}

impl Observer for Counts {
    fn dns_lookup(&self, _took: Duration, outcome: DnsOutcome) {
        match outcome {
            DnsOutcome::Answer => &self.answers,
            DnsOutcome::NotFound => &self.not_found,
            DnsOutcome::Error => &self.errors,
        }
        .fetch_add(1, Ordering::SeqCst);
    }

    fn arc_sealed(&self) {
        self.seals.fetch_add(1, Ordering::SeqCst);
    }

    fn arc_override(&self) {
        self.overrides.fetch_add(1, Ordering::SeqCst);
    }
}

static COUNTS: Counts = Counts {
    answers: AtomicUsize::new(0),
    not_found: AtomicUsize::new(0),
    errors: AtomicUsize::new(0),
    seals: AtomicUsize::new(0),
    overrides: AtomicUsize::new(0),
};

fn counts() -> &'static Counts {
    // Every test installs the same observer; whichever runs first wins.
    install(&COUNTS);
    &COUNTS
}

#[tokio::test]
async fn live_lookups_are_reported_with_their_outcome() {
    let counts = counts();
    let mut zone = Zone::new();
    zone.add_txt("sel._domainkey.example.test", "v=DKIM1; p=");
    let server = LoopbackDnsServer::start(zone).await.expect("loopback DNS");
    let live = LiveConfig {
        nameservers: vec![server.addr()],
        timeout: Duration::from_secs(2),
        ..LiveConfig::default()
    };
    let resolver = Resolver::Live(Box::new(LiveResolver::new(&live).expect("resolver")));
    // This is the only test here that asks DNS, so the counts move by exactly these lookups.
    let (answers, not_found) = (
        counts.answers.load(Ordering::SeqCst),
        counts.not_found.load(Ordering::SeqCst),
    );
    let found = resolver.txt("sel._domainkey.example.test").await;
    assert!(
        found.is_ok(),
        "the published TXT record is found: {found:?}"
    );
    let missing = resolver.txt("nothing.example.test").await;
    assert!(missing.is_err(), "an absent name is not found: {missing:?}");
    assert_eq!(counts.answers.load(Ordering::SeqCst), answers + 1);
    assert_eq!(counts.not_found.load(Ordering::SeqCst), not_found + 1);
    assert_eq!(counts.errors.load(Ordering::SeqCst), 0);
    drop(server);
}

#[test]
fn an_added_arc_set_is_reported() {
    let counts = counts();
    let (key, _) = SigningKey::generate_ed25519().expect("a key");
    let sealer = ArcSealer::new(Arc::new(key), "relay.example.test", "arc");
    let report = ArcReport {
        verdict: ArcVerdict::None,
        reason: String::new(),
        instances: 0,
        oldest_pass: None,
        newest_cv: None,
        hops: Vec::new(),
    };
    let message = b"From: a@example.test\r\nSubject: hi\r\n\r\nbody\r\n";
    let before = counts.seals.load(Ordering::SeqCst);
    sealer
        .seal(
            message,
            &report,
            "relay.example.test; arc=none",
            1_700_000_000,
        )
        .expect("sealed");
    assert_eq!(counts.seals.load(Ordering::SeqCst), before + 1);
}

#[test]
fn an_arc_override_is_reported_and_a_refusal_is_not() {
    let counts = counts();
    let mut results = AuthResults {
        authserv_id: "lists.example.test".into(),
        version: None,
        results: vec![MethodResult::new("dmarc", "fail")],
    };
    let before = counts.overrides.load(Ordering::SeqCst);
    let refused = TrustDecision {
        overridden: false,
        sealers: Vec::new(),
        reason: "no override".into(),
        dkim2: false,
    };
    refused.annotate(&mut results);
    assert_eq!(counts.overrides.load(Ordering::SeqCst), before);
    let overridden = TrustDecision {
        overridden: true,
        sealers: vec!["relay.example.test:arc".into()],
        reason: "arc override: relay.example.test (i=1) recorded dmarc=pass".into(),
        dkim2: false,
    };
    overridden.annotate(&mut results);
    assert_eq!(counts.overrides.load(Ordering::SeqCst), before + 1);
}
