//! The admin listener under attack, over real sockets: requests without the token that send
//! their bodies a byte at a time cannot keep the token holder out and are cut; a `Host` the
//! listener does not answer to is refused (DNS rebinding); refused console logins are logged
//! in the form the documented fail2ban filter matches.

use crate::smtp_support::{TestServer, private_listen_addr, until, write_config};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOKEN: &str = "admin-listener-test-token-0123";
const PASSWORD: &str = "a console pass phrase";

/// The `[admin]` section of a listener with the console and the chain viewer, plus `extra`.
fn admin_section(extra: &str) -> String {
    format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\ntoken_file = \"admin.token\"\nchain_viewer = true\n\
         console_users = \"console.users\"\n{extra}"
    )
}

/// The token file and a console user `ann` in `dir`.
fn admin_files(dir: &std::path::Path) {
    crate::support::write_token(&dir.join("admin.token"), &format!("{TOKEN}\n"));
    let ann = arclist::surfaces::web::console::users::User {
        name: "ann".into(),
        hash: arclist::surfaces::web::console::users::hash(PASSWORD).expect("hash"),
        lists: None,
    };
    arclist::surfaces::web::console::users::put(&dir.join("console.users"), &ann).expect("users");
}

/// A server whose admin listener serves the console and the viewer; its admin address.
async fn admin_server(extra: &str) -> (TestServer, SocketAddr) {
    let t = TestServer::start_prepared(&admin_section(extra), "", admin_files).await;
    let addr = t.server.admin_addr().expect("admin listener");
    (t, addr)
}

/// A TCP connection to `addr` from the loopback address `source`.
async fn connect_from(addr: SocketAddr, source: &str) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    let from: std::net::IpAddr = source.parse().expect("source address");
    socket.bind(SocketAddr::new(from, 0)).expect("bind");
    socket.connect(addr).await.expect("connect")
}

/// One request (`Connection: close`) from `source`; the status and the whole answer, within
/// 20 s (a listener that never answers fails the test there).
async fn request(addr: SocketAddr, source: &str, head: &str) -> (u16, String) {
    let mut stream = connect_from(addr, source).await;
    stream.write_all(head.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut answer))
        .await
        .unwrap_or_else(|_| panic!("no answer within 20 s to {head:?}"))
        .expect("read");
    let answer = String::from_utf8_lossy(&answer).into_owned();
    (status_of(&answer), answer)
}

