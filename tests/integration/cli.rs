//! The `arclist` binary as users run it.

use crate::support::{Dns, post, rsa_key};
use arclist::auth::dns::Zone;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

fn arclist() -> Command {
    Command::new(env!("CARGO_BIN_EXE_arclist"))
}

#[test]
fn keygen_writes_a_private_key_only_its_owner_can_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = arclist()
        .args([
            "keygen",
            "--domain",
            "lists.arclist.test",
            "--selector",
            "s1",
            "--dir",
        ])
        .arg(dir.path())
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = dir.path().join("s1._domainkey.lists.arclist.test.pem");
    let mode = std::fs::metadata(&path)
        .expect("key file")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let record = String::from_utf8_lossy(&out.stdout);
    assert!(
        record.starts_with("s1._domainkey.lists.arclist.test. IN TXT ( \"v=DKIM1; k=rsa; p="),
        "{record}"
    );
    // The printed record parses back as a usable 2048-bit key.
    let mut zone = Zone::new();
    zone.load_str(&record, "stdout")
        .expect("record is a valid zone line");
    // A second keygen never overwrites the first key.
    let again = arclist()
        .args([
            "keygen",
            "--domain",
            "lists.arclist.test",
            "--selector",
            "s1",
            "--dir",
        ])
        .arg(dir.path())
        .output()
        .expect("runs");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("never overwritten"));
    // --show prints the existing key's record again.
    let shown = arclist()
        .args([
            "keygen",
            "--domain",
            "lists.arclist.test",
            "--selector",
            "s1",
            "--show",
            "--dir",
        ])
        .arg(dir.path())
        .output()
        .expect("runs");
    assert!(shown.status.success());
    assert_eq!(String::from_utf8_lossy(&shown.stdout), record);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seal_then_verify_json_over_live_dns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dns = Dns::start(Zone::new()).await;
    let (key, key_path) = rsa_key(dir.path(), "list");
    dns.publish_key("arc1", "lists.arclist.test", &key);
    let msg_path = dir.path().join("post.eml");
    // LF line endings on disk, as most people keep .eml files.
    let lf = String::from_utf8(post("a@author.arclist.test", "hello\r\n"))
        .expect("ascii")
        .replace("\r\n", "\n");
    std::fs::write(&msg_path, lf).expect("write");
    let sealed = tokio::process::Command::new(env!("CARGO_BIN_EXE_arclist"))
        .args([
            "seal",
            "--domain",
            "lists.arclist.test",
            "--selector",
            "arc1",
            "--dns",
            &dns.addr(),
            "--key",
        ])
        .arg(&key_path)
        .arg(&msg_path)
        .output()
        .await
        .expect("runs");
    assert!(
        sealed.status.success(),
        "{}",
        String::from_utf8_lossy(&sealed.stderr)
    );
    let sealed_path = dir.path().join("sealed.eml");
    std::fs::write(&sealed_path, &sealed.stdout).expect("write");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_arclist"))
        .args(["verify", "--json", "--dns", &dns.addr()])
        .arg(&sealed_path)
        .output()
        .await
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["arc"], "pass");
    assert_eq!(v["hops"][0]["instance"], 1);
    assert_eq!(v["hops"][0]["domain"], "lists.arclist.test");
    assert_eq!(v["hops"][0]["selector"], "arc1");
    assert_eq!(v["hops"][0]["cv"], "none");
    assert_eq!(v["hops"][0]["seal"], "pass");
    assert_eq!(v["hops"][0]["ams"], "pass");
    // The report's field names are what scripts read: the typed report keeps every one.
    let keys = |o: &serde_json::Value| -> Vec<String> {
        o.as_object().expect("object").keys().cloned().collect()
    };
    assert_eq!(
        keys(&v),
        [
            "arc",
            "arc_reason",
            "dkim",
            "dkim2",
            "dmarc",
            "hops",
            "oldest_pass",
            "spf"
        ]
    );
    assert_eq!(
        keys(&v["hops"][0]),
        [
            "ams",
            "ams_detail",
            "authserv_id",
            "cv",
            "domain",
            "instance",
            "reason",
            "recorded",
            "seal",
            "seal_detail",
            "selector"
        ]
    );

    // Text output: first line arc=..., then one line per hop.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_arclist"))
        .args(["verify", "--dns", &dns.addr()])
        .arg(&sealed_path)
        .output()
        .await
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("arc=pass (1 set, oldest-pass=0)"));
    assert!(lines.next().is_some_and(|l| {
        l.trim_start()
            .starts_with("i=1 d=lists.arclist.test s=arc1 cv=none seal=pass ams=pass")
    }));

    // A DNS timeout exits 75 (temporary failure), not a verdict.
    dns.server.hang("arc1._domainkey.lists.arclist.test");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_arclist"))
        .args(["verify", "--dns-timeout", "1", "--dns", &dns.addr()])
        .arg(&sealed_path)
        .output()
        .await
        .expect("runs");
    assert_eq!(out.status.code(), Some(75));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("arc=temperror"));
}

