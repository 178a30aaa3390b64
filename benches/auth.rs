//! Verify and seal throughput for a 4 KB and a 1 MB post, beside the bare aws-lc RSA-2048
//! signing rate measured in the same run.
//!
//! `cargo bench --bench auth` prints criterion's figures, then a ratio table: the seal rate
//! against the rate two bare RSA signatures allow (an ARC set costs two: AMS and AS). Keys are
//! injected, so DNS is not measured here.

use arclist::auth::arc::{ArcReport, ArcSealer, verify_arc};
use arclist::auth::canon::BodyHashCache;
use arclist::auth::key_lookup::KeyStore;
use arclist::auth::key_record::KeyRecord;
use arclist::auth::message::RawMessage;
use arclist::auth::signing_key::SigningKey;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use criterion::{BenchmarkId, Criterion, Throughput, black_box};
use std::sync::Arc;
use std::time::{Duration, Instant};

const DOMAIN: &str = "lists.bench.test";

struct Fixture {
    sealer: ArcSealer,
    keys: KeyStore,
    posts: Vec<(&'static str, Vec<u8>)>,
    sealed: Vec<(&'static str, Vec<u8>)>,
    bare: RsaKeyPair,
}

fn post(body_len: usize) -> Vec<u8> {
    let mut m =
        b"From: Author <a@author.bench.test>\r\nTo: list@lists.bench.test\r\nSubject: a post\r\n\
Date: Sun, 22 Nov 2026 10:00:00 +0000\r\nMessage-ID: <1@bench.test>\r\nMIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=utf-8\r\n\r\n"
            .to_vec();
    let line = b"The quick brown fox jumps over the lazy dog, and the list forwards it.\r\n";
    while m.len() < body_len {
        m.extend_from_slice(line);
    }
    m
}

fn fixture() -> Fixture {
    let (key, _) = SigningKey::generate_rsa2048().expect("keygen");
    let record = KeyRecord::parse(key.dns_record().expect("record").as_bytes()).expect("parse");
    let mut keys = KeyStore::default();
    keys.insert("arc", DOMAIN, Ok(record));
    let sealer = ArcSealer::new(Arc::new(key), DOMAIN, "arc");
    let posts = vec![("4KB", post(4 * 1024)), ("1MB", post(1024 * 1024))];
    let none = empty_report();
    let sealed = posts
        .iter()
        .map(|(n, m)| {
            let set = sealer
                .seal(m, &none, "lists.bench.test; dkim=none", 1)
                .expect("seal");
            (*n, set.prepend_to(m))
        })
        .collect();
    let bare = RsaKeyPair::generate(KeySize::Rsa2048).expect("bare key");
    Fixture {
        sealer,
        keys,
        posts,
        sealed,
        bare,
    }
}

fn empty_report() -> ArcReport {
    let msg = post(10);
    verify_arc(
        &RawMessage::parse(&msg),
        &mut BodyHashCache::new(b""),
        &KeyStore::default(),
    )
}

fn bare_sign(key: &RsaKeyPair, data: &[u8]) -> Vec<u8> {
    let mut sig = vec![0u8; key.public_modulus_len()];
    key.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), data, &mut sig)
        .expect("sign");
    sig
}

fn verify(f: &Fixture, message: &[u8]) -> ArcReport {
    let parsed = RawMessage::parse(message);
    verify_arc(&parsed, &mut BodyHashCache::new(parsed.body), &f.keys)
}

fn criterion_benches(c: &mut Criterion, f: &Fixture) {
    let none = empty_report();
    let header_sized = vec![b'x'; 600];
    let mut g = c.benchmark_group("rsa2048");
    g.throughput(Throughput::Elements(1));
    g.bench_function("bare_sign", |b| {
        b.iter(|| bare_sign(&f.bare, black_box(&header_sized)))
    });
    g.finish();
    let mut g = c.benchmark_group("seal");
    g.throughput(Throughput::Elements(1));
    for (name, m) in &f.posts {
        g.bench_with_input(BenchmarkId::from_parameter(name), m, |b, m| {
            b.iter(|| {
                f.sealer
                    .seal(black_box(m), &none, "lists.bench.test; dkim=none", 1)
                    .expect("seal")
            })
        });
    }
    g.finish();
    let mut g = c.benchmark_group("verify");
    g.throughput(Throughput::Elements(1));
    for (name, m) in &f.sealed {
        assert_eq!(
            verify(f, m).verdict.as_str(),
            "pass",
            "the benched chain verifies"
        );
        g.bench_with_input(BenchmarkId::from_parameter(name), m, |b, m| {
            b.iter(|| verify(f, black_box(m)))
        });
    }
    g.finish();
    dkim2_benches(c, f);
}

