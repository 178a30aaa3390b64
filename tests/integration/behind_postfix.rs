//! Behind a relay (Postfix): XFORWARD and XCLIENT from `trusted_relays` make SPF and the sealed
//! ARC-Authentication-Results judge the author's server, not the relay; from anyone else the
//! commands are refused.

use crate::list_pipeline::{World, post, world_prepared};
use crate::smtp_support::{Client, LIST};
use arclist::state::store::SpoolState;

/// A world whose server trusts 127.0.0.1 as a relay, with a p=reject domain whose SPF names
/// 127.0.0.9 only, and a member there.
async fn behind_a_relay() -> World {
    let w = world_prepared("", "", None, |dir| {
        let file = dir.join("server.toml");
        let text = std::fs::read_to_string(&file).expect("server.toml");
        // A top-level key, so before the first table.
        std::fs::write(&file, format!("trusted_relays = [\"127.0.0.1\"]\n{text}")).expect("write");
    })
    .await;
    w.t.dns.server.with_zone(|z| {
        z.add_txt("far.test", "v=spf1 ip4:127.0.0.9 -all");
        z.add_txt("_dmarc.far.test", "v=DMARC1; p=reject");
    });
    w.t.add_member("ann@far.test").await;
    w
}

/// Sends Ann's post from `source` after `before` (XFORWARD or XCLIENT lines, each with the
/// reply expected); returns the spool id when accepted.
async fn send(w: &World, source: &str, before: &[(&str, u16)]) -> Option<u64> {
    let (mut c, _) = Client::connect_from(w.t.smtp(), source).await;
    assert_eq!(c.cmd("EHLO relay.local").await.0, 250);
    for (line, code) in before {
        assert_eq!(c.cmd(line).await.0, *code, "{line}");
        if line.to_ascii_uppercase().starts_with("XCLIENT") && *code == 220 {
            assert_eq!(c.cmd("EHLO mx.far.test").await.0, 250);
        }
    }
    let (code, text) = c
        .post(
            "ann@far.test",
            LIST,
            &post("Ann <ann@far.test>", "Via the relay", "Hi.\r\n"),
        )
        .await;
    (code == 250)
        .then(|| text.trim().rsplit(' ').next()?.parse().ok())
        .flatten()
}

