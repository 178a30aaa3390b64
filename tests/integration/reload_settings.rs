//! A reload reads the server file again: it applies `forwards_dir` and the console's users
//! file, and names every other setting it finds changed as needing a restart, in its answer
//! and in the log.

use crate::console::login_from;
use crate::server_process::ServerProcess;
use crate::smtp_support::{Client, set_server_key, write_config};
use crate::support::{Dns, arclist_cli, write_token};
use arclist::auth::dns::Zone;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

/// Adds a console user with `password` through the CLI, as an operator would.
fn console_user(config: &Path, name: &str, password: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_arclist"))
        .args(["console-user", name, "--config"])
        .arg(config)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("arclist runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{password}\n").as_bytes())
        .expect("password");
    let out = child.wait_with_output().expect("console-user");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The reply to `RCPT TO:<rcpt>` at the server on `addr`.
async fn rcpt(addr: SocketAddr, rcpt: &str) -> u16 {
    let (mut c, _) = Client::connect(addr).await;
    assert_eq!(c.cmd("EHLO client.arclist.test").await.0, 250);
    assert_eq!(c.cmd("MAIL FROM:<a@author.arclist.test>").await.0, 250);
    let code = c.cmd(&format!("RCPT TO:<{rcpt}>")).await.0;
    let _ = c.cmd("QUIT").await;
    code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_applies_forwards_dir_and_console_users_and_names_what_needs_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dns = Dns::start(Zone::new()).await;
    let addr: SocketAddr = crate::smtp_support::private_listen_addr();
    let admin = "[admin]\nlisten = \"127.0.0.1:0\"\ntoken_file = \"admin.token\"\nconsole_users = \"console.users\"\n";
    write_config(dir.path(), &dns.addr(), &addr.to_string(), admin);
    write_token(
        &dir.path().join("admin.token"),
        "reload-test-token-0123456789",
    );
    let config = dir.path().join("server.toml");
    console_user(&config, "ann", "ann's password 2026");
    let server = ServerProcess::start(dir.path(), addr);
    let listener = dir.path().join("var/admin-listener");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !listener.exists() {
        assert!(
            Instant::now() < deadline,
            "the admin listener never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let bound = std::fs::read_to_string(&listener).expect("admin listener");
    let base = format!("http://{}", bound.trim());
    let jars = tempfile::tempdir().expect("jars");
    let login = async |jar: &str, who: (&str, &str)| {
        login_from(&jars.path().join(jar), &base, "127.0.0.1", who).await
    };
    assert_eq!(login("a", ("ann", "ann's password 2026")).await, 303);
    assert_eq!(
        rcpt(addr, "sales@corp.test").await,
        550,
        "no forwarding yet"
    );

    // The operator adds a console user, a forwarding domain and changes the LMTP listener.
    console_user(&config, "bob", "bob's password 2026");
    assert_eq!(
        login("b", ("bob", "bob's password 2026")).await,
        401,
        "not before a reload"
    );
    let text = std::fs::read_to_string(&config).expect("server.toml");
    std::fs::write(&config, format!("forwards_dir = \"forwards\"\n{text}")).expect("write");
    std::fs::create_dir_all(dir.path().join("forwards")).expect("dir");
    std::fs::write(
        dir.path().join("forwards/corp.toml"),
        "domain = \"corp.test\"\n[aliases]\nsales = [\"ann@gmail.test\"]\n[signing]\nselector = \"fwd\"\n\
         key = \"fwd.pem\"\ncreate_key = true\n[srs]\nsecret_file = \"srs.secret\"\ncreate_secret = true\n",
    )
    .expect("forwarding file");
    set_server_key(dir.path(), "lmtp_listen", "[]");

    let (ok, text) = arclist_cli(&config, &["reload"]);
    assert!(ok, "{text}");
    for said in [
        "1 forwarding domain(s)",
        "2 console user(s)",
        "changed but needs a restart: lmtp_listen",
    ] {
        assert!(text.contains(said), "{said:?} in: {text}");
    }
    assert!(
        !text.contains("forwards_dir") && !text.contains("console_users"),
        "{text}"
    );
    assert_eq!(
        server.log_count("changed but needs a restart: lmtp_listen"),
        1,
        "logged once"
    );
    assert_eq!(login("b2", ("bob", "bob's password 2026")).await, 303);
    assert_eq!(
        rcpt(addr, "sales@corp.test").await,
        250,
        "forwarding from the reload on"
    );

    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(20)).success());
}