/// DKIM2 beside ARC: an originating hop signed (instance hashes and one RSA-2048 signature)
/// and verified (hashes, key, signature), on the same posts.
fn dkim2_benches(c: &mut Criterion, f: &Fixture) {
    use arclist::auth::dkim2::{
        Dkim2Envelope, Dkim2Signer, Dkim2Verdict, NewInstance, TimeCheck, verify_dkim2_with_keys,
    };
    let (key, _) = SigningKey::generate_rsa2048().expect("keygen");
    let record = KeyRecord::parse(key.dns_record().expect("record").as_bytes()).expect("parse");
    let mut keys = KeyStore::default();
    keys.insert("d2", "author.bench.test", Ok(record));
    let signer = Dkim2Signer::new("author.bench.test", "d2", Arc::new(key));
    let hop = Dkim2Envelope {
        mail_from: "<a@author.bench.test>".into(),
        rcpt_to: vec!["<list@lists.bench.test>".into()],
    };
    let now = arclist::auth::unix_now();
    let sign = |m: &[u8]| {
        signer
            .sign(m, &hop, NewInstance::Unchanged, None, now)
            .expect("dkim2 sign")
    };
    let mut g = c.benchmark_group("dkim2_sign");
    g.throughput(Throughput::Elements(1));
    for (name, m) in &f.posts {
        g.bench_with_input(BenchmarkId::from_parameter(name), m, |b, m| {
            b.iter(|| sign(black_box(m)))
        });
    }
    g.finish();
    let mut g = c.benchmark_group("dkim2_verify");
    g.throughput(Throughput::Elements(1));
    for (name, m) in &f.posts {
        let signed = sign(m).prepend_to(m);
        let check = |m: &[u8]| {
            verify_dkim2_with_keys(&RawMessage::parse(m), &keys, Some(&hop), TimeCheck::At(now))
        };
        assert_eq!(
            check(&signed).verdict,
            Dkim2Verdict::Pass,
            "the benched chain verifies"
        );
        g.bench_with_input(BenchmarkId::from_parameter(name), &signed, |b, m| {
            b.iter(|| check(black_box(m)))
        });
    }
    g.finish();
}