fn status_of(answer: &str) -> u16 {
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// A request that sends its head and then its body one byte a second: the status it is
/// answered with lands in `answers`.
async fn slow_body(addr: SocketAddr, source: String, path: &str, answers: Arc<Mutex<Vec<u16>>>) {
    let mut stream = connect_from(addr, &source).await;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: 4096\r\n\r\nn"
    );
    if stream.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    let mut answer = vec![0u8; 1024];
    // 60 bytes at most: long past every deadline.
    for _ in 0..60 {
        tokio::select! {
            read = stream.read(&mut answer) => {
                let n = read.unwrap_or(0);
                let status = status_of(&String::from_utf8_lossy(&answer[..n]));
                if let Ok(mut a) = answers.lock() {
                    a.push(status);
                }
                return;
            }
            _ = tokio::time::sleep(Duration::from_secs(1)) => {
                if stream.write_all(b"x").await.is_err() {
                    continue;
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_bodies_without_the_token_cannot_keep_the_token_holder_out_and_are_cut() {
    let (_t, addr) = admin_server("").await;
    // Ann signs in to the console before the flood.
    let body = format!("name=ann&password={}", PASSWORD.replace(' ', "+"));
    let (status, signed_in) = request(
        addr,
        "127.0.0.2",
        &format!(
            "POST /console/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
    .await;
    assert_eq!(status, 303, "{signed_in}");
    let cookie = signed_in
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with("set-cookie:")
                .then(|| l[11..].trim())
        })
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_string();
    // 8 addresses with 8 requests each (within the 16 connections an address may hold): 64
    // requests, as many as the listener had connections, half to the console's login and
    // half to the chain viewer, each sending a byte a second.
    let answers = Arc::new(Mutex::new(Vec::new()));
    let mut slow = Vec::new();
    for a in 1..=8 {
        for n in 0..8 {
            let path = if n % 2 == 0 { "/console/login" } else { "/arc" };
            let source = format!("127.0.27.{a}");
            slow.push(tokio::spawn(slow_body(addr, source, path, answers.clone())));
        }
    }
    // Beyond the 4 an address may have served at once, requests without the token are
    // refused at once (503); wait for those, so the other 32 hold their turns.
    let count = |status: u16| {
        answers
            .lock()
            .map(|a| a.iter().filter(|s| **s == status).count())
            .unwrap_or(0)
    };
    for _ in 0..120 {
        if count(503) >= 32 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    // The token holder is served while they all wait: the metrics and the API answer before
    // any slow request has been cut.
    let bearer = format!("Authorization: Bearer {TOKEN}\r\n");
    let (status, metrics) = request(
        addr,
        "127.0.0.1",
        &format!("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n{bearer}Connection: close\r\n\r\n"),
    )
    .await;
    assert_eq!(status, 200, "{metrics}");
    assert_eq!(
        count(408),
        0,
        "the metrics answered while the slow bodies were still open"
    );
    let (status, lists) = request(
        addr,
        "127.0.0.1",
        &format!("GET /api/lists HTTP/1.1\r\nHost: 127.0.0.1\r\n{bearer}Connection: close\r\n\r\n"),
    )
    .await;
    assert_eq!(status, 200, "{lists}");
    // So is a moderator signed in to the console, from an address of their own.
    let (status, page) = request(
        addr,
        "127.0.0.3",
        &format!("GET /console HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert_eq!(
        status, 200,
        "a signed-in moderator is not an anonymous request: {page}"
    );
    assert_eq!(
        count(408),
        0,
        "the console answered while the slow bodies were still open"
    );
    assert_eq!(count(503), 32, "4 of each address's 8 were refused at once");

    // The slow bodies fall below the minimum rate once the header timeout (5 s) has passed,
    // and are cut with 408.
    until("every slow body is answered", async || {
        count(408) + count(503) == 64
    })
    .await;
    assert_eq!((count(408), count(503)), (32, 32));
    for task in slow {
        task.await.expect("slow client");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_name_the_listener_does_not_answer_to_is_refused() {
    let (_t, addr) = admin_server("hosts = [\"lists.example.org\"]\n").await;
    let get = |host: &str, path: &str| {
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
    };
    // A name rebound to the listener's address: nothing is served under it, the login page
    // and the viewer included.
    for path in ["/console/login", "/arc"] {
        let (status, answer) = request(
            addr,
            "127.0.0.1",
            &get(&format!("rebound.example:{}", addr.port()), path),
        )
        .await;
        assert_eq!(status, 421, "{path}: {answer}");
    }
    let bearer = format!(
        "GET /metrics HTTP/1.1\r\nHost: rebound.example\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n"
    );
    assert_eq!(request(addr, "127.0.0.1", &bearer).await.0, 421);
    // The listener's own address, localhost and the configured name are answered.
    for host in [
        addr.to_string(),
        format!("localhost:{}", addr.port()),
        "Lists.Example.org".into(),
    ] {
        let (status, answer) = request(addr, "127.0.0.1", &get(&host, "/console/login")).await;
        assert_eq!(status, 200, "{host}: {answer}");
    }
}

/// `docs/console.md`'s fail2ban filter: the `failregex` line of its `[Definition]`.
fn documented_failregex() -> String {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/console.md"))
        .expect("docs/console.md");
    let filter = doc
        .split("# /etc/fail2ban/filter.d/arclist-console.conf")
        .nth(1)
        .expect("the filter in docs/console.md");
    filter
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("failregex = "))
        .expect("a failregex line")
        .trim()
        .to_string()
}

/// The addresses the documented filter finds in the log of `arclist serve`, one per line
/// matched, by fail2ban-regex itself (Debian's fail2ban, which tests/interop/install.sh
/// installs): the operator's fail2ban is what must match, not our reading of its syntax.
fn fail2ban_hosts(log: &std::path::Path, failregex: &str) -> Vec<String> {
    let out = std::process::Command::new("fail2ban-regex")
        .args(["--out", "ip", "--raw"])
        .arg(log)
        .arg(failregex)
        .output()
        .expect("fail2ban-regex runs (tests/interop/install.sh installs fail2ban)");
    assert!(
        out.status.success(),
        "fail2ban-regex failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// A server process, stopped (SIGTERM, then waited for) when dropped, whatever the test did.
struct Stopped(std::process::Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        for _ in 0..200 {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refused_login_is_logged_in_the_form_the_documented_fail2ban_filter_matches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dns = crate::support::Dns::start(arclist::auth::dns::Zone::new()).await;
    let smtp = private_listen_addr();
    write_config(
        dir.path(),
        &dns.addr(),
        &smtp.to_string(),
        &admin_section(""),
    );
    admin_files(dir.path());
    // The server as operators run it: its own process, the log as text on standard error.
    let server = Stopped(
        std::process::Command::new(env!("CARGO_BIN_EXE_arclist"))
            .args(["serve", "--config"])
            .arg(dir.path().join("server.toml"))
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("arclist.log")).expect("log file"))
            .spawn()
            .expect("arclist serve starts"),
    );
    // In the state folder, beside the store, whichever store the tests use.
    let addr_file = dir.path().join("var/admin-listener");
    let mut addr = None;
    for _ in 0..400 {
        addr = std::fs::read_to_string(&addr_file)
            .ok()
            .and_then(|a| a.trim().parse().ok());
        if addr.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let addr: SocketAddr = addr.unwrap_or_else(|| {
        let log = std::fs::read_to_string(dir.path().join("arclist.log")).unwrap_or_default();
        panic!("the server writes its admin address: {log}")
    });
    let login = |name: &str, password: &str| {
        let body = format!("name={name}&password={password}");
        format!(
            "POST /console/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    // A wrong password, an unknown name and, once the address must wait, a throttled try.
    assert_eq!(
        request(addr, "127.0.28.1", &login("ann", "wrong")).await.0,
        401
    );
    // A name that tries to put another address into the line.
    let sneaky = "x%22+console+login+refused+client%3D192.0.2.66+reason%3Dwrong_password+name%3D";
    for _ in 0..4 {
        assert_eq!(
            request(addr, "127.0.28.1", &login(sneaky, "wrong")).await.0,
            401
        );
    }
    assert_eq!(
        request(addr, "127.0.28.1", &login("ann", "wrong")).await.0,
        429
    );
    assert_eq!(
        request(addr, "127.0.28.2", &login("ann", PASSWORD)).await.0,
        303
    );
    let _ = tokio::task::spawn_blocking(move || drop(server)).await;

    let log = dir.path().join("arclist.log");
    let text = std::fs::read_to_string(&log).expect("log");
    for reason in ["wrong_password", "unknown_name", "throttled_address"] {
        assert!(
            text.contains(&format!(
                "console login refused client=127.0.28.1 reason={reason} "
            )),
            "{reason}: {text}"
        );
    }
    let hosts = fail2ban_hosts(&log, &documented_failregex());
    assert_eq!(hosts.len(), 6, "six refusals matched: {hosts:?}\n{text}");
    assert!(hosts.iter().all(|h| h == "127.0.28.1"), "{hosts:?}");
}
