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

/// `arclist store backup FILE` while 1,000 posts from a member arrive and fan out to the
/// list: the copy opens, holds every post acknowledged before the backup began and the
/// members, and the server goes on. The posts are sent pipelined (RFC 2920: the end of one
/// message's data, the next MAIL, RCPT and DATA in one write), one round trip a post.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_posts_arrive_opens_and_holds_them() {
    use crate::smtp_support::{Client, dot_stuffed, message};
    use std::sync::Arc;
    const POSTS: usize = 1_000;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let dir = tempfile::tempdir().expect("tempdir");
    let dns = Dns::start(Zone::new()).await;
    let addr: SocketAddr = crate::smtp_support::private_listen_addr();
    write_config(dir.path(), &dns.addr(), &addr.to_string(), "");
    crate::smtp_support::use_embedded_store(dir.path());
    let config = dir.path().join("server.toml");
    let server = ServerProcess::start(dir.path(), addr);
    wait_for_socket(&dir.path().join("var/admin.sock"));
    // The author is a member, so each post is distributed, not held.
    let members = [
        "ann@a.test",
        "bob@b.test",
        "cat@c.test",
        "a@author.arclist.test",
    ];
    for m in members {
        let (ok, text) = arclist_cli(&config, &["member", "add", LIST, m]);
        assert!(ok, "{text}");
    }
    let acked = Arc::new(AtomicUsize::new(0));
    let counter = acked.clone();
    let started = Instant::now();
    let sender = tokio::spawn(async move {
        let (mut c, _) = Client::connect(addr).await;
        let (code, ehlo) = c.cmd("EHLO author.arclist.test").await;
        assert!(code == 250 && ehlo.contains("PIPELINING"), "{ehlo}");
        let envelope = format!("MAIL FROM:<a@author.arclist.test>\r\nRCPT TO:<{LIST}>\r\nDATA\r\n");
        c.send(envelope.as_bytes()).await;
        for n in 0..POSTS {
            let (mail, rcpt, data) = (c.reply().await, c.reply().await, c.reply().await);
            assert_eq!(
                (mail.0, rcpt.0, data.0),
                (250, 250, 354),
                "{mail:?} {rcpt:?} {data:?}"
            );
            let mut write = dot_stuffed(&message(&format!("backup-{n}"), 2_000));
            if n + 1 < POSTS {
                write.extend_from_slice(envelope.as_bytes());
            }
            c.send(&write).await;
            if c.reply().await.0 == 250 {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    while acked.load(Ordering::SeqCst) < 50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before = acked.load(Ordering::SeqCst);
    let backup = dir.path().join("backup.redb");
    let (ok, text) = arclist_cli(
        &config,
        &["store", "backup", backup.to_str().expect("utf-8")],
    );
    assert!(ok, "store backup: {text}");
    let during = acked.load(Ordering::SeqCst);
    sender.await.expect("sender");
    assert_eq!(acked.load(Ordering::SeqCst), POSTS, "every post accepted");
    eprintln!(
        "{POSTS} posts sent pipelined in {:.1} s, the backup taken after {before}",
        started.elapsed().as_secs_f64()
    );
    let (ok, text) = arclist_cli(
        &config,
        &["store", "backup", backup.to_str().expect("utf-8")],
    );
    assert!(
        !ok && text.contains("backup"),
        "an existing file is never overwritten: {text}"
    );
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(20)).success());

    let mode = std::fs::metadata(&backup)
        .expect("backup")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let copy = arclist::state::store::Store::from(
        arclist::state::store::RedbStore::open(&backup).expect("the backup opens"),
    );
    let spooled = copy.list().await.expect("spool").len();
    assert!(
        spooled >= before && spooled <= during + 1,
        "{before} acknowledged before the backup, {during} when it ended; the copy holds {spooled}"
    );
    for m in members {
        assert!(copy.is_member(LIST, m).await.expect("read"), "{m}");
    }
}
