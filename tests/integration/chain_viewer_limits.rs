//! The chain viewer against a hostile paster (#24): a paste is held to SMTP intake's header
//! limits, a check asks DNS at most its budget (per check and per client address a minute),
//! a missing name is asked once while its negative answer is cached, checks past the number
//! at once are told to come back while SMTP goes on greeting, and every request is logged.
//! All over real sockets: the admin listener, the loopback DNS server counting what it is
//! asked, an SMTP client.

use crate::smtp_support::{Client, TestServer};
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOKEN: &str = "viewer-limits-token-0123456789";

/// A server with the viewer on; `viewer` is the `[admin.viewer]` table's body.
async fn server(viewer: &str) -> TestServer {
    let admin = format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\ntoken_file = \"admin.token\"\nchain_viewer = true\n\
         [admin.viewer]\n{viewer}\n"
    );
    TestServer::start_prepared(&admin, "", |dir| {
        std::fs::write(dir.join("admin.token"), format!("{TOKEN}\n")).expect("token")
    })
    .await
}

/// An HTTP answer: status, head and body.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

/// `POST /arc` from `source` (an address on 127.0.0.0/8) with `message` in the form's field,
/// as a browser sends it.
async fn post_arc(addr: SocketAddr, source: &str, message: &[u8]) -> Answer {
    let mut body =
        b"--b0undary\r\nContent-Disposition: form-data; name=\"message\"\r\n\r\n".to_vec();
    body.extend_from_slice(message);
    body.extend_from_slice(b"\r\n--b0undary--\r\n");
    let head = format!(
        "POST /arc HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Content-Type: multipart/form-data; boundary=b0undary\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut request = head.into_bytes();
    request.extend_from_slice(&body);
    exchange(addr, source, &request).await
}

/// Sends `request` from `source` and reads the answer to the end.
async fn exchange(addr: SocketAddr, source: &str, request: &[u8]) -> Answer {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(format!("{source}:0").parse().expect("source"))
        .expect("bind");
    let mut s = socket.connect(addr).await.expect("connect");
    s.write_all(request).await.expect("write");
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply).await;
    let reply = String::from_utf8_lossy(&reply).into_owned();
    let (head, body) = reply.split_once("\r\n\r\n").unwrap_or((&reply, ""));
    Answer {
        status: head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        head: head.to_string(),
        body: body.to_string(),
    }
}

