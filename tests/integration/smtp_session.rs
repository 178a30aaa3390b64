//! The SMTP and LMTP listener over real TCP.

use crate::smtp_support::{Client, LIST, TestServer, dot_stuffed, message};
use std::sync::Arc;
use tokio_rustls::rustls;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_session_gets_replies_in_order_and_dot_stuffing_round_trips() {
    let t = TestServer::start("").await;
    let (mut c, greeting) = Client::connect(t.smtp()).await;
    assert_eq!(greeting.0, 220);
    // EHLO, MAIL, three RCPTs and DATA in one write.
    c.send(
        format!(
            "EHLO client.arclist.test\r\nMAIL FROM:<a@author.arclist.test>\r\nRCPT TO:<{LIST}>\r\n\
             RCPT TO:<stranger@lists.arclist.test>\r\nRCPT TO:<members-owner@lists.arclist.test>\r\nDATA\r\n"
        )
        .as_bytes(),
    )
    .await;
    let (code, ehlo) = c.reply().await;
    assert_eq!(code, 250);
    for ext in [
        "PIPELINING",
        "SIZE",
        "8BITMIME",
        "SMTPUTF8",
        "ENHANCEDSTATUSCODES",
        "CHUNKING",
    ] {
        assert!(ehlo.contains(ext), "EHLO offers {ext}: {ehlo}");
    }
    assert!(
        !ehlo.contains("STARTTLS"),
        "no TLS configured, none offered"
    );
    assert_eq!(c.reply().await.0, 250, "MAIL");
    assert_eq!(c.reply().await.0, 250, "RCPT list");
    let refused = c.reply().await;
    assert_eq!(refused.0, 550, "RCPT stranger");
    assert!(refused.1.starts_with("5.1.1"));
    assert_eq!(c.reply().await.0, 250, "RCPT owner");
    assert_eq!(c.reply().await.0, 354, "DATA");
    let original = message("stuffing", 3000);
    c.send(&dot_stuffed(&original)).await;
    let (code, text) = c.reply().await;
    assert_eq!(code, 250, "{text}");
    assert!(text.starts_with("2.0.0 Ok: queued as "));
    assert_eq!(c.cmd("QUIT").await.0, 221);

    let spool = t.spool().await;
    assert_eq!(spool.len(), 1);
    let (meta, data) = &spool[0];
    assert_eq!(data, &original, "byte for byte, dots unstuffed");
    assert_eq!(meta.envelope.mail_from, "a@author.arclist.test");
    assert_eq!(
        meta.envelope.rcpt_to,
        vec![
            LIST.to_string(),
            "members-owner@lists.arclist.test".to_string()
        ]
    );
    assert_eq!(meta.envelope.helo, "client.arclist.test");
    assert_eq!(meta.envelope.protocol, "ESMTP");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_relay_unknown_recipients_and_size_limits() {
    let t = TestServer::start("[limits]\nmax_message_size = 10000\n").await;
    let (mut c, _) = Client::connect(t.smtp()).await;
    assert_eq!(c.cmd("EHLO c").await.0, 250);
    assert_eq!(c.cmd("MAIL FROM:<a@author.arclist.test>").await.0, 250);
    let (code, text) = c.cmd("RCPT TO:<victim@gmail.com>").await;
    assert_eq!((code, &text[..5]), (550, "5.1.1"), "never a relay");
    assert_eq!(
        c.cmd("DATA").await.0,
        554,
        "no valid recipients, no data phase"
    );
    assert_eq!(c.cmd("RSET").await.0, 250);
    // SIZE declared too large.
    let (code, text) = c.cmd("MAIL FROM:<a@author.arclist.test> SIZE=20000").await;
    assert_eq!((code, &text[..5]), (552, "5.3.4"));
    // Message actually too large.
    assert_eq!(c.cmd("MAIL FROM:<a@author.arclist.test>").await.0, 250);
    assert_eq!(c.cmd(&format!("RCPT TO:<{LIST}>")).await.0, 250);
    assert_eq!(c.cmd("DATA").await.0, 354);
    c.send(&dot_stuffed(&message("big", 50_000))).await;
    let (code, text) = c.reply().await;
    assert_eq!((code, &text[..5]), (552, "5.3.4"), "{text}");
    // The session goes on.
    assert_eq!(c.cmd("NOOP").await.0, 250);
    assert_eq!(c.cmd("MAIL FROM:<a@author.arclist.test>").await.0, 250);
    assert!(t.spool().await.is_empty(), "nothing stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bdat_chunks_are_stored_exactly() {
    let t = TestServer::start("").await;
    let (mut c, _) = Client::connect(t.smtp()).await;
    assert_eq!(c.cmd("EHLO c").await.0, 250);
    assert_eq!(
        c.cmd("MAIL FROM:<a@author.arclist.test> BODY=8BITMIME")
            .await
            .0,
        250
    );
    assert_eq!(c.cmd(&format!("RCPT TO:<{LIST}>")).await.0, 250);
    let original =
        b"From: a@author.arclist.test\r\nSubject: bdat\r\n\r\n.no stuffing in BDAT\r\n\xc3\xa9t\xc3\xa9\r\n.\r\nstill here\r\n"
            .to_vec();
    let (a, b) = original.split_at(20);
    c.send(format!("BDAT {}\r\n", a.len()).as_bytes()).await;
    c.send(a).await;
    let (code, text) = c.reply().await;
    assert_eq!(code, 250, "{text}");
    c.send(format!("BDAT {} LAST\r\n", b.len()).as_bytes())
        .await;
    c.send(b).await;
    let (code, text) = c.reply().await;
    assert_eq!(code, 250, "{text}");
    assert!(text.contains("queued as"));
    assert_eq!(t.spool().await[0].1, original);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_vanishes_mid_data_leaves_nothing() {
    let t = TestServer::start("").await;
    let (mut c, _) = Client::connect(t.smtp()).await;
    assert_eq!(c.cmd("EHLO c").await.0, 250);
    assert_eq!(c.cmd("MAIL FROM:<a@author.arclist.test>").await.0, 250);
    assert_eq!(c.cmd(&format!("RCPT TO:<{LIST}>")).await.0, 250);
    assert_eq!(c.cmd("DATA").await.0, 354);
    c.send(b"Subject: half\r\n\r\nonly half of the body").await;
    drop(c);
    // A new client is served, and the spool holds only its message.
    let (mut c, _) = Client::connect(t.smtp()).await;
    assert_eq!(c.cmd("EHLO c").await.0, 250);
    assert_eq!(c.cmd("MAIL FROM:<a@author.arclist.test>").await.0, 250);
    assert_eq!(c.cmd(&format!("RCPT TO:<{LIST}>")).await.0, 250);
    assert_eq!(c.cmd("DATA").await.0, 354);
    let whole = message("whole", 500);
    c.send(&dot_stuffed(&whole)).await;
    assert_eq!(c.reply().await.0, 250);
    let spool = t.spool().await;
    assert_eq!(spool.len(), 1);
    assert_eq!(spool[0].1, whole);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lmtp_answers_once_per_recipient() {
    let t = TestServer::start("").await;
    let (mut c, greeting) = Client::connect(t.lmtp()).await;
    assert!(greeting.1.contains("LMTP"));
    assert_eq!(c.cmd("EHLO c").await.0, 500, "LMTP wants LHLO");
    assert_eq!(c.cmd("LHLO postfix.arclist.test").await.0, 250);
    assert_eq!(c.cmd("MAIL FROM:<a@author.arclist.test>").await.0, 250);
    assert_eq!(c.cmd(&format!("RCPT TO:<{LIST}>")).await.0, 250);
    assert_eq!(
        c.cmd("RCPT TO:<members-request@lists.arclist.test>")
            .await
            .0,
        250
    );
    assert_eq!(c.cmd("DATA").await.0, 354);
    c.send(&dot_stuffed(&message("lmtp", 200))).await;
    assert_eq!(c.reply().await.0, 250);
    assert_eq!(
        c.reply().await.0,
        250,
        "a second reply for the second recipient"
    );
    assert_eq!(t.spool().await[0].0.envelope.protocol, "LMTP");
}

fn test_certificate(dir: &std::path::Path) -> rustls::pki_types::CertificateDer<'static> {
    let certified = rcgen::generate_simple_self_signed(vec!["mx.arclist.test".to_string()])
        .expect("certificate");
    std::fs::write(dir.join("cert.pem"), certified.cert.pem()).expect("cert");
    std::fs::write(dir.join("key.pem"), certified.signing_key.serialize_pem()).expect("key");
    certified.cert.der().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_upgrades_and_resets_the_session() {
    let certdir = tempfile::tempdir().expect("tempdir");
    let der = test_certificate(certdir.path());
    let extra = format!(
        "[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
        certdir.path().join("cert.pem").display(),
        certdir.path().join("key.pem").display()
    );
    let t = TestServer::start(&extra).await;
    let (mut c, _) = Client::connect(t.smtp()).await;
    let (_, ehlo) = c.cmd("EHLO c").await;
    assert!(ehlo.contains("STARTTLS"));
    // A command pipelined after STARTTLS in clear text must be dropped, not run.
    c.send(b"STARTTLS\r\nMAIL FROM:<injected@evil.test>\r\n")
        .await;
    assert_eq!(c.reply().await.0, 220);
    let mut roots = rustls::RootCertStore::empty();
    roots.add(der).expect("root");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("mx.arclist.test").expect("name");
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, c.into_inner())
        .await
        .expect("TLS handshake");
    let mut c = Client::new(tls);
    // The session starts over: MAIL needs a new EHLO (and the injected MAIL never ran).
    assert_eq!(c.cmd(&format!("RCPT TO:<{LIST}>")).await.0, 503);
    let (code, ehlo) = c.cmd("EHLO c").await;
    assert_eq!(code, 250);
    assert!(!ehlo.contains("STARTTLS"), "not offered twice");
    assert_eq!(c.cmd("MAIL FROM:<a@author.arclist.test>").await.0, 250);
    assert_eq!(c.cmd(&format!("RCPT TO:<{LIST}>")).await.0, 250);
    assert_eq!(c.cmd("DATA").await.0, 354);
    c.send(&dot_stuffed(&message("tls", 300))).await;
    assert_eq!(c.reply().await.0, 250);
    let (meta, _) = &t.spool().await[0];
    assert_eq!(meta.envelope.protocol, "ESMTPS");
    assert!(
        meta.envelope
            .tls
            .as_deref()
            .is_some_and(|t| t.contains("TLS")),
        "{:?}",
        meta.envelope.tls
    );
    assert_eq!(meta.envelope.mail_from, "a@author.arclist.test");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spooled_posts_are_authenticated_by_the_pipeline() {
    let t = TestServer::start("").await;
    t.dns
        .server
        .with_zone(|z| z.add_txt("author.arclist.test", "v=spf1 ip4:127.0.0.1 -all"));
    let (mut c, _) = Client::connect(t.smtp()).await;
    assert_eq!(c.cmd("EHLO client.arclist.test").await.0, 250);
    assert_eq!(c.cmd("MAIL FROM:<a@author.arclist.test>").await.0, 250);
    assert_eq!(c.cmd(&format!("RCPT TO:<{LIST}>")).await.0, 250);
    assert_eq!(c.cmd("DATA").await.0, 354);
    c.send(&dot_stuffed(&message("auth", 300))).await;
    assert_eq!(c.reply().await.0, 250);
    let mut results = None;
    for _ in 0..100 {
        if let Some(r) = t
            .spool()
            .await
            .first()
            .and_then(|(m, _)| m.auth_results.clone())
        {
            results = Some(r);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let results = results.expect("the pipeline recorded results");
    assert!(results.starts_with("mx.arclist.test;"), "{results}");
    assert!(
        results.contains("spf=pass smtp.mailfrom=author.arclist.test"),
        "{results}"
    );
    assert!(results.contains("arc=none"), "{results}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_clients_time_out_and_a_full_server_says_421() {
    let t = TestServer::start("[limits]\ncommand_timeout_secs = 1\nmax_connections = 2\n").await;
    let (mut a, greeting) = Client::connect(t.smtp()).await;
    assert_eq!(greeting.0, 220);
    let (_b, greeting) = Client::connect(t.smtp()).await;
    assert_eq!(greeting.0, 220);
    let (_, greeting) = Client::connect(t.smtp()).await;
    assert_eq!(
        greeting.0, 421,
        "third connection over max_connections=2: {}",
        greeting.1
    );
    assert!(greeting.1.starts_with("4.3.2"));
    // Say nothing for longer than the command timeout.
    let (code, text) = a.reply().await;
    assert_eq!((code, &text[..5]), (421, "4.4.2"), "{text}");
    // Its slot is free again.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (_, greeting) = Client::connect(t.smtp()).await;
    assert_eq!(greeting.0, 220);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_server_has_let_go_of_the_store_even_with_a_client_stuck_in_data() {
    let t = TestServer::start("[limits]\ndata_timeout_secs = 600\n").await;
    let (mut c, _) = Client::connect(t.smtp()).await;
    assert_eq!(c.cmd("EHLO stuck.arclist.test").await.0, 250);
    assert_eq!(c.cmd("MAIL FROM:<a@author.arclist.test>").await.0, 250);
    assert_eq!(c.cmd(&format!("RCPT TO:<{LIST}>")).await.0, 250);
    assert_eq!(c.cmd("DATA").await.0, 354);
    c.send(b"Subject: half a message\r\n\r\nand then nothing")
        .await;
    let TestServer { dir, server, dns } = t;
    // The grace runs out with the session still inside DATA; stop must end it anyway.
    server.stop(std::time::Duration::from_millis(300)).await;
    // The embedded file is free the moment stop returns (a shared database always is).
    let store = crate::smtp_support::open_store(dir.path()).await;
    assert!(
        store.list().await.expect("spool").is_empty(),
        "half a message was never stored"
    );
    // The client sees its connection closed, not a 250.
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        tokio::io::AsyncReadExt::read_to_end(&mut c.into_inner(), &mut rest),
    )
    .await;
    assert!(closed.is_ok(), "the connection was closed by the server");
    assert!(!String::from_utf8_lossy(&rest).contains("250"));
    drop(dns);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_gets_a_bounded_share_of_sessions_and_none_lasts_for_ever() {
    let t = TestServer::start("[limits]\nmax_connections_per_ip = 2\nmax_session_secs = 5\n").await;
    let (mut a, greeting) = Client::connect_from(t.smtp(), "127.0.0.77").await;
    assert_eq!(greeting.0, 220);
    let (b, greeting) = Client::connect_from(t.smtp(), "127.0.0.77").await;
    assert_eq!(greeting.0, 220);
    let (_, refused) = Client::connect_from(t.smtp(), "127.0.0.77").await;
    assert_eq!(refused.0, 421, "{}", refused.1);
    assert!(refused.1.contains("from your address"), "{}", refused.1);
    // Another address is not held up; a freed slot can be used again.
    let (_, other) = Client::connect_from(t.smtp(), "127.0.0.78").await;
    assert_eq!(other.0, 220);
    drop(b);
    let mut again = (0, String::new());
    for _ in 0..200 {
        again = Client::connect_from(t.smtp(), "127.0.0.77").await.1;
        if again.0 == 220 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(again.0, 220, "{}", again.1);
    // A busy session still ends when its lifetime is over.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (code, _) = a.cmd("NOOP").await;
        if code == 0 {
            break;
        }
        assert_eq!(code, 250);
        assert!(
            std::time::Instant::now() < deadline,
            "the session outlived max_session_secs"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