/// Operations per second of `op` over one timed slice.
fn rate(per_round: Duration, mut op: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < per_round {
        op();
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// How many interleaved rounds of how long: short with `--quick`.
fn rounds() -> (usize, Duration) {
    if std::env::args().any(|a| a == "--quick") {
        (5, Duration::from_millis(200))
    } else {
        (9, Duration::from_millis(500))
    }
}

fn ratio_table(f: &Fixture) {
    let none = empty_report();
    let header_sized = vec![b'x'; 600];
    let (rounds, per) = rounds();
    // Bare signing and sealing alternate round by round, so both see the same machine load.
    let mut bare_rates = Vec::new();
    let mut seal_rates: Vec<Vec<f64>> = vec![Vec::new(); f.posts.len()];
    let mut verify_rates: Vec<Vec<f64>> = vec![Vec::new(); f.sealed.len()];
    for _ in 0..rounds {
        bare_rates.push(rate(per, || {
            black_box(bare_sign(&f.bare, &header_sized));
        }));
        for (i, (_, m)) in f.posts.iter().enumerate() {
            seal_rates[i].push(rate(per, || {
                black_box(
                    f.sealer
                        .seal(m, &none, "lists.bench.test; dkim=none", 1)
                        .expect("seal"),
                );
            }));
        }
        for (i, (_, m)) in f.sealed.iter().enumerate() {
            verify_rates[i].push(rate(per, || {
                black_box(verify(f, m));
            }));
        }
    }
    let bare = median(bare_rates);
    println!("\nratios (same run, rounds interleaved, median of {rounds}):");
    println!(
        "  bare aws-lc RSA-2048 signatures      {bare:>10.0} /s  (two per ARC set: {:.0} sets/s)",
        bare / 2.0
    );
    for ((name, _), rates) in f.posts.iter().zip(seal_rates) {
        let seal = median(rates);
        println!(
            "  seal {name:<4} (AMS + AS)                {seal:>10.0} /s  = {:.2} of the two-signature bound",
            seal / (bare / 2.0)
        );
    }
    for ((name, _), rates) in f.sealed.iter().zip(verify_rates) {
        println!(
            "  verify {name:<4} (1-hop chain)          {:>10.0} /s",
            median(rates)
        );
    }
}

/// Steps 1 to 5 for one list post: authenticate (DNS answered from memory), trust, policy,
/// the list's copy, ARC seal and DKIM signature.
struct ListFixture {
    runtime: tokio::runtime::Runtime,
    auth: arclist::auth::Authenticator,
    list: arclist::stages::list::ListRuntime,
    meta: arclist::state::store::SpoolMeta,
    post: Vec<u8>,
    _dir: tempfile::TempDir,
}

fn list_fixture() -> ListFixture {
    use arclist::auth::dns::{Resolver, Zone};
    let dir = tempfile::tempdir().expect("tempdir");
    let (list_key, pem) = SigningKey::generate_rsa2048().expect("keygen");
    std::fs::write(dir.path().join("list.pem"), pem).expect("write key");
    let (author_key, _) = SigningKey::generate_rsa2048().expect("keygen");
    let mut zone = Zone::new();
    zone.add_txt(
        "k._domainkey.bank.bench.test",
        &author_key.dns_record().expect("record"),
    );
    zone.add_txt("_dmarc.bank.bench.test", "v=DMARC1; p=reject");
    zone.add_txt(
        "arc._domainkey.lists.bench.test",
        &list_key.dns_record().expect("record"),
    );
    let config: arclist::base::config::ListConfig = toml::from_str(&format!(
        "address = \"members@lists.bench.test\"\nname = \"Members\"\nsubject_tag = \"[members] \"\nfooter = \"members list\"\n[signing]\nselector = \"arc\"\nkey = \"{}\"\n",
        dir.path().join("list.pem").display()
    ))
    .expect("list config");
    let list = arclist::stages::list::ListRuntime::load(&config).expect("list");
    let body = String::from_utf8(post(4 * 1024))
        .expect("ascii")
        .replace("a@author.bench.test", "alice@bank.bench.test");
    let signer = arclist::auth::dkim::DkimSigner::new(Arc::new(author_key), "bank.bench.test", "k");
    let sig = signer.sign(body.as_bytes(), 1).expect("sign");
    let post = [sig.as_bytes(), body.as_bytes()].concat();
    let meta = arclist::state::store::SpoolMeta {
        id: 1,
        envelope: arclist::state::store::SpoolEnvelope {
            verdict: None,
            filter: None,
            over_quota: None,
            mail_from: "alice@bank.bench.test".into(),
            rcpt_to: vec!["members@lists.bench.test".into()],
            client_ip: "127.0.0.1".parse().expect("ip"),
            helo: "mx.bank.bench.test".into(),
            protocol: "ESMTP".into(),
            tls: None,
            received_at: 1,
        },
        facts: Default::default(),
        state: arclist::state::store::SpoolState::Received,
        size: post.len(),
        auth_results: None,
        attempts: 0,
        note: None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let auth = arclist::auth::Authenticator::new(Resolver::Zone(Arc::new(zone)), None);
    ListFixture {
        runtime,
        auth,
        list,
        meta,
        post,
        _dir: dir,
    }
}

fn list_post(l: &ListFixture) -> usize {
    let v = l.runtime.block_on(l.auth.verify(&l.post, None, 1));
    match l.list.handle(
        &l.post,
        (&v, None),
        &l.meta,
        arclist::stages::list::policy::Standing::Member,
        false,
        "bench.test",
    ) {
        arclist::stages::list::Outcome::Queue { signed, .. } => signed.len(),
        other => panic!("the benched post must be distributed: {other:?}"),
    }
}

fn list_table(f: &Fixture, l: &ListFixture) {
    let header_sized = vec![b'x'; 600];
    let (rounds, per) = rounds();
    let (mut bare, mut posts) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        bare.push(rate(per, || {
            black_box(bare_sign(&f.bare, &header_sized));
        }));
        posts.push(rate(per, || {
            black_box(list_post(l));
        }));
    }
    let (bare, posts) = (median(bare), median(posts));
    println!(
        "\nlist post, 4 KB from a p=reject author (verify, trust, policy, copy, ARC seal, DKIM sign):"
    );
    println!(
        "  bare RSA-2048 ceiling (three signatures per post) {:>8.0} posts/s",
        bare / 3.0
    );
    println!(
        "  arclist list stages                               {posts:>8.0} posts/s = {:.2} of the ceiling",
        posts / (bare / 3.0)
    );
}

fn main() {
    let f = fixture();
    let l = list_fixture();
    assert!(list_post(&l) > 0);
    let mut c = Criterion::default().configure_from_args();
    criterion_benches(&mut c, &f);
    c.bench_function("list_post/4KB", |b| b.iter(|| list_post(&l)));
    c.final_summary();
    ratio_table(&f);
    list_table(&f, &l);
}
