//! Delivery over real sockets: a smarthost with SMTPS or STARTTLS and AUTH, certificate checks
//! that stop the password from going to the wrong host, pipelined transactions, connections
//! kept for the next post, and the per-destination connection limit.

use crate::smtp_support::{Client, LIST, TestServer};
use arclist::auth::dns::{Mx, ZoneRecord};
use arclist::state::store::{DeliveryState, SpoolState};
use arclist_testbed::sink::{Sink, SinkOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// A CA, and a certificate it issued for `name`, written under `dir`. Returns the CA file and
/// an acceptor serving the certificate.
fn ca_and_certificate(dir: &Path, name: &str) -> (PathBuf, tokio_rustls::TlsAcceptor) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).expect("ca cert");
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().expect("leaf key");
    let leaf = CertificateParams::new(vec![name.to_string()])
        .expect("leaf params")
        .signed_by(&leaf_key, &issuer)
        .expect("leaf cert");
    let ca = dir.join(format!("{name}-ca.pem"));
    std::fs::write(&ca, ca_cert.pem()).expect("ca file");
    std::fs::write(dir.join(format!("{name}.pem")), leaf.pem()).expect("cert");
    std::fs::write(dir.join(format!("{name}.key")), leaf_key.serialize_pem()).expect("key");
    let acceptor = arclist::stages::smtp::tls::acceptor(
        &dir.join(format!("{name}.pem")),
        &dir.join(format!("{name}.key")),
    )
    .expect("acceptor");
    (ca, acceptor)
}

async fn post(t: &TestServer, subject: &str) -> u64 {
    post_body(t, subject, "Hello.\r\n").await
}

/// [`post`] with `body` as the post's body.
async fn post_body(t: &TestServer, subject: &str, body: &str) -> u64 {
    let (mut c, _) = Client::connect(t.smtp()).await;
    assert_eq!(c.cmd("EHLO poster.test").await.0, 250);
    let message = format!(
        "From: poster@poster.test\r\nTo: {LIST}\r\nSubject: {subject}\r\nMessage-ID: <{subject}@poster.test>\r\n\r\n{body}"
    );
    let (code, text) = c.post("poster@poster.test", LIST, message.as_bytes()).await;
    assert_eq!(code, 250, "{text}");
    let id = text
        .trim()
        .rsplit(' ')
        .next()
        .and_then(|id| id.parse().ok())
        .expect("queue id");
    assert_eq!(t.settled(id).await.state, SpoolState::Queued);
    id
}

