//! RFC 8058 one-click unsubscribe as mailbox providers send it: multipart or urlencoded,
//! chunked or not, to an opaque URL; the departure is durable and outlives restarts even
//! though the list file still names the member.

use crate::smtp_support::{LIST, TestServer};
use arclist::store::Store;
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
            store.is_member(LIST, a).expect("store"),
            "{a} seeded from the file"
        );
    }
    let web = t.server.web_addr().expect("http listener");
    let secret = store.token_secret().expect("secret");
    let local = |address: &str| {
        let url = arclist::list::unsubscribe::url(BASE, &secret, LIST, address).expect("url");
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
    assert!(store.is_member(LIST, "ann@a.test").expect("store"));
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
    assert!(!store.is_member(LIST, "ann@a.test").expect("store"));
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
    assert!(!store.is_member(LIST, "bob@b.test").expect("store"));
    // A POST without the field changes nothing.
    assert_eq!(curl(&["-d", "x=y"], &local("dee@d.test")).await.0, 400);
    // Links in copies sent by earlier versions (list/address/mac) still work.
    let mac = arclist::list::tokens::unsubscribe(&secret, LIST, "cy@c.test");
    let legacy = format!("http://{web}/unsubscribe/{LIST}/cy@c.test/{mac}");
    assert_eq!(
        curl(&["-d", "List-Unsubscribe=One-Click"], &legacy).await.0,
        200
    );
    assert_eq!(curl(&[], &format!("http://{web}/elsewhere")).await.0, 404);
    // The list file still names them; after a restart they stay gone.
    drop(store);
    let t = t.restart_after(|_| {}).await;
    let store = t.server.store();
    for gone in ["ann@a.test", "bob@b.test", "cy@c.test"] {
        assert!(
            !store.is_member(LIST, gone).expect("store"),
            "{gone} came back"
        );
        let left = store
            .departure(LIST, gone)
            .expect("store")
            .expect("departure kept");
        assert_eq!(left.reason, arclist::store::DepartureReason::Unsubscribed);
    }
    assert!(store.is_member(LIST, "dee@d.test").expect("store"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_http_clients_cannot_starve_the_listener() {
    let extra =
        format!("{HTTP}[limits]\nhttp_connections_per_ip = 4\nhttp_header_timeout_secs = 1\n");
    let t = TestServer::start(&extra).await;
    let web = t.server.web_addr().expect("http listener");
    // Idle connections from one address: beyond the limit they are closed at once, and the
    // ones within it are dropped when their header time runs out.
    let mut idle = Vec::new();
    for _ in 0..20 {
        idle.push(tokio::net::TcpStream::connect(web).await.expect("connect"));
    }
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (code, _) = curl(&[], &format!("http://{web}/elsewhere")).await;
    assert_eq!(
        code, 404,
        "the listener answers after idle clients timed out"
    );
    use tokio::io::AsyncReadExt;
    let mut closed = 0;
    for mut s in idle {
        let mut buf = [0u8; 256];
        let read = tokio::time::timeout(std::time::Duration::from_secs(3), s.read(&mut buf)).await;
        if matches!(read, Ok(Ok(_)) | Ok(Err(_))) {
            closed += 1;
        }
    }
    assert_eq!(closed, 20, "every idle connection was closed by the server");
}
