//! The local admin socket: a server with no `[admin]` section is administered from the CLI
//! through the Unix socket in its state folder (mode 0660), which a restart after a crash
//! takes over and a stop removes.

use crate::server_process::ServerProcess;
use crate::smtp_support::{LIST, write_config};
use crate::support::{Dns, arclist_cli};
use arclist::auth::dns::Zone;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// Waits (bounded) until a server answers on `socket`.
fn wait_for_socket(socket: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::os::unix::net::UnixStream::connect(socket).is_err() {
        assert!(
            Instant::now() < deadline,
            "nothing answers on {}",
            socket.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_administers_a_running_server_through_the_local_socket_without_an_admin_section() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dns = Dns::start(Zone::new()).await;
    let addr: SocketAddr = crate::smtp_support::private_listen_addr();
    write_config(dir.path(), &dns.addr(), &addr.to_string(), "");
    let config = dir.path().join("server.toml");
    let socket = dir.path().join("var/admin.sock");
    // What a killed server leaves: a socket file nobody listens on.
    std::fs::create_dir_all(dir.path().join("var")).expect("state folder");
    drop(std::os::unix::net::UnixListener::bind(&socket).expect("stale socket"));
    assert!(socket.exists());

    let server = ServerProcess::start(dir.path(), addr);
    wait_for_socket(&socket);
    let mode = std::fs::metadata(&socket)
        .expect("socket")
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o777,
        0o660,
        "the socket's mode is {:o}",
        mode & 0o777
    );

    let run = |args: &[&str]| arclist_cli(&config, args);
    let (ok, text) = run(&["member", "add", LIST, "new@member.test"]);
    assert!(ok, "member add: {text}");
    let (ok, text) = run(&["member", "ls", LIST]);
    assert!(ok && text.contains("new@member.test"), "member ls: {text}");
    let (ok, text) = run(&["held", "ls"]);
    assert!(ok, "held ls: {text}");
    let (ok, text) = run(&["report"]);
    assert!(ok, "report: {text}");

    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(20)).success());
    assert!(!socket.exists(), "a stopped server removes its socket");
}