/// Waits until every recipient of `id` has been tried, and returns the records.
async fn attempted(t: &TestServer, id: u64) -> Vec<arclist::state::store::Delivery> {
    // 20 s, as `until` waits: a loaded CI machine fans out 120 members twice here.
    for _ in 0..800 {
        let all = t.server.store().outcomes(id).await.expect("deliveries");
        if !all.is_empty() && all.iter().all(|d| d.attempts > 0) {
            return all;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("not every recipient of {id} was tried");
}

/// A server with an open list whose mail for `fan.test` goes to the sink at `addr`, with
/// `delivery` added to its `[delivery]` section.
async fn fan_server(addr: std::net::SocketAddr, delivery: &str) -> TestServer {
    let t = TestServer::start_with_list(
        &format!(
            "[delivery]\nport = {}\ntimeout_secs = 2\n{delivery}",
            addr.port()
        ),
        "non_member_action = \"accept\"",
    )
    .await;
    t.dns.server.with_zone(|z| {
        z.add(
            "fan.test",
            ZoneRecord::Mx(Mx {
                preference: 10,
                exchange: "mx.fan.test".into(),
            }),
        );
        z.add(
            "mx.fan.test",
            ZoneRecord::A("127.0.0.1".parse().expect("ip")),
        );
    });
    t.publish_list_key();
    t
}

/// A server whose mail all goes to a smarthost named `smarthost.test`, listening as `sink`.
async fn via_smarthost(port: u16, tls: &str, ca: &Path, password_file: &Path) -> TestServer {
    let t = TestServer::start_with_list(
        &format!(
            "[delivery]\nsmarthost = \"smarthost.test:{port}\"\nsmarthost_tls = \"{tls}\"\n\
             smarthost_ca = \"{}\"\nsmarthost_user = \"lists\"\nsmarthost_password_file = \"{}\"\ntimeout_secs = 2\n",
            ca.display(),
            password_file.display()
        ),
        "non_member_action = \"accept\"",
    )
    .await;
    t.dns.server.with_zone(|z| {
        z.add(
            "smarthost.test",
            ZoneRecord::A("127.0.0.1".parse().expect("ip")),
        );
    });
    t.publish_list_key();
    for member in ["ann@one.test", "ben@two.test"] {
        t.add_member(member).await;
    }
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_smarthost_gets_the_password_only_over_tls_it_can_verify() {
    let dir = tempfile::tempdir().expect("tempdir");
    let password = dir.path().join("smarthost.password");
    std::fs::write(&password, "s3cret\n").expect("password file");
    let (ca, acceptor) = ca_and_certificate(dir.path(), "smarthost.test");
    let credentials = Some(("lists".to_string(), "s3cret".to_string()));

    // SMTPS (implicit TLS) with AUTH: both members' copies go through, authenticated.
    let (smtps, addr) = Sink::start_opts(SinkOptions {
        implicit_tls: Some(acceptor.clone()),
        auth: credentials.clone(),
        ..Default::default()
    })
    .await;
    let t = via_smarthost(addr.port(), "implicit", &ca, &password).await;
    let id = post(&t, "smtps").await;
    for d in attempted(&t, id).await {
        assert_eq!(d.state, DeliveryState::Delivered, "{d:?}");
    }
    assert_eq!(smtps.inbox("ann@one.test").len(), 1);
    assert_eq!(smtps.inbox("ben@two.test").len(), 1);
    let logins = smtps.authenticated.lock().expect("lock").clone();
    assert!(
        !logins.is_empty() && logins.iter().all(|u| u == "lists"),
        "{logins:?}"
    );
    t.server.stop(Duration::from_secs(5)).await;

    // STARTTLS on a submission port, same checks.
    let (submission, addr) = Sink::start_opts(SinkOptions {
        starttls: Some(acceptor.clone()),
        auth: credentials.clone(),
        ..Default::default()
    })
    .await;
    let t = via_smarthost(addr.port(), "starttls", &ca, &password).await;
    let id = post(&t, "starttls").await;
    for d in attempted(&t, id).await {
        assert_eq!(d.state, DeliveryState::Delivered, "{d:?}");
    }
    assert_eq!(submission.over_tls.load(Ordering::Relaxed), 2);
    assert!(!submission.authenticated.lock().expect("lock").is_empty());
    t.server.stop(Duration::from_secs(5)).await;

    // A certificate from a CA we were not told to trust (an impostor): nothing is sent, the
    // password included, and the mail waits.
    let other = tempfile::tempdir().expect("tempdir");
    let (_, impostor_tls) = ca_and_certificate(other.path(), "smarthost.test");
    let (impostor, addr) = Sink::start_opts(SinkOptions {
        implicit_tls: Some(impostor_tls),
        auth: credentials.clone(),
        ..Default::default()
    })
    .await;
    let t = via_smarthost(addr.port(), "implicit", &ca, &password).await;
    let id = post(&t, "impostor").await;
    for d in attempted(&t, id).await {
        assert_eq!(d.state, DeliveryState::Deferred, "{d:?}");
        assert!(d.last_reply.contains("TLS handshake failed"), "{d:?}");
    }
    assert!(impostor.authenticated.lock().expect("lock").is_empty());
    assert!(impostor.received.lock().expect("lock").is_empty());
    t.server.stop(Duration::from_secs(5)).await;

    // STARTTLS required but not offered (stripped by an attacker, say): no plain-text fallback.
    let (stripped, addr) = Sink::start_opts(SinkOptions {
        auth: credentials,
        ..Default::default()
    })
    .await;
    let t = via_smarthost(addr.port(), "starttls", &ca, &password).await;
    let id = post(&t, "stripped").await;
    for d in attempted(&t, id).await {
        assert_eq!(d.state, DeliveryState::Deferred, "{d:?}");
        assert!(d.last_reply.contains("STARTTLS is required"), "{d:?}");
    }
    assert!(stripped.received.lock().expect("lock").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smarthost_auth_without_tls_is_a_config_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    crate::smtp_support::write_config(
        dir.path(),
        "127.0.0.1:53",
        "127.0.0.1:0",
        "[delivery]\nsmarthost = \"relay.test:587\"\nsmarthost_user = \"lists\"\nsmarthost_password_file = \"pw\"\n",
    );
    let err = arclist::base::config::Config::load(Some(&dir.path().join("server.toml")))
        .expect_err("refused");
    assert!(
        err.to_string().contains("smarthost_tls") && err.to_string().contains("server.toml"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_share_pipelined_connections_within_the_destination_limit() {
    let (sink, addr) = Sink::start().await;
    let t = fan_server(addr, "per_destination = 3\nconnection_reuse_secs = 30\n").await;
    const MEMBERS: usize = 120;
    for i in 0..MEMBERS {
        t.add_member(&format!("m{i}@fan.test")).await;
    }
    let first = post(&t, "first").await;
    for d in attempted(&t, first).await {
        assert_eq!(d.state, DeliveryState::Delivered, "{d:?}");
    }
    // Three connections' worth of work; how many overlap depends on scheduling, but never
    // more than the limit.
    let peak = sink.peak.load(Ordering::Relaxed);
    assert!(
        (1..=3).contains(&peak),
        "never more than 3 connections at once: {peak}"
    );
    let opened = sink.connections.load(Ordering::Relaxed);
    let second = post(&t, "second").await;
    for d in attempted(&t, second).await {
        assert_eq!(d.state, DeliveryState::Delivered, "{d:?}");
    }
    // The second post's three shares find the first post's connections idle in the pool
    // (each share opens one only when none is idle).
    let new = sink.connections.load(Ordering::Relaxed) - opened;
    assert!(
        new < 3,
        "the second post reused connections the first left open ({new} new)"
    );
    assert_eq!(
        sink.messages.load(Ordering::Relaxed),
        2 * MEMBERS,
        "VERP: one transaction each"
    );
    assert!(
        sink.pipelined.load(Ordering::Relaxed) >= MEMBERS,
        "MAIL, RCPT and DATA went out together: {}",
        sink.pipelined.load(Ordering::Relaxed)
    );
    // Each connection's next envelope went out behind the data before it, not after its
    // reply: one round trip a member, not two.
    assert!(
        sink.behind_data.load(Ordering::Relaxed) >= MEMBERS,
        "the next MAIL, RCPT and DATA went out with the data before them: {}",
        sink.behind_data.load(Ordering::Relaxed)
    );
    for i in 0..MEMBERS {
        assert_eq!(sink.inbox(&format!("m{i}@fan.test")).len(), 2);
    }
}

/// To a server that offers CHUNKING, members' transactions go in groups with BDAT (RFC 3030):
/// whole transactions in one write, each after RSET, so a member refused in the middle of a
/// group is refused alone (550 bounced, 450 deferred) and every other member gets the post
/// once, byte for byte (BDAT carries no dot-stuffing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn to_a_chunking_server_members_go_in_bdat_groups_and_a_refusal_stays_alone() {
    let (sink, addr) = Sink::start().await;
    bdat_groups(sink, addr).await;
}

/// The same over STARTTLS: a group's commands and copies are written into the TLS stream
/// from where they are (a list of buffers), and arrive whole and in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bdat_groups_arrive_whole_over_starttls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, acceptor) = ca_and_certificate(dir.path(), "mx.fan.test");
    let (sink, addr) = Sink::start_with(Some(acceptor)).await;
    let over_tls = sink.over_tls.clone();
    let delivered = bdat_groups(sink, addr).await;
    assert_eq!(over_tls.load(Ordering::Relaxed), delivered, "all over TLS");
}

/// 60 members of one destination offering CHUNKING, one refused for good and one for now:
/// the others' copies go in BDAT groups, each received once as it was. Returns how many were
/// delivered.
async fn bdat_groups(sink: Sink, addr: std::net::SocketAddr) -> usize {
    sink.chunking.store(true, Ordering::Relaxed);
    sink.refuse("m7@fan.test", "550 5.1.1 no such user");
    sink.refuse("m8@fan.test", "450 4.2.1 try later");
    let t = fan_server(addr, "per_destination = 2\n").await;
    const MEMBERS: usize = 60;
    for i in 0..MEMBERS {
        t.add_member(&format!("m{i}@fan.test")).await;
    }
    let id = post_body(&t, "chunks", "A line:\r\n.starts with a dot\r\n").await;
    for d in attempted(&t, id).await {
        let want = match d.address.as_str() {
            "m7@fan.test" => DeliveryState::Bounced,
            "m8@fan.test" => DeliveryState::Deferred,
            _ => DeliveryState::Delivered,
        };
        assert_eq!(d.state, want, "{d:?}");
    }
    assert_eq!(sink.messages.load(Ordering::Relaxed), MEMBERS - 2);
    assert_eq!(
        sink.chunked.load(Ordering::Relaxed),
        MEMBERS - 2,
        "all with BDAT"
    );
    assert!(
        sink.behind_data.load(Ordering::Relaxed) >= MEMBERS / 4,
        "transactions arrived in groups, each message's end with the next one behind it: {}",
        sink.behind_data.load(Ordering::Relaxed)
    );
    for i in (0..MEMBERS).filter(|i| *i != 7 && *i != 8) {
        let inbox = sink.inbox(&format!("m{i}@fan.test"));
        assert_eq!(inbox.len(), 1, "m{i} got the post once");
        let body = String::from_utf8_lossy(&inbox[0]);
        assert!(body.contains("\r\n.starts with a dot\r\n"), "{body}");
        assert!(
            !body.contains("..starts"),
            "no dot-stuffing in BDAT: {body}"
        );
    }
    MEMBERS - 2
}

/// A large list is delivered a round of `recipients_per_round` at a time (so a million members
/// are never held in memory at once); rounds after the first go on from where the previous one
/// ended, so nobody is sent the post twice or skipped, and a recipient deferred in an early
/// round waits for its retry instead of being tried again by a later round of the same pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_post_goes_out_a_round_at_a_time_each_member_once() {
    let (sink, addr) = Sink::start().await;
    let t = fan_server(addr, "recipients_per_round = 7\n").await;
    const MEMBERS: usize = 40;
    for i in 0..MEMBERS {
        t.add_member(&format!("m{i}@fan.test")).await;
    }
    // In the first, a middle and the last round (addresses sort as text: m0, m1, m10, ...).
    sink.refuse("m1@fan.test", "550 5.1.1 no such user");
    sink.refuse("m24@fan.test", "450 4.2.1 try later");
    sink.refuse("m9@fan.test", "450 4.2.1 try later");
    let id = post(&t, "rounds").await;
    let now = arclist::auth::unix_now();
    let records = attempted(&t, id).await;
    assert_eq!(records.len(), MEMBERS);
    for d in &records {
        assert_eq!(d.attempts, 1, "tried once in this pass: {d:?}");
        let want = match d.address.as_str() {
            "m1@fan.test" => DeliveryState::Bounced,
            "m24@fan.test" | "m9@fan.test" => DeliveryState::Deferred,
            _ => DeliveryState::Delivered,
        };
        assert_eq!(d.state, want, "{d:?}");
        if want == DeliveryState::Deferred {
            assert!(d.next_attempt >= now + 60, "waits for its retry: {d:?}");
        }
    }
    for i in 0..MEMBERS {
        let a = format!("m{i}@fan.test");
        let want =
            usize::from(!["m1@fan.test", "m24@fan.test", "m9@fan.test"].contains(&a.as_str()));
        assert_eq!(sink.inbox(&a).len(), want, "{a}");
    }
    // Settled once the last round is recorded: two wait for their retry, nobody is pending.
    let mut head = None;
    for _ in 0..200 {
        head = t
            .server
            .store()
            .active()
            .await
            .expect("active")
            .into_iter()
            .find(|h| h.id == id);
        if head.as_ref().is_some_and(|h| h.pending == 0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let head = head.expect("the post waits in the hot queue for its deferred recipients");
    assert_eq!((head.pending, head.deferred), (0, 2), "{head:?}");
    assert!(head.next_due >= now + 60, "{head:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_destination_does_not_hold_up_newer_posts() {
    // Two receivers on one port at two loopback addresses: slow.test never answers, fast.test
    // does at once.
    let port = std::net::TcpListener::bind("127.0.0.3:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let (slow, _) = Sink::start_on(
        format!("127.0.0.2:{port}").parse().expect("addr"),
        SinkOptions::default(),
    )
    .await;
    slow.silent.store(true, Ordering::Relaxed);
    let (fast, _) = Sink::start_on(
        format!("127.0.0.3:{port}").parse().expect("addr"),
        SinkOptions::default(),
    )
    .await;
    let t = TestServer::start_with_list(
        &format!("[delivery]\nport = {port}\ntimeout_secs = 30\n"),
        "non_member_action = \"accept\"",
    )
    .await;
    t.dns.server.with_zone(|z| {
        for (domain, ip) in [("slow.test", "127.0.0.2"), ("fast.test", "127.0.0.3")] {
            z.add(
                domain,
                ZoneRecord::Mx(Mx {
                    preference: 10,
                    exchange: format!("mx.{domain}"),
                }),
            );
            z.add(
                &format!("mx.{domain}"),
                ZoneRecord::A(ip.parse().expect("ip")),
            );
        }
    });
    t.publish_list_key();
    t.add_member("ann@slow.test").await;
    let first = post(&t, "first").await;
    // Once the first post is stuck at slow.test, a member joins at fast.test and a second
    // post arrives.
    for _ in 0..1000 {
        if slow.connections.load(Ordering::Relaxed) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        slow.connections.load(Ordering::Relaxed) > 0,
        "the first post reached slow.test"
    );
    t.add_member("bob@fast.test").await;
    let _second = post(&t, "second").await;
    for _ in 0..2000 {
        if !fast.inbox("bob@fast.test").is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        fast.inbox("bob@fast.test").len(),
        1,
        "the second post arrived"
    );
    let stuck = t.server.store().outcomes(first).await.expect("deliveries");
    assert!(
        stuck.iter().all(|d| d.attempts == 0),
        "while the first post's attempt at slow.test was still waiting: {stuck:?}"
    );
}

/// `[delivery] bind_address`: mail leaves from the address named, which the receiving server
/// sees as its peer (127.0.0.2, one of this host's loopback addresses).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_leaves_from_the_bind_address() {
    let (sink, addr) = Sink::start().await;
    let t = TestServer::start_with_list(
        &format!(
            "[delivery]\nport = {}\ntimeout_secs = 2\nbind_address = \"127.0.0.2\"\n",
            addr.port()
        ),
        "non_member_action = \"accept\"",
    )
    .await;
    t.dns.server.with_zone(|z| {
        z.add(
            "bound.test",
            ZoneRecord::A("127.0.0.1".parse().expect("ip")),
        );
    });
    t.publish_list_key();
    t.add_member("ann@bound.test").await;
    let id = post(&t, "bound").await;
    for d in attempted(&t, id).await {
        assert_eq!(d.state, DeliveryState::Delivered, "{d:?}");
    }
    let peers = sink.peers.lock().expect("peers").clone();
    let from: std::net::IpAddr = "127.0.0.2".parse().expect("ip");
    assert!(
        !peers.is_empty() && peers.iter().all(|p| *p == from),
        "every connection from 127.0.0.2: {peers:?}"
    );
}