/// `arclist verify` prints the DKIM2 chain: a `dkim2=` line and one line per hop, with the
/// Recipe applied (the dkim2wg corpus's list hop that added a footer, its own DNS records).
#[test]
fn verify_prints_the_dkim2_chain_hop_by_hop() {
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/dkim2");
    let zone = data.join("zone.txt");
    let message = data.join("messages/python/multihop-body-footer.eml");
    let verify = |extra: &[&str]| {
        let out = arclist()
            .args(["verify", "--zone"])
            .arg(&zone)
            .args(extra)
            .arg(&message)
            .output()
            .expect("runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // The corpus was signed in 2025: older than the draft's 14 days.
    let text = verify(&[]);
    assert!(
        text.contains("dkim2=fail (2 hops, draft-ietf-dkim-dkim2-spec-09): DKIM2-Signature i=1 signature expired"),
        "{text}"
    );
    let text = verify(&["--dkim2-ignore-time"]);
    let lines: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("dkim2="))
        .collect();
    assert_eq!(
        lines,
        [
            "dkim2=pass (2 hops, draft-ietf-dkim-dkim2-spec-09)",
            "  i=2 d=test2.dkim2.com s=ed25519:ed25519-sha256 m=2 mf=<relay@test2.dkim2.com> rt=<recipient@example.com> recipe applied (body 1 step(s)): pass",
            "  i=1 d=test1.dkim2.com s=ed25519:ed25519-sha256 m=1 mf=<sender@test1.dkim2.com> rt=<list@test2.dkim2.com>: pass",
            "  the originator's instance (m=1) verified through every Recipe",
        ],
        "{text}"
    );
    // The same copy, claimed to have been sent to someone else: a replay.
    let text = verify(&[
        "--dkim2-ignore-time",
        "--mail-from",
        "<relay@test2.dkim2.com>",
        "--rcpt",
        "<other@example.com>",
    ]);
    assert!(
        text.contains("dkim2=fail (2 hops, draft-ietf-dkim-dkim2-spec-09): DKIM2-Signature i=2 RCPT TO <other@example.com> did not match"),
        "{text}"
    );
}

#[test]
fn verify_names_the_file_it_cannot_read() {
    let out = arclist()
        .args(["verify", "--zone", "/nonexistent.zone", "/nonexistent.eml"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent.eml"));
}

#[test]
fn demo_runs_offline_and_shows_each_posts_verdicts() {
    let out = arclist().arg("demo").output().expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    // 1. The p=reject author's post is authenticated, munged, sealed, signed and delivered.
    assert!(
        text.contains(
            "dmarc=pass (p=reject dis=none record=strict-bank.example) header.from=strict-bank.example"
        ),
        "{text}"
    );
    assert!(text.contains("-> queued for the 3 members"), "{text}");
    assert!(
        text.contains("From: \"Alice via Members\" <members@lists.example.net>"),
        "{text}"
    );
    assert!(
        text.contains("i=1 d=lists.example.net s=list1 cv=none seal=pass ams=pass"),
        "{text}"
    );
    // 2. Through the trusted forwarder: the override is recorded and the chain has two hops.
    assert!(
        text.contains("arc override: alumni-forward.example (i=1) recorded dmarc=pass"),
        "{text}"
    );
    assert!(
        text.contains("i=2 d=lists.example.net s=list1 cv=pass seal=pass ams=pass"),
        "{text}"
    );
    // 3. The spoof is refused.
    assert!(
        text.contains("-> Rejected: DMARC fails for strict-bank.example with p=reject"),
        "{text}"
    );
    assert_eq!(
        text.matches("and verifies it as: arc=pass").count(),
        2,
        "{text}"
    );
}

fn check_config(dir: &std::path::Path) -> (bool, String) {
    let out = arclist()
        .args(["check-config", "--config"])
        .arg(dir.join("server.toml"))
        .output()
        .expect("runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn check_config_names_file_line_and_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    crate::smtp_support::write_config(dir.path(), "127.0.0.1:53", "127.0.0.1:2525", "");
    let (ok, text) = check_config(dir.path());
    assert!(ok, "{text}");
    assert!(text.contains("configuration ok"));

    // An unknown key in the server file.
    let server = dir.path().join("server.toml");
    let good = std::fs::read_to_string(&server).expect("read");
    std::fs::write(&server, format!("{good}[limits]\nmax_recipents = 5\n")).expect("write");
    let (ok, text) = check_config(dir.path());
    assert!(!ok);
    let line = good.lines().count() + 2;
    assert!(
        text.contains(&format!("server.toml:{line}")),
        "names the line: {text}"
    );
    assert!(text.contains("max_recipents"), "names the field: {text}");
    std::fs::write(&server, &good).expect("restore");

    // A bad list address.
    let list = dir.path().join("lists/test.toml");
    let good_list = std::fs::read_to_string(&list).expect("read");
    std::fs::write(
        &list,
        good_list.replace("members@lists.arclist.test", "members at lists"),
    )
    .expect("write");
    let (ok, text) = check_config(dir.path());
    assert!(!ok);
    assert!(
        text.contains("lists/test.toml:1") && text.contains("address"),
        "{text}"
    );

    // A missing key file, without create_key.
    std::fs::write(
        &list,
        good_list.replace("create_key = true", "create_key = false"),
    )
    .expect("write");
    let (ok, text) = check_config(dir.path());
    assert!(!ok);
    let key_line = good_list
        .lines()
        .position(|l| l.starts_with("key ="))
        .expect("key line")
        + 1;
    assert!(
        text.contains(&format!("lists/test.toml:{key_line}"))
            && text.contains("signing.key: no such file"),
        "{text}"
    );
}

#[test]
fn members_are_imported_listed_and_removed_from_the_cli() {
    let dir = tempfile::tempdir().expect("tempdir");
    crate::smtp_support::write_config_with_list(
        dir.path(),
        "127.0.0.1:53",
        "127.0.0.1:2525",
        "",
        "members = [\"Ann <ann@a.test>\"]",
    );
    let config = dir.path().join("server.toml");
    let run = |args: &[&str]| crate::support::arclist_cli(&config, args);
    let file = dir.path().join("members.txt");
    std::fs::write(
        &file,
        "# exported from the old list\nbob@b.test\n\"Carol C.\" <Carol@C.test>\nbob@b.test\n",
    )
    .expect("write");
    let (ok, text) = run(&[
        "member",
        "import",
        crate::smtp_support::LIST,
        file.to_str().expect("utf-8"),
    ]);
    assert!(ok, "{text}");
    assert!(text.contains("2 added, 1 already members"), "{text}");
    let (ok, text) = run(&["member", "ls", crate::smtp_support::LIST]);
    assert!(ok, "{text}");
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        vec![
            "bob@b.test\t\tenabled\tbounce score 0.0\tpolicy rejections 0\tregular",
            "carol@c.test\tCarol C.\tenabled\tbounce score 0.0\tpolicy rejections 0\tregular"
        ]
    );
    // A member disabled by bounces is enabled again, score cleared.
    {
        // A synchronous test: the store is waited for through its bridge.
        use arclist::state::store::wait;
        let store = wait(crate::smtp_support::open_store(dir.path()));
        let mut carol = wait(store.members(crate::smtp_support::LIST))
            .expect("members")
            .into_iter()
            .find(|m| m.address == "carol@c.test")
            .expect("carol");
        carol.disabled = true;
        carol.bounce_score = 5.0;
        wait(store.put_member(crate::smtp_support::LIST, &carol)).expect("put");
    }
    let (_, text) = run(&["member", "ls", crate::smtp_support::LIST]);
    assert!(
        text.contains("carol@c.test\tCarol C.\tdisabled (bounces)\tbounce score 5.0"),
        "{text}"
    );
    let (ok, text) = run(&[
        "member",
        "enable",
        crate::smtp_support::LIST,
        "Carol@C.test",
    ]);
    assert!(ok && text.contains("carol@c.test receives"), "{text}");
    let (_, text) = run(&["member", "ls", crate::smtp_support::LIST]);
    assert!(
        text.contains("carol@c.test\tCarol C.\tenabled\tbounce score 0.0"),
        "{text}"
    );
    let (ok, text) = run(&[
        "member",
        "enable",
        crate::smtp_support::LIST,
        "nobody@x.test",
    ]);
    assert!(!ok && text.contains("not a member"), "{text}");
    let (ok, _) = run(&["member", "remove", crate::smtp_support::LIST, "bob@b.test"]);
    assert!(ok);
    let (_, text) = run(&["list", "show", crate::smtp_support::LIST]);
    assert!(text.contains("members            1"), "{text}");
    std::fs::write(&file, "dave@d.test\nnot an address\n").expect("write");
    let (ok, text) = run(&[
        "member",
        "import",
        crate::smtp_support::LIST,
        file.to_str().expect("utf-8"),
    ]);
    assert!(!ok);
    assert!(text.contains("members.txt:2"), "names the line: {text}");
    let (_, text) = run(&["list", "show", crate::smtp_support::LIST]);
    assert!(
        text.contains("members            1"),
        "a bad line imports nothing, not even the lines before it: {text}"
    );
}

#[test]
fn list_create_writes_a_valid_list_with_a_private_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    crate::smtp_support::write_config(dir.path(), "127.0.0.1:53", "127.0.0.1:2525", "");
    let config = dir.path().join("server.toml");
    let out = arclist()
        .args([
            "list",
            "create",
            "news@lists.arclist.test",
            "--name",
            "News \"Daily\"",
            "--config",
        ])
        .arg(&config)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("arc1._domainkey.lists.arclist.test. IN TXT ( \"v=DKIM1; k=rsa; p=")
    );
    let key = dir
        .path()
        .join("keys/arc1._domainkey.lists.arclist.test.pem");
    assert_eq!(
        std::fs::metadata(&key).expect("key").permissions().mode() & 0o777,
        0o600
    );
    let (ok, text) = check_config(dir.path());
    assert!(
        ok && text.contains("list news@lists.arclist.test"),
        "{text}"
    );
    let again = arclist()
        .args(["list", "create", "news@lists.arclist.test", "--config"])
        .arg(&config)
        .output()
        .expect("runs");
    assert!(!again.status.success(), "a list is never created twice");
}

#[test]
fn check_config_refuses_zero_limits_and_endless_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    crate::smtp_support::write_config(dir.path(), "127.0.0.1:53", "127.0.0.1:2525", "");
    let server = dir.path().join("server.toml");
    let good = std::fs::read_to_string(&server).expect("read");
    std::fs::write(&server, format!("{good}[limits]\nmax_recipients = 0\n")).expect("write");
    let (ok, text) = check_config(dir.path());
    assert!(!ok);
    assert!(text.contains("max_recipients must be at least 1"), "{text}");
    std::fs::write(&server, &good).expect("restore");
    // A list "file" that never ends is refused at a bounded size, not read into memory.
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("lists/zero.toml")).expect("link");
    let (ok, text) = check_config(dir.path());
    assert!(!ok);
    assert!(
        text.contains("zero.toml") && text.contains("larger than"),
        "{text}"
    );
}
