//! The files arclist creates are the service's: the documented mode always, and, when the
//! command line runs as root beside a state folder that belongs to the service user, that
//! user as owner (docs/running.md, "Who owns what").

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};

/// The service user of this test: nobody (65534), which owns no file of its own here.
const SERVICE: u32 = 65534;

pub(crate) fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Mode bits and owner of `path`.
fn mode_and_owner(path: &Path) -> (u32, u32, u32) {
    let m = std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (m.permissions().mode() & 0o777, m.uid(), m.gid())
}

/// A server file with a redb store in `var/` and the web console's users file.
fn write_server(dir: &Path) {
    crate::smtp_support::write_config(dir, "127.0.0.1:53", "127.0.0.1:2525", "");
    let text = "hostname = \"mx.arclist.test\"\nlisten = [\"127.0.0.1:2525\"]\nstore = \"var/store.redb\"\n\
         lists_dir = \"lists\"\n[admin]\nlisten = \"127.0.0.1:0\"\ntoken_file = \"admin.token\"\n\
         console_users = \"var/console.users\"\n";
    std::fs::write(dir.join("server.toml"), text).expect("server.toml");
    std::fs::write(dir.join("admin.token"), "a-token-of-sixteen-or-more\n").expect("token");
    std::fs::set_permissions(
        dir.join("admin.token"),
        std::fs::Permissions::from_mode(0o600),
    )
    .expect("chmod");
}

#[test]
fn the_store_keys_list_files_and_console_users_get_their_modes_and_the_state_folders_owner() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_server(dir.path());
    let config = dir.path().join("server.toml");
    let state = dir.path().join("var");
    std::fs::create_dir(&state).expect("state folder");
    let root = running_as_root();
    if root {
        std::os::unix::fs::chown(&state, Some(SERVICE), Some(SERVICE)).expect("chown");
    }
    // No server runs: the command line opens (and so creates) the store itself.
    let (ok, text) = crate::support::arclist_cli(
        &config,
        &["member", "add", crate::smtp_support::LIST, "a@b.test"],
    );
    assert!(ok, "member add: {text}");
    let (ok, text) =
        crate::support::arclist_cli(&config, &["list", "create", "news@lists.arclist.test"]);
    assert!(ok, "list create: {text}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_arclist"))
        .args(["console-user", "ann", "--config"])
        .arg(&config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("console-user");
    std::io::Write::write_all(
        child.stdin.as_mut().expect("stdin"),
        b"a long enough password\n",
    )
    .expect("password");
    let out = child.wait_with_output().expect("console-user ends");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let owner = if root {
        SERVICE
    } else {
        mode_and_owner(dir.path()).1
    };
    let expect = [
        ("var/store.redb", 0o600),
        ("var/console.users", 0o600),
        ("keys/arc1._domainkey.lists.arclist.test.pem", 0o600),
        ("lists/news.toml", 0o640),
    ];
    for (file, mode) in expect {
        let (m, uid, gid) = mode_and_owner(&dir.path().join(file));
        assert_eq!(m, mode, "{file}: mode {m:o}");
        if root {
            assert_eq!((uid, gid), (owner, owner), "{file}: owner");
        }
    }
}

/// `arclist keygen` run as root in a folder another user owns (a uid that need not exist on
/// the machine): the key, and the key folder it makes, are that user's, mode 0600 and 0750.
#[test]
fn a_key_made_as_root_follows_the_key_folders_owner() {
    if !running_as_root() {
        eprintln!("skipped: needs root to create files for another user");
        return;
    }
    const OWNER: u32 = 12345;
    let dir = tempfile::tempdir().expect("tempdir");
    std::os::unix::fs::chown(dir.path(), Some(OWNER), Some(OWNER)).expect("chown");
    let keys = dir.path().join("keys");
    let out = Command::new(env!("CARGO_BIN_EXE_arclist"))
        .args([
            "keygen",
            "--domain",
            "lists.example",
            "--selector",
            "s1",
            "--dir",
        ])
        .arg(&keys)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("arclist runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(mode_and_owner(&keys), (0o750, OWNER, OWNER));
    let key = keys.join("s1._domainkey.lists.example.pem");
    assert_eq!(mode_and_owner(&key), (0o600, OWNER, OWNER));
    // In a folder of root's, the key stays root's.
    let own = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_arclist"))
        .args([
            "keygen",
            "--domain",
            "lists.example",
            "--selector",
            "s1",
            "--dir",
        ])
        .arg(own.path())
        .output()
        .expect("arclist runs");
    assert!(out.status.success());
    let key = own.path().join("s1._domainkey.lists.example.pem");
    assert_eq!(mode_and_owner(&key), (0o600, 0, 0));
}
