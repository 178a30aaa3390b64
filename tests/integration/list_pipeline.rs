//! A post's whole way through a list over real sockets: SMTP in, authentication over DNS on
//! loopback, trust, policy, the list's copy, ARC seal and DKIM signature, the delivery queue.
//! Every distributed copy is verified by dkimpy as well as by arclist.

use crate::smtp_support::{Client, LIST, TestServer};
use crate::support::{dkimpy, rsa_key};
use arclist::auth::dkim::DkimSigner;
use arclist::auth::{Envelope, unix_now};
use arclist::state::store::SpoolState;
use std::sync::Arc;

const BOUNCES: &str = "members-bounces@lists.arclist.test";

pub(crate) struct World {
    pub(crate) t: TestServer,
    pub(crate) sink: arclist_testbed::sink::Sink,
    keys: tempfile::TempDir,
    bank: Arc<arclist::auth::signing_key::SigningKey>,
}

pub(crate) async fn world(list_extra: &str) -> World {
    world_with("", list_extra).await
}

pub(crate) async fn world_with(server_extra: &str, list_extra: &str) -> World {
    world_full(server_extra, list_extra, None).await
}

async fn world_full(
    server_extra: &str,
    list_extra: &str,
    sink_tls: Option<tokio_rustls::TlsAcceptor>,
) -> World {
    world_prepared(server_extra, list_extra, sink_tls, |_| {}).await
}

/// As `world_full`, letting `prepare` change the folder before the server starts.
pub(crate) async fn world_prepared(
    server_extra: &str,
    list_extra: &str,
    sink_tls: Option<tokio_rustls::TlsAcceptor>,
    prepare: impl FnOnce(&std::path::Path),
) -> World {
    // Every member's domain has an MX pointing at the local sink.
    let (sink, sink_addr) = arclist_testbed::sink::Sink::start_with(sink_tls).await;
    let t = TestServer::start_prepared(
        &format!(
            "[delivery]\nport = {}\ntimeout_secs = 2\n{server_extra}",
            sink_addr.port()
        ),
        list_extra,
        prepare,
    )
    .await;
    t.dns.server.with_zone(|z| {
        for domain in ["bank.test", "club.test", "elsewhere.test"] {
            z.add(
                domain,
                arclist::auth::dns::ZoneRecord::Mx(arclist::auth::dns::Mx {
                    preference: 10,
                    exchange: "mx.sink.test".into(),
                }),
            );
        }
        z.add(
            "mx.sink.test",
            arclist::auth::dns::ZoneRecord::A("127.0.0.1".parse().expect("ip")),
        );
    });
    let keys = tempfile::tempdir().expect("tempdir");
    t.dns.server.with_zone(|z| {
        z.add_txt("bank.test", "v=spf1 ip4:127.0.0.21 -all");
        z.add_txt("_dmarc.bank.test", "v=DMARC1; p=reject");
        z.add_txt("club.test", "v=spf1 ip4:127.0.0.22 -all");
        z.add_txt("_dmarc.club.test", "v=DMARC1; p=none");
        z.add_txt("relay.test", "v=spf1 ip4:127.0.0.23 -all");
        z.add_txt("shady.test", "v=spf1 ip4:127.0.0.24 -all");
        z.add_txt("lists.arclist.test", "v=spf1 ip4:127.0.0.1 -all");
        z.add_txt("_dmarc.lists.arclist.test", "v=DMARC1; p=none");
    });
    let (bank, _) = rsa_key(keys.path(), "bank");
    t.dns.publish_key("k", "bank.test", &bank);
    for sealer in ["relay", "shady"] {
        let (key, _) = rsa_key(keys.path(), sealer);
        t.dns.publish_key("arc", &format!("{sealer}.test"), &key);
    }
    t.publish_list_key();
    for member in ["alice@bank.test", "bob@club.test", "reader@elsewhere.test"] {
        t.add_member(member).await;
    }
    World {
        t,
        sink,
        keys,
        bank,
    }
}

pub(crate) fn post(from: &str, subject: &str, body: &str) -> Vec<u8> {
    // Each post its own Message-ID: the list drops a second copy of one it distributed.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!(
        "From: {from}\r\nTo: {LIST}\r\nSubject: {subject}\r\nDate: Sun, 22 Nov 2026 10:00:00 +0000\r\n\
         Message-ID: <post-{n}@test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}"
    )
    .into_bytes()
}

impl World {
    /// Stops the server, runs `f` on its server file (the store is free to open), starts it
    /// again with the same DNS, keys and sink.
    pub(crate) async fn restart_after(self, f: impl AsyncFnOnce(&std::path::Path)) -> World {
        let World {
            t,
            sink,
            keys,
            bank,
        } = self;
        let t = t.restart_after(f).await;
        World {
            t,
            sink,
            keys,
            bank,
        }
    }

    /// A folder for the test's own keys.
    pub(crate) fn keys_dir(&self) -> &std::path::Path {
        self.keys.path()
    }

    pub(crate) fn bank_signed(&self, message: &[u8]) -> Vec<u8> {
        let sig = DkimSigner::new(self.bank.clone(), "bank.test", "k")
            .sign(message, unix_now())
            .expect("sign");
        [sig.as_bytes(), message].concat()
    }

    /// A post in the name of alice@bank.test (p=reject) from a server bank.test's SPF does
    /// not name, unsigned: a spoof.
    pub(crate) async fn spoof_of_alice(&self) -> u64 {
        self.send(
            "127.0.0.66",
            "spoofer.invalid",
            "alice@bank.test",
            &post("Alice <alice@bank.test>", "Pay", "Now.\r\n"),
        )
        .await
    }

