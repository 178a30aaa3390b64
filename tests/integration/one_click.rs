//! RFC 8058 one-click unsubscribe as mailbox providers send it: multipart or urlencoded,
//! chunked or not, to an opaque URL; the departure is durable and outlives restarts even
//! though the list file still names the member.

use crate::smtp_support::{LIST, TestServer};
use arclist::auth::unix_now;
use tokio::process::Command;

const HTTP: &str = "[http]\nlisten = \"127.0.0.1:0\"\nbase_url = \"https://lists.arclist.test\"\n";
const BASE: &str = "https://lists.arclist.test";

/// curl's status code for `args` against `url`, and the body.
pub async fn curl(args: &[&str], url: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "-S", "--max-time", "10", "-w", "\n%{http_code}"])
        .args(args)
        .arg(url)
        .output()
        .await
        .expect("curl runs (tests/interop/install.sh installs it)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').expect("status line");
    (code.trim().parse().expect("status"), body.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_click_in_every_encoding_unsubscribes_for_good() {
    let named = "members = [\"ann@a.test\", \"bob@b.test\", \"cy@c.test\", \"dee@d.test\"]\n";
    let t = TestServer::start_with_list(HTTP, named).await;
    let store = t.server.store();
    for a in ["ann@a.test", "bob@b.test", "cy@c.test", "dee@d.test"] {
        assert!(
            store.is_member(LIST, a).await.expect("store"),
            "{a} seeded from the file"
        );
    }
    let web = t.server.web_addr().expect("http listener");
    let secret = store.token_secret().await.expect("secret");
    let local = |address: &str| {
        let url = arclist::stages::list::unsubscribe::url(BASE, &secret, LIST, address, unix_now())
            .expect("url");
        assert!(
            !url.contains(address.split('@').next().unwrap()),
            "{url} shows the address"
        );
        format!("http://{web}{}", url.trim_start_matches(BASE))
    };
    let ann = local("ann@a.test");
    // A link scanner's GET changes nothing.
    let (code, page) = curl(&[], &ann).await;
    assert_eq!(code, 200);
    assert!(page.contains("<form method=post>"), "{page}");
    assert!(store.is_member(LIST, "ann@a.test").await.expect("store"));
    // A forged token is refused.
    let mut forged = ann.clone().into_bytes();
    let at = forged.len() - 5;
    forged[at] = if forged[at] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).expect("ascii");
    assert_eq!(
        curl(&["-d", "List-Unsubscribe=One-Click"], &forged).await.0,
        403
    );
    // multipart/form-data, as `curl -F` (and RFC 8058 §3.2's receivers) send it.
    let (code, body) = curl(&["-F", "List-Unsubscribe=One-Click"], &ann).await;
    assert_eq!(code, 200, "{body}");
    assert!(!store.is_member(LIST, "ann@a.test").await.expect("store"));
    // A retry still answers 200.
    assert_eq!(
        curl(&["-F", "List-Unsubscribe=One-Click"], &ann).await.0,
        200
    );
    // urlencoded, chunked.
    let chunked = [
        "-H",
        "Transfer-Encoding: chunked",
        "-d",
        "List-Unsubscribe=One-Click",
    ];
    assert_eq!(curl(&chunked, &local("bob@b.test")).await.0, 200);
    assert!(!store.is_member(LIST, "bob@b.test").await.expect("store"));
    // A POST without the field changes nothing.
    assert_eq!(curl(&["-d", "x=y"], &local("dee@d.test")).await.0, 400);
    // Links in copies sent by earlier versions (list/address/mac) still work.
    let mac = arclist::stages::list::tokens::unsubscribe(&secret, LIST, "cy@c.test");
    let legacy = format!("http://{web}/unsubscribe/{LIST}/cy@c.test/{mac}");
    assert_eq!(
        curl(&["-d", "List-Unsubscribe=One-Click"], &legacy).await.0,
        200
    );
    assert_eq!(curl(&[], &format!("http://{web}/elsewhere")).await.0, 404);
    // The list file still names them; after a restart they stay gone.
    drop(store);
    let t = t.restart_after(async |_| {}).await;
    let store = t.server.store();
    for gone in ["ann@a.test", "bob@b.test", "cy@c.test"] {
        assert!(
            !store.is_member(LIST, gone).await.expect("store"),
            "{gone} came back"
        );
        let left = store
            .departure(LIST, gone)
            .await
            .expect("store")
            .expect("departure kept");
        assert_eq!(
            left.reason,
            arclist::state::store::DepartureReason::Unsubscribed
        );
    }
    assert!(store.is_member(LIST, "dee@d.test").await.expect("store"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_from_before_a_member_joined_again_does_not_unsubscribe_them() {
    let t = TestServer::start(HTTP).await;
    let store = t.server.store();
    let web = t.server.web_addr().expect("http listener");
    let secret = store.token_secret().await.expect("secret");
    let join = async || {
        let member = arclist::state::store::Member {
            address: "ann@a.test".into(),
            joined_at: unix_now(),
            ..Default::default()
        };
        // What a confirmed join (or an operator) does.
        assert!(store.add_member(LIST, &member).await.expect("store"));
    };
    // The link in a copy sent to ann while she was a member.
    let link = |issued: u64| {
        let url =
            arclist::stages::list::unsubscribe::url(BASE, &secret, LIST, "ann@a.test", issued)
                .expect("url");
        format!("http://{web}{}", url.trim_start_matches(BASE))
    };
    join().await;
    let old = link(unix_now());
    let one_click = ["-d", "List-Unsubscribe=One-Click"];
    assert_eq!(curl(&one_click, &old).await.0, 200);
    assert!(!store.is_member(LIST, "ann@a.test").await.expect("store"));
    // She joins again, in a later second than the old copy was sent.
    let sent = unix_now();
    for _ in 0..40 {
        if unix_now() > sent {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    join().await;
    // The old copy's link, clicked or replayed by a mailbox provider: refused, nothing changes.
    let (code, page) = curl(&[], &old).await;
    assert_eq!(code, 410, "{page}");
    assert!(page.contains("no longer works"), "{page}");
    assert!(!page.contains("<form"), "no button on a stale link: {page}");
    let (code, page) = curl(&one_click, &old).await;
    assert_eq!(code, 410, "{page}");
    assert!(
        store.is_member(LIST, "ann@a.test").await.expect("store"),
        "still a member"
    );
    // The link in a copy sent since works.
    let (code, body) = curl(&one_click, &link(unix_now())).await;
    assert_eq!(code, 200, "{body}");
    assert!(!store.is_member(LIST, "ann@a.test").await.expect("store"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_http_clients_cannot_starve_the_listener() {
    let extra =
        format!("{HTTP}[limits]\nhttp_connections_per_ip = 4\nhttp_header_timeout_secs = 2\n");
    let t = TestServer::start(&extra).await;
    let web = t.server.web_addr().expect("http listener");
    // 20 idle connections from one address (not 127.0.0.1: that is the web server in front,
    // `[http] proxies`, exempt from the per-address limit). Each records how long the server
    // let it stay.
    let mut waits = Vec::new();
    for _ in 0..20 {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind("127.0.0.9:0".parse().expect("addr"))
            .expect("bind");
        let mut stream = socket.connect(web).await.expect("connect");
        let connected = std::time::Instant::now();
        waits.push(tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            let mut buf = [0u8; 256];
            let read =
                tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut buf))
                    .await;
            assert!(read.is_ok(), "the server closes every idle connection");
            connected.elapsed()
        }));
    }
    // The proxy's address is never turned away, even while they wait.
    let (code, _) = curl(&[], &format!("http://{web}/elsewhere")).await;
    assert_eq!(
        code, 404,
        "the listener answers while idle clients hold their slots"
    );
    let mut at_once = 0;
    let mut timed_out = 0;
    for wait in waits {
        let waited = wait.await.expect("reader");
        if waited < std::time::Duration::from_millis(1000) {
            at_once += 1;
        } else if waited >= std::time::Duration::from_millis(1900) {
            timed_out += 1;
        }
    }
    assert_eq!(
        (at_once, timed_out),
        (16, 4),
        "16 beyond the limit closed at once, 4 after the header timeout"
    );
}