/// The list's own ARC-Authentication-Results on the signed copy of post `id`.
async fn sealed_results(w: &World, id: u64) -> String {
    let meta = w.t.settled(id).await;
    assert_eq!(meta.state, SpoolState::Queued, "{:?}", meta.note);
    let (_, copy) =
        w.t.server
            .store()
            .queued(id)
            .await
            .expect("queue")
            .expect("queued");
    let copy = String::from_utf8_lossy(&copy).into_owned();
    let start = copy
        .find("ARC-Authentication-Results: i=1;")
        .expect("the list's AAR");
    let end = copy[start..].find("\r\n").map_or(copy.len(), |e| start + e);
    let mut value = copy[start..end].to_string();
    for cont in copy[end..]
        .split("\r\n")
        .skip(1)
        .take_while(|l| l.starts_with([' ', '\t']))
    {
        value.push_str(cont);
    }
    value
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xforward_and_xclient_from_a_trusted_relay_name_the_real_client() {
    let w = behind_a_relay().await;
    let xforward = "XFORWARD NAME=mx.far.test ADDR=127.0.0.9 PROTO=ESMTP HELO=mx.far.test";
    let id = send(&w, "127.0.0.1", &[(xforward, 250)])
        .await
        .expect("accepted");
    let aar = sealed_results(&w, id).await;
    assert!(
        aar.contains("spf=pass") && aar.contains("smtp.remote-ip=127.0.0.9"),
        "{aar}"
    );
    let xclient = "XCLIENT ADDR=127.0.0.9 HELO=mx.far.test NAME=[UNAVAILABLE]";
    let id = send(&w, "127.0.0.1", &[(xclient, 220)])
        .await
        .expect("accepted");
    let aar = sealed_results(&w, id).await;
    assert!(
        aar.contains("spf=pass") && aar.contains("smtp.remote-ip=127.0.0.9"),
        "{aar}"
    );
    // After XCLIENT the session speaks for that client, which may not name another.
    let (mut c, _) = Client::connect_from(w.t.smtp(), "127.0.0.1").await;
    assert_eq!(c.cmd("EHLO relay.local").await.0, 250);
    assert_eq!(c.cmd("XCLIENT ADDR=127.0.0.9").await.0, 220);
    let (code, ehlo) = c.cmd("EHLO mx.far.test").await;
    assert!(code == 250 && !ehlo.contains("XCLIENT"), "{ehlo}");
    assert_eq!(c.cmd("XCLIENT ADDR=127.0.0.21").await.0, 550);
    assert_eq!(c.cmd("XFORWARD ADDR=127.0.0.21").await.0, 550);
    drop(c);
    // Without them, the relay's own address is judged: SPF fails and p=reject refuses.
    let id = send(&w, "127.0.0.1", &[]).await.expect("accepted");
    assert_eq!(w.t.settled(id).await.state, SpoolState::Rejected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anyone_else_is_refused_the_commands_and_judged_by_their_own_address() {
    let w = behind_a_relay().await;
    let (mut c, _) = Client::connect_from(w.t.smtp(), "127.0.0.5").await;
    let (code, ehlo) = c.cmd("EHLO pretender.test").await;
    assert_eq!(code, 250);
    assert!(
        !ehlo.contains("XFORWARD") && !ehlo.contains("XCLIENT"),
        "{ehlo}"
    );
    drop(c);
    let xforward = "XFORWARD ADDR=127.0.0.9 HELO=mx.far.test";
    let id = send(
        &w,
        "127.0.0.5",
        &[(xforward, 500), ("XCLIENT ADDR=127.0.0.9", 500)],
    )
    .await
    .expect("the post itself is accepted");
    assert_eq!(
        w.t.settled(id).await.state,
        SpoolState::Rejected,
        "judged as 127.0.0.5"
    );
}

/// Runs benches/postfix-instance.sh (Debian's postfix, a private instance).
fn postfix(args: &[&str], extra: &str) -> std::process::Output {
    std::process::Command::new("bash")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/benches/postfix-instance.sh"
        ))
        .args(args)
        .env("POSTFIX_EXTRA", extra)
        .output()
        .expect("bash runs")
}

/// Stops the private Postfix in its folder and on its port when dropped.
struct StopPostfix(String, String);

impl Drop for StopPostfix {
    fn drop(&mut self) {
        let stopped = postfix(&["stop", &self.0, &self.1], "");
        if !stopped.status.success() {
            eprintln!("postfix stop: {}", String::from_utf8_lossy(&stopped.stderr));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_postfix_in_front_forwards_its_client_over_lmtp() {
    assert!(
        std::path::Path::new("/usr/sbin/postfix").exists(),
        "Debian's postfix is needed: tests/interop/install.sh installs it"
    );
    let w = behind_a_relay().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let port = crate::postgres::free_port();
    let transport = dir.path().join("transport");
    std::fs::write(
        &transport,
        format!(
            "lists.arclist.test lmtp:inet:[127.0.0.1]:{}\n",
            w.t.lmtp().port()
        ),
    )
    .expect("transport map");
    let pf = dir.path().join("postfix");
    let (pf, port, map) = (
        pf.to_string_lossy(),
        port.to_string(),
        transport.to_string_lossy(),
    );
    let extra = "lmtp_send_xforward_command = yes\nsmtpd_peername_lookup = no";
    let started = postfix(&["start", &pf, &port, &map], extra);
    // Stopped however the test ends: a Postfix left running outlives the test run (and its
    // folder, which the tempdir removes).
    let _stop = StopPostfix(pf.to_string(), port.clone());
    assert!(
        started.status.success(),
        "postfix: {}",
        String::from_utf8_lossy(&started.stderr)
    );
    // Ann's server (127.0.0.9) hands the post to Postfix, which relays it to arclist by LMTP.
    let relay: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let (mut c, _) = Client::connect_from(relay, "127.0.0.9").await;
    assert_eq!(c.cmd("EHLO mx.far.test").await.0, 250);
    let (code, text) = c
        .post(
            "ann@far.test",
            LIST,
            &post("Ann <ann@far.test>", "Through Postfix", "Hi.\r\n"),
        )
        .await;
    assert_eq!(code, 250, "{text}");
    let store = w.t.server.store();
    let mut id = None;
    crate::smtp_support::until("Postfix delivered to arclist", async || {
        id = store
            .list()
            .await
            .ok()
            .and_then(|all| all.last().map(|m| m.id));
        id.is_some()
    })
    .await;
    let aar = sealed_results(&w, id.expect("spooled")).await;
    assert!(
        aar.contains("spf=pass") && aar.contains("smtp.remote-ip=127.0.0.9"),
        "{aar}"
    );
}

/// A real Postfix in front asks arclist, through its socketmap, which recipients exist
/// (`relay_recipient_maps`, as docs/running.md shows): an unknown address at a list or
/// forwarding domain is refused at `RCPT`, so nothing is bounced to a forged sender later;
/// a list, its `-leave` companion, a VERP bounce address, an alias and a live SRS address
/// are accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_postfix_refuses_unknown_recipients_at_rcpt_through_the_socketmap() {
    assert!(
        std::path::Path::new("/usr/sbin/postfix").exists(),
        "Debian's postfix is needed: tests/interop/install.sh installs it"
    );
    let w = crate::forwarding::world_top("", "", "", "socketmap_listen = \"127.0.0.1:0\"\n").await;
    let socketmap = w.t.server.socketmap_addr().expect("socketmap listening");
    let dir = tempfile::tempdir().expect("tempdir");
    let port = crate::postgres::free_port();
    let lmtp = w.t.lmtp().port();
    let transport = dir.path().join("transport");
    std::fs::write(
        &transport,
        format!(
            "lists.arclist.test lmtp:inet:[127.0.0.1]:{lmtp}\ncorp.test lmtp:inet:[127.0.0.1]:{lmtp}\n"
        ),
    )
    .expect("transport map");
    let pf = dir.path().join("postfix");
    let (pf, port, map) = (
        pf.to_string_lossy(),
        port.to_string(),
        transport.to_string_lossy(),
    );
    // The bench instance takes the list domain as its own (mydestination); here it is a relay
    // domain, as running.md sets Postfix up.
    let extra = format!(
        "mydestination =\nrelay_recipient_maps = socketmap:inet:{socketmap}:recipients\nsmtpd_peername_lookup = no"
    );
    let started = postfix(&["start", &pf, &port, &map], &extra);
    let _stop = StopPostfix(pf.to_string(), port.clone());
    assert!(
        started.status.success(),
        "postfix: {}",
        String::from_utf8_lossy(&started.stderr)
    );
    let relay: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let (mut c, _) = Client::connect_from(relay, "127.0.0.9").await;
    assert_eq!(c.cmd("EHLO mx.far.test").await.0, 250);
    assert_eq!(c.cmd("MAIL FROM:<ann@far.test>").await.0, 250);
    let srs = arclist::stages::forward::srs::Srs::new(
        vec![crate::forwarding::SECRET.as_bytes().to_vec()],
        "corp.test",
        21,
    )
    .forward("alice@bank.test", arclist::auth::unix_now());
    let ours = [
        LIST.to_string(),
        "members-leave@lists.arclist.test".to_string(),
        "members-bounces+sometoken@lists.arclist.test".to_string(),
        "sales@corp.test".to_string(),
        srs,
    ];
    for rcpt in &ours {
        let (code, text) = c.cmd(&format!("RCPT TO:<{rcpt}>")).await;
        assert_eq!(code, 250, "{rcpt}: {text}");
    }
    for rcpt in ["nobody@lists.arclist.test", "nobody@corp.test"] {
        let (code, text) = c.cmd(&format!("RCPT TO:<{rcpt}>")).await;
        assert_eq!(code, 550, "{rcpt}: {text}");
        assert!(text.contains("relay recipient table"), "{text}");
    }
}