/// A message with `sets` complete ARC sets whose seal and message signature name keys under
/// `tag` (`s1.TAG`, `m1.TAG`, ...): a question per key, none of them published.
fn sealed_by_many(tag: &str, sets: u32) -> Vec<u8> {
    let mut m = String::new();
    for i in (1..=sets).rev() {
        m.push_str(&format!(
            "ARC-Seal: i={i}; a=rsa-sha256; cv={}; d=s{i}.{tag}; s=k; b=AAAA\r\n\
             ARC-Message-Signature: i={i}; a=rsa-sha256; c=relaxed/relaxed; d=m{i}.{tag}; s=k; h=from; bh=AAAA; b=AAAA\r\n\
             ARC-Authentication-Results: i={i}; mx.{tag}; spf=none\r\n",
            if i == 1 { "none" } else { "pass" }
        ));
    }
    m.push_str(&format!(
        "From: a@from.{tag}\r\nSubject: many sets\r\n\r\nbody\r\n"
    ));
    m.into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paste_over_smtps_header_field_limit_is_refused_and_names_the_limit() {
    let t = server("").await;
    let addr = t.server.admin_addr().expect("admin listener");
    let mut m = "X-Filler: field\r\n".repeat(1_001);
    m.push_str("From: a@a.test\r\n\r\nbody\r\n");
    let asked = t.dns.server.questions();
    let answer = post_arc(addr, "127.0.0.1", m.as_bytes()).await;
    assert_eq!(answer.status, 413, "{}\n{}", answer.head, answer.body);
    assert!(
        answer.body.contains("more than 1000 header fields")
            && answer.body.contains("max_header_fields"),
        "{}",
        answer.body
    );
    assert_eq!(t.dns.server.questions(), asked, "nothing was looked up");
    // At the limit it is checked.
    let mut m = "X-Filler: field\r\n".repeat(999);
    m.push_str("From: a@a.test\r\n\r\nbody\r\n");
    let answer = post_arc(addr, "127.0.0.1", m.as_bytes()).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.body.contains("arc=none"), "{}", answer.body);
    t.server.stop(std::time::Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_naming_missing_keys_cost_at_most_the_budgeted_queries() {
    let t = server("lookups_per_check = 10\nlookups_per_client_minute = 25\n").await;
    let addr = t.server.admin_addr().expect("admin listener");
    let before = t.dns.server.questions();
    // 50 sets name 100 keys under names the paster chose; the budget allows 10 of them.
    let answer = post_arc(addr, "127.0.0.1", &sealed_by_many("one.nokey.test", 50)).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(
        answer.body.contains("Lookup budget exhausted"),
        "{}",
        answer.body
    );
    // The keys that were asked for do not exist: that alone fails the chain.
    assert!(answer.body.contains("arc=fail"), "{}", answer.body);
    let first = t.dns.server.questions() - before;
    assert!(first <= 10, "{first} questions for one check");
    // The client's minute allows 25: two more checks ask at most 15 between them.
    for tag in ["two.nokey.test", "three.nokey.test"] {
        let answer = post_arc(addr, "127.0.0.1", &sealed_by_many(tag, 50)).await;
        assert!(answer.body.contains("Lookup budget exhausted"));
    }
    let all = t.dns.server.questions() - before;
    assert!(all <= 25, "{all} questions in a minute from one client");
    // Another client has a minute of its own.
    let answer = post_arc(addr, "127.0.0.2", &sealed_by_many("four.nokey.test", 50)).await;
    assert!(answer.body.contains("Lookup budget exhausted"));
    assert!(t.dns.server.questions() - before > all);
    t.server.stop(std::time::Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_name_is_asked_once_while_its_negative_answer_is_cached() {
    let t = server("").await;
    let addr = t.server.admin_addr().expect("admin listener");
    let m = b"DKIM-Signature: v=1; a=rsa-sha256; d=gone.test; s=sel; h=from; bh=AAAA; b=AAAA\r\n\
              From: a@gone.test\r\n\r\nbody\r\n";
    for _ in 0..3 {
        let answer = post_arc(addr, "127.0.0.1", m).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert!(answer.body.contains("no key at"), "{}", answer.body);
    }
    assert_eq!(t.dns.server.asked("sel._domainkey.gone.test"), 1);
    assert_eq!(t.dns.server.asked("_dmarc.gone.test"), 1);
    t.server.stop(std::time::Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_past_the_number_at_once_get_503_and_smtp_still_greets() {
    let t = server("checks_at_once = 2\ndns_secs = 20\n").await;
    let addr = t.server.admin_addr().expect("admin listener");
    // Every key the pastes name never answers, and each paste is as large as intake takes:
    // a check holds its place until its DNS time runs out.
    let tag = "hang.nokey.test";
    for i in 1..=50 {
        t.dns.server.hang(&format!("k._domainkey.s{i}.{tag}"));
        t.dns.server.hang(&format!("k._domainkey.m{i}.{tag}"));
    }
    let mut heavy = "X-Filler: ".to_string() + &"f".repeat(200) + "\r\n";
    heavy = heavy.repeat(800);
    heavy.push_str(&String::from_utf8_lossy(&sealed_by_many(tag, 50)));
    // 64 requests, 16 from each of four addresses (the per-address connection limit): what
    // used to hold every connection of the admin listener for as long as DNS took.
    let mut requests = tokio::task::JoinSet::new();
    for n in 0..64 {
        let source = format!("127.0.0.{}", 1 + n % 4);
        let message = heavy.clone().into_bytes();
        requests.spawn(async move { post_arc(addr, &source, &message).await });
    }
    // SMTP greets meanwhile (a generous bound: a stalled runtime took seconds).
    let greeting = tokio::time::timeout(
        std::time::Duration::from_secs(15),
        Client::connect(t.smtp()),
    )
    .await
    .expect("the SMTP greeting arrives while the viewer is busy");
    assert_eq!(greeting.1.0, 220);
    let mut busy = 0;
    let mut checked = 0;
    while let Some(answer) = requests.join_next().await {
        let answer = answer.expect("request task");
        match answer.status {
            503 => {
                assert!(
                    answer.head.to_ascii_lowercase().contains("retry-after: 5"),
                    "{}",
                    answer.head
                );
                busy += 1;
            }
            200 => checked += 1,
            other => panic!("unexpected {other}: {}", answer.body),
        }
    }
    assert_eq!(busy + checked, 64);
    // A check holds its place while its keys time out; requests arriving meanwhile are told
    // to come back (the bound allows for a slow machine spreading their arrival).
    assert!(busy >= 32, "{busy} told to come back, {checked} checked");
    assert!(checked >= 1, "{busy} told to come back, {checked} checked");
    // The listener still answers its operator.
    let metrics = exchange(
        addr,
        "127.0.0.5",
        format!(
            "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(metrics.status, 200);
    t.server.stop(std::time::Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_viewer_request_is_logged_with_client_size_and_outcome() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dns = crate::support::Dns::start(arclist::auth::dns::Zone::new()).await;
    let smtp = crate::smtp_support::private_listen_addr();
    let admin = crate::smtp_support::private_listen_addr();
    crate::smtp_support::write_config(
        dir.path(),
        &dns.addr(),
        &smtp.to_string(),
        &format!(
            "[admin]\nlisten = \"{admin}\"\ntoken_file = \"admin.token\"\nchain_viewer = true\n"
        ),
    );
    crate::support::write_token(&dir.path().join("admin.token"), &format!("{TOKEN}\n"));
    let server = crate::server_process::ServerProcess::start(dir.path(), smtp);
    crate::smtp_support::until("the admin listener answers", async || {
        std::net::TcpStream::connect(admin).is_ok()
    })
    .await;
    let m = b"From: a@logged.test\r\nSubject: hi\r\n\r\nbody\r\n";
    assert_eq!(post_arc(admin, "127.0.0.1", m).await.status, 200);
    let mut big = "X-Filler: field\r\n".repeat(1_001);
    big.push_str("\r\nbody\r\n");
    assert_eq!(
        post_arc(admin, "127.0.0.1", big.as_bytes()).await.status,
        413
    );
    crate::smtp_support::until("both requests are logged", async || {
        server.log_count("chain viewer request") >= 2
    })
    .await;
    assert_eq!(
        server.log_count("\"outcome\":\"arc=none\""),
        1,
        "the checked one, with its verdict"
    );
    assert_eq!(
        server.log_count("\"outcome\":\"refused: more than 1000 header fields\""),
        1,
        "the refused one, with the limit"
    );
    assert_eq!(server.log_count("\"client\":\"127.0.0.1\""), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_viewer_says_whether_a_message_is_bimi_eligible() {
    let t = server("").await;
    let addr = t.server.admin_addr().expect("admin listener");
    let keys = tempfile::tempdir().expect("keys");
    let (key, _) = crate::support::rsa_key(keys.path(), "brand");
    for (domain, policy) in [("brand.test", "reject"), ("soft.test", "none")] {
        t.dns.publish_key("k", domain, &key);
        t.dns.server.with_zone(|z| {
            z.add_txt(
                &format!("_dmarc.{domain}"),
                &format!("v=DMARC1; p={policy}"),
            )
        });
    }
    let signed = |domain: &str| {
        let message = format!(
            "From: News <news@{domain}>\r\nTo: a@example.org\r\nSubject: logo\r\n\
             Date: Sun, 06 Dec 2026 10:00:00 +0000\r\nMessage-ID: <logo@{domain}>\r\n\r\nHello.\r\n"
        );
        let sig = arclist::auth::dkim::DkimSigner::new(key.clone(), domain, "k")
            .sign(message.as_bytes(), arclist::auth::unix_now())
            .expect("sign");
        [sig.as_bytes(), message.as_bytes()].concat()
    };
    let page = post_arc(addr, "127.0.0.51", &signed("brand.test")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains(
            "BIMI-eligible: DMARC passes for brand.test and its policy (reject) is at enforcement."
        ),
        "{}",
        page.body
    );
    let page = post_arc(addr, "127.0.0.51", &signed("soft.test")).await;
    assert!(
        page.body
            .contains("Not BIMI-eligible: DMARC passes, but the record at soft.test has p=none."),
        "{}",
        page.body
    );
}
