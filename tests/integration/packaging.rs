//! What the Debian package ships agrees with itself: the unit's sandbox lets the service write
//! exactly the folders the shipped server and list files name, and the manual pages and shell
//! completions are made from the command line (packaging/build-deb.sh; packaging/test-deb.sh
//! installs the package and uses it, in CI).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn repo(file: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file))
        .unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn toml_path(text: &str, key: &str) -> PathBuf {
    let table: toml::Table = text.parse().expect("toml");
    let value = table
        .get(key)
        .or_else(|| table.get("signing").and_then(|s| s.get(key)))
        .and_then(|v| v.as_str())
        .unwrap_or_else(|| panic!("{key} missing"));
    PathBuf::from(value)
}

#[test]
fn the_units_sandbox_allows_exactly_the_folders_the_shipped_files_write() {
    let server = repo("packaging/server.toml");
    let list = repo("packaging/example-list.toml");
    let unit = repo("dist/arclist.service");
    let state = toml_path(&server, "state_dir");
    let store = toml_path(&server, "store");
    let lists = toml_path(&server, "lists_dir");
    // The list's key is relative to the list file, which the package puts in lists_dir.
    let key = toml_path(&list, "key");
    let keys = lists
        .parent()
        .expect("above lists")
        .join(key.strip_prefix("..").expect("../keys/..."))
        .parent()
        .expect("keys folder")
        .to_path_buf();
    let written: BTreeSet<PathBuf> = [state.clone(), lists, keys].into();
    assert_eq!(
        store.parent(),
        Some(state.as_path()),
        "the store lives in state_dir"
    );
    let line = |key: &str| {
        unit.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("{key} missing from the unit"))
            .to_string()
    };
    let mut allowed: BTreeSet<PathBuf> = line("ReadWritePaths")
        .split_whitespace()
        .map(PathBuf::from)
        .collect();
    allowed.insert(Path::new("/var/lib").join(line("StateDirectory")));
    assert_eq!(allowed, written);
    assert_eq!(line("ProtectSystem"), "strict");
    assert_eq!(
        line("StateDirectoryMode"),
        "0750",
        "the group reaches admin.sock"
    );
    assert_eq!(line("UMask"), "0027", "list files keep their 0640");
    assert!(
        !server.lines().any(|l| l.starts_with("[admin]")),
        "no [admin] needed"
    );
}

#[test]
fn manual_pages_and_completions_come_from_the_command_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = |what: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_arclist"))
            .args(["generate", what])
            .arg(dir.path().join(what))
            .output()
            .expect("arclist runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run("man");
    run("completions");
    let man = std::fs::read_to_string(dir.path().join("man/arclist.1")).expect("arclist.1");
    assert!(
        man.contains("check\\-config") && man.contains("member"),
        "{man}"
    );
    assert!(
        !man.contains("generate"),
        "the packaging command stays hidden"
    );
    for page in [
        "arclist-serve.1",
        "arclist-member.1",
        "arclist-member-add.1",
    ] {
        assert!(dir.path().join("man").join(page).exists(), "{page}");
    }
    for file in ["arclist.bash", "_arclist", "arclist.fish"] {
        let text = std::fs::read_to_string(dir.path().join("completions").join(file))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(text.contains("check-config"), "{file}");
    }
}