    pub(crate) async fn send(
        &self,
        source: &str,
        helo: &str,
        mail_from: &str,
        message: &[u8],
    ) -> u64 {
        self.send_to(source, helo, mail_from, LIST, message).await
    }

    /// Sends `message` from `source` to `rcpt` (a list address or one of its companions) and
    /// returns the spool id from the 250 reply.
    pub(crate) async fn send_to(
        &self,
        source: &str,
        helo: &str,
        mail_from: &str,
        rcpt: &str,
        message: &[u8],
    ) -> u64 {
        let (mut c, _) = Client::connect_from(self.t.smtp(), source).await;
        assert_eq!(c.cmd(&format!("EHLO {helo}")).await.0, 250);
        let (code, text) = c.post(mail_from, rcpt, message).await;
        assert_eq!(code, 250, "{text}");
        text.trim()
            .rsplit(' ')
            .next()
            .and_then(|id| id.parse().ok())
            .expect("queue id")
    }

    /// The queued copy, checked by arclist and dkimpy as a subscriber's server would.
    pub(crate) async fn delivered(&self, id: u64) -> String {
        let meta = self.t.settled(id).await;
        assert_eq!(meta.state, SpoolState::Queued, "post {id}: {:?}", meta.note);
        let (entry, copy) = self
            .t
            .server
            .store()
            .queued(id)
            .await
            .expect("queued")
            .expect("present");
        assert_eq!(entry.mail_from, BOUNCES);
        let receiver = Envelope {
            ip: "127.0.0.1".parse().expect("ip"),
            helo: "lists.arclist.test".into(),
            mail_from: BOUNCES.into(),
        };
        let v = self
            .t
            .dns
            .authenticator()
            .verify(&copy, Some(&receiver), unix_now())
            .await;
        assert_eq!(v.arc.verdict.as_str(), "pass", "arclist: {}", v.arc.reason);
        assert!(
            v.dkim
                .iter()
                .any(|d| d.domain == "lists.arclist.test" && d.verdict.as_str() == "pass"),
            "{:?}",
            v.dkim
        );
        let theirs: serde_json::Value =
            serde_json::from_slice(&dkimpy(&self.t.dns, &["arc-verify"], &copy).await)
                .expect("json");
        assert_eq!(theirs["cv"], "pass", "dkimpy ARC: {}", theirs["detail"]);
        let dkim: serde_json::Value =
            serde_json::from_slice(&dkimpy(&self.t.dns, &["dkim-verify"], &copy).await)
                .expect("json");
        assert_eq!(
            dkim["pass"], true,
            "dkimpy verifies the list's DKIM signature"
        );
        let _ = &self.keys;
        // And every member's server received exactly that copy, once.
        let members = self.t.delivered_to(&self.sink, id).await;
        assert_eq!(members.len(), 3, "every member gets it: {members:?}");
        for member in &members {
            let mut inbox = Vec::new();
            for _ in 0..800 {
                inbox = self
                    .sink
                    .inbox(member)
                    .into_iter()
                    .filter(|m| *m == copy)
                    .collect();
                if !inbox.is_empty() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(25)).await;
            }
            assert_eq!(inbox.len(), 1, "{member} received the signed copy once");
        }
        String::from_utf8(copy).expect("utf-8")
    }
}

fn header<'a>(copy: &'a str, name: &str) -> Vec<&'a str> {
    copy.split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{name}: ")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p_reject_author_gets_from_munged_sealed_and_signed() {
    let w = world("subject_tag = \"[members] \"\nfooter = \"members list\"").await;
    let message = w.bank_signed(&post(
        "\"Alice, A.\" <alice@bank.test>",
        "Re: [members] Quarterly numbers",
        "Attached.\r\n",
    ));
    let id = w
        .send("127.0.0.21", "mx.bank.test", "alice@bank.test", &message)
        .await;
    let copy = w.delivered(id).await;
    assert_eq!(
        header(&copy, "From"),
        vec!["\"Alice, A. via Members\" <members@lists.arclist.test>"]
    );
    assert_eq!(
        header(&copy, "Reply-To"),
        vec!["\"Alice, A.\" <alice@bank.test>"]
    );
    assert_eq!(
        header(&copy, "Subject"),
        vec!["Re: [members] Quarterly numbers"],
        "exactly one tag"
    );
    assert_eq!(
        header(&copy, "List-Id"),
        vec!["\"Members\" <members.lists.arclist.test>"]
    );
    let aar = copy
        .lines()
        .find(|l| l.starts_with("ARC-Authentication-Results: i=1;"))
        .expect("AAR i=1");
    let aar_block: String = copy
        .split("ARC-Authentication-Results: i=1;")
        .nth(1)
        .unwrap_or_default()
        .split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .into();
    assert!(
        aar.contains("mx.arclist.test") && aar_block.contains("dmarc=pass"),
        "{aar_block}"
    );
    assert!(
        copy.contains("Attached.\r\n-- \r\nmembers list\r\n"),
        "footer appended"
    );
    // The list's copy passes DMARC for its new From, through the list's own DKIM signature.
    let receiver = Envelope {
        ip: "127.0.0.1".parse().expect("ip"),
        helo: "x".into(),
        mail_from: BOUNCES.into(),
    };
    let v =
        w.t.dns
            .authenticator()
            .verify(copy.as_bytes(), Some(&receiver), unix_now())
            .await;
    assert_eq!(v.dmarc.verdict.as_str(), "pass");
    assert_eq!(v.dmarc.dkim_aligned.as_deref(), Some("lists.arclist.test"));
}

