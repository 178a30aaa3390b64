//! `check-config` means it: it checks what `serve` will need, as the service user will meet
//! it, prints every listener and feature, and exits non-zero naming each problem; `serve`
//! runs the same checks and binds nothing while one fails.
//!
//! Run as root (CI), the state folder belongs to a stand-in service user (nobody, 65534), so
//! that the checks are made as that user: root itself can read every file.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

const SERVICE: u32 = 65534;

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Gives everything under `dir` to the stand-in service user, when root.
fn give_to_service(dir: &Path) {
    if !crate::file_owners::running_as_root() {
        return;
    }
    let status = Command::new("chown")
        .args(["-R", &format!("{SERVICE}:{SERVICE}")])
        .arg(dir)
        .status()
        .expect("chown runs");
    assert!(status.success());
}

/// A complete configuration in a fresh folder that passes every check: a list with its key,
/// an admin listener with a 0600 token and a console users file, the state folder.
fn good_world() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    chmod(dir.path(), 0o755);
    let d = dir.path();
    crate::smtp_support::write_config(d, "127.0.0.1:53", "127.0.0.1:2525", "");
    let list = std::fs::read_to_string(d.join("lists/test.toml")).expect("list");
    std::fs::write(
        d.join("lists/test.toml"),
        list.replace("create_key = true\n", ""),
    )
    .expect("list");
    let server = std::fs::read_to_string(d.join("server.toml")).expect("server");
    std::fs::write(
        d.join("server.toml"),
        format!(
            "{}\n[admin]\nlisten = \"127.0.0.1:0\"\ntoken_file = \"admin.token\"\nconsole_users = \"console.users\"\n",
            server.replace("[dns]", "state_dir = \"var\"\n[dns]")
        ),
    )
    .expect("server");
    crate::support::write_token(&d.join("admin.token"), "a-token-of-thirty-two-characters\n");
    std::fs::create_dir_all(d.join("var")).expect("state");
    let out = Command::new(env!("CARGO_BIN_EXE_arclist"))
        .args([
            "keygen",
            "--domain",
            "lists.arclist.test",
            "--selector",
            "arc1",
            "--dir",
        ])
        .arg(d.join("keys"))
        .output()
        .expect("keygen");
    assert!(out.status.success());
    std::fs::rename(
        d.join("keys/arc1._domainkey.lists.arclist.test.pem"),
        d.join("keys/arc1.pem"),
    )
    .expect("key name");
    console_user(d);
    give_to_service(d);
    dir
}

fn console_user(d: &Path) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_arclist"))
        .args(["console-user", "ann", "--config"])
        .arg(d.join("server.toml"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("console-user");
    std::io::Write::write_all(child.stdin.as_mut().expect("stdin"), b"a long password\n")
        .expect("password");
    assert!(child.wait().expect("ends").success());
}

/// Runs `arclist CMD --config DIR/server.toml`: success and all output.
fn run(cmd: &str, d: &Path) -> (bool, String) {
    crate::support::arclist_cli(&d.join("server.toml"), &[cmd])
}

/// check-config fails naming `needle`, and serve refuses to start with the same words and
/// without binding its SMTP listener.
fn refused(d: &Path, needle: &str) {
    let (ok, text) = run("check-config", d);
    assert!(!ok && text.contains(needle), "check-config: {text}");
    let listen = crate::smtp_support::private_listen_addr();
    let server = std::fs::read_to_string(d.join("server.toml")).expect("server");
    std::fs::write(
        d.join("server.toml"),
        server.replace("127.0.0.1:2525", &listen.to_string()),
    )
    .expect("server");
    let out = Command::new(env!("CARGO_BIN_EXE_arclist"))
        .args(["serve", "--config"])
        .arg(d.join("server.toml"))
        .output()
        .expect("serve");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && text.contains(needle),
        "serve: {text}"
    );
    assert!(
        !text.contains("listening"),
        "serve bound a listener: {text}"
    );
}

#[test]
fn a_complete_configuration_passes_and_names_its_listeners_and_features() {
    let world = good_world();
    let (ok, text) = run("check-config", world.path());
    assert!(ok, "{text}");
    for found in [
        "list members@lists.arclist.test",
        "key ok",
        "SMTP on 127.0.0.1:2525",
        "LMTP on 127.0.0.1:0",
        "local admin socket",
        "admin listener on 127.0.0.1:0",
        "web console",
        "configuration ok",
    ] {
        assert!(text.contains(found), "{found}: {text}");
    }
}

#[test]
fn a_missing_console_users_file_is_refused() {
    let world = good_world();
    std::fs::remove_file(world.path().join("console.users")).expect("rm");
    refused(world.path(), "console_users");
}

#[test]
fn a_token_file_others_may_read_is_refused() {
    let world = good_world();
    chmod(&world.path().join("admin.token"), 0o644);
    refused(world.path(), "chmod 600");
}

#[test]
fn a_key_the_service_cannot_read_is_refused() {
    let world = good_world();
    let key = world.path().join("keys/arc1.pem");
    if crate::file_owners::running_as_root() {
        // Root reads it; the service user, who does not own it, may not.
        std::os::unix::fs::chown(&key, Some(0), Some(0)).expect("chown");
        assert_eq!(std::fs::metadata(&key).expect("key").mode() & 0o777, 0o600);
    } else {
        chmod(&key, 0o000);
    }
    refused(world.path(), "keys/arc1.pem");
}

#[test]
fn a_delivery_bind_address_not_of_this_host_is_refused() {
    let world = good_world();
    let path = world.path().join("server.toml");
    let server = std::fs::read_to_string(&path).expect("server");
    // 192.0.2.1 (TEST-NET-1) is no address of this host.
    std::fs::write(
        &path,
        format!("{server}[delivery]\nbind_address = \"192.0.2.1\"\n"),
    )
    .expect("server");
    refused(
        world.path(),
        "[delivery] bind_address 192.0.2.1: not an address of this host",
    );
}

#[test]
fn a_state_folder_the_service_cannot_write_is_refused() {
    let world = good_world();
    chmod(&world.path().join("var"), 0o555);
    refused(world.path(), "state_dir");
}

/// `sslmode=verify-full` against a database whose certificate comes from a CA the URL does not
/// name (nor the system's bundle holds): check-config says so and serve does not start.
#[test]
fn a_database_certificate_from_an_unknown_ca_is_refused_with_verify_full() {
    let cluster = crate::postgres::cluster();
    let world = good_world();
    let d = world.path();
    let url = format!(
        "postgresql://tls_only:secret@127.0.0.1:{}/postgres?sslmode=verify-full",
        cluster.port
    );
    let server = std::fs::read_to_string(d.join("server.toml")).expect("server");
    let server: String = server
        .lines()
        .map(|l| match l.starts_with("store = ") {
            true => format!("store = \"{url}\"\n"),
            false => format!("{l}\n"),
        })
        .collect();
    std::fs::write(d.join("server.toml"), server).expect("server");
    refused(d, "UnknownIssuer");
}