async fn via_intermediary(w: &World, sealer: &str, ip: &str) -> u64 {
    let original = w.bank_signed(&post("Alice <alice@bank.test>", "Numbers", "Attached.\r\n"));
    let sealed = crate::support::forwarded_by(&w.t.dns, w.keys.path(), sealer, &original).await;
    let domain = format!("{sealer}.test");
    w.send(
        ip,
        &format!("mx.{domain}"),
        &format!("fwd@{domain}"),
        &sealed,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_intermediary_vouches_and_an_untrusted_one_does_not() {
    let w = world("trusted_sealers = [\"relay.test\"]").await;
    let id = via_intermediary(&w, "relay", "127.0.0.23").await;
    let copy = w.delivered(id).await;
    let aar: String = copy
        .split("ARC-Authentication-Results: i=2;")
        .nth(1)
        .expect("our set is i=2")
        .split("ARC-")
        .next()
        .unwrap_or_default()
        .into();
    assert!(aar.contains("dmarc=fail"), "the failure is recorded: {aar}");
    assert!(
        aar.contains("policy.arc-override=\"relay.test:arc\""),
        "and the override, naming the sealer: {aar}"
    );

    let id = via_intermediary(&w, "shady", "127.0.0.24").await;
    let meta = w.t.settled(id).await;
    assert_eq!(meta.state, SpoolState::Rejected);
    assert!(
        meta.note
            .as_deref()
            .is_some_and(|n| n.contains("untrusted sealer(s) i=1 shady.test")),
        "{:?}",
        meta.note
    );
    assert!(
        w.t.server
            .store()
            .queued(id)
            .await
            .expect("queue")
            .is_none(),
        "never delivered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spoofs_are_refused_and_p_none_authors_keep_their_from() {
    let w = world("").await;
    let spoof = post("CEO <alice@bank.test>", "Wire transfer", "Pay today.\r\n");
    let id = w
        .send("127.0.0.66", "spoofer.invalid", "alice@bank.test", &spoof)
        .await;
    let meta = w.t.settled(id).await;
    assert_eq!(meta.state, SpoolState::Rejected, "{:?}", meta.note);
    assert!(
        w.t.server
            .store()
            .queued(id)
            .await
            .expect("queue")
            .is_none()
    );

    let id = w
        .send(
            "127.0.0.22",
            "mx.club.test",
            "bob@club.test",
            &post("Bob <bob@club.test>", "Friday", "See you.\r\n"),
        )
        .await;
    let copy = w.delivered(id).await;
    assert_eq!(
        header(&copy, "From"),
        vec!["Bob <bob@club.test>"],
        "p=none: From untouched"
    );
    assert!(header(&copy, "Reply-To").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_member_posts_are_held_until_approved_and_loops_are_dropped() {
    let w = world("").await;
    let stranger = post("Carol <carol@club.test>", "Hello", "May I?\r\n");
    let id = w
        .send("127.0.0.22", "mx.club.test", "carol@club.test", &stranger)
        .await;
    let meta = w.t.settled(id).await;
    assert_eq!(meta.state, SpoolState::Held);
    assert_eq!(meta.note.as_deref(), Some("the poster is not a member"));

    let looped = [
        b"List-Id: Members <members.lists.arclist.test>\r\n".as_slice(),
        &post("Bob <bob@club.test>", "Echo", "again\r\n"),
    ]
    .concat();
    // The list's own mail come back is refused before 250 now (issue 31), so the loop ends
    // at the server that sent it; nothing of it is spooled.
    let (mut c, _) = Client::connect_from(w.t.smtp(), "127.0.0.22").await;
    assert_eq!(c.cmd("EHLO mx.club.test").await.0, 250);
    let (code, text) = c.post("bob@club.test", LIST, &looped).await;
    assert!(
        code == 554 && text.starts_with("5.4.6 mail loop"),
        "{code} {text}"
    );
    assert!(
        w.t.spool().await.iter().all(|(m, _)| m.id == id),
        "only the held post is in the spool"
    );

    let World {
        t,
        sink,
        keys,
        bank,
    } = w;
    let t = t
        .restart_after(async |config| {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_arclist"))
                .args(["held", "approve", &id.to_string(), "--config"])
                .arg(config)
                .output()
                .expect("runs");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        })
        .await;
    let w = World {
        t,
        sink,
        keys,
        bank,
    };
    let copy = w.delivered(id).await;
    assert!(copy.contains("May I?"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_confirm_post_and_leave_by_email() {
    let w = world("").await;
    let store = w.t.server.store();
    let request = post("Nina <nina@club.test>", "please add me", "Hi\r\n");
    let wr = &w;
    let send_to = |rcpt: String, msg: Vec<u8>| async move {
        wr.send_to("127.0.0.22", "mx.club.test", "nina@club.test", &rcpt, &msg)
            .await
    };
    // 1. Ask to join: nothing changes yet, a signed confirmation goes to Nina.
    let id = send_to("members-join@lists.arclist.test".into(), request.clone()).await;
    let meta = w.t.settled(id).await;
    assert_eq!(meta.state, SpoolState::Done, "{:?}", meta.note);
    assert!(
        !store
            .is_member(LIST, "nina@club.test")
            .await
            .expect("store")
    );
    let (_, confirmation) = store
        .queued(id)
        .await
        .expect("queue")
        .expect("a confirmation is queued");
    assert_eq!(
        wr.t.delivered_to(&wr.sink, id).await,
        vec!["nina@club.test".to_string()]
    );
    let confirmation = String::from_utf8(confirmation).expect("utf-8");
    let confirm_to = header(&confirmation, "Reply-To")[0]
        .trim_matches(|c| c == '<' || c == '>')
        .to_string();
    assert!(confirm_to.starts_with("members-confirm+j"), "{confirm_to}");
    let dkim: serde_json::Value =
        serde_json::from_slice(&dkimpy(&w.t.dns, &["dkim-verify"], confirmation.as_bytes()).await)
            .expect("json");
    assert_eq!(
        dkim["pass"], true,
        "the confirmation is DKIM-signed by the list"
    );

    // 2. Someone else replying with Nina's token gets nothing.
    let forged = post("Mallory <mallory@club.test>", "Re: confirm", "yes\r\n");
    let id = send_to(confirm_to.clone(), forged).await;
    assert!(
        w.t.settled(id)
            .await
            .note
            .as_deref()
            .is_some_and(|n| n.contains("invalid or expired"))
    );
    assert!(
        !store
            .is_member(LIST, "mallory@club.test")
            .await
            .expect("store")
    );

    // 3. Nina confirms: she is a member, persisted, and her post goes out.
    let id = send_to(
        confirm_to,
        post("Nina <nina@club.test>", "Re: confirm", "yes\r\n"),
    )
    .await;
    assert_eq!(w.t.settled(id).await.state, SpoolState::Done);
    assert!(
        store
            .is_member(LIST, "nina@club.test")
            .await
            .expect("store")
    );
    let id = w
        .send(
            "127.0.0.22",
            "mx.club.test",
            "nina@club.test",
            &post("Nina <nina@club.test>", "Hello all", "Glad to be here.\r\n"),
        )
        .await;
    assert_eq!(w.t.settled(id).await.state, SpoolState::Queued);

    // 4. Leaving takes a confirmation too.
    let id = send_to(
        "members-request@lists.arclist.test".into(),
        post("Nina <nina@club.test>", "unsubscribe", "bye\r\n"),
    )
    .await;
    w.t.settled(id).await;
    let (_, confirmation) = store
        .queued(id)
        .await
        .expect("queue")
        .expect("confirmation");
    let confirmation = String::from_utf8(confirmation).expect("utf-8");
    let confirm_to = header(&confirmation, "Reply-To")[0]
        .trim_matches(|c| c == '<' || c == '>')
        .to_string();
    assert!(confirm_to.starts_with("members-confirm+l"), "{confirm_to}");
    assert!(
        store
            .is_member(LIST, "nina@club.test")
            .await
            .expect("store"),
        "still a member until confirmed"
    );
    let id = send_to(
        confirm_to,
        post("Nina <nina@club.test>", "Re: confirm", "yes\r\n"),
    )
    .await;
    w.t.settled(id).await;
    assert!(
        !store
            .is_member(LIST, "nina@club.test")
            .await
            .expect("store")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_refused_recipient_does_not_fail_the_others_and_4xx_is_retried_later() {
    let w = world("").await;
    w.sink
        .refuse("reader@elsewhere.test", "550 5.1.1 no such user");
    w.sink.refuse("alice@bank.test", "451 4.3.0 try later");
    let id = w
        .send(
            "127.0.0.22",
            "mx.club.test",
            "bob@club.test",
            &post("Bob <bob@club.test>", "Hi", "All of you.\r\n"),
        )
        .await;
    let store = w.t.server.store();
    let mut states = Vec::new();
    for _ in 0..800 {
        states = store.outcomes(id).await.expect("deliveries");
        if !states.is_empty() && states.iter().all(|d| d.attempts > 0) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let state = |a: &str| {
        states
            .iter()
            .find(|d| d.address == a)
            .cloned()
            .expect("recorded")
    };
    use arclist::state::store::DeliveryState::*;
    assert_eq!(state("bob@club.test").state, Delivered);
    assert_eq!(state("reader@elsewhere.test").state, Bounced);
    assert!(
        state("reader@elsewhere.test")
            .last_reply
            .starts_with("550 5.1.1")
    );
    let deferred = state("alice@bank.test");
    assert_eq!(deferred.state, Deferred);
    assert!(
        deferred.next_attempt >= unix_now() + 30,
        "retried later, not hammered"
    );
    assert_eq!(w.sink.inbox("bob@club.test").len(), 1);
    assert!(w.sink.inbox("alice@bank.test").is_empty());
    drop(store);

    // The operator sees why, and asks for a retry once the receiver is fixed.
    w.sink.accept("alice@bank.test");
    let World {
        t,
        sink,
        keys,
        bank,
    } = w;
    let t = t
        .restart_after(async |config| {
            let run = |args: &[&str]| {
                let (ok, out) = crate::support::arclist_cli(config, args);
                assert!(ok, "{out}");
                out
            };
            let status = run(&["queue", "status", &id.to_string()]);
            assert!(
                status.contains("alice@bank.test\tDeferred\t1 attempt(s)\t451 4.3.0 try later"),
                "{status}"
            );
            assert!(
                status.contains("reader@elsewhere.test\tBounced"),
                "{status}"
            );
            assert!(run(&["queue", "retry", &id.to_string()]).contains("1 deferred recipient(s)"));
        })
        .await;
    let w = World {
        t,
        sink,
        keys,
        bank,
    };
    for _ in 0..800 {
        if !w.sink.inbox("alice@bank.test").is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(
        w.sink.inbox("alice@bank.test").len(),
        1,
        "delivered on the retry, once"
    );
    assert_eq!(
        w.sink.inbox("bob@club.test").len(),
        1,
        "and nobody got it twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_member_gets_a_signed_one_click_unsubscribe_url() {
    let w = world_with(
        "[http]\nlisten = \"127.0.0.1:0\"\nbase_url = \"https://lists.arclist.test\"\n",
        "",
    )
    .await;
    // Over BDAT, as Gmail and Postfix take it (a connection with several transactions): each
    // copy goes as the member's own fields and the shared post, written together.
    w.sink
        .chunking
        .store(true, std::sync::atomic::Ordering::Relaxed);
    for member in ["second@elsewhere.test", "third@elsewhere.test"] {
        w.t.add_member(member).await;
    }
    let id = w
        .send(
            "127.0.0.22",
            "mx.club.test",
            "bob@club.test",
            &post("Bob <bob@club.test>", "Hi", "All of you.\r\n"),
        )
        .await;
    assert_eq!(w.t.settled(id).await.state, SpoolState::Queued);
    let mut inbox = Vec::new();
    for _ in 0..800 {
        inbox = w.sink.inbox("reader@elsewhere.test");
        if !inbox.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let copy = String::from_utf8(inbox.pop().expect("delivered")).expect("utf-8");
    assert!(w.sink.chunked.load(std::sync::atomic::Ordering::Relaxed) >= 1);
    let unsub = header(&copy, "List-Unsubscribe");
    assert_eq!(unsub.len(), 1, "exactly one List-Unsubscribe: {copy}");
    assert!(
        unsub[0].starts_with("<https://lists.arclist.test/unsubscribe/")
            && !unsub[0].contains("reader@"),
        "an opaque one-click URL: {}",
        unsub[0]
    );
    assert_eq!(
        header(&copy, "List-Unsubscribe-Post"),
        vec!["List-Unsubscribe=One-Click"]
    );
    assert!(
        copy.starts_with("DKIM-Signature:")
            && copy
                .split("\r\n\r\n")
                .next()
                .unwrap_or_default()
                .contains("list-unsubscribe-post"),
        "the personal fields are DKIM-signed"
    );
    let dkim: serde_json::Value =
        serde_json::from_slice(&dkimpy(&w.t.dns, &["dkim-verify"], copy.as_bytes()).await)
            .expect("json");
    assert_eq!(dkim["pass"], true, "dkimpy verifies the personal signature");
    let arc: serde_json::Value =
        serde_json::from_slice(&dkimpy(&w.t.dns, &["arc-verify"], copy.as_bytes()).await)
            .expect("json");
    assert_eq!(
        arc["cv"], "pass",
        "the shared ARC set still verifies: {}",
        arc["detail"]
    );
    // The URL works.
    let url = unsub[0]
        .trim_start_matches('<')
        .split('>')
        .next()
        .expect("url");
    let path = url.trim_start_matches("https://lists.arclist.test");
    let web = w.t.server.web_addr().expect("web");
    let url = format!("http://{web}{path}");
    let (status, _) = crate::one_click::curl(&["-F", "List-Unsubscribe=One-Click"], &url).await;
    assert_eq!(status, 200);
    assert!(
        !w.t.server
            .store()
            .is_member(LIST, "reader@elsewhere.test")
            .await
            .expect("store")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mitigate_always_rewrites_p_none_authors_too() {
    let w = world("mitigate = \"always\"").await;
    let id = w
        .send(
            "127.0.0.22",
            "mx.club.test",
            "bob@club.test",
            &post("Bob <bob@club.test>", "Friday", "See you.\r\n"),
        )
        .await;
    let copy = w.delivered(id).await;
    assert_eq!(
        header(&copy, "From"),
        vec!["\"Bob via Members\" <members@lists.arclist.test>"]
    );
    assert_eq!(header(&copy, "Reply-To"), vec!["\"Bob\" <bob@club.test>"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrap_message_sends_the_post_as_an_attachment_from_the_list() {
    let w = world("dmarc_mitigation = \"wrap_message\"\nsubject_tag = \"[members] \"").await;
    let original = w.bank_signed(&post(
        "\"Alice\" <alice@bank.test>",
        "Numbers",
        "Attached.\r\n",
    ));
    let id = w
        .send("127.0.0.21", "mx.bank.test", "alice@bank.test", &original)
        .await;
    let copy = w.delivered(id).await;
    assert_eq!(
        header(&copy, "From"),
        vec!["\"Alice via Members\" <members@lists.arclist.test>"]
    );
    assert_eq!(
        header(&copy, "Reply-To"),
        vec!["\"Alice\" <alice@bank.test>"]
    );
    assert_eq!(header(&copy, "Subject"), vec!["[members] Numbers"]);
    assert!(header(&copy, "Content-Type")[0].starts_with("multipart/mixed; boundary="));
    assert!(copy.contains("Content-Type: message/rfc822\r\n"));
    // The author's message travels intact inside, her DKIM signature with it.
    assert!(
        copy.contains(std::str::from_utf8(&original).expect("utf-8")),
        "the original is attached byte for byte"
    );
}

/// An ARF spam complaint (RFC 5965) sent back to `to`.
fn arf(to: &str) -> Vec<u8> {
    format!(
        "From: feedback@mailbox.test\r\nTo: {to}\r\nSubject: complaint\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=feedback-report; boundary=\"F\"\r\n\r\n--F\r\nContent-Type: text/plain\r\n\r\nA complaint.\r\n\
         --F\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nVersion: 1\r\n--F--\r\n"
    )
    .into_bytes()
}

pub(crate) fn dsn(to: &str, recipient: &str, status: &str, diagnostic: &str) -> Vec<u8> {
    format!(
        "From: Mail Delivery System <MAILER-DAEMON@mx.sink.test>\r\nTo: {to}\r\nSubject: Undelivered Mail Returned to Sender\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n\
         --B\r\nContent-Type: text/plain\r\n\r\nI'm sorry to have to inform you that your message could not be delivered.\r\n\
         --B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.sink.test\r\n\r\n\
         Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: {status}\r\nDiagnostic-Code: smtp; {diagnostic}\r\n--B--\r\n"
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verp_bounces_score_members_policy_refusals_do_not_and_complaints_unsubscribe() {
    let w = world("owners = [\"owner@elsewhere.test\"]").await;
    let store = w.t.server.store();
    let id = w
        .send(
            "127.0.0.22",
            "mx.club.test",
            "bob@club.test",
            &post("Bob <bob@club.test>", "Hi", "All of you.\r\n"),
        )
        .await;
    w.delivered(id).await;
    // Each member's copy went out with its own VERP sender.
    let senders: std::collections::HashMap<String, String> = w
        .sink
        .received
        .lock()
        .expect("lock")
        .iter()
        .map(|(from, rcpt, _)| (rcpt.clone(), from.clone()))
        .collect();
    let verp = |a: &str| senders.get(a).cloned().expect("delivered");
    assert!(
        verp("reader@elsewhere.test").starts_with("members-bounces+"),
        "{senders:?}"
    );
    assert_ne!(verp("reader@elsewhere.test"), verp("alice@bank.test"));
    // Bounces come from the null sender.
    let wr = &w;
    let bounce_to = |to: String, msg: Vec<u8>| async move {
        wr.send_to("127.0.0.1", "mx.sink.test", "", &to, &msg).await
    };
    let member = async |a: &str| {
        store
            .members(LIST)
            .await
            .expect("members")
            .into_iter()
            .find(|m| m.address == a)
    };

    // A DMARC policy refusal is counted, never scored.
    let r = verp("alice@bank.test");
    let id = bounce_to(
        r.clone(),
        dsn(
            &r,
            "alice@bank.test",
            "5.7.26",
            "550 5.7.26 rejected due to DMARC policy",
        ),
    )
    .await;
    assert!(
        w.t.settled(id)
            .await
            .note
            .as_deref()
            .is_some_and(|n| n.contains("policy rejection"))
    );
    let alice = member("alice@bank.test").await.expect("still a member");
    assert_eq!(
        (alice.policy_rejections, alice.bounce_score, alice.disabled),
        (1, 0.0, false)
    );

    // Hard bounces add up until delivery stops.
    let r = verp("reader@elsewhere.test");
    for n in 1..=5 {
        let id = bounce_to(
            r.clone(),
            dsn(
                &r,
                "reader@elsewhere.test",
                "5.1.1",
                "550 5.1.1 user unknown",
            ),
        )
        .await;
        w.t.settled(id).await;
        assert_eq!(
            member("reader@elsewhere.test")
                .await
                .expect("member")
                .bounce_score,
            n as f32
        );
    }
    assert!(
        member("reader@elsewhere.test")
            .await
            .expect("member")
            .disabled
    );
    // The owner hears of it, with the way back.
    let mut notice = Vec::new();
    for _ in 0..800 {
        notice = w.sink.inbox("owner@elsewhere.test");
        if !notice.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let notice = String::from_utf8(notice.concat()).expect("utf-8");
    assert!(
        notice.contains("Subject: Members: delivery to reader@elsewhere.test disabled")
            && notice
                .contains("arclist member enable members@lists.arclist.test reader@elsewhere.test")
            && notice.contains("DKIM-Signature:"),
        "{notice}"
    );
    // Mail for the owners reaches them.
    let id = w
        .send_to(
            "127.0.0.22",
            "mx.club.test",
            "bob@club.test",
            "members-owner@lists.arclist.test",
            &post("Bob <bob@club.test>", "Question for the owner", "Hi.\r\n"),
        )
        .await;
    assert_eq!(w.t.settled(id).await.state, SpoolState::Queued);
    let mut owner_mail = 0;
    for _ in 0..800 {
        owner_mail = w
            .sink
            .inbox("owner@elsewhere.test")
            .iter()
            .filter(|m| String::from_utf8_lossy(m).contains("Subject: Question for the owner"))
            .count();
        if owner_mail > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(owner_mail, 1, "the owner got the question once");
    let id = w
        .send(
            "127.0.0.22",
            "mx.club.test",
            "bob@club.test",
            &post("Bob <bob@club.test>", "Again", "Hello.\r\n"),
        )
        .await;
    w.t.settled(id).await;
    let got = w.t.delivered_to(&w.sink, id).await;
    assert!(!got.is_empty(), "the other members get it");
    assert!(
        !got.contains(&"reader@elsewhere.test".to_string()),
        "disabled members get nothing: {got:?}"
    );

    // A forged token changes nothing; a genuine complaint unsubscribes.
    let forged = verp("bob@club.test").replacen("members-bounces+", "members-bounces+ff", 1);
    let id = bounce_to(
        forged.clone(),
        dsn(&forged, "bob@club.test", "5.1.1", "550 user unknown"),
    )
    .await;
    assert!(
        w.t.settled(id)
            .await
            .note
            .as_deref()
            .is_some_and(|n| n.contains("forged"))
    );
    assert_eq!(
        member("bob@club.test").await.expect("member").bounce_score,
        0.0
    );
    let r = verp("bob@club.test");
    let id = bounce_to(r.clone(), arf(&r)).await;
    assert!(
        w.t.settled(id)
            .await
            .note
            .as_deref()
            .is_some_and(|n| n.contains("unsubscribed"))
    );
    assert!(member("bob@club.test").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_uses_starttls_when_the_receiver_offers_it() {
    let certdir = tempfile::tempdir().expect("tempdir");
    let certified =
        rcgen::generate_simple_self_signed(vec!["mx.sink.test".to_string()]).expect("certificate");
    std::fs::write(certdir.path().join("cert.pem"), certified.cert.pem()).expect("cert");
    std::fs::write(
        certdir.path().join("key.pem"),
        certified.signing_key.serialize_pem(),
    )
    .expect("key");
    let acceptor = arclist::stages::smtp::tls::acceptor(
        &certdir.path().join("cert.pem"),
        &certdir.path().join("key.pem"),
    )
    .expect("acceptor");
    let w = world_full("", "", Some(acceptor)).await;
    let id = w
        .send(
            "127.0.0.22",
            "mx.club.test",
            "bob@club.test",
            &post("Bob <bob@club.test>", "Secret", "Over TLS.\r\n"),
        )
        .await;
    w.delivered(id).await;
    assert_eq!(
        w.sink.over_tls.load(std::sync::atomic::Ordering::Relaxed),
        3,
        "every member's copy went over TLS (a self-signed certificate is fine: opportunistic)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_server_and_a_dropped_connection_defer_and_deliver_nothing_twice() {
    use std::sync::atomic::Ordering;
    let w = world_full("", "", None).await;
    let store = w.t.server.store();
    let settle = |id: u64| {
        let store = store.clone();
        async move {
            for _ in 0..800 {
                let all = store.outcomes(id).await.expect("deliveries");
                if !all.is_empty() && all.iter().all(|d| d.attempts > 0) {
                    return all;
                }
                tokio::time::sleep(std::time::Duration::from_millis(25)).await;
            }
            panic!("no attempt recorded for {id}");
        }
    };
    // A server that accepts the connection and never answers.
    w.sink.silent.store(true, Ordering::Relaxed);
    let id = w
        .send(
            "127.0.0.22",
            "mx.club.test",
            "bob@club.test",
            &post("Bob <bob@club.test>", "One", "x\r\n"),
        )
        .await;
    for d in settle(id).await {
        assert_eq!(
            d.state,
            arclist::state::store::DeliveryState::Deferred,
            "{d:?}"
        );
        assert!(d.last_reply.contains("timed out"), "{}", d.last_reply);
    }
    // A server that drops the connection after the data, before its reply.
    w.sink.silent.store(false, Ordering::Relaxed);
    w.sink.drop_after_data.store(true, Ordering::Relaxed);
    let id = w
        .send(
            "127.0.0.22",
            "mx.club.test",
            "bob@club.test",
            &post("Bob <bob@club.test>", "Two", "y\r\n"),
        )
        .await;
    for d in settle(id).await {
        assert_eq!(
            d.state,
            arclist::state::store::DeliveryState::Deferred,
            "{d:?}"
        );
        assert!(
            d.last_reply.contains("after the message data"),
            "{}",
            d.last_reply
        );
    }
    assert!(
        w.sink.received.lock().expect("lock").is_empty(),
        "nothing was counted as delivered"
    );
}

/// The value of `series` (name with labels) in a Prometheus text scrape; 0 when absent.
fn metric(scrape: &str, series: &str) -> f64 {
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

async fn scrape(addr: std::net::SocketAddr, token: Option<&str>) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    s.write_all(format!("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}\r\n").as_bytes())
        .await
        .expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read");
    let code = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_after_a_post_and_its_delivery_and_need_the_token() {
    let tokens = tempfile::tempdir().expect("tempdir");
    let token = "0123456789abcdef0123";
    std::fs::write(tokens.path().join("admin.token"), format!("{token}\n")).expect("token");
    let w = world_with(
        &format!(
            "[admin]\nlisten = \"127.0.0.1:0\"\ntoken_file = \"{}\"\n",
            tokens.path().join("admin.token").display()
        ),
        "",
    )
    .await;
    let admin = w.t.server.admin_addr().expect("admin listener");
    assert_eq!(scrape(admin, None).await.0, 401);
    assert_eq!(scrape(admin, Some("wrong-token-wrong-token")).await.0, 401);
    let (code, before) = scrape(admin, Some(token)).await;
    assert_eq!(code, 200, "{before}");
    assert!(before.contains("# TYPE arclist_deliveries_total counter"));
    let id = w
        .send(
            "127.0.0.22",
            "mx.club.test",
            "bob@club.test",
            &post("Bob <bob@club.test>", "Counted", "One post.\r\n"),
        )
        .await;
    w.delivered(id).await;
    // The delivery records land just after the sink's 250; give the counters a moment.
    let mut after = String::new();
    for _ in 0..100 {
        after = scrape(admin, Some(token)).await.1;
        let delivered = r#"arclist_deliveries_total{outcome="delivered",destination="other"}"#;
        if metric(&after, delivered) >= metric(&before, delivered) + 3.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    for (series, at_least) in [
        (
            r#"arclist_deliveries_total{outcome="delivered",destination="other"}"#,
            3.0,
        ),
        (r#"arclist_posts_total{outcome="queued"}"#, 1.0),
        ("arclist_seals_total", 1.0),
        ("arclist_smtp_sessions_total", 1.0),
        ("arclist_messages_spooled_total", 1.0),
        (
            r#"arclist_auth_results_total{method="dmarc",result="pass"}"#,
            1.0,
        ),
        (r#"arclist_dns_lookups_total{result="ok"}"#, 1.0),
    ] {
        assert!(
            metric(&after, series) >= metric(&before, series) + at_least,
            "{series} moved by at least {at_least}: {} -> {}",
            metric(&before, series),
            metric(&after, series)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_counts_held_mitigated_overridden_and_bounced_posts() {
    let w = world(
        "trusted_sealers = [\"relay.test\"]\nowners = [\"owner@elsewhere.test\"]\ndaily_report = true",
    )
    .await;
    let store = w.t.server.store();
    // A p=reject author's post: From rewritten.
    let mitigated = w
        .send(
            "127.0.0.21",
            "mx.bank.test",
            "alice@bank.test",
            &w.bank_signed(&post("Alice <alice@bank.test>", "Figures", "Q3.\r\n")),
        )
        .await;
    w.delivered(mitigated).await;
    // The same author through a trusted forwarder that broke her signature: ARC override.
    let overridden = via_intermediary(&w, "relay", "127.0.0.23").await;
    w.delivered(overridden).await;
    // A non-member: held. A spoof of the p=reject author: rejected.
    let held = w
        .send(
            "127.0.0.22",
            "mx.club.test",
            "carol@club.test",
            &post("Carol <carol@club.test>", "Hi", "May I?\r\n"),
        )
        .await;
    let spoof = w.spoof_of_alice().await;
    for id in [held, spoof] {
        w.t.settled(id).await;
    }
    // Every copy of both posts recorded as delivered before the report is taken.
    let all_delivered = async || {
        for id in [mitigated, overridden] {
            let d = store.outcomes(id).await.expect("deliveries");
            let done = d.len() == 3
                && d.iter()
                    .all(|d| d.state == arclist::state::store::DeliveryState::Delivered);
            if !done {
                return false;
            }
        }
        true
    };
    for _ in 0..800 {
        if all_delivered().await {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(
        all_delivered().await,
        "both posts delivered to all three members"
    );
    // Bounces on VERP addresses: a hard one, a DMARC policy refusal, a complaint.
    let senders: std::collections::HashMap<String, String> = w
        .sink
        .received
        .lock()
        .expect("lock")
        .iter()
        .map(|(from, rcpt, _)| (rcpt.clone(), from.clone()))
        .collect();
    let verp = |a: &str| senders.get(a).cloned().expect("delivered");
    let r = verp("reader@elsewhere.test");
    let hard = dsn(
        &r,
        "reader@elsewhere.test",
        "5.1.1",
        "550 5.1.1 user unknown",
    );
    let r2 = verp("alice@bank.test");
    let policy = dsn(&r2, "alice@bank.test", "5.7.26", "550 5.7.26 DMARC policy");
    let r3 = verp("bob@club.test");
    let complaint = arf(&r3);
    for (to, message) in [(r, hard), (r2, policy), (r3, complaint)] {
        let id = w
            .send_to("127.0.0.1", "mx.sink.test", "", &to, &message)
            .await;
        w.t.settled(id).await;
    }
    // The owners' daily report, made as the server does at midnight, arrives by mail.
    let config = arclist::base::config::Config::load(Some(&w.t.dir.path().join("server.toml")))
        .expect("config");
    let runtime = arclist::stages::list::ListRuntime::load(&config.lists[0]).expect("list");
    let lists = arclist::stages::list::Lists::new([runtime]);
    let queued = arclist::surfaces::operate::report::mail_to_owners(
        &store,
        &lists,
        "mx.arclist.test",
        unix_now(),
    )
    .await
    .expect("reports");
    assert_eq!(queued, 1);
    let mut mailed = String::new();
    for _ in 0..800 {
        mailed =
            String::from_utf8_lossy(&w.sink.inbox("owner@elsewhere.test").concat()).into_owned();
        if mailed.contains("daily report") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(
        mailed.contains("Subject: Members: daily report")
            && mailed.contains("bank.test")
            && mailed.contains("relay.test:arc"),
        "{mailed}"
    );
    drop(store);
    let World { t, .. } = w;
    let config = t.dir.path().join("server.toml");
    t.server.stop(std::time::Duration::from_secs(5)).await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_arclist"))
        .args(["report", "--since", "1h", "--json", "--config"])
        .arg(&config)
        .output()
        .expect("report runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let sender = |d: &str| {
        report["senders"]
            .as_array()
            .expect("senders")
            .iter()
            .find(|s| s["domain"] == d)
            .cloned()
            .unwrap_or_else(|| panic!("no row for {d}: {report}"))
    };
    let bank = sender("bank.test");
    assert_eq!(
        (
            &bank["posts"],
            &bank["queued"],
            &bank["rejected"],
            &bank["mitigated"],
            &bank["arc_overrides"],
            &bank["dmarc_fail"]
        ),
        (
            &serde_json::json!(3),
            &serde_json::json!(2),
            &serde_json::json!(1),
            &serde_json::json!(2),
            &serde_json::json!(1),
            &serde_json::json!(2)
        ),
        "{bank}"
    );
    assert_eq!(bank["sealers"], serde_json::json!(["relay.test:arc"]));
    assert_eq!(bank["dmarc_policy"], serde_json::json!(["reject"]));
    let club = sender("club.test");
    assert_eq!(
        (&club["posts"], &club["held"]),
        (&serde_json::json!(1), &serde_json::json!(1))
    );
    let other = &report["receivers"][0];
    assert_eq!(other["destination"], "other");
    assert_eq!(other["delivered"], 6, "{other}");
    assert_eq!(other["bounced"], 2, "{other}");
    assert_eq!(other["policy_rejections"], 1, "{other}");
    assert_eq!(other["complaints"], 1, "{other}");
    assert_eq!(
        other["complaint_verdict"], "over",
        "1 in 6 is far over 0.3%"
    );
    // And the text form says so.
    let text = std::process::Command::new(env!("CARGO_BIN_EXE_arclist"))
        .args(["report", "--config"])
        .arg(&config)
        .output()
        .expect("report runs");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("bank.test") && text.contains("relay.test:arc"),
        "{text}"
    );
    assert!(text.contains("OVER Gmail's 0.3% line"), "{text}");
}
